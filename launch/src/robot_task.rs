//! The launch file's robot as the task that `rrl teleop` and `rrl eval`
//! step: the simulated Panda in this process, the simulated Panda as a
//! lockstep ROS 2 node (of this process, or `rrl sim --lockstep`
//! elsewhere), or a real arm's reach task over its driver.

use std::path::Path;

use anyhow::{bail, Context};
use rrl_types::config::{LaunchFile, RobotConfig};
use rrl_types::{Environment, FrameLayout, PracticeTask, Step};
use sim_bridge::panda::PandaTask;
use sim_bridge::SimError;

use crate::arm_reach::{ArmReach, ArmTaskError};
use ros_edge::task_node::{InProcessTaskNode, RemoteTask, RemoteTaskError};

/// Where a simulated robot runs, for the commands that step one
/// (`--robot`, `--robot-answer-s`).
#[derive(clap::Args, Debug, Clone)]
pub struct RobotChoice {
    /// The simulated robot: `local` (stepped in this process), `node` (a lockstep task node of this
    /// process, stepped over ROS 2) or `remote` (`rrl sim --lockstep` elsewhere, over ROS 2). A real
    /// arm is reached through its driver.
    #[arg(long = "robot", value_name = "WHERE", default_value = "local")]
    pub runs: String,
    /// How long to wait for the simulated robot's node to answer one request before the command
    /// fails (it pauses and warns meanwhile).
    #[arg(long = "robot-answer-s", value_name = "SECONDS", default_value_t = 60.0)]
    pub answer_s: f64,
}

impl RobotChoice {
    pub fn is_local(&self) -> bool {
        self.runs == "local"
    }

    /// Refuses a choice `launch`'s robot cannot take: an unknown one, or
    /// a node for a robot that is not simulated.
    pub fn check(&self, launch: &LaunchFile, config: &Path) -> anyhow::Result<()> {
        match (&launch.robot, self.runs.as_str()) {
            (_, "local") | (RobotConfig::Sim(_), "node" | "remote") => Ok(()),
            (RobotConfig::Sim(_), other) => bail!("unknown robot `{other}`: use local, node or remote"),
            (_, other) => bail!("{}: --robot {other} steps a simulated robot over ROS 2; a {} robot is reached through its driver already (leave --robot out)", config.display(), launch.robot.kind_name()),
        }
    }
}

pub enum RobotTask {
    Sim(PandaTask),
    /// Stepped over ROS 2.
    SimNode(RemoteTask),
    Arm(ArmReach),
}

/// A started robot task, with the task node it steps when that runs in
/// this process (the caller keeps it until done with the task).
pub struct StartedTask {
    pub task: RobotTask,
    pub node: Option<InProcessTaskNode>,
    /// The task's name in recordings and reports.
    pub name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RobotTaskError {
    #[error(transparent)]
    Sim(#[from] SimError),
    #[error(transparent)]
    SimNode(#[from] RemoteTaskError),
    #[error(transparent)]
    Arm(#[from] ArmTaskError),
}

/// Runs `$body` with `$task` bound to whichever task `$robot` holds.
macro_rules! with_task {
    ($robot:expr, $task:ident => $body:expr) => {
        match $robot {
            RobotTask::Sim($task) => $body,
            RobotTask::SimNode($task) => $body,
            RobotTask::Arm($task) => $body,
        }
    };
}

impl RobotTask {
    /// The task of `launch`'s robot; `robot` says where a simulated one runs.
    pub fn start(launch: &LaunchFile, config: &Path, robot: &RobotChoice, seed: u64) -> anyhow::Result<StartedTask> {
        robot.check(launch, config)?;
        let started = |task, node, name| Ok(StartedTask { task, node, name });
        match (&launch.robot, robot.runs.as_str()) {
            (RobotConfig::Sim(_), "local") => {
                let (task, variant) = crate::practice::panda_task(launch, config)?;
                started(RobotTask::Sim(task), None, format!("{variant:?}"))
            }
            (RobotConfig::Sim(_), "node" | "remote") => {
                let (_, variant) = crate::practice::panda_variant(launch, config)?;
                let node = match robot.runs.as_str() {
                    "node" => Some(InProcessTaskNode::start(crate::practice::panda_task(launch, config)?.0, &launch.namespace)?),
                    _ => None,
                };
                match RemoteTask::connect(&launch.namespace, std::time::Duration::from_secs_f64(robot.answer_s.max(0.1))) {
                    Ok(task) => started(RobotTask::SimNode(task), node, format!("{variant:?}")),
                    // A node of this process that could not start says why, rather than that it did not answer.
                    Err(e) => Err(match node.map(InProcessTaskNode::finish) {
                        Some(Err(why)) => anyhow::Error::from(why).context("the simulated robot's task node"),
                        _ => e.into(),
                    }),
                }
            }
            (RobotConfig::TopicArm(_) | RobotConfig::SerialArm(_), "local") => started(RobotTask::Arm(start_arm(launch, config, seed)?), None, "ArmReach".into()),
            (RobotConfig::Car(_), _) => bail!("{}: this command drives arms (tool-space actions); a car has no end effector", config.display()),
            _ => unreachable!("refused by RobotChoice::check"),
        }
    }

}

/// A real arm's reach task over its driver: a ros2_control arm's topics,
/// or a serial-servo bus whose blocking I/O runs on its own thread, off
/// the control tick.
pub fn start_arm(launch: &LaunchFile, config: &Path, seed: u64) -> anyhow::Result<ArmReach> {
    let arm = match &launch.robot {
        RobotConfig::SerialArm(serial) => {
            let bus = robot_drivers::io_thread::IoThread::spawn(robot_drivers::servo_arm::ServoArm::new(serial.clone()), launch.robot.control_rate_hz());
            ArmReach::start(bus, launch, seed)
        }
        RobotConfig::TopicArm(topics) => ArmReach::start(robot_drivers::topic_arm::TopicArm::new(topics.clone(), &launch.namespace), launch, seed),
        other => bail!("{}: a {} robot is not an arm", config.display(), other.kind_name()),
    };
    arm.with_context(|| format!("{}: starting the arm", config.display()))
}

impl Environment for RobotTask {
    type Error = RobotTaskError;

    fn observation_size(&self) -> usize {
        with_task!(self, t => t.observation_size())
    }
    fn action_size(&self) -> usize {
        with_task!(self, t => t.action_size())
    }
    fn action_low(&self) -> &[f64] {
        with_task!(self, t => t.action_low())
    }
    fn action_high(&self) -> &[f64] {
        with_task!(self, t => t.action_high())
    }
    fn observation(&self) -> &[f64] {
        with_task!(self, t => t.observation())
    }
    fn reset(&mut self, seed: u64) -> &[f64] {
        with_task!(self, t => t.reset(seed))
    }
    fn reset_next(&mut self) -> &[f64] {
        with_task!(self, t => t.reset_next())
    }
    fn step(&mut self, action: &[f64]) -> Result<Step, RobotTaskError> {
        with_task!(self, t => t.step(action).map_err(RobotTaskError::from))
    }
    fn success(&self) -> Option<bool> {
        with_task!(self, t => t.success())
    }
    fn frames(&self) -> Option<&[u8]> {
        with_task!(self, t => t.frames())
    }
    fn frame_layout(&self) -> Option<FrameLayout> {
        with_task!(self, t => t.frame_layout())
    }
}

impl PracticeTask for RobotTask {
    fn recovery_actions(&self) -> Vec<Vec<f64>> {
        with_task!(self, t => t.recovery_actions())
    }
    fn take_safety_events(&mut self) -> rrl_types::SafetyEvents {
        with_task!(self, t => t.take_safety_events())
    }
}
