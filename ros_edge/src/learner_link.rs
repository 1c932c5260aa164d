//! Actor ↔ learner over ROS 2, for learners on another process or machine.
//!
//! Topics (all `std_msgs/UInt8MultiArray` carrying `wire` messages, reliable):
//! - `learner/transitions`: `wire::StreamItem`, one item of an actor's stream;
//! - `learner/acks`, ten times a second: `wire::Acks` (the learner's
//!   incarnation, its updates, and per actor heard from the next sequence
//!   number it expects);
//! - `learner/weights`, transient-local so a restarted actor gets the
//!   newest at once: `wire::Weights`.
//! - `learner/gate_ticks`: the safety gate's recorded ticks
//!   (`wire::StreamItem`, outside the ordered stream: not numbered, not
//!   resent), when the learner trains the risk critic;
//! - `learner/risk_critic`, transient-local too: the gate's risk critic
//!   trained from the actors' gate ticks (`wire::encode_critic`), when the
//!   launch file asks for one (`safety.risk_critic.online`).
//!
//! Delivery: the actor keeps its whole stream (small; and rebuilt from its
//! episode files when it restarts, under the same sequence numbers), sends
//! at most `WINDOW` items beyond the last acknowledged one (backpressure),
//! and goes back to the first unacknowledged item when acknowledgements
//! stall or a new learner incarnation appears. The learner accepts items
//! in sequence order per actor, holds early ones, and drops duplicates. So
//! restarts on either side lose and duplicate nothing. A peer speaking
//! another wire format version is refused, naming both versions.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender, TryRecvError};
use crossbeam::queue::ArrayQueue;
use futures::{FutureExt, StreamExt};
use policies::practice::{ActorWeights, LearnerLink, LearnerShared, PracticeSettings, PublishedCritic, ToLearner};

use crate::qos::{bytes_message, Bytes};
use crate::wire::{Acks, StreamItem, Weights, WireError};
use crate::EdgeError;

/// Items in flight beyond the last acknowledged one.
const WINDOW: u64 = 2_000;
/// Learner incarnations an actor's link counts (a forged flood of acks cannot grow the list).
const MAX_LEARNERS_REMEMBERED: usize = 64;
/// No acknowledgement progress for this long: send again from the first unacknowledged item.
const RESEND_AFTER: Duration = Duration::from_millis(1000);

struct LinkState {
    acked: AtomicU64,
    /// Distinct learner incarnations that acknowledged this actor's stream:
    /// more than one means a learner restarted.
    learners_heard: AtomicU64,
    stream_len: AtomicU64,
    updates: AtomicU64,
    weights: ArrayQueue<ActorWeights>,
    /// The learner's update count of the newest weights received (`NO_WEIGHTS` before any).
    weights_update: AtomicU64,
    risk_critic: ArrayQueue<PublishedCritic>,
    failure: Mutex<Option<String>>,
}

const NO_WEIGHTS: u64 = u64::MAX;

/// How an actor's stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkClosed {
    /// Items in the stream.
    pub stream_items: u64,
    /// Items no learner confirmed.
    pub unconfirmed: u64,
    /// Distinct learner incarnations that acknowledged this actor's stream
    /// (a restarted learner is a new one).
    pub learners_heard: u64,
}

impl LinkClosed {
    pub fn to_json(self, actor_id: u64) -> serde_json::Value {
        serde_json::json!({"actor_id": actor_id, "stream_items": self.stream_items, "unconfirmed": self.unconfirmed, "learners_heard": self.learners_heard})
    }
}

/// The actor's end.
pub struct RosLearnerLink {
    outbox: Option<Sender<ToLearner>>,
    state: Arc<LinkState>,
    thread: Option<std::thread::JoinHandle<()>>,
    flush_deadline: Arc<Mutex<Option<Instant>>>,
}

impl RosLearnerLink {
    /// Connects actor `actor_id` to the learner of `namespace`; with
    /// `spill_dir` (the run's folder) the stream's acknowledged items leave
    /// memory for a spill file there (`stream_store`).
    pub fn connect(namespace: &str, actor_id: u64, spill_dir: Option<&std::path::Path>) -> Result<RosLearnerLink, EdgeError> {
        let spill = spill_dir.map(|dir| dir.join(format!(".learner_stream_actor{actor_id}.bin")));
        let mut stream = crate::stream_store::StreamStore::new(spill).map_err(EdgeError::io("creating the learner link's spill file"))?;
        let ctx = r2r::Context::create()?;
        let mut node = r2r::Node::create(ctx, &format!("rrl_actor_{actor_id}"), namespace)?;
        let publisher = node.create_publisher::<Bytes>("learner/transitions", crate::qos::transitions())?;
        let tick_publisher = node.create_publisher::<Bytes>("learner/gate_ticks", crate::qos::transitions())?;
        let mut acks = node.subscribe::<Bytes>("learner/acks", crate::qos::acks())?;
        let mut weights = node.subscribe::<Bytes>("learner/weights", crate::qos::weights())?;
        let mut critics = node.subscribe::<Bytes>("learner/risk_critic", crate::qos::weights())?;
        let state = Arc::new(LinkState { acked: AtomicU64::new(0), learners_heard: AtomicU64::new(0), stream_len: AtomicU64::new(0), updates: AtomicU64::new(0), weights: ArrayQueue::new(1), weights_update: AtomicU64::new(NO_WEIGHTS), risk_critic: ArrayQueue::new(1), failure: Mutex::new(None) });
        let (outbox, inbox): (Sender<ToLearner>, Receiver<ToLearner>) = crossbeam::channel::unbounded();
        let flush_deadline = Arc::new(Mutex::new(None::<Instant>));
        let (thread_state, thread_deadline) = (state.clone(), flush_deadline.clone());
        let thread = std::thread::Builder::new().name("learner-link".into()).spawn(move || {
            let state = thread_state;
            let (mut next_to_send, mut acked, mut incarnation) = (0u64, 0u64, None::<u64>);
            // The learner incarnations that acknowledged this actor's stream.
            let mut heard_from: Vec<u64> = Vec::new();
            let mut last_progress = Instant::now();
            let mut closed = false;
            loop {
                node.spin_once(Duration::from_millis(2));
                loop {
                    match inbox.try_recv() {
                        // Gate ticks go beside the ordered stream: not resent, not numbered.
                        Ok(item @ ToLearner::GateTicks { .. }) => {
                            let _ = tick_publisher.publish(&bytes_message(StreamItem { actor: actor_id, sequence: 0, item }.encode()));
                        }
                        Ok(item) => stream.push(StreamItem { actor: actor_id, sequence: stream.len(), item }.encode()),
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            closed = true;
                            break;
                        }
                    }
                }
                state.stream_len.store(stream.len(), Ordering::Release);
                while let Some(Some(ack)) = acks.next().now_or_never() {
                    let ack = match Acks::decode(&ack.data) {
                        Ok(ack) => ack,
                        Err(e) => {
                            refuse_peer(&state, "learner/acks", e);
                            continue;
                        }
                    };
                    let listed = ack.actors.iter().find_map(|&(id, next)| (id == actor_id).then_some(next));
                    let ours = listed.unwrap_or(0);
                    state.updates.store(ack.updates, Ordering::Release);
                    if listed.is_some() && !heard_from.contains(&ack.incarnation) && heard_from.len() < MAX_LEARNERS_REMEMBERED {
                        heard_from.push(ack.incarnation);
                        state.learners_heard.store(heard_from.len() as u64, Ordering::Relaxed);
                    }
                    if incarnation != Some(ack.incarnation) || ours < acked {
                        // A new (or restarted) learner: it has what it acknowledges, and nothing after.
                        incarnation = Some(ack.incarnation);
                        acked = ours;
                        next_to_send = ours;
                        last_progress = Instant::now();
                    } else if ours > acked {
                        acked = ours;
                        last_progress = Instant::now();
                    }
                    state.acked.store(acked, Ordering::Release);
                    // What this learner has leaves memory (a restarted one gets it from the spill file).
                    stream.forget_before(acked);
                }
                while let Some(Some(message)) = weights.next().now_or_never() {
                    match Weights::decode(&message.data) {
                        Ok(w) => {
                            let update = w.updates;
                            state.weights.force_push(w.into_actor_weights());
                            state.weights_update.store(update, Ordering::Release);
                        }
                        Err(e) => refuse_peer(&state, "learner/weights", e),
                    }
                }
                while let Some(Some(message)) = critics.next().now_or_never() {
                    match crate::wire::decode_critic(&message.data) {
                        Ok(critic) => {
                            state.risk_critic.force_push(critic);
                        }
                        Err(e) => refuse_peer(&state, "learner/risk_critic", e),
                    }
                }
                if next_to_send > acked && last_progress.elapsed() > RESEND_AFTER {
                    next_to_send = acked;
                    last_progress = Instant::now();
                }
                let mut burst = 0;
                while next_to_send < stream.len() && next_to_send < acked + WINDOW && burst < 500 {
                    let item = match stream.get(next_to_send) {
                        Ok(item) => item,
                        Err(e) => {
                            *state.failure.lock().expect("failure") = Some(format!("the learner link cannot read item {next_to_send} back from its spill file: {e}"));
                            break;
                        }
                    };
                    if publisher.publish(&bytes_message(item)).is_err() {
                        break;
                    }
                    next_to_send += 1;
                    burst += 1;
                }
                if closed {
                    let all_acked = acked >= stream.len();
                    let out_of_time = thread_deadline.lock().expect("deadline").is_some_and(|d| Instant::now() > d);
                    if all_acked || out_of_time {
                        return;
                    }
                }
            }
        }).map_err(EdgeError::io("starting the learner link's thread"))?;
        Ok(RosLearnerLink { outbox: Some(outbox), state, thread: Some(thread), flush_deadline })
    }

    /// The learner's update count of the newest weights received.
    pub fn weights_update(&self) -> Option<u64> {
        Some(self.state.weights_update.load(Ordering::Acquire)).filter(|&u| u != NO_WEIGHTS)
    }

    /// Ends the stream and waits up to `timeout` for the learner to confirm
    /// all of it.
    pub fn close(mut self, timeout: Duration) -> LinkClosed {
        *self.flush_deadline.lock().expect("deadline") = Some(Instant::now() + timeout);
        self.outbox.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let stream_items = self.state.stream_len.load(Ordering::Acquire);
        LinkClosed {
            stream_items,
            unconfirmed: stream_items.saturating_sub(self.state.acked.load(Ordering::Acquire)),
            learners_heard: self.state.learners_heard.load(Ordering::Relaxed),
        }
    }
}

impl Drop for RosLearnerLink {
    /// An abandoned link (practice failed) stops its ROS thread at once.
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            *self.flush_deadline.lock().expect("deadline") = Some(Instant::now());
            self.outbox.take();
            let _ = thread.join();
        }
    }
}

impl LearnerLink for RosLearnerLink {
    fn send(&mut self, item: ToLearner) {
        if let Some(outbox) = &self.outbox {
            let _ = outbox.send(item);
        }
    }
    fn updates(&self) -> u64 {
        self.state.updates.load(Ordering::Acquire)
    }
    fn take_weights(&mut self) -> Option<ActorWeights> {
        self.state.weights.pop()
    }
    fn take_risk_critic(&mut self) -> Option<PublishedCritic> {
        self.state.risk_critic.pop()
    }
    fn failure(&self) -> Option<String> {
        self.state.failure.lock().expect("failure").clone()
    }
    fn backlog(&self) -> u64 {
        // Items handed over but not yet confirmed (counting ones still in the outbox).
        let handed = self.state.stream_len.load(Ordering::Acquire) + self.outbox.as_ref().map_or(0, |o| o.len() as u64);
        handed.saturating_sub(self.state.acked.load(Ordering::Acquire))
    }
}

/// The most actors one learner node keeps streams for: ids beyond it are
/// refused (a forged or misconfigured sender must not grow the map).
const MAX_ACTORS: usize = 256;

/// How many of an actor's newest frame numbers the node remembers: a
/// transition names frames at most n steps older than its newest.
const FRAME_NUMBERS_KEPT: usize = 1024;

/// The learner node's side of every actor's stream, free of ROS so its
/// rules can be tested alone: items are delivered in sequence order per
/// actor, early ones held (bounded), duplicates dropped, unreadable
/// messages and actors beyond `MAX_ACTORS` counted and refused. Each actor
/// numbers its camera frames from 0; the node renumbers them into the one
/// sequence its learner stores, and the transitions that name them too.
#[derive(Default)]
struct ActorStreams {
    actors: HashMap<u64, ActorStream>,
    /// Messages refused: unreadable, or from an actor beyond the bound.
    refused: u64,
    /// Frames delivered to the learner, all actors together.
    frames_delivered: u64,
}

/// `item` in the learner's frame numbers: a frame gets the next number,
/// a transition the numbers its actor's frames were given (`u64::MAX` for
/// one the actor never sent, which the learner refuses by name).
fn renumbered(item: ToLearner, numbers: &mut VecDeque<(u64, u64)>, frames_delivered: &mut u64) -> ToLearner {
    match item {
        ToLearner::Frames { index, layout, rgb } => {
            let learner_index = *frames_delivered;
            *frames_delivered += 1;
            numbers.push_back((index, learner_index));
            if numbers.len() > FRAME_NUMBERS_KEPT {
                numbers.pop_front();
            }
            ToLearner::Frames { index: learner_index, layout, rgb }
        }
        ToLearner::Transition { transition, demo, frames: Some((frame, next)) } => {
            let look_up = |own: u64| numbers.iter().rev().find(|(i, _)| *i == own).map_or(u64::MAX, |(_, learner)| *learner);
            ToLearner::Transition { transition, demo, frames: Some((look_up(frame), look_up(next))) }
        }
        other => other,
    }
}

impl ActorStreams {
    /// Takes one message off `learner/transitions`; `deliver` gets the items
    /// now due, in order. Whether the message was a readable item.
    fn accept(&mut self, bytes: &[u8], deliver: &mut impl FnMut(ToLearner)) -> bool {
        let (actor, sequence) = match StreamItem::header_of(bytes) {
            Ok(header) => header,
            Err(e) => return self.refuse(&e.to_string()),
        };
        if !self.actors.contains_key(&actor) && self.actors.len() >= MAX_ACTORS {
            return self.refuse(&format!("a stream from actor {actor} beyond the {MAX_ACTORS} this learner keeps"));
        }
        let frames_delivered = &mut self.frames_delivered;
        let stream = self.actors.entry(actor).or_default();
        // Duplicates are dropped and early items held as they came: an item
        // is decoded (its frames too) once, when it is due.
        if sequence < stream.next_expected || stream.early.contains_key(&sequence) {
            stream.duplicates += 1;
            return true;
        }
        if sequence > stream.next_expected {
            if stream.early.len() < WINDOW as usize * 2 {
                stream.early.insert(sequence, bytes.to_vec());
            }
            return true;
        }
        let mut due = Some(bytes.to_vec());
        while let Some(message) = due.take() {
            match StreamItem::decode(&message) {
                Ok(StreamItem { item, .. }) => {
                    deliver(renumbered(item, &mut stream.frame_numbers, frames_delivered));
                    stream.next_expected += 1;
                    due = stream.early.remove(&stream.next_expected);
                }
                // Not delivered, nor counted as received: the actor sends it again.
                Err(e) => {
                    stream.malformed += 1;
                    return self.refuse(&e.to_string());
                }
            }
        }
        true
    }

    /// Counts a refused message; the first one is said (a flood of them
    /// must not flood the log).
    fn refuse(&mut self, why: &str) -> bool {
        if self.refused == 0 {
            tracing::warn!("learner/transitions: refused a message ({why}); further refusals are only counted");
        }
        self.refused += 1;
        false
    }
}

/// Per-actor bookkeeping of the learner node.
#[derive(Default)]
struct ActorStream {
    next_expected: u64,
    /// Items ahead of the next expected one, as they came (encoded).
    early: BTreeMap<u64, Vec<u8>>,
    duplicates: u64,
    malformed: u64,
    /// The actor's newest frame numbers and the learner's for them.
    frame_numbers: VecDeque<(u64, u64)>,
}

/// A message from a learner the actor cannot read: one of another wire
/// format version stops the actor with both versions named (nothing it
/// sends would be understood); anything else is logged and dropped.
fn refuse_peer(state: &LinkState, topic: &str, error: WireError) {
    if let WireError::Version { .. } = error {
        state.failure.lock().expect("failure").get_or_insert_with(|| format!("the learner on {topic}: {error}"));
    } else {
        tracing::warn!(topic, "dropped a message that does not parse: {error}");
    }
}

/// What a learner node trains and where it listens.
pub struct LearnerNodeSpec {
    pub namespace: String,
    pub config: policies::SacConfig,
    pub device: tch::Device,
    pub warmup_steps: u64,
    pub max_episode_steps: u64,
    pub publish_every: u64,
    pub replay_capacity: usize,
    pub checkpoint_every: u64,
    pub task: String,
    /// `safety.risk_critic.online`: the learner trains the gate's critic
    /// from the actors' gate ticks and publishes it on `learner/risk_critic`.
    pub risk_critic: Option<policies::practice::OnlineRiskSettings>,
}

impl LearnerNodeSpec {
    /// The learner node of a practice run of `settings`, on `namespace`.
    pub fn for_practice(namespace: &str, config: policies::SacConfig, device: tch::Device, settings: &PracticeSettings) -> LearnerNodeSpec {
        LearnerNodeSpec {
            namespace: namespace.to_string(),
            config,
            device,
            warmup_steps: settings.warmup_steps,
            max_episode_steps: settings.max_episode_steps,
            publish_every: settings.publish_every,
            replay_capacity: settings.replay_capacity,
            checkpoint_every: settings.checkpoint_every,
            task: settings.task.clone(),
            risk_critic: settings.risk_critic.clone(),
        }
    }
}

/// A learner node on a thread of this process, reached over ROS 2 like a
/// remote one (`rrl practice --learner node`): the same topics, the same
/// delivery and deduplication, on the process's `ROS_DOMAIN_ID`.
pub struct InProcessLearnerNode {
    finished: Arc<std::sync::atomic::AtomicBool>,
    error: Arc<Mutex<Option<String>>>,
    /// The node's learner thread: this process's actor may hold it.
    shared: Arc<LearnerShared>,
    thread: Option<std::thread::JoinHandle<Result<serde_json::Value, EdgeError>>>,
}

impl InProcessLearnerNode {
    /// Starts the node; its checkpoint is `run_dir/learner.safetensors`.
    pub fn start(spec: LearnerNodeSpec, run_dir: PathBuf, resume: bool) -> Result<InProcessLearnerNode, EdgeError> {
        let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let error = Arc::new(Mutex::new(None::<String>));
        let shared = LearnerShared::new();
        let (thread_finished, thread_error, thread_shared) = (finished.clone(), error.clone(), shared.clone());
        let thread = std::thread::Builder::new().name("learner-node".into()).spawn(move || {
            let result = serve_learner(spec, run_dir, resume, thread_shared, Some(0.0), &|| thread_finished.load(Ordering::Acquire));
            if let Err(e) = &result {
                *thread_error.lock().expect("error slot") = Some(e.to_string());
            }
            result
        }).map_err(EdgeError::io("starting the learner node's thread"))?;
        Ok(InProcessLearnerNode { finished, error, shared, thread: Some(thread) })
    }

    /// Holds the node's learner (or lets it go on), as a learner thread of
    /// practice is held; its update count once it answered.
    fn hold_updates(&self, hold: bool) -> Option<u64> {
        let thread = &self.thread;
        let answered = self.shared.hold_and_wait(hold, || thread.as_ref().is_some_and(|t| !t.is_finished()));
        answered.then(|| self.shared.updates.load(Ordering::Acquire))
    }

    /// Set once the node failed.
    pub fn failure(&self) -> Option<String> {
        self.error.lock().expect("error slot").clone()
    }

    /// After the actor's stream is confirmed whole: the node ends, its
    /// learner writes the final checkpoint; the node's report.
    pub fn finish(mut self) -> Result<serde_json::Value, EdgeError> {
        self.finished.store(true, Ordering::Release);
        let thread = self.thread.take().expect("finished once");
        thread.join().map_err(|_| EdgeError::Panicked("learner node"))?
    }
}

impl Drop for InProcessLearnerNode {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.finished.store(true, Ordering::Release);
            let _ = thread.join();
        }
    }
}

/// An actor's link to the learner node of its own process: a plain ROS 2
/// link that also learns at once when that node has failed, and holds the
/// node's learner while an early stop is confirmed (that node serves this
/// actor: README command A's policy confirmed is the one checkpointed).
pub struct InProcessLink<'a> {
    pub link: RosLearnerLink,
    pub node: &'a InProcessLearnerNode,
}

impl LearnerLink for InProcessLink<'_> {
    fn send(&mut self, item: ToLearner) {
        self.link.send(item)
    }
    fn updates(&self) -> u64 {
        self.link.updates()
    }
    fn take_weights(&mut self) -> Option<ActorWeights> {
        self.link.take_weights()
    }
    fn take_risk_critic(&mut self) -> Option<PublishedCritic> {
        self.link.take_risk_critic()
    }
    fn failure(&self) -> Option<String> {
        self.node.failure().or_else(|| self.link.failure())
    }
    fn backlog(&self) -> u64 {
        self.link.backlog()
    }
    /// The held learner's weights reach the actor over DDS like any others:
    /// it waits for them and for the acknowledgement that counts their
    /// update, so the confirming episodes act with, and report, the policy
    /// the node checkpoints.
    fn hold_updates(&mut self, hold: bool) -> bool {
        let Some(update) = self.node.hold_updates(hold) else { return false };
        if !hold {
            return true;
        }
        let deadline = Instant::now() + HELD_WEIGHTS_WITHIN;
        while self.link.weights_update() != Some(update) || self.link.updates() != update {
            if self.failure().is_some() || Instant::now() > deadline {
                tracing::warn!(update, "the held learner's weights did not come back over ROS 2 within {HELD_WEIGHTS_WITHIN:?}: it goes on learning, and the confirmation judges the weights the actor has");
                self.node.hold_updates(false);
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }
}

/// How long the held learner's weights may take to come back over DDS.
const HELD_WEIGHTS_WITHIN: Duration = Duration::from_secs(10);

/// The learner node's loop: receives the actors' streams in order, feeds
/// the learner thread, acknowledges and publishes weights. Ends once no
/// item came for `until_idle_s` and `may_stop` agrees (never without it;
/// with 0, as soon as `may_stop` agrees). `shared`: the learner thread's
/// counters and slots, through which the caller may also hold it.
pub fn serve_learner(spec: LearnerNodeSpec, run_dir: PathBuf, resume: bool, shared: Arc<LearnerShared>, until_idle_s: Option<f64>, may_stop: &dyn Fn() -> bool) -> Result<serde_json::Value, EdgeError> {
    std::fs::create_dir_all(&run_dir).map_err(EdgeError::io(format!("creating {}", run_dir.display())))?;
    let checkpoint = run_dir.join("learner.safetensors");
    if checkpoint.exists() && !resume {
        return Err(EdgeError::Refused(format!("{} exists: pass --resume to continue that learner, or choose another --run-dir", checkpoint.display())));
    }
    let settings = PracticeSettings {
        task: spec.task.clone(),
        total_steps: u64::MAX,
        warmup_steps: spec.warmup_steps,
        max_episode_steps: spec.max_episode_steps,
        stuck_steps: 0,
        stuck_tolerance: 0.0,
        seed: 0,
        run_dir: run_dir.clone(),
        sync_every_step: false,
        lockstep: false,
        publish_every: spec.publish_every,
        checkpoint_every: spec.checkpoint_every,
        replay_capacity: spec.replay_capacity,
        max_backlog: u64::MAX,
        stop_at_success: None,
        confirm_episodes: 10,
        human_reward: false,
        labels_override: false,
        shaping: None,
        risk_critic: spec.risk_critic.clone(),
        live: None,
    };
    let (to_learner, inbox) = crossbeam::channel::unbounded();
    let learner_shared = shared.clone();
    let (sac_config, device) = (spec.config, spec.device);
    let learner = std::thread::Builder::new().name("learner".into()).spawn(move || policies::practice::run_learner(sac_config, device, checkpoint, resume, settings, inbox, learner_shared))
        .map_err(EdgeError::io("starting the learner thread"))?;

    let ctx = r2r::Context::create()?;
    let mut node = r2r::Node::create(ctx, "rrl_learner", &spec.namespace)?;
    let mut transitions = node.subscribe::<Bytes>("learner/transitions", crate::qos::transitions())?;
    let mut gate_ticks = node.subscribe::<Bytes>("learner/gate_ticks", crate::qos::transitions())?;
    let acks = node.create_publisher::<Bytes>("learner/acks", crate::qos::acks())?;
    let weights = node.create_publisher::<Bytes>("learner/weights", crate::qos::weights())?;
    let critics = node.create_publisher::<Bytes>("learner/risk_critic", crate::qos::weights())?;
    let incarnation = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    tracing::info!(namespace = %spec.namespace, resume, "learner node up");

    let mut streams = ActorStreams::default();
    let mut last_ack = Instant::now();
    let mut acked_updates = 0u64;
    let mut last_item: Option<Instant> = None;
    loop {
        node.spin_once(Duration::from_millis(1));
        while let Some(Some(message)) = transitions.next().now_or_never() {
            if streams.accept(&message.data, &mut |item| {
                let _ = to_learner.send(item);
            }) {
                last_item = Some(Instant::now());
            }
        }
        while let Some(Some(message)) = gate_ticks.next().now_or_never() {
            match StreamItem::decode(&message.data) {
                Ok(StreamItem { actor, item: ToLearner::GateTicks { episode, ticks, .. }, .. }) => {
                    let _ = to_learner.send(ToLearner::GateTicks { actor, episode, ticks });
                }
                _ => streams.refused += 1,
            }
        }
        // Weights before the acknowledgement that counts their update: an
        // actor waiting for that count (lockstep) then acts with them.
        if let Some((update, w)) = shared.weights.pop() {
            weights.publish(&bytes_message(Weights::of(&w, update).encode()))?;
        }
        if let Some(critic) = shared.risk_critic.pop() {
            critics.publish(&bytes_message(crate::wire::encode_critic(&critic)))?;
        }
        let updates = shared.updates.load(Ordering::Acquire);
        if last_ack.elapsed() >= Duration::from_millis(100) || updates != acked_updates {
            let ack = Acks { incarnation, updates, actors: streams.actors.iter().map(|(id, stream)| (*id, stream.next_expected)).collect() };
            acks.publish(&bytes_message(ack.encode()))?;
            last_ack = Instant::now();
            acked_updates = updates;
        }
        if let Some(e) = shared.error.lock().expect("error slot").clone() {
            return Err(EdgeError::Learner(e));
        }
        if learner.is_finished() {
            // Only a panic ends the learner thread while the stream is open
            // (an error is in `shared.error`): the join below says so.
            break;
        }
        if let Some(idle) = until_idle_s {
            // Idle 0 (an in-process node): stop as soon as allowed, even if nothing came.
            let idle_long_enough = last_item.map_or(idle == 0.0, |last| last.elapsed().as_secs_f64() > idle);
            if idle_long_enough && may_stop() {
                break;
            }
        }
    }
    drop(to_learner);
    learner.join().map_err(|_| EdgeError::Panicked("learner"))?.map_err(|e| EdgeError::Learner(e.to_string()))?;
    let per_actor: serde_json::Map<String, serde_json::Value> = streams
        .actors
        .iter()
        .map(|(id, s)| (id.to_string(), serde_json::json!({"received": s.next_expected, "duplicates": s.duplicates, "malformed": s.malformed, "held_early": s.early.len()})))
        .collect();
    Ok(serde_json::json!({
        "actors": per_actor,
        "refused_messages": streams.refused,
        "updates": shared.updates.load(Ordering::Acquire),
        "resumed_from_updates": shared.resumed_from.load(Ordering::Acquire),
        "terminal_transitions": shared.terminals.load(Ordering::Relaxed),
        "rewarded_terminal_transitions": shared.rewarded_terminals.load(Ordering::Relaxed),
        "run_dir": run_dir.display().to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(actor: u64, sequence: u64) -> Vec<u8> {
        StreamItem { actor, sequence, item: ToLearner::OnlineStep }.encode()
    }

    /// Fault matrix: forged wire messages | a truncated item, garbage, hundreds of forged actor ids | counts and refuses them; known actors go on | the actor map stays at 256; refusals counted; actor 1's items in order
    #[test]
    fn items_arrive_in_order_once_and_forged_actors_cannot_grow_the_map() {
        let mut streams = ActorStreams::default();
        let mut delivered = 0;
        let mut deliver = |_: ToLearner| delivered += 1;
        // Early, then the gap filled: both delivered, in order; a repeat dropped.
        assert!(streams.accept(&item(1, 1), &mut deliver));
        assert!(streams.accept(&item(1, 0), &mut deliver));
        assert!(streams.accept(&item(1, 0), &mut deliver));
        assert_eq!((streams.actors[&1].next_expected, streams.actors[&1].duplicates), (2, 1));
        // A truncated item of actor 1 counts against it; garbage against nobody.
        let cut = item(1, 2);
        assert!(!streams.accept(&cut[..cut.len() - 1], &mut deliver));
        assert!(!streams.accept(b"not ours", &mut deliver));
        assert_eq!((streams.actors[&1].malformed, streams.refused), (1, 2));
        // Forged actor ids: the map stops at its bound, known actors go on.
        for forged in 2..=(MAX_ACTORS as u64 + 50) {
            streams.accept(&item(forged, 0), &mut deliver);
        }
        assert_eq!(streams.actors.len(), MAX_ACTORS);
        assert_eq!(streams.refused, 2 + 50);
        assert!(streams.accept(&item(1, 2), &mut deliver));
        assert_eq!(streams.actors[&1].next_expected, 3);
        drop(deliver);
        assert_eq!(delivered, 3 + MAX_ACTORS - 1);
    }

    /// Two actors feeding one learner number their frames from 0 each: the
    /// learner gets one sequence of frame numbers, and each transition
    /// names its own actor's frames in it.
    #[test]
    fn frames_of_several_actors_are_renumbered_into_one_sequence() {
        let layout = rrl_types::FrameLayout { cameras: 1, height: 1, width: 1 };
        let frames = |actor: u64, sequence: u64, index: u64| StreamItem { actor, sequence, item: ToLearner::Frames { index, layout, rgb: vec![actor as u8, index as u8, 0] } }.encode();
        let step = policies::replay::Transition { observation: vec![0.0], action: vec![0.0], reward: 0.0, next_observation: vec![0.0], terminal: false, discount: 0.99 };
        let transition = |actor: u64, sequence: u64| StreamItem { actor, sequence, item: ToLearner::Transition { transition: step.clone(), demo: false, frames: Some((0, 1)) } }.encode();
        let mut streams = ActorStreams::default();
        let mut delivered = Vec::new();
        let mut deliver = |item: ToLearner| delivered.push(item);
        for message in [frames(1, 0, 0), frames(2, 0, 0), frames(2, 1, 1), frames(1, 1, 1), transition(2, 2), transition(1, 2)] {
            assert!(streams.accept(&message, &mut deliver));
        }
        drop(deliver);
        let numbers: Vec<(u8, u8, u64)> = delivered.iter().filter_map(|i| if let ToLearner::Frames { index, rgb, .. } = i { Some((rgb[0], rgb[1], *index)) } else { None }).collect();
        assert_eq!(numbers, [(1, 0, 0), (2, 0, 1), (2, 1, 2), (1, 1, 3)], "(actor, its number, the learner's)");
        let named: Vec<(u64, u64)> = delivered.iter().filter_map(|i| if let ToLearner::Transition { frames, .. } = i { *frames } else { None }).collect();
        assert_eq!(named, [(1, 2), (0, 3)], "actor 2's transition names its frames 1 and 2, actor 1's its 0 and 3");
    }
}
