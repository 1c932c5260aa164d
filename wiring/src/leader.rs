//! The leader arm as an operator: a second servo arm a human moves by hand
//! (`robot_drivers::leader`), whose pose the follower — the launch file's
//! arm — tracks as the task's own actions, so that teleop demos and
//! takeovers are recorded in the policy's action space and pass the gate
//! like any action. In teleop the follower tracks the leader from its
//! first move on; in practice the human takes over by moving the leader,
//! and the takeover lasts while the leader moves and until the follower
//! has caught up with it. A leader that stops answering pauses the session
//! (the gate holds the follower) until it answers again.

use std::time::{Duration, Instant};

use policies::practice::{Operator, OperatorCommand, OperatorInput};
use robot_drivers::leader::LeaderArm;
use rrl_types::config::{LaunchFile, LeaderGripper};
use rrl_types::JointVec;

use crate::arm_task::{ArmTask, Follower};

/// Leader motion (rad, any joint) that counts as the human's hand.
const MOVED_RAD: f64 = 0.02;
/// How long a takeover outlasts the leader's last motion.
const HOLD_AFTER_STILL: Duration = ros_edge::joy::HOLD_AFTER_RELEASE;

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("leader arm on {port}: {message}")]
    Start { port: String, message: String },
}

/// How the leader's gripper handle maps onto the follower's gripper joint.
#[derive(Debug, Clone, Copy)]
struct Handle {
    /// The handle's index among the leader's joints.
    leader: usize,
    /// The follower's gripper joint.
    follower: usize,
    /// Handle (open, closed) → follower (open, closed), rad.
    from: LeaderGripper,
    to: LeaderGripper,
}

/// When the follower tracks the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracking {
    /// From the leader's first move on (teleop demos).
    Always,
    /// While the leader moves and until the follower has caught up
    /// (takeover during practice; the policy acts otherwise).
    WhileMoved,
}

pub struct LeaderOperator {
    leader: LeaderArm,
    tracking: Tracking,
    follower: Follower,
    /// Each leader joint's follower joint.
    to_follower: Vec<usize>,
    handle: Option<Handle>,
    stale_after: Duration,
    /// Where the leader was when it last moved, and when.
    anchor: Option<JointVec>,
    last_moved: Option<Instant>,
    engaged: bool,
    /// The session is paused because the leader went silent.
    paused: bool,
    goal: Vec<f64>,
}

impl LeaderOperator {
    /// Opens the launch file's leader arm (its `leader` section), if it
    /// has one, for `task` to follow.
    pub fn for_task(launch: &LaunchFile, task: &mut ArmTask, tracking: Tracking) -> Result<Option<LeaderOperator>, LeaderError> {
        let Some(config) = &launch.leader else { return Ok(None) };
        let follower = task.follower();
        let port = config.bus.port.clone();
        let fail = |message: String| LeaderError::Start { port: port.clone(), message };
        let follower_index = |name: &str| follower.joint_names().iter().position(|n| n == name).ok_or_else(|| fail(format!("the follower has no joint `{name}`")));
        let to_follower = config.bus.joints.iter().map(|j| follower_index(&j.name)).collect::<Result<Vec<_>, _>>()?;
        let handle = match (config.gripper, &launch.task.gripper) {
            (Some(from), Some(task)) => Some(Handle {
                leader: config.bus.joints.iter().position(|j| j.name == task.joint).ok_or_else(|| fail(format!("no leader servo drives the gripper joint `{}`", task.joint)))?,
                follower: follower_index(&task.joint)?,
                from,
                to: LeaderGripper { open: task.open, closed: task.closed },
            }),
            _ => None,
        };
        let mut leader = LeaderArm::start(config.bus.clone()).map_err(|e| fail(e.to_string()))?;
        // Motion counts from where the leader is now: moving it while the
        // first reset runs starts the takeover.
        let anchor = leader.newest().map(|r| r.positions);
        tracing::info!(port = %leader.port(), joints = ?leader.joint_names(), "leader arm: move it to take over; the follower tracks it through the safety gate");
        Ok(Some(LeaderOperator {
            leader,
            tracking,
            goal: vec![0.0; follower.joint_names().len()],
            follower,
            to_follower,
            handle,
            stale_after: Duration::from_millis(config.stale_after_ms),
            anchor,
            last_moved: None,
            engaged: false,
            paused: false,
        }))
    }
}

impl Handle {
    fn follower_position(&self, handle: f64) -> f64 {
        let closure = (handle - self.from.open) / (self.from.closed - self.from.open);
        self.to.open + closure.clamp(0.0, 1.0) * (self.to.closed - self.to.open)
    }
}

impl Operator for LeaderOperator {
    fn poll(&mut self, _observation: &[f64]) -> OperatorInput {
        let mut input = OperatorInput::default();
        let now = Instant::now();
        let Some(reading) = self.leader.newest().copied() else { return input };
        let age = now.saturating_duration_since(reading.read_at);
        if age > self.stale_after {
            if !self.paused {
                tracing::warn!(port = %self.leader.port(), silent_ms = age.as_millis() as u64, "the leader arm stopped answering: the session pauses and the gate holds the follower until it answers again");
                self.paused = true;
                self.follower.live().wait_for(rrl_types::Waiting::LeaderArm);
                input.command = Some(OperatorCommand::Pause);
            }
            return input;
        }
        if self.paused {
            tracing::warn!(port = %self.leader.port(), "the leader arm answers again: the session resumes");
            self.paused = false;
            self.follower.live().came(rrl_types::Waiting::LeaderArm);
            input.command = Some(OperatorCommand::Resume);
        }
        let positions = reading.positions;
        let moved = match &self.anchor {
            Some(anchor) => anchor.as_slice().iter().zip(positions.as_slice()).any(|(a, p)| (a - p).abs() > MOVED_RAD),
            None => {
                self.anchor = Some(positions);
                false
            }
        };
        if moved {
            self.anchor = Some(positions);
            self.last_moved = Some(now);
        }
        let Some(current) = self.follower.positions() else { return input };
        self.goal.copy_from_slice(current);
        for (l, &f) in self.to_follower.iter().enumerate() {
            self.goal[f] = positions[l];
        }
        if let Some(handle) = self.handle {
            self.goal[handle.follower] = handle.follower_position(positions[handle.leader]);
        }
        let Some((action, there)) = self.follower.action_toward(&self.goal) else { return input };
        let moving = self.last_moved.is_some_and(|t| now.duration_since(t) <= HOLD_AFTER_STILL);
        self.engaged = match self.tracking {
            Tracking::Always => self.last_moved.is_some(),
            Tracking::WhileMoved => moving || (self.engaged && !there),
        };
        if self.engaged {
            input.takeover = Some(action);
        }
        input
    }
}
