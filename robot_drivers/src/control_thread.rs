//! The per-tick work of a control thread that drives a robot for a
//! practising process (a real arm's task): read → gate → write, then hand
//! the newest state, the gate's interventions and its recorded ticks
//! (decimated) to the other threads through bounded lock-free queues and
//! counters. The thread itself only paces and calls `tick`; `tick` does not
//! allocate, free, lock or block, which `tests/control_thread.rs` proves
//! over this very function with a counting allocator.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam::queue::ArrayQueue;
use rrl_types::{GateTick, JointState, JointVec, SafetyEvents, TickDecimator, Timestamp};
use safety::Verdict;

use crate::control::ControlLoop;
use crate::hardware::{HardwareError, HardwareInterface};

/// Recorded ticks that may wait to be taken: at 1 kHz with every tick
/// kept, 4 s of them (an actor takes them every step).
pub const TICK_QUEUE: usize = 4096;

/// What the control thread reports, read from any thread.
pub struct ControlReports {
    newest_state: ArrayQueue<JointState>,
    protective: AtomicU64,
    /// Of those, ticks on which the risk critic's reflex ran.
    reflexes: AtomicU64,
    /// The gate's latest protective verdict and the command it forwarded then.
    last_intervention: ArrayQueue<(Verdict, JointVec)>,
    ticks: ArrayQueue<GateTick>,
    /// Ticks the queue had no room for.
    dropped_ticks: AtomicU64,
}

impl ControlReports {
    /// The newest state read, if one came since the last look.
    pub fn take_state(&self) -> Option<JointState> {
        self.newest_state.pop()
    }

    /// Protective ticks since the last `take_events`.
    pub fn protective(&self) -> u64 {
        self.protective.load(Ordering::Relaxed)
    }

    pub fn take_events(&self) -> SafetyEvents {
        SafetyEvents { protective: self.protective.swap(0, Ordering::Relaxed), reflexes: self.reflexes.swap(0, Ordering::Relaxed) }
    }

    pub fn last_intervention(&self) -> Option<(Verdict, JointVec)> {
        self.last_intervention.pop()
    }

    /// Moves the recorded ticks waiting to `out`; how many were lost
    /// (the queue was full) since the last call.
    pub fn take_ticks(&self, out: &mut Vec<GateTick>) -> u64 {
        while let Some(tick) = self.ticks.pop() {
            out.push(tick);
        }
        self.dropped_ticks.swap(0, Ordering::Relaxed)
    }
}

pub struct ControlThread<H: HardwareInterface> {
    control: ControlLoop<H>,
    decimator: TickDecimator,
    reports: Arc<ControlReports>,
}

impl<H: HardwareInterface> ControlThread<H> {
    /// The control loop's ticks, recorded as `decimator` keeps them.
    pub fn new(control: ControlLoop<H>, decimator: TickDecimator) -> (ControlThread<H>, Arc<ControlReports>) {
        let reports = Arc::new(ControlReports {
            newest_state: ArrayQueue::new(1),
            protective: AtomicU64::new(0),
            reflexes: AtomicU64::new(0),
            last_intervention: ArrayQueue::new(1),
            ticks: ArrayQueue::new(TICK_QUEUE),
            dropped_ticks: AtomicU64::new(0),
        });
        (ControlThread { control, decimator, reports: reports.clone() }, reports)
    }

    /// One control tick at `now` and its reports.
    pub fn tick(&mut self, now: Timestamp) -> Result<Verdict, HardwareError> {
        let verdict = self.control.tick(now)?;
        let reports = &*self.reports;
        if verdict.is_protective() {
            reports.protective.fetch_add(1, Ordering::Relaxed);
            if matches!(verdict, Verdict::Reflex { .. }) {
                reports.reflexes.fetch_add(1, Ordering::Relaxed);
            }
            let _ = reports.last_intervention.force_push((verdict, self.control.sent().values));
        }
        let _ = reports.newest_state.force_push(*self.control.state());
        self.decimator.feed(self.control.tick_record(now, &verdict), |tick| {
            if reports.ticks.push(tick).is_err() {
                reports.dropped_ticks.fetch_add(1, Ordering::Relaxed);
            }
        });
        Ok(verdict)
    }

    pub fn control(&mut self) -> &mut ControlLoop<H> {
        &mut self.control
    }
}
