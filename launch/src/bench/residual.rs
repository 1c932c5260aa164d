//! `rrl bench residual`: residual RL on a weak behaviour-cloning base
//! against SAC/RLPD from scratch with the same demos, on the simulated
//! Panda pick-cube task, seed by seed in the same run.
//!
//! Per seed: the scripted expert, with uniform noise on its Cartesian
//! actions, records a few demo episodes; BC with action chunks learns a
//! (weak) base from them; its success rate is measured; then two learners
//! train on the same sparse reward with the same number of demo episodes
//! mixed 50/50 into their batches: a residual on top of the frozen base
//! (its output layer starts at zero, so it starts as the base; demos
//! relabelled as the residual that turns the base's action into the
//! expert's) and a learner from scratch. Both are evaluated every
//! `eval_every` steps and stop at the target success rate.

use anyhow::Context;
use policies::residual::{residual_for, BcPolicy, Demos, ResidualEnv};
use policies::train::{record_demos, EvalPoint};
use policies::{Sac, SacConfig, TrainSettings};
use rrl_types::config::ResidualScale;
use rrl_types::Environment;
use serde_json::{json, Value};
use sim_bridge::panda::{NoisyExpert, PandaTask, PandaVariant, RewardKind};

/// What one comparison runs.
#[derive(Debug, Clone, clap::Args)]
pub struct ResidualBenchArgs {
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,4,5")]
    pub seeds: Vec<u64>,
    /// Demo episodes for the base and for both learners' demo buffers.
    #[arg(long, default_value_t = 5)]
    pub demo_episodes: u32,
    /// Uniform noise (±) on the expert's Cartesian actions in the demos.
    #[arg(long, default_value_t = 0.6)]
    pub demo_noise: f64,
    /// Gradient steps of behaviour cloning.
    #[arg(long, default_value_t = 1500)]
    pub bc_steps: usize,
    /// Environment steps per learner (each stops earlier at --target).
    #[arg(long, default_value_t = 20_000)]
    pub steps: u64,
    /// Random-action steps before learning (the residual's random actions stay within its scale around the base).
    #[arg(long, default_value_t = 500)]
    pub warmup: u64,
    #[arg(long, default_value_t = 2_000)]
    pub eval_every: u64,
    #[arg(long, default_value_t = 20)]
    pub eval_episodes: u32,
    /// Success rate at which a learner stops.
    #[arg(long, default_value_t = 0.9)]
    pub target: f64,
    /// Largest change the residual makes to each action component: one
    /// number, or one per action (`0.3,0.3,0.3,1`: gripper at full authority).
    #[arg(long, default_value = "0.5")]
    pub residual_scale: ResidualScale,
    /// dense or sparse.
    #[arg(long, default_value = "sparse")]
    pub reward: String,
    /// Both learners take the `learner` section of this launch file (e.g.
    /// the embedded default's: LayerNorm critics, UTD 2, target entropy −3)
    /// instead of the CleanRL preset with SERL's starting temperature.
    #[arg(long)]
    pub learner_from: Option<std::path::PathBuf>,
    /// Train the residual only (for tuning it; the report's from-scratch
    /// entries are then null).
    #[arg(long)]
    pub no_scratch: bool,
    /// Overrides the learner section's n-step returns (both learners).
    #[arg(long)]
    pub n_step: Option<u32>,
}

const BC_HORIZON: usize = 4;
const BC_EXECUTE: usize = 2;

fn task(reward: RewardKind) -> anyhow::Result<PandaTask> {
    PandaTask::new(PandaVariant::PickCube, reward).context("starting the simulated Panda")
}

/// BC on `episodes` noisy expert episodes: the weak base.
fn train_base(args: &ResidualBenchArgs, reward: RewardKind, seed: u64) -> anyhow::Result<BcPolicy> {
    let mut env = task(reward)?;
    let (observations, actions) = NoisyExpert::new(PandaVariant::PickCube, args.demo_noise, seed).record(&mut env, u64::from(args.demo_episodes), seed * 1000)?;
    let demos = Demos { episodes: observations.iter().zip(&actions).map(|(o, a)| (o.as_slice(), a.as_slice())).collect(), frames: None };
    let (policy, _loss) = BcPolicy::train(&demos, env.observation_size(), env.action_size(), BC_HORIZON, BC_EXECUTE, &crate::bc::BC_HIDDEN, args.bc_steps, seed, None)?;
    Ok(policy)
}

/// The learner section both learners use.
fn learner_section(args: &ResidualBenchArgs) -> anyhow::Result<rrl_types::config::LearnerConfig> {
    let mut section = base_learner_section(args)?;
    if let Some(n_step) = args.n_step {
        section.n_step = n_step;
    }
    Ok(section)
}

fn base_learner_section(args: &ResidualBenchArgs) -> anyhow::Result<rrl_types::config::LearnerConfig> {
    if let Some(path) = &args.learner_from {
        return Ok(rrl_types::config::LaunchFile::load(path)?.learner);
    }
    let mut learner = crate::train::learner_preset("cleanrl", None).expect("a known preset");
    // Sparse rewards of 0/1 per episode: SERL's starting temperature.
    learner.initial_temperature = 0.01;
    Ok(learner)
}

fn learner(section: &rrl_types::config::LearnerConfig, env: &impl Environment, seed: u64, residual: bool) -> Sac {
    let mut config = SacConfig::from_learner(section, env.observation_size(), env.action_size(), seed);
    config.zero_actor_output = residual;
    Sac::new(config, tch::Device::Cpu)
}

fn settings(args: &ResidualBenchArgs, seed: u64) -> TrainSettings {
    TrainSettings {
        total_steps: args.steps,
        warmup_steps: args.warmup,
        eval_every: args.eval_every,
        eval_episodes: args.eval_episodes,
        replay_capacity: args.steps as usize,
        seed,
        stop_at_return: None,
        stop_at_success: Some(args.target),
        checkpoint_dir: None,
        resume: false,
    }
}

/// The first evaluation step at which the success rate reached the target.
fn steps_to_target(evals: &[EvalPoint], target: f64) -> Option<u64> {
    evals.iter().find(|e| e.success_rate.is_some_and(|r| r >= target)).map(|e| e.step)
}

fn curve(evals: &[EvalPoint]) -> Value {
    evals.iter().map(|e| json!([e.step, e.success_rate])).collect()
}

/// SAC/RLPD from scratch with the same demo episodes as the residual's.
fn from_scratch(args: &ResidualBenchArgs, reward: RewardKind, seed: u64, section: &rrl_types::config::LearnerConfig, demo_seed: u64, progress: &indicatif::ProgressBar) -> anyhow::Result<Vec<EvalPoint>> {
    let (mut env, mut eval_env) = (task(reward)?, task(reward)?);
    let mut scratch_sac = learner(section, &env, seed, false);
    let (n_step, gamma) = (scratch_sac.config.n_step, scratch_sac.config.gamma);
    let mut expert = NoisyExpert::new(PandaVariant::PickCube, args.demo_noise, seed + 77);
    let (mut demos, _) = record_demos(&mut env, args.demo_episodes, demo_seed, n_step, gamma, None, tch::Device::Cpu, |env, start| expert.act(env.observation(), start))?;
    progress.set_message(format!("seed {seed}: RLPD from scratch"));
    Ok(policies::train(&mut env, &mut eval_env, &mut scratch_sac, Some(&mut demos), &settings(args, seed), |_| {})?)
}

fn one_seed(args: &ResidualBenchArgs, reward: RewardKind, seed: u64, progress: &indicatif::ProgressBar) -> anyhow::Result<Value> {
    let device = tch::Device::Cpu;
    progress.set_message(format!("seed {seed}: behaviour cloning"));
    let base_file = tempfile::NamedTempFile::new().context("a scratch file for the base")?;
    train_base(args, reward, seed)?.save(base_file.path())?;
    let load = || BcPolicy::load(base_file.path(), &crate::bc::BC_HIDDEN, None);
    let scale = &args.residual_scale;
    let mut residual_env = ResidualEnv::new(task(reward)?, load()?, scale)?;
    let mut residual_eval = ResidualEnv::new(task(reward)?, load()?, scale)?;
    let scales = residual_env.scales.clone();
    // The residual's observation is the task's followed by the base action.
    let task_size = residual_env.observation_size() - residual_env.action_size();

    // The base alone: the residual learner before any update plays it exactly.
    let section = learner_section(args)?;
    let mut residual_sac = learner(&section, &residual_env, seed, true);
    let (_, base_successes) = policies::train::evaluate(&mut residual_eval, &mut residual_sac, args.eval_episodes, seed + 1000)?;
    let base_rate = f64::from(base_successes.unwrap_or(0)) / f64::from(args.eval_episodes.max(1));

    // The same demo episodes (seeds and noise) for both learners.
    let demo_seed = seed * 1000 + 500;
    let n_step = residual_sac.config.n_step;
    let gamma = residual_sac.config.gamma;
    let mut expert = NoisyExpert::new(PandaVariant::PickCube, args.demo_noise, seed + 77);
    let (mut residual_demos, demo_successes) = record_demos(&mut residual_env, args.demo_episodes, demo_seed, n_step, gamma, None, device, |env, start| {
        let (task_obs, base_action) = env.observation().split_at(task_size);
        residual_for(&expert.act(task_obs, start), base_action, &scales)
    })?;
    progress.set_message(format!("seed {seed}: residual on the base ({:.0} % alone)", 100.0 * base_rate));
    let residual_evals = policies::train(&mut residual_env, &mut residual_eval, &mut residual_sac, Some(&mut residual_demos), &settings(args, seed), |_| {})?;

    let scratch_evals = if args.no_scratch { None } else { Some(from_scratch(args, reward, seed, &section, demo_seed, progress)?) };
    progress.inc(1);
    let last_rate = |evals: &[EvalPoint]| evals.last().and_then(|e| e.success_rate);
    Ok(json!({
        "seed": seed,
        "demo_successes": demo_successes,
        "base_success": base_rate,
        "residual": { "steps_to_target": steps_to_target(&residual_evals, args.target), "final_success": last_rate(&residual_evals), "curve": curve(&residual_evals) },
        "rlpd_from_scratch": scratch_evals.map(|evals| json!({ "steps_to_target": steps_to_target(&evals, args.target), "final_success": last_rate(&evals), "curve": curve(&evals) })),
    }))
}

impl ResidualBenchArgs {
    pub fn run(self) -> anyhow::Result<Value> {
        let reward = crate::train::parse_reward(&self.reward)?;
        // A bad --learner-from file is refused before any training.
        let section = learner_section(&self)?;
        let progress = indicatif::ProgressBar::new(self.seeds.len() as u64);
        progress.set_style(indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} seeds {elapsed} {msg}").expect("valid template"));
        let mut runs = Vec::new();
        for &seed in &self.seeds {
            let run = one_seed(&self, reward, seed, &progress)?;
            // Each seed's result as it lands (a long comparison cut short keeps what it measured).
            progress.suspend(|| eprintln!("{run}"));
            runs.push(run);
        }
        progress.finish_and_clear();
        let column = |path: &[&str]| -> Vec<f64> { runs.iter().filter_map(|r| path.iter().fold(Some(r), |v, k| v.and_then(|v| v.get(*k))).and_then(Value::as_f64)).collect() };
        let mean = |xs: Vec<f64>| if xs.is_empty() { None } else { Some(xs.iter().sum::<f64>() / xs.len() as f64) };
        let reached = |method: &str| runs.iter().filter(|r| !r[method]["steps_to_target"].is_null()).count();
        Ok(json!({
            "bench": "residual",
            "task": "PandaPickCube",
            "reward": self.reward,
            "seeds": self.seeds,
            "demo_episodes": self.demo_episodes,
            "demo_noise": self.demo_noise,
            "residual_scale": self.residual_scale,
            "learner_from": self.learner_from.as_ref().map(|p| p.display().to_string()),
            "learner": section,
            "steps": self.steps,
            "target": self.target,
            "mean_base_success": mean(column(&["base_success"])),
            "mean_final_success": { "residual": mean(column(&["residual", "final_success"])), "rlpd_from_scratch": mean(column(&["rlpd_from_scratch", "final_success"])) },
            "seeds_reaching_target": { "residual": reached("residual"), "rlpd_from_scratch": reached("rlpd_from_scratch") },
            "mean_steps_to_target_where_reached": { "residual": mean(column(&["residual", "steps_to_target"])), "rlpd_from_scratch": mean(column(&["rlpd_from_scratch", "steps_to_target"])) },
            "runs": runs,
        }))
    }
}
