//! Time as nanoseconds from an injectable clock, so that a simulation or a
//! replay drives the same code as the wall clock does, deterministically.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the clock's epoch (the Unix epoch for the system clock,
/// the start of the episode for a simulated one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub const ZERO: Timestamp = Timestamp(0);

    pub fn from_secs_f64(seconds: f64) -> Timestamp {
        Timestamp((seconds.max(0.0) * 1e9).round() as u64)
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 * 1e-9
    }

    /// Nanoseconds from `earlier` to `self`, zero when `earlier` is later.
    pub fn nanos_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    pub fn plus_nanos(self, nanos: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(nanos))
    }
}

/// A source of time. Implementations must be cheap and lock-free: the control
/// loop calls `now` every tick.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// Wall-clock time since the Unix epoch.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        // A clock set before 1970 is a broken machine; report the epoch rather than panic.
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Timestamp(since_epoch.as_nanos() as u64)
    }
}

/// A clock that only moves when told to: simulated time, replays and tests.
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock { nanos: AtomicU64::new(start.0) }
    }

    pub fn set(&self, t: Timestamp) {
        self.nanos.store(t.0, Ordering::Release);
    }

    pub fn advance_nanos(&self, nanos: u64) {
        self.nanos.fetch_add(nanos, Ordering::AcqRel);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.nanos.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp(5));
        assert_eq!(clock.now(), Timestamp(5));
        clock.advance_nanos(1_000);
        assert_eq!(clock.now(), Timestamp(1_005));
        clock.set(Timestamp(7));
        assert_eq!(clock.now(), Timestamp(7));
    }

    #[test]
    fn system_clock_is_monotone_enough_and_after_2020() {
        let a = SystemClock.now();
        let b = SystemClock.now();
        assert!(b >= a);
        assert!(a.as_secs_f64() > 1_577_836_800.0, "system clock before 2020: {a:?}");
    }

    #[test]
    fn nanos_since_saturates() {
        assert_eq!(Timestamp(10).nanos_since(Timestamp(3)), 7);
        assert_eq!(Timestamp(3).nanos_since(Timestamp(10)), 0);
        assert_eq!(Timestamp::from_secs_f64(1.5).0, 1_500_000_000);
    }
}
