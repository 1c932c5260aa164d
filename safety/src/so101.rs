//! The SO-101 arm's kinematics, built in: the gate reads its own URDF of the
//! arm (published dimensions, zero at the calibration pose) when a launch
//! file names the `So101` preset and no URDF of its own.

use std::path::Path;

use crate::kinematics::{KinematicChain, KinematicsError};
use crate::limits::JointLimit;

/// The built-in URDF's text.
pub const URDF: &str = include_str!("../urdf/so101.urdf");
/// The link the chain (and the workspace box) starts from.
pub const BASE_LINK: &str = "base";
/// The tool point between the jaw tips.
pub const TIP_LINK: &str = "gripper_tip";

/// The chain from the base to the tool point, driven by the robot's
/// `joint_names`, and the URDF's `<limit>` of each of those joints. Fails
/// only when the robot lacks one of the arm's joints.
pub fn chain(joint_names: &[String]) -> Result<(KinematicChain, Vec<(String, JointLimit)>), KinematicsError> {
    KinematicChain::from_urdf(URDF, Path::new("so101.urdf (built in)"), BASE_LINK, TIP_LINK, joint_names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rrl_types::config::RobotPreset;

    fn names() -> Vec<String> {
        RobotPreset::So101.joint_names().iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_built_in_urdf_gives_a_five_joint_chain_and_every_joints_limits() {
        let (chain, limits) = chain(&names()).expect("the built-in SO-101 URDF parses");
        assert_eq!(chain.len(), 5, "the jaw hangs beside the chain, not on it");
        assert_eq!(limits.len(), 6);
        let gripper = limits.iter().find(|(n, _)| n == "gripper").unwrap().1;
        assert_eq!(gripper.position, Some((-0.174533, 1.74533)));
        // The published model's gripper frame at its calibration pose,
        // computed apart from this crate from the published file's numbers:
        // catches a mistyped dimension, which a comparison with MuJoCo
        // reading this same file cannot.
        let p = chain.tool_position(&[0.0; 6]);
        let published = [0.020398252, -0.375600673, 0.258952649];
        for k in 0..3 {
            assert!((p[k] - published[k]).abs() < 1e-6, "{p:?} vs {published:?}");
        }
    }

    #[test]
    fn the_preset_gets_the_urdfs_limits_where_its_tables_leave_them_open() {
        let safety: rrl_types::config::SafetyConfig = ron::from_str("(preset: Some(So101), workspace: Some((min: (-0.5, -0.5, 0.0), max: (0.5, 0.5, 0.6))))").unwrap();
        let config = crate::GateConfig::from_launch(&safety, &names(), 100.0).unwrap();
        let (chain, _) = chain(&names()).unwrap();
        let q = [0.3, -0.4, 0.5, 0.2, -1.0, 0.7];
        assert_eq!(config.workspace.as_ref().unwrap().chain.tool_position(&q), chain.tool_position(&q));
        // The preset's speed stays; range and effort are the URDF's (the published model's).
        let pan = config.limits[0];
        assert_eq!((pan.position, pan.velocity, pan.effort), (Some((-1.91986, 1.91986)), Some(3.0), Some(10.0)));
    }

    #[test]
    fn a_launch_files_own_urdf_replaces_the_built_in_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("so101.urdf");
        std::fs::write(&path, URDF.replace("velocity=\"10\" effort=\"10\"", "velocity=\"10\" effort=\"4\"")).unwrap();
        let ron = format!("(preset: Some(So101), urdf: Some((file: {:?}, base_link: \"base\", tip_link: \"gripper\")))", path.display().to_string());
        let safety: rrl_types::config::SafetyConfig = ron::from_str(&ron).unwrap();
        let config = crate::GateConfig::from_launch(&safety, &names(), 100.0).unwrap();
        assert_eq!(config.limits[0].effort, Some(4.0));
    }
}
