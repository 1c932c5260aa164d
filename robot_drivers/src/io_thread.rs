//! A robot whose bus I/O runs on a thread of its own, paced at the control
//! rate, so that the control loop's tick only swaps the newest state in and
//! the newest command out: no blocking I/O, no allocation and no lock on
//! the control thread, whatever the bus does (serial-servo arms).
//!
//! Lifecycle calls (configure, activate, deactivate, recover) are handed to
//! the I/O thread and waited for: they are not on the hot path. A failed
//! read or write on the I/O thread reaches the control loop as the error
//! of its next `read`, and the robot is in the error state until recovered.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam::channel::{Receiver, Sender};
use crossbeam::queue::ArrayQueue;
use rrl_types::{Clock, CommandMode, JointCommand, JointState, MonotonicClock, SystemClock, Timestamp};

use crate::hardware::{check_write, HardwareError, HardwareInterface, Lifecycle};
use crate::pacing::Pacer;
use crate::worker::{stopping, Worker};

#[derive(Debug, Clone, Copy)]
enum LifecycleOp {
    Configure,
    Activate,
    Deactivate,
    Recover,
}

fn encode(state: Lifecycle) -> u8 {
    match state {
        Lifecycle::Unconfigured => 0,
        Lifecycle::Inactive => 1,
        Lifecycle::Active => 2,
        Lifecycle::Error => 3,
    }
}

fn decode(code: u8) -> Lifecycle {
    match code {
        0 => Lifecycle::Unconfigured,
        1 => Lifecycle::Inactive,
        2 => Lifecycle::Active,
        _ => Lifecycle::Error,
    }
}

pub struct IoThread {
    name: String,
    joints: Vec<String>,
    native_mode: CommandMode,
    lifecycle: Arc<AtomicU8>,
    newest_state: Arc<ArrayQueue<JointState>>,
    outgoing: Arc<ArrayQueue<JointCommand>>,
    failures: Arc<ArrayQueue<HardwareError>>,
    requests: Sender<LifecycleOp>,
    replies: Receiver<Result<(), HardwareError>>,
    last_state: JointState,
    _worker: Worker,
}

impl IoThread {
    /// Moves `hardware` onto its own thread, which reads and writes it every
    /// `1 / rate_hz` seconds while it is configured.
    pub fn spawn<H: HardwareInterface + 'static>(mut hardware: H, rate_hz: f64) -> IoThread {
        let (name, joints, native_mode) = (hardware.name().to_string(), hardware.joint_names().to_vec(), hardware.native_mode());
        let lifecycle = Arc::new(AtomicU8::new(encode(hardware.lifecycle())));
        let newest_state = Arc::new(ArrayQueue::new(1));
        let outgoing = Arc::new(ArrayQueue::<JointCommand>::new(1));
        let failures = Arc::new(ArrayQueue::new(1));
        let (requests, inbox) = crossbeam::channel::unbounded::<LifecycleOp>();
        let (answer, replies) = crossbeam::channel::unbounded();
        let period = Duration::from_secs_f64(1.0 / rate_hz.max(1.0));
        let (t_lifecycle, t_state, t_outgoing, t_failures) = (lifecycle.clone(), newest_state.clone(), outgoing.clone(), failures.clone());
        let worker = Worker::spawn(&format!("io-{name}"), move |stop| {
                let mut state = JointState::default();
                let mut pacer = Pacer::new(period, MonotonicClock);
                while !stopping(stop) {
                    while let Ok(op) = inbox.try_recv() {
                        let result = match op {
                            LifecycleOp::Configure => hardware.configure(),
                            LifecycleOp::Activate => hardware.activate(),
                            LifecycleOp::Deactivate => hardware.deactivate(),
                            LifecycleOp::Recover => hardware.recover(),
                        };
                        t_lifecycle.store(encode(hardware.lifecycle()), Ordering::Release);
                        if answer.send(result).is_err() {
                            return;
                        }
                    }
                    if matches!(hardware.lifecycle(), Lifecycle::Inactive | Lifecycle::Active) {
                        let io = (|| -> Result<(), HardwareError> {
                            hardware.read(SystemClock.now(), &mut state)?;
                            let _ = t_state.force_push(state);
                            if let Some(command) = t_outgoing.pop() {
                                if hardware.lifecycle() == Lifecycle::Active {
                                    hardware.write(&command)?;
                                }
                            }
                            Ok(())
                        })();
                        if let Err(error) = io {
                            let _ = t_failures.force_push(error);
                        }
                        t_lifecycle.store(encode(hardware.lifecycle()), Ordering::Release);
                    }
                    // A slow bus re-anchors the pace rather than bursting to catch up.
                    pacer.wait();
                }
            })
            .expect("spawn the robot's I/O thread");
        IoThread { name, joints, native_mode, lifecycle, newest_state, outgoing, failures, requests, replies, last_state: JointState::default(), _worker: worker }
    }

    fn lifecycle_op(&mut self, op: LifecycleOp) -> Result<(), HardwareError> {
        let gone = || HardwareError::Device { robot: self.name.clone(), message: "the I/O thread has stopped".into() };
        self.requests.send(op).map_err(|_| gone())?;
        let result = self.replies.recv().map_err(|_| gone())?;
        if result.is_ok() {
            // Errors from before this transition are history.
            while self.failures.pop().is_some() {}
            self.last_state = JointState::default();
        }
        result
    }
}

impl HardwareInterface for IoThread {
    fn name(&self) -> &str {
        &self.name
    }
    fn joint_names(&self) -> &[String] {
        &self.joints
    }
    fn lifecycle(&self) -> Lifecycle {
        decode(self.lifecycle.load(Ordering::Acquire))
    }
    fn configure(&mut self) -> Result<(), HardwareError> {
        self.lifecycle_op(LifecycleOp::Configure)
    }
    fn activate(&mut self) -> Result<(), HardwareError> {
        self.lifecycle_op(LifecycleOp::Activate)
    }
    fn deactivate(&mut self) -> Result<(), HardwareError> {
        self.lifecycle_op(LifecycleOp::Deactivate)
    }
    fn recover(&mut self) -> Result<(), HardwareError> {
        self.lifecycle_op(LifecycleOp::Recover)
    }
    /// The newest state the I/O thread read (the same again, growing stale,
    /// while it reads nothing new), or the error it ran into.
    fn read(&mut self, _now: Timestamp, state: &mut JointState) -> Result<(), HardwareError> {
        if let Some(error) = self.failures.pop() {
            return Err(error);
        }
        if let Some(newest) = self.newest_state.pop() {
            self.last_state = newest;
        }
        if self.last_state.position.is_empty() {
            // Nothing read yet: an empty state, which the gate holds on.
            *state = JointState::zeros(0);
        } else {
            *state = self.last_state;
        }
        Ok(())
    }
    fn write(&mut self, command: &JointCommand) -> Result<(), HardwareError> {
        let supported: &'static [CommandMode] = match self.native_mode {
            CommandMode::Position => &[CommandMode::Position],
            CommandMode::Velocity => &[CommandMode::Velocity],
            CommandMode::Effort => &[CommandMode::Effort],
        };
        check_write(self, command, supported)?;
        let _ = self.outgoing.force_push(*command);
        Ok(())
    }
    fn native_mode(&self) -> CommandMode {
        self.native_mode
    }
}
