//! Time as nanoseconds from an injectable clock, so that a simulation or a
//! replay drives the same code as the wall clock does, deterministically.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// Time that only moves forward (`Instant`), as nanoseconds since the
/// first use in this process: what paced loops wait on, so that a wall
/// clock stepped by NTP neither stalls a control thread nor bursts it.
/// Stamps that leave the process use `SystemClock`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MonotonicClock;

impl MonotonicClock {
    fn origin() -> std::time::Instant {
        static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        *ORIGIN.get_or_init(std::time::Instant::now)
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Timestamp {
        Timestamp(MonotonicClock::origin().elapsed().as_nanos() as u64)
    }
}

impl SleepUntil for MonotonicClock {
    fn sleep_until(&self, deadline: Timestamp) {
        // Instant-based: sleep never returns early and never waits for a wall clock.
        let wait = deadline.nanos_since(self.now());
        if wait > 0 {
            std::thread::sleep(Duration::from_nanos(wait));
        }
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

/// A clock a thread can wait on: paced loops sleep through this, so that a
/// test drives them with a `ManualClock` instead of waiting for real.
/// Implementations must not allocate or lock: paced loops call it every tick.
pub trait SleepUntil: Clock {
    /// Returns once `now() >= deadline` (at once if it already is).
    fn sleep_until(&self, deadline: Timestamp);
}

impl SleepUntil for SystemClock {
    fn sleep_until(&self, deadline: Timestamp) {
        // Again while short: the wall clock may be slewed slower than the sleep's own clock.
        loop {
            let wait = deadline.nanos_since(self.now());
            if wait == 0 {
                return;
            }
            std::thread::sleep(Duration::from_nanos(wait));
        }
    }
}

/// Waiting on a manual clock moves it to the deadline at once: simulated
/// time passes without anyone waiting, and never runs backwards.
impl SleepUntil for ManualClock {
    fn sleep_until(&self, deadline: Timestamp) {
        self.nanos.fetch_max(deadline.0, Ordering::AcqRel);
    }
}

// A clock shared with its owner (a test that also moves it) is still a clock.
impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

impl<C: SleepUntil + ?Sized> SleepUntil for &C {
    fn sleep_until(&self, deadline: Timestamp) {
        (**self).sleep_until(deadline)
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

impl<C: SleepUntil + ?Sized> SleepUntil for Arc<C> {
    fn sleep_until(&self, deadline: Timestamp) {
        (**self).sleep_until(deadline)
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
    fn sleeping_on_a_manual_clock_jumps_to_the_deadline_and_never_back() {
        let clock = ManualClock::new(Timestamp(100));
        clock.sleep_until(Timestamp(250));
        assert_eq!(clock.now(), Timestamp(250));
        clock.sleep_until(Timestamp(200));
        assert_eq!(clock.now(), Timestamp(250), "a past deadline returns at once");
        // Shared, by reference or by Arc, it is the same clock.
        fn wait_on(clock: impl SleepUntil, deadline: Timestamp) {
            clock.sleep_until(deadline);
        }
        let shared = Arc::new(clock);
        wait_on(&*shared, Timestamp(300));
        wait_on(shared.clone(), Timestamp(400));
        assert_eq!(shared.now(), Timestamp(400));
    }

    #[test]
    fn the_monotonic_clock_never_goes_back_and_sleeps_to_its_deadline() {
        let clock = MonotonicClock;
        let a = clock.now();
        let deadline = a.plus_nanos(2_000_000);
        clock.sleep_until(deadline);
        let b = clock.now();
        assert!(b >= deadline, "{b:?} before {deadline:?}");
        assert!(MonotonicClock.now() >= b);
    }

    #[test]
    fn sleeping_on_the_system_clock_reaches_the_deadline() {
        let deadline = SystemClock.now().plus_nanos(2_000_000);
        SystemClock.sleep_until(deadline);
        assert!(SystemClock.now() >= deadline);
        // A deadline in the past does not wait.
        let started = std::time::Instant::now();
        SystemClock.sleep_until(Timestamp(1));
        assert!(started.elapsed() < Duration::from_millis(50));
    }

    #[test]
    fn nanos_since_saturates() {
        assert_eq!(Timestamp(10).nanos_since(Timestamp(3)), 7);
        assert_eq!(Timestamp(3).nanos_since(Timestamp(10)), 0);
        assert_eq!(Timestamp::from_secs_f64(1.5).0, 1_500_000_000);
    }
}
