//! The gate's built-in SO-101 kinematics against MuJoCo's own URDF compiler
//! reading the same file: the tool point between the jaw tips lands in the
//! same place for random poses within the joint limits, and the gate's
//! `So101` preset uses that chain for its workspace box.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mujoco_rs::prelude::{MjData, MjModel, MjtObjBase};
use rrl_types::config::{RobotPreset, SafetyConfig};
use rrl_types::rng::Rng;
use safety::{so101, GateConfig, KinematicChain};

fn urdf_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../safety/urdf/so101.urdf")
}

fn joint_names() -> Vec<String> {
    RobotPreset::So101.joint_names().iter().map(|s| s.to_string()).collect()
}

fn distance(a: [f64; 3], b: [f64; 3]) -> f64 {
    (0..3).map(|k| (a[k] - b[k]).powi(2)).sum::<f64>().sqrt()
}

/// MuJoCo's model of the URDF, with the rrl joint vector's qpos addresses.
struct Mujoco {
    data: MjData<Arc<MjModel>>,
    tip: usize,
    qpos_of: Vec<usize>,
}

impl Mujoco {
    fn load(urdf: &Path) -> Mujoco {
        let model = Arc::new(MjModel::from_xml(urdf).expect("MuJoCo compiles the SO-101 URDF"));
        let tip = model.name_to_id(MjtObjBase::mjOBJ_BODY, so101::TIP_LINK).expect("MuJoCo kept the tool-point link as a body");
        let qpos_of = joint_names()
            .iter()
            .map(|n| model.jnt_qposadr()[model.name_to_id(MjtObjBase::mjOBJ_JOINT, n).unwrap_or_else(|| panic!("MuJoCo has joint `{n}`"))] as usize)
            .collect();
        Mujoco { data: MjData::new(model.clone()), tip, qpos_of }
    }

    fn tool_position(&mut self, q: &[f64]) -> [f64; 3] {
        for (i, &adr) in self.qpos_of.iter().enumerate() {
            self.data.qpos_mut()[adr] = q[i];
        }
        self.data.forward();
        self.data.xpos()[self.tip]
    }
}

/// The URDF's own chain, read from the file as a launch file's would be.
fn urdf_chain() -> KinematicChain {
    let (chain, _) = KinematicChain::load_urdf(&urdf_path(), so101::BASE_LINK, so101::TIP_LINK, &joint_names()).unwrap();
    chain
}

/// Random poses within the URDF's limits.
fn random_poses(count: usize, seed: u64) -> Vec<Vec<f64>> {
    let (_, limits) = KinematicChain::load_urdf(&urdf_path(), so101::BASE_LINK, so101::TIP_LINK, &joint_names()).unwrap();
    let ranges: Vec<(f64, f64)> = joint_names()
        .iter()
        .map(|n| limits.iter().find(|(name, _)| name == n).and_then(|(_, l)| l.position).unwrap_or_else(|| panic!("the URDF limits `{n}`")))
        .collect();
    let mut rng = Rng::seed(seed);
    (0..count).map(|_| ranges.iter().map(|&(lo, hi)| rng.uniform(lo, hi)).collect()).collect()
}

#[test]
fn the_so101_chain_lands_where_mujocos_urdf_compiler_puts_the_tool_point() {
    let chain = urdf_chain();
    assert_eq!(chain.len(), 5);
    let mut mujoco = Mujoco::load(&urdf_path());
    for (c, q) in random_poses(50, 101).iter().enumerate() {
        let (ours, theirs) = (chain.tool_position(q), mujoco.tool_position(q));
        assert!(distance(ours, theirs) < 1e-9, "pose {c} q = {q:?}: ours {ours:?}, MuJoCo {theirs:?}");
    }

    // The comparison has teeth: at the calibration pose (tool point well off
    // the pan axis; random poses may fold it onto the axis) another pan
    // angle puts MuJoCo's tool point far from ours.
    let home = [0.0; 6];
    let mut moved = home;
    moved[0] += 0.1;
    let (ours, elsewhere) = (chain.tool_position(&home), mujoco.tool_position(&moved));
    assert!(distance(ours, elsewhere) > 1e-3, "a 0.1 rad pan moved the tool point only {:e} m", distance(ours, elsewhere));
}

#[test]
fn a_urdf_one_millimetre_off_is_caught() {
    // MuJoCo reads a copy with the upper arm 1 mm longer; ours, the real file.
    let text = std::fs::read_to_string(urdf_path()).unwrap();
    let broken = text.replacen("xyz=\"-0.11257 -0.028 0\"", "xyz=\"-0.11357 -0.028 0\"", 1);
    assert_ne!(broken, text, "the elbow's origin is where the test expects it");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("so101.urdf");
    std::fs::write(&path, broken).unwrap();
    let chain = urdf_chain();
    let mut mujoco = Mujoco::load(&path);
    for (c, q) in random_poses(50, 101).iter().enumerate() {
        let gap = distance(chain.tool_position(q), mujoco.tool_position(q));
        assert!((gap - 1e-3).abs() < 1e-9, "pose {c}: the 1 mm error shows as {gap:e} m");
    }
}

#[test]
fn the_so101_preset_boxes_the_same_tool_point() {
    let safety: SafetyConfig = ron::from_str("(preset: Some(So101), workspace: Some((min: (-0.5, -0.5, 0.0), max: (0.5, 0.5, 0.6))))").unwrap();
    let config = GateConfig::from_launch(&safety, &joint_names(), 100.0).expect("the So101 preset has kinematics");
    let workspace = config.workspace.expect("a workspace box");
    let chain = urdf_chain();
    for (c, q) in random_poses(20, 7).iter().enumerate() {
        let (gate, urdf) = (workspace.chain.tool_position(q), chain.tool_position(q));
        assert!(distance(gate, urdf) < 1e-12, "pose {c} q = {q:?}: gate {gate:?}, URDF {urdf:?}");
    }
}
