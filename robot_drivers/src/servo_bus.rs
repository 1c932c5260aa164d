//! The operations a serial-servo arm needs of its bus, whatever the
//! protocol: ping, torque, hold, read the present state, write goals.
//! Dynamixel and Feetech buses implement them; `open` is the one place a
//! launch file's protocol picks the implementation.

use std::f64::consts::TAU;
use std::time::Duration;

use rrl_types::config::{SerialArmConfig, ServoProtocol};

use crate::dynamixel::{DynamixelBus, DynamixelError};
use crate::feetech::{FeetechBus, FeetechError};
use crate::serial::SerialError;

/// A failure on a servo bus, as its protocol reports it (the port first).
#[derive(Debug, thiserror::Error)]
pub enum ServoBusError {
    #[error(transparent)]
    Dynamixel(#[from] DynamixelError),
    #[error(transparent)]
    Feetech(#[from] FeetechError),
}

/// A servo's velocity in the unit its protocol reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ServoVelocity {
    RadiansPerSecond(f64),
    /// Turned into radians with the joint's calibration.
    TicksPerSecond(f64),
}

impl ServoVelocity {
    /// At the servo's horn, before the joint's direction.
    pub fn radians_per_second(self, ticks_per_revolution: f64) -> f64 {
        match self {
            ServoVelocity::RadiansPerSecond(v) => v,
            ServoVelocity::TicksPerSecond(v) => v * TAU / ticks_per_revolution,
        }
    }
}

/// One servo's present state, as read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServoSample {
    pub ticks: i32,
    pub velocity: ServoVelocity,
    /// Dynamixel: present current in amperes; Feetech: present load as a
    /// fraction of rated torque (−1..1).
    pub effort: f64,
}

/// A chain of servos on one serial port. Each call is one round trip (or
/// one broadcast) for all the servos named.
pub trait ServoBus: Send {
    /// The servo's model number; an error if it does not answer.
    fn ping(&mut self, id: u8) -> Result<u16, ServoBusError>;
    fn set_torque(&mut self, ids: &[u8], on: bool) -> Result<(), ServoBusError>;
    /// Goal := present position, so that torque-on holds the pose instead
    /// of jumping to a stale goal.
    fn hold_present_position(&mut self, ids: &[u8]) -> Result<(), ServoBusError>;
    /// Position, velocity and effort of each servo, in the order of `ids`.
    fn read_present(&mut self, ids: &[u8]) -> Result<Vec<ServoSample>, ServoBusError>;
    /// Goal positions in ticks, (id, ticks) for each servo.
    fn write_goal_positions(&mut self, goals: &[(u8, i32)]) -> Result<(), ServoBusError>;
}

/// Opens the bus `config` names, speaking its protocol.
pub fn open(config: &SerialArmConfig) -> Result<Box<dyn ServoBus>, SerialError> {
    let timeout = Duration::from_millis(config.read_timeout_ms);
    let (port, baud, retries) = (config.port.as_str(), config.baud, config.retries);
    Ok(match config.protocol {
        ServoProtocol::Dynamixel => Box::new(DynamixelBus::open(port, baud, timeout, retries)?),
        ServoProtocol::Feetech => Box::new(FeetechBus::open(port, baud, timeout, retries)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_per_second_become_radians_with_the_joints_resolution() {
        assert_eq!(ServoVelocity::RadiansPerSecond(1.5).radians_per_second(4096.0), 1.5);
        assert!((ServoVelocity::TicksPerSecond(1024.0).radians_per_second(4096.0) - TAU / 4.0).abs() < 1e-12);
    }
}
