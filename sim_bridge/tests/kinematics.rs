//! The safety gate's forward kinematics against MuJoCo as an independent
//! peer: the Panda's published parameters land on gym-hil's fingertip site,
//! and a URDF read by the gate lands where MuJoCo's own URDF compiler puts
//! the same link, for random joint positions.

use std::sync::Arc;

use mujoco_rs::prelude::{MjData, MjModel, MjtObjBase};
use rrl_types::rng::Rng;
use safety::KinematicChain;
use sim_bridge::arm::{PandaSim, PANDA_HOME};

fn assert_close(ours: [f64; 3], theirs: [f64; 3], what: &str) {
    for k in 0..3 {
        assert!((ours[k] - theirs[k]).abs() < 1e-9, "{what}: ours {ours:?}, MuJoCo {theirs:?}");
    }
}

#[test]
fn the_panda_chain_lands_on_gym_hils_fingertip_site() {
    let mut sim = PandaSim::load().unwrap();
    // gym-hil's Robotiq fingertip point sits 3.8 mm + 145 mm beyond the flange.
    let chain = KinematicChain::panda().with_tool_offset([0.0, 0.0, 0.0038 + 0.145]);
    let mut rng = Rng::seed(5);
    for c in 0..50 {
        let pose: [f64; 7] = std::array::from_fn(|i| PANDA_HOME[i] + rng.uniform(-1.0, 1.0));
        sim.reset_to(&pose);
        assert_close(chain.tool_position(&pose), sim.pinch_position(), &format!("pose {c} {pose:?}"));
    }
}

const SIX_DOF_URDF: &str = r#"<?xml version="1.0"?>
<robot name="six_dof">
  <mujoco><compiler fusestatic="false" discardvisual="true"/></mujoco>
  <link name="base"><inertial><mass value="1"/><inertia ixx="0.01" iyy="0.01" izz="0.01" ixy="0" ixz="0" iyz="0"/></inertial></link>
  <link name="turret"><inertial><mass value="0.5"/><inertia ixx="0.01" iyy="0.01" izz="0.01" ixy="0" ixz="0" iyz="0"/></inertial></link>
  <link name="upper"><inertial><mass value="0.5"/><inertia ixx="0.01" iyy="0.01" izz="0.01" ixy="0" ixz="0" iyz="0"/></inertial></link>
  <link name="lower"><inertial><mass value="0.5"/><inertia ixx="0.01" iyy="0.01" izz="0.01" ixy="0" ixz="0" iyz="0"/></inertial></link>
  <link name="mount"><inertial><mass value="0.1"/><inertia ixx="0.001" iyy="0.001" izz="0.001" ixy="0" ixz="0" iyz="0"/></inertial></link>
  <link name="wrist"><inertial><mass value="0.3"/><inertia ixx="0.01" iyy="0.01" izz="0.01" ixy="0" ixz="0" iyz="0"/></inertial></link>
  <link name="slide"><inertial><mass value="0.2"/><inertia ixx="0.01" iyy="0.01" izz="0.01" ixy="0" ixz="0" iyz="0"/></inertial></link>
  <link name="hand"><inertial><mass value="0.2"/><inertia ixx="0.01" iyy="0.01" izz="0.01" ixy="0" ixz="0" iyz="0"/></inertial></link>
  <link name="tip"><inertial><mass value="0.05"/><inertia ixx="0.001" iyy="0.001" izz="0.001" ixy="0" ixz="0" iyz="0"/></inertial></link>
  <joint name="pan" type="continuous">
    <parent link="base"/><child link="turret"/>
    <origin xyz="0.02 -0.01 0.12" rpy="0 0 0.3"/>
    <axis xyz="0 0 1"/>
  </joint>
  <joint name="lift" type="revolute">
    <parent link="turret"/><child link="upper"/>
    <origin xyz="0 0.03 0.05" rpy="1.5708 0.2 0"/>
    <axis xyz="0 1 0"/>
    <limit lower="-2" upper="2" velocity="3" effort="5"/>
  </joint>
  <joint name="elbow" type="revolute">
    <parent link="upper"/><child link="lower"/>
    <origin xyz="0.11 0.02 -0.03" rpy="-0.4 0.7 1.1"/>
    <axis xyz="0.6 0 0.8"/>
    <limit lower="-2.5" upper="2.5" velocity="3" effort="5"/>
  </joint>
  <joint name="mount_fixed" type="fixed">
    <parent link="lower"/><child link="mount"/>
    <origin xyz="0.13 0 0.01" rpy="0 -0.5 0"/>
  </joint>
  <joint name="wrist_flex" type="revolute">
    <parent link="mount"/><child link="wrist"/>
    <origin xyz="0.02 0.01 0" rpy="0.3 0 -0.2"/>
    <axis xyz="1 1 0"/>
    <limit lower="-3" upper="3" velocity="3" effort="5"/>
  </joint>
  <joint name="extend" type="prismatic">
    <parent link="wrist"/><child link="slide"/>
    <origin xyz="0.05 0 0" rpy="0 0 0"/>
    <axis xyz="1 0 0"/>
    <limit lower="0" upper="0.1" velocity="0.2" effort="20"/>
  </joint>
  <joint name="wrist_roll" type="revolute">
    <parent link="slide"/><child link="hand"/>
    <origin xyz="0.03 0 0.0" rpy="0 1.5708 0"/>
    <axis xyz="0 0 -1"/>
    <limit lower="-3" upper="3" velocity="3" effort="5"/>
  </joint>
  <joint name="tip_fixed" type="fixed">
    <parent link="hand"/><child link="tip"/>
    <origin xyz="0.01 0.02 0.06" rpy="0.1 0.2 0.3"/>
  </joint>
</robot>"#;

#[test]
fn a_urdf_chain_lands_where_mujocos_urdf_compiler_puts_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("six_dof.urdf");
    std::fs::write(&path, SIX_DOF_URDF).unwrap();
    // The robot's joint vector has a gripper the chain does not use, and another order.
    let names: Vec<String> = ["gripper", "wrist_roll", "pan", "lift", "elbow", "wrist_flex", "extend"].iter().map(|s| s.to_string()).collect();
    let (chain, _) = KinematicChain::load_urdf(&path, "base", "tip", &names).unwrap();
    assert_eq!(chain.len(), 6);

    let model = Arc::new(MjModel::from_xml(&path).unwrap());
    let tip = model.name_to_id(MjtObjBase::mjOBJ_BODY, "tip").expect("MuJoCo kept the tip link");
    let qpos_of: Vec<Option<usize>> = names.iter().map(|n| model.name_to_id(MjtObjBase::mjOBJ_JOINT, n).map(|id| model.jnt_qposadr()[id] as usize)).collect();
    let mut data = MjData::new(model.clone());
    let mut rng = Rng::seed(8);
    for c in 0..50 {
        let q: Vec<f64> = names.iter().map(|n| if n == "extend" { rng.uniform(0.0, 0.1) } else { rng.uniform(-2.0, 2.0) }).collect();
        for (i, slot) in qpos_of.iter().enumerate() {
            if let Some(adr) = slot {
                data.qpos_mut()[*adr] = q[i];
            }
        }
        data.forward();
        assert_close(chain.tool_position(&q), data.xpos()[tip], &format!("case {c} q = {q:?}"));
    }
}
