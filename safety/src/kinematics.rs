//! Forward kinematics of serial arms, for the gate's Cartesian checks: a
//! chain of fixed transforms and joint motions from the base to a tool
//! point, built from a named robot's published parameters or read from the
//! robot's URDF. Evaluating the chain never allocates.

use std::path::{Path, PathBuf};

use nalgebra::{Isometry3, Rotation3, Translation3, Unit, UnitQuaternion, Vector3};
use rrl_types::MAX_JOINTS;

use crate::limits::JointLimit;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum KinematicsError {
    #[error("{file}: {message}")]
    Read { file: PathBuf, message: String },
    #[error("{file}:{line}:{column}: {message}")]
    Urdf { file: PathBuf, line: u32, column: u32, message: String },
    #[error("{0}")]
    Chain(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JointKind {
    Revolute,
    Prismatic,
}

/// One moving joint of the chain: the fixed transform from the previous
/// joint's frame, then a motion about (or along) `axis`.
#[derive(Debug, Clone, Copy)]
struct ChainJoint {
    origin: Isometry3<f64>,
    axis: Unit<Vector3<f64>>,
    kind: JointKind,
    /// Which entry of the robot's joint vector drives it.
    index: usize,
}

impl Default for ChainJoint {
    fn default() -> Self {
        ChainJoint { origin: Isometry3::identity(), axis: Vector3::z_axis(), kind: JointKind::Revolute, index: 0 }
    }
}

/// A serial chain from the robot's base to its tool point.
#[derive(Debug, Clone)]
pub struct KinematicChain {
    joints: [ChainJoint; MAX_JOINTS],
    len: usize,
    /// From the last moving joint's frame to the tool point.
    tool: Isometry3<f64>,
}

impl KinematicChain {
    /// The Franka Emika Panda from its published (modified) Denavit–
    /// Hartenberg parameters, to the flange; joints 0..7 of the robot's
    /// joint vector.
    pub fn panda() -> KinematicChain {
        // (a, d, alpha) of each joint, Craig's convention, in metres/radians.
        let half_pi = std::f64::consts::FRAC_PI_2;
        let table = [
            (0.0, 0.333, 0.0),
            (0.0, 0.0, -half_pi),
            (0.0, 0.316, half_pi),
            (0.0825, 0.0, half_pi),
            (-0.0825, 0.384, -half_pi),
            (0.0, 0.0, half_pi),
            (0.088, 0.0, half_pi),
        ];
        let mut joints = [ChainJoint::default(); MAX_JOINTS];
        for (i, &(a, d, alpha)) in table.iter().enumerate() {
            // Rx(alpha)·Tx(a)·Rz(theta)·Tz(d); Rz and Tz commute, so the
            // fixed part is Rx(alpha)·Tx(a)·Tz(d) and the motion is about z.
            let origin = Isometry3::from_parts(Translation3::identity(), UnitQuaternion::from_axis_angle(&Vector3::x_axis(), alpha))
                * Isometry3::translation(a, 0.0, d);
            joints[i] = ChainJoint { origin, axis: Vector3::z_axis(), kind: JointKind::Revolute, index: i };
        }
        KinematicChain { joints, len: table.len(), tool: Isometry3::translation(0.0, 0.0, 0.107) }
    }

    /// The same chain with the tool point moved by `offset` in the tool frame
    /// (e.g. from a flange to the fingertips).
    pub fn with_tool_offset(mut self, offset: [f64; 3]) -> KinematicChain {
        self.tool *= Isometry3::translation(offset[0], offset[1], offset[2]);
        self
    }

    /// The same chain driven by other entries of the robot's joint vector:
    /// moving joint k reads `indices[k]`.
    pub fn with_joint_indices(mut self, indices: &[usize]) -> KinematicChain {
        for (joint, &index) in self.joints[..self.len].iter_mut().zip(indices) {
            joint.index = index;
        }
        self
    }

    /// Moving joints in the chain.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The largest robot joint index the chain reads, plus one.
    pub fn joints_needed(&self) -> usize {
        self.joints[..self.len].iter().map(|j| j.index + 1).max().unwrap_or(0)
    }

    /// The tool pose in the base frame for the robot's joint positions
    /// `position(i)` (a closure, so callers need not build a vector).
    pub fn tool_pose_with(&self, position: impl Fn(usize) -> f64) -> Isometry3<f64> {
        let mut pose = Isometry3::identity();
        for joint in &self.joints[..self.len] {
            let q = position(joint.index);
            let motion = match joint.kind {
                JointKind::Revolute => Isometry3::from_parts(Translation3::identity(), UnitQuaternion::from_axis_angle(&joint.axis, q)),
                JointKind::Prismatic => Isometry3::from_parts(Translation3::from(joint.axis.into_inner() * q), UnitQuaternion::identity()),
            };
            pose = pose * joint.origin * motion;
        }
        pose * self.tool
    }

    /// The tool point in the base frame for the robot's joint positions.
    pub fn tool_position(&self, positions: &[f64]) -> [f64; 3] {
        let p = self.tool_pose_with(|i| positions[i]).translation.vector;
        [p.x, p.y, p.z]
    }

    /// The chain from `base_link` to `tip_link` of the URDF in `text` (read
    /// from `file`, named in errors with line and column). Every moving
    /// joint on the way must be one of the robot's `joint_names`; fixed
    /// joints fold into their neighbours. Also returns the `<limit>` of each
    /// of the robot's joints the URDF describes.
    pub fn from_urdf(text: &str, file: &Path, base_link: &str, tip_link: &str, joint_names: &[String]) -> Result<(KinematicChain, Vec<(String, JointLimit)>), KinematicsError> {
        let document = roxmltree::Document::parse(text).map_err(|e| {
            let pos = e.pos();
            KinematicsError::Urdf { file: file.to_path_buf(), line: pos.row, column: pos.col, message: format!("not well-formed XML: {e}") }
        })?;
        let fail = |node: roxmltree::Node, message: String| {
            let pos = document.text_pos_at(node.range().start);
            KinematicsError::Urdf { file: file.to_path_buf(), line: pos.row, column: pos.col, message }
        };
        let robot = document.root_element();
        if robot.tag_name().name() != "robot" {
            return Err(fail(robot, format!("the root element is <{}>, a URDF's is <robot>", robot.tag_name().name())));
        }
        let mut urdf_joints = Vec::new();
        for node in robot.children().filter(|n| n.has_tag_name("joint")) {
            urdf_joints.push(UrdfJoint::parse(node).map_err(|(at, message)| fail(at, message))?);
        }
        if !robot.children().any(|n| n.has_tag_name("link") && n.attribute("name") == Some(tip_link)) {
            return Err(fail(robot, format!("no link named `{tip_link}` (the chain's tip)")));
        }

        // Walk from the tip up to the base.
        let mut path = Vec::new();
        let mut link = tip_link;
        while link != base_link {
            let Some(joint) = urdf_joints.iter().find(|j| j.child == link) else {
                return Err(fail(robot, format!("link `{link}` has no parent joint, so `{tip_link}` does not hang below `{base_link}`")));
            };
            if path.len() > urdf_joints.len() {
                return Err(fail(joint.node_at(&document), format!("joint `{}` closes a loop", joint.name)));
            }
            path.push(joint);
            link = &joint.parent;
        }
        path.reverse();

        let mut joints = [ChainJoint::default(); MAX_JOINTS];
        let mut len = 0;
        let mut pending = Isometry3::identity();
        for joint in path {
            let kind = match joint.kind.as_str() {
                "fixed" => {
                    pending *= joint.origin;
                    continue;
                }
                "revolute" | "continuous" => JointKind::Revolute,
                "prismatic" => JointKind::Prismatic,
                other => return Err(fail(joint.node_at(&document), format!("joint `{}` is {other}; a serial chain takes revolute, continuous, prismatic and fixed joints", joint.name))),
            };
            let Some(index) = joint_names.iter().position(|n| *n == joint.name) else {
                return Err(fail(joint.node_at(&document), format!("joint `{}` moves the chain but is not a joint of the robot (it has: {})", joint.name, joint_names.join(", "))));
            };
            if len == MAX_JOINTS {
                return Err(KinematicsError::Chain(format!("{}: more than {MAX_JOINTS} moving joints between `{base_link}` and `{tip_link}`", file.display())));
            }
            joints[len] = ChainJoint { origin: pending * joint.origin, axis: joint.axis, kind, index };
            pending = Isometry3::identity();
            len += 1;
        }
        if len == 0 {
            return Err(KinematicsError::Chain(format!("{}: no moving joint between `{base_link}` and `{tip_link}`", file.display())));
        }
        let limits = urdf_joints
            .iter()
            .filter(|j| joint_names.contains(&j.name))
            .map(|j| (j.name.clone(), j.limit))
            .collect();
        Ok((KinematicChain { joints, len, tool: pending }, limits))
    }

    /// Reads `file` and builds the chain as `from_urdf` does.
    pub fn load_urdf(file: &Path, base_link: &str, tip_link: &str, joint_names: &[String]) -> Result<(KinematicChain, Vec<(String, JointLimit)>), KinematicsError> {
        let text = std::fs::read_to_string(file).map_err(|e| KinematicsError::Read { file: file.to_path_buf(), message: format!("cannot read the URDF: {e}") })?;
        KinematicChain::from_urdf(&text, file, base_link, tip_link, joint_names)
    }
}

/// A URDF `<joint>` as far as kinematics and limits need it.
struct UrdfJoint {
    name: String,
    kind: String,
    parent: String,
    child: String,
    origin: Isometry3<f64>,
    axis: Unit<Vector3<f64>>,
    limit: JointLimit,
    /// Byte offset of the element, for messages.
    start: usize,
}

type ParseFailure<'a, 'input> = (roxmltree::Node<'a, 'input>, String);

impl UrdfJoint {
    fn parse<'a, 'input>(node: roxmltree::Node<'a, 'input>) -> Result<UrdfJoint, ParseFailure<'a, 'input>> {
        let name = node.attribute("name").ok_or((node, "a <joint> without a name".to_string()))?.to_string();
        let kind = node.attribute("type").ok_or((node, format!("joint `{name}` has no type")))?.to_string();
        let child_element = |tag: &str| node.children().find(|c| c.has_tag_name(tag));
        let link_of = |tag: &str| -> Result<String, ParseFailure<'a, 'input>> {
            let element = child_element(tag).ok_or((node, format!("joint `{name}` has no <{tag}>")))?;
            Ok(element.attribute("link").ok_or((element, format!("joint `{name}`: <{tag}> names no link")))?.to_string())
        };
        let (parent, child) = (link_of("parent")?, link_of("child")?);
        let mut origin = Isometry3::identity();
        if let Some(element) = child_element("origin") {
            let xyz = triple(element, "xyz", &name)?.unwrap_or([0.0; 3]);
            let rpy = triple(element, "rpy", &name)?.unwrap_or([0.0; 3]);
            // URDF's rpy: fixed-axis roll about x, then pitch about y, then yaw about z.
            let rotation = UnitQuaternion::from_rotation_matrix(&Rotation3::from_euler_angles(rpy[0], rpy[1], rpy[2]));
            origin = Isometry3::from_parts(Translation3::new(xyz[0], xyz[1], xyz[2]), rotation);
        }
        let mut axis = Vector3::x_axis();
        if let Some(element) = child_element("axis") {
            let xyz = triple(element, "xyz", &name)?.unwrap_or([1.0, 0.0, 0.0]);
            axis = Unit::try_new(Vector3::from(xyz), 1e-9).ok_or((element, format!("joint `{name}`: the axis is zero")))?;
        }
        let mut limit = JointLimit::default();
        if let Some(element) = child_element("limit") {
            let number = |attribute: &str| -> Result<Option<f64>, ParseFailure<'a, 'input>> {
                element
                    .attribute(attribute)
                    .map(|text| text.trim().parse::<f64>().map_err(|_| (element, format!("joint `{name}`: limit {attribute}=\"{text}\" is not a number"))))
                    .transpose()
            };
            if kind != "continuous" {
                if let (Some(lower), Some(upper)) = (number("lower")?, number("upper")?) {
                    if lower >= upper {
                        return Err((element, format!("joint `{name}`: lower limit {lower} is not below upper {upper}")));
                    }
                    limit.position = Some((lower, upper));
                }
            }
            // URDF writes 0 for "not given" in velocity and effort.
            limit.velocity = number("velocity")?.filter(|v| *v > 0.0);
            limit.effort = number("effort")?.filter(|e| *e > 0.0);
        }
        Ok(UrdfJoint { name, kind, parent, child, origin, axis, limit, start: node.range().start })
    }

    fn node_at<'a, 'input>(&self, document: &'a roxmltree::Document<'input>) -> roxmltree::Node<'a, 'input> {
        document.descendants().find(|n| n.range().start == self.start).unwrap_or(document.root_element())
    }
}

fn triple<'a, 'input>(element: roxmltree::Node<'a, 'input>, attribute: &str, joint: &str) -> Result<Option<[f64; 3]>, ParseFailure<'a, 'input>> {
    let Some(text) = element.attribute(attribute) else { return Ok(None) };
    let values: Vec<f64> = text.split_whitespace().map(str::parse).collect::<Result<_, _>>().map_err(|_| (element, format!("joint `{joint}`: {attribute}=\"{text}\" is not three numbers")))?;
    let values: [f64; 3] = values.try_into().map_err(|_| (element, format!("joint `{joint}`: {attribute}=\"{text}\" is not three numbers")))?;
    Ok(Some(values))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARM: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/two_link.urdf"));

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_planar_two_link_arm_lands_where_trigonometry_says() {
        let (chain, limits) = KinematicChain::from_urdf(ARM, Path::new("arm.urdf"), "base", "tool", &names(&["shoulder", "elbow", "gripper"])).unwrap();
        assert_eq!(chain.len(), 2);
        for (a, b) in [(0.0, 0.0), (0.4, -0.9), (-1.2, 1.7)] {
            let p = chain.tool_position(&[a, b, 0.0]);
            let expected = [0.3 * f64::cos(a) + 0.2 * f64::cos(a + b), 0.3 * f64::sin(a) + 0.2 * f64::sin(a + b), 0.1];
            for k in 0..3 {
                assert!((p[k] - expected[k]).abs() < 1e-12, "q = ({a}, {b}): {p:?} vs {expected:?}");
            }
        }
        let shoulder = limits.iter().find(|(n, _)| n == "shoulder").unwrap().1;
        assert_eq!((shoulder.position, shoulder.velocity, shoulder.effort), (Some((-1.5, 1.5)), Some(2.0), Some(3.0)));
        let elbow = limits.iter().find(|(n, _)| n == "elbow").unwrap().1;
        assert_eq!((elbow.velocity, elbow.effort), (None, None), "URDF's 0 means not given");
    }

    #[test]
    fn bad_urdfs_are_refused_with_file_line_and_column() {
        let joints = names(&["shoulder", "elbow"]);
        let broken = ARM.replace("<origin xyz=\"0.3 0 0\" rpy=\"0 0 0\"/>", "<origin xyz=\"0.3 zero 0\"/>");
        let err = KinematicChain::from_urdf(&broken, Path::new("arm.urdf"), "base", "tool", &joints).unwrap_err().to_string();
        assert!(err.starts_with("arm.urdf:15:5: joint `elbow`: xyz=\"0.3 zero 0\""), "{err}");

        let err = KinematicChain::from_urdf(&ARM.replace("</robot>", ""), Path::new("arm.urdf"), "base", "tool", &joints).unwrap_err().to_string();
        assert!(err.starts_with("arm.urdf:") && err.contains("not well-formed"), "{err}");

        let err = KinematicChain::from_urdf(ARM, Path::new("arm.urdf"), "base", "tool", &names(&["shoulder"])).unwrap_err().to_string();
        assert!(err.contains("joint `elbow` moves the chain but is not a joint of the robot (it has: shoulder)"), "{err}");

        let err = KinematicChain::from_urdf(ARM, Path::new("arm.urdf"), "base", "hand", &joints).unwrap_err().to_string();
        assert!(err.contains("no link named `hand`"), "{err}");

        let err = KinematicChain::from_urdf(ARM, Path::new("arm.urdf"), "upper", "base", &joints).unwrap_err().to_string();
        assert!(err.contains("link `base` has no parent joint"), "{err}");
    }
}
