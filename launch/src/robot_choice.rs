//! `--robot` and `--robot-answer-s`: where the commands that step a robot
//! (practice, teleop, eval) find a simulated one; and what those commands
//! share about it.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use ros_edge::task_node::InProcessTaskNode;
use rrl_types::config::{LaunchFile, RobotConfig};
use wiring::robot::{Placement, RobotTask, StartedTask};

#[derive(clap::Args, Debug, Clone)]
pub struct RobotChoice {
    /// The simulated robot: `local` (stepped in this process), `node` (a lockstep task node of this
    /// process, stepped over ROS 2) or `remote` (`rrl sim --lockstep` elsewhere, over ROS 2). A real
    /// arm is reached through its driver.
    #[arg(long = "robot", value_name = "WHERE", default_value = "local")]
    pub placement: Placement,
    /// How long to wait for the simulated robot's node to answer one request before the command
    /// fails (it pauses and warns meanwhile).
    #[arg(long = "robot-answer-s", value_name = "SECONDS", default_value_t = 60.0)]
    pub answer_s: f64,
}

impl RobotChoice {
    pub fn check(&self, launch: &LaunchFile, config: &Path) -> anyhow::Result<()> {
        Ok(self.placement.check(launch, config)?)
    }

    /// The task of `launch`'s robot, where this choice says it runs.
    pub fn start(&self, launch: &LaunchFile, config: &Path, seed: u64) -> anyhow::Result<StartedTask> {
        Ok(RobotTask::start(launch, config, self.placement, Duration::from_secs_f64(self.answer_s.max(0.1)), seed)?)
    }
}

/// The seed of the launch file's simulated robot; 0 for a real one.
pub fn sim_seed(launch: &LaunchFile) -> u64 {
    match &launch.robot {
        RobotConfig::Sim(sim) => sim.seed,
        _ => 0,
    }
}

/// Stops the task node a simulated robot ran as (`--robot node`): its report.
pub fn finish_node(node: Option<InProcessTaskNode>) -> anyhow::Result<Option<serde_json::Value>> {
    node.map(|node| node.finish().context("the simulated robot's task node")).transpose()
}
