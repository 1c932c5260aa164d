//! `rrl eval CHECKPOINT --config FILE`: recorded evaluation episodes of a
//! learner checkpoint; the evaluation practice ends with too.

use std::path::{Path, PathBuf};

use anyhow::Context;
use policies::practice::Judge;
use policies::{Sac, SacConfig};
use rrl_types::config::LaunchFile;

#[derive(clap::Args)]
pub struct EvalArgs {
    /// The learner checkpoint (`learner.safetensors` of a run).
    checkpoint: PathBuf,
    /// Launch file of the robot and task the checkpoint was trained on.
    #[arg(long)]
    config: PathBuf,
    #[arg(long, default_value_t = 20)]
    episodes: u32,
    /// Output folder for episodes, eval.json and plots. Default: <checkpoint folder>/eval.
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, default_value_t = 50_000)]
    seed: u64,
    #[command(flatten)]
    judge: JudgeChoice,
    #[command(flatten)]
    robot: crate::robot_choice::RobotChoice,
}

/// Who judges evaluation episodes: the task, or a human's labels
/// (needed with `reward: Human`).
#[derive(clap::Args, Clone)]
pub struct JudgeChoice {
    /// `joy` or `keyboard`: a human labels each episode (success/failure) as in practice; needed with `reward: Human`. `none`: the task judges.
    #[arg(long, value_enum, default_value = "none")]
    operator: crate::operator::OperatorKind,
    /// Joy topic for `--operator joy`.
    #[arg(long, default_value = "/spacenav/joy")]
    joy_topic: String,
}

impl JudgeChoice {
    /// The operator whose labels judge, checked against the launch file's reward.
    pub fn operator(&self, launch: &LaunchFile, config: &Path, action_size: usize) -> anyhow::Result<Box<dyn policies::practice::Operator>> {
        if launch.reward == rrl_types::config::RewardConfig::Human && self.operator == crate::operator::OperatorKind::None {
            anyhow::bail!("{}: reward: Human: a person's labels judge each episode: pass --operator keyboard or joy", config.display());
        }
        self.operator.start(&launch, &self.joy_topic, action_size)
    }
}

impl EvalArgs {
    pub fn run(self) -> anyhow::Result<serde_json::Value> {
        let launch = LaunchFile::load(&self.config)?;
        let started = self.robot.start(&launch, &self.config, self.seed)?;
        let mut env = started.task;
        let mut operator = self.judge.operator(&launch, &self.config, rrl_types::Environment::action_size(&env))?;
        let human_reward = launch.reward == rrl_types::config::RewardConfig::Human;
        let out = self.out.clone().unwrap_or_else(|| self.checkpoint.parent().unwrap_or(Path::new(".")).join("eval"));
        let config = wiring::learner::sac_config(&launch, &env, 0);
        let mut report = evaluate_checkpoint(&mut env, &config, &self.checkpoint, &started.name, &out, self.episodes, self.seed, &mut Judge::of(operator.as_mut(), human_reward))?;
        if let Some(node) = crate::robot_choice::finish_node(started.node)? {
            report["robot_node"] = node;
        }
        Ok(report)
    }
}

/// Loads a learner checkpoint and runs `episodes` deterministic episodes,
/// recorded under `out`; writes `eval.json` and `eval_returns.png` there.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_checkpoint<E: rrl_types::PracticeTask>(env: &mut E, config: &SacConfig, checkpoint: &Path, task: &str, out: &Path, episodes: u32, seed: u64, judge: &mut Judge) -> anyhow::Result<serde_json::Value> {
    let mut sac = Sac::try_new(config.clone(), tch::Device::Cpu)?;
    policies::checkpoint::load(&mut sac, checkpoint).with_context(|| format!("loading {}", checkpoint.display()))?;
    let policy = |obs: &[f64], frames: Option<&[u8]>| match frames {
        // A pixel policy sees the task's cameras; `practice` checked the layouts.
        Some(frames) if sac.encoder.is_some() => sac.act_pixels(obs, frames, true),
        _ => sac.act(obs, true),
    };
    evaluate_policy(env, ("checkpoint", checkpoint.display().to_string()), task, out, episodes, seed, policy, judge)
}

/// Recorded evaluation episodes of `policy` in `out`, with `eval.json`
/// (naming the policy by `label`) and a plot of the returns; `judge` says
/// which episodes succeeded.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_policy<E: rrl_types::PracticeTask>(env: &mut E, label: (&str, String), task: &str, out: &Path, episodes: u32, seed: u64, policy: impl FnMut(&[f64], Option<&[u8]>) -> Vec<f64>, judge: &mut Judge) -> anyhow::Result<serde_json::Value> {
    let (returns, successes) = policies::practice::evaluate_recorded(env, task, &out.join("episodes"), episodes, seed, policy, judge)?;
    let result = summary(label, episodes, &returns, successes);
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("eval.json"), serde_json::to_vec_pretty(&result)?).with_context(|| format!("writing {}", out.join("eval.json").display()))?;
    if !returns.is_empty() {
        let points: Vec<(u64, f64)> = returns.iter().enumerate().map(|(i, &r)| (i as u64, r)).collect();
        crate::metrics::learning_curve_png(&out.join("eval_returns.png"), &format!("{task}: {successes}/{episodes} successes"), "episode", "return", &points)?;
    }
    Ok(result)
}

/// The `eval.json` of an evaluation: the policy (named by `label`), success
/// rate and returns.
pub fn summary(label: (&str, String), episodes: u32, returns: &[f64], successes: u32) -> serde_json::Value {
    serde_json::json!({
        label.0: label.1,
        "episodes": episodes,
        "success_rate": f64::from(successes) / f64::from(episodes.max(1)),
        "mean_return": returns.iter().sum::<f64>() / returns.len().max(1) as f64,
        "returns": returns,
    })
}
