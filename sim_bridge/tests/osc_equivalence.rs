//! The operational-space controller against gym-hil's own `opspace` as an
//! independent peer: for the same scene state and target, the torques agree
//! to 1e-6 (relative), over random arm poses, velocities and targets, with
//! both gravity-compensated as gym-hil commands them.

use std::path::PathBuf;
use std::process::Command;

use nalgebra::{Matrix3, Rotation3, Vector3};
use rrl_types::rng::Rng;
use serde::Serialize;
use sim_bridge::arm::{PandaSim, PANDA_HOME};
use sim_bridge::camera::RenderScene;
use sim_bridge::osc::{osc_torques, OscGains, OscTarget};

#[derive(Serialize)]
struct Case {
    qpos: Vec<f64>,
    qvel: Vec<f64>,
    position: [f64; 3],
    orientation: [f64; 9],
    rest: [f64; 7],
}

fn python() -> PathBuf {
    std::env::var_os("VIRTUAL_ENV").map(|v| PathBuf::from(v).join("bin/python")).unwrap_or_else(|| "python3".into())
}

#[test]
fn torques_match_gym_hils_opspace() {
    let mut sim = PandaSim::load().unwrap();
    let down = Matrix3::from_row_slice(&sim.pinch_orientation());
    let mut rng = Rng::seed(11);
    let mut cases = Vec::new();
    for c in 0..40 {
        // Larger errors in later cases: far targets, fast arms, tilted goals.
        let scale = 1.0 + c as f64 / 10.0;
        let pose: [f64; 7] = std::array::from_fn(|i| PANDA_HOME[i] + rng.uniform(-0.2, 0.2) * scale);
        sim.reset_to(&pose);
        let (mut qpos, mut qvel) = (Vec::new(), Vec::new());
        sim.copy_positions(&mut qpos);
        sim.copy_velocities(&mut qvel);
        for v in qvel.iter_mut() {
            *v = rng.uniform(-0.3, 0.3) * scale;
        }
        let pinch = sim.pinch_position();
        let position = std::array::from_fn(|k| pinch[k] + rng.uniform(-0.05, 0.05) * scale);
        let tilt = Vector3::new(rng.uniform(-0.2, 0.2), rng.uniform(-0.2, 0.2), rng.uniform(-0.5, 0.5)) * scale;
        let goal = Rotation3::from_scaled_axis(tilt).matrix() * down;
        let orientation = std::array::from_fn(|k| goal[(k / 3, k % 3)]);
        cases.push(Case { qpos, qvel, position, orientation, rest: PANDA_HOME });
    }

    let dir = tempfile::tempdir().unwrap();
    let (cases_file, peer_file) = (dir.path().join("cases.json"), dir.path().join("peer.json"));
    std::fs::write(&cases_file, serde_json::to_string(&cases).unwrap()).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/opspace_peer.py");
    let status = Command::new(python()).arg(script).arg(&cases_file).arg(&peer_file).status().expect("run gym-hil's opspace");
    assert!(status.success(), "the gym-hil peer failed");
    let peer: Vec<[f64; 7]> = serde_json::from_str(&std::fs::read_to_string(&peer_file).unwrap()).unwrap();
    assert_eq!(peer.len(), cases.len());

    let mut largest: f64 = 0.0;
    for (c, (case, theirs)) in cases.iter().zip(&peer).enumerate() {
        sim.set_state(&case.qpos, &case.qvel).unwrap();
        let target = OscTarget { position: case.position, orientation: Matrix3::from_row_slice(&case.orientation), rest: case.rest };
        let ours = osc_torques(&mut sim, &target, &OscGains::default()).unwrap();
        let bias = sim.arm_bias_forces();
        for j in 0..7 {
            let total = ours[j] + bias[j];
            largest = largest.max(theirs[j].abs());
            assert!((total - theirs[j]).abs() <= 1e-6 * theirs[j].abs().max(1.0), "case {c}, joint {j}: ours {total}, gym-hil {}", theirs[j]);
        }
    }
    // The cases must exercise the controller, not only gravity at rest.
    assert!(largest > 20.0, "largest peer torque only {largest} Nm");
}
