//! The learner side: the ordered stream an actor sends, the weights it gets
//! back, the link between them, and the learner thread itself (SAC, replay
//! and demo buffers, updates, checkpoints).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam::channel::{self, Receiver, RecvTimeoutError, Sender};
use crossbeam::queue::ArrayQueue;
use tch::{Device, Tensor};

use super::{PracticeError, PracticeSettings};
use crate::nets::GaussianActor;
use crate::replay::{ReplayBuffer, Transition};
use crate::sac::{Sac, SacConfig};

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

/// The update's losses and temperature as one sum, read once (one device
/// sync): a NaN or an infinity in any of them stops the learner, naming
/// the update and each value.
fn check_finite(stats: &crate::sac::UpdateStats, update: u64) -> Result<(), PracticeError> {
    let sum = (&stats.critic_loss + &stats.actor_loss + &stats.temperature).double_value(&[]);
    if sum.is_finite() {
        return Ok(());
    }
    let (critic, actor, temperature) = (stats.critic_loss.double_value(&[]), stats.actor_loss.double_value(&[]), stats.temperature.double_value(&[]));
    Err(PracticeError::Learner(format!(
        "the learner is no longer finite at update {update} (critic loss {critic}, actor loss {actor}, temperature {temperature}): it stops; no weights of that update reached an actor and the last checkpoint is the last good one"
    )))
}

/// The actor's weights for the actors, refused when any is not finite.
fn finite_weights(actor: &GaussianActor, update: u64) -> Result<ActorWeights, PracticeError> {
    let weights = weights_of(actor);
    if weights.0.iter().all(|t| t.isfinite().all().int64_value(&[]) != 0) {
        Ok(weights)
    } else {
        Err(PracticeError::Learner(format!("the actor's weights are no longer finite at update {update}: the learner stops; the last checkpoint is the last good one")))
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
            // Every update is checked before anything of it leaves the
            // learner: no weights of a bad step reach an actor, and the
            // last checkpoint stays the last good one.
            check_finite(&stats, sac.updates)?;
            shared.updates.store(sac.updates, Ordering::Release);
            if sac.updates % settings.publish_every.max(1) == 0 {
                shared.weights.force_push(finite_weights(&sac.actor, sac.updates)?);
            }
            if sac.updates - last_checkpoint >= settings.checkpoint_every.max(1) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A small learner's settings, run folder `run_dir`.
    fn learner_settings(run_dir: &std::path::Path) -> PracticeSettings {
        PracticeSettings {
            task: "t".into(),
            total_steps: 10,
            warmup_steps: 0,
            max_episode_steps: 10,
            stuck_steps: 0,
            stuck_tolerance: 0.0,
            seed: 0,
            run_dir: run_dir.to_path_buf(),
            sync_every_step: false,
            lockstep: false,
            publish_every: 1,
            checkpoint_every: 100,
            replay_capacity: 100,
            max_backlog: 100,
            stop_at_success: None,
            human_reward: false,
            shaping: None,
        }
    }

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
        let settings = learner_settings(dir.path());
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

    /// A learner that goes NaN (here: rewards that are NaN) stops on the
    /// very update, naming it and its losses; the weights the actors hold
    /// and the checkpoint on disk are the last finite ones.
    #[test]
    fn a_learner_that_goes_nan_stops_on_that_update_and_keeps_the_last_good_weights() {
        let dir = tempfile::tempdir().unwrap();
        let learner_config = || rrl_types::config::LearnerConfig { hidden: vec![8], batch_size: 4, ..Default::default() };
        let config = SacConfig::from_learner(&learner_config(), 3, 2, 1);
        let settings = PracticeSettings { total_steps: 1_000, checkpoint_every: 2, replay_capacity: 1_000, ..learner_settings(dir.path()) };
        let (sender, inbox) = channel::unbounded();
        let step = |reward: f32| Transition { observation: vec![0.1, -0.2, 0.3], action: vec![0.5, -0.5], reward, next_observation: vec![0.2, -0.1, 0.3], terminal: false, discount: 0.99 };
        let checkpoint = dir.path().join("learner.safetensors");
        let shared = LearnerShared::new();
        let (thread_shared, thread_checkpoint) = (shared.clone(), checkpoint.clone());
        let learner = std::thread::spawn(move || run_learner(config, Device::Cpu, thread_checkpoint, false, settings, inbox, thread_shared));
        // Finite practice first, until a checkpoint exists.
        for _ in 0..8 {
            sender.send(ToLearner::Transition { transition: step(-1.0), demo: false }).unwrap();
            sender.send(ToLearner::OnlineStep).unwrap();
        }
        let started = std::time::Instant::now();
        while shared.updates.load(Ordering::Acquire) < 8 {
            assert!(started.elapsed() < Duration::from_secs(60), "the finite updates did not happen");
            std::thread::sleep(Duration::from_millis(10));
        }
        // Then every new transition's reward is NaN: a batch soon holds one.
        for _ in 0..400 {
            if sender.send(ToLearner::Transition { transition: step(f32::NAN), demo: false }).is_err() || sender.send(ToLearner::OnlineStep).is_err() {
                break;
            }
        }
        let err = learner.join().unwrap().unwrap_err().to_string();
        assert!(err.contains("no longer finite at update") && err.contains("critic loss NaN"), "{err}");
        let failed_at: u64 = err.split("at update ").nth(1).and_then(|rest| rest.split(' ').next()).and_then(|n| n.parse().ok()).expect("the update is named");
        // The checkpoint on disk is a finite one from before that update.
        let mut restored = Sac::new(SacConfig::from_learner(&learner_config(), 3, 2, 1), Device::Cpu);
        crate::checkpoint::load(&mut restored, &checkpoint).unwrap();
        assert!(restored.updates >= 8 && restored.updates < failed_at, "checkpoint of update {} (failed at {failed_at})", restored.updates);
        assert!(weights_of(&restored.actor).0.iter().all(|t| t.isfinite().all().int64_value(&[]) != 0));
        let weights = shared.weights.pop().expect("the last published weights");
        assert!(weights.0.iter().all(|t| t.isfinite().all().int64_value(&[]) != 0), "only finite weights reach the actors");
    }
}
