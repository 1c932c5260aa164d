//! A leader arm: a second servo bus that a human moves by hand (torque
//! off), read at its rate on a thread of its own because serial I/O
//! blocks. The newest reading waits in a single slot for whoever follows
//! it. A bus that stops answering is reopened until it answers again;
//! meanwhile the reading ages, and the follower's side decides what a
//! stale leader means.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::queue::ArrayQueue;
use rrl_types::config::SerialArmConfig;
use rrl_types::{JointState, JointVec, MonotonicClock, Timestamp};

use crate::hardware::{HardwareError, HardwareInterface};
use crate::pacing::Pacer;
use crate::servo_arm::ServoArm;
use crate::worker::{stopping, Worker};

/// How often a leader bus that stopped answering is reopened.
const REOPEN_EVERY: Duration = Duration::from_millis(500);

/// One reading of the leader's joints, in its bus's joint order.
#[derive(Debug, Clone, Copy)]
pub struct LeaderReading {
    pub read_at: Instant,
    pub positions: JointVec,
}

pub struct LeaderArm {
    port: String,
    joint_names: Vec<String>,
    newest: Arc<ArrayQueue<LeaderReading>>,
    last: Option<LeaderReading>,
    _reader: Worker,
}

impl LeaderArm {
    /// Opens the leader's bus, finds every servo on it, switches their
    /// torque off and reads it once (so a reading is there from the start);
    /// then reads it at `bus.control_rate_hz` until dropped.
    pub fn start(bus: SerialArmConfig) -> Result<LeaderArm, HardwareError> {
        let port = bus.port.clone();
        let period = Duration::from_secs_f64(1.0 / bus.control_rate_hz);
        let mut arm = ServoArm::new(bus);
        arm.configure()?;
        arm.release()?;
        let joint_names = arm.joint_names().to_vec();
        let mut state = JointState::zeros(0);
        arm.read(Timestamp(0), &mut state)?;
        let newest = Arc::new(ArrayQueue::new(1));
        let _ = newest.force_push(LeaderReading { read_at: Instant::now(), positions: state.position });
        let slot = newest.clone();
        let reader_port = port.clone();
        let reader = Worker::spawn("leader-arm", move |stop| {
            let mut pacer = Pacer::new(period, MonotonicClock);
            let mut silent_since: Option<Instant> = None;
            let mut last_reopen = Instant::now();
            while !stopping(stop) {
                if silent_since.is_some() && last_reopen.elapsed() >= REOPEN_EVERY {
                    last_reopen = Instant::now();
                    let _ = arm.recover();
                    if arm.configure().and_then(|()| arm.release()).is_ok() {
                        tracing::warn!(port = %reader_port, silent_s = silent_since.map_or(0.0, |t| t.elapsed().as_secs_f64()), "the leader arm answers again");
                        silent_since = None;
                    }
                }
                if silent_since.is_none() {
                    match arm.read(Timestamp(0), &mut state) {
                        Ok(()) => {
                            let _ = slot.force_push(LeaderReading { read_at: Instant::now(), positions: state.position });
                        }
                        Err(e) => {
                            tracing::warn!(port = %reader_port, "the leader arm stopped answering ({e}); reopening its bus every {} ms", REOPEN_EVERY.as_millis());
                            silent_since = Some(Instant::now());
                            last_reopen = Instant::now();
                        }
                    }
                }
                pacer.wait();
            }
        })
        .map_err(|e| HardwareError::Device { robot: port.clone(), message: format!("the leader's reader thread did not start: {e}") })?;
        Ok(LeaderArm { port, joint_names, newest, last: None, _reader: reader })
    }

    pub fn port(&self) -> &str {
        &self.port
    }

    /// The leader's joints, in its bus's order (each names the follower joint it drives).
    pub fn joint_names(&self) -> &[String] {
        &self.joint_names
    }

    /// The newest reading so far (its `read_at` says how old it is).
    pub fn newest(&mut self) -> Option<&LeaderReading> {
        if let Some(reading) = self.newest.pop() {
            self.last = Some(reading);
        }
        self.last.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feetech::emulator::FeetechEmulator;
    use crate::pty::PtyPair;
    use std::sync::atomic::Ordering;

    fn leader_bus(port: &str) -> SerialArmConfig {
        ron::from_str(&format!("(port: \"{port}\", protocol: Feetech, read_timeout_ms: 30, control_rate_hz: 100.0, joints: [(name: \"pan\", id: 1), (name: \"lift\", id: 2, direction: Reversed)])")).unwrap()
    }

    /// Waits (at most 10 s) for a reading newer than `after` that satisfies `want`.
    fn wait_for(leader: &mut LeaderArm, after: Instant, want: impl Fn(&LeaderReading) -> bool) -> LeaderReading {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(reading) = leader.newest().filter(|r| r.read_at > after && want(r)) {
                return *reading;
            }
            assert!(Instant::now() < deadline, "no such leader reading within 10 s; newest: {:?}", leader.newest());
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_leader_moved_by_hand_reads_in_radians_and_one_that_stops_answering_ages_until_it_is_back() {
        let pair = PtyPair::spawn().unwrap();
        let emulator = FeetechEmulator::spawn(pair.b(), 1_000_000, &[1, 2]).unwrap();
        let mut leader = LeaderArm::start(leader_bus(pair.a())).unwrap();
        assert_eq!(leader.joint_names(), ["pan", "lift"]);
        // A quarter turn on servo 1 is +π/2; servo 2 turns the other way.
        emulator.move_by_hand(1, 3072.0);
        emulator.move_by_hand(2, 3072.0);
        let moved = wait_for(&mut leader, Instant::now(), |r| (r.positions[0] - std::f64::consts::FRAC_PI_2).abs() < 0.01);
        assert!((moved.positions[1] + std::f64::consts::FRAC_PI_2).abs() < 0.05, "servo 2 reads {} rad", moved.positions[1]);

        emulator.faults().unplugged.store(true, Ordering::Relaxed);
        // No reading comes from an unplugged leader: the newest one ages.
        let deadline = Instant::now() + Duration::from_secs(10);
        while leader.newest().unwrap().read_at.elapsed() < Duration::from_millis(200) {
            assert!(Instant::now() < deadline, "an unplugged leader still delivers readings");
            std::thread::sleep(Duration::from_millis(5));
        }
        emulator.move_by_hand(1, 2048.0);
        emulator.faults().unplugged.store(false, Ordering::Relaxed);
        // The reader reopens the bus and reads where the hand left the arm.
        wait_for(&mut leader, Instant::now(), |r| r.positions[0].abs() < 0.01);
    }
}
