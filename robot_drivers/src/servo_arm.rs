//! A serial-servo arm (Dynamixel or Feetech bus) behind the hardware
//! interface, with per-joint calibration from the launch file: ticks at the
//! joint's zero, direction, and ticks per revolution map to radians.
//! configure = open the port and ping every servo; activate = torque on;
//! deactivate = torque off. Each read is one sync read of position,
//! velocity (rad/s) and effort: Dynamixel present current in amperes,
//! Feetech present load as a fraction of rated torque (−1..1).

use std::f64::consts::TAU;
use std::time::Duration;

use rrl_types::config::{Direction, SerialArmConfig, ServoJointConfig, ServoProtocol};
use rrl_types::{CommandMode, JointCommand, JointState, JointVec, Timestamp};

use crate::dynamixel::{self, DynamixelBus};
use crate::feetech::{self, FeetechBus};
use crate::hardware::{check_write, transition, HardwareError, HardwareInterface, Lifecycle};

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

enum Bus {
    Dynamixel(DynamixelBus),
    Feetech(FeetechBus),
}

pub struct ServoArm {
    config: SerialArmConfig,
    names: Vec<String>,
    ids: Vec<u8>,
    calibration: Vec<Calibration>,
    lifecycle: Lifecycle,
    bus: Option<Bus>,
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

    fn set_torque(&mut self, on: bool) -> Result<(), HardwareError> {
        let value = u8::from(on);
        let ids = self.ids.clone();
        let result = match self.bus.as_mut() {
            Some(Bus::Dynamixel(bus)) => bus.sync_write(dynamixel::address::TORQUE_ENABLE, 1, &ids.iter().map(|&id| (id, vec![value])).collect::<Vec<_>>()).map_err(|e| e.to_string()),
            Some(Bus::Feetech(bus)) => bus.sync_write(feetech::address::TORQUE_ENABLE, 1, &ids.iter().map(|&id| (id, vec![value])).collect::<Vec<_>>()).map_err(|e| e.to_string()),
            None => Err("not connected".to_string()),
        };
        result.map_err(|e| self.fail(e))
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
        let timeout = Duration::from_millis(self.config.read_timeout_ms);
        let (port, baud, retries) = (self.config.port.clone(), self.config.baud, self.config.retries);
        let mut bus = match self.config.protocol {
            ServoProtocol::Dynamixel => Bus::Dynamixel(DynamixelBus::open(&port, baud, timeout, retries).map_err(|e| self.device(e))?),
            ServoProtocol::Feetech => Bus::Feetech(FeetechBus::open(&port, baud, timeout, retries).map_err(|e| self.device(e))?),
        };
        for (name, &id) in self.names.iter().zip(&self.ids) {
            let found = match &mut bus {
                Bus::Dynamixel(b) => b.ping(id).map(|_| ()).map_err(|e| e.to_string()),
                Bus::Feetech(b) => b.ping(id).map(|_| ()).map_err(|e| e.to_string()),
            };
            found.map_err(|e| self.device(format!("joint `{name}` (servo {id}) is not on the bus: {e}")))?;
        }
        self.bus = Some(bus);
        transition(&self.config.port, &mut self.lifecycle, "configure")
    }

    fn activate(&mut self) -> Result<(), HardwareError> {
        if self.lifecycle != Lifecycle::Inactive {
            return transition(&self.config.port, &mut self.lifecycle, "activate");
        }
        // Hold the current pose first, so that torque-on does not jump to a stale goal.
        let positions = match self.bus.as_mut() {
            Some(Bus::Dynamixel(bus)) => bus.sync_read(&self.ids, dynamixel::address::PRESENT_POSITION, 4).map_err(|e| e.to_string()),
            Some(Bus::Feetech(bus)) => bus.sync_read(&self.ids, feetech::address::PRESENT_POSITION, 2).map_err(|e| e.to_string()),
            None => Err("not connected".to_string()),
        };
        let positions = positions.map_err(|e| self.fail(e))?;
        let goals: Vec<(u8, Vec<u8>)> = self.ids.iter().copied().zip(positions).collect();
        let written = match self.bus.as_mut() {
            Some(Bus::Dynamixel(bus)) => bus.sync_write(dynamixel::address::GOAL_POSITION, 4, &goals).map_err(|e| e.to_string()),
            Some(Bus::Feetech(bus)) => bus.sync_write(feetech::address::GOAL_POSITION, 2, &goals).map_err(|e| e.to_string()),
            None => Err("not connected".into()),
        };
        written.map_err(|e| self.fail(e))?;
        self.set_torque(true)?;
        transition(&self.config.port, &mut self.lifecycle, "activate")
    }

    fn deactivate(&mut self) -> Result<(), HardwareError> {
        if self.lifecycle == Lifecycle::Active {
            self.set_torque(false)?;
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
        let raw: Result<Vec<(i32, f64, f64)>, String> = match self.bus.as_mut() {
            // Present current (2 bytes, 2.69 mA), velocity (4, 0.229 rpm), position (4), contiguous from 126.
            Some(Bus::Dynamixel(bus)) => bus
                .sync_read(&self.ids, dynamixel::address::PRESENT_CURRENT, 10)
                .map(|answers| {
                    answers
                        .iter()
                        .map(|b| {
                            let current = f64::from(i16::from_le_bytes([b[0], b[1]])) * 2.69e-3;
                            let velocity = f64::from(i32::from_le_bytes([b[2], b[3], b[4], b[5]])) * 0.229 * TAU / 60.0;
                            (i32::from_le_bytes([b[6], b[7], b[8], b[9]]), velocity, current)
                        })
                        .collect()
                })
                .map_err(|e| e.to_string()),
            // Present position (2 bytes), speed (2, ticks/s, sign bit 15), load (2, 0.1 %, sign bit 10), contiguous from 56.
            Some(Bus::Feetech(bus)) => bus
                .sync_read(&self.ids, feetech::address::PRESENT_POSITION, 6)
                .map(|answers| {
                    answers
                        .iter()
                        .map(|b| {
                            let speed_ticks = feetech::from_sign_magnitude(u16::from_le_bytes([b[2], b[3]]), 15);
                            let load = feetech::from_sign_magnitude(u16::from_le_bytes([b[4], b[5]]), 10) * 1e-3;
                            (i32::from(u16::from_le_bytes([b[0], b[1]])), speed_ticks, load)
                        })
                        .collect()
                })
                .map_err(|e| e.to_string()),
            None => Err("not connected".into()),
        };
        let raw = raw.map_err(|e| self.fail(e))?;
        let n = self.ids.len();
        let (mut position, mut velocity, mut effort) = (JointVec::zeros(n), JointVec::zeros(n), JointVec::zeros(n));
        let feetech = matches!(self.bus, Some(Bus::Feetech(_)));
        for (j, &(ticks, speed, load)) in raw.iter().enumerate() {
            let calibration = &self.calibration[j];
            position[j] = calibration.to_radians(ticks);
            // Feetech reports ticks per second; Dynamixel already radians per second.
            velocity[j] = calibration.sign * if feetech { speed * TAU / calibration.ticks_per_revolution } else { speed };
            effort[j] = calibration.sign * load;
        }
        *state = JointState { stamp: now, position, velocity, effort, wrench: None };
        Ok(())
    }

    fn write(&mut self, command: &JointCommand) -> Result<(), HardwareError> {
        check_write(self, command, &[CommandMode::Position])?;
        let goals: Vec<(u8, i32)> = self.ids.iter().enumerate().map(|(j, &id)| (id, self.calibration[j].to_ticks(command.values[j]))).collect();
        let written = match self.bus.as_mut() {
            Some(Bus::Dynamixel(bus)) => bus.sync_write(dynamixel::address::GOAL_POSITION, 4, &goals.iter().map(|(id, t)| (*id, t.to_le_bytes().to_vec())).collect::<Vec<_>>()).map_err(|e| e.to_string()),
            Some(Bus::Feetech(bus)) => bus.sync_write(feetech::address::GOAL_POSITION, 2, &goals.iter().map(|(id, t)| (*id, (*t).clamp(0, 4095).to_le_bytes()[..2].to_vec())).collect::<Vec<_>>()).map_err(|e| e.to_string()),
            None => Err("not connected".into()),
        };
        written.map_err(|e| self.fail(e))
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
