//! The online training loop on any `Environment`: random actions for a
//! warm-up, then act with the policy, store n-step transitions, update with
//! the configured UTD, and evaluate the deterministic policy periodically.

use rrl_types::{Environment, Step};

use crate::replay::{NStepWriter, ReplayBuffer, Transition};
use crate::sac::Sac;

#[derive(Debug, Clone, PartialEq)]
pub struct TrainSettings {
    pub total_steps: u64,
    /// Uniformly random actions before the policy acts and learning starts.
    pub warmup_steps: u64,
    pub eval_every: u64,
    pub eval_episodes: u32,
    pub replay_capacity: usize,
    pub seed: u64,
    /// Stop at the first evaluation whose mean return reaches this.
    pub stop_at_return: Option<f64>,
    /// Folder for `learner.safetensors` and `replay.safetensors`, written at
    /// every evaluation once the losses are checked finite; with `resume`,
    /// training continues from them when they exist.
    pub checkpoint_dir: Option<std::path::PathBuf>,
    pub resume: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EvalPoint {
    pub step: u64,
    pub mean_return: f64,
    pub returns: Vec<f64>,
    /// Share of episodes that ended in success, for tasks that define it.
    pub success_rate: Option<f64>,
}

/// What the loop reports as it goes (for progress bars and metric files).
#[derive(Debug, Clone, PartialEq)]
pub enum TrainEvent {
    Step { step: u64, episodes: u64 },
    EpisodeEnd { step: u64, episode_return: f64, length: u64 },
    Update { step: u64, critic_loss: f64, actor_loss: f64, temperature: f64, entropy: f64 },
    Eval(EvalPoint),
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("environment error at step {step}: {message}")]
    Environment { step: u64, message: String },
    #[error("training diverged at step {step}: {loss} is {value}; the last checkpoint written is the last good one")]
    NonFinite { step: u64, loss: &'static str, value: f64 },
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
}

/// Maps a policy action in [-1, 1] to the environment's bounds.
pub fn to_env_action(policy: &[f64], low: &[f64], high: &[f64], out: &mut Vec<f64>) {
    out.clear();
    out.extend(policy.iter().zip(low.iter().zip(high)).map(|(a, (l, h))| {
        if l.is_finite() && h.is_finite() {
            l + (a.clamp(-1.0, 1.0) + 1.0) * 0.5 * (h - l)
        } else {
            *a
        }
    }));
}

/// Undiscounted returns of the deterministic policy over `episodes`, each
/// from its own seed, and how many ended in success.
pub fn evaluate<E: Environment>(env: &mut E, sac: &mut Sac, episodes: u32, seed: u64) -> Result<(Vec<f64>, Option<u32>), E::Error> {
    let (low, high) = (env.action_low().to_vec(), env.action_high().to_vec());
    let mut action = Vec::new();
    let mut returns = Vec::new();
    let mut successes: Option<u32> = None;
    for e in 0..episodes {
        let mut observation = env.reset(seed + e as u64).to_vec();
        let mut total = 0.0;
        loop {
            let policy = sac.act(&observation, true);
            to_env_action(&policy, &low, &high, &mut action);
            let step: Step = env.step(&action)?;
            total += step.reward;
            observation.clear();
            observation.extend_from_slice(env.observation());
            if step.done() {
                if let Some(success) = env.success() {
                    *successes.get_or_insert(0) += u32::from(success);
                }
                break;
            }
        }
        returns.push(total);
    }
    Ok((returns, successes))
}

/// Records `episodes` episodes of `controller` (which maps an observation,
/// and whether it starts an episode, to an action within the environment's
/// bounds) as n-step transitions in a
/// buffer: demonstrations for RLPD-style 50/50 batches. Returns the buffer
/// and how many episodes ended in success.
pub fn record_demos<E: Environment>(
    env: &mut E,
    episodes: u32,
    seed: u64,
    n_step: usize,
    gamma: f64,
    device: tch::Device,
    mut controller: impl FnMut(&[f64], bool) -> Vec<f64>,
) -> Result<(ReplayBuffer, u32), E::Error> {
    let (low, high) = (env.action_low().to_vec(), env.action_high().to_vec());
    let mut buffer = ReplayBuffer::new(env.observation_size(), env.action_size(), (episodes as usize * 1000).max(1), device);
    let mut writer = NStepWriter::new(n_step, gamma);
    let mut successes = 0;
    for e in 0..episodes {
        let mut observation = env.reset(seed + e as u64).to_vec();
        let mut first = true;
        loop {
            let action = controller(&observation, first);
            first = false;
            let step = env.step(&action)?;
            // Stored in the policy's [-1, 1] space, as online transitions are.
            let policy_action: Vec<f32> = action
                .iter()
                .zip(low.iter().zip(&high))
                .map(|(a, (l, h))| if l.is_finite() && h.is_finite() { (2.0 * (a - l) / (h - l) - 1.0) as f32 } else { *a as f32 })
                .collect();
            let next: Vec<f32> = env.observation().iter().map(|&x| x as f32).collect();
            let transition = Transition {
                observation: observation.iter().map(|&x| x as f32).collect(),
                action: policy_action,
                reward: step.reward as f32,
                next_observation: next,
                terminal: step.terminated,
                discount: gamma as f32,
            };
            writer.push(transition, step.done(), &mut |t| buffer.push(&t));
            observation = env.observation().to_vec();
            if step.done() {
                successes += u32::from(env.success().unwrap_or(false));
                break;
            }
        }
    }
    Ok((buffer, successes))
}

/// Trains `sac` online on `env`, evaluating on `eval_env`; with `demos`,
/// each batch mixes demonstrations in at the configured ratio. Loss checks
/// for NaN happen at every evaluation and at the end (reading a loss syncs
/// the device).
pub fn train<E: Environment>(
    env: &mut E,
    eval_env: &mut E,
    sac: &mut Sac,
    mut demos: Option<&mut ReplayBuffer>,
    settings: &TrainSettings,
    mut on_event: impl FnMut(TrainEvent),
) -> Result<Vec<EvalPoint>, TrainError> {
    let env_error = |step: u64| move |e: E::Error| TrainError::Environment { step, message: e.to_string() };
    let (low, high) = (env.action_low().to_vec(), env.action_high().to_vec());
    let mut replay = ReplayBuffer::new(env.observation_size(), env.action_size(), settings.replay_capacity, sac.device);
    let mut nstep = NStepWriter::new(sac.config.n_step, sac.config.gamma);
    let mut evals = Vec::new();
    let paths = settings.checkpoint_dir.as_ref().map(|dir| (dir.join("learner.safetensors"), dir.join("replay.safetensors")));
    let mut first_step = 1;
    if let (true, Some((learner_path, replay_path))) = (settings.resume, &paths) {
        if learner_path.exists() {
            crate::checkpoint::load(sac, learner_path)?;
            crate::checkpoint::load_replay(&mut replay, replay_path)?;
            first_step = crate::checkpoint::read_extra(learner_path, "env_step")? + 1;
        }
    }
    // A resumed run starts a new episode; its seed follows from the step.
    let mut observation = env.reset(settings.seed.wrapping_add(first_step - 1)).to_vec();
    let mut env_action = Vec::new();
    let (mut episode_return, mut episode_length, mut episodes) = (0.0, 0u64, 0u64);
    let mut last_stats = None;
    for step in first_step..=settings.total_steps {
        let policy_action: Vec<f64> = if step <= settings.warmup_steps {
            (0..env.action_size()).map(|_| sac.rng.uniform(-1.0, 1.0)).collect()
        } else {
            sac.act(&observation, false)
        };
        to_env_action(&policy_action, &low, &high, &mut env_action);
        let result = env.step(&env_action).map_err(env_error(step))?;
        let next_observation = env.observation().to_vec();
        episode_return += result.reward;
        episode_length += 1;
        let transition = Transition {
            observation: observation.iter().map(|&x| x as f32).collect(),
            action: policy_action.iter().map(|&x| x as f32).collect(),
            reward: result.reward as f32,
            next_observation: next_observation.iter().map(|&x| x as f32).collect(),
            terminal: result.terminated,
            discount: sac.config.gamma as f32,
        };
        nstep.push(transition, result.done(), &mut |t| replay.push(&t));
        if result.done() {
            episodes += 1;
            on_event(TrainEvent::EpisodeEnd { step, episode_return, length: episode_length });
            episode_return = 0.0;
            episode_length = 0;
            observation = env.reset_next().to_vec();
        } else {
            observation = next_observation;
        }
        if step > settings.warmup_steps && replay.len() >= sac.config.batch_size {
            last_stats = Some(sac.update(&mut replay, demos.as_deref_mut()));
        }
        on_event(TrainEvent::Step { step, episodes });
        let eval_now = settings.eval_every > 0 && step % settings.eval_every == 0;
        if eval_now || step == settings.total_steps {
            if let Some(stats) = &last_stats {
                let read = |t: &tch::Tensor| t.double_value(&[]);
                let (critic_loss, actor_loss) = (read(&stats.critic_loss), read(&stats.actor_loss));
                for (loss, value) in [("critic loss", critic_loss), ("actor loss", actor_loss)] {
                    if !value.is_finite() {
                        return Err(TrainError::NonFinite { step, loss, value });
                    }
                }
                on_event(TrainEvent::Update { step, critic_loss, actor_loss, temperature: read(&stats.temperature), entropy: read(&stats.entropy) });
            }
            if let Some((learner_path, replay_path)) = &paths {
                // Replay first: a learner checkpoint never points past its data.
                crate::checkpoint::save_replay(&mut replay, replay_path)?;
                crate::checkpoint::save(sac, learner_path, &[("env_step", step)])?;
            }
            let (returns, successes) = evaluate(eval_env, sac, settings.eval_episodes, settings.seed + 1000).map_err(env_error(step))?;
            let success_rate = successes.map(|s| f64::from(s) / f64::from(settings.eval_episodes.max(1)));
            let point = EvalPoint { step, mean_return: returns.iter().sum::<f64>() / returns.len().max(1) as f64, returns, success_rate };
            on_event(TrainEvent::Eval(point.clone()));
            let reached = settings.stop_at_return.is_some_and(|goal| point.mean_return >= goal);
            evals.push(point);
            if reached {
                break;
            }
        }
    }
    Ok(evals)
}
