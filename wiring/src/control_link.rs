//! A real robot's control thread and its task's lock-free link to it (an
//! arm's, a car's): the thread ticks read → gate → write at the robot's
//! control rate on the wall clock, whatever the actor and learner are doing
//! (`robot_drivers::control_thread`); the task offers commands and takes the
//! newest state, the gate's interventions, its recorded ticks and any
//! failure through bounded queues and counters.

use std::sync::Arc;
use std::time::Duration;

use crossbeam::queue::ArrayQueue;
use robot_drivers::control_thread::{ControlReports, ControlThread};
use robot_drivers::pacing::Pacer;
use robot_drivers::worker::{stopping, Worker};
use robot_drivers::{CommandSlot, ControlLoop, HardwareInterface};
use rrl_types::{Clock, GateTick, JointCommand, JointState, JointVec, MonotonicClock, SafetyEvents, SystemClock, TickDecimator};
use safety::{Gate, Verdict};

pub(crate) struct ControlLink {
    slot: Arc<CommandSlot>,
    reports: Arc<ControlReports>,
    failure: Arc<ArrayQueue<String>>,
    _control: Worker,
}

impl ControlLink {
    /// Starts the control thread over a configured and active `hardware`;
    /// the gate's ticks are recorded as `decimator` keeps them.
    pub(crate) fn start<H: HardwareInterface + Send + 'static>(hardware: H, gate: Gate, period: Duration, decimator: TickDecimator) -> Result<ControlLink, String> {
        let slot = CommandSlot::new();
        let (mut control, reports) = ControlThread::new(ControlLoop::new(hardware, gate, slot.clone()), decimator);
        let failure = Arc::new(ArrayQueue::new(1));
        let failed = failure.clone();
        let worker = Worker::spawn("robot-control", move |stop| {
            let mut pacer = Pacer::new(period, MonotonicClock);
            while !stopping(stop) {
                if let Err(e) = control.tick(SystemClock.now()) {
                    let _ = failed.force_push(e.to_string());
                    return;
                }
                pacer.wait();
            }
            let _ = control.control().hardware_mut().deactivate();
        })
        .map_err(|e| format!("the control thread did not start: {e}"))?;
        Ok(ControlLink { slot, reports, failure, _control: worker })
    }

    /// Why the robot stopped, if it did.
    pub(crate) fn check_failure(&self) -> Result<(), String> {
        match self.failure.pop() {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }

    /// Reports `why` at the next `check_failure` (a reset that failed
    /// where no error can be returned).
    pub(crate) fn fail_later(&self, why: String) {
        let _ = self.failure.force_push(why);
    }

    /// The control thread's newest state, if one came since the last look.
    pub(crate) fn take_state(&self) -> Option<JointState> {
        self.reports.take_state()
    }

    pub(crate) fn offer(&self, command: JointCommand) {
        self.slot.offer(command);
    }

    /// Protective ticks so far (since the last `take_events`).
    pub(crate) fn protective(&self) -> u64 {
        self.reports.protective()
    }

    pub(crate) fn take_events(&self) -> SafetyEvents {
        self.reports.take_events()
    }

    /// Moves the recorded ticks waiting in the queue to `out`.
    pub(crate) fn take_ticks(&self, out: &mut Vec<GateTick>) {
        let dropped = self.reports.take_ticks(out);
        if dropped > 0 {
            tracing::warn!(dropped, "the safety gate's tick queue was full: {dropped} recorded ticks were lost (the actor took them too late)");
        }
    }

    pub(crate) fn last_intervention(&self) -> Option<(Verdict, JointVec)> {
        self.reports.last_intervention()
    }
}
