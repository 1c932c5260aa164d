//! The arm's control thread and the task's lock-free link to it: the
//! thread ticks read → gate → write at the robot's control rate on the wall
//! clock, whatever the actor and learner are doing; the task offers
//! commands and takes the newest state, the gate's interventions, its
//! recorded ticks and any failure through bounded queues and counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam::queue::ArrayQueue;
use robot_drivers::pacing::Pacer;
use robot_drivers::worker::{stopping, Worker};
use robot_drivers::{CommandSlot, ControlLoop, HardwareInterface};
use rrl_types::{Clock, GateTick, JointCommand, JointState, JointVec, MonotonicClock, SafetyEvents, SystemClock, TickDecimator};
use safety::{Gate, Verdict};

use super::ArmTaskError;

pub(super) struct ControlLink {
    slot: Arc<CommandSlot>,
    newest_state: Arc<ArrayQueue<JointState>>,
    failure: Arc<ArrayQueue<String>>,
    protective_events: Arc<AtomicU64>,
    /// Of those, ticks on which the risk critic's reflex ran.
    reflex_events: Arc<AtomicU64>,
    /// The gate's latest protective verdict and the command it forwarded then.
    last_intervention: Arc<ArrayQueue<(Verdict, JointVec)>>,
    /// The gate's recorded ticks, waiting for `take_ticks`.
    ticks: Arc<ArrayQueue<GateTick>>,
    /// Ticks the queue had no room for (the actor did not take them in time).
    dropped_ticks: Arc<AtomicU64>,
    _control: Worker,
}

/// Recorded ticks that may wait for the actor: at 1 kHz with every tick
/// kept, 4 s of them (the actor takes them every step).
const TICK_QUEUE: usize = 4096;

impl ControlLink {
    /// Starts the control thread over a configured and active `hardware`.
    /// The gate's ticks are recorded as `decimator` keeps them.
    pub(super) fn start<H: HardwareInterface + Send + 'static>(hardware: H, gate: Gate, period: Duration, mut decimator: TickDecimator) -> Result<ControlLink, ArmTaskError> {
        let slot = CommandSlot::new();
        let mut control = ControlLoop::new(hardware, gate, slot.clone());
        let (newest_state, failure, last_intervention) = (Arc::new(ArrayQueue::new(1)), Arc::new(ArrayQueue::new(1)), Arc::new(ArrayQueue::new(1)));
        let (protective_events, reflex_events) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (states, failed, events, reflexes, intervention) = (newest_state.clone(), failure.clone(), protective_events.clone(), reflex_events.clone(), last_intervention.clone());
        let (ticks, dropped_ticks) = (Arc::new(ArrayQueue::new(TICK_QUEUE)), Arc::new(AtomicU64::new(0)));
        let (recorded, dropped) = (ticks.clone(), dropped_ticks.clone());
        let worker = Worker::spawn("arm-control", move |stop| {
            let mut pacer = Pacer::new(period, MonotonicClock);
            while !stopping(stop) {
                let now = SystemClock.now();
                match control.tick(now) {
                    Ok(verdict) => {
                        let tick = control.tick_record(now, &verdict);
                        decimator.feed(tick, |tick| {
                            if recorded.push(tick).is_err() {
                                dropped.fetch_add(1, Ordering::Relaxed);
                            }
                        });
                        if verdict.is_protective() {
                            events.fetch_add(1, Ordering::Relaxed);
                            if matches!(verdict, Verdict::Reflex { .. }) {
                                reflexes.fetch_add(1, Ordering::Relaxed);
                            }
                            let _ = intervention.force_push((verdict, control.sent().values));
                        }
                        let _ = states.force_push(*control.state());
                    }
                    Err(e) => {
                        let _ = failed.force_push(e.to_string());
                        return;
                    }
                }
                pacer.wait();
            }
            let hardware = control.hardware_mut();
            let _ = hardware.deactivate();
        })
        .map_err(|e| ArmTaskError::Hardware(format!("the control thread did not start: {e}")))?;
        Ok(ControlLink { slot, newest_state, failure, protective_events, reflex_events, last_intervention, ticks, dropped_ticks, _control: worker })
    }

    /// Why the arm stopped, if it did.
    pub(super) fn check_failure(&self) -> Result<(), ArmTaskError> {
        match self.failure.pop() {
            Some(why) => Err(ArmTaskError::Hardware(why)),
            None => Ok(()),
        }
    }

    /// Reports `why` at the next `check_failure` (a reset that failed
    /// where no error can be returned).
    pub(super) fn fail_later(&self, why: String) {
        let _ = self.failure.force_push(why);
    }

    /// The control thread's newest state, if one came since the last look.
    pub(super) fn take_state(&self) -> Option<JointState> {
        self.newest_state.pop()
    }

    pub(super) fn offer(&self, command: JointCommand) {
        self.slot.offer(command);
    }

    /// Protective ticks so far (since the last `take_events`).
    pub(super) fn protective(&self) -> u64 {
        self.protective_events.load(Ordering::Relaxed)
    }

    pub(super) fn take_events(&self) -> SafetyEvents {
        SafetyEvents { protective: self.protective_events.swap(0, Ordering::Relaxed), reflexes: self.reflex_events.swap(0, Ordering::Relaxed) }
    }

    /// Moves the recorded ticks waiting in the queue to `out`.
    pub(super) fn take_ticks(&self, out: &mut Vec<GateTick>) {
        while let Some(tick) = self.ticks.pop() {
            out.push(tick);
        }
        let dropped = self.dropped_ticks.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(dropped, "the safety gate's tick queue was full: {dropped} recorded ticks were lost (the actor took them too late)");
        }
    }

    pub(super) fn last_intervention(&self) -> Option<(Verdict, JointVec)> {
        self.last_intervention.pop()
    }
}
