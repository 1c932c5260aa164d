//! `rrl train --task TASK`: SAC on a simulated task with a progress bar,
//! periodic evaluation and a metrics CSV.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use policies::{Sac, SacConfig, TrainEvent, TrainSettings};
use rrl_types::config::{DeviceChoice, LearnerConfig};
use rrl_types::Environment;
use sim_bridge::panda::{PandaTask, PandaVariant, RewardKind, ScriptedExpert};
use sim_bridge::{GymEnv, GymTask};

#[derive(clap::Args)]
pub struct TrainArgs {
    /// A Gymnasium id (InvertedPendulum-v5, HalfCheetah-v5, ...) or a Panda
    /// task (PandaReach, PandaPickCube).
    #[arg(long)]
    pub task: String,
    /// Panda tasks: episodes of the scripted expert seeded as demos (RLPD 50/50 batches).
    #[arg(long, default_value_t = 10)]
    pub demo_episodes: u32,
    /// Panda tasks: dense or sparse reward.
    #[arg(long, default_value = "dense")]
    pub reward: String,
    /// Environment steps.
    #[arg(long, default_value_t = 100_000)]
    pub steps: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Random-action steps before learning starts.
    #[arg(long, default_value_t = 5_000)]
    pub warmup: u64,
    #[arg(long, default_value_t = 10_000)]
    pub eval_every: u64,
    #[arg(long, default_value_t = 5)]
    pub eval_episodes: u32,
    /// `cleanrl` (2 critics) or `rlpd` (10 critics with LayerNorm, UTD from --utd).
    #[arg(long, default_value = "cleanrl")]
    pub preset: String,
    #[arg(long)]
    pub utd: Option<u32>,
    /// auto, cpu or cuda.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Output folder. Default: runs/<task>-seed<seed>.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue from the checkpoint in the output folder, if there is one.
    #[arg(long)]
    pub resume: bool,
    /// Panda tasks: learn from these scene cameras as well as the state
    /// (comma-separated: front, handcam_rgb). For pick-cube the state then
    /// leaves out the cube's position, which only the cameras see.
    #[arg(long, value_delimiter = ',')]
    pub cameras: Vec<String>,
    /// Side of the square camera frames, pixels.
    #[arg(long, default_value_t = 64)]
    pub image_size: u32,
    /// Pixel learners: a frozen pretrained image trunk (TorchScript) in
    /// place of the trained convolutions.
    #[arg(long)]
    pub pretrained_encoder: Option<PathBuf>,
    /// Transitions the replay holds. Default: all of them (--steps).
    #[arg(long)]
    pub replay_capacity: Option<usize>,
}

pub fn learner_preset(name: &str, utd: Option<u32>) -> anyhow::Result<LearnerConfig> {
    let mut learner = LearnerConfig::default();
    match name {
        "cleanrl" => {
            learner.critic_lr = 1e-3;
        }
        "rlpd" => {
            learner.critics = 10;
            learner.critic_layer_norm = true;
            learner.utd = 4;
        }
        other => anyhow::bail!("unknown preset `{other}`: use cleanrl or rlpd"),
    }
    if let Some(utd) = utd {
        learner.utd = utd;
    }
    Ok(learner)
}

/// The pixel encoder for `--cameras` (DrQ-v2's sizes: 32 filters, 50
/// features, shifts of 4 pixels at 84x84, scaled to the frame size).
fn pixel_config(args: &TrainArgs) -> Option<policies::pixels::PixelConfig> {
    (!args.cameras.is_empty()).then(|| policies::pixels::PixelConfig {
        cameras: args.cameras.len() as i64,
        height: i64::from(args.image_size),
        width: i64::from(args.image_size),
        feature_size: 50,
        shift_pad: (i64::from(args.image_size) * 4 / 84).max(1),
        filters: 32,
        pretrained: args.pretrained_encoder.clone(),
    })
}

pub fn parse_device(name: &str) -> anyhow::Result<DeviceChoice> {
    Ok(match name {
        "auto" => DeviceChoice::Auto,
        "cpu" => DeviceChoice::Cpu,
        "cuda" => DeviceChoice::Cuda,
        other => anyhow::bail!("unknown device `{other}`: use auto, cpu or cuda"),
    })
}

/// `--reward` of the Panda tasks.
pub fn parse_reward(name: &str) -> anyhow::Result<RewardKind> {
    Ok(match name {
        "dense" => RewardKind::Dense,
        "sparse" => RewardKind::Sparse,
        other => anyhow::bail!("unknown reward `{other}`: use dense or sparse"),
    })
}

impl TrainArgs {
    pub fn run(self) -> anyhow::Result<serde_json::Value> {
        let mut learner = learner_preset(&self.preset, self.utd)?;
        let device = policies::select_device(parse_device(&self.device)?)?;
        let panda = match self.task.as_str() {
            "PandaReach" => Some(PandaVariant::Reach),
            "PandaPickCube" => Some(PandaVariant::PickCube),
            _ => None,
        };
        if let Some(variant) = panda {
            // Rewards of order 1 per step: a temperature of 1 would drown them (SERL starts at 0.01).
            learner.initial_temperature = 0.01;
            let reward = parse_reward(&self.reward)?;
            let make = || match self.cameras.is_empty() {
                true => PandaTask::new(variant, reward),
                false => PandaTask::with_cameras(variant, reward, &self.cameras, self.image_size),
            };
            let mut env = make().context("starting the simulated Panda")?;
            let mut eval_env = make().context("starting the simulated Panda for evaluation")?;
            let pixels = pixel_config(&self);
            let mut expert = ScriptedExpert::default();
            let (mut demos, successes) = policies::train::record_demos(&mut env, self.demo_episodes, self.seed + 10_000, learner.n_step as usize, learner.gamma, pixels.as_ref(), device, |task, episode_start| {
                if episode_start {
                    expert.reset();
                }
                // The expert acts on the full state, cube included, even when the learner sees it only in the frames.
                expert.act(variant, task.full_observation()).to_vec()
            })?;
            tracing::info!(episodes = self.demo_episodes, successes, transitions = demos.len(), "scripted demos recorded");
            let demos = (self.demo_episodes > 0).then_some(&mut demos);
            return train_on(&self, &learner, device, &mut env, &mut eval_env, demos);
        }
        if !self.cameras.is_empty() {
            anyhow::bail!("--cameras: only the Panda tasks (PandaReach, PandaPickCube) have cameras; `{}` is state-only", self.task);
        }
        let task = GymTask::from_name(&self.task).with_context(|| format!("unknown task `{}`; tasks: PandaReach, PandaPickCube, {}", self.task, GymTask::ALL.map(|t| t.gym_id()).join(", ")))?;
        let mut env = GymEnv::new(task)?;
        let mut eval_env = GymEnv::new(task)?;
        train_on(&self, &learner, device, &mut env, &mut eval_env, None)
    }
}

fn train_on<E: Environment>(
    args: &TrainArgs,
    learner: &LearnerConfig,
    device: tch::Device,
    env: &mut E,
    eval_env: &mut E,
    demos: Option<&mut policies::train::Replay>,
) -> anyhow::Result<serde_json::Value> {
    let task_name = args.task.clone();
    let mut config = SacConfig::from_learner(learner, env.observation_size(), env.action_size(), args.seed);
    config.pixels = pixel_config(args);
    let mut sac = Sac::try_new(config, device)?;
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from(format!("runs/{}-seed{}", task_name, args.seed)));
    let settings = TrainSettings {
        total_steps: args.steps,
        warmup_steps: args.warmup,
        eval_every: args.eval_every,
        eval_episodes: args.eval_episodes,
        replay_capacity: args.replay_capacity.unwrap_or(args.steps as usize).max(learner.batch_size as usize),
        seed: args.seed,
        stop_at_return: None,
        stop_at_success: None,
        checkpoint_dir: Some(out.join("checkpoint")),
        resume: args.resume,
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let csv_path = out.join("eval.csv");
    let appending = args.resume && csv_path.exists();
    let mut csv = std::fs::OpenOptions::new().create(true).append(true).open(&csv_path)?;
    if !appending {
        csv.set_len(0)?;
        writeln!(csv, "step,mean_return,success_rate,seconds")?;
    }
    let mut board = crate::metrics::TensorBoardWriter::create(&out.join("tensorboard")).context("creating the TensorBoard event file")?;
    let mut board_error = None;
    let progress = indicatif::ProgressBar::new(args.steps);
    progress.set_style(indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps {per_sec} eta {eta} {msg}").expect("valid template"));
    let started = std::time::Instant::now();
    let mut csv_error = None;
    let mut steps_run = 0u64;
    let evals = policies::train(env, eval_env, &mut sac, demos, &settings, |event| match event {
        TrainEvent::Step { step, .. } => {
            steps_run += 1;
            if step % 100 == 0 {
                progress.set_position(step);
            }
        }
        TrainEvent::EpisodeEnd { step, episode_return, .. } => {
            if let Err(e) = board.scalar("train/episode_return", step, episode_return) {
                board_error.get_or_insert(e);
            }
        }
        TrainEvent::Update { step, critic_loss, actor_loss, temperature, entropy } => {
            for (tag, value) in [("loss/critic", critic_loss), ("loss/actor", actor_loss), ("train/temperature", temperature), ("train/entropy", entropy)] {
                if let Err(e) = board.scalar(tag, step, value) {
                    board_error.get_or_insert(e);
                }
            }
        }
        TrainEvent::Eval(point) => {
            let success = point.success_rate.map(|r| format!("{r}")).unwrap_or_default();
            progress.set_message(format!("eval return {:.1} {}", point.mean_return, point.success_rate.map(|r| format!("success {:.0}%", 100.0 * r)).unwrap_or_default()));
            tracing::info!(step = point.step, mean_return = point.mean_return, success_rate = ?point.success_rate, "evaluation");
            if let Err(e) = writeln!(csv, "{},{},{},{:.3}", point.step, point.mean_return, success, started.elapsed().as_secs_f64()) {
                csv_error.get_or_insert(e);
            }
            let mut scalars = vec![("eval/mean_return", point.mean_return)];
            scalars.extend(point.success_rate.map(|r| ("eval/success_rate", r)));
            for (tag, value) in scalars {
                if let Err(e) = board.scalar(tag, point.step, value) {
                    board_error.get_or_insert(e);
                }
            }
        }
    })?;
    progress.finish_and_clear();
    if let Some(e) = csv_error {
        return Err(e).context("writing eval.csv");
    }
    if let Some(e) = board_error {
        return Err(e).with_context(|| format!("writing {}", board.path().display()));
    }
    let curve: Vec<(u64, f64)> = evals.iter().map(|e| (e.step, e.mean_return)).collect();
    crate::metrics::learning_curve_png(&out.join("learning_curve.png"), &format!("{task_name}, seed {}", args.seed), "environment steps", "evaluation return", &curve)?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(serde_json::json!({
        "impl": "rrl",
        "task": task_name,
        "seed": args.seed,
        "steps": args.steps,
        "cameras": args.cameras,
        "device": format!("{device:?}"),
        // Steps of this invocation (a resumed run starts after its checkpoint).
        "sps": steps_run as f64 / seconds,
        "eval_return": evals.last().map(|e| e.mean_return),
        "evals": evals,
        "out": out.display().to_string(),
    }))
}
