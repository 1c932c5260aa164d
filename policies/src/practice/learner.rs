//! The learner side: the ordered stream an actor sends, the weights it gets
//! back, the link between them, and the learner thread itself (SAC, replay
//! and demo buffers, updates, checkpoints).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam::channel::{self, Receiver, RecvTimeoutError, Sender};
use crossbeam::queue::ArrayQueue;
use tch::{Device, Tensor};

use rrl_types::FrameLayout;

use super::{PracticeError, PracticeSettings};
use crate::pixels::{FrameId, PixelConfig, PixelReplay};
use crate::replay::Transition;
use crate::sac::{Sac, SacConfig};
use crate::train::Replay;

/// What an actor sends its learner, in one ordered stream.
#[derive(Debug, Clone, PartialEq)]
pub enum ToLearner {
    /// An n-step transition; a pixel task's names the frames of its
    /// observation and next observation by their `Frames::index`.
    Transition { transition: Transition, demo: bool, frames: Option<(u64, u64)> },
    /// One observation's camera frames (RGB, laid out as `layout` says),
    /// sent before the transitions that name them. `index` counts the
    /// stream's frames from 0, so a resent stream names the same frames.
    Frames { index: u64, layout: FrameLayout, rgb: Vec<u8> },
    /// Counts an online environment step (for the update budget).
    OnlineStep,
    /// The safety gate's recorded ticks of one step of `episode` of actor
    /// `actor`, for the risk critic trained during practice. Outside the
    /// ordered stream over ROS 2 (losing some is harmless, and a restarted
    /// actor's stream need not reproduce them); the learner node fills in
    /// the sending actor.
    GateTicks { actor: u64, episode: u64, ticks: Vec<rrl_types::GateTick> },
}

/// Actor weights as CPU tensors: the actor's trunk (`GaussianActor::trunk.params`
/// order), then a pixel learner's trained encoder parameters (`ConvEncoder::params` order).
pub struct ActorWeights(pub Vec<Tensor>);

/// Between the learner thread and whoever relays for it.
pub struct LearnerShared {
    pub updates: AtomicU64,
    /// Items of the stream the learner has taken in.
    pub received: AtomicU64,
    /// Practice transitions (not demos) that ended their episode as
    /// terminal, and of those the ones with a positive reward (a success):
    /// what a labelled episode's end did reach the learner.
    pub terminals: AtomicU64,
    pub rewarded_terminals: AtomicU64,
    /// The updates of the checkpoint the learner resumed from (0: a fresh learner).
    pub resumed_from: AtomicU64,
    /// The newest actor weights and the update they were taken at (one
    /// slot, newest wins): a relay labels them with that update, not with
    /// the learner's count as it reads them.
    pub weights: ArrayQueue<(u64, ActorWeights)>,
    /// The newest risk critic for the gate (one slot, newest wins).
    pub risk_critic: ArrayQueue<super::PublishedCritic>,
    pub error: std::sync::Mutex<Option<String>>,
    /// Asked by the actor: no updates while the deterministic policy
    /// confirms an early stop (`LearnerLink::hold_updates`).
    pub hold: AtomicBool,
    /// The learner's answer: it holds (its weights as they stand are
    /// published), or it goes on.
    pub held: AtomicBool,
}

impl LearnerShared {
    pub fn new() -> Arc<LearnerShared> {
        Arc::new(LearnerShared {
            updates: AtomicU64::new(0),
            received: AtomicU64::new(0),
            terminals: AtomicU64::new(0),
            rewarded_terminals: AtomicU64::new(0),
            resumed_from: AtomicU64::new(0),
            weights: ArrayQueue::new(1),
            risk_critic: ArrayQueue::new(1),
            error: std::sync::Mutex::new(None),
            hold: AtomicBool::new(false),
            held: AtomicBool::new(false),
        })
    }

    /// Asks the learner thread to hold its updates (or go on) and waits for
    /// its answer while `alive` says it can still give one; whether it
    /// answered. It finishes the update in hand first.
    pub fn hold_and_wait(&self, hold: bool, alive: impl Fn() -> bool) -> bool {
        self.hold.store(hold, Ordering::Release);
        while self.held.load(Ordering::Acquire) != hold && self.error.lock().expect("error slot").is_none() && alive() {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.held.load(Ordering::Acquire) == hold
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
    /// The newest risk critic trained during practice, if one came.
    fn take_risk_critic(&mut self) -> Option<super::PublishedCritic> {
        None
    }
    /// Set when the learner failed for good.
    fn failure(&self) -> Option<String>;
    /// Items sent but not yet confirmed by the learner.
    fn backlog(&self) -> u64 {
        0
    }
    /// Holds the learner's updates (`true`) while the deterministic policy
    /// confirms an early stop, or lets them go on (`false`). A learner that
    /// holds publishes its weights as they stand before it answers, so the
    /// policy confirmed is the one it checkpoints. `false`: this learner
    /// does not hold (a learner node of another process may serve other
    /// actors).
    fn hold_updates(&mut self, hold: bool) -> bool {
        let _ = hold;
        false
    }
}

/// Where the learner keeps the risk critic it trains during practice, in
/// the run folder (the gate's format).
pub const RISK_CRITIC_FILE: &str = "risk_critic.safetensors";

/// The learner as a thread of this process.
pub struct LocalLearner {
    sender: Option<Sender<ToLearner>>,
    /// Items sent so far.
    sent: u64,
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
        Ok(LocalLearner { sender: Some(sender), sent: 0, shared, thread: Some(thread) })
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
            self.sent += 1;
        }
    }
    fn updates(&self) -> u64 {
        self.shared.updates.load(Ordering::Acquire)
    }
    fn take_weights(&mut self) -> Option<ActorWeights> {
        self.shared.weights.pop().map(|(_, weights)| weights)
    }
    fn take_risk_critic(&mut self) -> Option<super::PublishedCritic> {
        self.shared.risk_critic.pop()
    }
    fn failure(&self) -> Option<String> {
        self.shared.error.lock().expect("error slot").clone()
    }
    /// Items queued for the learner thread (a resumed pixel run's frames
    /// must not pile up in the queue faster than it stores them).
    fn backlog(&self) -> u64 {
        self.sent.saturating_sub(self.shared.received.load(Ordering::Acquire))
    }
    /// Waits for the learner thread's answer (between episodes, never within one).
    fn hold_updates(&mut self, hold: bool) -> bool {
        let thread = &self.thread;
        self.shared.hold_and_wait(hold, || thread.as_ref().is_some_and(|t| !t.is_finished()))
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
fn finite_weights(sac: &Sac, update: u64) -> Result<ActorWeights, PracticeError> {
    let weights = weights_of(sac);
    if weights.0.iter().all(|t| t.isfinite().all().int64_value(&[]) != 0) {
        Ok(weights)
    } else {
        Err(PracticeError::Learner(format!("the actor's weights are no longer finite at update {update}: the learner stops; the last checkpoint is the last good one")))
    }
}

fn weights_of(sac: &Sac) -> ActorWeights {
    let encoder = sac.encoder.iter().flat_map(|e| e.params("encoder"));
    ActorWeights(sac.actor.trunk.params("actor").into_iter().chain(encoder).map(|p| p.tensor.detach().to_device(Device::Cpu).copy()).collect())
}

/// The layout `sac`'s encoder takes, if it sees cameras.
fn pixel_layout(sac: &Sac) -> Option<FrameLayout> {
    sac.config.pixels.as_ref().map(PixelConfig::layout)
}

fn describe(layout: Option<FrameLayout>) -> String {
    match layout {
        Some(l) => format!("{l} RGB"),
        None => "no cameras (state only)".into(),
    }
}

/// The learner's frame stores: every frame the stream brings goes into the
/// online store; a demo transition's frames are copied into the demo store,
/// a frame that was the newest copy reused (1-step transitions share it).
/// Reusing only the newest keeps the demo store's frame ids growing with
/// its transitions, which its eviction of old frames relies on.
#[derive(Default)]
struct FrameStores {
    /// The newest copy: (stream index, demo store id).
    newest_copy: Option<(u64, FrameId)>,
}

impl FrameStores {

    /// Stores the stream's frame `index`, which must be the next one.
    fn add(&mut self, replay: &mut Replay, index: u64, layout: FrameLayout, rgb: &[u8], expected: Option<FrameLayout>) -> Result<(), PracticeError> {
        let Replay::Pixels(store) = replay else {
            return Err(PracticeError::Learner(format!("the actor sends camera frames ({}), this learner sees {}: start both from the same launch file (its cameras and learner.pixels)", describe(Some(layout)), describe(None))));
        };
        if Some(layout) != expected || rgb.len() != layout.bytes() {
            return Err(PracticeError::Learner(format!("the actor's frames are {} ({} bytes), this learner's encoder takes {}: start both from the same launch file", describe(Some(layout)), rgb.len(), describe(expected))));
        }
        if index != store.frames_added() {
            return Err(PracticeError::Learner(format!("frame {index} of the stream arrived where frame {} was due", store.frames_added())));
        }
        store.add_frame(rgb);
        Ok(())
    }

    /// The stored ids of a transition's frames (copied into `demos` for a demo).
    fn of(&mut self, replay: &Replay, demos: &mut Replay, frames: Option<(u64, u64)>, demo: bool) -> Result<(Option<FrameId>, Option<FrameId>, Option<FrameId>, Option<FrameId>), PracticeError> {
        let Replay::Pixels(store) = replay else {
            return match frames {
                None => Ok((None, None, None, None)),
                Some(_) => Err(PracticeError::Learner("a transition names camera frames, this learner sees no cameras: start both from the same launch file".into())),
            };
        };
        let Some((first, next)) = frames else {
            return Err(PracticeError::Learner(format!("a transition without camera frames reached a learner whose encoder takes {}: start both from the same launch file", describe(Some(store.config().layout())))));
        };
        let stored = |index: u64| store.stored_frame(index).ok_or_else(|| PracticeError::Learner(format!("a transition names frame {index}, which the stream has not sent (or which left the store)")));
        let (frame, next_frame) = (stored(first)?, stored(next)?);
        let (mut demo_frame, mut demo_next) = (None, None);
        if let (true, Replay::Pixels(demo_store)) = (demo, demos) {
            demo_frame = Some(self.copy(store, demo_store, first, frame));
            demo_next = Some(self.copy(store, demo_store, next, next_frame));
        }
        Ok((Some(frame), Some(next_frame), demo_frame, demo_next))
    }

    fn copy(&mut self, store: &PixelReplay, demos: &mut PixelReplay, index: u64, id: FrameId) -> FrameId {
        if let Some((_, copied)) = self.newest_copy.filter(|(i, copied)| *i == index && demos.frame(*copied).is_some()) {
            return copied;
        }
        let copied = demos.add_record(store.frame(id).expect("checked: stored"));
        self.newest_copy = Some((index, copied));
        copied
    }
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
        // The actors wrap it as the learner's failure: the reason alone.
        let reason = match e {
            PracticeError::Learner(reason) => reason.clone(),
            other => other.to_string(),
        };
        *shared.error.lock().expect("error slot") = Some(reason);
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
    let mut sac = Sac::try_new(config.clone(), device).map_err(|e| PracticeError::Learner(e.to_string()))?;
    if resume && checkpoint.exists() {
        crate::checkpoint::load(&mut sac, &checkpoint)?;
        shared.resumed_from.store(sac.updates, Ordering::Release);
    }
    shared.updates.store(sac.updates, Ordering::Release);
    shared.weights.force_push((sac.updates, weights_of(&sac)));
    let layout = pixel_layout(&sac);
    let encoder_error = |e: crate::pixels::EncoderError| PracticeError::Learner(e.to_string());
    let mut replay = Replay::for_learner(&sac, settings.replay_capacity).map_err(encoder_error)?;
    let mut demos = Replay::for_learner(&sac, settings.replay_capacity).map_err(encoder_error)?;
    let mut frame_stores = FrameStores::default();
    let mut online_steps = 0u64;
    let mut demo_mix = DemoMix::new(config.batch_size);
    let mut open = true;
    let mut last_checkpoint = sac.updates;
    let mut risk = settings.risk_critic.clone().map(super::online_risk::OnlineRisk::new);
    while open {
        let hold = shared.hold.load(Ordering::Acquire);
        if hold != shared.held.load(Ordering::Acquire) {
            if hold {
                // The policy the actor confirms is this one, and so is the checkpoint's.
                shared.weights.force_push((sac.updates, finite_weights(&sac, sac.updates)?));
            }
            shared.held.store(hold, Ordering::Release);
        }
        // Take everything waiting; block briefly only when there is no update to do.
        let budget = online_steps.saturating_sub(settings.warmup_steps);
        let can_update = !hold && sac.updates < budget && replay.len() >= config.batch_size;
        // The risk critic: one update per online step, from the first
        // labelled ticks on (warm-up included); none while held, so that a
        // confirmation runs under the gate it started with.
        let can_update_risk = !hold && risk.as_ref().is_some_and(|r| r.updates < online_steps && r.ready());
        let message = if can_update || can_update_risk {
            inbox.try_recv().map_err(|e| e.is_disconnected())
        } else {
            inbox.recv_timeout(Duration::from_millis(20)).map_err(|e| e == RecvTimeoutError::Disconnected)
        };
        if message.is_ok() {
            shared.received.fetch_add(1, Ordering::Release);
        }
        match message {
            Ok(ToLearner::Frames { index, layout: sent, rgb }) => {
                frame_stores.add(&mut replay, index, sent, &rgb, layout)?;
                continue;
            }
            Ok(ToLearner::Transition { transition, demo, frames }) => {
                let (o, a) = (transition.observation.len(), transition.action.len());
                if (o, a, transition.next_observation.len()) != (config.observation_size, config.action_size, config.observation_size) {
                    return Err(PracticeError::Learner(format!(
                        "a transition with {o} observation and {a} action values reached a learner built for {} and {}: do the actors practise the same task (and the same residual base) as the learner's launch file names?",
                        config.observation_size, config.action_size
                    )));
                }
                let (frame, next_frame, demo_frame, demo_next) = frame_stores.of(&replay, &mut demos, frames, demo)?;
                if demo {
                    demos.push(transition.clone(), (demo_frame, demo_next));
                } else if transition.terminal {
                    shared.terminals.fetch_add(1, Ordering::Relaxed);
                    shared.rewarded_terminals.fetch_add(u64::from(transition.reward > 0.0), Ordering::Relaxed);
                }
                replay.push(transition, (frame, next_frame));
                continue;
            }
            Ok(ToLearner::GateTicks { actor, episode, ticks }) => {
                if let Some(risk) = &mut risk {
                    risk.add(actor, episode, &ticks).map_err(|e| PracticeError::Learner(format!("gate ticks of episode {episode} of actor {actor}: {e}")))?;
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
        if let (true, Some(risk)) = (can_update_risk, &mut risk) {
            if let Some(critic) = risk.update(sac.updates) {
                tracing::debug!(update = critic.update, critic_updates = critic.critic_updates, acting = critic.acting, precision = critic.precision, recall = critic.recall, "risk critic published to the gate");
                let _ = shared.risk_critic.force_push(critic);
                // Kept beside the checkpoint: after practice it is a launch file's `risk_critic.weights`.
                match risk.export(&settings.run_dir.join(RISK_CRITIC_FILE)) {
                    Err(e) if e.is_storage_full() => tracing::warn!("{e}: the disk is full; the risk critic is written again at its next publication"),
                    other => other?,
                }
            }
        }
        if can_update {
            let demos_ready = demo_mix.ready(demos.len());
            let stats = replay.update(&mut sac, if demos_ready { Some(&mut demos) } else { None });
            // Every update is checked before anything of it leaves the
            // learner: no weights of a bad step reach an actor, and the
            // last checkpoint stays the last good one.
            check_finite(&stats, sac.updates)?;
            shared.updates.store(sac.updates, Ordering::Release);
            if sac.updates % settings.publish_every.max(1) == 0 {
                shared.weights.force_push((sac.updates, finite_weights(&sac, sac.updates)?));
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
    shared.weights.force_push((sac.updates, weights_of(&sac)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rrl_types::GateTick;

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
            confirm_episodes: 10,
            human_reward: false,
            labels_override: false,
            shaping: None,
            risk_critic: None,
            live: None,
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

    /// A held learner trains no risk critic either (a confirmation runs
    /// under one gate); let go, the critic catches up on the steps it held
    /// through and publishes.
    #[test]
    fn a_held_learner_publishes_no_risk_critic_until_let_go() {
        let dir = tempfile::tempdir().unwrap();
        let learner = rrl_types::config::LearnerConfig { hidden: vec![8], batch_size: 4, ..Default::default() };
        let config = SacConfig::from_learner(&learner, 3, 2, 1);
        let online = rrl_types::config::OnlineRiskCriticConfig { publish_every: 5, hidden: vec![8], ..Default::default() };
        let risk_critic = Some(super::super::OnlineRiskSettings { config: online, threshold: 0.5, seed: 1 });
        let settings = PracticeSettings { risk_critic, ..learner_settings(dir.path()) };
        let shared = LearnerShared::new();
        shared.hold.store(true, Ordering::Release);
        let (sender, inbox) = channel::unbounded();
        let thread_shared = shared.clone();
        let thread = std::thread::spawn(move || run_learner(config, Device::Cpu, dir.path().join("learner.safetensors"), false, settings, inbox, thread_shared));
        // Episode 0 (trained on): a violation every fourth tick, 40 labelled in all.
        let ticks: Vec<GateTick> = (0..160).map(|index| {
            let mut tick = GateTick { index, width: 2, violation: index % 4 == 3, ..GateTick::default() };
            tick.input[..2].copy_from_slice(&[(index % 4) as f32, 0.5]);
            tick
        }).collect();
        sender.send(ToLearner::GateTicks { actor: 0, episode: 0, ticks }).unwrap();
        for _ in 0..20 {
            sender.send(ToLearner::OnlineStep).unwrap();
        }
        let started = std::time::Instant::now();
        while shared.received.load(Ordering::Acquire) < 21 || !shared.held.load(Ordering::Acquire) {
            assert!(started.elapsed() < Duration::from_secs(60), "the learner took nothing in");
            std::thread::sleep(Duration::from_millis(1));
        }
        // Nothing marks an update that does not happen: watch 30 times as
        // long as the let-go learner below takes to publish (5-11 ms here).
        std::thread::sleep(Duration::from_millis(300));
        assert!(shared.risk_critic.pop().is_none(), "a held learner published a risk critic");
        assert!(shared.hold_and_wait(false, || !thread.is_finished()));
        while shared.risk_critic.is_empty() {
            assert!(started.elapsed() < Duration::from_secs(60) && !thread.is_finished(), "no risk critic once let go");
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(sender);
        thread.join().unwrap().unwrap();
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
        sender.send(ToLearner::Transition { transition: fits, demo: false, frames: None }).unwrap();
        sender.send(ToLearner::Transition { transition: residual, demo: false, frames: None }).unwrap();
        drop(sender);
        let shared = LearnerShared::new();
        let err = run_learner(config, Device::Cpu, dir.path().join("learner.safetensors"), false, settings, inbox, shared.clone()).unwrap_err().to_string();
        assert!(err.contains("18 observation and 4 action values") && err.contains("built for 14 and 4"), "{err}");
        let told = shared.error.lock().unwrap().clone().expect("the actors learn why");
        assert_eq!(format!("the learner thread failed: {told}"), err, "the actors learn why, said once");
    }

    /// A learner that goes NaN (here: rewards that are NaN) stops on the
    /// very update, naming it and its losses; the weights the actors hold
    /// and the checkpoint on disk are the last finite ones.
    /// Fault matrix: NaN learner | NaN rewards fed to the learner thread | stops on that update | no weights of that update published; the checkpoint on disk is the last finite one
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
            sender.send(ToLearner::Transition { transition: step(-1.0), demo: false, frames: None }).unwrap();
            sender.send(ToLearner::OnlineStep).unwrap();
        }
        let started = std::time::Instant::now();
        while shared.updates.load(Ordering::Acquire) < 8 {
            assert!(started.elapsed() < Duration::from_secs(60), "the finite updates did not happen");
            std::thread::sleep(Duration::from_millis(10));
        }
        // Then every new transition's reward is NaN: a batch soon holds one.
        for _ in 0..400 {
            if sender.send(ToLearner::Transition { transition: step(f32::NAN), demo: false, frames: None }).is_err() || sender.send(ToLearner::OnlineStep).is_err() {
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
        assert!(weights_of(&restored).0.iter().all(|t| t.isfinite().all().int64_value(&[]) != 0));
        let (_, weights) = shared.weights.pop().expect("the last published weights");
        assert!(weights.0.iter().all(|t| t.isfinite().all().int64_value(&[]) != 0), "only finite weights reach the actors");
    }

    /// An actor whose cameras differ from the learner's encoder is refused
    /// naming both layouts; so is an actor sending frames to a state
    /// learner, and a pixel learner given transitions without frames.
    #[test]
    fn a_learner_refuses_frames_of_another_camera_layout_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let learner = rrl_types::config::LearnerConfig { hidden: vec![8], batch_size: 4, ..Default::default() };
        let pixels = crate::pixels::PixelConfig { cameras: 2, height: 16, width: 16, feature_size: 4, shift_pad: 1, filters: 4, pretrained: None };
        let run = |config: SacConfig, items: Vec<ToLearner>| {
            let (sender, inbox) = channel::unbounded();
            for item in items {
                sender.send(item).unwrap();
            }
            drop(sender);
            run_learner(config, Device::Cpu, dir.path().join("learner.safetensors"), false, learner_settings(dir.path()), inbox, LearnerShared::new()).map(|_| ()).unwrap_err().to_string()
        };
        let one_camera = FrameLayout { cameras: 1, height: 16, width: 16 };
        let frames = ToLearner::Frames { index: 0, layout: one_camera, rgb: vec![7; one_camera.bytes()] };
        let mut pixel_config = SacConfig::from_learner(&learner, 3, 2, 1);
        pixel_config.pixels = Some(pixels.clone());
        let err = run(pixel_config.clone(), vec![frames.clone()]);
        assert!(err.contains("1 camera(s) of 16x16") && err.contains("2 camera(s) of 16x16"), "{err}");
        let err = run(SacConfig::from_learner(&learner, 3, 2, 1), vec![frames]);
        assert!(err.contains("sends camera frames (1 camera(s) of 16x16 RGB)") && err.contains("no cameras (state only)"), "{err}");
        let step = Transition { observation: vec![0.0; 3], action: vec![0.0; 2], reward: 0.0, next_observation: vec![0.0; 3], terminal: false, discount: 0.99 };
        let err = run(pixel_config.clone(), vec![ToLearner::Transition { transition: step.clone(), demo: false, frames: None }]);
        assert!(err.contains("without camera frames") && err.contains("2 camera(s) of 16x16"), "{err}");
        // Frames out of order (one lost) are named, not stored under the wrong number.
        let two = FrameLayout { cameras: 2, height: 16, width: 16 };
        let err = run(pixel_config, vec![ToLearner::Frames { index: 1, layout: two, rgb: vec![0; two.bytes()] }]);
        assert!(err.contains("frame 1 of the stream arrived where frame 0 was due"), "{err}");
    }

    /// Takeover bursts with 3-step returns and a small replay: the demo
    /// frame store wraps many times while batches draw from it, and every
    /// sampled demo transition still has both its frames.
    #[test]
    fn demo_frames_copied_from_short_bursts_stay_sampleable_as_the_store_wraps() {
        let dir = tempfile::tempdir().unwrap();
        let learner = rrl_types::config::LearnerConfig { hidden: vec![8], batch_size: 4, n_step: 3, ..Default::default() };
        let mut config = SacConfig::from_learner(&learner, 1, 1, 1);
        config.pixels = Some(crate::pixels::PixelConfig { cameras: 1, height: 16, width: 16, feature_size: 4, shift_pad: 0, filters: 4, pretrained: None });
        let layout = FrameLayout { cameras: 1, height: 16, width: 16 };
        let settings = PracticeSettings { total_steps: 10_000, replay_capacity: 16, ..learner_settings(dir.path()) };
        let (sender, inbox) = channel::unbounded();
        let shared = LearnerShared::new();
        let thread_shared = shared.clone();
        let checkpoint = dir.path().join("learner.safetensors");
        let learner = std::thread::spawn(move || run_learner(config, Device::Cpu, checkpoint, false, settings, inbox, thread_shared));
        let step = Transition { observation: vec![0.0], action: vec![0.5], reward: 1.0, next_observation: vec![0.0], terminal: false, discount: 0.99 };
        let mut index = 0u64;
        for episode in 0..60u64 {
            // Five steps: six frames, the n-step transitions (0,3) (1,4) (2,5) (3,5) (4,5); takeovers every other episode.
            let first = index;
            for k in 0..6 {
                sender.send(ToLearner::Frames { index, layout, rgb: vec![(episode + k) as u8; layout.bytes()] }).unwrap();
                index += 1;
            }
            for (a, b) in [(0, 3), (1, 4), (2, 5), (3, 5), (4, 5)] {
                sender.send(ToLearner::Transition { transition: step.clone(), demo: episode % 2 == 0, frames: Some((first + a, first + b)) }).unwrap();
                sender.send(ToLearner::OnlineStep).unwrap();
            }
            // Batches are drawn between the episodes, as in practice.
            let wanted = 5 * (episode + 1) - 4;
            let started = std::time::Instant::now();
            while shared.updates.load(Ordering::Acquire) < wanted && shared.error.lock().unwrap().is_none() {
                assert!(started.elapsed() < Duration::from_secs(60), "the learner stopped updating");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        drop(sender);
        learner.join().expect("the learner thread ends without a panic").unwrap();
        assert!(shared.updates.load(Ordering::Acquire) >= 290, "the learner updated from both stores all along");
    }
}
