//! The online training loop on any `Environment`: random actions for a
//! warm-up, then act with the policy, store n-step transitions, update with
//! the configured UTD, and evaluate the deterministic policy periodically.

use std::path::Path;

use rrl_types::{Environment, FrameLayout, Step};

use crate::checkpoint::CheckpointError;
use crate::pixels::{EncoderError, FrameId, PixelConfig, PixelReplay, PixelTransition};
use crate::replay::{NStepWriter, ReplayBuffer, Transition};
use crate::sac::{Sac, UpdateStats};

/// The replay a learner trains from: state rows, or state rows with a
/// frame store for learners that see camera frames.
pub enum Replay {
    States(ReplayBuffer),
    Pixels(PixelReplay),
}

/// Where an observation's frames are stored (`None` for state replays).
pub type FrameTag = Option<FrameId>;

impl Replay {
    /// A replay for `sac`'s observations: with a frame store when it has a pixel encoder.
    pub fn for_learner(sac: &Sac, capacity: usize) -> Result<Replay, EncoderError> {
        Replay::new(sac.config.observation_size, sac.config.action_size, sac.config.pixels.as_ref(), capacity, sac.device)
    }

    /// Fails only for a replay that precomputes a frozen trunk's features
    /// and cannot load the trunk.
    pub fn new(state_size: usize, action_size: usize, pixels: Option<&PixelConfig>, capacity: usize, device: tch::Device) -> Result<Replay, EncoderError> {
        Ok(match pixels {
            Some(config) => Replay::Pixels(PixelReplay::new(state_size, action_size, config, capacity, device)?),
            None => Replay::States(ReplayBuffer::new(state_size, action_size, capacity, device)),
        })
    }

    /// Transitions that can be sampled.
    pub fn len(&self) -> usize {
        match self {
            Replay::States(r) => r.len(),
            Replay::Pixels(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores the frames of the observation `env` shows now, if this
    /// replay keeps frames (`check_frames` has made sure `env` has them).
    pub fn observe<E: Environment>(&mut self, env: &E) -> FrameTag {
        match self {
            Replay::States(_) => None,
            Replay::Pixels(r) => Some(r.add_frame(env.frames().expect("checked: the environment has camera frames"))),
        }
    }

    /// Stores a transition whose observations' frames are `tags`.
    pub fn push(&mut self, transition: Transition, tags: (FrameTag, FrameTag)) {
        match (self, tags) {
            (Replay::States(r), _) => r.push(&transition),
            (Replay::Pixels(r), (Some(frame), Some(next_frame))) => r.push(&PixelTransition { state: transition, frame, next_frame }),
            (Replay::Pixels(_), _) => panic!("a pixel replay needs the frames of both observations"),
        }
    }

    /// One learner update (`utd` critic steps, one actor step) from this
    /// replay mixed with `demos`, which must be of the same kind.
    pub fn update(&mut self, sac: &mut Sac, demos: Option<&mut Replay>) -> UpdateStats {
        match (self, demos) {
            (Replay::States(r), None) => sac.update(r, None),
            (Replay::States(r), Some(Replay::States(d))) => sac.update(r, Some(d)),
            (Replay::Pixels(r), None) => sac.update_pixels(r, None),
            (Replay::Pixels(r), Some(Replay::Pixels(d))) => sac.update_pixels(r, Some(d)),
            _ => panic!("demos and online replay must both keep frames or both not"),
        }
    }

    /// Writes the replay to `path` atomically.
    pub fn save(&mut self, path: &Path) -> Result<(), CheckpointError> {
        match self {
            Replay::States(r) => crate::checkpoint::save_replay(r, path),
            Replay::Pixels(r) => crate::checkpoint::write_atomically(path, r.export()),
        }
    }

    /// Restores what `save` wrote; a file of another shape is refused.
    pub fn load(&mut self, path: &Path) -> Result<(), CheckpointError> {
        match self {
            Replay::States(r) => crate::checkpoint::load_replay(r, path),
            Replay::Pixels(r) => {
                let stored = crate::checkpoint::read_verified(path)?;
                r.import(&stored).map_err(|reason| CheckpointError::Corrupt { path: path.to_path_buf(), reason })
            }
        }
    }
}

/// Checks that `env` gives the frames `sac`'s encoder expects.
pub fn check_frames<E: Environment>(env: &E, sac: &Sac) -> Result<(), TrainError> {
    let Some(pixels) = &sac.config.pixels else { return Ok(()) };
    let expected = FrameLayout { cameras: pixels.cameras as usize, height: pixels.height as usize, width: pixels.width as usize };
    match env.frame_layout() {
        Some(layout) if layout == expected && env.frames().is_some_and(|f| f.len() == layout.bytes()) => Ok(()),
        got => Err(TrainError::Frames { expected, got }),
    }
}

/// The learner's action for what `env` shows now (its state, and its
/// frames for a pixel learner), in [-1, 1].
pub fn act_in<E: Environment>(sac: &mut Sac, env: &E, deterministic: bool) -> Vec<f64> {
    match (sac.encoder.is_some(), env.frames()) {
        (true, Some(frames)) => sac.act_pixels(env.observation(), frames, deterministic),
        (true, None) => panic!("a pixel learner acting in an environment without camera frames"),
        (false, _) => sac.act(env.observation(), deterministic),
    }
}

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
    /// Stop at the first evaluation whose success rate reaches this.
    pub stop_at_success: Option<f64>,
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
    #[error("the learner expects camera frames {expected:?}; the environment gives {got:?}")]
    Frames { expected: FrameLayout, got: Option<FrameLayout> },
    #[error(transparent)]
    Encoder(#[from] EncoderError),
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
        env.reset(seed + e as u64);
        let mut total = 0.0;
        loop {
            let policy = act_in(sac, env, true);
            to_env_action(&policy, &low, &high, &mut action);
            let step: Step = env.step(&action)?;
            total += step.reward;
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

/// Records `episodes` episodes of `controller` (which maps the environment
/// as it is, and whether an episode starts, to an action within the
/// environment's bounds) as n-step transitions in a replay (with the
/// frames when `pixels` is given): demonstrations for RLPD-style 50/50
/// batches. Returns the replay and how many episodes ended in success.
#[allow(clippy::too_many_arguments)]
pub fn record_demos<E: Environment>(
    env: &mut E,
    episodes: u32,
    seed: u64,
    n_step: usize,
    gamma: f64,
    pixels: Option<&PixelConfig>,
    device: tch::Device,
    mut controller: impl FnMut(&E, bool) -> Vec<f64>,
) -> Result<(Replay, u32), TrainError> {
    let (low, high) = (env.action_low().to_vec(), env.action_high().to_vec());
    let mut buffer = Replay::new(env.observation_size(), env.action_size(), pixels, (episodes as usize * 1000).max(1), device)?;
    let mut steps = 0u64;
    let mut writer = NStepWriter::tagged(n_step, gamma);
    let mut successes = 0;
    for e in 0..episodes {
        let mut observation = env.reset(seed + e as u64).to_vec();
        let mut frame = buffer.observe(env);
        let mut first = true;
        loop {
            let action = controller(env, first);
            first = false;
            steps += 1;
            let step = env.step(&action).map_err(|e| TrainError::Environment { step: steps, message: e.to_string() })?;
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
            let next_frame = buffer.observe(env);
            writer.push_tagged(transition, (frame, next_frame), step.done(), &mut |t, tags| buffer.push(t, tags));
            observation = env.observation().to_vec();
            frame = next_frame;
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
    mut demos: Option<&mut Replay>,
    settings: &TrainSettings,
    mut on_event: impl FnMut(TrainEvent),
) -> Result<Vec<EvalPoint>, TrainError> {
    let env_error = |step: u64| move |e: E::Error| TrainError::Environment { step, message: e.to_string() };
    check_frames(env, sac)?;
    check_frames(eval_env, sac)?;
    let (low, high) = (env.action_low().to_vec(), env.action_high().to_vec());
    let mut replay = Replay::for_learner(sac, settings.replay_capacity)?;
    let mut nstep = NStepWriter::tagged(sac.config.n_step, sac.config.gamma);
    let mut evals = Vec::new();
    let paths = settings.checkpoint_dir.as_ref().map(|dir| (dir.join("learner.safetensors"), dir.join("replay.safetensors")));
    let mut first_step = 1;
    if let (true, Some((learner_path, replay_path))) = (settings.resume, &paths) {
        if learner_path.exists() {
            crate::checkpoint::load(sac, learner_path)?;
            replay.load(replay_path)?;
            first_step = crate::checkpoint::read_extra(learner_path, "env_step")? + 1;
        }
    }
    // A resumed run starts a new episode; its seed follows from the step.
    let mut observation = env.reset(settings.seed.wrapping_add(first_step - 1)).to_vec();
    let mut frame = replay.observe(env);
    let mut env_action = Vec::new();
    let (mut episode_return, mut episode_length, mut episodes) = (0.0, 0u64, 0u64);
    let mut last_stats = None;
    for step in first_step..=settings.total_steps {
        let policy_action: Vec<f64> = if step <= settings.warmup_steps {
            (0..env.action_size()).map(|_| sac.rng.uniform(-1.0, 1.0)).collect()
        } else {
            act_in(sac, env, false)
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
        let next_frame = replay.observe(env);
        nstep.push_tagged(transition, (frame, next_frame), result.done(), &mut |t, tags| replay.push(t, tags));
        if result.done() {
            episodes += 1;
            on_event(TrainEvent::EpisodeEnd { step, episode_return, length: episode_length });
            episode_return = 0.0;
            episode_length = 0;
            observation = env.reset_next().to_vec();
            frame = replay.observe(env);
        } else {
            observation = next_observation;
            frame = next_frame;
        }
        if step > settings.warmup_steps && replay.len() >= sac.config.batch_size {
            last_stats = Some(replay.update(sac, demos.as_deref_mut()));
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
                replay.save(replay_path)?;
                crate::checkpoint::save(sac, learner_path, &[("env_step", step)])?;
            }
            let (returns, successes) = evaluate(eval_env, sac, settings.eval_episodes, settings.seed + 1000).map_err(env_error(step))?;
            let success_rate = successes.map(|s| f64::from(s) / f64::from(settings.eval_episodes.max(1)));
            let point = EvalPoint { step, mean_return: returns.iter().sum::<f64>() / returns.len().max(1) as f64, returns, success_rate };
            on_event(TrainEvent::Eval(point.clone()));
            let reached = settings.stop_at_return.is_some_and(|goal| point.mean_return >= goal) || settings.stop_at_success.zip(point.success_rate).is_some_and(|(goal, rate)| rate >= goal);
            evals.push(point);
            if reached {
                break;
            }
        }
    }
    Ok(evals)
}
