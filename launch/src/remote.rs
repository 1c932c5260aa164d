//! Actor ↔ learner over ROS 2, for learners on another process or machine.
//!
//! Topics (all `std_msgs/UInt8MultiArray`, reliable):
//! - `learner/transitions`: `[actor id u64][sequence u64][item]`, one item
//!   of an actor's stream (see `policies::practice::encode_item`);
//! - `learner/acks`, ten times a second: `[learner incarnation u64]
//!   [updates u64][actors u32]` then `[actor id u64][next expected u64]`
//!   per actor heard from;
//! - `learner/weights`, transient-local so a restarted actor gets the
//!   newest at once: `policies::practice::encode_weights`.
//!
//! Delivery: the actor keeps its whole stream (small; and rebuilt from its
//! episode files when it restarts, under the same sequence numbers), sends
//! at most `WINDOW` items beyond the last acknowledged one (backpressure),
//! and goes back to the first unacknowledged item when acknowledgements
//! stall or a new learner incarnation appears. The learner accepts items
//! in sequence order per actor, holds early ones, and drops duplicates. So
//! restarts on either side lose and duplicate nothing.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam::channel::{Receiver, Sender, TryRecvError};
use crossbeam::queue::ArrayQueue;
use futures::{FutureExt, StreamExt};
use policies::practice::{decode_item, decode_weights, encode_weights, ActorWeights, LearnerLink, LearnerShared, PracticeSettings, ToLearner};
use r2r::QosProfile;

/// Items in flight beyond the last acknowledged one.
const WINDOW: u64 = 2_000;
/// No acknowledgement progress for this long: send again from the first unacknowledged item.
const RESEND_AFTER: Duration = Duration::from_millis(1000);

fn transitions_qos() -> QosProfile {
    QosProfile::default().reliable().keep_last(10_000)
}

fn weights_qos() -> QosProfile {
    QosProfile::default().reliable().transient_local().keep_last(1)
}

fn bytes_message(data: Vec<u8>) -> r2r::std_msgs::msg::UInt8MultiArray {
    r2r::std_msgs::msg::UInt8MultiArray { data, ..Default::default() }
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    bytes.get(at..at + 8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
}

struct LinkState {
    acked: AtomicU64,
    stream_len: AtomicU64,
    updates: AtomicU64,
    weights: ArrayQueue<ActorWeights>,
    failure: Mutex<Option<String>>,
}

/// The actor's end.
pub struct RosLearnerLink {
    outbox: Option<Sender<Vec<u8>>>,
    state: Arc<LinkState>,
    thread: Option<std::thread::JoinHandle<()>>,
    flush_deadline: Arc<Mutex<Option<Instant>>>,
}

impl RosLearnerLink {
    pub fn connect(namespace: &str, actor_id: u64) -> anyhow::Result<RosLearnerLink> {
        let ctx = r2r::Context::create()?;
        let mut node = r2r::Node::create(ctx, &format!("rrl_actor_{actor_id}"), namespace)?;
        let publisher = node.create_publisher::<r2r::std_msgs::msg::UInt8MultiArray>("learner/transitions", transitions_qos())?;
        let mut acks = node.subscribe::<r2r::std_msgs::msg::UInt8MultiArray>("learner/acks", QosProfile::default().reliable())?;
        let mut weights = node.subscribe::<r2r::std_msgs::msg::UInt8MultiArray>("learner/weights", weights_qos())?;
        let state = Arc::new(LinkState { acked: AtomicU64::new(0), stream_len: AtomicU64::new(0), updates: AtomicU64::new(0), weights: ArrayQueue::new(1), failure: Mutex::new(None) });
        let (outbox, inbox): (Sender<Vec<u8>>, Receiver<Vec<u8>>) = crossbeam::channel::unbounded();
        let flush_deadline = Arc::new(Mutex::new(None::<Instant>));
        let (thread_state, thread_deadline) = (state.clone(), flush_deadline.clone());
        let thread = std::thread::Builder::new().name("learner-link".into()).spawn(move || {
            let state = thread_state;
            let mut stream: Vec<Vec<u8>> = Vec::new();
            let (mut next_to_send, mut acked, mut incarnation) = (0u64, 0u64, None::<u64>);
            let mut last_progress = Instant::now();
            let mut closed = false;
            loop {
                node.spin_once(Duration::from_millis(2));
                loop {
                    match inbox.try_recv() {
                        Ok(item) => {
                            let mut message = Vec::with_capacity(16 + item.len());
                            message.extend_from_slice(&actor_id.to_le_bytes());
                            message.extend_from_slice(&(stream.len() as u64).to_le_bytes());
                            message.extend_from_slice(&item);
                            stream.push(message);
                        }
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            closed = true;
                            break;
                        }
                    }
                }
                state.stream_len.store(stream.len() as u64, Ordering::Release);
                while let Some(Some(ack)) = acks.next().now_or_never() {
                    let bytes = ack.data;
                    let (Some(learner), Some(updates)) = (u64_at(&bytes, 0), u64_at(&bytes, 8)) else { continue };
                    let count = bytes.get(16..20).map_or(0, |b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize);
                    let ours = (0..count).find_map(|i| (u64_at(&bytes, 20 + 16 * i) == Some(actor_id)).then(|| u64_at(&bytes, 28 + 16 * i)).flatten()).unwrap_or(0);
                    state.updates.store(updates, Ordering::Release);
                    if incarnation != Some(learner) || ours < acked {
                        // A new (or restarted) learner: it has what it acknowledges, and nothing after.
                        incarnation = Some(learner);
                        acked = ours;
                        next_to_send = ours;
                        last_progress = Instant::now();
                    } else if ours > acked {
                        acked = ours;
                        last_progress = Instant::now();
                    }
                    state.acked.store(acked, Ordering::Release);
                }
                while let Some(Some(message)) = weights.next().now_or_never() {
                    if let Some((_, w)) = decode_weights(&message.data) {
                        state.weights.force_push(w);
                    }
                }
                if next_to_send > acked && last_progress.elapsed() > RESEND_AFTER {
                    next_to_send = acked;
                    last_progress = Instant::now();
                }
                let mut burst = 0;
                while (next_to_send as usize) < stream.len() && next_to_send < acked + WINDOW && burst < 500 {
                    if publisher.publish(&bytes_message(stream[next_to_send as usize].clone())).is_err() {
                        break;
                    }
                    next_to_send += 1;
                    burst += 1;
                }
                if closed {
                    let all_acked = acked as usize >= stream.len();
                    let out_of_time = thread_deadline.lock().expect("deadline").is_some_and(|d| Instant::now() > d);
                    if all_acked || out_of_time {
                        return;
                    }
                }
            }
        })?;
        Ok(RosLearnerLink { outbox: Some(outbox), state, thread: Some(thread), flush_deadline })
    }

    /// Ends the stream and waits up to `timeout` for the learner to confirm
    /// all of it; returns (items in the stream, items left unconfirmed).
    pub fn close(mut self, timeout: Duration) -> (u64, u64) {
        *self.flush_deadline.lock().expect("deadline") = Some(Instant::now() + timeout);
        self.outbox.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let total = self.state.stream_len.load(Ordering::Acquire);
        (total, total.saturating_sub(self.state.acked.load(Ordering::Acquire)))
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
        let mut bytes = Vec::new();
        policies::practice::encode_item(&item, &mut bytes);
        if let Some(outbox) = &self.outbox {
            let _ = outbox.send(bytes);
        }
    }
    fn updates(&self) -> u64 {
        self.state.updates.load(Ordering::Acquire)
    }
    fn take_weights(&mut self) -> Option<ActorWeights> {
        self.state.weights.pop()
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

/// Per-actor bookkeeping of the learner node.
#[derive(Default)]
struct ActorStream {
    next_expected: u64,
    early: BTreeMap<u64, ToLearner>,
    duplicates: u64,
    malformed: u64,
}

/// `rrl learner`: the learner as a ROS 2 node that actors feed.
pub fn run_learner_node(config: &std::path::Path, run_dir: PathBuf, resume: bool, until_idle_s: Option<f64>) -> anyhow::Result<serde_json::Value> {
    run_learner_node_until(config, run_dir, resume, until_idle_s, &|| true)
}

/// The learner node, whose idle timeout only counts once `may_stop` says
/// so (e.g. after the actors of this process have finished).
pub fn run_learner_node_until(config: &std::path::Path, run_dir: PathBuf, resume: bool, until_idle_s: Option<f64>, may_stop: &dyn Fn() -> bool) -> anyhow::Result<serde_json::Value> {
    let launch = rrl_types::config::LaunchFile::load(config)?;
    let (env, _) = crate::practice::panda_task(&launch, config)?;
    let mut sac_config = crate::practice::sac_config(&launch, &env, 1);
    drop(env);
    if launch.practice.base != rrl_types::config::PracticeBase::None {
        // The actors practise a residual: they observe the task and the base's action.
        sac_config.observation_size += sac_config.action_size;
        sac_config.zero_actor_output = true;
    }
    let device = policies::select_device(launch.learner.device)?;
    let node = LearnerNodeSpec {
        namespace: launch.learner_namespace().to_string(),
        config: sac_config,
        device,
        warmup_steps: launch.learner.warmup_steps,
        max_episode_steps: u64::from(launch.practice.max_episode_steps),
        publish_every: launch.learner.publish_every_updates,
        replay_capacity: launch.learner.replay_capacity as usize,
        checkpoint_every: 500,
        task: launch.name.clone(),
    };
    serve_learner(node, run_dir, resume, until_idle_s, may_stop)
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
}

/// A learner node on a thread of this process, reached over ROS 2 like a
/// remote one (`rrl practice --learner node`): the same topics, the same
/// delivery and deduplication, on the process's `ROS_DOMAIN_ID`.
pub struct InProcessLearnerNode {
    finished: Arc<std::sync::atomic::AtomicBool>,
    error: Arc<Mutex<Option<String>>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<serde_json::Value>>>,
}

impl InProcessLearnerNode {
    /// Starts the node; its checkpoint is `run_dir/learner.safetensors`.
    pub fn start(spec: LearnerNodeSpec, run_dir: PathBuf, resume: bool) -> anyhow::Result<InProcessLearnerNode> {
        let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let error = Arc::new(Mutex::new(None::<String>));
        let (thread_finished, thread_error) = (finished.clone(), error.clone());
        let thread = std::thread::Builder::new().name("learner-node".into()).spawn(move || {
            let result = serve_learner(spec, run_dir, resume, Some(0.0), &|| thread_finished.load(Ordering::Acquire));
            if let Err(e) = &result {
                *thread_error.lock().expect("error slot") = Some(format!("{e:#}"));
            }
            result
        })?;
        Ok(InProcessLearnerNode { finished, error, thread: Some(thread) })
    }

    /// Set once the node failed.
    pub fn failure(&self) -> Option<String> {
        self.error.lock().expect("error slot").clone()
    }

    /// After the actor's stream is confirmed whole: the node ends, its
    /// learner writes the final checkpoint; the node's report.
    pub fn finish(mut self) -> anyhow::Result<serde_json::Value> {
        self.finished.store(true, Ordering::Release);
        let thread = self.thread.take().expect("finished once");
        thread.join().map_err(|_| anyhow::anyhow!("the learner node panicked"))?
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
/// link that also learns at once when that node has failed.
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
    fn failure(&self) -> Option<String> {
        self.node.failure().or_else(|| self.link.failure())
    }
    fn backlog(&self) -> u64 {
        self.link.backlog()
    }
}

/// The learner node's loop: receives the actors' streams in order, feeds
/// the learner thread, acknowledges and publishes weights. Ends once no
/// item came for `until_idle_s` and `may_stop` agrees (never without it;
/// with 0, as soon as `may_stop` agrees).
fn serve_learner(spec: LearnerNodeSpec, run_dir: PathBuf, resume: bool, until_idle_s: Option<f64>, may_stop: &dyn Fn() -> bool) -> anyhow::Result<serde_json::Value> {
    std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    let checkpoint = run_dir.join("learner.safetensors");
    if checkpoint.exists() && !resume {
        anyhow::bail!("{} exists: pass --resume to continue that learner, or choose another --run-dir", checkpoint.display());
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
    };
    let (to_learner, inbox) = crossbeam::channel::unbounded();
    let shared = LearnerShared::new();
    let learner_shared = shared.clone();
    let (sac_config, device) = (spec.config, spec.device);
    let learner = std::thread::Builder::new().name("learner".into()).spawn(move || policies::practice::run_learner(sac_config, device, checkpoint, resume, settings, inbox, learner_shared))?;

    let ctx = r2r::Context::create()?;
    let mut node = r2r::Node::create(ctx, "rrl_learner", &spec.namespace)?;
    let mut transitions = node.subscribe::<r2r::std_msgs::msg::UInt8MultiArray>("learner/transitions", transitions_qos())?;
    let acks = node.create_publisher::<r2r::std_msgs::msg::UInt8MultiArray>("learner/acks", QosProfile::default().reliable())?;
    let weights = node.create_publisher::<r2r::std_msgs::msg::UInt8MultiArray>("learner/weights", weights_qos())?;
    let incarnation = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    tracing::info!(namespace = %spec.namespace, resume, "learner node up");

    let mut actors: HashMap<u64, ActorStream> = HashMap::new();
    let mut last_ack = Instant::now();
    let mut acked_updates = 0u64;
    let mut last_item: Option<Instant> = None;
    loop {
        node.spin_once(Duration::from_millis(1));
        while let Some(Some(message)) = transitions.next().now_or_never() {
            let bytes = message.data;
            let (Some(actor), Some(sequence)) = (u64_at(&bytes, 0), u64_at(&bytes, 8)) else { continue };
            let stream = actors.entry(actor).or_default();
            let Some(item) = decode_item(&bytes[16..]) else {
                stream.malformed += 1;
                continue;
            };
            last_item = Some(Instant::now());
            if sequence < stream.next_expected || stream.early.contains_key(&sequence) {
                stream.duplicates += 1;
                continue;
            }
            if sequence > stream.next_expected {
                if stream.early.len() < WINDOW as usize * 2 {
                    stream.early.insert(sequence, item);
                }
                continue;
            }
            let _ = to_learner.send(item);
            stream.next_expected += 1;
            while let Some(item) = stream.early.remove(&stream.next_expected) {
                let _ = to_learner.send(item);
                stream.next_expected += 1;
            }
        }
        // Weights before the acknowledgement that counts their update: an
        // actor waiting for that count (lockstep) then acts with them.
        if let Some(w) = shared.weights.pop() {
            weights.publish(&bytes_message(encode_weights(&w, shared.updates.load(Ordering::Acquire))))?;
        }
        let updates = shared.updates.load(Ordering::Acquire);
        if last_ack.elapsed() >= Duration::from_millis(100) || updates != acked_updates {
            let mut data = Vec::with_capacity(20 + 16 * actors.len());
            data.extend_from_slice(&incarnation.to_le_bytes());
            data.extend_from_slice(&updates.to_le_bytes());
            data.extend_from_slice(&(actors.len() as u32).to_le_bytes());
            for (id, stream) in &actors {
                data.extend_from_slice(&id.to_le_bytes());
                data.extend_from_slice(&stream.next_expected.to_le_bytes());
            }
            acks.publish(&bytes_message(data))?;
            last_ack = Instant::now();
            acked_updates = updates;
        }
        if let Some(e) = shared.error.lock().expect("error slot").clone() {
            anyhow::bail!("learner failed: {e}");
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
    learner.join().map_err(|_| anyhow::anyhow!("the learner thread panicked"))??;
    let per_actor: serde_json::Map<String, serde_json::Value> = actors
        .iter()
        .map(|(id, s)| (id.to_string(), serde_json::json!({"received": s.next_expected, "duplicates": s.duplicates, "malformed": s.malformed, "held_early": s.early.len()})))
        .collect();
    Ok(serde_json::json!({"actors": per_actor, "updates": shared.updates.load(Ordering::Acquire), "run_dir": run_dir.display().to_string()}))
}
