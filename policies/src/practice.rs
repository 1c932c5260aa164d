//! Autonomous practice: act, learn online, reset, repeat (SERL/FastRLAP
//! style), with human takeover, stuck detection and recovery, and every
//! transition recorded durably as it happens.
//!
//! Two threads: the actor (the caller's thread) steps the task with its own
//! copy of the policy and never waits on the learner; the learner thread
//! owns SAC, the replay and demo buffers, updates, and hands new actor
//! weights back through a one-slot mailbox (newest wins). The episode files
//! are the source of truth: on start, every recorded episode of the run is
//! read back into the buffers (demo episodes and human interventions into
//! the demo buffer too), so a restarted run loses nothing and demo buffers
//! need no separate persistence; the learner checkpoint carries the rest.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::{self, Receiver, RecvTimeoutError, Sender};
use crossbeam::queue::ArrayQueue;
use recording::{Episode, EpisodeHeader, EpisodeOutcome, EpisodeStep, EpisodeWriter, StepFlags};
use rrl_types::rng::Rng;
use rrl_types::PracticeTask;
use tch::{Device, Kind, Tensor};

use crate::nets::GaussianActor;
use crate::replay::{NStepWriter, ReplayBuffer, Transition};
use crate::sac::{Sac, SacConfig};
use crate::train::to_env_action;

/// What the human at the robot asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorCommand {
    Pause,
    Resume,
    /// End the episode now, labelled a success.
    Success,
    /// End the episode now, labelled a failure.
    Failure,
    /// Finish the current episode as stopped and end practice.
    Stop,
}

/// One poll of the human's devices.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OperatorInput {
    /// While the human is acting: their action, in the environment's bounds;
    /// it replaces the policy's.
    pub takeover: Option<Vec<f64>>,
    pub command: Option<OperatorCommand>,
}

/// The human at the robot (keyboard, gamepad, SpaceMouse, or a script
/// standing in for one in simulation). Polled once per policy step; must
/// not block.
pub trait Operator {
    fn poll(&mut self, observation: &[f64]) -> OperatorInput;
}

/// Fully autonomous practice: nobody at the robot.
pub struct NoOperator;

impl Operator for NoOperator {
    fn poll(&mut self, _: &[f64]) -> OperatorInput {
        OperatorInput::default()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PracticeSettings {
    pub task: String,
    /// Online environment steps to practise, counting earlier sessions of
    /// a resumed run.
    pub total_steps: u64,
    /// Uniformly random actions for the first steps of a fresh run.
    pub warmup_steps: u64,
    /// Episodes end after this many steps at the latest.
    pub max_episode_steps: u64,
    /// The robot counts as stuck when no observation component moved more
    /// than `stuck_tolerance` over this many steps (0: never).
    pub stuck_steps: usize,
    pub stuck_tolerance: f64,
    pub seed: u64,
    /// Run folder: `episodes/`, `learner.safetensors`.
    pub run_dir: PathBuf,
    /// fsync after every step (robots) rather than at episode end (sim).
    pub sync_every_step: bool,
    /// Simulation: the actor waits for the learner so that exactly one
    /// update happens per environment step, as in synchronous training, and
    /// for each step's learned reward. On a robot (false) the actor never
    /// waits within an episode.
    pub lockstep: bool,
    /// Actor weights are published every this many updates.
    pub publish_every: u64,
    /// The learner checkpoints every this many updates (and at the end).
    pub checkpoint_every: u64,
    pub replay_capacity: usize,
    /// The actor holds the robot while more items than this await the
    /// learner's confirmation (remote learners).
    pub max_backlog: u64,
    /// Practice ends early once this share of the last
    /// `SUCCESS_WINDOW` practice episodes after the warm-up succeeded.
    pub stop_at_success: Option<f64>,
}

/// Practice episodes the early stop (`stop_at_success`) looks back over.
pub const SUCCESS_WINDOW: usize = 20;

/// Episodes played with the deterministic policy (the one evaluated and
/// deployed) to confirm an early stop once practice reached its target.
pub const CONFIRM_EPISODES: u32 = 10;

/// Per-episode report for status lines and metric files.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EpisodeReport {
    pub episode: u64,
    pub steps: u64,
    pub total_steps: u64,
    pub episode_return: f64,
    pub success: Option<bool>,
    pub interventions: u64,
    pub safety_events: u64,
    pub reason: String,
    pub learner_updates: u64,
    pub seconds: f64,
    /// Learned rewards of this episode's steps: (joined, missing).
    pub learned_rewards: (u64, u64),
    /// Played with the policy's mean action (confirming an early stop),
    /// not sampled.
    pub deterministic: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PracticeReport {
    pub episodes: Vec<EpisodeReport>,
    /// Episodes and steps found on disk at start (a resumed run).
    pub resumed_episodes: u64,
    pub resumed_steps: u64,
    pub total_steps: u64,
    pub learner_updates: u64,
    pub stopped_by_operator: bool,
    /// Ended early: `stop_at_success` was reached and confirmed.
    pub reached_success: bool,
    /// Each confirmation of the early stop: (steps so far, successes of
    /// `CONFIRM_EPISODES` deterministic episodes).
    pub confirmations: Vec<(u64, u32)>,
}

#[derive(Debug, thiserror::Error)]
pub enum PracticeError {
    #[error("environment error at step {step}: {message}")]
    Environment { step: u64, message: String },
    #[error(transparent)]
    Recording(#[from] recording::RecordingError),
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    #[error("recorded episode {path}: {problem}")]
    Mismatch { path: PathBuf, problem: String },
    #[error("the learner thread failed: {0}")]
    Learner(String),
    #[error("the operator's action has {got} values, the task takes {expected}")]
    TakeoverSize { expected: usize, got: usize },
}

/// What an actor sends its learner, in one ordered stream.
#[derive(Debug, Clone, PartialEq)]
pub enum ToLearner {
    Transition { transition: Transition, demo: bool },
    /// Counts an online environment step (for the update budget).
    OnlineStep,
}

/// Actor weights as CPU tensors, in `GaussianActor::trunk.params` order.
pub struct ActorWeights(pub Vec<Tensor>);

/// Between the learner thread and whoever relays for it.
pub struct LearnerShared {
    pub updates: AtomicU64,
    /// The newest actor weights (one slot, newest wins).
    pub weights: ArrayQueue<ActorWeights>,
    pub error: std::sync::Mutex<Option<String>>,
}

impl LearnerShared {
    pub fn new() -> Arc<LearnerShared> {
        Arc::new(LearnerShared { updates: AtomicU64::new(0), weights: ArrayQueue::new(1), error: std::sync::Mutex::new(None) })
    }
}

/// How the actor reaches its learner: a thread of this process, or a
/// learner node over ROS 2.
pub trait LearnerLink {
    /// Queues one item of the stream; never blocks.
    fn send(&mut self, item: ToLearner);
    /// Updates the learner has done (as last heard).
    fn updates(&self) -> u64;
    fn take_weights(&mut self) -> Option<ActorWeights>;
    /// Set when the learner failed for good.
    fn failure(&self) -> Option<String>;
    /// Items sent but not yet confirmed by the learner.
    fn backlog(&self) -> u64 {
        0
    }
}

/// The learner as a thread of this process.
pub struct LocalLearner {
    sender: Option<Sender<ToLearner>>,
    shared: Arc<LearnerShared>,
    thread: Option<std::thread::JoinHandle<Result<(), PracticeError>>>,
}

impl LocalLearner {
    pub fn start(config: SacConfig, device: Device, checkpoint: PathBuf, resume: bool, settings: PracticeSettings) -> Result<LocalLearner, PracticeError> {
        let (sender, inbox) = channel::unbounded::<ToLearner>();
        let shared = LearnerShared::new();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("learner".into())
            .spawn(move || run_learner(config, device, checkpoint, resume, settings, inbox, thread_shared))
            .map_err(|e| PracticeError::Learner(e.to_string()))?;
        Ok(LocalLearner { sender: Some(sender), shared, thread: Some(thread) })
    }

    /// Closes the stream, waits for the final checkpoint; the update count.
    pub fn finish(mut self) -> Result<u64, PracticeError> {
        self.sender.take();
        let thread = self.thread.take().expect("finished once");
        thread.join().map_err(|_| PracticeError::Learner("the learner thread panicked".into()))??;
        Ok(self.shared.updates.load(Ordering::Acquire))
    }
}

impl LearnerLink for LocalLearner {
    fn send(&mut self, item: ToLearner) {
        if let Some(sender) = &self.sender {
            let _ = sender.send(item);
        }
    }
    fn updates(&self) -> u64 {
        self.shared.updates.load(Ordering::Acquire)
    }
    fn take_weights(&mut self) -> Option<ActorWeights> {
        self.shared.weights.pop()
    }
    fn failure(&self) -> Option<String> {
        self.shared.error.lock().expect("error slot").clone()
    }
}

fn weights_of(actor: &GaussianActor) -> ActorWeights {
    ActorWeights(actor.trunk.params("actor").into_iter().map(|p| p.tensor.detach().to_device(Device::Cpu).copy()).collect())
}

/// When the demo buffer joins the batches. Demos recorded before practice
/// (streamed ahead of the first online step) are mixed in from the first
/// update however few they are, as `rrl train` mixes its demos; a demo
/// buffer that only takeovers fill waits for a batch's worth, so that a
/// handful of intervention steps does not make half of every batch.
#[derive(Debug, Clone, Copy)]
struct DemoMix {
    minimum: usize,
}

impl DemoMix {
    fn new(batch_size: usize) -> DemoMix {
        DemoMix { minimum: batch_size }
    }
    /// The first online step arrived with `recorded` demo transitions in the buffer.
    fn practice_starts(&mut self, recorded: usize) {
        if recorded > 0 {
            self.minimum = self.minimum.min(recorded);
        }
    }
    fn ready(&self, demos: usize) -> bool {
        demos > 0 && demos >= self.minimum
    }
}

/// The learner: SAC, buffers, updates from the stream in `inbox` until it
/// closes; publishes actor weights and its update count through `shared`,
/// and any failure too.
pub fn run_learner(
    config: SacConfig,
    device: Device,
    checkpoint: PathBuf,
    resume: bool,
    settings: PracticeSettings,
    inbox: Receiver<ToLearner>,
    shared: Arc<LearnerShared>,
) -> Result<(), PracticeError> {
    let result = learner_loop(config, device, checkpoint, resume, settings, inbox, &shared);
    if let Err(e) = &result {
        *shared.error.lock().expect("error slot") = Some(e.to_string());
    }
    result
}

fn learner_loop(
    config: SacConfig,
    device: Device,
    checkpoint: PathBuf,
    resume: bool,
    settings: PracticeSettings,
    inbox: Receiver<ToLearner>,
    shared: &LearnerShared,
) -> Result<(), PracticeError> {
    let mut sac = Sac::new(config.clone(), device);
    if resume && checkpoint.exists() {
        crate::checkpoint::load(&mut sac, &checkpoint)?;
    }
    shared.updates.store(sac.updates, Ordering::Release);
    shared.weights.force_push(weights_of(&sac.actor));
    let mut replay = ReplayBuffer::new(config.observation_size, config.action_size, settings.replay_capacity, device);
    let mut demos = ReplayBuffer::new(config.observation_size, config.action_size, settings.replay_capacity, device);
    let mut online_steps = 0u64;
    let mut demo_mix = DemoMix::new(config.batch_size);
    let mut open = true;
    let mut last_checkpoint = sac.updates;
    while open {
        // Take everything waiting; block briefly only when there is no update to do.
        let budget = online_steps.saturating_sub(settings.warmup_steps);
        let can_update = sac.updates < budget && replay.len() >= config.batch_size;
        let message = if can_update {
            inbox.try_recv().map_err(|e| e.is_disconnected())
        } else {
            inbox.recv_timeout(Duration::from_millis(20)).map_err(|e| e == RecvTimeoutError::Disconnected)
        };
        match message {
            Ok(ToLearner::Transition { transition, demo }) => {
                let (o, a) = (transition.observation.len(), transition.action.len());
                if (o, a, transition.next_observation.len()) != (config.observation_size, config.action_size, config.observation_size) {
                    return Err(PracticeError::Learner(format!(
                        "a transition with {o} observation and {a} action values reached a learner built for {} and {}: do the actors practise the same task (and the same residual base) as the learner's launch file names?",
                        config.observation_size, config.action_size
                    )));
                }
                replay.push(&transition);
                if demo {
                    demos.push(&transition);
                }
                continue;
            }
            Ok(ToLearner::OnlineStep) => {
                if online_steps == 0 {
                    demo_mix.practice_starts(demos.len());
                }
                online_steps += 1;
                continue;
            }
            Err(true) => open = false,
            Err(false) => {}
        }
        if can_update {
            let demos_ready = demo_mix.ready(demos.len());
            let stats = sac.update(&mut replay, if demos_ready { Some(&mut demos) } else { None });
            shared.updates.store(sac.updates, Ordering::Release);
            if sac.updates % settings.publish_every.max(1) == 0 {
                shared.weights.force_push(weights_of(&sac.actor));
            }
            if sac.updates - last_checkpoint >= settings.checkpoint_every.max(1) {
                let loss = stats.critic_loss.double_value(&[]);
                if !loss.is_finite() {
                    return Err(PracticeError::Learner(format!("critic loss is {loss} at update {}; the last checkpoint is the last good one", sac.updates)));
                }
                match crate::checkpoint::save(&sac, &checkpoint, &[]) {
                    // The last checkpoint stays whole (writes are atomic); the next one is tried at the next cadence.
                    Err(e) if e.is_storage_full() => tracing::warn!("{e}: the disk is full; the learner goes on and tries again in {} updates", settings.checkpoint_every.max(1)),
                    other => other?,
                }
                last_checkpoint = sac.updates;
            }
        }
    }
    recording::retry_while_storage_full(
        || crate::checkpoint::save(&sac, &checkpoint, &[]),
        crate::checkpoint::CheckpointError::is_storage_full,
        Duration::from_secs(1),
        |e| tracing::warn!("{e}: the disk is full; the final checkpoint is retried every second until space is freed"),
        |waited| tracing::warn!(paused_s = waited, "the final checkpoint is written"),
    )?;
    shared.weights.force_push(weights_of(&sac.actor));
    Ok(())
}

/// The actor's own copy of the policy, on the CPU, sampled with its own
/// generator (independent of the learner thread's).
struct ActorCopy {
    net: GaussianActor,
    rng: Rng,
    action_size: usize,
}

impl ActorCopy {
    /// Takes the learner's weights; refused, naming the first misfit, when
    /// they were made for another network (a learner started for another
    /// task, or without the actor's residual base).
    fn load(&mut self, weights: &ActorWeights) -> Result<(), PracticeError> {
        let params = self.net.trunk.params("actor");
        if params.len() != weights.0.len() {
            return Err(PracticeError::Learner(format!("the learner's weights hold {} tensors, this actor's network {}: was the learner started for this task and base?", weights.0.len(), params.len())));
        }
        for (param, value) in params.iter().zip(&weights.0) {
            if param.tensor.size() != value.size() {
                return Err(PracticeError::Learner(format!("the learner's `{}` has shape {:?}, this actor's {:?}: was the learner started for this task and base?", param.name, value.size(), param.tensor.size())));
            }
        }
        tch::no_grad(|| {
            for (param, value) in params.iter().zip(&weights.0) {
                let mut target = param.tensor.shallow_clone();
                target.copy_(value);
            }
        });
        Ok(())
    }

    fn act(&mut self, observation: &[f64], deterministic: bool) -> Vec<f64> {
        let obs: Vec<f32> = observation.iter().map(|&x| x as f32).collect();
        let obs = Tensor::from_slice(&obs).reshape([1, obs.len() as i64]);
        let action = tch::no_grad(|| {
            if deterministic {
                self.net.mean_action(&obs)
            } else {
                let noise: Vec<f32> = (0..self.action_size).map(|_| self.rng.normal() as f32).collect();
                let noise = Tensor::from_slice(&noise).reshape([1, self.action_size as i64]);
                self.net.sample(&obs, &noise).0
            }
        });
        let values: Vec<f32> = Vec::try_from(&action.reshape([-1]).to_kind(Kind::Float)).expect("f32 action");
        values.into_iter().map(f64::from).collect()
    }
}

/// Maps an action in the environment's bounds to the learner's [-1, 1].
pub fn to_policy_action(action: &[f64], low: &[f64], high: &[f64]) -> Vec<f64> {
    action
        .iter()
        .zip(low.iter().zip(high))
        .map(|(a, (l, h))| if l.is_finite() && h.is_finite() { (2.0 * (a - l) / (h - l) - 1.0).clamp(-1.0, 1.0) } else { *a })
        .collect()
}

fn unix_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// A step held until its learned reward is known: its record and what the
/// learner gets of it.
struct AwaitedStep {
    /// 1-based, within the episode.
    step: u64,
    record: EpisodeStep,
    transition: Transition,
    over: bool,
    demo: bool,
    since: Instant,
}

/// Steps waiting for their learned rewards, released in order: with the
/// reward once it is known, or with reward 0 once it is overdue (counted
/// as missing). Without learned rewards every step is released at once.
#[derive(Default)]
struct RewardWait {
    queue: std::collections::VecDeque<AwaitedStep>,
    joined: u64,
    missing: u64,
}

impl RewardWait {
    /// Releases what can be released now; with `until_empty`, waits for
    /// the rest (at the end of an episode, at most one deadline).
    fn release<E: PracticeTask>(&mut self, env: &mut E, until_empty: bool, emit: &mut dyn FnMut(AwaitedStep) -> Result<(), PracticeError>) -> Result<(), PracticeError> {
        while let Some(front) = self.queue.front() {
            let learned = match env.learned_rewards() {
                None => Some(None),
                Some(rewards) => match rewards.reward_of(front.step) {
                    Some(reward) => {
                        self.joined += 1;
                        Some(Some(reward))
                    }
                    None if front.since.elapsed() >= rewards.deadline() => {
                        self.missing += 1;
                        Some(Some(0.0))
                    }
                    None => None,
                },
            };
            match learned {
                None if until_empty => std::thread::sleep(Duration::from_millis(2)),
                None => return Ok(()),
                Some(reward) => {
                    let mut step = self.queue.pop_front().expect("front exists");
                    if let Some(reward) = reward {
                        step.record.reward = reward as f32;
                        step.transition.reward = reward as f32;
                    }
                    emit(step)?;
                }
            }
        }
        Ok(())
    }
}

/// Feeds recorded episodes to `out` exactly as the live actor sent them:
/// per step its completed n-step transitions, then (online steps only) an
/// `OnlineStep`. The stream is therefore a pure function of the files, so a
/// restarted actor resends the same items under the same sequence numbers.
/// Recovery steps are not the policy's and are skipped; demo episodes and
/// interventions are flagged as demos. Returns the online steps.
fn replay_recorded(episodes: &[Episode], config: &SacConfig, out: &mut dyn FnMut(ToLearner)) -> u64 {
    let mut online = 0;
    for episode in episodes {
        let demo_episode = episode.header.source == "demo";
        let mut writer = NStepWriter::new(config.n_step, config.gamma);
        let policy_steps: Vec<&EpisodeStep> = episode.steps.iter().filter(|s| !s.flags.recovery).collect();
        for (i, step) in policy_steps.iter().enumerate() {
            let demo = demo_episode || step.flags.intervention;
            let over = step.flags.terminated || step.flags.truncated || i + 1 == policy_steps.len();
            let transition = Transition {
                observation: step.observation.clone(),
                action: step.action.clone(),
                reward: step.reward,
                next_observation: step.next_observation.clone(),
                terminal: step.flags.terminated,
                discount: config.gamma as f32,
            };
            // An n-step transition counts as a demo when the step completing it was one.
            writer.push(transition, over, &mut |t| out(ToLearner::Transition { transition: t, demo }));
            if !demo_episode {
                online += 1;
                out(ToLearner::OnlineStep);
            }
        }
    }
    online
}

/// One episode of `act` (observation, first step -> action in the learner's
/// [-1, 1]) recorded under `folder`; used for scripted demos and
/// evaluations. Returns (return, success).
#[allow(clippy::too_many_arguments)]
fn record_one_episode<E: PracticeTask>(
    env: &mut E,
    folder: &Path,
    task: &str,
    source: &str,
    episode: u64,
    seed: u64,
    by_human_or_script: bool,
    act: &mut dyn FnMut(&[f64], bool) -> Vec<f64>,
) -> Result<(f64, Option<bool>), PracticeError> {
    let (low, high) = (env.action_low().to_vec(), env.action_high().to_vec());
    let started = unix_ns();
    let header = EpisodeHeader { task: task.into(), episode, observation_size: env.observation_size(), action_size: env.action_size(), source: source.into(), seed, started_unix_ns: started };
    let mut writer = durably(|| EpisodeWriter::create(folder, &header, false))?;
    let mut observation = env.reset(seed).to_vec();
    let mut env_action = Vec::new();
    let (mut total, mut steps, mut safety_events) = (0.0, 0u64, 0u64);
    let mut wait = RewardWait::default();
    let terminated = loop {
        let action = act(&observation, steps == 0);
        to_env_action(&action, &low, &high, &mut env_action);
        let result = env.step(&env_action).map_err(|err| PracticeError::Environment { step: steps, message: err.to_string() })?;
        let events = env.take_safety_events();
        safety_events += events.protective;
        steps += 1;
        let next = env.observation().to_vec();
        let record = EpisodeStep {
            time_ns: started + steps * 100_000_000,
            observation: observation.iter().map(|&x| x as f32).collect(),
            action: action.iter().map(|&x| x as f32).collect(),
            reward: result.reward as f32,
            next_observation: next.iter().map(|&x| x as f32).collect(),
            flags: StepFlags { terminated: result.terminated, truncated: result.truncated, intervention: by_human_or_script, safety_event: events.any(), reflex: events.reflexes > 0, recovery: false },
        };
        // Only the record matters here (no learner): the transition is a placeholder.
        let transition = Transition { observation: Vec::new(), action: Vec::new(), reward: 0.0, next_observation: Vec::new(), terminal: false, discount: 0.0 };
        wait.queue.push_back(AwaitedStep { step: steps, record, transition, over: result.done(), demo: by_human_or_script, since: Instant::now() });
        // Scripted demos and evaluations run in simulation, where time can
        // stand still: each step waits for its reward (up to the deadline).
        wait.release(env, true, &mut |s| {
            total += f64::from(s.record.reward);
            Ok(durably(|| writer.step(&s.record))?)
        })?;
        observation = next;
        if result.done() {
            break result.terminated;
        }
    };
    let success = env.success();
    let reason = if success == Some(true) { "success" } else if terminated { "failure" } else { "timeout" };
    let interventions = if by_human_or_script { steps } else { 0 };
    let outcome = EpisodeOutcome { steps, episode_return: total, success, interventions, safety_events, reason: reason.into() };
    durably(|| writer.finish(&outcome))?;
    Ok((total, success))
}

/// Records `episodes` of a scripted `controller` (actions in the
/// environment's bounds) as demo episodes of the run, unless the run
/// already has demos. Returns how many succeeded.
pub fn record_demo_episodes<E: PracticeTask>(
    env: &mut E,
    run_dir: &Path,
    task: &str,
    episodes: u32,
    seed: u64,
    mut controller: impl FnMut(&[f64], bool) -> Vec<f64>,
) -> Result<u32, PracticeError> {
    let folder = run_dir.join("demos");
    if !recording::list_episodes(&folder)?.is_empty() {
        return Ok(0);
    }
    let (low, high) = (env.action_low().to_vec(), env.action_high().to_vec());
    let mut act = |obs: &[f64], first: bool| to_policy_action(&controller(obs, first), &low, &high);
    let mut successes = 0;
    for e in 0..u64::from(episodes) {
        let (_, success) = record_one_episode(env, &folder, task, "demo", e, seed + e, true, &mut act)?;
        successes += u32::from(success.unwrap_or(false));
    }
    Ok(successes)
}

/// Teleoperation: the human drives every step through `operator` (an
/// episode starts at the first move; later steps without takeover hold
/// still: `idle_action`), `Success` / `Failure`
/// label and end an episode, `Stop` ends the session. Episodes go to the
/// run's `demos/` (source `demo`), continuing its numbering, so practice on
/// the same run starts from them. Returns one report per episode.
pub fn teleoperate<E: PracticeTask>(
    env: &mut E,
    operator: &mut dyn Operator,
    run_dir: &Path,
    task: &str,
    episodes: u32,
    max_episode_steps: u64,
    seed: u64,
    idle_action: &[f64],
    mut on_episode: impl FnMut(&EpisodeReport),
) -> Result<Vec<EpisodeReport>, PracticeError> {
    let folder = run_dir.join("demos");
    let existing = read_all(&folder, (env.observation_size(), env.action_size()))?;
    let first = existing.last().map_or(0, |e| e.header.episode + 1);
    let (low, high) = (env.action_low().to_vec(), env.action_high().to_vec());
    let started = Instant::now();
    let mut reports = Vec::new();
    let mut total_steps = 0;
    'session: for index in first..first + u64::from(episodes) {
        let episode_start = unix_ns();
        let header = EpisodeHeader { task: task.into(), episode: index, observation_size: env.observation_size(), action_size: env.action_size(), source: "demo".into(), seed: seed + index, started_unix_ns: episode_start };
        let mut writer = durably(|| EpisodeWriter::create(&folder, &header, true))?;
        let mut observation = env.reset(seed + index).to_vec();
        let (mut steps, mut total, mut interventions, mut safety_events) = (0u64, 0.0, 0u64, 0u64);
        let (mut label, mut paused, mut stop) = (None, false, false);
        let reason = loop {
            let input = operator.poll(&observation);
            match input.command {
                Some(OperatorCommand::Pause) => paused = true,
                Some(OperatorCommand::Resume) => paused = false,
                Some(OperatorCommand::Success) => label = Some(true),
                Some(OperatorCommand::Failure) => label = Some(false),
                Some(OperatorCommand::Stop) => stop = true,
                None => {}
            }
            if stop {
                break "stopped";
            }
            if let Some(label) = label {
                break if label { "success" } else { "failure" };
            }
            // The episode starts at the human's first move: until then the
            // robot holds and the episode clock does not run.
            if paused || (steps == 0 && input.takeover.is_none()) {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            let human = input.takeover.is_some();
            let action = input.takeover.unwrap_or_else(|| idle_action.to_vec());
            if action.len() != env.action_size() {
                return Err(PracticeError::TakeoverSize { expected: env.action_size(), got: action.len() });
            }
            let result = env.step(&action).map_err(|e| PracticeError::Environment { step: total_steps, message: e.to_string() })?;
            let events = env.take_safety_events();
            steps += 1;
            total_steps += 1;
            total += result.reward;
            interventions += u64::from(human);
            safety_events += events.protective;
            let next = env.observation().to_vec();
            let truncated = result.truncated || (!result.terminated && steps >= max_episode_steps);
            let record = EpisodeStep {
                time_ns: episode_start + started.elapsed().as_nanos() as u64,
                observation: observation.iter().map(|&x| x as f32).collect(),
                action: to_policy_action(&action, &low, &high).iter().map(|&x| x as f32).collect(),
                reward: result.reward as f32,
                next_observation: next.iter().map(|&x| x as f32).collect(),
                flags: StepFlags { terminated: result.terminated, truncated, intervention: human, safety_event: events.any(), recovery: false, reflex: events.reflexes > 0 },
            };
            durably(|| writer.step(&record))?;
            observation = next;
            if result.done() || truncated {
                break if env.success() == Some(true) { "success" } else if result.terminated { "failure" } else { "timeout" };
            }
        };
        let success = label.or(env.success().map(|s| s && reason == "success"));
        let outcome = EpisodeOutcome { steps, episode_return: total, success, interventions, safety_events, reason: reason.into() };
        durably(|| writer.finish(&outcome))?;
        let report = EpisodeReport { episode: index, steps, total_steps, episode_return: total, success, interventions, safety_events, reason: reason.into(), learner_updates: 0, seconds: started.elapsed().as_secs_f64(), learned_rewards: (0, 0), deterministic: false };
        on_episode(&report);
        reports.push(report);
        if stop {
            break 'session;
        }
    }
    Ok(reports)
}

fn read_all(folder: &Path, expected: (usize, usize)) -> Result<Vec<Episode>, PracticeError> {
    let mut episodes = Vec::new();
    for path in recording::list_episodes(folder)? {
        let episode = recording::read_episode(&path)?;
        if (episode.header.observation_size, episode.header.action_size) != expected {
            return Err(PracticeError::Mismatch {
                problem: format!(
                    "recorded with observation/action sizes {}/{}, the task has {}/{}",
                    episode.header.observation_size, episode.header.action_size, expected.0, expected.1
                ),
                path,
            });
        }
        if episode.torn_tail_bytes > 0 {
            tracing::warn!(path = %path.display(), bytes = episode.torn_tail_bytes, steps = episode.steps.len(), "episode cut short by a crash: its intact steps are kept");
        }
        episodes.push(episode);
    }
    Ok(episodes)
}

/// Practises on `env` until `settings.total_steps` online steps (counting a
/// resumed run's recorded ones) or the operator stops. `on_episode` sees
/// every finished episode.
pub fn practice<E: PracticeTask>(
    env: &mut E,
    config: SacConfig,
    device: Device,
    operator: &mut dyn Operator,
    settings: &PracticeSettings,
    mut on_episode: impl FnMut(&EpisodeReport),
) -> Result<PracticeReport, PracticeError> {
    let (o, a) = (env.observation_size(), env.action_size());
    if (config.observation_size, config.action_size) != (o, a) {
        return Err(PracticeError::Mismatch { path: settings.run_dir.clone(), problem: format!("learner built for {}/{}, task has {o}/{a}", config.observation_size, config.action_size) });
    }
    let checkpoint = settings.run_dir.join("learner.safetensors");

    let resume = !read_all(&settings.run_dir.join("episodes"), (o, a))?.is_empty();
    let mut learner = LocalLearner::start(config.clone(), device, checkpoint, resume, settings.clone())?;
    let result = practice_with_link(env, config, &mut learner, operator, settings, &mut on_episode);
    let updates = learner.finish();
    let mut report = result?;
    report.learner_updates = updates?;
    Ok(report)
}

/// Practice against any learner link: first the run's recorded demos and
/// episodes are (re)sent, then live practice continues the stream.
pub fn practice_with_link<E: PracticeTask>(
    env: &mut E,
    config: SacConfig,
    link: &mut dyn LearnerLink,
    operator: &mut dyn Operator,
    settings: &PracticeSettings,
    on_episode: &mut dyn FnMut(&EpisodeReport),
) -> Result<PracticeReport, PracticeError> {
    let (o, a) = (env.observation_size(), env.action_size());
    let demos = read_all(&settings.run_dir.join("demos"), (o, a))?;
    let recorded = read_all(&settings.run_dir.join("episodes"), (o, a))?;
    replay_recorded(&demos, &config, &mut |item| link.send(item));
    let resumed_steps = replay_recorded(&recorded, &config, &mut |item| link.send(item));
    let mut rng = Rng::seed(config.seed ^ 0xAC70_0000);
    let mut net = GaussianActor::new(&mut rng, o as i64, a as i64, &config.hidden, false, Device::Cpu);
    if config.zero_actor_output {
        // Until the learner's first weights arrive, act as the learner starts.
        net.zero_output();
    }
    let mut actor = ActorCopy { net, rng, action_size: a };
    let next_episode = recorded.last().map_or(0, |e| e.header.episode + 1);
    let mut report = actor_loop(env, &mut actor, operator, settings, &config, link, next_episode, resumed_steps, on_episode)?;
    report.learner_updates = link.updates();
    Ok(report)
}

/// Makes one write of the run's episodes. While the disk is full, the
/// caller (the actor) waits here: the robot gets no command, so the gate
/// holds it; the log says so once and the write is retried every second
/// until space is freed. Nothing written before is touched, and the step
/// in hand is written when the retry succeeds.
fn durably<T>(write: impl FnMut() -> Result<T, recording::RecordingError>) -> Result<T, recording::RecordingError> {
    recording::retry_while_storage_full(
        write,
        recording::RecordingError::is_storage_full,
        Duration::from_secs(1),
        |e| tracing::warn!("the disk is full ({e}): practice is paused (the gate holds the robot) and retries every second; free some space to go on"),
        |waited| tracing::warn!(paused_s = waited, "the episode is written again: practice resumes"),
    )
}

#[allow(clippy::too_many_arguments)]
/// Hands one released online step on: its record to the episode file, its
/// n-step transitions and an `OnlineStep` to the learner.
fn emit_online(step: AwaitedStep, writer: &mut EpisodeWriter, nstep: &mut NStepWriter, link: &mut dyn LearnerLink, total: &mut f64, released: &mut u64) -> Result<(), PracticeError> {
    durably(|| writer.step(&step.record))?;
    *total += f64::from(step.record.reward);
    *released += 1;
    nstep.push(step.transition, step.over, &mut |t| link.send(ToLearner::Transition { transition: t, demo: step.demo }));
    link.send(ToLearner::OnlineStep);
    Ok(())
}

fn actor_loop<E: PracticeTask>(
    env: &mut E,
    actor: &mut ActorCopy,
    operator: &mut dyn Operator,
    settings: &PracticeSettings,
    config: &SacConfig,
    link: &mut dyn LearnerLink,
    first_episode: u64,
    resumed_steps: u64,
    on_episode: &mut dyn FnMut(&EpisodeReport),
) -> Result<PracticeReport, PracticeError> {
    let (o, a) = (env.observation_size(), env.action_size());
    let (low, high) = (env.action_low().to_vec(), env.action_high().to_vec());
    let episodes_dir = settings.run_dir.join("episodes");
    let started = Instant::now();
    let mut report = PracticeReport {
        episodes: Vec::new(),
        resumed_episodes: first_episode,
        resumed_steps,
        total_steps: resumed_steps,
        learner_updates: 0,
        stopped_by_operator: false,
        reached_success: false,
        confirmations: Vec::new(),
    };
    let mut env_action = Vec::new();
    let mut window: std::collections::VecDeque<Vec<f64>> = std::collections::VecDeque::new();
    // Online steps handed to the learner in this session.
    let mut released = 0u64;
    let mut episode = first_episode;
    let mut learned_successes = std::collections::VecDeque::with_capacity(SUCCESS_WINDOW + 1);
    // (played, succeeded) while deterministic episodes confirm an early stop.
    let mut confirming: Option<(u32, u32)> = None;
    while report.total_steps < settings.total_steps && !report.stopped_by_operator && !report.reached_success {
        let started_at_step = report.total_steps;
        let seed = settings.seed.wrapping_add(episode * 7919);
        let episode_start = unix_ns();
        let header = EpisodeHeader { task: settings.task.clone(), episode, observation_size: o, action_size: a, source: "practice".into(), seed, started_unix_ns: episode_start };
        let mut writer = durably(|| EpisodeWriter::create(&episodes_dir, &header, settings.sync_every_step))?;
        let mut nstep = NStepWriter::new(config.n_step, config.gamma);
        let mut observation = env.reset(seed).to_vec();
        window.clear();
        let (mut steps, mut total, mut interventions, mut safety_events) = (0u64, 0.0, 0u64, 0u64);
        let mut label: Option<bool> = None;
        let mut paused = false;
        let mut wait = RewardWait::default();
        let reason;
        loop {
            if let Some(weights) = link.take_weights() {
                actor.load(&weights)?;
            }
            if let Some(e) = link.failure() {
                return Err(PracticeError::Learner(e));
            }
            // Backpressure: the robot holds while the learner is far behind.
            while link.backlog() > settings.max_backlog {
                if let Some(e) = link.failure() {
                    return Err(PracticeError::Learner(e));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let input = operator.poll(&observation);
            match input.command {
                Some(OperatorCommand::Pause) => paused = true,
                Some(OperatorCommand::Resume) => paused = false,
                Some(OperatorCommand::Success) => label = Some(true),
                Some(OperatorCommand::Failure) => label = Some(false),
                Some(OperatorCommand::Stop) => report.stopped_by_operator = true,
                None => {}
            }
            if report.stopped_by_operator {
                reason = "stopped";
                break;
            }
            if label.is_some() {
                reason = if label == Some(true) { "success" } else { "failure" };
                break;
            }
            if paused {
                // The robot holds (nothing is sent); the episode clock stops.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            let intervention = input.takeover.is_some();
            let policy_action = match &input.takeover {
                Some(human) if human.len() != a => return Err(PracticeError::TakeoverSize { expected: a, got: human.len() }),
                Some(human) => to_policy_action(human, &low, &high),
                None if report.total_steps < settings.warmup_steps => (0..a).map(|_| actor.rng.uniform(-1.0, 1.0)).collect(),
                None => actor.act(&observation, confirming.is_some()),
            };
            to_env_action(&policy_action, &low, &high, &mut env_action);
            let step_number = report.total_steps + 1;
            let result = env.step(&env_action).map_err(|e| PracticeError::Environment { step: step_number, message: e.to_string() })?;
            let events = env.take_safety_events();
            steps += 1;
            report.total_steps += 1;
            interventions += u64::from(intervention);
            safety_events += events.protective;
            let next = env.observation().to_vec();
            let truncated = result.truncated || (!result.terminated && steps >= settings.max_episode_steps);
            let flags = StepFlags { terminated: result.terminated, truncated, intervention, safety_event: events.any(), recovery: false, reflex: events.reflexes > 0 };
            let record = EpisodeStep {
                time_ns: episode_start + steps * 100_000_000,
                observation: observation.iter().map(|&x| x as f32).collect(),
                action: policy_action.iter().map(|&x| x as f32).collect(),
                reward: result.reward as f32,
                next_observation: next.iter().map(|&x| x as f32).collect(),
                flags,
            };
            // Stuck: nothing moved over the window (and not finished).
            window.push_back(next.clone());
            if window.len() > settings.stuck_steps {
                window.pop_front();
            }
            let stuck = settings.stuck_steps > 0
                && window.len() == settings.stuck_steps
                && !result.done()
                && (0..o).all(|k| {
                    let (lo, hi) = window.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), w| (lo.min(w[k]), hi.max(w[k])));
                    hi - lo <= settings.stuck_tolerance
                });
            let over = result.done() || truncated || stuck || report.total_steps >= settings.total_steps;
            let transition = Transition {
                observation: observation.iter().map(|&x| x as f32).collect(),
                action: policy_action.iter().map(|&x| x as f32).collect(),
                reward: result.reward as f32,
                next_observation: next.iter().map(|&x| x as f32).collect(),
                terminal: result.terminated,
                discount: config.gamma as f32,
            };
            wait.queue.push_back(AwaitedStep { step: steps, record, transition, over, demo: intervention, since: Instant::now() });
            // Recovery steps follow in the file: everything before them goes
            // first. In lockstep (simulation) time can stand still, so each
            // step waits for its reward; on a robot only the episode's end does.
            wait.release(env, stuck || settings.lockstep, &mut |s| emit_online(s, &mut writer, &mut nstep, link, &mut total, &mut released))?;
            observation = next;
            if settings.lockstep {
                // One update per released step after warm-up, as synchronous training does.
                // (Not before the replay can fill a batch: the learner could not start.)
                let ready_at = settings.warmup_steps.max((config.batch_size + config.n_step) as u64);
                let wanted = (resumed_steps + released).saturating_sub(ready_at);
                let mut spins = 0u32;
                while link.updates() < wanted && link.failure().is_none() {
                    // A learner over ROS 2 answers in milliseconds: past the first
                    // spins, sleep so its threads get these two cores.
                    spins += 1;
                    if spins < 200 {
                        std::thread::yield_now();
                    } else {
                        std::thread::sleep(Duration::from_micros(100));
                    }
                }
            }
            if stuck {
                for recovery in env.recovery_actions() {
                    let before = env.observation().to_vec();
                    let r = env.step(&recovery).map_err(|e| PracticeError::Environment { step: step_number, message: e.to_string() })?;
                    let events = env.take_safety_events();
                    safety_events += events.protective;
                    let record = EpisodeStep {
                        time_ns: episode_start + (steps + 1) * 100_000_000,
                        observation: before.iter().map(|&x| x as f32).collect(),
                        action: to_policy_action(&recovery, &low, &high).iter().map(|&x| x as f32).collect(),
                        reward: r.reward as f32,
                        next_observation: env.observation().iter().map(|&x| x as f32).collect(),
                        flags: StepFlags { recovery: true, safety_event: events.any(), reflex: events.reflexes > 0, ..StepFlags::default() },
                    };
                    durably(|| writer.step(&record))?;
                }
                reason = "stuck";
                break;
            }
            if result.done() || truncated {
                reason = if env.success() == Some(true) { "success" } else if result.terminated { "failure" } else { "timeout" };
                break;
            }
            if report.total_steps >= settings.total_steps {
                // The budget is spent: the episode is cut here, like a time limit.
                reason = "budget";
                break;
            }
        }
        wait.release(env, true, &mut |s| emit_online(s, &mut writer, &mut nstep, link, &mut total, &mut released))?;
        let success = label.or(env.success().map(|s| s && reason == "success"));
        let outcome = EpisodeOutcome { steps, episode_return: total, success, interventions, safety_events, reason: reason.into() };
        durably(|| writer.finish(&outcome))?;
        let episode_report = EpisodeReport {
            episode,
            steps,
            total_steps: report.total_steps,
            episode_return: total,
            success,
            interventions,
            safety_events,
            reason: reason.into(),
            learner_updates: link.updates(),
            seconds: started.elapsed().as_secs_f64(),
            learned_rewards: (wait.joined, wait.missing),
            deterministic: confirming.is_some(),
        };
        on_episode(&episode_report);
        report.episodes.push(episode_report);
        episode += 1;
        if let Some(target) = settings.stop_at_success {
            let succeeded = report.episodes.last().is_some_and(|e| e.success == Some(true));
            if let Some((played, successes)) = confirming.as_mut() {
                *played += 1;
                *successes += u32::from(succeeded);
                if *played == CONFIRM_EPISODES {
                    let successes = *successes;
                    report.confirmations.push((report.total_steps, successes));
                    confirming = None;
                    if f64::from(successes) >= target * f64::from(CONFIRM_EPISODES) {
                        tracing::info!(successes, of = CONFIRM_EPISODES, total_steps = report.total_steps, "the deterministic policy confirms the success target: practice ends here");
                        report.reached_success = true;
                    } else {
                        // The mean action is not yet what the samples were: practise on, count afresh.
                        tracing::info!(successes, of = CONFIRM_EPISODES, "the deterministic policy fell short of the success target: practice goes on");
                        learned_successes.clear();
                    }
                }
            } else {
                // Only episodes the learner's policy acted in count (not the random warm-up's).
                if started_at_step >= settings.warmup_steps {
                    learned_successes.push_back(succeeded);
                    if learned_successes.len() > SUCCESS_WINDOW {
                        learned_successes.pop_front();
                    }
                }
                let successes = learned_successes.iter().filter(|s| **s).count();
                if learned_successes.len() == SUCCESS_WINDOW && successes as f64 >= target * SUCCESS_WINDOW as f64 {
                    tracing::info!(successes, window = SUCCESS_WINDOW, total_steps = report.total_steps, "practice reached its success target: {CONFIRM_EPISODES} episodes with the deterministic policy confirm it");
                    confirming = Some((0, 0));
                }
            }
        }
    }
    Ok(report)
}

/// Runs `episodes` evaluation episodes of `policy` (deterministic actions
/// in [-1, 1]), each recorded under `folder` with source `eval`. Returns
/// (returns, successes).
pub fn evaluate_recorded<E: PracticeTask>(
    env: &mut E,
    task: &str,
    folder: &Path,
    episodes: u32,
    seed: u64,
    mut policy: impl FnMut(&[f64]) -> Vec<f64>,
) -> Result<(Vec<f64>, u32), PracticeError> {
    let first = recording::list_episodes(folder)?.len() as u64;
    let mut act = |obs: &[f64], _: bool| policy(obs);
    let (mut returns, mut successes) = (Vec::new(), 0);
    for e in 0..u64::from(episodes) {
        let (total, success) = record_one_episode(env, folder, task, "eval", first + e, seed + e, false, &mut act)?;
        successes += u32::from(success.unwrap_or(false));
        returns.push(total);
    }
    Ok((returns, successes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_demos_join_batches_however_few_and_takeovers_alone_only_once_a_batch_is_full() {
        let mut recorded = DemoMix::new(256);
        recorded.practice_starts(150);
        assert!(recorded.ready(150), "150 scripted demo transitions join from the first update");
        assert!(recorded.ready(151));
        let mut takeovers = DemoMix::new(256);
        takeovers.practice_starts(0);
        assert!(!takeovers.ready(0));
        assert!(!takeovers.ready(40), "40 intervention steps must not make half of every batch");
        assert!(takeovers.ready(256));
    }

    /// An actor of another task (or with a residual base the learner was
    /// not built for) is refused by name, not by a tensor panic.
    #[test]
    fn a_learner_refuses_transitions_of_another_size_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let learner = rrl_types::config::LearnerConfig { hidden: vec![8], batch_size: 4, ..Default::default() };
        let config = SacConfig::from_learner(&learner, 14, 4, 1);
        let settings = PracticeSettings {
            task: "t".into(),
            total_steps: 10,
            warmup_steps: 0,
            max_episode_steps: 10,
            stuck_steps: 0,
            stuck_tolerance: 0.0,
            seed: 0,
            run_dir: dir.path().to_path_buf(),
            sync_every_step: false,
            lockstep: false,
            publish_every: 1,
            checkpoint_every: 100,
            replay_capacity: 100,
            max_backlog: 100,
            stop_at_success: None,
        };
        let (sender, inbox) = channel::unbounded();
        let fits = Transition { observation: vec![0.0; 14], action: vec![0.0; 4], reward: 0.0, next_observation: vec![0.0; 14], terminal: false, discount: 0.99 };
        let residual = Transition { observation: vec![0.0; 18], next_observation: vec![0.0; 18], ..fits.clone() };
        sender.send(ToLearner::Transition { transition: fits, demo: false }).unwrap();
        sender.send(ToLearner::Transition { transition: residual, demo: false }).unwrap();
        drop(sender);
        let shared = LearnerShared::new();
        let err = run_learner(config, Device::Cpu, dir.path().join("learner.safetensors"), false, settings, inbox, shared.clone()).unwrap_err().to_string();
        assert!(err.contains("18 observation and 4 action values") && err.contains("built for 14 and 4"), "{err}");
        assert_eq!(shared.error.lock().unwrap().as_deref(), Some(err.as_str()), "the actors learn why");
    }
}
