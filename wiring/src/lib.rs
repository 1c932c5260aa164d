//! Wiring: a launch file in, live parts out — the job ros2_control's
//! resource manager does for a robot. The commands that practise, teleop
//! and evaluate build their parts here, so each part has one builder (the
//! robot nodes of `rrl sim` and `rrl driver` pick their hardware in their
//! command and take the gate from the same `safety::Gate::build`):
//! - the gate (`safety::Gate::build`, always with the configured risk
//!   critic), inside every robot task below;
//! - the robot and its practice task (`robot`): the simulated Panda or
//!   the car twin in process or as a lockstep ROS 2 node, a real arm's
//!   task — the launch file's `task` section, the reach by default — over
//!   its driver (`arm_task`), or a real car racing the launch file's
//!   `course` over its topics (`car_task`); a real robot's control thread
//!   and the task's link to it (`control_link`);
//! - the leader arm a human moves, as an operator the follower tracks
//!   (`leader`);
//! - the learner settings (`learner`);
//! - the reward source (`practice_env`: the task's own reward, a VLM
//!   critic scoring a real camera or a rendered one, or a success
//!   classifier on the policy's frames, `classifier_reward`).
//!
//! Relative paths were resolved once, when the launch file was parsed.
//!
//! Must never run a workflow (practice, teleop, evaluation loops live in
//! `policies` and the commands in `launch`), and never speaks DDS itself:
//! it starts `ros_edge`'s nodes and clients.

use std::path::{Path, PathBuf};

pub mod arm_task;
pub mod car_task;
pub mod classifier_reward;
mod control_link;
pub mod leader;
pub mod learner;
mod policy_cameras;
pub mod practice_env;
pub mod robot;

/// Why parts could not be built from a launch file.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    /// The launch file asks for something its robot or this command cannot do.
    #[error("{}: {message}", file.display())]
    Launch { file: PathBuf, message: String },
    #[error("{}: safety section: {source}", file.display())]
    Safety { file: PathBuf, source: safety::SafetyError },
    #[error("{}: starting the arm: {source}", file.display())]
    Arm { file: PathBuf, source: arm_task::ArmTaskError },
    #[error("{}: starting the car: {source}", file.display())]
    Car { file: PathBuf, source: car_task::CarTaskError },
    #[error(transparent)]
    Sim(#[from] sim_bridge::SimError),
    #[error(transparent)]
    Leader(#[from] leader::LeaderError),
    #[error(transparent)]
    RemoteTask(#[from] ros_edge::task_node::RemoteTaskError),
    #[error(transparent)]
    Edge(#[from] ros_edge::EdgeError),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("{0}")]
    Reward(String),
}

impl WiringError {
    pub(crate) fn launch(file: &Path, message: impl Into<String>) -> WiringError {
        WiringError::Launch { file: file.to_path_buf(), message: message.into() }
    }

    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> WiringError {
        let what = what.into();
        move |source| WiringError::Io { what, source }
    }
}
