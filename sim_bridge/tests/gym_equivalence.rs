//! Our Gymnasium v5 tasks against Python Gymnasium as an independent peer:
//! from the same qpos/qvel and the same 1000 actions, observations and
//! rewards agree to 1e-5 and terminations agree, for every task.

use std::path::PathBuf;
use std::process::Command;

use serde::Deserialize;
use sim_bridge::{Environment, GymEnv, GymTask};

#[derive(Deserialize)]
struct Trajectory {
    qpos: Vec<f64>,
    qvel: Vec<f64>,
    actions: Vec<Vec<f64>>,
    observations: Vec<Vec<f64>>,
    rewards: Vec<f64>,
    terminated: Vec<bool>,
}

const STEPS: usize = 1000;
const TOLERANCE: f64 = 1e-5;

fn python() -> PathBuf {
    std::env::var_os("VIRTUAL_ENV").map(|v| PathBuf::from(v).join("bin/python")).unwrap_or_else(|| "python3".into())
}

fn peer_trajectory(task: GymTask, seed: u64) -> Trajectory {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("trajectory.json");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/gym_trajectory.py");
    let status = Command::new(python())
        .arg(script)
        .args([task.gym_id(), &seed.to_string(), &STEPS.to_string()])
        .arg(&out)
        .status()
        .expect("run Python Gymnasium");
    assert!(status.success(), "the Gymnasium peer failed for {}", task.gym_id());
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= TOLERANCE * b.abs().max(1.0)
}

fn check(task: GymTask) {
    let peer = peer_trajectory(task, 42);
    let mut env = GymEnv::new(task).unwrap();
    env.set_state(&peer.qpos, &peer.qvel).unwrap();
    let mut terminations = 0;
    for (t, action) in peer.actions.iter().enumerate() {
        let step = env.step(action).unwrap();
        let obs = env.observation();
        assert_eq!(obs.len(), peer.observations[t].len(), "{}: observation size", task.gym_id());
        for (i, (&ours, &theirs)) in obs.iter().zip(&peer.observations[t]).enumerate() {
            assert!(close(ours, theirs), "{} step {t}: obs[{i}] = {ours}, Gymnasium {theirs}", task.gym_id());
        }
        assert!(close(step.reward, peer.rewards[t]), "{} step {t}: reward {} vs Gymnasium {}", task.gym_id(), step.reward, peer.rewards[t]);
        assert_eq!(step.terminated, peer.terminated[t], "{} step {t}: terminated", task.gym_id());
        terminations += step.terminated as usize;
    }
    eprintln!("{}: {STEPS} steps equal to Gymnasium ({terminations} steps flagged terminated)", task.gym_id());
}

#[test]
fn inverted_pendulum_matches_gymnasium() {
    check(GymTask::InvertedPendulum);
}

#[test]
fn inverted_double_pendulum_matches_gymnasium() {
    check(GymTask::InvertedDoublePendulum);
}

#[test]
fn half_cheetah_matches_gymnasium() {
    check(GymTask::HalfCheetah);
}

#[test]
fn hopper_matches_gymnasium() {
    check(GymTask::Hopper);
}

#[test]
fn walker2d_matches_gymnasium() {
    check(GymTask::Walker2d);
}

#[test]
fn ant_matches_gymnasium() {
    check(GymTask::Ant);
}
