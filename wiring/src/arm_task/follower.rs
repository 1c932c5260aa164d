//! A real-arm task as a leader arm's follower sees it: the action that
//! takes the arm from its newest state toward a joint configuration the
//! leader holds — tool steps toward the leader's tool pose (inside the
//! workspace box) or joint steps toward its joints (inside their limits),
//! and the gripper toward the leader's closure — and whether the arm is
//! already there. The follower lives on the actor's thread beside its task
//! (as an operator's part), and sees the task's newest state through a
//! single slot the task fills.

use std::sync::Arc;

use crossbeam::queue::ArrayQueue;
use rrl_types::JointState;
use safety::CartesianLimits;

use super::actions::ActionLayout;
use super::{inside_box, GripperJoint};

/// The share of a step (of an action slot) within which the arm counts as
/// where the leader is; the gripper's, as a share of its travel.
const THERE_WITHIN: f64 = 0.1;

pub struct Follower {
    pub(super) states: Arc<ArrayQueue<JointState>>,
    pub(super) newest: Option<JointState>,
    pub(super) joint_names: Vec<String>,
    pub(super) arm: Vec<usize>,
    /// The range each arm joint's goal is held in (the task's own).
    pub(super) ranges: Vec<(f64, f64)>,
    pub(super) gripper: Option<GripperJoint>,
    pub(super) workspace: Option<CartesianLimits>,
    pub(super) actions: ActionLayout,
    pub(super) live: Arc<rrl_types::LiveStatus>,
}

impl Follower {
    /// What the operator sees of the follower's session.
    pub fn live(&self) -> &rrl_types::LiveStatus {
        &self.live
    }

    /// The follower's joints, in order (the robot's).
    pub fn joint_names(&self) -> &[String] {
        &self.joint_names
    }

    /// The follower's newest joint positions, once it has a state.
    pub fn positions(&mut self) -> Option<&[f64]> {
        if let Some(state) = self.states.pop() {
            self.newest = Some(state);
        }
        self.newest.as_ref().map(|s| s.position.as_slice())
    }

    /// The task's action toward joint positions `goal` (one per follower
    /// joint, the gripper's in its radians) from the arm's newest state, and
    /// whether the arm is already there. `None` before the first state.
    pub fn action_toward(&mut self, goal: &[f64]) -> Option<(Vec<f64>, bool)> {
        let q = self.positions()?.to_vec();
        let mut goal = goal.to_vec();
        for (&j, &(lo, hi)) in self.arm.iter().zip(&self.ranges) {
            goal[j] = goal[j].clamp(lo, hi);
        }
        let q_now: Vec<f64> = self.arm.iter().map(|&j| q[j]).collect();
        let q_goal: Vec<f64> = self.arm.iter().map(|&j| goal[j]).collect();
        let tool = match (&self.workspace, self.actions.moves_tool()) {
            (Some(w), true) => {
                let now = w.chain.tool_pose_with(|i| q[i]);
                let mut there = w.chain.tool_pose_with(|i| goal[i]);
                let point = inside_box(w, [there.translation.x, there.translation.y, there.translation.z]);
                there.translation.vector = point.into();
                Some((now, there))
            }
            _ => None,
        };
        let closure = self.gripper.map_or(0.0, |g| g.closure(goal[g.index]).clamp(0.0, 1.0));
        let action = self.actions.action_toward(tool.as_ref().map(|(now, there)| (now, there)), &q_now, &q_goal, closure);
        let arm_slots = action.len() - usize::from(self.actions.has_gripper());
        let gripper_there = self.gripper.is_none_or(|g| (g.closure(q[g.index]) - closure).abs() < THERE_WITHIN);
        let there = gripper_there && action[..arm_slots].iter().all(|a| a.abs() < THERE_WITHIN);
        Some((action, there))
    }
}
