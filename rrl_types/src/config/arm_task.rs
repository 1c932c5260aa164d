//! The `task` section: what a real arm (a ros2_control arm over topics, a
//! serial-servo arm, or the simulated Panda served over topics) practises —
//! its actions, its gripper, what the policy observes, its goal, and how
//! an episode is reset. Success and reward come from the launch file's
//! `reward` section (`Task` means this section's goal).

use serde::{Deserialize, Serialize};

use super::{Checker, PracticeConfig, RewardConfig};

/// A manipulation task on a real arm. Without a `task` section a real arm
/// practises the reach task: tool deltas, a sampled goal, a scripted home
/// reset (the defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArmTaskConfig {
    /// What the policy's actions move. Default: `Tool(())` (tool
    /// translation steps of `practice.tool_step_m`, orientation free).
    pub actions: ArmActions,
    /// The joint that opens and closes the gripper, and its open and
    /// closed positions. Needed by a gripper action, a `Gripper`
    /// observation and a `Gripper(..)` reset move. Default: none.
    pub gripper: Option<GripperConfig>,
    /// What the policy observes, concatenated in this order. Default:
    /// `[Joints, Tool, Goal]`.
    pub observe: Vec<Observe>,
    /// The goal an episode reaches for; `reward: Task` rewards and ends
    /// episodes by it. `None` for tasks whose success a human, a VLM or a
    /// classifier judges. Default: `SampledTool` (the reach task).
    pub goal: Option<GoalConfig>,
    /// Subtracted from every step's reward (a cost of time). Default: 0.
    pub step_penalty: f64,
    /// An observed topic (`Pose`, `Array`) whose newest message is older
    /// than this pauses practice before the next step (the object is no
    /// longer tracked) until it delivers again. Default: 500 ms.
    pub topic_timeout_ms: u64,
    /// The moves of a reset, in order. Default: `[Home]`.
    pub reset: Vec<ResetMove>,
    /// Reset-free practice in two directions, as SERL's forward and
    /// backward tasks (e.g. put the cube in the bin, take it out again):
    /// episodes alternate from wherever the scene is — the `reset` moves
    /// run only before the first — each judged by its own success source,
    /// and the policy observes which direction it practises (`Direction`).
    /// Rewarded by `reward: Task`: 1 and the episode's end on its
    /// direction's success. Default: none.
    pub directions: Option<Directions>,
    /// A dense shaping term beside a sparse success (a human's label, a
    /// direction's detector, a goal): potential-based, −scale × the
    /// distance between two observed points, so it guides without
    /// changing which policy is best. Added to what the learner gets;
    /// episodes on disk keep their rewards unshaped. Default: none.
    pub shaping: Option<ShapingConfig>,
}

/// Shaping by the distance between two observed points: the first three
/// values of each source (`Tool`, `Goal`, `Pose(..)`, an `Array(..)` of at
/// least three).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShapingConfig {
    pub from: Observe,
    pub to: Observe,
    /// Potential per metre. Default: 1.
    #[serde(default = "one")]
    pub scale: f64,
}

fn one() -> f64 {
    1.0
}

/// The two directions of reset-free practice and how each succeeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Directions {
    pub forward: SuccessSource,
    pub backward: SuccessSource,
}

/// How a direction's success is measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SuccessSource {
    /// The tool point within this many metres of a point of the base
    /// frame: `ToolAt((x, y, z), tolerance_m)`.
    ToolAt((f64, f64, f64), f64),
    /// A detector's `std_msgs/Bool` topic (a fiducial or a camera check
    /// publishing steadily): success while it says true.
    Topic(String),
}

/// What an action moves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ArmActions {
    /// Tool-space steps, turned into joint commands by inverse kinematics
    /// on the gate's kinematic chain (the robot needs kinematics).
    Tool(ToolActions),
    /// Joint position steps, for arms without useful inverse kinematics.
    Joints(JointActions),
}

impl Default for ArmActions {
    fn default() -> Self {
        ArmActions::Tool(ToolActions::default())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolActions {
    /// Largest tool translation per step and axis, m: one number, or one
    /// per axis (x, y, z). Default: `practice.tool_step_m`.
    pub step_m: Option<Vec<f64>>,
    /// What becomes of the tool's orientation. Default: `Free`.
    pub orientation: Orientation,
    /// The gripper's action slot (last). Default: `None`.
    pub gripper: GripperAction,
}

impl Default for ToolActions {
    fn default() -> Self {
        ToolActions { step_m: None, orientation: Orientation::Free, gripper: GripperAction::None }
    }
}

/// The tool's orientation under tool actions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Orientation {
    /// Only the tool point is controlled; the orientation follows the
    /// arm's motion (the reach task).
    Free,
    /// Held where the reset left it (a gripper pointing down stays down).
    Hold,
    /// Three more action slots rotate it about the base frame's axes by up
    /// to this many radians per step.
    Rotate(f64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JointActions {
    /// Largest joint step per policy step, rad: one number, or one per
    /// arm joint (the gripper excluded). Default: 0.05.
    pub step_rad: Vec<f64>,
    /// The gripper's action slot (last). Default: `None`.
    pub gripper: GripperAction,
}

impl Default for JointActions {
    fn default() -> Self {
        JointActions { step_rad: vec![0.05], gripper: GripperAction::None }
    }
}

/// How an action drives the gripper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GripperAction {
    /// No gripper slot.
    None,
    /// −1 open … +1 closed, any opening in between.
    Continuous,
    /// Above 0 closes, otherwise opens.
    OpenClose,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GripperConfig {
    /// One of the robot's joints (a ros2_control arm's `gripper.joint`, a
    /// serial arm's gripper servo).
    pub joint: String,
    /// The joint's position when open and when closed (radians, metres or
    /// the simulator's 0..1; closed may be the smaller number).
    pub open: f64,
    pub closed: f64,
}

/// One part of the observation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Observe {
    /// Arm joint positions (the gripper joint excluded), rad.
    Joints,
    /// Arm joint velocities, rad/s.
    JointVelocities,
    /// The tool point (x, y, z) in the base frame, m.
    Tool,
    /// The tool's orientation as the first two columns of its rotation
    /// matrix (6 values, continuous, unlike angles).
    ToolOrientation,
    /// The tool point's velocity (x, y, z), m/s.
    ToolVelocity,
    /// The gripper's closure: 0 open … 1 closed.
    Gripper,
    /// The external wrench (force x, y, z, torque x, y, z), where the robot
    /// reports one.
    Wrench,
    /// The goal point and the goal as seen from the tool (6 values).
    Goal,
    /// The direction practised (`directions`): 1 forward, −1 backward.
    Direction,
    /// A `geometry_msgs/PoseStamped` topic (mocap, a fiducial tracker):
    /// position and orientation quaternion (x, y, z, qx, qy, qz, qw).
    Pose(String),
    /// A `std_msgs/Float64MultiArray` topic of exactly `len` values.
    Array { topic: String, len: u32 },
    /// A camera of the `cameras` section.
    Camera(String),
}

/// Where an episode's goal comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GoalConfig {
    /// A reachable tool point, sampled from random joint poses inside the
    /// workspace box; reached within `practice.goal_tolerance_m`.
    SampledTool,
}

/// One move of a scripted reset. Tool moves need kinematics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ResetMove {
    /// The tool straight up (or down) by this many metres.
    Lift(f64),
    /// The tool in a straight line to this point of the base frame, m.
    Tool((f64, f64, f64)),
    /// The gripper to this closure (0 open … 1 closed), waiting until it
    /// stops moving.
    Gripper(f64),
    /// The arm to `practice.home` plus uniform noise of
    /// `practice.reset_noise_rad` (the tool first in a straight line); the
    /// gripper keeps its target (its value in `home` is not used).
    Home,
    /// Holds still for this many seconds (e.g. for a dropped object to settle).
    Wait(f64),
    /// The human reset window: the arm is held while a person puts the
    /// scene back; the next episode starts when they publish
    /// `std_msgs/Empty` on `<namespace>/practice/reset_done`, and practice
    /// stops with a message after this many seconds without it.
    WaitForHuman(f64),
}

impl Default for ArmTaskConfig {
    fn default() -> Self {
        ArmTaskConfig {
            actions: ArmActions::default(),
            gripper: None,
            observe: vec![Observe::Joints, Observe::Tool, Observe::Goal],
            goal: Some(GoalConfig::SampledTool),
            step_penalty: 0.0,
            topic_timeout_ms: 500,
            reset: vec![ResetMove::Home],
            directions: None,
            shaping: None,
        }
    }
}

impl ArmTaskConfig {
    /// The gripper's action, if the actions have a slot for it.
    pub fn gripper_action(&self) -> GripperAction {
        match &self.actions {
            ArmActions::Tool(tool) => tool.gripper,
            ArmActions::Joints(joints) => joints.gripper,
        }
    }

    /// Whether anything in the task needs the arm's kinematics.
    pub fn needs_kinematics(&self) -> bool {
        matches!(self.actions, ArmActions::Tool(_))
            || self.goal.is_some()
            || self.observe.iter().any(|o| matches!(o, Observe::Tool | Observe::ToolOrientation | Observe::ToolVelocity | Observe::Goal))
            || self.reset.iter().any(|m| matches!(m, ResetMove::Lift(_) | ResetMove::Tool(_)))
            || self.directions.as_ref().is_some_and(|d| [&d.forward, &d.backward].iter().any(|s| matches!(s, SuccessSource::ToolAt(..))))
    }

    /// Checks the section (its cameras are checked with the pixel settings, `pixels::check_observed_cameras`).
    pub(super) fn check(&self, joints: &[String], reward: &RewardConfig, practice: &PracticeConfig, c: &mut Checker) {
        let uses_gripper = self.gripper_action() != GripperAction::None
            || self.observe.contains(&Observe::Gripper)
            || self.reset.iter().any(|m| matches!(m, ResetMove::Gripper(_)));
        match &self.gripper {
            Some(gripper) => {
                if !joints.contains(&gripper.joint) {
                    c.fail("task.gripper.joint", format!("the robot has no joint `{}`", gripper.joint), Some(&format!("one of: {}", joints.join(", "))));
                }
                if !(gripper.open.is_finite() && gripper.closed.is_finite()) || gripper.open == gripper.closed {
                    c.fail("task.gripper.open", format!("open ({}) and closed ({}) must be two different finite positions", gripper.open, gripper.closed), None);
                }
            }
            None if uses_gripper => c.fail("task.gripper", "the task acts on, observes or resets a gripper but names none", Some("gripper: Some((joint: \"gripper\", open: 0.0, closed: 1.0))")),
            None => {}
        }
        let arm_joints = joints.len() - usize::from(self.gripper.as_ref().is_some_and(|g| joints.contains(&g.joint)));
        if arm_joints == 0 {
            c.fail("task.gripper.joint", "the robot's only joint is the gripper: a task needs an arm to move", None);
        }
        match &self.actions {
            ArmActions::Tool(tool) => {
                if let Some(step) = &tool.step_m {
                    per_axis(step, 3, "task.actions.step_m", "metres", c);
                }
                if let Orientation::Rotate(step) = tool.orientation {
                    c.positive("task.actions.orientation", step, "radians");
                }
            }
            ArmActions::Joints(j) => per_axis(&j.step_rad, arm_joints, "task.actions.step_rad", "radians", c),
        }
        if self.observe.is_empty() {
            c.fail("task.observe", "the policy must observe something", Some("e.g. [Joints, Tool]"));
        }
        for (i, observed) in self.observe.iter().enumerate() {
            let path = format!("task.observe[{i}]");
            match observed {
                Observe::Pose(topic) | Observe::Array { topic, .. } => c.topic_name(&path, topic),
                Observe::Goal if self.goal.is_none() => c.fail(&path, "the task has no goal to observe", Some("goal: Some(SampledTool)")),
                _ => {}
            }
            if let Observe::Array { len, .. } = observed {
                if *len == 0 || *len as usize > crate::MAX_TOPIC_VALUES {
                    c.fail(&path, format!("an array observation holds 1 to {} values, got {len}", crate::MAX_TOPIC_VALUES), None);
                }
            }
        }
        if !(self.step_penalty.is_finite() && self.step_penalty >= 0.0) {
            c.fail("task.step_penalty", format!("a cost per step is zero or positive, got {}", self.step_penalty), None);
        }
        if self.step_penalty > 0.0 && !matches!(reward, RewardConfig::Task) {
            c.fail("task.step_penalty", "a step penalty shapes the task's own reward (`reward: Task`); with human labels, a VLM or a classifier the reward is theirs alone", Some("step_penalty: 0.0"));
        }
        c.nonzero_ms("task.topic_timeout_ms", self.topic_timeout_ms);
        if self.reset.is_empty() {
            c.fail("task.reset", "a reset needs at least one move", Some("[Home]"));
        }
        for (i, step) in self.reset.iter().enumerate() {
            let path = format!("task.reset[{i}]");
            match *step {
                ResetMove::Lift(m) if !m.is_finite() || m.abs() > 1.0 => c.fail(&path, format!("a lift of {m} m"), Some("within ±1 m")),
                ResetMove::Tool((x, y, z)) if ![x, y, z].iter().all(|v| v.is_finite()) => c.fail(&path, "the point must be finite", None),
                ResetMove::Gripper(g) if !(0.0..=1.0).contains(&g) => c.fail(&path, format!("a closure lies in [0, 1] (0 open), got {g}"), None),
                ResetMove::Wait(s) if !(s.is_finite() && s >= 0.0 && s <= 60.0) => c.fail(&path, format!("waits 0 to 60 s, got {s}"), None),
                ResetMove::WaitForHuman(s) if !(s.is_finite() && s > 0.0 && s <= 3600.0) => c.fail(&path, format!("a reset window of 0 to 3600 s, got {s}"), Some("e.g. WaitForHuman(120.0)")),
                _ => {}
            }
        }
        if matches!(reward, RewardConfig::Task) && self.goal.is_none() && self.directions.is_none() {
            c.fail("reward", "`Task` rewards by the task's goal or its directions' success, and this task has neither", Some("reward: Human (success and failure labels), Vlm(..) or Classifier(..)"));
        }
        if practice.reset_free && self.goal.is_none() {
            c.fail("practice.reset_free", "reset-free practice alternates a goal and home; this task has no goal", Some("for a task without a goal: task.directions"));
        }
        let observes_direction = self.observe.contains(&Observe::Direction);
        match &self.directions {
            Some(directions) => {
                if self.goal.is_some() {
                    c.fail("task.directions", "a task with a goal practises reset-free by `practice.reset_free` (goal and home alternate)", Some("goal: None"));
                }
                if !matches!(reward, RewardConfig::Task) {
                    c.fail("task.directions", "each direction is judged by its own success source: `reward: Task`", Some("reward: Task"));
                }
                if !observes_direction {
                    c.fail("task.observe", "a policy practising two directions must see which: observe `Direction`", None);
                }
                for (path, source) in [("task.directions.forward", &directions.forward), ("task.directions.backward", &directions.backward)] {
                    match source {
                        SuccessSource::ToolAt((x, y, z), tolerance) => {
                            if ![x, y, z].iter().all(|v| v.is_finite()) {
                                c.fail(path, "the point must be finite", None);
                            }
                            c.positive(path, *tolerance, "metres");
                        }
                        SuccessSource::Topic(topic) => c.topic_name(path, topic),
                    }
                }
                if directions.forward == directions.backward {
                    c.fail("task.directions.backward", "the same success source as forward: a direction would succeed where the other did", None);
                }
            }
            None if observes_direction => c.fail("task.observe", "`Direction` needs `task.directions`", None),
            None => {}
        }
        if let Some(shaping) = &self.shaping {
            for (path, source) in [("task.shaping.from", &shaping.from), ("task.shaping.to", &shaping.to)] {
                let point = match source {
                    Observe::Tool | Observe::Goal | Observe::Pose(_) => true,
                    Observe::Array { len, .. } => *len >= 3,
                    _ => false,
                };
                if !point {
                    c.fail(path, format!("{source:?} is not a point: shaping measures the distance between two of Tool, Goal, Pose(..) or an Array(..) of 3 or more"), None);
                } else if !self.observe.contains(source) {
                    c.fail(path, format!("{source:?} is not observed"), Some("add it to task.observe"));
                }
            }
            if shaping.from == shaping.to {
                c.fail("task.shaping.to", "the same point as `from`: the distance is always 0", None);
            }
            c.positive("task.shaping.scale", shaping.scale, "per metre");
        }
    }
}


fn per_axis(values: &[f64], axes: usize, path: &str, unit: &str, c: &mut Checker) {
    if values.len() != 1 && values.len() != axes {
        c.fail(path, format!("{} values: give one for every axis or one per axis ({axes})", values.len()), None);
    }
    for v in values {
        c.positive(path, *v, unit);
    }
}
