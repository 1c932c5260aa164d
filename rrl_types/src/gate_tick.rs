//! One safety-gate tick as it is recorded beside the episodes, for the
//! learned risk critic to train on: what the critic sees (or would see),
//! what the gate decided and why, and whether the measured state itself
//! broke a limit. Fixed-size and `Copy`: the control thread hands it over
//! without allocating.

use crate::MAX_JOINTS;

/// The most values a tick's critic input holds: position, velocity and
/// command of every joint.
pub const MAX_TICK_INPUTS: usize = 3 * MAX_JOINTS;

/// How often quiet gate ticks (passed or shaped by the limiter, within
/// every limit) are recorded; eventful ones always are.
pub const QUIET_TICK_RECORD_HZ: f64 = 50.0;

/// What the gate did on a tick, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum TickVerdict {
    #[default]
    Pass = 0,
    /// `detail` holds the clip flags (`safety::ClipFlags`).
    Clipped = 1,
    /// `detail` holds the hold reason's number (`safety::HoldReason`).
    Held = 2,
    /// `detail` holds the reflex's number (0 Hold, 1 Decelerate, 2 Recover).
    Reflex = 3,
}

impl TickVerdict {
    pub fn from_byte(byte: u8) -> Option<TickVerdict> {
        Some(match byte {
            0 => TickVerdict::Pass,
            1 => TickVerdict::Clipped,
            2 => TickVerdict::Held,
            3 => TickVerdict::Reflex,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GateTick {
    /// The gate's own tick counter since it was built: gaps between
    /// recorded ticks are decimated (or dropped) ticks.
    pub index: u64,
    pub stamp_ns: u64,
    pub verdict: TickVerdict,
    pub detail: u16,
    /// Whether the gate protected the robot on this tick: a position,
    /// effort or workspace limit reached, a reflex, or a hold for a reason
    /// other than a missing or stale command.
    pub protective: bool,
    /// The measured state was beyond a limit: a joint past its range, the
    /// tool outside its box. The critic's label when measured.
    pub violation: bool,
    /// The critic's risk for this tick; NaN when no critic judged it.
    pub risk: f32,
    /// How many of `input` are used: 3·joints.
    pub width: u8,
    /// Positions, velocities, then the command the critic judged of every
    /// joint: the limited one, before any reflex (while Recover is latched,
    /// the one the source asked for); for a held tick, the one sent.
    pub input: [f32; MAX_TICK_INPUTS],
}

impl Default for GateTick {
    fn default() -> GateTick {
        GateTick { index: 0, stamp_ns: 0, verdict: TickVerdict::Pass, detail: 0, protective: false, violation: false, risk: f32::NAN, width: 0, input: [0.0; MAX_TICK_INPUTS] }
    }
}

impl GateTick {
    pub fn input(&self) -> &[f32] {
        &self.input[..usize::from(self.width)]
    }

    /// Always kept when quiet ticks are decimated: the gate protected
    /// (a hold, a reflex, a hard limit reached) or the state broke a limit.
    pub fn is_eventful(&self) -> bool {
        self.protective || self.violation
    }
}

/// Decides which ticks are recorded: every eventful one, the tick just
/// before it (the lead-up the critic must learn to anticipate), and every
/// `every`-th quiet one. Holds at most one tick; never allocates, so it can
/// run on the control thread.
#[derive(Debug, Clone)]
pub struct TickDecimator {
    every: u64,
    /// The last tick, when it was not recorded.
    skipped: Option<GateTick>,
}

impl TickDecimator {
    /// Records every `every`-th quiet tick (1: every tick).
    pub fn new(every: u64) -> TickDecimator {
        TickDecimator { every: every.max(1), skipped: None }
    }

    /// For a gate ticking at `control_rate_hz`: quiet ticks at about
    /// `quiet_hz` (at least one in `control_rate_hz / quiet_hz`).
    pub fn for_rate(control_rate_hz: f64, quiet_hz: f64) -> TickDecimator {
        let every = (control_rate_hz / quiet_hz).floor();
        TickDecimator::new(if every.is_finite() && every >= 1.0 { every as u64 } else { 1 })
    }

    /// Feeds the next tick; `keep` receives the ticks to record, in order.
    pub fn feed(&mut self, tick: GateTick, mut keep: impl FnMut(GateTick)) {
        let eventful = tick.is_eventful();
        if eventful || tick.index % self.every == 0 {
            if let (true, Some(before)) = (eventful, self.skipped.take()) {
                keep(before);
            }
            self.skipped = None;
            keep(tick);
        } else {
            self.skipped = Some(tick);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(index: u64, violation: bool) -> GateTick {
        GateTick { index, violation, width: 3, ..GateTick::default() }
    }

    #[test]
    fn quiet_ticks_are_thinned_and_an_event_keeps_its_lead_up() {
        let mut decimator = TickDecimator::new(4);
        let mut kept = Vec::new();
        for i in 1..=12 {
            decimator.feed(tick(i, i == 7), |t| kept.push(t.index));
        }
        assert_eq!(kept, vec![4, 6, 7, 8, 12]);
        assert_eq!(TickDecimator::for_rate(1000.0, 50.0).every, 20);
        assert_eq!(TickDecimator::for_rate(10.0, 50.0).every, 1);
    }
}
