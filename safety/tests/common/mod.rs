//! A gate on a simulated 7-joint Panda at 1 kHz, shared by the test files.
#![allow(dead_code)]

use rrl_types::config::{RobotPreset, SafetyConfig};
use rrl_types::{CommandMode, JointCommand, JointState, JointVec, Timestamp};
use safety::Gate;

pub const TICK_NS: u64 = 1_000_000;

pub fn panda_safety() -> SafetyConfig {
    ron::from_str::<SafetyConfig>("(preset: Some(FrankaPanda), command_timeout_ms: 20, state_timeout_ms: 20, max_torque_nm: Some(80.0))").unwrap()
}

pub fn panda_gate() -> Gate {
    let names: Vec<String> = RobotPreset::FrankaPanda.joint_names().iter().map(|s| s.to_string()).collect();
    Gate::build(&panda_safety(), &names, 1000.0).unwrap()
}

/// The Panda gate plus a workspace box on the hand's fingertip point and
/// an external-force threshold; the step limit is 1 mm per 1 ms tick.
pub fn panda_workspace_gate() -> Gate {
    let safety = ron::from_str::<SafetyConfig>(
        "(preset: Some(FrankaPanda), command_timeout_ms: 20, state_timeout_ms: 20, max_force_n: Some(30.0),
          workspace: Some((min: (0.2, -0.3, 0.3), max: (0.7, 0.3, 0.8), max_step_m: 0.002, max_speed_mps: 1.0, tool_offset_m: (0.0, 0.0, 0.1034))))",
    )
    .unwrap();
    let names: Vec<String> = RobotPreset::FrankaPanda.joint_names().iter().map(|s| s.to_string()).collect();
    Gate::build(&safety, &names, 1000.0).unwrap()
}

pub fn home_state(stamp: u64) -> JointState {
    let mut s = JointState::zeros(7);
    s.position = JointVec::from_slice(&[0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]).unwrap();
    s.stamp = Timestamp(stamp);
    s
}

pub fn position_command(values: &[f64], stamp: u64) -> JointCommand {
    JointCommand { stamp: Timestamp(stamp), mode: CommandMode::Position, values: JointVec::from_slice(values).unwrap() }
}
