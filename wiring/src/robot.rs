//! The launch file's robot as the task that practice, teleop and
//! evaluation step: the simulated Panda or the car twin in this process,
//! either as a lockstep ROS 2 node (of this process, or `rrl sim
//! --lockstep` elsewhere), a real arm's task over its driver
//! (`arm_task`), or a real car's over its topics (`car_task`).
//! Every one of them ticks the gate from `safety::Gate::build`.

use std::path::Path;
use std::time::Duration;

use ros_edge::task_node::{InProcessTaskNode, RemoteTask, RemoteTaskError};
use rrl_types::config::{CameraSource, LaunchFile, RobotConfig, SimRobotConfig, SimTask};
use rrl_types::{Environment, FrameLayout, PracticeTask, Step, TickDecimator, QUIET_TICK_RECORD_HZ};
use safety::Gate;
use sim_bridge::car::CarTask;
use sim_bridge::panda::{PandaTask, PandaVariant, RewardKind};
use sim_bridge::SimError;

use crate::arm_task::{ArmTask, ArmTaskError};
use crate::car_task::{CarCourseTask, CarTaskError};
use crate::leader::{LeaderOperator, Tracking};
use crate::WiringError;

/// Where a simulated robot runs (`--robot`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Placement {
    /// Stepped in this process.
    #[default]
    Local,
    /// A lockstep task node of this process, stepped over ROS 2.
    Node,
    /// `rrl sim --lockstep` elsewhere, stepped over ROS 2.
    Remote,
}

impl std::str::FromStr for Placement {
    type Err = String;
    fn from_str(s: &str) -> Result<Placement, String> {
        match s {
            "local" => Ok(Placement::Local),
            "node" => Ok(Placement::Node),
            "remote" => Ok(Placement::Remote),
            other => Err(format!("unknown robot `{other}`: use local, node or remote")),
        }
    }
}

impl std::fmt::Display for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Placement::Local => "local",
            Placement::Node => "node",
            Placement::Remote => "remote",
        })
    }
}

impl Placement {
    /// Refuses a placement `launch`'s robot cannot take: a node for a
    /// robot that is not simulated.
    pub fn check(self, launch: &LaunchFile, config: &Path) -> Result<(), WiringError> {
        match (&launch.robot, self) {
            (_, Placement::Local) | (RobotConfig::Sim(_), _) => Ok(()),
            (_, other) => Err(WiringError::launch(config, format!("--robot {other} steps a simulated robot over ROS 2; a {} robot is reached through its driver already (leave --robot out)", launch.robot.kind_name()))),
        }
    }
}

/// The simulated robot of a launch file and its Panda task.
pub fn panda_variant<'a>(launch: &'a LaunchFile, config: &Path) -> Result<(&'a SimRobotConfig, PandaVariant), WiringError> {
    let RobotConfig::Sim(sim) = &launch.robot else {
        return Err(WiringError::launch(config, format!("this command runs on the simulated Panda today; a {} robot practises its launch file's task with `rrl practice`", launch.robot.kind_name())));
    };
    let variant = match sim.task {
        SimTask::PandaPickCube => PandaVariant::PickCube,
        SimTask::PandaReach => PandaVariant::Reach,
        SimTask::CarCourse => return Err(WiringError::launch(config, "this command runs on the simulated Panda; the car twin practises, teleoperates and evaluates with `rrl practice`, `rrl teleop` and `rrl eval`")),
        other => return Err(WiringError::launch(config, format!("practice needs a Panda task (PandaPickCube, PandaReach); {other:?} is a learning benchmark, see `rrl train`"))),
    };
    Ok((sim, variant))
}

/// The simulated Panda task of a launch file, with the file's gate between
/// its Cartesian controller and its joints.
pub fn panda_task(launch: &LaunchFile, config: &Path) -> Result<(PandaTask, PandaVariant), WiringError> {
    let (sim, variant) = panda_variant(launch, config)?;
    let mut task = match crate::learner::observed_frames(launch) {
        None => PandaTask::new(variant, RewardKind::Dense)?,
        // The policy sees the scene's cameras (check-config made them Sim cameras of one square size).
        Some(layout) => PandaTask::with_cameras(variant, RewardKind::Dense, &sim_camera_names(launch, &sim.observe_cameras), layout.width as u32)?,
    };
    task.set_controller(sim.controller);
    task.set_gripper(sim.gripper);
    let names: Vec<String> = sim.task.joint_names().iter().map(|s| s.to_string()).collect();
    let gate = Gate::build(&launch.safety, &names, task.control_rate_hz()).map_err(|source| WiringError::Safety { file: config.to_path_buf(), source })?;
    task.set_gate(gate);
    // The gate's ticks go beside the episodes, for the risk critic.
    task.record_gate_ticks(TickDecimator::for_rate(task.control_rate_hz(), QUIET_TICK_RECORD_HZ));
    task.set_home_noise(launch.practice.reset_noise_rad);
    task.set_reset_free(launch.practice.reset_free).map_err(|e| WiringError::launch(config, format!("practice.reset_free: {e}")))?;
    task.set_max_episode_steps(launch.practice.max_episode_steps);
    Ok((task, variant))
}

/// The launch file's car twin racing its course, with the file's gate
/// between the policy's twist and the wheels.
pub fn car_task(launch: &LaunchFile, config: &Path) -> Result<CarTask, WiringError> {
    let (sim, course) = match (&launch.robot, &launch.course) {
        (RobotConfig::Sim(sim), Some(course)) if sim.task == SimTask::CarCourse => (sim, course),
        _ => return Err(WiringError::launch(config, "the car twin needs `robot: Sim((task: CarCourse))` and a `course` section")),
    };
    let mut task = match crate::learner::observed_frames(launch) {
        None => CarTask::new(course)?,
        // The policy sees the twin's cameras (check-config made them its Sim cameras of one square size).
        Some(layout) => CarTask::with_cameras(course, &sim_camera_names(launch, &sim.observe_cameras), layout.width as u32)?,
    };
    let rate = CarTask::control_rate_for(launch.robot.control_rate_hz());
    let gate = Gate::build(&launch.safety, &launch.robot.joint_names(), rate).map_err(|source| WiringError::Safety { file: config.to_path_buf(), source })?;
    task.set_gate(gate, rate);
    task.record_gate_ticks(TickDecimator::for_rate(rate, QUIET_TICK_RECORD_HZ));
    task.set_max_episode_steps(launch.practice.max_episode_steps);
    Ok(task)
}

/// Whether `launch`'s robot is the car twin.
pub fn is_car_twin(launch: &LaunchFile) -> bool {
    matches!(&launch.robot, RobotConfig::Sim(sim) if sim.task == SimTask::CarCourse)
}

/// The scene's (MJCF) names of the launch file's cameras `names`.
fn sim_camera_names(launch: &LaunchFile, names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter_map(|name| launch.cameras.iter().find(|c| &c.name == name))
        .filter_map(|c| match &c.source {
            CameraSource::Sim(scene_name) => Some(scene_name.clone()),
            _ => None,
        })
        .collect()
}

pub enum RobotTask {
    Sim(PandaTask),
    /// The car twin, in this process.
    Car(CarTask),
    /// A real car over its driver's topics.
    CarOverTopics(CarCourseTask),
    /// Stepped over ROS 2.
    SimNode(RemoteTask),
    Arm(ArmTask),
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
    #[error(transparent)]
    CarOverTopics(#[from] CarTaskError),
}

/// Runs `$body` with `$task` bound to whichever task `$robot` holds.
macro_rules! with_task {
    ($robot:expr, $task:ident => $body:expr) => {
        match $robot {
            RobotTask::Sim($task) => $body,
            RobotTask::Car($task) => $body,
            RobotTask::CarOverTopics($task) => $body,
            RobotTask::SimNode($task) => $body,
            RobotTask::Arm($task) => $body,
        }
    };
}

impl RobotTask {
    /// The task of `launch`'s robot; `placement` says where a simulated one
    /// runs, and a lockstep node answers each request within `answer_within`.
    pub fn start(launch: &LaunchFile, config: &Path, placement: Placement, answer_within: Duration, seed: u64) -> Result<StartedTask, WiringError> {
        placement.check(launch, config)?;
        let started = |task, node, name| Ok(StartedTask { task, node, name });
        match (&launch.robot, placement) {
            (RobotConfig::Sim(_), Placement::Local) if is_car_twin(launch) => started(RobotTask::Car(car_task(launch, config)?), None, "CarCourse".into()),
            (RobotConfig::Sim(_), Placement::Local) => {
                let (task, variant) = panda_task(launch, config)?;
                started(RobotTask::Sim(task), None, format!("{variant:?}"))
            }
            (RobotConfig::Sim(_), Placement::Node | Placement::Remote) => {
                let name = match is_car_twin(launch) {
                    true => "CarCourse".to_string(),
                    false => format!("{:?}", panda_variant(launch, config)?.1),
                };
                let node = match (placement, is_car_twin(launch)) {
                    (Placement::Node, true) => Some(InProcessTaskNode::start(car_task(launch, config)?, &launch.namespace)?),
                    (Placement::Node, false) => Some(InProcessTaskNode::start(panda_task(launch, config)?.0, &launch.namespace)?),
                    _ => None,
                };
                match RemoteTask::connect(&launch.namespace, answer_within) {
                    Ok(task) => started(RobotTask::SimNode(task), node, name),
                    // A node of this process that could not start says why, rather than that it did not answer.
                    Err(e) => Err(match node.map(InProcessTaskNode::finish) {
                        Some(Err(why)) => why.into(),
                        _ => e.into(),
                    }),
                }
            }
            (RobotConfig::TopicArm(_) | RobotConfig::SerialArm(_), _) => started(RobotTask::Arm(start_arm(launch, config, seed)?), None, crate::arm_task::task_name(launch).into()),
            (RobotConfig::Car(_), _) => started(RobotTask::CarOverTopics(start_car(launch, config)?), None, "CarCourse".into()),
        }
    }
}

/// The (observation, action) sizes of the task `launch` practises, without
/// starting a robot: what a learner on another machine trains for.
pub fn task_sizes(launch: &LaunchFile, config: &Path) -> Result<(usize, usize), WiringError> {
    match &launch.robot {
        RobotConfig::TopicArm(_) | RobotConfig::SerialArm(_) => Ok(crate::arm_task::sizes(launch)),
        RobotConfig::Car(_) => Ok((rrl_types::course::COURSE_OBSERVATION_SIZE, 2)),
        _ if is_car_twin(launch) => Ok((rrl_types::course::COURSE_OBSERVATION_SIZE, 2)),
        _ => {
            let (task, _) = panda_task(launch, config)?;
            Ok((task.observation_size(), task.action_size()))
        }
    }
}

/// A real car's task over its driver's topics, racing the launch file's course.
pub fn start_car(launch: &LaunchFile, config: &Path) -> Result<CarCourseTask, WiringError> {
    CarCourseTask::start(launch).map_err(|source| WiringError::Car { file: config.to_path_buf(), source })
}

/// A real arm's task over its driver: a ros2_control arm's topics, or a
/// serial-servo bus whose blocking I/O runs on its own thread, off the
/// control tick.
pub fn start_arm(launch: &LaunchFile, config: &Path, seed: u64) -> Result<ArmTask, WiringError> {
    let arm = match &launch.robot {
        RobotConfig::SerialArm(serial) => {
            let bus = robot_drivers::io_thread::IoThread::spawn(robot_drivers::servo_arm::ServoArm::new(serial.clone()), launch.robot.control_rate_hz());
            ArmTask::start(bus, launch, seed)
        }
        RobotConfig::TopicArm(topics) => ArmTask::start(robot_drivers::topic_arm::TopicArm::new(topics.clone(), &launch.namespace), launch, seed),
        other => return Err(WiringError::launch(config, format!("a {} robot is not an arm", other.kind_name()))),
    };
    arm.map_err(|source| WiringError::Arm { file: config.to_path_buf(), source })
}

impl RobotTask {
    /// The launch file's leader arm as an operator this task follows, if
    /// it has one; only a real arm can follow one.
    pub fn leader(&mut self, launch: &LaunchFile, config: &Path, tracking: Tracking) -> Result<Option<LeaderOperator>, WiringError> {
        if launch.leader.is_none() {
            return Ok(None);
        }
        match self {
            RobotTask::Arm(task) => Ok(LeaderOperator::for_task(launch, task, tracking)?),
            _ => Err(WiringError::launch(config, "leader: a leader arm drives a real arm; a simulated robot follows none")),
        }
    }
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
    fn recovery_step(&mut self, action: &[f64]) -> Result<Step, Self::Error> {
        with_task!(self, t => t.recovery_step(action).map_err(RobotTaskError::from))
    }
    fn needs_recovery(&self) -> bool {
        with_task!(self, t => t.needs_recovery())
    }
    fn expert_observation(&self) -> &[f64] {
        with_task!(self, t => t.expert_observation())
    }
    fn take_safety_events(&mut self) -> rrl_types::SafetyEvents {
        with_task!(self, t => t.take_safety_events())
    }
    fn take_gate_ticks(&mut self, out: &mut Vec<rrl_types::GateTick>) {
        with_task!(self, t => t.take_gate_ticks(out))
    }
    fn take_measured_violations(&mut self) -> Option<u64> {
        with_task!(self, t => t.take_measured_violations())
    }
    fn offer_risk_critic(&mut self, layers: &[(Vec<Vec<f32>>, Vec<f32>)], acting: bool) -> Result<(), String> {
        with_task!(self, t => t.offer_risk_critic(layers, acting))
    }
    fn live_status(&self) -> Option<std::sync::Arc<rrl_types::LiveStatus>> {
        with_task!(self, t => t.live_status())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rrl_types::config::GripperAction;

    /// The launch file's simulated gripper reaches the task, whichever
    /// placement then serves it (they all make it here).
    #[test]
    fn the_simulated_pandas_task_reads_its_gripper_as_the_launch_file_says() {
        for (written, expected) in [("", GripperAction::Continuous), ("gripper: OpenClose", GripperAction::OpenClose)] {
            let text = format!("(name: \"t\", robot: Sim((task: PandaPickCube, {written})), safety: (preset: Some(FrankaPanda)))");
            let launch = LaunchFile::parse(&text, Path::new("t.ron")).unwrap();
            let (task, _) = panda_task(&launch, Path::new("t.ron")).unwrap();
            assert_eq!(task.gripper(), expected, "{text}");
        }
    }
}
