//! The `leader` section: a second serial-servo arm that a human moves by
//! hand (its torque stays off), whose joints the follower — the launch
//! file's robot — tracks through the safety gate: `rrl teleop` demos, and
//! takeover during practice. Each leader servo names the follower joint it
//! drives; its calibration (zero ticks, direction) makes a leader pose read
//! in the follower's radians.

use serde::{Deserialize, Serialize};

use super::{ArmTaskConfig, Checker, RobotConfig, SerialArmConfig};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderArmConfig {
    /// The leader's bus, read at its `control_rate_hz` with torque off.
    /// Each joint's `name` is the follower joint it drives; every arm joint
    /// of the follower needs one (the gripper's is optional).
    pub bus: SerialArmConfig,
    /// Where the leader's gripper handle reads open and closed, rad; they
    /// map onto `task.gripper`'s open and closed. Default: `None` (the
    /// handle's servo reads in the follower gripper's radians).
    #[serde(default)]
    pub gripper: Option<LeaderGripper>,
    /// A leader unread for this long has stopped answering: the follower
    /// holds and the session pauses until it answers again. Default: 200 ms.
    #[serde(default = "default_stale_after_ms")]
    pub stale_after_ms: u64,
}

fn default_stale_after_ms() -> u64 {
    200
}

/// The leader's gripper handle positions, rad.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderGripper {
    pub open: f64,
    pub closed: f64,
}

impl LeaderArmConfig {
    pub(super) fn check(&self, robot: &RobotConfig, task: &ArmTaskConfig, c: &mut Checker) {
        self.bus.check("leader.bus", c);
        c.positive("leader.bus.control_rate_hz", self.bus.control_rate_hz, "hertz");
        c.nonzero_ms("leader.stale_after_ms", self.stale_after_ms);
        if !matches!(robot, RobotConfig::TopicArm(_) | RobotConfig::SerialArm(_)) {
            c.fail("leader", format!("a leader arm drives a real arm's task; a {} robot has none", robot.kind_name()), Some("remove it, or drive the arm as a TopicArm or SerialArm"));
            return;
        }
        if let RobotConfig::SerialArm(follower) = robot {
            if follower.port == self.bus.port {
                c.fail("leader.bus.port", format!("`{}` is the follower's port; the leader needs its own bus", self.bus.port), None);
            }
        }
        let joints = robot.joint_names();
        let gripper = task.gripper.as_ref().map(|g| g.joint.as_str());
        for (i, joint) in self.bus.joints.iter().enumerate() {
            if !joints.contains(&joint.name) {
                c.fail(format!("leader.bus.joints[{i}].name"), format!("the follower has no joint `{}`", joint.name), Some(&format!("one of: {}", joints.join(", "))));
            }
        }
        for joint in joints.iter().filter(|j| Some(j.as_str()) != gripper) {
            if !self.bus.joints.iter().any(|l| l.name == *joint) {
                c.fail("leader.bus.joints", format!("the follower's joint `{joint}` has no leader servo"), Some("one leader servo per arm joint, named after the joint it drives"));
            }
        }
        if let Some(handle) = &self.gripper {
            match gripper {
                Some(g) if self.bus.joints.iter().any(|l| l.name == g) => {}
                Some(g) => c.fail("leader.gripper", format!("no leader servo drives the gripper joint `{g}`"), None),
                None => c.fail("leader.gripper", "the task names no gripper (task.gripper) for the handle to drive", None),
            }
            if !(handle.open.is_finite() && handle.closed.is_finite()) || handle.open == handle.closed {
                c.fail("leader.gripper.open", format!("open ({}) and closed ({}) must be two different finite positions", handle.open, handle.closed), None);
            }
        }
    }
}
