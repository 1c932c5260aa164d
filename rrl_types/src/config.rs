//! The launch file: one RON document that describes a run (robot and driver,
//! cameras, safety limits, learner, reward source, practice schedule).
//!
//! Parsing is strict (`deny_unknown_fields`, externally tagged enums) and
//! every error names `file:line:column`, the field's path and, where one
//! helps, a hint. Defaults are documented next to each field; the user
//! guide's configuration reference (docs/guide/configuration.md) mirrors
//! this file.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ron_locator::{locate_values, TextPosition};

mod arm_task;
mod console;
mod course;
mod leader;
mod pixels;
pub use arm_task::*;
pub use console::ConsoleConfig;
pub use course::*;
pub use leader::*;
pub use pixels::*;

// ---------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchFile {
    /// Name of the run; outputs go to `runs/<name>/`.
    pub name: String,
    /// ROS 2 namespace for this robot's nodes and topics. Default: "" (root).
    /// Give each robot its own to run several side by side.
    #[serde(default)]
    pub namespace: String,
    /// The robot and its driver.
    pub robot: RobotConfig,
    /// Cameras feeding observations and the reward node. Default: none.
    #[serde(default)]
    pub cameras: Vec<CameraConfig>,
    /// The gate between every action source and the hardware.
    pub safety: SafetyConfig,
    /// Off-policy learner hyperparameters. Default: SAC, cleanrl-like.
    #[serde(default)]
    pub learner: LearnerConfig,
    /// Where rewards come from. Default: `Task` (the simulated task's own).
    #[serde(default)]
    pub reward: RewardConfig,
    /// Autonomous practice schedule. Default: see `PracticeConfig`.
    #[serde(default)]
    pub practice: PracticeConfig,
    /// Real arms: the task practised (actions, gripper, observation, goal,
    /// resets). Default: the reach task (`ArmTaskConfig::default()`).
    #[serde(default)]
    pub task: ArmTaskConfig,
    /// A leader arm the follower tracks (teleop demos, takeover during
    /// practice). Default: none.
    #[serde(default)]
    pub leader: Option<LeaderArmConfig>,
    /// A car's course: checkpoints to race through, the arena, and the
    /// simulated twin's obstacles. Needed by `Sim((task: CarCourse))` and
    /// by a `Car(..)` that practises. Default: none.
    #[serde(default)]
    pub course: Option<CourseConfig>,
    /// The operator's browser console, served with `--console`. Default:
    /// on 127.0.0.1:8765.
    #[serde(default)]
    pub console: ConsoleConfig,
}

/// The supported robot kinds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RobotConfig {
    /// A MuJoCo simulation behind the same hardware interface.
    Sim(SimRobotConfig),
    /// A serial-servo arm (Dynamixel Protocol 2.0 or Feetech STS/SCS).
    SerialArm(SerialArmConfig),
    /// A ros2_control arm driven over its topics.
    TopicArm(TopicArmConfig),
    /// A small car: `geometry_msgs/Twist` out, odometry (and IMU) in.
    Car(CarConfig),
}

impl RobotConfig {
    pub fn kind_name(&self) -> &'static str {
        match self {
            RobotConfig::Sim(_) => "Sim",
            RobotConfig::SerialArm(_) => "SerialArm",
            RobotConfig::TopicArm(_) => "TopicArm",
            RobotConfig::Car(_) => "Car",
        }
    }

    pub fn control_rate_hz(&self) -> f64 {
        match self {
            RobotConfig::Sim(c) => c.control_rate_hz,
            RobotConfig::SerialArm(c) => c.control_rate_hz,
            RobotConfig::TopicArm(c) => c.control_rate_hz,
            RobotConfig::Car(c) => c.control_rate_hz,
        }
    }

    /// Joint names the robot exposes, in command order.
    pub fn joint_names(&self) -> Vec<String> {
        match self {
            RobotConfig::Sim(c) => c.task.joint_names().iter().map(|s| s.to_string()).collect(),
            RobotConfig::SerialArm(c) => c.joints.iter().map(|j| j.name.clone()).collect(),
            RobotConfig::TopicArm(c) => c.joint_names.iter().chain(c.gripper.as_ref().map(|g| &g.joint)).cloned().collect(),
            RobotConfig::Car(_) => CAR_JOINTS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

fn default_control_rate_hz() -> f64 {
    100.0
}
fn default_state_timeout_ms() -> u64 {
    100
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimRobotConfig {
    /// Which simulated task.
    pub task: SimTask,
    /// Control loop rate in simulated time. Default: 100 Hz.
    #[serde(default = "default_control_rate_hz")]
    pub control_rate_hz: f64,
    /// Seed of the first episode. Default: 0.
    #[serde(default)]
    pub seed: u64,
    /// Run faster than real time when nothing waits on the wall clock. Default: true.
    #[serde(default = "default_true")]
    pub faster_than_real_time: bool,
    /// How the Panda tasks turn end-effector actions into joint work.
    /// Default: InverseKinematics.
    #[serde(default)]
    pub controller: PandaController,
    /// How pick-cube reads its gripper slot: `Continuous` (−1 open … +1
    /// closed, any opening between) or `OpenClose` (above 0 closes, else
    /// opens), as a real arm's `task.actions` gripper. Default: Continuous.
    #[serde(default = "continuous_gripper")]
    pub gripper: GripperAction,
    /// Cameras (names of `cameras` entries with `Sim(..)` sources, all of
    /// one square size) whose frames the policy sees beside the robot's
    /// own state; pick-cube then leaves the cube's position out of the
    /// state, as a real robot would not know it. Default: none (state only).
    #[serde(default)]
    pub observe_cameras: Vec<String>,
}

/// The Cartesian controller of the simulated Panda.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum PandaController {
    /// Damped least-squares inverse kinematics streaming joint position
    /// targets (gated in position mode at 100 Hz) to a joint impedance
    /// controller: how a position-controlled arm is driven.
    #[default]
    InverseKinematics,
    /// Operational-space control: joint torques from the task-space
    /// inertia every physics step (gated in effort mode at that rate), as
    /// gym-hil drives its Panda.
    OperationalSpace,
}

fn default_true() -> bool {
    true
}

fn continuous_gripper() -> GripperAction {
    GripperAction::Continuous
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SimTask {
    PandaPickCube,
    PandaReach,
    InvertedPendulum,
    InvertedDoublePendulum,
    HalfCheetah,
    Hopper,
    Walker2d,
    Ant,
    /// The car twin racing the launch file's `course` (FastRLAP's task).
    CarCourse,
}

impl SimTask {
    /// Actuated joints, by the names the MJCF models give them.
    pub fn joint_names(self) -> &'static [&'static str] {
        match self {
            SimTask::PandaPickCube | SimTask::PandaReach => {
                &["joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "joint7"]
            }
            SimTask::InvertedPendulum => &["slider"],
            SimTask::InvertedDoublePendulum => &["slider"],
            SimTask::HalfCheetah => &["bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot"],
            SimTask::Hopper => &["thigh_joint", "leg_joint", "foot_joint"],
            SimTask::Walker2d => &[
                "thigh_joint",
                "leg_joint",
                "foot_joint",
                "thigh_left_joint",
                "leg_left_joint",
                "foot_left_joint",
            ],
            SimTask::Ant => &["hip_1", "ankle_1", "hip_2", "ankle_2", "hip_3", "ankle_3", "hip_4", "ankle_4"],
            SimTask::CarCourse => &CAR_JOINTS,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServoProtocol {
    /// Dynamixel Protocol 2.0 (X series; Koch, WidowX/ViperX, ALOHA).
    Dynamixel,
    /// Feetech STS/SCS (SO-100 / SO-101).
    Feetech,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SerialArmConfig {
    /// Serial port, e.g. "/dev/ttyUSB0" or a /dev/serial/by-id path.
    pub port: String,
    pub protocol: ServoProtocol,
    /// Bus baud rate. Default: 1_000_000.
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// Control loop rate. Default: 100 Hz.
    #[serde(default = "default_control_rate_hz")]
    pub control_rate_hz: f64,
    /// How long to wait for a status packet. Default: 10 ms.
    #[serde(default = "default_serial_timeout_ms")]
    pub read_timeout_ms: u64,
    /// Retries of a failed transaction before the driver reports an error. Default: 2.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// One entry per servo, in command order.
    pub joints: Vec<ServoJointConfig>,
}

fn default_baud() -> u32 {
    1_000_000
}
fn default_serial_timeout_ms() -> u64 {
    10
}
fn default_retries() -> u32 {
    2
}

/// Baud rates the supported servo families accept.
pub const SUPPORTED_BAUD_RATES: &[u32] =
    &[9_600, 19_200, 38_400, 57_600, 115_200, 128_000, 250_000, 500_000, 1_000_000, 2_000_000, 3_000_000, 4_000_000, 4_500_000];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServoJointConfig {
    pub name: String,
    /// Servo id on the bus.
    pub id: u8,
    /// Ticks read at the joint's zero. Default: half a turn (2048 of 4096).
    #[serde(default = "default_offset_ticks")]
    pub zero_ticks: i32,
    /// Whether positive ticks are positive radians. Default: `Forward`.
    #[serde(default)]
    pub direction: Direction,
    /// Encoder ticks per revolution. Default: 4096.
    #[serde(default = "default_ticks_per_revolution")]
    pub ticks_per_revolution: u32,
}

fn default_offset_ticks() -> i32 {
    2048
}
fn default_ticks_per_revolution() -> u32 {
    4096
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Direction {
    #[default]
    Forward,
    Reversed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicArmConfig {
    /// Joint names in command order; `/joint_states` is reordered to match.
    pub joint_names: Vec<String>,
    /// Where the arm publishes `sensor_msgs/JointState`. Default: "joint_states".
    #[serde(default = "default_joint_states_topic")]
    pub state_topic: String,
    /// Which ros2_control controller takes the commands.
    pub command: ArmCommandTopic,
    /// Control loop rate. Default: 100 Hz.
    #[serde(default = "default_control_rate_hz")]
    pub control_rate_hz: f64,
    /// A state older than this holds the arm. Default: 100 ms.
    #[serde(default = "default_state_timeout_ms")]
    pub state_timeout_ms: u64,
    /// Where the arm publishes its external wrench at the end effector
    /// (`geometry_msgs/WrenchStamped`, e.g. a force-torque sensor or the
    /// robot's own estimate), checked against `safety.max_force_n`. A
    /// wrench older than `state_timeout_ms` reads as unknown (NaN), which
    /// the gate holds on. Default: none.
    #[serde(default)]
    pub wrench_topic: Option<String>,
    /// Stamp states and wrenches when they arrive here instead of with
    /// their header time: for an arm whose clock is not this computer's (no
    /// time sync between the machines, or a simulator stamping simulated
    /// time). Staleness then measures delivery, not the arm's own latency.
    /// Default: false.
    #[serde(default)]
    pub stamp_on_arrival: bool,
    /// The gripper, driven by its own controller: its joint (read from the
    /// same joint states; it follows the arm's joints in command order) and
    /// the topic its position command goes to. Default: none.
    #[serde(default)]
    pub gripper: Option<TopicGripper>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicGripper {
    /// The gripper joint's name in `joint_states`.
    pub joint: String,
    /// A forward position controller of that joint (one value), or a
    /// trajectory controller (one point, that joint).
    pub command: ArmCommandTopic,
}

fn default_joint_states_topic() -> String {
    "joint_states".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ArmCommandTopic {
    /// `std_msgs/Float64MultiArray` to a forward position controller.
    ForwardPosition { topic: String },
    /// `std_msgs/Float64MultiArray` to a forward velocity controller.
    ForwardVelocity { topic: String },
    /// `trajectory_msgs/JointTrajectory` with one point `time_from_start_ms` ahead.
    Trajectory { topic: String, time_from_start_ms: u64 },
}

impl ArmCommandTopic {
    pub fn topic(&self) -> &str {
        match self {
            ArmCommandTopic::ForwardPosition { topic }
            | ArmCommandTopic::ForwardVelocity { topic }
            | ArmCommandTopic::Trajectory { topic, .. } => topic,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarConfig {
    /// `geometry_msgs/Twist` commands. Default: "cmd_vel".
    #[serde(default = "default_cmd_vel")]
    pub cmd_vel_topic: String,
    /// `nav_msgs/Odometry` state. Default: "odom".
    #[serde(default = "default_odom")]
    pub odom_topic: String,
    /// Optional `sensor_msgs/Imu`. Default: none.
    #[serde(default)]
    pub imu_topic: Option<String>,
    /// Control loop rate. Default: 100 Hz.
    #[serde(default = "default_control_rate_hz")]
    pub control_rate_hz: f64,
    /// Odometry older than this stops the car. Default: 100 ms.
    #[serde(default = "default_state_timeout_ms")]
    pub state_timeout_ms: u64,
    /// Largest forward/backward speed commanded, m/s.
    pub max_linear_mps: f64,
    /// Largest yaw rate commanded, rad/s.
    pub max_angular_rps: f64,
    /// Cameras (names of `cameras` entries: OpenCV sources or image
    /// topics, all of one size) whose frames the policy sees beside the
    /// car's state. Default: none (state only).
    #[serde(default)]
    pub observe_cameras: Vec<String>,
}

fn default_cmd_vel() -> String {
    "cmd_vel".into()
}
fn default_odom() -> String {
    "odom".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    /// Used in topic names (`<namespace>/<name>/image_raw`) and observation keys.
    pub name: String,
    pub source: CameraSource,
    /// Resolution the policy sees (frames are resized/cropped to it). Default: 128x128.
    #[serde(default = "default_image_side")]
    pub width: u32,
    #[serde(default = "default_image_side")]
    pub height: u32,
    /// Capture rate requested from the device. Default: 30.
    #[serde(default = "default_fps")]
    pub fps: f64,
    /// The region of interest, in the source's pixels, cut out before the
    /// frame is brought to `width` x `height` (centre-cropped to that
    /// aspect ratio, then resized). Default: `None`, the whole frame.
    #[serde(default)]
    pub crop: Option<CameraCrop>,
}

/// A rectangle of a camera's frame: left and top edges, width and height, pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraCrop {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

fn default_image_side() -> u32 {
    128
}
fn default_fps() -> f64 {
    30.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CameraSource {
    /// A V4L2 device by index (0 = /dev/video0).
    Device(i32),
    /// A device path, video file or URL OpenCV can open.
    Path(String),
    /// Numbered images, e.g. "frames/%04d.png".
    ImageSequence(String),
    /// A `sensor_msgs/Image` topic published by another node.
    Topic(String),
    /// A camera of the simulated robot's model, by its MJCF name.
    Sim(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafetyConfig {
    /// Published limits of a known robot, applied first. Default: none.
    #[serde(default)]
    pub preset: Option<RobotPreset>,
    /// A command older than this is not forwarded: hold. Default: 50 ms.
    #[serde(default = "default_gate_timeout_ms")]
    pub command_timeout_ms: u64,
    /// A state older than this (or a frozen stamp) means hold. Default: 50 ms.
    #[serde(default = "default_gate_timeout_ms")]
    pub state_timeout_ms: u64,
    /// Position limits are tightened by this margin, radians. Default: 0.05.
    #[serde(default = "default_soft_margin")]
    pub soft_margin_rad: f64,
    /// Per-joint limits; override the preset's for the joints named.
    #[serde(default)]
    pub joints: Vec<JointLimitsConfig>,
    /// The robot's URDF: joint limits default to its `<limit>` tags (after
    /// the preset's, before `joints`), and the workspace box follows its
    /// kinematic chain. Default: none.
    #[serde(default)]
    pub urdf: Option<UrdfConfig>,
    /// Cartesian box for the end effector. Default: none.
    #[serde(default)]
    pub workspace: Option<WorkspaceConfig>,
    /// External force threshold when the robot reports a wrench, N. Default: none.
    #[serde(default)]
    pub max_force_n: Option<f64>,
    /// Joint torque threshold when the robot reports efforts, Nm. Default: none.
    #[serde(default)]
    pub max_torque_nm: Option<f64>,
    /// Learned risk critic evaluated every tick. Default: none (rules only).
    #[serde(default)]
    pub risk_critic: Option<RiskCriticConfig>,
}

fn default_gate_timeout_ms() -> u64 {
    50
}
fn default_soft_margin() -> f64 {
    0.05
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RobotPreset {
    FrankaPanda,
    /// Franka Research 3 (the Panda's kinematics, its own joint names
    /// `fr3_joint1..7` and limits).
    FrankaResearch3,
    So101,
    Koch,
}

impl RobotPreset {
    /// Whether the gate knows this robot's kinematic chain without a URDF
    /// (the Frankas' published parameters, the SO-101's built-in URDF).
    pub fn has_kinematics(self) -> bool {
        matches!(self, RobotPreset::FrankaPanda | RobotPreset::FrankaResearch3 | RobotPreset::So101)
    }

    pub fn joint_names(self) -> &'static [&'static str] {
        match self {
            RobotPreset::FrankaPanda => &["joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "joint7"],
            RobotPreset::FrankaResearch3 => &["fr3_joint1", "fr3_joint2", "fr3_joint3", "fr3_joint4", "fr3_joint5", "fr3_joint6", "fr3_joint7"],
            RobotPreset::So101 | RobotPreset::Koch => {
                &["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JointLimitsConfig {
    pub name: String,
    /// Position range, rad (or m for prismatic joints).
    #[serde(default)]
    pub position: Option<Range>,
    /// Largest |velocity|, rad/s.
    #[serde(default)]
    pub velocity: Option<f64>,
    /// Largest |acceleration|, rad/s².
    #[serde(default)]
    pub acceleration: Option<f64>,
    /// Largest |jerk|, rad/s³.
    #[serde(default)]
    pub jerk: Option<f64>,
    /// Largest |effort| commanded, Nm.
    #[serde(default)]
    pub effort: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceConfig {
    /// Box corners in the base frame, metres.
    pub min: (f64, f64, f64),
    pub max: (f64, f64, f64),
    /// Largest end-effector displacement per control tick, m. Default: 0.01.
    #[serde(default = "default_max_step_m")]
    pub max_step_m: f64,
    /// Largest end-effector speed, m/s. Default: 0.5.
    #[serde(default = "default_max_speed")]
    pub max_speed_mps: f64,
    /// The checked point, offset from the chain's tip in the tip's frame,
    /// m (e.g. from a Panda's flange to its fingertips). Default: (0, 0, 0).
    #[serde(default)]
    pub tool_offset_m: (f64, f64, f64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrdfConfig {
    /// Path to the URDF; relative paths are relative to the launch file.
    pub file: String,
    /// The link the workspace box is expressed in.
    pub base_link: String,
    /// The link whose origin (plus `workspace.tool_offset_m`) is checked.
    pub tip_link: String,
}

fn default_max_step_m() -> f64 {
    0.01
}
fn default_max_speed() -> f64 {
    0.5
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskCriticConfig {
    /// Critic weights exported by `rrl safety train-critic` or the learner
    /// (plain format); relative paths are relative to the launch file.
    /// May be left out when `online` trains one during practice.
    #[serde(default)]
    pub weights: String,
    /// Train the critic during practice from the gate's ticks (Bresa
    /// style): the learner publishes it to the gate, in shadow mode (scored
    /// and recorded, not acting) until its held-out precision passes.
    #[serde(default)]
    pub online: Option<OnlineRiskCriticConfig>,
    /// Risk above this triggers the reflex. In (0, 1). Default: 0.3.
    #[serde(default = "default_risk_threshold")]
    pub threshold: f64,
    /// What to do when the risk is too high. Default: `Hold`.
    #[serde(default)]
    pub reflex: Reflex,
}

fn default_risk_threshold() -> f64 {
    0.3
}

/// How the learner trains the risk critic during practice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OnlineRiskCriticConfig {
    /// The critic is published to the gate every this many critic updates
    /// (one per environment step).
    pub publish_every: u64,
    /// The held-out precision (flagged ticks followed by a violation within
    /// `horizon_ticks`) at which the critic leaves shadow mode and acts. Low
    /// by default: a false alarm costs a tick of deceleration (docs/benchmarks.md:
    /// at 0.5 the critic hardly ever acted on the simulated Panda).
    pub min_precision: f64,
    /// And the held-out recall it needs as well: a critic that flags
    /// nothing is not precise, it is idle.
    pub min_recall: f64,
    pub horizon_ticks: u64,
    /// Discount of the Recovery RL target per gate tick.
    pub gamma_risk: f64,
    pub hidden: Vec<i64>,
    /// Every this many episodes, one's ticks are held out to judge the critic.
    pub holdout_every: u64,
    /// What the critic learns to anticipate.
    pub label: RiskLabel,
    /// An A/B test inside one run: a critic that passed its check acts in
    /// the even-numbered episodes only and shadows in the odd ones, so the
    /// run measures what its reflex prevents against the rules alone with
    /// the same policy and the same critic (separate runs differ more by
    /// practice's own variation than by the reflex).
    pub alternate_episodes: bool,
}

impl Default for OnlineRiskCriticConfig {
    fn default() -> Self {
        OnlineRiskCriticConfig { publish_every: 200, min_precision: 0.2, min_recall: 0.3, horizon_ticks: 10, gamma_risk: 0.5, hidden: vec![64, 64], holdout_every: 4, label: RiskLabel::Violation, alternate_episodes: false }
    }
}

/// What makes a gate tick a cost for the risk critic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RiskLabel {
    /// The measured state broke a limit (a joint past its range, the tool
    /// outside its box): what the rules did not prevent.
    #[default]
    Violation,
    /// The gate protected: a hard limit reached, a hold, a reflex.
    Protective,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Reflex {
    /// Stop where the last tick left the joints.
    #[default]
    Hold,
    /// Undo this tick's step and coast at half the speed.
    Decelerate,
    /// Retreat, within the joint limits, toward the last command the critic
    /// judged comfortably safe (risk below half the threshold); holds when
    /// there is none yet or the robot is not position-controlled.
    Recover,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum DeviceChoice {
    /// CUDA when a GPU is visible, else CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LearnerConfig {
    /// Default: `Auto`.
    pub device: DeviceChoice,
    /// Hidden layer widths of actor and critics. Default: [256, 256].
    pub hidden: Vec<u32>,
    /// Critics in the ensemble. Default: 2 (RLPD/SERL: 10).
    pub critics: u32,
    /// Critics sampled for the target minimum. Default: 2.
    pub target_critics: u32,
    /// LayerNorm in the critics. Default: false (RLPD/SERL: true).
    pub critic_layer_norm: bool,
    /// Default: 256.
    pub batch_size: u32,
    /// Critic updates per environment step. Default: 1.
    pub utd: u32,
    /// Default: 3e-4.
    pub actor_lr: f64,
    /// Default: 3e-4.
    pub critic_lr: f64,
    /// Default: 0.99.
    pub gamma: f64,
    /// Polyak factor of the target critics. Default: 0.005.
    pub tau: f64,
    /// n-step returns. Default: 1.
    pub n_step: u32,
    /// Share of each batch drawn from demos (RLPD: 0.5). Default: 0.5.
    pub demo_ratio: f64,
    /// Replay capacity in transitions. Default: 1_000_000.
    pub replay_capacity: u64,
    /// Random actions before learning starts. Default: 1000.
    pub warmup_steps: u64,
    /// Learner updates at the start that train only the critics: the actor
    /// and the temperature wait. A residual on a base that already succeeds
    /// then keeps acting as the base while the critics learn what its
    /// actions are worth, instead of following an untrained critic's
    /// gradient away from it. Default: 0.
    pub critic_warmup_updates: u64,
    /// A residual's exploration at the start: the standard deviation of its
    /// Gaussian before the squash. Small keeps the first practice episodes
    /// close to the base (whose successes the critics then learn from)
    /// where a wide one breaks a precise base's grasp. Default: e^-1.5 ≈
    /// 0.22, the middle of the log-std range.
    pub residual_initial_std: Option<f64>,
    /// Weight of the squared residual (summed over actions, in [-1, 1]
    /// units) in the actor's loss: a residual then stays near its base
    /// unless the critics value a correction by more (the critics' values
    /// are returns). Counters an actor that follows the critics'
    /// extrapolation to the action bounds. Default: 0.
    pub residual_penalty: f64,
    /// Weights are published every this many updates. Default: 100.
    pub publish_every_updates: u64,
    /// Entropy temperature at the start (then tuned automatically).
    /// Default: 1.0 (SERL uses 0.01 for manipulation).
    pub initial_temperature: f64,
    /// Entropy the temperature is tuned toward, per action dimension.
    /// Lower keeps the policy's samples close to its mean (a residual on a
    /// precise base). Default: -1.0 (SAC's −|A|).
    pub target_entropy_per_action: f64,
    /// ROS namespace of the actor ↔ learner topics; robots that share one
    /// learner name the same one. Default: the launch file's namespace.
    pub namespace: Option<String>,
    /// How a policy that sees cameras encodes their frames. Default:
    /// `PixelEncoderConfig::default()` (DrQ).
    pub pixels: PixelEncoderConfig,
}

impl LaunchFile {
    /// Where this robot's actor and its learner meet over ROS 2.
    pub fn learner_namespace(&self) -> &str {
        self.learner.namespace.as_deref().unwrap_or(&self.namespace)
    }

    /// The cameras the policy sees, in the order its frames are laid out:
    /// a simulation's or a car's `observe_cameras`, a real arm's
    /// `task.observe` cameras.
    pub fn observed_cameras(&self) -> Vec<&String> {
        match &self.robot {
            RobotConfig::Sim(sim) => sim.observe_cameras.iter().collect(),
            RobotConfig::Car(car) => car.observe_cameras.iter().collect(),
            RobotConfig::TopicArm(_) | RobotConfig::SerialArm(_) => self.task.observe.iter().filter_map(|o| if let Observe::Camera(name) = o { Some(name) } else { None }).collect(),
        }
    }
}

impl Default for LearnerConfig {
    fn default() -> Self {
        LearnerConfig {
            device: DeviceChoice::Auto,
            hidden: vec![256, 256],
            critics: 2,
            target_critics: 2,
            critic_layer_norm: false,
            batch_size: 256,
            utd: 1,
            actor_lr: 3e-4,
            critic_lr: 3e-4,
            gamma: 0.99,
            tau: 0.005,
            n_step: 1,
            demo_ratio: 0.5,
            replay_capacity: 1_000_000,
            warmup_steps: 1000,
            critic_warmup_updates: 0,
            residual_initial_std: None,
            residual_penalty: 0.0,
            publish_every_updates: 100,
            initial_temperature: 1.0,
            target_entropy_per_action: -1.0,
            namespace: None,
            pixels: PixelEncoderConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub enum RewardConfig {
    /// The simulated task's own reward and success.
    #[default]
    Task,
    /// A VLM progress critic behind an OpenAI-compatible endpoint.
    Vlm(VlmRewardConfig),
    /// A success classifier (`rrl classifier train`) on the policy's cameras.
    Classifier(ClassifierRewardConfig),
    /// Success and failure from a human's key presses.
    Human,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VlmRewardConfig {
    /// e.g. "http://127.0.0.1:8000/v1/chat/completions".
    pub endpoint: String,
    pub model: String,
    /// The task in words.
    pub task: String,
    /// Cameras whose frames are scored.
    pub cameras: Vec<String>,
    /// Environment variable holding the API key, if the endpoint needs one.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// An https endpoint's root certificates (a PEM file, relative to the
    /// launch file), trusted instead of the system's: a private endpoint
    /// with its own certificate authority. Default: the system's roots.
    #[serde(default)]
    pub root_certificates: Option<String>,
    /// Default: 5000 ms.
    #[serde(default = "default_vlm_timeout_ms")]
    pub timeout_ms: u64,
    /// Requests in flight at once. Default: 4.
    #[serde(default = "default_vlm_concurrency")]
    pub max_concurrent: u32,
    /// The critic's `done` (its completion answer above the threshold)
    /// ends the episode as a success at the step it arrives in. Default: true.
    #[serde(default = "default_true")]
    pub done_ends_episode: bool,
}

/// `reward: Classifier((..))`: reward 1 for a step whose frames the
/// classifier calls a success, else 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierRewardConfig {
    /// The classifier file written by `rrl classifier train`; relative to the launch file.
    pub model: String,
    /// The policy's cameras it looks at, in the order it was trained on
    /// them. Default: all the cameras the policy sees.
    #[serde(default)]
    pub cameras: Vec<String>,
    /// Overrides the threshold the classifier was saved with (chosen for
    /// precision on held-out frames). Default: `None`, the saved one.
    #[serde(default)]
    pub threshold: Option<f64>,
    /// A success ends the episode. Default: true.
    #[serde(default = "default_true")]
    pub terminate: bool,
    /// The frozen trunk the classifier was trained on, if it was; relative
    /// to the launch file. Default: `None` (it trained its own convolutions).
    #[serde(default)]
    pub trunk: Option<String>,
    /// How long a step waits for its score; a later one is counted missing
    /// and the step learns reward 0. Default: 500 ms.
    #[serde(default = "default_classifier_deadline_ms")]
    pub deadline_ms: u64,
    /// A VLM progress critic whose progress adds dense shaping to the
    /// classifier's sparse success: each step's reward is the verdict
    /// (1 or 0) plus the critic's progress delta (its `done` ends nothing:
    /// the classifier does). Default: `None`.
    #[serde(default)]
    pub progress: Option<VlmRewardConfig>,
}

fn default_classifier_deadline_ms() -> u64 {
    500
}

fn default_vlm_timeout_ms() -> u64 {
    5000
}
fn default_vlm_concurrency() -> u32 {
    4
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PracticeConfig {
    /// Rate the policy acts at. Default: 10 Hz.
    pub policy_rate_hz: f64,
    /// Episode length limit in policy steps. Default: 100.
    pub max_episode_steps: u32,
    /// Scripted demo episodes recorded before practice (sim). Default: 10.
    pub demo_episodes: u32,
    /// Uniform noise (±, in each action's own units) added to the scripted
    /// demonstrator's actions, one value per action, e.g. `[0.4, 0.4, 0.4,
    /// 0.0]` for a pick's Cartesian steps but not its gripper: a weaker
    /// teacher, so a base cloned from the demos leaves practice something
    /// to add. Default: `[]` (none).
    pub demo_noise: Vec<f64>,
    /// Practice budget in environment steps. Default: 20_000.
    pub total_steps: u64,
    /// Evaluation episodes at the end. Default: 20.
    pub eval_episodes: u32,
    /// Uniform noise added to the home pose at reset, rad. Default: 0.05.
    pub reset_noise_rad: f64,
    /// No progress for this long triggers the recovery manoeuvre. Default: 5 s.
    pub stuck_timeout_s: f64,
    /// Real arms: the joint pose resets return to, one value per joint.
    /// Default: the pose the arm stands in when practice starts.
    pub home: Option<Vec<f64>>,
    /// Real arms: largest tool displacement per policy step and axis (the
    /// action scale of the reach task), m. Default: 0.02.
    pub tool_step_m: f64,
    /// Real arms: the reach task succeeds with the tool this close to its
    /// goal, m. Default: 0.02.
    pub goal_tolerance_m: f64,
    /// Real arms: a reset that has not brought the arm home after this
    /// long stops practice. Default: 10 s.
    pub reset_timeout_s: f64,
    /// Practice without resets (reach tasks): after the first episode,
    /// episodes alternate between a sampled goal and the home pose's tool
    /// point, each starting where the last ended. Default: false.
    pub reset_free: bool,
    /// Residual RL: the learner learns a correction on top of this frozen
    /// base policy instead of acting alone. Default: None.
    pub base: PracticeBase,
    /// Practice ends early once this share of the last 20 practice
    /// episodes succeeded and the same share of `confirm_episodes`
    /// episodes with the deterministic policy confirm it (then the final
    /// evaluation runs). Default: None.
    pub stop_at_success: Option<f64>,
    /// Episodes with the deterministic policy that confirm an early stop;
    /// a learner thread (`--learner local`) or the learner node of
    /// practice's own process (`--learner node`) holds still while they
    /// run, so the policy confirmed is the policy checkpointed. Default: 10.
    pub confirm_episodes: u32,
}

/// The frozen policy a residual learner corrects.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub enum PracticeBase {
    /// No base: the learner acts alone.
    #[default]
    None,
    /// Behaviour cloning with action chunks on the run's demos, trained
    /// before practice and kept as `bc.safetensors` in the run folder.
    BehaviourCloning(BehaviourCloningBase),
    /// A policy file: `bc.safetensors` from `rrl bc train`, or TorchScript
    /// (.pt/.ts) taking [1, O] observations; relative to the launch file.
    File(FileBase),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BehaviourCloningBase {
    /// Gradient steps. Default: 3000.
    pub steps: usize,
    /// Actions predicted per chunk. Default: 4.
    pub horizon: usize,
    /// Actions of each chunk played before predicting again. Default: 2.
    pub execute: usize,
    /// Largest residual, in the task's [-1, 1] action units: one number
    /// for every action, or one per action. Default: 0.3.
    pub residual_scale: ResidualScale,
}

impl Default for BehaviourCloningBase {
    fn default() -> Self {
        BehaviourCloningBase { steps: 3000, horizon: 4, execute: 2, residual_scale: ResidualScale::default() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileBase {
    pub path: String,
    /// Actions played from each action chunk of a TorchScript base. Default: 1.
    #[serde(default = "default_base_execute")]
    pub execute: usize,
    /// Largest residual, in the task's [-1, 1] action units: one number
    /// for every action, or one per action. Default: 0.3.
    #[serde(default)]
    pub residual_scale: ResidualScale,
}

fn default_base_execute() -> usize {
    1
}

/// How far a residual may move each action from the base's, in the task's
/// [-1, 1] action units: `0.3` for every action, or one bound per action,
/// e.g. `[0.3, 0.3, 0.3, 1.0]` for small Cartesian corrections but full
/// authority over a gripper command (a base that closes the gripper at the
/// wrong moment cannot be corrected by ±0.3 of its range).
#[derive(Debug, Clone, PartialEq)]
pub enum ResidualScale {
    Uniform(f64),
    PerAction(Vec<f64>),
}

impl Default for ResidualScale {
    fn default() -> Self {
        ResidualScale::Uniform(0.3)
    }
}

impl ResidualScale {
    /// The bound of each of `actions` actions, or why this scale does not fit them.
    pub fn per_action(&self, actions: usize) -> Result<Vec<f64>, String> {
        match self {
            ResidualScale::Uniform(scale) => Ok(vec![*scale; actions]),
            ResidualScale::PerAction(scales) if scales.len() == actions => Ok(scales.clone()),
            ResidualScale::PerAction(scales) => Err(format!("the residual scale names {} bounds, one per action, but the task has {actions} actions", scales.len())),
        }
    }

    /// What is wrong with these bounds, if anything.
    pub fn problem(&self) -> Option<String> {
        match self {
            ResidualScale::Uniform(scale) if !(*scale > 0.0 && *scale <= 2.0) => Some(format!("a residual scale lies in (0, 2] action units, got {scale}")),
            ResidualScale::Uniform(_) => None,
            ResidualScale::PerAction(scales) => {
                if let Some((i, bad)) = scales.iter().enumerate().find(|(_, s)| !(**s >= 0.0 && **s <= 2.0)) {
                    Some(format!("each action's residual scale lies in [0, 2] action units, got {bad} for action {i}"))
                } else if scales.iter().all(|s| *s == 0.0) {
                    Some("a residual needs some authority: at least one action's scale above 0".to_string())
                } else {
                    None
                }
            }
        }
    }
}

impl fmt::Display for ResidualScale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResidualScale::Uniform(scale) => write!(f, "{scale}"),
            ResidualScale::PerAction(scales) => write!(f, "{}", scales.iter().map(f64::to_string).collect::<Vec<_>>().join(",")),
        }
    }
}

/// `0.3` or `0.3,0.3,0.3,1` (the command line's form).
impl std::str::FromStr for ResidualScale {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let values = text.split(',').map(|v| v.trim().parse::<f64>().map_err(|_| format!("`{v}` is not a number; a residual scale is one number or a comma-separated list, one per action"))).collect::<Result<Vec<_>, _>>()?;
        let scale = if values.len() == 1 { ResidualScale::Uniform(values[0]) } else { ResidualScale::PerAction(values) };
        match scale.problem() {
            Some(problem) => Err(problem),
            None => Ok(scale),
        }
    }
}

impl Serialize for ResidualScale {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ResidualScale::Uniform(scale) => serializer.serialize_f64(*scale),
            ResidualScale::PerAction(scales) => scales.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ResidualScale {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScaleVisitor;
        impl<'de> serde::de::Visitor<'de> for ScaleVisitor {
            type Value = ResidualScale;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, or a list of numbers (one per action)")
            }
            fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<ResidualScale, E> {
                Ok(ResidualScale::Uniform(value))
            }
            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<ResidualScale, E> {
                Ok(ResidualScale::Uniform(value as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<ResidualScale, E> {
                Ok(ResidualScale::Uniform(value as f64))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<ResidualScale, A::Error> {
                let mut scales = Vec::new();
                while let Some(scale) = seq.next_element::<f64>()? {
                    scales.push(scale);
                }
                Ok(ResidualScale::PerAction(scales))
            }
        }
        deserializer.deserialize_any(ScaleVisitor)
    }
}

impl Default for PracticeConfig {
    fn default() -> Self {
        PracticeConfig {
            policy_rate_hz: 10.0,
            max_episode_steps: 100,
            demo_episodes: 10,
            demo_noise: Vec::new(),
            total_steps: 20_000,
            eval_episodes: 20,
            reset_noise_rad: 0.05,
            stuck_timeout_s: 5.0,
            home: None,
            tool_step_m: 0.02,
            goal_tolerance_m: 0.02,
            reset_timeout_s: 10.0,
            reset_free: false,
            base: PracticeBase::None,
            stop_at_success: None,
            confirm_episodes: 10,
        }
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// One problem in a launch file, located.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigProblem {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Field path, e.g. `safety.joints[2].position`; empty for the document.
    pub path: String,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, "`{}`: ", self.path)?;
        }
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read launch file {file}: {source}")]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{}", problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid { problems: Vec<ConfigProblem> },
}

impl ConfigError {
    pub fn problems(&self) -> &[ConfigProblem] {
        match self {
            ConfigError::Invalid { problems } => problems,
            ConfigError::Read { .. } => &[],
        }
    }
}

// ---------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------

impl LaunchFile {
    /// The one place where files a launch file names are found: every
    /// relative path is relative to the launch file's folder, resolved once
    /// at parse time so no command resolves a path against its own working
    /// directory. URLs and device paths stay as written.
    fn resolve_paths(&mut self, folder: &Path) {
        let resolve = |path: &mut String| {
            // A URL or a GStreamer pipeline is not a file of ours.
            if !path.contains("://") && !path.contains('!') && Path::new(path.as_str()).is_relative() {
                *path = folder.join(path.as_str()).to_string_lossy().into_owned();
            }
        };
        if let Some(urdf) = &mut self.safety.urdf {
            resolve(&mut urdf.file);
        }
        if let Some(critic) = self.safety.risk_critic.as_mut().filter(|c| !c.weights.is_empty()) {
            resolve(&mut critic.weights);
        }
        if let PracticeBase::File(base) = &mut self.practice.base {
            resolve(&mut base.path);
        }
        if let RewardConfig::Classifier(classifier) = &mut self.reward {
            resolve(&mut classifier.model);
            if let Some(trunk) = &mut classifier.trunk {
                resolve(trunk);
            }
        }
        let vlm = match &mut self.reward {
            RewardConfig::Vlm(vlm) => Some(vlm),
            RewardConfig::Classifier(classifier) => classifier.progress.as_mut(),
            RewardConfig::Task | RewardConfig::Human => None,
        };
        if let Some(roots) = vlm.and_then(|vlm| vlm.root_certificates.as_mut()) {
            resolve(roots);
        }
        if let PixelEncoder::Frozen(path) = &mut self.learner.pixels.encoder {
            resolve(path);
        }
        for camera in &mut self.cameras {
            if let CameraSource::Path(path) | CameraSource::ImageSequence(path) = &mut camera.source {
                resolve(path);
            }
        }
    }

    /// Reads, parses and validates a launch file.
    pub fn load(path: &Path) -> Result<LaunchFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { file: path.to_path_buf(), source })?;
        LaunchFile::parse(&text, path)
    }

    /// Parses and validates `text`; `file` is only used in messages.
    pub fn parse(text: &str, file: &Path) -> Result<LaunchFile, ConfigError> {
        let mut launch = parse_located(text, file)?;
        let mut checker = Checker::default();
        launch.check(&mut checker);
        if checker.problems.is_empty() {
            launch.resolve_paths(file.parent().unwrap_or(Path::new("")));
            return Ok(launch);
        }
        let located = locate_values(text);
        let problems = checker
            .problems
            .into_iter()
            .map(|(path, message, hint)| {
                let pos = position_of(&located, &path);
                ConfigProblem { file: file.to_path_buf(), line: pos.line, column: pos.col, path, message, hint }
            })
            .collect();
        Err(ConfigError::Invalid { problems })
    }
}

fn position_of(located: &[(String, TextPosition)], path: &str) -> TextPosition {
    // The deepest located ancestor: a defaulted field is not in the text, its parent is.
    let mut probe = path.to_string();
    loop {
        if let Some((_, pos)) = located.iter().find(|(p, _)| *p == probe) {
            return *pos;
        }
        match probe.rfind(['.', '[']) {
            Some(cut) => probe.truncate(cut),
            None => return located.first().map(|(_, p)| *p).unwrap_or(TextPosition { line: 1, col: 1 }),
        }
    }
}

fn parse_located(text: &str, file: &Path) -> Result<LaunchFile, ConfigError> {
    let problem = |span: ron::error::Span, path: String, code: &ron::Error| {
        let message = code.to_string();
        let hint = hint_for(code, &path);
        ConfigError::Invalid {
            problems: vec![ConfigProblem {
                file: file.to_path_buf(),
                line: span.start.line,
                column: span.start.col,
                path,
                message,
                hint,
            }],
        }
    };
    let mut de = ron::Deserializer::from_str(text).map_err(|e| problem(e.span, String::new(), &e.code))?;
    let launch: LaunchFile = match serde_path_to_error::deserialize(&mut de) {
        Ok(launch) => launch,
        Err(e) => {
            let path = serde_path(e.path());
            let code = e.into_inner();
            let mut span = de.span_error(code.clone()).span;
            // ron reports where its cursor stopped, often inside or after the
            // value; the value's own start is easier to find in an editor.
            // Only for a leaf value: for a struct or list the cursor (say, at
            // a missing parenthesis) is the better place to look.
            let located = locate_values(text);
            let is_parent = |p: &str| p.len() > path.len() && p.starts_with(&path) && matches!(p.as_bytes()[path.len()], b'.' | b'[');
            let names_a_field = matches!(code, ron::Error::NoSuchStructField { .. } | ron::Error::DuplicateStructField { .. });
            if !path.is_empty() && !names_a_field && !located.iter().any(|(p, _)| is_parent(p)) {
                if let Some((_, start)) = located.iter().find(|(p, _)| *p == path) {
                    span.start = ron::error::Position { line: start.line, col: start.col };
                }
            }
            return Err(problem(span, path, &code));
        }
    };
    if let Err(code) = de.end() {
        let spanned = de.span_error(code.clone());
        return Err(problem(spanned.span, String::new(), &code));
    }
    Ok(launch)
}

/// serde_path_to_error's path without enum variant names, in our notation.
fn serde_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    out
}

fn hint_for(code: &ron::Error, path: &str) -> Option<String> {
    use ron::Error as E;
    let hint = match code {
        E::NoSuchStructField { expected, .. } => {
            format!("fields allowed here: {}; check the spelling or see the configuration reference in docs/guide/configuration.md", expected.join(", "))
        }
        E::NoSuchEnumVariant { expected, .. } => format!("use one of: {}", expected.join(", ")),
        E::MissingStructField { field, .. } => format!("add `{field}: ...` here; it has no default"),
        E::ExpectedFloat | E::ExpectedInteger => "write a number, e.g. `100.0` for a float field or `100` for an integer".into(),
        E::ExpectedString | E::ExpectedStringEnd => "strings are written in double quotes".into(),
        E::IntegerOutOfBounds => "the number does not fit this field's integer type".into(),
        E::ExpectedComma => "separate fields and elements with commas".into(),
        E::Eof | E::ExpectedStructLikeEnd | E::ExpectedArrayEnd => "a bracket or parenthesis is not closed".into(),
        E::TrailingCharacters => "the document is one value, e.g. `(name: ..., robot: ..., safety: ...)`; remove what follows it".into(),
        _ if path == "robot" => "robot kinds: Sim(...), SerialArm(...), TopicArm(...), Car(...)".into(),
        _ => return None,
    };
    Some(hint)
}

// ---------------------------------------------------------------------------
// Validation of values that parse but make no sense
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Checker {
    problems: Vec<(String, String, Option<String>)>,
}

impl Checker {
    fn fail(&mut self, path: impl Into<String>, message: impl Into<String>, hint: Option<&str>) {
        self.problems.push((path.into(), message.into(), hint.map(str::to_string)));
    }

    fn positive(&mut self, path: &str, value: f64, unit: &str) {
        if !(value.is_finite() && value > 0.0) {
            self.fail(path, format!("must be a positive, finite number of {unit}, got {value}"), None);
        }
    }

    fn nonzero_ms(&mut self, path: &str, value: u64) {
        if value == 0 {
            self.fail(path, "a timeout of 0 ms would hold on every tick", Some("use a positive number of milliseconds, e.g. 50"));
        }
    }

    fn topic_name(&mut self, path: &str, topic: &str) {
        let valid = !topic.is_empty()
            && !topic.ends_with('/')
            && !topic.contains("//")
            && topic.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/' || c == '~')
            && !topic.trim_start_matches(['/', '~']).starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            self.fail(
                path,
                format!("`{topic}` is not a valid ROS 2 topic name"),
                Some("letters, digits, '_' and '/' only; no trailing '/'; a segment may not start with a digit"),
            );
        }
    }

    fn unique<'a>(&mut self, path: &str, names: impl Iterator<Item = (usize, &'a str)>, what: &str) {
        let mut seen = HashSet::new();
        for (i, name) in names {
            if !seen.insert(name) {
                self.fail(format!("{path}[{i}]"), format!("{what} `{name}` appears twice"), None);
            }
        }
    }
}

impl LaunchFile {
    fn check(&self, c: &mut Checker) {
        if self.name.trim().is_empty() {
            c.fail("name", "must not be empty", Some("it names the output folder runs/<name>"));
        }
        if !self.namespace.is_empty() {
            c.topic_name("namespace", &self.namespace);
        }
        self.robot.check(c);
        c.unique("cameras", self.cameras.iter().enumerate().map(|(i, cam)| (i, cam.name.as_str())), "camera name");
        for (i, camera) in self.cameras.iter().enumerate() {
            camera.check(&format!("cameras[{i}]"), c);
        }
        self.safety.check(&self.robot.joint_names(), c);
        self.learner.check(c);
        self.learner.pixels.check(c);
        if let RobotConfig::Sim(sim) = &self.robot {
            let observed: Vec<(String, &String)> = sim.observe_cameras.iter().enumerate().map(|(i, name)| (format!("robot.observe_cameras[{i}]"), name)).collect();
            check_observed_cameras(&observed, true, &self.cameras, &self.learner.pixels, c);
            if sim.gripper == GripperAction::None {
                c.fail("robot.gripper", "the simulated Panda's gripper slot is always there", Some("`Continuous` or `OpenClose`"));
            }
        }
        if let RobotConfig::Car(car) = &self.robot {
            let observed: Vec<(String, &String)> = car.observe_cameras.iter().enumerate().map(|(i, name)| (format!("robot.observe_cameras[{i}]"), name)).collect();
            check_observed_cameras(&observed, false, &self.cameras, &self.learner.pixels, c);
        }
        if let Some(namespace) = self.learner.namespace.as_deref().filter(|n| !n.is_empty()) {
            c.topic_name("learner.namespace", namespace);
        }
        self.reward.check(&self.cameras, c);
        if let RewardConfig::Classifier(classifier) = &self.reward {
            // The classifier scores the very frames each step records: the policy's.
            let observed = self.observed_cameras();
            if observed.is_empty() {
                c.fail("reward", "a classifier scores the cameras the policy sees, and it sees none", Some("name them in `robot: Sim((.., observe_cameras: [..]))` or a real arm's `task.observe: [.., Camera(\"..\")]`"));
            }
            for (i, cam) in classifier.cameras.iter().enumerate() {
                if !observed.contains(&cam) && self.cameras.iter().any(|known| &known.name == cam) {
                    c.fail(format!("reward.cameras[{i}]"), format!("camera `{cam}` is not one the policy sees"), Some("a classifier scores the policy's own frames: observe this camera too"));
                }
            }
        }
        self.practice.check(self.robot.control_rate_hz(), c);
        let task = &self.task;
        let real_arm = matches!(self.robot, RobotConfig::TopicArm(_) | RobotConfig::SerialArm(_));
        if !real_arm && *task != ArmTaskConfig::default() {
            c.fail("task", format!("a task section describes a real arm's task; a {} robot's task is its own", self.robot.kind_name()), Some("remove it, or drive the arm as a TopicArm or SerialArm"));
        }
        if real_arm {
            task.check(&self.robot.joint_names(), &self.reward, &self.practice, c);
            let observed: Vec<(String, &String)> = task.observe.iter().enumerate().filter_map(|(i, o)| if let Observe::Camera(name) = o { Some((format!("task.observe[{i}]"), name)) } else { None }).collect();
            check_observed_cameras(&observed, false, &self.cameras, &self.learner.pixels, c);
            if let (RobotConfig::TopicArm(TopicArmConfig { gripper: Some(robot), .. }), Some(task)) = (&self.robot, &task.gripper) {
                if robot.joint != task.joint {
                    c.fail("task.gripper.joint", format!("the arm's gripper is `{}` (robot.gripper.joint), not `{}`", robot.joint, task.joint), None);
                }
            }
            let has_kinematics = self.safety.urdf.is_some() || self.safety.preset.is_some_and(RobotPreset::has_kinematics);
            // The default reach needs kinematics only when practised: an arm
            // without them may still be driven, teleoperated and recorded.
            if task.needs_kinematics() && !has_kinematics && *task != ArmTaskConfig::default() {
                c.fail("task", "tool actions, tool observations, goals and tool reset moves need the arm's kinematics, which it lacks", Some("name its URDF in safety.urdf, or use Joints(..) actions, joint observations and Home resets"));
            }
        }
        if self.practice.reset_free && matches!(&self.robot, RobotConfig::Sim(sim) if sim.task != SimTask::PandaReach) {
            c.fail("practice.reset_free", "reset-free practice needs a reach task", Some("PandaReach in simulation, or a real arm's reach task"));
        }
        let alternates = self.safety.risk_critic.as_ref().and_then(|r| r.online.as_ref()).is_some_and(|o| o.alternate_episodes);
        if alternates && (self.practice.reset_free || task.directions.is_some()) {
            // Both go by the episode's parity: one arm would always practise one direction.
            c.fail("safety.risk_critic.online.alternate_episodes", "the A/B test's arms alternate episode by episode, as reset-free practice alternates its two directions: one arm would only ever go forward", Some("run the A/B test on practice that resets every episode"));
        }
        if let Some(leader) = &self.leader {
            leader.check(&self.robot, task, c);
        }
        self.check_course(c);
        self.console.check(c);
        if let Some(home) = &self.practice.home {
            let joints = self.robot.joint_names();
            if home.len() != joints.len() {
                c.fail("practice.home", format!("{} values for {} joints", home.len(), joints.len()), Some(&format!("one per joint: {}", joints.join(", "))));
            } else if home.iter().any(|v| !v.is_finite()) {
                c.fail("practice.home", "values must be finite", None);
            }
        }
    }
}

impl RobotConfig {
    fn check(&self, c: &mut Checker) {
        c.positive("robot.control_rate_hz", self.control_rate_hz(), "hertz");
        match self {
            RobotConfig::Sim(_) => {}
            RobotConfig::SerialArm(arm) => arm.check("robot", c),
            RobotConfig::TopicArm(arm) => {
                if arm.joint_names.is_empty() {
                    c.fail("robot.joint_names", "an arm needs at least one joint", None);
                }
                c.unique("robot.joint_names", arm.joint_names.iter().enumerate().map(|(i, n)| (i, n.as_str())), "joint name");
                c.topic_name("robot.state_topic", &arm.state_topic);
                c.topic_name("robot.command.topic", arm.command.topic());
                c.nonzero_ms("robot.state_timeout_ms", arm.state_timeout_ms);
                if let ArmCommandTopic::Trajectory { time_from_start_ms, .. } = arm.command {
                    if time_from_start_ms == 0 {
                        c.fail("robot.command.time_from_start_ms", "a trajectory point must lie in the future", Some("about two control periods, e.g. 20"));
                    }
                }
                if let Some(gripper) = &arm.gripper {
                    if arm.joint_names.contains(&gripper.joint) {
                        c.fail("robot.gripper.joint", format!("`{}` is one of the arm's joint_names; the gripper joint is listed here only", gripper.joint), None);
                    }
                    c.topic_name("robot.gripper.command.topic", gripper.command.topic());
                    match gripper.command {
                        ArmCommandTopic::ForwardVelocity { .. } => c.fail("robot.gripper.command", "a gripper takes position commands", Some("ForwardPosition(topic: ..) or Trajectory(..)")),
                        ArmCommandTopic::Trajectory { time_from_start_ms: 0, .. } => c.fail("robot.gripper.command.time_from_start_ms", "a trajectory point must lie in the future", None),
                        _ => {}
                    }
                    if matches!(arm.command, ArmCommandTopic::ForwardVelocity { .. }) {
                        c.fail("robot.gripper", "a gripper needs a position-controlled arm: its command joins the arm's positions", Some("ForwardPosition(..) or Trajectory(..) for the arm"));
                    }
                }
            }
            RobotConfig::Car(car) => {
                c.topic_name("robot.cmd_vel_topic", &car.cmd_vel_topic);
                c.topic_name("robot.odom_topic", &car.odom_topic);
                if let Some(imu) = &car.imu_topic {
                    c.topic_name("robot.imu_topic", imu);
                }
                c.nonzero_ms("robot.state_timeout_ms", car.state_timeout_ms);
                c.positive("robot.max_linear_mps", car.max_linear_mps, "m/s");
                c.positive("robot.max_angular_rps", car.max_angular_rps, "rad/s");
            }
        }
    }
}

impl SerialArmConfig {
    /// `prefix`: where the bus sits in the file (`robot`, `leader.bus`).
    fn check(&self, prefix: &str, c: &mut Checker) {
        if self.port.trim().is_empty() {
            c.fail(format!("{prefix}.port"), "must name a serial port", Some("e.g. \"/dev/ttyUSB0\""));
        }
        if !SUPPORTED_BAUD_RATES.contains(&self.baud) {
            c.fail(format!("{prefix}.baud"), format!("{} baud is not a rate the servos support", self.baud), Some("common: 57600, 115200, 1000000, 2000000, 4000000"));
        }
        c.nonzero_ms(&format!("{prefix}.read_timeout_ms"), self.read_timeout_ms);
        if self.joints.is_empty() {
            c.fail(format!("{prefix}.joints"), "an arm needs at least one servo", None);
        }
        if self.joints.len() > crate::MAX_JOINTS {
            c.fail(format!("{prefix}.joints"), format!("{} joints exceed the supported {}", self.joints.len(), crate::MAX_JOINTS), None);
        }
        c.unique(&format!("{prefix}.joints"), self.joints.iter().enumerate().map(|(i, j)| (i, j.name.as_str())), "joint name");
        let ids: Vec<String> = self.joints.iter().map(|j| j.id.to_string()).collect();
        c.unique(&format!("{prefix}.joints"), ids.iter().enumerate().map(|(i, id)| (i, id.as_str())), "servo id");
        let max_id = match self.protocol {
            ServoProtocol::Dynamixel => 252,
            ServoProtocol::Feetech => 253,
        };
        for (i, joint) in self.joints.iter().enumerate() {
            if joint.id > max_id {
                c.fail(format!("{prefix}.joints[{i}].id"), format!("servo id {} is above {max_id}, the largest a {:?} servo can have", joint.id, self.protocol), Some("ids above it are reserved for broadcast"));
            }
            if joint.ticks_per_revolution == 0 {
                c.fail(format!("{prefix}.joints[{i}].ticks_per_revolution"), "must be positive", Some("4096 for STS3215 and X-series servos"));
            }
        }
    }
}

impl CameraConfig {
    fn check(&self, path: &str, c: &mut Checker) {
        if self.name.is_empty() {
            c.fail(format!("{path}.name"), "must not be empty", None);
        }
        if self.width == 0 || self.height == 0 {
            c.fail(format!("{path}.width"), format!("image size {}x{} is empty", self.width, self.height), None);
        }
        c.positive(&format!("{path}.fps"), self.fps, "frames per second");
        if let CameraSource::Topic(topic) = &self.source {
            c.topic_name(&format!("{path}.source"), topic);
        }
        if let Some(crop) = &self.crop {
            if crop.width == 0 || crop.height == 0 {
                c.fail(format!("{path}.crop"), format!("a crop of {}x{} is empty", crop.width, crop.height), None);
            }
            if matches!(self.source, CameraSource::Sim(_) | CameraSource::Topic(_)) {
                c.fail(format!("{path}.crop"), "crops apply to OpenCV sources (devices, files, image sequences)", Some("render a simulated camera at the size the policy sees"));
            }
        }
    }
}

impl SafetyConfig {
    fn check(&self, robot_joints: &[String], c: &mut Checker) {
        c.nonzero_ms("safety.command_timeout_ms", self.command_timeout_ms);
        c.nonzero_ms("safety.state_timeout_ms", self.state_timeout_ms);
        if !(self.soft_margin_rad.is_finite() && self.soft_margin_rad >= 0.0) {
            c.fail("safety.soft_margin_rad", format!("must be zero or positive, got {}", self.soft_margin_rad), None);
        }
        if let Some(preset) = self.preset {
            for name in preset.joint_names() {
                if !robot_joints.iter().any(|j| j == name) {
                    c.fail("safety.preset", format!("preset {preset:?} limits joint `{name}`, which the robot does not have"), Some(&format!("the robot's joints: {}", robot_joints.join(", "))));
                    break;
                }
            }
        }
        c.unique("safety.joints", self.joints.iter().enumerate().map(|(i, j)| (i, j.name.as_str())), "joint");
        for (i, joint) in self.joints.iter().enumerate() {
            let path = format!("safety.joints[{i}]");
            if !robot_joints.iter().any(|j| *j == joint.name) {
                c.fail(format!("{path}.name"), format!("unknown joint `{}`", joint.name), Some(&format!("the robot's joints: {}", robot_joints.join(", "))));
            }
            if let Some(range) = joint.position {
                if !(range.min.is_finite() && range.max.is_finite()) {
                    c.fail(format!("{path}.position"), "limits must be finite", None);
                } else if range.min >= range.max {
                    c.fail(format!("{path}.position"), format!("min {} is not below max {}", range.min, range.max), Some("swap them, or check the sign"));
                } else if 2.0 * self.soft_margin_rad >= range.max - range.min {
                    c.fail(format!("{path}.position"), format!("the soft margin {} leaves no room in [{}, {}]", self.soft_margin_rad, range.min, range.max), Some("lower safety.soft_margin_rad"));
                }
            }
            for (field, value) in [("velocity", joint.velocity), ("acceleration", joint.acceleration), ("jerk", joint.jerk), ("effort", joint.effort)] {
                if let Some(v) = value {
                    c.positive(&format!("{path}.{field}"), v, "units per second");
                }
            }
        }
        if let Some(ws) = &self.workspace {
            let (lo, hi) = ([ws.min.0, ws.min.1, ws.min.2], [ws.max.0, ws.max.1, ws.max.2]);
            for (axis, name) in ["x", "y", "z"].iter().enumerate() {
                if !(lo[axis] < hi[axis]) {
                    c.fail("safety.workspace", format!("{name}: min {} is not below max {}", lo[axis], hi[axis]), None);
                }
            }
            c.positive("safety.workspace.max_step_m", ws.max_step_m, "metres");
            c.positive("safety.workspace.max_speed_mps", ws.max_speed_mps, "m/s");
            if self.urdf.is_none() && !self.preset.is_some_and(RobotPreset::has_kinematics) {
                c.fail("safety.workspace", "the box needs the robot's kinematics", Some("name its URDF in safety.urdf (the FrankaPanda, FrankaResearch3 and So101 presets have them built in)"));
            }
        }
        if let Some(urdf) = &self.urdf {
            for (field, value) in [("file", &urdf.file), ("base_link", &urdf.base_link), ("tip_link", &urdf.tip_link)] {
                if value.trim().is_empty() {
                    c.fail(format!("safety.urdf.{field}"), "must not be empty", None);
                }
            }
        }
        if let Some(f) = self.max_force_n {
            c.positive("safety.max_force_n", f, "newtons");
        }
        if let Some(t) = self.max_torque_nm {
            c.positive("safety.max_torque_nm", t, "newton-metres");
        }
        if let Some(critic) = &self.risk_critic {
            if !(critic.threshold > 0.0 && critic.threshold < 1.0) {
                c.fail("safety.risk_critic.threshold", format!("a risk threshold is a probability in (0, 1), got {}", critic.threshold), None);
            }
            if critic.weights.is_empty() && critic.online.is_none() {
                c.fail("safety.risk_critic.weights", "must name the critic's weight file (or ask for `online: Some(())` to train one during practice)", None);
            }
            if !critic.weights.is_empty() && critic.online.is_some() {
                // The learner's first critic (in shadow mode) would replace the trusted file's.
                c.fail("safety.risk_critic", "give either `weights` (a trained critic) or `online` (one trained during practice), not both", None);
            }
            if let Some(online) = &critic.online {
                if online.publish_every == 0 || online.horizon_ticks == 0 || online.holdout_every < 2 {
                    c.fail("safety.risk_critic.online", "publish_every and horizon_ticks must be positive, holdout_every at least 2 (one episode in it held out)", None);
                }
                for (field, value) in [("min_precision", online.min_precision), ("min_recall", online.min_recall)] {
                    if !(0.0..=1.0).contains(&value) {
                        c.fail(format!("safety.risk_critic.online.{field}"), format!("a share in [0, 1], got {value}"), None);
                    }
                }
                if !(online.gamma_risk > 0.0 && online.gamma_risk < 1.0) {
                    c.fail("safety.risk_critic.online.gamma_risk", format!("a discount in (0, 1), got {}", online.gamma_risk), None);
                }
                if online.hidden.is_empty() || online.hidden.iter().any(|&h| h <= 0) {
                    c.fail("safety.risk_critic.online.hidden", "at least one hidden layer, every width positive", None);
                }
            }
        }
    }
}

impl LearnerConfig {
    fn check(&self, c: &mut Checker) {
        if self.hidden.is_empty() || self.hidden.contains(&0) {
            c.fail("learner.hidden", "needs at least one layer, each of positive width", Some("e.g. [256, 256]"));
        }
        if self.critics == 0 {
            c.fail("learner.critics", "needs at least one critic", None);
        }
        if self.target_critics == 0 || self.target_critics > self.critics {
            c.fail("learner.target_critics", format!("must be between 1 and critics = {}", self.critics), None);
        }
        if self.batch_size == 0 {
            c.fail("learner.batch_size", "must be positive", None);
        }
        if self.utd == 0 {
            c.fail("learner.utd", "at least one update per environment step", None);
        }
        if self.n_step == 0 {
            c.fail("learner.n_step", "n-step returns need n >= 1", None);
        }
        c.positive("learner.actor_lr", self.actor_lr, "learning rate");
        c.positive("learner.critic_lr", self.critic_lr, "learning rate");
        if !(self.gamma > 0.0 && self.gamma <= 1.0) {
            c.fail("learner.gamma", format!("a discount lies in (0, 1], got {}", self.gamma), None);
        }
        if !(self.tau > 0.0 && self.tau <= 1.0) {
            c.fail("learner.tau", format!("a Polyak factor lies in (0, 1], got {}", self.tau), None);
        }
        if !(0.0..=1.0).contains(&self.demo_ratio) {
            c.fail("learner.demo_ratio", format!("a share lies in [0, 1], got {}", self.demo_ratio), None);
        }
        if self.replay_capacity < u64::from(self.batch_size) {
            c.fail("learner.replay_capacity", format!("{} cannot hold one batch of {}", self.replay_capacity, self.batch_size), None);
        }
        c.positive("learner.initial_temperature", self.initial_temperature, "temperature");
        if !self.target_entropy_per_action.is_finite() {
            c.fail("learner.target_entropy_per_action", "must be a finite number (nats per action dimension)", None);
        }
        if self.publish_every_updates == 0 {
            c.fail("learner.publish_every_updates", "must be positive", None);
        }
        if !(self.residual_penalty >= 0.0 && self.residual_penalty.is_finite()) {
            c.fail("learner.residual_penalty", format!("a weight is a finite number >= 0, got {}", self.residual_penalty), None);
        }
        if let Some(std) = self.residual_initial_std {
            // Inside the actor's log-std range (e^-5 to e^2), away from its ends where it could not move.
            if !(0.01..=5.0).contains(&std) {
                c.fail("learner.residual_initial_std", format!("a starting standard deviation lies in [0.01, 5], got {std}"), Some("e.g. residual_initial_std: Some(0.02)"));
            }
        }
    }
}

impl VlmRewardConfig {
    /// Checks a VLM critic's settings, written at `at`.
    fn check(&self, at: &str, known: &dyn Fn(&str) -> bool, c: &mut Checker) {
        if !(self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://")) {
            c.fail(format!("{at}.endpoint"), format!("`{}` is not an http(s) URL", self.endpoint), Some("e.g. \"http://127.0.0.1:8000/v1/chat/completions\""));
        }
        if self.task.trim().is_empty() {
            c.fail(format!("{at}.task"), "describe the task in words", None);
        }
        if self.cameras.is_empty() {
            c.fail(format!("{at}.cameras"), "name at least one camera to score", None);
        }
        for (i, cam) in self.cameras.iter().enumerate() {
            if !known(cam) {
                c.fail(format!("{at}.cameras[{i}]"), format!("unknown camera `{cam}`"), Some("name one of the `cameras` entries"));
            }
        }
        if self.root_certificates.is_some() && !self.endpoint.starts_with("https://") {
            c.fail(format!("{at}.root_certificates"), "root certificates are for an https endpoint", Some("remove them, or use the endpoint's https:// URL"));
        }
        c.nonzero_ms(&format!("{at}.timeout_ms"), self.timeout_ms);
        if self.max_concurrent == 0 {
            c.fail(format!("{at}.max_concurrent"), "at least one request must be allowed in flight", None);
        }
    }
}

impl RewardConfig {
    /// The VLM progress critic of this reward: a `Vlm(..)` reward's, or a
    /// classifier's dense shaping (`progress`).
    pub fn vlm(&self) -> Option<&VlmRewardConfig> {
        match self {
            RewardConfig::Vlm(vlm) => Some(vlm),
            RewardConfig::Classifier(classifier) => classifier.progress.as_ref(),
            RewardConfig::Task | RewardConfig::Human => None,
        }
    }

    fn check(&self, cameras: &[CameraConfig], c: &mut Checker) {
        let known = |name: &str| cameras.iter().any(|cam| cam.name == name);
        match self {
            RewardConfig::Task | RewardConfig::Human => {}
            RewardConfig::Vlm(vlm) => vlm.check("reward", &known, c),
            RewardConfig::Classifier(classifier) => {
                if classifier.model.is_empty() {
                    c.fail("reward.model", "must name the classifier file", Some("the file `rrl classifier train --out` wrote"));
                }
                for (i, cam) in classifier.cameras.iter().enumerate() {
                    if !known(cam) {
                        c.fail(format!("reward.cameras[{i}]"), format!("unknown camera `{cam}`"), Some("name cameras the policy sees"));
                    }
                }
                if let Some(threshold) = classifier.threshold.filter(|t| !(*t > 0.0 && *t < 1.0)) {
                    c.fail("reward.threshold", format!("a probability threshold lies in (0, 1), got {threshold}"), None);
                }
                c.nonzero_ms("reward.deadline_ms", classifier.deadline_ms);
                if let Some(progress) = &classifier.progress {
                    progress.check("reward.progress", &known, c);
                }
            }
        }
    }
}

impl PracticeConfig {
    fn check(&self, control_rate_hz: f64, c: &mut Checker) {
        c.positive("practice.policy_rate_hz", self.policy_rate_hz, "hertz");
        if self.policy_rate_hz > control_rate_hz {
            c.fail("practice.policy_rate_hz", format!("the policy ({} Hz) cannot act faster than the control loop ({} Hz)", self.policy_rate_hz, control_rate_hz), None);
        }
        if self.max_episode_steps == 0 {
            c.fail("practice.max_episode_steps", "an episode needs at least one step", None);
        }
        if !(self.reset_noise_rad.is_finite() && self.reset_noise_rad >= 0.0) {
            c.fail("practice.reset_noise_rad", "must be zero or positive", None);
        }
        c.positive("practice.stuck_timeout_s", self.stuck_timeout_s, "seconds");
        c.positive("practice.tool_step_m", self.tool_step_m, "metres");
        c.positive("practice.goal_tolerance_m", self.goal_tolerance_m, "metres");
        c.positive("practice.reset_timeout_s", self.reset_timeout_s, "seconds");
        if let Some(noise) = self.demo_noise.iter().find(|n| !(n.is_finite() && (0.0..=2.0).contains(*n))) {
            c.fail("practice.demo_noise", format!("each action's demo noise lies in [0, 2] action units, got {noise}"), None);
        }
        if let Some(share) = self.stop_at_success {
            if !(share > 0.0 && share <= 1.0) {
                c.fail("practice.stop_at_success", format!("a share of successful episodes lies in (0, 1], got {share}"), None);
            }
        }
        if !(1..=1000).contains(&self.confirm_episodes) {
            c.fail("practice.confirm_episodes", format!("an early stop is confirmed by 1 to 1000 episodes, got {}", self.confirm_episodes), None);
        }
        let (scale, path) = match &self.base {
            PracticeBase::None => return,
            PracticeBase::BehaviourCloning(bc) => {
                if bc.steps == 0 {
                    c.fail("practice.base.steps", "behaviour cloning needs at least one gradient step", None);
                }
                if bc.execute == 0 || bc.execute > bc.horizon {
                    c.fail("practice.base.execute", format!("plays 1 to `horizon` ({}) actions of each chunk, got {}", bc.horizon, bc.execute), None);
                }
                if self.demo_episodes == 0 {
                    c.fail("practice.demo_episodes", "a behaviour-cloning base learns from the demos: record at least one", None);
                }
                (&bc.residual_scale, "practice.base.residual_scale")
            }
            PracticeBase::File(file) => {
                if file.execute == 0 {
                    c.fail("practice.base.execute", "plays at least one action of each chunk", None);
                }
                (&file.residual_scale, "practice.base.residual_scale")
            }
        };
        if let Some(problem) = scale.problem() {
            c.fail(path, problem, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"(
    name: "t",
    robot: Sim((task: PandaReach)),
    safety: (),
)"#;

    #[test]
    fn minimal_file_gets_documented_defaults() {
        let launch = LaunchFile::parse(MINIMAL, Path::new("m.ron")).unwrap();
        assert_eq!(launch.robot.control_rate_hz(), 100.0);
        assert_eq!(launch.safety.command_timeout_ms, 50);
        assert_eq!(launch.learner, LearnerConfig::default());
        assert_eq!(launch.reward, RewardConfig::Task);
    }

    /// A VLM reward's root certificates (and a classifier's shaping
    /// critic's) are found beside the launch file, like every file it names.
    #[test]
    fn vlm_root_certificates_are_found_beside_the_launch_file() {
        let vlm = "endpoint: \"https://vlm.local/v1/chat/completions\", model: \"m\", task: \"t\", cameras: [\"front\"], root_certificates: Some(\"ca.pem\")";
        let file = |reward: String| format!("(name: \"t\", robot: Sim((task: PandaReach, observe_cameras: [\"front\"])), cameras: [(name: \"front\", source: Sim(\"front\"))], safety: (), reward: {reward})");
        let launch = LaunchFile::parse(&file(format!("Vlm(({vlm}))")), Path::new("robots/arm.ron")).unwrap();
        assert_eq!(launch.reward.vlm().unwrap().root_certificates.as_deref(), Some("robots/ca.pem"));
        let launch = LaunchFile::parse(&file(format!("Classifier((model: \"c.safetensors\", cameras: [\"front\"], progress: Some(({vlm}))))")), Path::new("robots/arm.ron")).unwrap();
        assert_eq!(launch.reward.vlm().unwrap().root_certificates.as_deref(), Some("robots/ca.pem"));
    }

    #[test]
    fn semantic_error_points_at_the_field() {
        let text = "(\n  name: \"t\",\n  robot: Sim((task: PandaReach, control_rate_hz: -5.0)),\n  safety: (),\n)";
        let err = LaunchFile::parse(text, Path::new("x.ron")).unwrap_err();
        let p = &err.problems()[0];
        assert_eq!((p.line, p.column, p.path.as_str()), (3, 50, "robot.control_rate_hz"));
        assert!(p.message.contains("positive"), "{p}");
    }

    /// The critic's A/B arms and reset-free practice's directions both go
    /// by the episode's parity: together, one arm would only go forward.
    #[test]
    fn the_critics_ab_test_is_refused_on_reset_free_practice_where_it_is_asked_for() {
        let file = |reset_free: bool| format!("(\n  name: \"t\",\n  robot: Sim((task: PandaReach)),\n  safety: (risk_critic: Some((online: Some((alternate_episodes: true))))),\n  practice: (reset_free: {reset_free}),\n)");
        let err = LaunchFile::parse(&file(true), Path::new("x.ron")).unwrap_err();
        let p = &err.problems()[0];
        assert_eq!((p.line, p.path.as_str()), (4, "safety.risk_critic.online.alternate_episodes"), "{err}");
        assert!(p.message.contains("reset-free"), "{p}");
        LaunchFile::parse(&file(false), Path::new("x.ron")).unwrap();
    }

    #[test]
    fn practice_base_is_checked_where_it_is_written_and_its_file_found_beside_the_launch_file() {
        let bad = "(\n  name: \"t\",\n  robot: Sim((task: PandaPickCube)),\n  safety: (),\n  practice: (demo_episodes: 0, base: BehaviourCloning((horizon: 2, execute: 3))),\n)";
        let err = LaunchFile::parse(bad, Path::new("x.ron")).unwrap_err();
        let found: Vec<(usize, &str)> = err.problems().iter().map(|p| (p.line, p.path.as_str())).collect();
        assert_eq!(found, vec![(5, "practice.base.execute"), (5, "practice.demo_episodes")], "{err}");
        let scale = "(name: \"t\", robot: Sim((task: PandaPickCube)), safety: (), practice: (base: File((path: \"b.pt\", residual_scale: 0.0))))";
        let err = LaunchFile::parse(scale, Path::new("x.ron")).unwrap_err();
        assert_eq!(err.problems()[0].path, "practice.base.residual_scale", "{err}");
        let good = "(name: \"t\", robot: Sim((task: PandaPickCube)), safety: (), practice: (base: File((path: \"policies/b.pt\"))))";
        let launch = LaunchFile::parse(good, Path::new("launch/files/x.ron")).unwrap();
        assert_eq!(launch.practice.base, PracticeBase::File(FileBase { path: "launch/files/policies/b.pt".into(), execute: 1, residual_scale: ResidualScale::Uniform(0.3) }));
    }

    #[test]
    fn residual_settings_out_of_range_are_refused_where_they_are_written() {
        let file = |learner: &str| format!("(\n  name: \"t\",\n  robot: Sim((task: PandaPickCube)),\n  safety: (),\n  learner: (\n    {learner},\n  ),\n)");
        for (learner, field, said) in [
            ("residual_penalty: -0.5", "learner.residual_penalty", "-0.5"),
            ("residual_initial_std: Some(0.001)", "learner.residual_initial_std", "0.001"),
            ("residual_initial_std: Some(9.0)", "learner.residual_initial_std", "9"),
        ] {
            let err = LaunchFile::parse(&file(learner), Path::new("x.ron")).unwrap_err();
            let p = &err.problems()[0];
            assert_eq!((p.line, p.path.as_str()), (6, field), "{err}");
            assert!(p.message.contains(said), "{p}");
        }
        let good = LaunchFile::parse(&file("residual_penalty: 1.0, residual_initial_std: Some(0.02), critic_warmup_updates: 300"), Path::new("x.ron")).unwrap();
        assert_eq!((good.learner.residual_penalty, good.learner.residual_initial_std, good.learner.critic_warmup_updates), (1.0, Some(0.02), 300));
    }

    #[test]
    fn the_simulated_grippers_slot_reads_continuous_or_open_close_and_none_is_refused_where_written() {
        let file = |gripper: &str| format!("(\n  name: \"t\",\n  robot: Sim((task: PandaPickCube,\n    {gripper})),\n  safety: (),\n)");
        assert_eq!(LaunchFile::parse(&file(""), Path::new("x.ron")).map(|l| matches!(l.robot, RobotConfig::Sim(s) if s.gripper == GripperAction::Continuous)).unwrap(), true);
        assert_eq!(LaunchFile::parse(&file("gripper: OpenClose"), Path::new("x.ron")).map(|l| matches!(l.robot, RobotConfig::Sim(s) if s.gripper == GripperAction::OpenClose)).unwrap(), true);
        let err = LaunchFile::parse(&file("gripper: None"), Path::new("x.ron")).unwrap_err();
        let p = &err.problems()[0];
        assert_eq!((p.line, p.path.as_str()), (4, "robot.gripper"), "{err}");
        assert!(p.message.contains("always there"), "{p}");
    }

    #[test]
    fn an_early_stop_confirmed_by_no_episodes_or_too_many_is_refused_where_written() {
        let file = |practice: &str| format!("(\n  name: \"t\",\n  robot: Sim((task: PandaPickCube)),\n  safety: (),\n  practice: (\n    {practice},\n  ),\n)");
        for said in ["0", "1001"] {
            let err = LaunchFile::parse(&file(&format!("confirm_episodes: {said}")), Path::new("x.ron")).unwrap_err();
            let p = &err.problems()[0];
            assert_eq!((p.line, p.path.as_str()), (6, "practice.confirm_episodes"), "{err}");
            assert!(p.message.contains(&format!("got {said}")), "{p}");
        }
        assert_eq!(LaunchFile::parse(&file("confirm_episodes: 20"), Path::new("x.ron")).unwrap().practice.confirm_episodes, 20);
        assert_eq!(LaunchFile::parse(&file("total_steps: 10"), Path::new("x.ron")).unwrap().practice.confirm_episodes, 10, "the default");
    }

    #[test]
    fn demo_noise_outside_zero_to_two_action_units_is_refused_where_it_is_written() {
        let bad = "(\n  name: \"t\",\n  robot: Sim((task: PandaPickCube)),\n  safety: (),\n  practice: (\n    demo_noise: [0.4, 0.4, -0.1, 0.0],\n  ),\n)";
        let err = LaunchFile::parse(bad, Path::new("x.ron")).unwrap_err();
        let p = &err.problems()[0];
        assert_eq!((p.line, p.path.as_str()), (6, "practice.demo_noise"), "{err}");
        assert!(p.message.contains("-0.1"), "{p}");
        let good = bad.replace("-0.1", "0.4");
        assert_eq!(LaunchFile::parse(&good, Path::new("x.ron")).unwrap().practice.demo_noise, vec![0.4, 0.4, 0.4, 0.0]);
    }

    #[test]
    fn every_file_a_launch_file_names_is_found_beside_it_and_urls_stay_as_written() {
        let text = r#"(name: "t", robot: Sim((task: PandaPickCube, observe_cameras: ["e"])),
            cameras: [(name: "a", source: Path("videos/a.avi"), width: 8, height: 8),
                      (name: "e", source: Sim("front"), width: 16, height: 16),
                      (name: "b", source: ImageSequence("frames/%04d.png"), width: 8, height: 8),
                      (name: "c", source: Path("rtsp://10.0.0.2/stream"), width: 8, height: 8),
                      (name: "d", source: Path("/dev/video2"), width: 8, height: 8)],
            safety: (urdf: Some((file: "arm.urdf", base_link: "base", tip_link: "tool")), risk_critic: Some((weights: "critic.safetensors"))),
            reward: Classifier((model: "success.safetensors", cameras: ["e"], threshold: Some(0.9), trunk: Some("trunk.pt"))))"#;
        let launch = LaunchFile::parse(text, Path::new("cfg/x.ron")).unwrap();
        let sources: Vec<&CameraSource> = launch.cameras.iter().map(|c| &c.source).collect();
        assert_eq!(
            sources,
            [&CameraSource::Path("cfg/videos/a.avi".into()), &CameraSource::Sim("front".into()), &CameraSource::ImageSequence("cfg/frames/%04d.png".into()), &CameraSource::Path("rtsp://10.0.0.2/stream".into()), &CameraSource::Path("/dev/video2".into())]
        );
        assert_eq!(launch.safety.urdf.as_ref().unwrap().file, "cfg/arm.urdf");
        assert_eq!(launch.safety.risk_critic.as_ref().unwrap().weights, "cfg/critic.safetensors");
        assert!(matches!(&launch.reward, RewardConfig::Classifier(c) if c.model == "cfg/success.safetensors" && c.trunk.as_deref() == Some("cfg/trunk.pt")), "{:?}", launch.reward);
    }

    #[test]
    fn a_residual_scale_is_one_number_or_one_per_action_and_a_bad_one_is_refused_where_it_is_written() {
        let with = |scale: &str| format!("(name: \"t\", robot: Sim((task: PandaPickCube)), safety: (),\n practice: (base: File((path: \"b.pt\", residual_scale: {scale}))))");
        let base = |scale: &str| match LaunchFile::parse(&with(scale), Path::new("x.ron")).unwrap().practice.base {
            PracticeBase::File(file) => file.residual_scale,
            other => panic!("{other:?}"),
        };
        assert_eq!(base("0.25"), ResidualScale::Uniform(0.25));
        assert_eq!(base("1"), ResidualScale::Uniform(1.0));
        let per_action = base("[0.3, 0.3, 0.3, 1.0]");
        assert_eq!(per_action, ResidualScale::PerAction(vec![0.3, 0.3, 0.3, 1.0]));
        assert_eq!(per_action.per_action(4).unwrap(), vec![0.3, 0.3, 0.3, 1.0]);
        assert!(per_action.per_action(3).unwrap_err().contains("4 bounds"), "{:?}", per_action.per_action(3));
        assert_eq!(ResidualScale::Uniform(0.2).per_action(3).unwrap(), vec![0.2; 3]);
        for (bad, says) in [("[0.3, 3.0]", "action 1"), ("[0.0, 0.0]", "at least one"), ("\"big\"", "a list of numbers"), ("-0.1", "(0, 2]")] {
            let err = LaunchFile::parse(&with(bad), Path::new("x.ron")).unwrap_err();
            let p = &err.problems()[0];
            assert_eq!((p.line, p.path.as_str()), (2, "practice.base.residual_scale"), "{bad}: {err}");
            assert!(p.to_string().contains(says), "{bad}: {err}");
        }
        assert_eq!("0.3,0.3,0.3,1".parse::<ResidualScale>().unwrap(), per_action);
        assert_eq!("0.5".parse::<ResidualScale>().unwrap(), ResidualScale::Uniform(0.5));
        assert!("0.3,x".parse::<ResidualScale>().unwrap_err().contains("`x`"));
        assert_eq!(per_action.to_string().parse::<ResidualScale>().unwrap(), per_action);
    }
}
