//! `rrl bc train|eval`: behaviour cloning with action chunks on a run's
//! demos; and the base policies residual practice corrects (`load_base`).

use std::path::{Path, PathBuf};

use anyhow::bail;
use rrl_types::config::LaunchFile;
use rrl_types::Environment;

#[derive(clap::Args)]
pub struct BcArgs {
    #[command(subcommand)]
    which: BcCommand,
}

#[derive(clap::Subcommand)]
enum BcCommand {
    /// Train on the run's demos/ and write bc.safetensors.
    Train(BcOptions),
    /// Run recorded evaluation episodes of bc.safetensors.
    Eval(BcOptions),
}

#[derive(clap::Args)]
struct BcOptions {
    /// Launch file of the robot and task.
    #[arg(long)]
    config: PathBuf,
    /// Run folder: demos are read from its demos/, the policy is `bc.safetensors` there.
    #[arg(long)]
    run_dir: PathBuf,
    /// Actions predicted per chunk.
    #[arg(long, default_value_t = 4)]
    horizon: usize,
    /// Actions of each chunk played before predicting again.
    #[arg(long, default_value_t = 2)]
    execute: usize,
    /// Gradient steps (train).
    #[arg(long, default_value_t = 2000)]
    steps: usize,
    /// Evaluation episodes (eval).
    #[arg(long, default_value_t = 20)]
    episodes: u32,
    #[command(flatten)]
    judge: crate::eval::JudgeChoice,
    #[command(flatten)]
    robot: crate::robot_choice::RobotChoice,
}

pub(crate) const BC_HIDDEN: [i64; 2] = [256, 256];

impl BcArgs {
    pub fn run(self) -> anyhow::Result<serde_json::Value> {
        match self.which {
            BcCommand::Train(options) => options.train(),
            BcCommand::Eval(options) => options.eval(),
        }
    }
}

impl BcOptions {
    /// `rrl bc train`: behaviour cloning with action chunks on the run's demos.
    fn train(self) -> anyhow::Result<serde_json::Value> {
        let launch = LaunchFile::load(&self.config)?;
        // A real arm's sizes come from its launch file: training needs no robot.
        let (observation_size, action_size) = wiring::robot::task_sizes(&launch, &self.config)?;
        let pixels = wiring::learner::policy_pixels(&launch);
        let (policy, loss, demos, steps) = train_bc_on_demos(&self.run_dir.join("demos"), observation_size, action_size, self.horizon, self.execute, self.steps, pixels.as_ref())?;
        let path = self.run_dir.join("bc.safetensors");
        policy.save(&path)?;
        Ok(serde_json::json!({"policy": path.display().to_string(), "demos": demos, "steps": steps, "final_loss": loss}))
    }

    /// `rrl bc eval`: the BC policy's success rate and returns, recorded
    /// (on the simulated Panda or a real arm, judged as `rrl eval` judges).
    fn eval(self) -> anyhow::Result<serde_json::Value> {
        let launch = LaunchFile::load(&self.config)?;
        let seed = 60_000;
        let started = self.robot.start(&launch, &self.config, seed)?;
        let mut env = started.task;
        let mut operator = self.judge.operator(&launch, &self.config, env.action_size())?;
        let human_reward = launch.reward == rrl_types::config::RewardConfig::Human;
        let path = self.run_dir.join("bc.safetensors");
        let mut policy = load_base(&path, env.observation_size(), env.action_size(), 1, wiring::learner::policy_pixels(&launch).as_ref())?;
        let action_size = env.action_size();
        let mut failure = None;
        let label = ("policy", path.display().to_string());
        let mut judge = policies::practice::Judge::of(operator.as_mut(), human_reward);
        let mut result = crate::eval::evaluate_policy(&mut env, label, &started.name, &self.run_dir.join("bc_eval"), self.episodes, seed, |obs, frames| {
            policy.act(obs, frames).unwrap_or_else(|e| {
                failure.get_or_insert(e.to_string());
                vec![0.0; action_size]
            })
        }, &mut judge)?;
        if let Some(e) = failure {
            bail!("the BC policy failed: {e}");
        }
        if let Some(node) = crate::robot_choice::finish_node(started.node)? {
            result["robot_node"] = node;
        }
        Ok(result)
    }
}

/// Behaviour cloning on the demo episodes in `folder`: the policy, its
/// final loss, and how many episodes and steps it learned from.
/// Behaviour cloning on the demo episodes of `folder`; with `pixels`, from
/// their recorded frames as well. The policy, its final loss, the demos and
/// their steps.
pub fn train_bc_on_demos(folder: &Path, o: usize, a: usize, horizon: usize, execute: usize, gradient_steps: usize, pixels: Option<&policies::pixels::PixelConfig>) -> anyhow::Result<(policies::residual::BcPolicy, f64, usize, usize)> {
    let mut episodes = Vec::new();
    for path in recording::list_episodes(folder)? {
        let episode = recording::read_episode(&path)?;
        if (episode.header.observation_size, episode.header.action_size) != (o, a) {
            bail!("{}: recorded with {}/{} observation/action values, the task has {o}/{a}", path.display(), episode.header.observation_size, episode.header.action_size);
        }
        episodes.push(episode);
    }
    if episodes.is_empty() {
        bail!("{}: no demos (record them with `rrl teleop`, or `rrl practice` records scripted ones)", folder.display());
    }
    // Per episode: its observations and its actions, row by row.
    type Columns = (Vec<Vec<f32>>, Vec<Vec<f32>>);
    let columns: Vec<Columns> = episodes.iter().map(|e| (e.steps.iter().map(|s| s.observation.clone()).collect(), e.steps.iter().map(|s| s.action.clone()).collect())).collect();
    // Per episode, each step's observation frames: the first observation's, then each step's next.
    let frames: Option<Vec<Vec<Vec<u8>>>> = match pixels {
        None => None,
        Some(p) => Some(episodes.iter().map(|e| observation_frames(e, p.layout())).collect::<anyhow::Result<_>>()?),
    };
    let demos = policies::residual::Demos {
        episodes: columns.iter().map(|(o, a)| (o.as_slice(), a.as_slice())).collect(),
        frames: frames.as_ref().map(|f| f.iter().map(Vec::as_slice).collect()),
    };
    let (policy, loss) = policies::residual::BcPolicy::train(&demos, o, a, horizon, execute, &BC_HIDDEN, gradient_steps, 0, pixels)?;
    Ok((policy, loss, episodes.len(), columns.iter().map(|c| c.0.len()).sum()))
}

/// The frames of each observation of a recorded episode, decoded, checked
/// against `layout`.
pub(crate) fn observation_frames(episode: &recording::Episode, layout: rrl_types::FrameLayout) -> anyhow::Result<Vec<Vec<u8>>> {
    let path = episode.path.display();
    let encoded = std::iter::once(episode.reset_frames.as_deref()).chain(episode.steps.iter().map(|s| s.next_frames.as_deref())).take(episode.steps.len());
    encoded
        .enumerate()
        .map(|(i, frames)| {
            let Some(frames) = frames else { bail!("{path}: observation {i} has no camera frames; the policy sees {layout} (record the demos with the cameras on)") };
            recording::frames::decode_as(frames, layout).map_err(|e| anyhow::anyhow!("{path}: observation {i}: {e}"))
        })
        .collect()
}

/// A frozen base policy from a file: BC from `rrl bc train` (safetensors;
/// one cloned from frames needs the task's `pixels`) or a user's
/// TorchScript module, checked against the task's sizes.
pub fn load_base(path: &Path, observation_size: usize, action_size: usize, execute: usize, pixels: Option<&policies::pixels::PixelConfig>) -> anyhow::Result<Box<dyn policies::residual::BasePolicy>> {
    use policies::residual::BasePolicy;
    let base: Box<dyn BasePolicy> = match path.extension().and_then(|e| e.to_str()) {
        Some("safetensors") => Box::new(policies::residual::BcPolicy::load(path, &BC_HIDDEN, pixels)?),
        Some("pt" | "ts") => Box::new(policies::residual::TorchScriptPolicy::load(path, observation_size, action_size, execute)?),
        _ => bail!("{}: a base policy is a .safetensors file from `rrl bc train` or a TorchScript .pt/.ts file", path.display()),
    };
    if (base.observation_size(), base.action_size()) != (observation_size, action_size) {
        bail!("{}: a policy for {}/{} observation/action values; the task has {observation_size}/{action_size}", path.display(), base.observation_size(), base.action_size());
    }
    Ok(base)
}
