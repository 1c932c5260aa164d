//! Practice on a real arm: the launch file's `task` section (or, without
//! one, the reach task) over any arm behind the hardware interface (a
//! ros2_control arm over its topics, a serial-servo arm, the simulated
//! Panda served over topics). Tool actions become joint commands by damped
//! least-squares inverse kinematics on the safety gate's own kinematic
//! chain; joint actions step the joints; a gripper is one more joint, which
//! the gate limits like any other. A control thread ticks read → gate →
//! write at the robot's control rate on the wall clock (`control`),
//! whatever the actor and learner are doing. The observation is the
//! section's sources in order (`observation`), including topics such as an
//! object's pose from motion capture; resets run the section's scripted
//! moves (`reset`). A goal task's goals are tool points of random joint
//! poses inside the joint limits and the workspace box, so every goal is
//! reachable; its success is the measured tool within tolerance. A task
//! without a goal is judged by a human, a VLM or a classifier.

mod actions;
mod follower;
mod observation;
mod reset;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::queue::ArrayQueue;
use nalgebra::{Isometry3, Rotation3, Vector3, Vector6};
use robot_drivers::pacing::Pacer;
use robot_drivers::HardwareInterface;
use ros_edge::observed_topics::ObservedTopics;
use ros_edge::reset_window::ResetWindow;
use rrl_types::config::{ArmTaskConfig, GoalConfig, LaunchFile, Observe, SuccessSource};
use rrl_types::rng::Rng;
use rrl_types::{Clock, CommandMode, Environment, JointCommand, JointState, JointVec, MonotonicClock, PracticeTask, Step, SystemClock, MAX_JOINTS};
use safety::{ik, CartesianLimits, Gate, JointLimit};

use actions::{ActionLayout, Target};
use crate::control_link::ControlLink;
use crate::policy_cameras::{CameraError, PolicyCameras};
pub use follower::Follower;
pub use observation::ObservationLayout;

#[derive(Debug, thiserror::Error)]
pub enum ArmTaskError {
    #[error("the arm stopped: {0}")]
    Hardware(String),
    #[error("task: an action has {expected} values, got {got}")]
    ActionSize { expected: usize, got: usize },
    #[error("task: action[{index}] is {value}; actions must be finite")]
    NonFiniteAction { index: usize, value: f64 },
    #[error("reset: the arm did not reach its home pose within {seconds} s (joint {joint} at {at:.3}, home {home:.3}; tool at {tool:.3?}, asked for {asked:.3?}; the safety gate intervened on {interventions} ticks{last_intervention})")]
    ResetTimeout { seconds: f64, joint: String, at: f64, home: f64, tool: [f64; 3], asked: [f64; 3], interventions: u64, last_intervention: String },
    #[error("reset: {what} did not finish within {seconds} s ({detail})")]
    MoveTimeout { what: String, seconds: f64, detail: String },
    #[error("reset: no state from the arm within {0} s")]
    NoState(f64),
    #[error("task observation: {0}")]
    Topics(String),
    #[error("task observation: {0}")]
    Camera(String),
    #[error(transparent)]
    Safety(#[from] safety::SafetyError),
    /// The launch file or the arm does not fit the task.
    #[error("{0}")]
    Unfit(String),
}

impl From<CameraError> for ArmTaskError {
    fn from(e: CameraError) -> ArmTaskError {
        match e {
            CameraError::Unfit(why) => ArmTaskError::Unfit(why),
            CameraError::Camera(why) => ArmTaskError::Camera(why),
        }
    }
}

/// The share of the way home a redundant arm's null-space motion takes per tick.
const NULL_SPACE_PULL: f64 = 0.1;

/// How far the task's tool targets stay inside the workspace box's walls.
const WALL_MARGIN_M: f64 = 0.01;
/// A joint within this of its soft position limit is at it, for the tracking.
const AT_A_LIMIT_RAD: f64 = 0.01;
/// The share of a joint's acceleration and jerk limits the tracking's commands use.
const CAREFUL_SHARE_OF_LIMITS: f64 = 0.9;
/// The share of a joint's acceleration limit the tracking plans to stop with:
/// below the share it may use, as ticks brake in steps.
const BRAKING_SHARE_OF_LIMITS: f64 = 0.5;

/// The gripper joint and its open and closed positions.
#[derive(Debug, Clone, Copy)]
struct GripperJoint {
    index: usize,
    open: f64,
    closed: f64,
}

impl GripperJoint {
    /// 0 open … 1 closed.
    fn closure(&self, position: f64) -> f64 {
        (position - self.open) / (self.closed - self.open)
    }
    fn position(&self, closure: f64) -> f64 {
        self.open + closure.clamp(0.0, 1.0) * (self.closed - self.open)
    }
}

/// A task on a real arm.
pub struct ArmTask {
    joint_names: Vec<String>,
    /// The arm's joints (every joint but the gripper's), by index.
    arm: Vec<usize>,
    gripper: Option<GripperJoint>,
    /// The closure the gripper is sent to.
    gripper_target: f64,
    /// The gate's box and kinematic chain, when the robot has them.
    workspace: Option<CartesianLimits>,
    limits: [JointLimit; MAX_JOINTS],
    soft_margin: f64,
    link: ControlLink,
    /// Where critics trained during practice reach the control thread's gate.
    critic_loader: safety::CriticLoader,
    topics: Option<ObservedTopics>,
    /// Open during a `WaitForHuman` reset move.
    reset_window: Option<ResetWindow>,
    state: JointState,
    /// The joint command offered last, each joint's step to it (rad per
    /// tick) and how much that step changed from the one before (rad per
    /// tick²): what careful reset moves go on from.
    last_offered: [f64; MAX_JOINTS],
    last_step: [f64; MAX_JOINTS],
    last_step_change: [f64; MAX_JOINTS],
    /// The gate's newest protective verdict taken from the control thread,
    /// and the command it forwarded then.
    newest_intervention: Option<(safety::Verdict, JointVec)>,
    command: [f64; MAX_JOINTS],
    mode: CommandMode,
    config: ArmTaskConfig,
    actions: ActionLayout,
    layout: ObservationLayout,
    has_wrench: bool,
    home: Vec<f64>,
    home_noise: f64,
    goal: [f64; 3],
    /// The tool orientation held under `Hold` (and rotated under `Rotate`).
    held_rotation: Rotation3<f64>,
    rng: Rng,
    steps: u32,
    max_steps: u32,
    policy_period: Duration,
    control_period: Duration,
    tolerance: f64,
    reset_timeout: Duration,
    /// A state older than this means the robot stopped publishing.
    state_timeout: Duration,
    /// An observed topic's message older than this pauses practice.
    topic_timeout: Duration,
    /// When the next tick of the actor's tracking loop is due.
    /// Paces the actor's side to the control rate (reset moves, one action's ticks).
    ticks: Pacer<MonotonicClock>,
    /// Practice without resets: forward (sampled goal) and backward (home)
    /// episodes alternate from wherever the arm is.
    reset_free: bool,
    /// The episode in hand goes backward (home, or `directions.backward`).
    backward: bool,
    backward_next: bool,
    needs_full_reset: bool,
    /// Where the directions' `Topic` success sources are among the observed
    /// topics (forward, backward).
    success_topics: [Option<usize>; 2],
    observation: Vec<f64>,
    /// The cameras the policy sees, if it sees any.
    cameras: Option<PolicyCameras>,
    /// The newest state for a leader arm's follower, once one is made.
    follower_states: Option<Arc<ArrayQueue<JointState>>>,
    /// What the operator sees of the session.
    live: Arc<rrl_types::LiveStatus>,
}

/// The name a real-arm task is recorded under: `ArmReach` for a task with
/// a goal (the reach, whatever its actions), `ArmTask` for one a human, a
/// VLM or a classifier judges.
pub fn task_name(launch: &LaunchFile) -> &'static str {
    match launch.task.goal.is_some() {
        true => "ArmReach",
        false => "ArmTask",
    }
}

/// The arm joints of `launch`'s robot: its joints but the task's gripper.
fn arm_joints(launch: &LaunchFile) -> usize {
    let joints = launch.robot.joint_names();
    let gripper = launch.task.gripper.as_ref().filter(|g| joints.contains(&g.joint));
    joints.len() - usize::from(gripper.is_some())
}

/// The (observation, action) sizes of `launch`'s real-arm task, without an arm.
pub fn sizes(launch: &LaunchFile) -> (usize, usize) {
    let arm_joints = arm_joints(launch);
    (ObservationLayout::new(&launch.task.observe, arm_joints).size(), ActionLayout::new(&launch.task.actions, launch.practice.tool_step_m, arm_joints).size())
}

/// The learner's shaping term of `launch`'s real-arm task, if it has one:
/// its two points' offsets in the observation.
pub fn shaping(launch: &LaunchFile) -> Option<policies::practice::Shaping> {
    let shaping = launch.task.shaping.as_ref()?;
    let layout = ObservationLayout::new(&launch.task.observe, arm_joints(launch));
    Some(policies::practice::Shaping { from: layout.range_of(&shaping.from)?.start, to: layout.range_of(&shaping.to)?.start, scale: shaping.scale })
}

impl ArmTask {
    /// Connects `hardware`, builds the launch file's gate around it, starts
    /// the control thread and subscribes to the task's observed topics.
    /// Tasks that use the tool need the gate's workspace box (goals and
    /// tool targets stay inside it).
    pub fn start<H: HardwareInterface + Send + 'static>(mut hardware: H, launch: &LaunchFile, seed: u64) -> Result<ArmTask, ArmTaskError> {
        let config = launch.task.clone();
        let rate = launch.robot.control_rate_hz();
        let joint_names = launch.robot.joint_names();
        if hardware.joint_names() != joint_names.as_slice() {
            return Err(ArmTaskError::Unfit(format!("the arm reports joints {:?}, the launch file names {:?}", hardware.joint_names(), joint_names)));
        }
        // The one gate builder: rules, and the risk critic when one is configured.
        let mut gate = Gate::build(&launch.safety, &joint_names, rate)?;
        let critic_loader = gate.critic_loader();
        let gate_config = gate.config();
        let workspace = gate_config.workspace.clone();
        if config.needs_kinematics() && workspace.is_none() {
            return Err(ArmTaskError::Unfit("this task uses the tool (tool actions, tool observations, a goal or tool reset moves): it needs safety.workspace, the box its tool, targets and goals stay in".into()));
        }
        let has_wrench = matches!(&launch.robot, rrl_types::config::RobotConfig::TopicArm(arm) if arm.wrench_topic.is_some());
        if config.observe.contains(&Observe::Wrench) && !has_wrench {
            return Err(ArmTaskError::Unfit("task.observe: Wrench: this robot reports no wrench (a TopicArm names its wrench_topic)".into()));
        }
        let gripper = match &config.gripper {
            Some(g) => Some(GripperJoint { index: joint_names.iter().position(|n| *n == g.joint).ok_or_else(|| ArmTaskError::Unfit(format!("task.gripper.joint: the robot has no joint `{}`", g.joint)))?, open: g.open, closed: g.closed }),
            None => None,
        };
        let arm: Vec<usize> = (0..joint_names.len()).filter(|&j| gripper.is_none_or(|g| g.index != j)).collect();
        if arm.is_empty() {
            return Err(ArmTaskError::Unfit("task.gripper.joint: the robot's only joint is the gripper; a task needs an arm to move".into()));
        }
        let mode = hardware.native_mode();
        if mode != CommandMode::Position {
            return Err(ArmTaskError::Unfit(format!("practice drives arms by joint positions; this arm takes {mode:?} commands")));
        }
        let practice = &launch.practice;
        let actions = ActionLayout::new(&config.actions, practice.tool_step_m, arm.len());
        let layout = ObservationLayout::new(&config.observe, arm.len());
        let mut topic_list = layout.topics();
        let mut success_topics = [None, None];
        if let Some(directions) = &config.directions {
            for (k, source) in [&directions.forward, &directions.backward].into_iter().enumerate() {
                if let SuccessSource::Topic(topic) = source {
                    success_topics[k] = Some(topic_list.len());
                    topic_list.push((topic.clone(), ros_edge::observed_topics::TopicKind::Bool));
                }
            }
        }
        let topics = match topic_list.is_empty() {
            true => None,
            false => Some(ObservedTopics::start(&launch.namespace, &topic_list).map_err(|e| ArmTaskError::Topics(e.to_string()))?),
        };
        let reset_window = match config.reset.iter().any(|m| matches!(m, rrl_types::config::ResetMove::WaitForHuman(_))) {
            true => Some(ResetWindow::start(&launch.namespace).map_err(|e| ArmTaskError::Topics(e.to_string()))?),
            false => None,
        };
        let camera_names: Vec<String> = config.observe.iter().filter_map(|o| if let Observe::Camera(name) = o { Some(name.clone()) } else { None }).collect();
        // A stall is said after a second without a fresh frame (the wait itself starts at once).
        let cameras = PolicyCameras::start("task.observe", &camera_names, &launch.cameras, &launch.namespace, Duration::from_secs(1))?;
        let hardware_error = |e: robot_drivers::HardwareError| ArmTaskError::Hardware(e.to_string());
        hardware.configure().map_err(hardware_error)?;
        hardware.activate().map_err(hardware_error)?;
        let (limits, soft_margin) = (gate_config.limits, gate_config.soft_margin);
        let control_period = Duration::from_secs_f64(1.0 / rate);
        let link = ControlLink::start(hardware, gate, control_period, rrl_types::TickDecimator::for_rate(rate, rrl_types::QUIET_TICK_RECORD_HZ)).map_err(ArmTaskError::Hardware)?;
        let size = layout.size();
        Ok(ArmTask {
            joint_names,
            arm,
            gripper,
            gripper_target: 0.0,
            workspace,
            limits,
            soft_margin,
            link,
            critic_loader,
            topics,
            reset_window,
            state: JointState::zeros(0),
            last_offered: [0.0; MAX_JOINTS],
            last_step: [0.0; MAX_JOINTS],
            last_step_change: [0.0; MAX_JOINTS],
            newest_intervention: None,
            command: [0.0; MAX_JOINTS],
            mode,
            actions,
            layout,
            has_wrench,
            home: practice.home.clone().unwrap_or_default(),
            home_noise: practice.reset_noise_rad,
            goal: [0.0; 3],
            held_rotation: Rotation3::identity(),
            rng: Rng::seed(seed),
            steps: 0,
            max_steps: practice.max_episode_steps,
            policy_period: Duration::from_secs_f64(1.0 / practice.policy_rate_hz),
            control_period,
            tolerance: practice.goal_tolerance_m,
            reset_timeout: Duration::from_secs_f64(practice.reset_timeout_s),
            state_timeout: Duration::from_millis(launch.safety.state_timeout_ms),
            topic_timeout: Duration::from_millis(config.topic_timeout_ms),
            ticks: Pacer::new(control_period, MonotonicClock),
            reset_free: practice.reset_free,
            backward: false,
            backward_next: false,
            needs_full_reset: true,
            success_topics,
            // Zeros until the first reset succeeds: a failed one leaves a
            // well-formed observation, and the next step reports why.
            observation: vec![0.0; size],
            cameras,
            follower_states: None,
            live: Arc::default(),
            config,
        })
    }

    /// Where each observed source lies in the observation.
    pub fn layout(&self) -> &ObservationLayout {
        &self.layout
    }

    fn joints(&self) -> usize {
        self.joint_names.len()
    }

    /// The control thread's newest state, if one came since the last look.
    fn take_newest_state(&mut self) {
        if let Some(state) = self.link.take_state() {
            if state.position.len() == self.joints() {
                self.state = state;
                if let Some(follower) = &self.follower_states {
                    let _ = follower.force_push(state);
                }
            }
        }
    }

    /// Returns once the arm's state and the observed topics are fresh.
    /// While one is stale (the robot stopped publishing, a tracker lost the
    /// object) practice pauses here: no step is taken or recorded, the gate
    /// holds the arm, the log says so once, and practice resumes by itself
    /// when they come back.
    fn wait_while_silent(&mut self) -> Result<(), ArmTaskError> {
        let mut paused: Option<(Instant, String)> = None;
        loop {
            self.link.check_failure().map_err(ArmTaskError::Hardware)?;
            self.take_newest_state();
            let age = self.state_age();
            let stale = if age > self.state_timeout {
                Some(format!("no state from the arm for {} ms (has it stopped publishing?)", age.as_millis()))
            } else {
                self.stale_topic()
            };
            match (stale, &paused) {
                (None, None) => return Ok(()),
                (None, Some((since, _))) => {
                    tracing::warn!(paused_s = since.elapsed().as_secs_f64(), "the arm and its observed topics deliver again: practice resumes");
                    self.live.came(rrl_types::Waiting::ArmState);
                    self.live.came(rrl_types::Waiting::ObservedTopic);
                    return Ok(());
                }
                (Some(why), None) => {
                    tracing::warn!("{why}: practice is paused and the safety gate holds the arm until it returns");
                    self.live.wait_for(if age > self.state_timeout { rrl_types::Waiting::ArmState } else { rrl_types::Waiting::ObservedTopic });
                    paused = Some((Instant::now(), why));
                }
                (Some(_), Some(_)) => {}
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The observed topic whose newest message is too old, if one is.
    fn stale_topic(&mut self) -> Option<String> {
        let topics = self.topics.as_mut()?;
        topics.refresh();
        let (age, topic) = topics.oldest()?;
        (age > self.topic_timeout).then(|| format!("task observation: nothing on `{topic}` for {} ms (is the object still tracked?)", age.as_millis()))
    }

    fn state_age(&self) -> Duration {
        Duration::from_nanos(SystemClock.now().nanos_since(self.state.stamp))
    }

    /// Waits for the next control period and takes the newest state.
    fn next_state(&mut self) -> Result<(), ArmTaskError> {
        self.ticks.wait();
        self.link.check_failure().map_err(ArmTaskError::Hardware)?;
        self.take_newest_state();
        Ok(())
    }

    fn chain(&self) -> &CartesianLimits {
        self.workspace.as_ref().expect("tool use is refused at start without kinematics")
    }

    fn tool(&self, q: &[f64]) -> [f64; 3] {
        self.chain().chain.tool_position(q)
    }

    fn tool_pose(&self, q: &[f64]) -> Isometry3<f64> {
        self.chain().chain.tool_pose_with(|i| q[i])
    }

    fn measured_tool(&self) -> [f64; 3] {
        self.tool(self.state.position.as_slice())
    }

    fn inside_box(&self, point: [f64; 3]) -> [f64; 3] {
        inside_box(self.chain(), point)
    }

    fn offer_command(&mut self) {
        if let Some(g) = self.gripper {
            self.command[g.index] = g.position(self.gripper_target);
        }
        for &j in &self.arm {
            let step = self.command[j] - self.last_offered[j];
            self.last_step_change[j] = step - self.last_step[j];
            self.last_step[j] = step;
            self.last_offered[j] = self.command[j];
        }
        let values = JointVec::from_slice(&self.command[..self.joints()]).expect("at most MAX_JOINTS joints");
        self.link.offer(JointCommand { stamp: SystemClock.now(), mode: self.mode, values });
    }

    /// The command jumped to a pose (the measured one, home): the steps
    /// start again from rest there.
    pub(super) fn restart_steps(&mut self) {
        self.last_offered = self.command;
        self.last_step = [0.0; MAX_JOINTS];
        self.last_step_change = [0.0; MAX_JOINTS];
    }

    /// Joint `j`'s position range less the gate's soft margin, if it has one.
    fn soft_range(&self, j: usize) -> Option<(f64, f64)> {
        self.limits[j].position.map(|(lo, hi)| (lo + self.soft_margin, hi - self.soft_margin))
    }

    /// The most a joint command moves in one control tick: half the joint's speed limit.
    fn max_command_step(&self, j: usize) -> f64 {
        self.limits[j].velocity.map_or(0.02, |v| 0.5 * v * self.control_period.as_secs_f64())
    }

    /// The position range a sampled pose may use for joint `j`.
    fn sample_range(&self, j: usize) -> (f64, f64) {
        match self.soft_range(j) {
            Some(range) => range,
            None => (self.home[j] - 1.0, self.home[j] + 1.0),
        }
    }

    /// A reachable goal: the tool point of a random pose, inside the box
    /// and at least three tolerances from the home pose's tool point.
    fn sample_goal(&mut self) -> [f64; 3] {
        let start = self.tool(&self.home);
        let mut q = self.home.clone();
        for _ in 0..1000 {
            for k in 0..self.arm.len() {
                let (lo, hi) = self.sample_range(self.arm[k]);
                q[self.arm[k]] = self.rng.uniform(lo, hi);
            }
            let goal = self.tool(&q);
            let far_enough = distance(&goal, &start) > 3.0 * self.tolerance;
            if self.chain().outside(&goal) == 0.0 && far_enough {
                return goal;
            }
        }
        // A box the arm can hardly reach: its middle, clamped where the arm can go.
        let workspace = self.chain();
        std::array::from_fn(|k| 0.5 * (workspace.min[k] + workspace.max[k]))
    }

    /// One control tick toward `target`: for a tool target an inverse-
    /// kinematics step (the joint commands move toward the damped
    /// least-squares solution from the measured pose within the gate's
    /// limits, `step_within_limits`), for a joint target a step toward it;
    /// never more than the joint's speed allows in a tick. The gripper goes
    /// to its target closure.
    fn track(&mut self, target: &Target) {
        match target {
            Target::Tool { position, rotation } => {
                if let Some(dq) = self.tool_step(position, rotation.as_ref(), true) {
                    self.step_within_limits(&dq);
                }
            }
            Target::Joints(goal) => {
                for (c, &j) in self.arm.iter().enumerate() {
                    let (lo, hi) = self.sample_range(j);
                    let max_step = self.max_command_step(j);
                    let step = (goal[c].clamp(lo, hi) - self.command[j]).clamp(-max_step, max_step);
                    self.command[j] += step;
                }
                self.offer_command();
            }
        }
    }

    /// The damped least-squares joint step (arm columns) that takes the
    /// measured tool toward `position` (and `rotation`, when given), the
    /// redundant joints pulled toward home `with_pull`.
    fn tool_step(&self, position: &[f64; 3], rotation: Option<&Rotation3<f64>>, with_pull: bool) -> Option<ik::JointColumns> {
        // A copy (inline, as every matrix below): this runs once per control
        // tick on the actor's thread, which must not allocate.
        let state = self.state;
        let q = state.position.as_slice();
        let pose = self.tool_pose(q);
        let mut error = Vector6::zeros();
        error.fixed_rows_mut::<3>(0).copy_from(&(Vector3::from(*position) - pose.translation.vector));
        if let Some(rotation) = rotation {
            error.fixed_rows_mut::<3>(3).copy_from(&ik::orientation_error(rotation, &pose.rotation.to_rotation_matrix()));
        }
        let jacobian = ik::tool_jacobian(&self.chain().chain, q, &self.arm, rotation.is_some());
        // Redundant joints drift toward home in the task's null space
        // (as the simulated Panda's controller does): left alone they
        // wander into poses from which the way home leaves the box.
        let pull = (with_pull && self.home.len() == q.len()).then(|| ik::JointColumns::from_fn(|c, _| self.arm.get(c).map_or(0.0, |&j| NULL_SPACE_PULL * (self.home[j] - q[j]))));
        // A joint at its soft limit that the step pushes further is held.
        let at_limit = |c: usize, change: f64| {
            let Some(&j) = self.arm.get(c) else { return false };
            let Some((lo, hi)) = self.soft_range(j) else { return false };
            let (lo, hi) = (lo + AT_A_LIMIT_RAD, hi - AT_A_LIMIT_RAD);
            (q[j] >= hi && change > 0.0) || (q[j] <= lo && change < 0.0)
        };
        ik::dls_step_with_held(&jacobian, &error, pull.as_ref(), at_limit)
    }

    /// The gate's protective verdict since the last look, if any, kept
    /// for what a failed move says.
    pub(super) fn take_intervention(&mut self) -> Option<JointVec> {
        let taken = self.link.last_intervention()?;
        let sent = taken.1;
        self.newest_intervention = Some(taken);
        Some(sent)
    }

    /// Before careful moves begin: an intervention from before is stale
    /// (the commands since may have passed).
    pub(super) fn drop_stale_intervention(&mut self) {
        self.take_intervention();
    }

    /// `track` toward a tool point for a reset move: the same steps within
    /// the gate's limits (at a wall a step the limiter bent to point out
    /// was refused tick after tick), without the pull toward home. When
    /// the gate forwarded other arm commands than these, they go on from
    /// what it forwarded.
    fn track_carefully(&mut self, position: [f64; 3], rotation: Option<Rotation3<f64>>) {
        if let Some(sent) = self.take_intervention() {
            if self.arm.iter().any(|&j| (sent[j] - self.command[j]).abs() > 1e-9) {
                for &j in &self.arm {
                    self.command[j] = sent[j];
                }
                // How the gate's joints were moving is not known here: from rest.
                self.restart_steps();
            }
        }
        // No pull toward home: where the arm is nearly straight, the damped
        // solution lets the pull leak into the tool's motion, and at a wall
        // that can point every step out of the box.
        let Some(dq) = self.tool_step(&position, rotation.as_ref(), false) else { return };
        self.step_within_limits(&dq);
    }

    /// One tick of the arm's commands toward the damped solution `dq` (a
    /// change from the measured pose) as a stream the gate's limiter has no
    /// reason to bend: every joint goes the same share of its way to the
    /// solution, never faster than it could still stop there within its
    /// acceleration limit, and each tick's change of every joint's step is
    /// scaled by one factor to the acceleration limits (and the jerk limits,
    /// where one factor meets them all); the commands stay in the soft
    /// position range. Joint by joint, the limiter would bend the steps (at
    /// a wall until they pointed out of the box) and, pulled by an approach
    /// it cannot follow, swing the arm about its target: the policy's
    /// steps then landed somewhere else in every run.
    fn step_within_limits(&mut self, dq: &ik::JointColumns) {
        let dt = self.control_period.as_secs_f64();
        let state = self.state;
        let q = state.position.as_slice();
        let mut remaining = [0.0; MAX_JOINTS];
        let mut way = ik::FOLLOW_SHARE;
        for (c, &j) in self.arm.iter().enumerate() {
            let solution = q[j] + dq[c].clamp(-ik::MAX_SOLUTION_STEP, ik::MAX_SOLUTION_STEP);
            let solution = self.soft_range(j).map_or(solution, |(lo, hi)| solution.clamp(lo, hi));
            let r = solution - self.command[j];
            remaining[j] = r;
            if r == 0.0 {
                continue;
            }
            way = way.min(self.max_command_step(j) / r.abs());
            if let Some(a) = self.limits[j].acceleration {
                // The largest step from which the joint still stops at its solution.
                let stoppable = (2.0 * BRAKING_SHARE_OF_LIMITS * a * r.abs()).sqrt() * dt;
                way = way.min(stoppable / r.abs());
            }
        }
        // Nor faster than the gate lets the tool point move in a tick.
        if let Some(workspace) = &self.workspace {
            let mut there = self.command;
            for &j in &self.arm {
                there[j] += remaining[j];
            }
            let n = self.joints();
            let reach = distance(&workspace.chain.tool_position(&there[..n]), &workspace.chain.tool_position(&self.command[..n]));
            if reach > 0.0 {
                way = way.min(CAREFUL_SHARE_OF_LIMITS * workspace.max_step / reach);
            }
        }
        let mut change = [0.0; MAX_JOINTS];
        // The largest share of each joint's wanted change of step that every
        // joint's limits allow; jerk bounds may also ask for a least share.
        let (mut least, mut most, mut most_by_acceleration) = (0.0f64, 1.0f64, 1.0f64);
        for &j in &self.arm {
            let limit = &self.limits[j];
            change[j] = way * remaining[j] - self.last_step[j];
            let d = change[j];
            if d == 0.0 {
                continue;
            }
            // Margins below the limits: rounding must not make the gate clip.
            if let Some(a) = limit.acceleration {
                let bound = CAREFUL_SHARE_OF_LIMITS * a * dt * dt;
                most_by_acceleration = most_by_acceleration.min(bound / d.abs());
            }
            if let Some(jerk) = limit.jerk {
                let bound = CAREFUL_SHARE_OF_LIMITS * jerk * dt * dt * dt;
                let (a, b) = ((self.last_step_change[j] - bound) / d, (self.last_step_change[j] + bound) / d);
                least = least.max(a.min(b));
                most = most.min(a.max(b));
            }
        }
        most = most.min(most_by_acceleration);
        // No share meets every jerk bound (a joint turning while another
        // speeds up): the acceleration bounds alone.
        let share = if least <= most { most } else { most_by_acceleration };
        for &j in &self.arm {
            let next = self.command[j] + self.last_step[j] + share * change[j];
            self.command[j] = self.soft_range(j).map_or(next, |(lo, hi)| next.clamp(lo, hi));
        }
        self.offer_command();
    }

    fn write_observation(&mut self) {
        if let Some(topics) = self.topics.as_mut() {
            topics.refresh();
        }
        let q = self.state.position.as_slice();
        let tool = self.workspace.as_ref().map(|w| w.chain.tool_pose_with(|i| q[i]));
        let tool_velocity = match (&self.workspace, self.layout.range_of(&Observe::ToolVelocity)) {
            (Some(w), Some(_)) => {
                let jacobian = ik::tool_jacobian(&w.chain, q, &self.arm, false);
                let qdot = ik::JointColumns::from_fn(|c, _| self.arm.get(c).map_or(0.0, |&j| self.state.velocity[j]));
                let v = jacobian * qdot;
                [v[0], v[1], v[2]]
            }
            _ => [0.0; 3],
        };
        let wrench = match (self.has_wrench, self.state.wrench) {
            // A stale wrench reads NaN (the gate holds on it); the policy sees none.
            (true, Some(w)) if w.iter().all(|v| v.is_finite()) => w,
            _ => [0.0; 6],
        };
        let measured = observation::Measured {
            q,
            velocity: self.state.velocity.as_slice(),
            arm: &self.arm,
            tool,
            tool_velocity,
            gripper: self.gripper.map_or(0.0, |g| g.closure(q[g.index])),
            wrench,
            goal: self.goal,
            direction: if self.backward { -1.0 } else { 1.0 },
            topics: self.topics.as_ref(),
        };
        let mut out = std::mem::take(&mut self.observation);
        self.layout.write(&measured, &mut out);
        self.observation = out;
    }

    /// Whether the direction in hand has succeeded, by its own source.
    fn direction_success(&self) -> bool {
        let Some(directions) = &self.config.directions else { return false };
        let (source, topic) = match self.backward {
            false => (&directions.forward, self.success_topics[0]),
            true => (&directions.backward, self.success_topics[1]),
        };
        match source {
            SuccessSource::ToolAt((x, y, z), tolerance) => distance(&self.measured_tool(), &[*x, *y, *z]) < *tolerance,
            SuccessSource::Topic(_) => match (&self.topics, topic) {
                (Some(topics), Some(i)) => topics.values(i)[0] > 0.5,
                _ => false,
            },
        }
    }

    fn distance_to_goal(&self) -> f64 {
        distance(&self.measured_tool(), &self.goal)
    }

    fn start_episode(&mut self) -> Result<(), ArmTaskError> {
        let has_goal = self.config.goal.is_some();
        let reset_free = (self.reset_free && has_goal) || self.config.directions.is_some();
        if reset_free && !self.needs_full_reset {
            // No reset: from wherever the arm and the scene are, forward and
            // backward alternate (a goal task: a sampled goal, then back to
            // the home pose's tool point).
            self.backward = self.backward_next;
            if has_goal {
                self.goal = if self.backward { self.tool(&self.home) } else { self.sample_goal() };
            }
            self.backward_next = !self.backward_next;
        } else {
            self.live.wait_for(rrl_types::Waiting::ResetMoves);
            let moved = self.run_reset_moves();
            self.live.came(rrl_types::Waiting::ResetMoves);
            moved?;
            if let Some(GoalConfig::SampledTool) = self.config.goal {
                self.goal = self.sample_goal();
            }
            self.needs_full_reset = false;
            self.backward = false;
            self.backward_next = true;
        }
        if let Some(topics) = self.topics.as_mut() {
            topics.wait_for_all(self.reset_timeout).map_err(ArmTaskError::Topics)?;
        }
        if self.actions.controls_orientation() {
            self.held_rotation = self.tool_pose(self.state.position.as_slice()).rotation.to_rotation_matrix();
        }
        self.steps = 0;
        self.link.take_events();
        self.write_observation();
        // The first view is of the scene as the reset left it.
        self.capture_frames(SystemClock.now())
    }

    /// The policy's cameras' frames of the observation just written: each
    /// captured at or after `since`.
    fn capture_frames(&mut self, since: rrl_types::Timestamp) -> Result<(), ArmTaskError> {
        match self.cameras.as_mut() {
            Some(cameras) => Ok(cameras.capture(since, &self.live)?),
            None => Ok(()),
        }
    }

    /// The full reset: the first state, off the walls, then the section's moves.
    fn run_reset_moves(&mut self) -> Result<(), ArmTaskError> {
        self.wait_for_first_state()?;
        self.leave_the_walls()?;
        for step in self.config.reset.clone() {
            self.run_reset_move(&step)?;
        }
        Ok(())
    }

    /// This task as a leader arm's follower sees it (see `Follower`); it
    /// sees each state the task takes from now on.
    pub fn follower(&mut self) -> Follower {
        let states = self.follower_states.get_or_insert_with(|| Arc::new(ArrayQueue::new(1))).clone();
        Follower {
            states,
            newest: (self.state.position.len() == self.joints()).then_some(self.state),
            joint_names: self.joint_names.clone(),
            ranges: self.arm.iter().map(|&j| self.soft_range(j).unwrap_or((f64::NEG_INFINITY, f64::INFINITY))).collect(),
            arm: self.arm.clone(),
            gripper: self.gripper,
            workspace: self.workspace.clone(),
            actions: self.actions.clone(),
            live: self.live.clone(),
        }
    }

    /// The scripted demonstrator of this task, where it has one: the reach
    /// expert for a goal task, the pick expert for a task with a gripper
    /// action that observes the tool and one object's pose.
    pub fn scripted_expert(&self) -> Option<Box<dyn FnMut(&[f64], bool) -> Vec<f64>>> {
        let tool_step = self.actions.plain_tool_step()?;
        let gripper_slot = self.actions.has_gripper();
        if let Some(goal) = self.layout.range_of(&Observe::Goal) {
            let to_goal = goal.start + 3..goal.end;
            return Some(Box::new(move |obs: &[f64], _| {
                let mut action: Vec<f64> = obs[to_goal.clone()].iter().zip(tool_step).map(|(d, step)| (d / step).clamp(-1.0, 1.0)).collect();
                if gripper_slot {
                    action.push(-1.0);
                }
                action
            }));
        }
        let object = self.config.observe.iter().find_map(|o| if let Observe::Pose(_) = o { self.layout.range_of(o) } else { None })?;
        let tool = self.layout.range_of(&Observe::Tool)?;
        gripper_slot.then(|| Box::new(pick_expert(tool.start, object.start, tool_step)) as Box<dyn FnMut(&[f64], bool) -> Vec<f64>>)
    }
}

impl Environment for ArmTask {
    type Error = ArmTaskError;

    fn observation_size(&self) -> usize {
        self.layout.size()
    }
    fn action_size(&self) -> usize {
        self.actions.size()
    }
    fn action_low(&self) -> &[f64] {
        &self.actions.low
    }
    fn action_high(&self) -> &[f64] {
        &self.actions.high
    }
    fn observation(&self) -> &[f64] {
        &self.observation
    }
    /// Reset-free, only the first reset drives the arm home; later ones
    /// re-seed and set the next goal from where the arm is.
    fn reset(&mut self, seed: u64) -> &[f64] {
        self.rng = Rng::seed(seed);
        self.reset_next()
    }
    /// A reset that cannot bring the arm home leaves the last observation;
    /// the next step reports why.
    fn reset_next(&mut self) -> &[f64] {
        if let Err(e) = self.start_episode() {
            self.link.fail_later(e.to_string());
        }
        &self.observation
    }
    fn step(&mut self, action: &[f64]) -> Result<Step, ArmTaskError> {
        self.actions.check(action)?;
        self.wait_while_silent()?;
        let mut q_arm = [0.0; MAX_JOINTS];
        for (c, &j) in self.arm.iter().enumerate() {
            q_arm[c] = self.state.position[j];
        }
        let q_arm = &q_arm[..self.arm.len()];
        let tool = self.workspace.as_ref().map(|w| {
            let pose = w.chain.tool_pose_with(|i| self.state.position[i]);
            ([pose.translation.x, pose.translation.y, pose.translation.z], pose.rotation.to_rotation_matrix())
        });
        let mut held = self.held_rotation;
        let target = match self.actions.target(action, tool, &mut held, q_arm) {
            Target::Tool { position, rotation } => Target::Tool { position: self.inside_box(position), rotation },
            joints => joints,
        };
        self.held_rotation = held;
        if let Some(closure) = self.actions.gripper_closure(action) {
            self.gripper_target = closure;
        }
        let ticks = (self.policy_period.as_secs_f64() / self.control_period.as_secs_f64()).round().max(1.0) as usize;
        // Time spent between steps (acting, recording) is not caught up on.
        self.ticks.reanchor();
        let acting_since = SystemClock.now();
        for _ in 0..ticks {
            self.next_state()?;
            self.track(&target);
        }
        self.steps += 1;
        self.write_observation();
        // Frames from before the action took effect are not this step's.
        self.capture_frames(acting_since)?;
        let (reward, success) = match self.config.goal {
            Some(GoalConfig::SampledTool) => {
                let distance = self.distance_to_goal();
                let success = distance < self.tolerance;
                // As the simulated reach: a shaped cost in [-1, 0), 0 on success, which ends the episode.
                (if success { 0.0 } else { -(5.0 * distance).tanh() }, success)
            }
            None if self.config.directions.is_some() => {
                let success = self.direction_success();
                (if success { 1.0 } else { 0.0 }, success)
            }
            // Judged by a human, a VLM or a classifier.
            None => (0.0, false),
        };
        Ok(Step { reward: reward - self.config.step_penalty, terminated: success, truncated: !success && self.steps >= self.max_steps })
    }
    fn success(&self) -> Option<bool> {
        match (&self.config.goal, &self.config.directions) {
            (Some(_), _) => Some(self.distance_to_goal() < self.tolerance),
            (None, Some(_)) => Some(self.direction_success()),
            (None, None) => None,
        }
    }
    fn frames(&self) -> Option<&[u8]> {
        self.cameras.as_ref().map(PolicyCameras::frames)
    }
    fn frame_layout(&self) -> Option<rrl_types::FrameLayout> {
        self.cameras.as_ref().map(PolicyCameras::layout)
    }
}

impl PracticeTask for ArmTask {
    fn take_safety_events(&mut self) -> rrl_types::SafetyEvents {
        self.link.take_events()
    }
    fn take_gate_ticks(&mut self, out: &mut Vec<rrl_types::GateTick>) {
        self.link.take_ticks(out)
    }
    fn offer_risk_critic(&mut self, layers: &[(Vec<Vec<f32>>, Vec<f32>)], acting: bool) -> Result<(), String> {
        let critic = safety::RiskCritic::from_layers(layers.to_vec())?;
        self.critic_loader.offer(critic, acting).map_err(|e| e.to_string())
    }
    fn live_status(&self) -> Option<Arc<rrl_types::LiveStatus>> {
        Some(self.live.clone())
    }
}

/// `point` moved into the workspace box shrunk by `WALL_MARGIN_M` (less
/// in a box too small for it). Targets stay this far off the walls: the
/// inverse kinematics' small overshoot then never meets the gate, which
/// would cut the whole step (the tool would stick to a wall instead of
/// sliding along it) and could leave it pinned where the way home starts
/// outside the box.
fn inside_box(workspace: &CartesianLimits, point: [f64; 3]) -> [f64; 3] {
    std::array::from_fn(|k| {
        let (lo, hi) = (workspace.min[k], workspace.max[k]);
        let margin = WALL_MARGIN_M.min(0.25 * (hi - lo));
        point[k].clamp(lo + margin, hi - margin)
    })
}

fn distance(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    (0..3).map(|k| (a[k] - b[k]).powi(2)).sum::<f64>().sqrt()
}

/// How high the pick expert lifts the object.
const PICK_LIFT_M: f64 = 0.15;
/// The pick expert closes once the tool is this near the object's centre,
/// horizontally and vertically.
const PICK_GRASP_WITHIN_M: f64 = 0.015;
/// The share of the way to its next point the pick expert asks for per
/// step: a real arm's position control lags its commands, and asking for
/// the whole way overshoots and circles the object.
const PICK_GAIN: f64 = 0.6;

/// The scripted pick demonstrator over a real arm's observation (the tool
/// point and the object's position at the given offsets): above the
/// object, down, close, lift. A funnel — the closer above the object, the
/// lower — keeps the action a smooth function of where the hand is, which
/// a policy can clone without averaging two modes.
pub fn pick_expert(tool: usize, object: usize, tool_step: [f64; 3]) -> impl FnMut(&[f64], bool) -> Vec<f64> {
    let mut grasp_steps = 0u32;
    move |obs: &[f64], start: bool| {
        if start {
            grasp_steps = 0;
        }
        let (hand, thing) = (&obs[tool..tool + 3], &obs[object..object + 3]);
        let toward = |target: [f64; 3], close: f64| -> Vec<f64> {
            let mut action: Vec<f64> = (0..3).map(|k| (PICK_GAIN * (target[k] - hand[k]) / tool_step[k]).clamp(-1.0, 1.0)).collect();
            action.push(close);
            action
        };
        let horizontal = ((hand[0] - thing[0]).powi(2) + (hand[1] - thing[1]).powi(2)).sqrt();
        if grasp_steps > 0 {
            grasp_steps += 1;
            // Close first, then lift.
            if grasp_steps < 5 {
                return toward([hand[0], hand[1], hand[2]], 1.0);
            }
            return toward([hand[0], hand[1], thing[2] + PICK_LIFT_M], 1.0);
        }
        if horizontal > PICK_GRASP_WITHIN_M || hand[2] - thing[2] > PICK_GRASP_WITHIN_M {
            return toward([thing[0], thing[1], thing[2] + (3.0 * horizontal).min(0.1)], -1.0);
        }
        grasp_steps = 1;
        toward([hand[0], hand[1], hand[2]], 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_bridge::arm::{SimArm, WallClockArm};

    fn panda_over_ros_launch() -> LaunchFile {
        LaunchFile::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../launch/files/sim_panda_over_ros.ron")).expect("the shipped launch file loads")
    }

    /// A policy that pushes the tool into the box's floor and corners: the
    /// tool slides along the walls into each corner (it used to stick to
    /// the first wall it met), and the reset still brings the arm home (its
    /// way home once started outside the box and the gate refused it).
    #[test]
    fn the_reset_brings_the_arm_home_from_a_corner_of_the_box_floor() {
        let mut launch = panda_over_ros_launch();
        // Home exactly (no reset noise): the check below is then about the way home alone.
        launch.practice.reset_noise_rad = 0.0;
        let hardware = WallClockArm::new(SimArm::panda().unwrap());
        let mut task = ArmTask::start(hardware, &launch, 0).unwrap();
        task.start_episode().expect("the first reset from the simulator's start pose");
        // Down to the floor; to the far wall, then down into its corner; to the side wall (about 1 cm a step along the far one), then down.
        let floor = [0.0, 0.0, -1.0];
        let corners: [&[([f64; 3], usize)]; 3] = [&[(floor, 40)], &[([1.0, 0.0, 0.0], 25), (floor, 40)], &[([1.0, 1.0, 0.0], 40), (floor, 40)]];
        for pushes in corners {
            for &(push, steps) in pushes {
                for _ in 0..steps {
                    task.step(&push).expect("a push into the box's walls is a valid step");
                }
            }
            // The tool slid along each wall it was pushed against into the corner.
            let tool = task.tool(task.state.position.as_slice());
            let (min, max) = (task.chain().min, task.chain().max);
            for &(push, _) in pushes {
                for k in 0..3 {
                    let wall = if push[k] > 0.0 { max[k] - tool[k] } else if push[k] < 0.0 { tool[k] - min[k] } else { continue };
                    assert!((0.0..0.03).contains(&wall), "pushed along axis {k} ({pushes:?}): tool at {tool:?}, {wall} m from the wall");
                }
            }
            task.start_episode().unwrap_or_else(|e| panic!("reset after pushing {pushes:?} (tool at {tool:?}): {e}"));
            let home_tool = task.tool(&task.home);
            let tool = task.tool(task.state.position.as_slice());
            let off = (0..3).map(|k| (tool[k] - home_tool[k]).powi(2)).sum::<f64>().sqrt();
            // Measured about 1 cm (the joints stop within 0.02 rad of home).
            assert!(off < 0.03, "after the reset the tool is {off} m from home's tool point");
        }
    }
}
