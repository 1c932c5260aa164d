//! The policy's observation of a real-arm task: the launch file's
//! `task.observe` sources, concatenated in order, each at a known offset
//! (scripted demonstrators find the tool, the gripper and the object there).

use std::ops::Range;

use nalgebra::Isometry3;
use ros_edge::observed_topics::{ObservedTopics, TopicKind};
use rrl_types::config::Observe;

/// Where each source's values lie in the observation.
pub struct ObservationLayout {
    parts: Vec<(Observe, Range<usize>)>,
    size: usize,
}

/// What one observation is made of, measured just now.
pub(super) struct Measured<'a> {
    pub q: &'a [f64],
    pub velocity: &'a [f64],
    pub arm: &'a [usize],
    pub tool: Option<Isometry3<f64>>,
    pub tool_velocity: [f64; 3],
    pub gripper: f64,
    pub wrench: [f64; 6],
    pub goal: [f64; 3],
    /// 1 forward, −1 backward.
    pub direction: f64,
    pub topics: Option<&'a ObservedTopics>,
}

impl ObservationLayout {
    /// The layout of `observe` for an arm with `arm_joints` joints (the gripper excluded).
    pub fn new(observe: &[Observe], arm_joints: usize) -> ObservationLayout {
        let mut parts = Vec::new();
        let mut size = 0;
        for source in observe {
            let len = match source {
                Observe::Joints | Observe::JointVelocities => arm_joints,
                Observe::Tool | Observe::ToolVelocity => 3,
                Observe::ToolOrientation | Observe::Goal | Observe::Wrench => 6,
                Observe::Gripper | Observe::Direction => 1,
                Observe::Pose(_) => TopicKind::Pose.len(),
                Observe::Array { len, .. } => *len as usize,
                // Frames travel beside the observation vector (`Environment::frames`).
                Observe::Camera(_) => 0,
            };
            parts.push((source.clone(), size..size + len));
            size += len;
        }
        ObservationLayout { parts, size }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Where `source` lies in the observation, if it is observed.
    pub fn range_of(&self, source: &Observe) -> Option<Range<usize>> {
        self.parts.iter().find(|(s, _)| s == source).map(|(_, r)| r.clone())
    }

    /// The topics observed, in the order `ObservedTopics` is started with.
    pub fn topics(&self) -> Vec<(String, TopicKind)> {
        self.parts
            .iter()
            .filter_map(|(source, _)| match source {
                Observe::Pose(topic) => Some((topic.clone(), TopicKind::Pose)),
                Observe::Array { topic, len } => Some((topic.clone(), TopicKind::Array(*len as usize))),
                _ => None,
            })
            .collect()
    }

    /// Writes the observation of `m` into `out`.
    pub(super) fn write(&self, m: &Measured, out: &mut Vec<f64>) {
        out.clear();
        let mut topic = 0;
        for (source, _) in &self.parts {
            match source {
                Observe::Joints => out.extend(m.arm.iter().map(|&j| m.q[j])),
                Observe::JointVelocities => out.extend(m.arm.iter().map(|&j| m.velocity[j])),
                Observe::Tool => out.extend_from_slice(m.tool.expect("tool observations need kinematics (checked at start)").translation.vector.as_slice()),
                Observe::ToolOrientation => {
                    let rotation = m.tool.expect("checked at start").rotation.to_rotation_matrix();
                    out.extend_from_slice(&rotation.matrix().as_slice()[..6]);
                }
                Observe::ToolVelocity => out.extend_from_slice(&m.tool_velocity),
                Observe::Gripper => out.push(m.gripper),
                Observe::Direction => out.push(m.direction),
                Observe::Wrench => out.extend_from_slice(&m.wrench),
                Observe::Goal => {
                    let tool = m.tool.expect("checked at start").translation.vector;
                    out.extend_from_slice(&m.goal);
                    // The goal as seen from the tool: what a reach must zero,
                    // given directly rather than left to the networks to subtract.
                    out.extend((0..3).map(|k| m.goal[k] - tool[k]));
                }
                Observe::Pose(_) | Observe::Array { .. } => {
                    out.extend_from_slice(m.topics.expect("topics start with the task").values(topic));
                    topic += 1;
                }
                Observe::Camera(_) => {}
            }
        }
        debug_assert_eq!(out.len(), self.size);
    }
}
