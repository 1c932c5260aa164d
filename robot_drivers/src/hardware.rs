//! The hardware interface, after ros2_control's hardware components: an
//! explicit lifecycle (configure → activate → read/write each tick →
//! deactivate, plus an error state), per-joint state and command values, and
//! a hardware-free mock that mirrors commands into states.

use rrl_types::{CommandMode, JointCommand, JointState, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Unconfigured,
    /// Configured: connected, torque off, may be read.
    Inactive,
    /// Accepting commands.
    Active,
    /// A fault; `recover` returns to `Unconfigured`.
    Error,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HardwareError {
    #[error("{robot}: `{operation}` is not allowed while {state:?}")]
    Lifecycle { robot: String, operation: &'static str, state: Lifecycle },
    #[error("{robot}: command for {got} joints, the robot has {expected}")]
    CommandSize { robot: String, expected: usize, got: usize },
    #[error("{robot}: {mode:?} commands are not supported (supported: {supported:?})")]
    UnsupportedMode { robot: String, mode: CommandMode, supported: &'static [CommandMode] },
    #[error("{robot}: {message}")]
    Device { robot: String, message: String },
}

/// One robot (or simulated robot) as the control loop sees it.
pub trait HardwareInterface: Send {
    fn name(&self) -> &str;
    fn joint_names(&self) -> &[String];
    fn lifecycle(&self) -> Lifecycle;
    fn configure(&mut self) -> Result<(), HardwareError>;
    fn activate(&mut self) -> Result<(), HardwareError>;
    fn deactivate(&mut self) -> Result<(), HardwareError>;
    /// Leaves the error state for `Unconfigured`.
    fn recover(&mut self) -> Result<(), HardwareError>;
    /// The newest measured state, stamped with when it was measured.
    fn read(&mut self, now: Timestamp, state: &mut JointState) -> Result<(), HardwareError>;
    /// Sends a command (only while active).
    fn write(&mut self, command: &JointCommand) -> Result<(), HardwareError>;
    /// The command mode this robot is driven in; holds before any command
    /// are sent in it (a velocity-driven car holds at zero velocity).
    fn native_mode(&self) -> CommandMode {
        CommandMode::Position
    }
}

/// Checks shared by implementations: right lifecycle state, right size.
pub fn check_write(hw: &dyn HardwareInterface, command: &JointCommand, supported: &'static [CommandMode]) -> Result<(), HardwareError> {
    if hw.lifecycle() != Lifecycle::Active {
        return Err(HardwareError::Lifecycle { robot: hw.name().to_string(), operation: "write", state: hw.lifecycle() });
    }
    if command.values.len() != hw.joint_names().len() {
        return Err(HardwareError::CommandSize { robot: hw.name().to_string(), expected: hw.joint_names().len(), got: command.values.len() });
    }
    if !supported.contains(&command.mode) {
        return Err(HardwareError::UnsupportedMode { robot: hw.name().to_string(), mode: command.mode, supported });
    }
    Ok(())
}

/// The lifecycle transitions every implementation shares.
pub fn transition(name: &str, state: &mut Lifecycle, operation: &'static str) -> Result<(), HardwareError> {
    let next = match (operation, *state) {
        ("configure", Lifecycle::Unconfigured) => Lifecycle::Inactive,
        ("activate", Lifecycle::Inactive) => Lifecycle::Active,
        ("deactivate", Lifecycle::Active) => Lifecycle::Inactive,
        ("recover", Lifecycle::Error) => Lifecycle::Unconfigured,
        _ => return Err(HardwareError::Lifecycle { robot: name.to_string(), operation, state: *state }),
    };
    *state = next;
    Ok(())
}

/// A robot without hardware: position commands become the measured
/// positions (velocity from the difference), as ros2_control's mock system.
pub struct MockHardware {
    name: String,
    joints: Vec<String>,
    lifecycle: Lifecycle,
    state: JointState,
    last_write: Option<Timestamp>,
}

impl MockHardware {
    pub fn new(name: &str, joints: &[&str]) -> MockHardware {
        MockHardware {
            name: name.to_string(),
            joints: joints.iter().map(|s| s.to_string()).collect(),
            lifecycle: Lifecycle::Unconfigured,
            state: JointState::zeros(joints.len()),
            last_write: None,
        }
    }
}

impl HardwareInterface for MockHardware {
    fn name(&self) -> &str {
        &self.name
    }
    fn joint_names(&self) -> &[String] {
        &self.joints
    }
    fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }
    fn configure(&mut self) -> Result<(), HardwareError> {
        transition(&self.name, &mut self.lifecycle, "configure")
    }
    fn activate(&mut self) -> Result<(), HardwareError> {
        transition(&self.name, &mut self.lifecycle, "activate")
    }
    fn deactivate(&mut self) -> Result<(), HardwareError> {
        transition(&self.name, &mut self.lifecycle, "deactivate")
    }
    fn recover(&mut self) -> Result<(), HardwareError> {
        transition(&self.name, &mut self.lifecycle, "recover")
    }
    fn read(&mut self, now: Timestamp, state: &mut JointState) -> Result<(), HardwareError> {
        if self.lifecycle == Lifecycle::Unconfigured || self.lifecycle == Lifecycle::Error {
            return Err(HardwareError::Lifecycle { robot: self.name.clone(), operation: "read", state: self.lifecycle });
        }
        self.state.stamp = now;
        *state = self.state;
        Ok(())
    }
    fn write(&mut self, command: &JointCommand) -> Result<(), HardwareError> {
        check_write(self, command, &[CommandMode::Position])?;
        let dt = self.last_write.map(|t| command.stamp.nanos_since(t) as f64 * 1e-9).filter(|dt| *dt > 0.0);
        for j in 0..self.joints.len() {
            if let Some(dt) = dt {
                self.state.velocity[j] = (command.values[j] - self.state.position[j]) / dt;
            }
            self.state.position[j] = command.values[j];
        }
        self.last_write = Some(command.stamp);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rrl_types::JointVec;

    #[test]
    fn lifecycle_allows_only_the_documented_transitions() {
        let mut hw = MockHardware::new("mock", &["a", "b"]);
        let cmd = JointCommand { stamp: Timestamp(1), mode: CommandMode::Position, values: JointVec::from_slice(&[0.1, 0.2]).unwrap() };
        assert!(matches!(hw.write(&cmd), Err(HardwareError::Lifecycle { operation: "write", state: Lifecycle::Unconfigured, .. })));
        assert!(hw.activate().is_err(), "activate before configure");
        hw.configure().unwrap();
        assert!(hw.write(&cmd).is_err(), "write while inactive");
        hw.activate().unwrap();
        hw.write(&cmd).unwrap();
        hw.deactivate().unwrap();
        assert_eq!(hw.lifecycle(), Lifecycle::Inactive);
        assert!(hw.recover().is_err(), "recover outside the error state");
    }

    #[test]
    fn mock_mirrors_position_commands_into_state() {
        let mut hw = MockHardware::new("mock", &["a", "b"]);
        hw.configure().unwrap();
        hw.activate().unwrap();
        for (t, x) in [(0u64, 0.0), (10_000_000, 0.1)] {
            let cmd = JointCommand { stamp: Timestamp(t), mode: CommandMode::Position, values: JointVec::from_slice(&[x, -x]).unwrap() };
            hw.write(&cmd).unwrap();
        }
        let mut state = JointState::default();
        hw.read(Timestamp(20_000_000), &mut state).unwrap();
        assert_eq!(state.position.as_slice(), &[0.1, -0.1]);
        assert!((state.velocity[0] - 10.0).abs() < 1e-9);
        assert_eq!(state.stamp, Timestamp(20_000_000));
        let wrong = JointCommand { stamp: Timestamp(3), mode: CommandMode::Position, values: JointVec::zeros(3) };
        assert!(matches!(hw.write(&wrong), Err(HardwareError::CommandSize { expected: 2, got: 3, .. })));
    }
}
