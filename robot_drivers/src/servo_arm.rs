//! A serial-servo arm (Dynamixel or Feetech bus) behind the hardware
//! interface, with per-joint calibration from the launch file: ticks at the
//! joint's zero, direction, and ticks per revolution map to radians.
//! configure = open the port and ping every servo; activate = torque on;
//! deactivate = torque off. Each read is one sync read of position,
//! velocity (rad/s) and effort: Dynamixel present current in amperes,
//! Feetech present load as a fraction of rated torque (−1..1).

use std::f64::consts::TAU;

use rrl_types::config::{Direction, SerialArmConfig, ServoJointConfig};
use rrl_types::{CommandMode, JointCommand, JointState, JointVec, Timestamp};

use crate::hardware::{check_write, transition, HardwareError, HardwareInterface, Lifecycle};
use crate::servo_bus::{self, ServoBus, ServoBusError};

/// Ticks <-> radians for one joint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    pub zero_ticks: i32,
    pub sign: f64,
    pub ticks_per_revolution: f64,
}

impl Calibration {
    pub fn from_config(joint: &ServoJointConfig) -> Calibration {
        Calibration {
            zero_ticks: joint.zero_ticks,
            sign: if joint.direction == Direction::Reversed { -1.0 } else { 1.0 },
            ticks_per_revolution: f64::from(joint.ticks_per_revolution),
        }
    }

    pub fn to_radians(&self, ticks: i32) -> f64 {
        self.sign * f64::from(ticks - self.zero_ticks) * TAU / self.ticks_per_revolution
    }

    pub fn to_ticks(&self, radians: f64) -> i32 {
        self.zero_ticks + (self.sign * radians * self.ticks_per_revolution / TAU).round() as i32
    }
}

pub struct ServoArm {
    config: SerialArmConfig,
    names: Vec<String>,
    ids: Vec<u8>,
    calibration: Vec<Calibration>,
    lifecycle: Lifecycle,
    /// Open from configure until recover.
    bus: Option<Box<dyn ServoBus>>,
}

impl ServoArm {
    pub fn new(config: SerialArmConfig) -> ServoArm {
        ServoArm {
            names: config.joints.iter().map(|j| j.name.clone()).collect(),
            ids: config.joints.iter().map(|j| j.id).collect(),
            calibration: config.joints.iter().map(Calibration::from_config).collect(),
            config,
            lifecycle: Lifecycle::Unconfigured,
            bus: None,
        }
    }

    fn device(&self, message: impl std::fmt::Display) -> HardwareError {
        let message = message.to_string();
        // Bus errors already begin with the port; say it once.
        let message = message.strip_prefix(&format!("{}: ", self.config.port)).map(str::to_string).unwrap_or(message);
        HardwareError::Device { robot: self.config.port.clone(), message }
    }

    /// A failure on the wire: the arm goes to the error state (torque stays
    /// as the servos have it; recover and configure again).
    fn fail(&mut self, message: impl std::fmt::Display) -> HardwareError {
        self.lifecycle = Lifecycle::Error;
        self.device(message)
    }

    /// `op` on the open bus with the arm's servo ids; any failure is the arm's.
    fn on_bus<T>(&mut self, op: impl FnOnce(&mut dyn ServoBus, &[u8]) -> Result<T, ServoBusError>) -> Result<T, HardwareError> {
        let result = match self.bus.as_deref_mut() {
            Some(bus) => op(bus, &self.ids).map_err(|e| e.to_string()),
            None => Err("not connected".to_string()),
        };
        result.map_err(|e| self.fail(e))
    }
}

impl ServoArm {
    /// Torque off on every servo, whatever the lifecycle says (a leader
    /// arm that a human moves by hand; a previous session may have left its
    /// torque on). Needs a configured bus.
    pub fn release(&mut self) -> Result<(), HardwareError> {
        self.on_bus(|bus, ids| bus.set_torque(ids, false))
    }
}

impl HardwareInterface for ServoArm {
    fn name(&self) -> &str {
        &self.config.port
    }
    fn joint_names(&self) -> &[String] {
        &self.names
    }
    fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }

    fn configure(&mut self) -> Result<(), HardwareError> {
        if self.lifecycle != Lifecycle::Unconfigured {
            return transition(&self.config.port, &mut self.lifecycle, "configure");
        }
        let mut bus = servo_bus::open(&self.config).map_err(|e| self.device(e))?;
        for (name, &id) in self.names.iter().zip(&self.ids) {
            bus.ping(id).map_err(|e| self.device(format!("joint `{name}` (servo {id}) is not on the bus: {e}")))?;
        }
        self.bus = Some(bus);
        transition(&self.config.port, &mut self.lifecycle, "configure")
    }

    fn activate(&mut self) -> Result<(), HardwareError> {
        if self.lifecycle != Lifecycle::Inactive {
            return transition(&self.config.port, &mut self.lifecycle, "activate");
        }
        self.on_bus(|bus, ids| {
            bus.hold_present_position(ids)?;
            bus.set_torque(ids, true)
        })?;
        transition(&self.config.port, &mut self.lifecycle, "activate")
    }

    fn deactivate(&mut self) -> Result<(), HardwareError> {
        if self.lifecycle == Lifecycle::Active {
            self.on_bus(|bus, ids| bus.set_torque(ids, false))?;
        }
        transition(&self.config.port, &mut self.lifecycle, "deactivate")
    }

    fn recover(&mut self) -> Result<(), HardwareError> {
        self.bus = None;
        transition(&self.config.port, &mut self.lifecycle, "recover")
    }

    fn read(&mut self, now: Timestamp, state: &mut JointState) -> Result<(), HardwareError> {
        if !matches!(self.lifecycle, Lifecycle::Inactive | Lifecycle::Active) {
            return Err(HardwareError::Lifecycle { robot: self.config.port.clone(), operation: "read", state: self.lifecycle });
        }
        // One round trip for every servo's position, velocity and current/load.
        let samples = self.on_bus(|bus, ids| bus.read_present(ids))?;
        let n = self.ids.len();
        let (mut position, mut velocity, mut effort) = (JointVec::zeros(n), JointVec::zeros(n), JointVec::zeros(n));
        for (j, sample) in samples.iter().enumerate() {
            let calibration = &self.calibration[j];
            position[j] = calibration.to_radians(sample.ticks);
            velocity[j] = calibration.sign * sample.velocity.radians_per_second(calibration.ticks_per_revolution);
            effort[j] = calibration.sign * sample.effort;
        }
        *state = JointState { stamp: now, position, velocity, effort, wrench: None };
        Ok(())
    }

    fn write(&mut self, command: &JointCommand) -> Result<(), HardwareError> {
        check_write(self, command, &[CommandMode::Position])?;
        let goals: Vec<(u8, i32)> = self.ids.iter().enumerate().map(|(j, &id)| (id, self.calibration[j].to_ticks(command.values[j]))).collect();
        self.on_bus(|bus, _| bus.write_goal_positions(&goals))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamixel_emulator::DynamixelEmulator;
    use crate::feetech::emulator::FeetechEmulator;
    use crate::pty::PtyPair;
    use crate::{CommandSlot, ControlLoop};
    use safety::Gate;
    use std::time::Duration;

    #[test]
    fn calibration_round_trips_with_offset_and_direction() {
        let c = Calibration { zero_ticks: 2048, sign: -1.0, ticks_per_revolution: 4096.0 };
        assert_eq!(c.to_ticks(0.0), 2048);
        assert_eq!(c.to_ticks(std::f64::consts::FRAC_PI_2), 1024);
        assert!((c.to_radians(1024) - std::f64::consts::FRAC_PI_2).abs() < 1e-12);
    }

    fn so101_config(port: &str, protocol: &str) -> SerialArmConfig {
        ron::from_str(&format!(
            "(port: \"{port}\", protocol: {protocol}, read_timeout_ms: 30, joints: [(name: \"shoulder_pan\", id: 1), (name: \"shoulder_lift\", id: 2, direction: Reversed), (name: \"elbow_flex\", id: 3, zero_ticks: 2000)])"
        ))
        .unwrap()
    }

    fn drive(arm: ServoArm, goal: [f64; 3]) -> ServoArm {
        let names = arm.joint_names().to_vec();
        let safety: rrl_types::config::SafetyConfig = ron::from_str("(joints: [(name: \"shoulder_pan\", velocity: Some(2.0))], command_timeout_ms: 200, state_timeout_ms: 200)").unwrap();
        let gate = Gate::build(&safety, &names, 50.0).unwrap();
        let slot = CommandSlot::new();
        let mut control = ControlLoop::new(arm, gate, slot.clone());
        let start = std::time::Instant::now();
        let mut states = Vec::new();
        for _ in 0..60 {
            let now = Timestamp(1_000_000_000 + start.elapsed().as_nanos() as u64);
            slot.offer(JointCommand { stamp: now, mode: CommandMode::Position, values: JointVec::from_slice(&goal).unwrap() });
            control.tick(now).unwrap();
            states.push(*control.state());
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut state = JointState::default();
        let mut arm = control.into_hardware();
        arm.read(Timestamp(1), &mut state).unwrap();
        let first = states.iter().find(|s| s.position.len() == 3).expect("a state was read").position;
        for j in 0..3 {
            assert!((state.position[j] - goal[j]).abs() < 0.01, "joint {j}: {} vs {}", state.position[j], goal[j]);
            // On the way, velocity and effort point toward the goal (in joint
            // coordinates, whatever the servo's direction); at rest both vanish.
            let toward = (goal[j] - first[j]).signum();
            assert!(states.iter().any(|s| s.velocity.len() == 3 && s.velocity[j] * toward > 0.05), "joint {j}: no velocity toward the goal");
            assert!(states.iter().all(|s| s.velocity.len() < 3 || s.velocity[j] * toward > -0.05), "joint {j}: velocity away from the goal");
            assert!(states.iter().any(|s| s.effort.len() == 3 && s.effort[j] * toward > 0.0), "joint {j}: no effort toward the goal");
            assert!(state.velocity[j].abs() < 0.05 && state.effort[j].abs() < 0.05, "joint {j} at rest: {:?} {:?}", state.velocity, state.effort);
        }
        arm
    }

    #[test]
    fn an_emulated_dynamixel_arm_follows_gated_commands_in_radians() {
        let pair = PtyPair::spawn().unwrap();
        let _emulator = DynamixelEmulator::spawn(pair.b(), 1_000_000, &[1, 2, 3]).unwrap();
        let mut arm = ServoArm::new(so101_config(pair.a(), "Dynamixel"));
        arm.configure().unwrap();
        arm.activate().unwrap();
        let mut arm = drive(arm, [0.3, -0.2, 0.1]);
        arm.deactivate().unwrap();
    }

    #[test]
    fn an_emulated_feetech_so101_follows_gated_commands_and_a_lost_servo_is_an_error() {
        let pair = PtyPair::spawn().unwrap();
        let emulator = FeetechEmulator::spawn(pair.b(), 1_000_000, &[1, 2, 3]).unwrap();
        let mut arm = ServoArm::new(so101_config(pair.a(), "Feetech"));
        arm.configure().unwrap();
        arm.activate().unwrap();
        let mut arm = drive(arm, [0.2, 0.15, -0.1]);
        emulator.faults().unplugged.store(true, std::sync::atomic::Ordering::Relaxed);
        let err = arm.read(Timestamp(5), &mut JointState::default()).unwrap_err();
        assert!(err.to_string().contains(pair.a()) && arm.lifecycle() == Lifecycle::Error, "{err}");
        emulator.faults().unplugged.store(false, std::sync::atomic::Ordering::Relaxed);
        arm.recover().unwrap();
        arm.configure().unwrap();
    }

    #[test]
    fn a_servo_missing_from_the_bus_is_named_at_configure() {
        let pair = PtyPair::spawn().unwrap();
        let _emulator = FeetechEmulator::spawn(pair.b(), 1_000_000, &[1, 2]).unwrap();
        let mut arm = ServoArm::new(so101_config(pair.a(), "Feetech"));
        let err = arm.configure().unwrap_err().to_string();
        assert!(err.contains("joint `elbow_flex` (servo 3) is not on the bus"), "{err}");
    }
}
