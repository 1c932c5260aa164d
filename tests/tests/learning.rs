//! Learning actually happens: SAC on InvertedPendulum-v5 reaches an
//! evaluation return of at least 900 (of 1000) within 20 000 environment
//! steps, for each of three seeds, on CPU.

use policies::{Sac, SacConfig, TrainSettings};
use rrl_types::config::LearnerConfig;
use rrl_types::Environment;
use sim_bridge::{GymEnv, GymTask};

fn learns_inverted_pendulum(seed: u64) {
    // Two test threads share two cores: one libtorch thread each.
    policies::set_cpu_threads(1);
    let mut env = GymEnv::new(GymTask::InvertedPendulum).unwrap();
    let mut eval_env = GymEnv::new(GymTask::InvertedPendulum).unwrap();
    let learner = LearnerConfig { critic_lr: 1e-3, ..LearnerConfig::default() };
    let mut sac = Sac::new(SacConfig::from_learner(&learner, env.observation_size(), env.action_size(), seed), cpu());
    let settings = TrainSettings {
        total_steps: 20_000,
        warmup_steps: 1_000,
        eval_every: 2_000,
        eval_episodes: 5,
        replay_capacity: 20_000,
        seed,
        stop_at_return: Some(900.0),
        stop_at_success: None,
        checkpoint_dir: None,
        resume: false,
    };
    let evals = policies::train(&mut env, &mut eval_env, &mut sac, None, &settings, |_| {}).unwrap();
    let curve: Vec<(u64, f64)> = evals.iter().map(|e| (e.step, e.mean_return)).collect();
    let best = curve.iter().map(|(_, r)| *r).fold(f64::MIN, f64::max);
    eprintln!("seed {seed}: {curve:?}");
    assert!(best >= 900.0, "seed {seed}: best evaluation return {best} < 900 within 20k steps: {curve:?}");
}

fn cpu() -> tch::Device {
    policies::select_device(rrl_types::config::DeviceChoice::Cpu).unwrap()
}

#[test]
fn sac_learns_inverted_pendulum_seed_1() {
    learns_inverted_pendulum(1);
}

#[test]
fn sac_learns_inverted_pendulum_seed_2() {
    learns_inverted_pendulum(2);
}

#[test]
fn sac_learns_inverted_pendulum_seed_3() {
    learns_inverted_pendulum(3);
}
