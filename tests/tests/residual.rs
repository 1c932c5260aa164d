//! Residual RL on a frozen base: a zero residual plays the base exactly,
//! the residual's bound holds for any input, a user's TorchScript base
//! (exported here with the venv's torch) loads, plays its action chunks and
//! is refused when its shapes do not fit.

use policies::residual::{combine, residual_for, BasePolicy, BcPolicy, Demos, ResidualEnv, TorchScriptPolicy};
use policies::train::{evaluate, record_demos};
use policies::{Sac, SacConfig, TrainSettings};
use rrl_types::config::{LearnerConfig, ResidualScale};
use rrl_types::rng::Rng;
use rrl_types::Environment;
use sim_bridge::panda::{NoisyExpert, PandaTask, PandaVariant, RewardKind, ScriptedExpert};

/// A weak base: behaviour cloning on a few demos with noisy actions.
fn weak_bc_base(demo_episodes: u64, noise: f64, seed: u64) -> BcPolicy {
    let mut env = PandaTask::new(PandaVariant::Reach, RewardKind::Dense).unwrap();
    let (observations, actions) = NoisyExpert::new(PandaVariant::Reach, noise, seed).record(&mut env, demo_episodes, 500).unwrap();
    let demos = Demos { episodes: observations.iter().zip(&actions).map(|(o, a)| (o.as_slice(), a.as_slice())).collect(), frames: None };
    BcPolicy::train(&demos, env.observation_size(), 4, 4, 2, &[64, 64], 400, seed, None).unwrap().0
}

fn small_sac(env: &impl Environment, seed: u64) -> Sac {
    let learner = LearnerConfig { hidden: vec![64, 64], batch_size: 64, initial_temperature: 0.01, ..LearnerConfig::default() };
    let mut sac = Sac::new(SacConfig::from_learner(&learner, env.observation_size(), env.action_size(), seed), tch::Device::Cpu);
    sac.actor.zero_output(None);
    sac
}

#[test]
fn a_zero_residual_plays_the_base_policy_exactly() {
    let base = weak_bc_base(2, 0.3, 1);
    let mut residual_env = ResidualEnv::new(PandaTask::new(PandaVariant::Reach, RewardKind::Dense).unwrap(), base, &ResidualScale::Uniform(0.3)).unwrap();
    let mut sac = small_sac(&residual_env, 1);
    let mut alone = PandaTask::new(PandaVariant::Reach, RewardKind::Dense).unwrap();
    let mut base_alone = weak_bc_base(2, 0.3, 1);
    let mut obs = residual_env.reset(9).to_vec();
    let mut alone_obs = alone.reset(9).to_vec();
    base_alone.reset();
    for _ in 0..30 {
        let residual = sac.act(&obs, true);
        assert!(residual.iter().all(|&r| r == 0.0), "a zero-initialised output layer gives a zero mean: {residual:?}");
        residual_env.step(&residual).unwrap();
        let action = base_alone.act(&alone_obs, None).unwrap();
        alone.step(&action).unwrap();
        obs = residual_env.observation().to_vec();
        alone_obs = alone.observation().to_vec();
        assert_eq!(&obs[..alone_obs.len()], alone_obs.as_slice(), "same trajectory as the base alone");
        assert_eq!(&obs[alone_obs.len()..], residual_env.base_action(), "the base action is part of the observation");
    }
}

#[test]
fn the_residual_never_moves_the_action_more_than_its_scale() {
    let mut rng = Rng::seed(5);
    for _ in 0..20_000 {
        // One bound per action, some at zero, some above the whole range.
        let scales: Vec<f64> = (0..4).map(|_| if rng.unit() < 0.2 { 0.0 } else { rng.uniform(0.0, 2.0) }).collect();
        let base: Vec<f64> = (0..4).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let residual: Vec<f64> = (0..4).map(|_| rng.uniform(-1e6, 1e6) * if rng.unit() < 0.5 { 1e-6 } else { 1.0 }).collect();
        let action = combine(&base, &residual, &scales);
        assert_eq!(action.len(), 4);
        for ((a, b), scale) in action.iter().zip(&base).zip(&scales) {
            assert!((a - b).abs() <= scale + 1e-12 && (-1.0..=1.0).contains(a), "base {b} residual {residual:?} scale {scale} gave {a}");
        }
    }
}

#[test]
fn a_torchscript_base_loads_plays_its_chunks_and_a_misfit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = tests::python_script("make_base_policy.py").arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut policy = TorchScriptPolicy::load(&dir.path().join("chunk.pt"), 17, 4, 3).unwrap();
    let obs = vec![0.1; 17];
    let chunk: Vec<Vec<f64>> = (0..3).map(|_| policy.act(&obs, None).unwrap()).collect();
    assert!(chunk.iter().all(|a| a.len() == 4 && a.iter().all(|v| v.abs() <= 1.0)));
    assert_ne!(chunk[0], chunk[1], "the three actions of the chunk are played in turn");
    assert_eq!(policy.act(&obs, None).unwrap(), chunk[0], "then the next chunk is asked for");
    let env = PandaTask::new(PandaVariant::Reach, RewardKind::Dense).unwrap();
    let mut residual_env = ResidualEnv::new(env, policy, &ResidualScale::PerAction(vec![0.2, 0.2, 0.2, 1.0])).unwrap();
    assert_eq!(residual_env.scales, vec![0.2, 0.2, 0.2, 1.0]);
    // A full residual moves the gripper command by its own bound, the rest by theirs.
    let base_action = {
        residual_env.reset(3);
        residual_env.base_action().to_vec()
    };
    let played = combine(&base_action, &[1.0; 4], &residual_env.scales);
    assert!((played[3] - (base_action[3] + 1.0).min(1.0)).abs() < 1e-12 && (played[0] - (base_action[0] + 0.2).min(1.0)).abs() < 1e-12, "{base_action:?} -> {played:?}");
    let policy = TorchScriptPolicy::load(&dir.path().join("chunk.pt"), 17, 4, 3).unwrap();
    let env = PandaTask::new(PandaVariant::Reach, RewardKind::Dense).unwrap();
    let err = ResidualEnv::new(env, policy, &ResidualScale::PerAction(vec![0.2, 0.2, 1.0])).err().unwrap().to_string();
    assert!(err.contains("3 bounds") && err.contains("4 actions"), "{err}");

    let err = TorchScriptPolicy::load(&dir.path().join("wrong.pt"), 17, 4, 1).err().unwrap().to_string();
    assert!(err.contains("wrong.pt") && err.contains("[1, 5]") && err.contains("4 actions"), "{err}");
    std::fs::write(dir.path().join("junk.pt"), b"no model").unwrap();
    let err = TorchScriptPolicy::load(&dir.path().join("junk.pt"), 17, 4, 1).err().unwrap().to_string();
    assert!(err.contains("junk.pt") && err.contains("TorchScript"), "{err}");
}

/// A short residual run on the easy reach task: the residual learner, with
/// the scripted expert's demos relabelled for it, beats its weak base alone
/// on the same evaluation episodes.
#[test]
fn a_short_residual_run_on_reach_improves_on_its_weak_base() {
    let dir = tempfile::tempdir().unwrap();
    let base_file = dir.path().join("bc.safetensors");
    weak_bc_base(3, 0.5, 4).save(&base_file).unwrap();
    let scale = ResidualScale::Uniform(0.5);
    let residual_env = || ResidualEnv::new(PandaTask::new(PandaVariant::Reach, RewardKind::Dense).unwrap(), BcPolicy::load(&base_file, &[64, 64], None).unwrap(), &scale).unwrap();
    let (mut env, mut eval_env) = (residual_env(), residual_env());
    // The embedded default's residual learner, at a tenth of its size.
    let learner = LearnerConfig { hidden: vec![64, 64], batch_size: 64, critic_layer_norm: true, utd: 2, critic_lr: 1e-3, initial_temperature: 0.01, target_entropy_per_action: -3.0, ..LearnerConfig::default() };
    let mut sac = Sac::new(SacConfig { zero_actor_output: true, ..SacConfig::from_learner(&learner, env.observation_size(), env.action_size(), 4) }, tch::Device::Cpu);
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    // Before any update the zero residual plays the base exactly.
    let (base_returns, base_successes) = evaluate(&mut eval_env, &mut sac, 10, 777).unwrap();

    let task_size = env.observation_size() - env.action_size();
    let scales = env.scales.clone();
    let mut expert = ScriptedExpert::default();
    let (mut demos, _) = record_demos(&mut env, 5, 100, 1, 0.99, None, tch::Device::Cpu, |env, _| {
        let (task_obs, base_action) = env.observation().split_at(task_size);
        residual_for(&expert.act(PandaVariant::Reach, task_obs), base_action, &scales)
    })
    .unwrap();
    let settings = TrainSettings { total_steps: 4000, warmup_steps: 300, eval_every: 4000, eval_episodes: 1, replay_capacity: 4000, seed: 4, stop_at_return: None, stop_at_success: None, checkpoint_dir: None, resume: false };
    policies::train(&mut env, &mut eval_env, &mut sac, Some(&mut demos), &settings, |_| {}).unwrap();

    let (returns, successes) = evaluate(&mut eval_env, &mut sac, 10, 777).unwrap();
    let (base_successes, successes) = (base_successes.unwrap(), successes.unwrap());
    assert!(
        mean(&returns) > mean(&base_returns) + 10.0 && successes > base_successes,
        "base alone: return {:.1}, {base_successes}/10 successes; with the residual: {:.1}, {successes}/10",
        mean(&base_returns),
        mean(&returns)
    );
}
