//! A real-arm task's actions, each in [-1, 1]: tool steps (translation,
//! optionally rotation) or joint steps, then the gripper's slot. Decoding
//! turns one into what the arm tracks until the next action.

use nalgebra::{Isometry3, Rotation3, Vector3};
use rrl_types::config::{ArmActions, GripperAction, Orientation};
use rrl_types::JointVec;

use super::ArmTaskError;

/// What the arm tracks during one policy step.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Target {
    /// The tool point and, unless the orientation is free, the tool's orientation.
    Tool { position: [f64; 3], rotation: Option<Rotation3<f64>> },
    /// The arm joints' positions (inline: a step's target is made on the actor's thread).
    Joints(JointVec),
}

#[derive(Clone)]
enum Kind {
    Tool { step: [f64; 3], orientation: Orientation },
    Joints { step: Vec<f64> },
}

#[derive(Clone)]
pub(super) struct ActionLayout {
    kind: Kind,
    gripper: GripperAction,
    size: usize,
    pub low: Vec<f64>,
    pub high: Vec<f64>,
}

impl ActionLayout {
    /// `tool_step_m`: the step of tool actions that name none (the
    /// practice section's). `arm_joints` excludes the gripper.
    pub fn new(actions: &ArmActions, tool_step_m: f64, arm_joints: usize) -> ActionLayout {
        let per_axis = |values: &[f64], axes: usize| -> Vec<f64> { (0..axes).map(|k| if values.len() == 1 { values[0] } else { values[k] }).collect() };
        let (kind, gripper, arm_slots) = match actions {
            ArmActions::Tool(tool) => {
                let step = per_axis(tool.step_m.as_deref().unwrap_or(&[tool_step_m]), 3);
                let rotation_slots = if matches!(tool.orientation, Orientation::Rotate(_)) { 3 } else { 0 };
                (Kind::Tool { step: [step[0], step[1], step[2]], orientation: tool.orientation }, tool.gripper, 3 + rotation_slots)
            }
            ArmActions::Joints(joints) => (Kind::Joints { step: per_axis(&joints.step_rad, arm_joints) }, joints.gripper, arm_joints),
        };
        let size = arm_slots + usize::from(gripper != GripperAction::None);
        ActionLayout { kind, gripper, size, low: vec![-1.0; size], high: vec![1.0; size] }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether the tool's orientation is controlled (held or rotated).
    pub fn controls_orientation(&self) -> bool {
        matches!(self.kind, Kind::Tool { orientation: Orientation::Hold | Orientation::Rotate(_), .. })
    }

    /// The tool step per axis of translation-only tool actions (a scripted
    /// demonstrator's scale); `None` for rotations or joint actions.
    pub fn plain_tool_step(&self) -> Option<[f64; 3]> {
        match &self.kind {
            Kind::Tool { step, orientation: Orientation::Free | Orientation::Hold } => Some(*step),
            _ => None,
        }
    }

    pub fn has_gripper(&self) -> bool {
        self.gripper != GripperAction::None
    }

    /// Checks `action`'s size and values.
    pub fn check(&self, action: &[f64]) -> Result<(), ArmTaskError> {
        if action.len() != self.size {
            return Err(ArmTaskError::ActionSize { expected: self.size, got: action.len() });
        }
        match action.iter().position(|a| !a.is_finite()) {
            Some(index) => Err(ArmTaskError::NonFiniteAction { index, value: action[index] }),
            None => Ok(()),
        }
    }

    /// The target `action` asks for from the tool at `tool` (position,
    /// orientation) or the arm joints at `q_arm`, with `held` the
    /// orientation the tool keeps.
    pub fn target(&self, action: &[f64], tool: Option<([f64; 3], Rotation3<f64>)>, held: &mut Rotation3<f64>, q_arm: &[f64]) -> Target {
        let a = |k: usize| action[k].clamp(-1.0, 1.0);
        match &self.kind {
            Kind::Tool { step, orientation } => {
                let (position, _) = tool.expect("tool actions need kinematics (checked at start)");
                let rotation = match *orientation {
                    Orientation::Free => None,
                    Orientation::Hold => Some(*held),
                    Orientation::Rotate(step_rad) => {
                        // Rotations compose on the held orientation, not the measured
                        // one: tracking error does not accumulate into drift.
                        *held = Rotation3::from_scaled_axis(Vector3::new(a(3), a(4), a(5)) * step_rad) * *held;
                        Some(*held)
                    }
                };
                Target::Tool { position: std::array::from_fn(|k| position[k] + step[k] * a(k)), rotation }
            }
            Kind::Joints { step } => {
                let mut goal = JointVec::zeros(q_arm.len());
                for (k, (q, s)) in q_arm.iter().zip(step).enumerate() {
                    goal[k] = q + s * a(k);
                }
                Target::Joints(goal)
            }
        }
    }

    /// The action that asks for the way from the tool pose or arm joints
    /// `now` to `goal` — the inverse of `target` — clipped to [-1, 1]: a
    /// goal farther than one step gets a full step toward it. The gripper's
    /// slot asks for `closure` (0 open … 1 closed). `tool` (now, goal) is
    /// needed by tool actions only.
    pub fn action_toward(&self, tool: Option<(&Isometry3<f64>, &Isometry3<f64>)>, q_now: &[f64], q_goal: &[f64], closure: f64) -> Vec<f64> {
        let mut action = Vec::with_capacity(self.size);
        match &self.kind {
            Kind::Tool { step, orientation } => {
                let (now, goal) = tool.expect("tool actions need kinematics (checked at start)");
                let way = goal.translation.vector - now.translation.vector;
                action.extend((0..3).map(|k| (way[k] / step[k]).clamp(-1.0, 1.0)));
                if let Orientation::Rotate(step_rad) = *orientation {
                    let turn = (goal.rotation * now.rotation.inverse()).scaled_axis();
                    action.extend((0..3).map(|k| (turn[k] / step_rad).clamp(-1.0, 1.0)));
                }
            }
            Kind::Joints { step } => action.extend(q_now.iter().zip(q_goal).zip(step).map(|((q, g), s)| ((g - q) / s).clamp(-1.0, 1.0))),
        }
        match self.gripper {
            GripperAction::None => {}
            GripperAction::Continuous => action.push(2.0 * closure.clamp(0.0, 1.0) - 1.0),
            GripperAction::OpenClose => action.push(if closure > 0.5 { 1.0 } else { -1.0 }),
        }
        action
    }

    /// Whether actions move the tool (rather than the joints).
    pub fn moves_tool(&self) -> bool {
        matches!(self.kind, Kind::Tool { .. })
    }

    /// The gripper closure (0 open … 1 closed) `action` asks for, if it has a gripper slot.
    pub fn gripper_closure(&self, action: &[f64]) -> Option<f64> {
        let value = || action[self.size - 1].clamp(-1.0, 1.0);
        match self.gripper {
            GripperAction::None => None,
            GripperAction::Continuous => Some(0.5 * (value() + 1.0)),
            GripperAction::OpenClose => Some(if value() > 0.0 { 1.0 } else { 0.0 }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rrl_types::config::{JointActions, ToolActions};

    #[test]
    fn tool_actions_step_the_tool_rotate_the_held_orientation_and_drive_the_gripper() {
        let actions = ArmActions::Tool(ToolActions { step_m: Some(vec![0.01, 0.02, 0.03]), orientation: Orientation::Rotate(0.1), gripper: GripperAction::OpenClose });
        let layout = ActionLayout::new(&actions, 0.5, 7);
        assert_eq!(layout.size(), 7, "3 translation, 3 rotation, 1 gripper");
        let mut held = Rotation3::identity();
        let target = layout.target(&[1.0, -1.0, 2.0, 0.0, 0.0, 1.0, 0.3], Some(([0.5, 0.0, 0.2], Rotation3::identity())), &mut held, &[]);
        let Target::Tool { position, rotation } = target else { panic!("a tool target") };
        assert_eq!(position, [0.51, -0.02, 0.23], "steps per axis; the action is clipped to [-1, 1]");
        assert!((rotation.unwrap().angle() - 0.1).abs() < 1e-12 && (held.angle() - 0.1).abs() < 1e-12, "rotated 0.1 rad about z");
        assert_eq!(layout.gripper_closure(&[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.3]), Some(1.0));
        assert_eq!(layout.gripper_closure(&[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -0.3]), Some(0.0));
        assert!(matches!(layout.check(&[0.0; 6]), Err(ArmTaskError::ActionSize { expected: 7, got: 6 })));
    }

    #[test]
    fn joint_actions_step_each_arm_joint_by_its_own_step() {
        let actions = ArmActions::Joints(JointActions { step_rad: vec![0.1, 0.2], gripper: GripperAction::Continuous });
        let layout = ActionLayout::new(&actions, 0.02, 2);
        assert_eq!(layout.size(), 3);
        let target = layout.target(&[1.0, -0.5, 0.0], None, &mut Rotation3::identity(), &[1.0, 2.0]);
        assert_eq!(target, Target::Joints(JointVec::from_slice(&[1.1, 1.9]).unwrap()));
        assert_eq!(layout.gripper_closure(&[0.0, 0.0, 0.0]), Some(0.5));
    }

    #[test]
    fn the_action_toward_a_goal_inverts_the_target_and_a_far_goal_gets_a_full_step() {
        let joints = ActionLayout::new(&ArmActions::Joints(JointActions { step_rad: vec![0.1, 0.2], gripper: GripperAction::Continuous }), 0.02, 2);
        let action = joints.action_toward(None, &[1.0, 2.0], &[1.05, 5.0], 0.25);
        assert_eq!(action.len(), 3);
        assert!((action[0] - 0.5).abs() < 1e-12 && action[1] == 1.0 && action[2] == -0.5, "{action:?}");
        assert_eq!(joints.target(&action, None, &mut Rotation3::identity(), &[1.0, 2.0]), Target::Joints(JointVec::from_slice(&[1.05, 2.2]).unwrap()));

        let tool = ActionLayout::new(&ArmActions::Tool(ToolActions { step_m: Some(vec![0.01]), orientation: Orientation::Rotate(0.1), gripper: GripperAction::OpenClose }), 0.5, 5);
        let now = Isometry3::translation(0.3, 0.0, 0.2);
        let goal = Isometry3::new(Vector3::new(0.305, -0.5, 0.2), Vector3::new(0.0, 0.0, 0.05));
        let action = tool.action_toward(Some((&now, &goal)), &[], &[], 0.9);
        assert_eq!(action.len(), 7);
        assert!((action[0] - 0.5).abs() < 1e-9 && action[1] == -1.0 && action[2].abs() < 1e-12, "{action:?}");
        assert!((action[5] - 0.5).abs() < 1e-9 && action[3].abs() < 1e-12 && action[6] == 1.0, "{action:?}");
        let mut held = Rotation3::identity();
        let Target::Tool { position, rotation } = tool.target(&action, Some(([0.3, 0.0, 0.2], Rotation3::identity())), &mut held, &[]) else { panic!("a tool target") };
        assert!((position[0] - 0.305).abs() < 1e-9 && (position[1] + 0.01).abs() < 1e-9, "{position:?}");
        assert!((rotation.unwrap().angle() - 0.05).abs() < 1e-9);
    }
}
