//! The simulated robot's task as a ROS 2 node that an actor steps in
//! lockstep: the simulation advances only when the actor asks, so a run
//! over DDS is step for step the run the actor would make with the
//! simulation in its own process (same seeds, same episodes), and a
//! 2-core machine is not paced by a wall clock.
//!
//! Topics under the robot's namespace (`std_msgs/UInt8MultiArray`, reliable):
//! - `task/requests`: `[actor session u64][sequence u64][op u8][payload]`,
//!   op `Describe` (sizes, bounds, recovery manoeuvre), `Reset` (payload:
//!   seed u64), `ResetNext`, `Step` (payload: the action, f64 each);
//! - `task/replies`: `[node incarnation u64][session u64][sequence u64]
//!   [status u8]` then, when the status is 0, `[reward f64][flags u8]
//!   [safety events u64][observation length u32][observation f64 each]`
//!   (and for `Describe` the action size, bounds and recovery actions), or
//!   the reason of a refusal as UTF-8.
//!
//! Delivery: the actor sends one request at a time and sends it again
//! when no reply came; the node answers a repeated sequence number with
//! the reply it sent (never stepping twice), ignores older ones, and
//! steps only the episode that session started, so a node that restarted
//! refuses a step of an episode it never saw instead of stepping another.
//! The node never sleeps between requests beyond its spin timeout and
//! must never step without a request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, Stream, StreamExt};
use r2r::QosProfile;
use rrl_types::{Environment, PracticeTask, Step};

type Bytes = r2r::std_msgs::msg::UInt8MultiArray;

/// A request not answered within this long is sent again (the first ones
/// can be lost while discovery matches the two ends).
const RESEND_AFTER: Duration = Duration::from_millis(250);
/// While the node does not answer, the actor says so this often.
const WARN_EVERY: Duration = Duration::from_secs(5);

fn qos() -> QosProfile {
    QosProfile::default().reliable().keep_last(100)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Op {
    Describe = 0,
    Reset = 1,
    ResetNext = 2,
    Step = 3,
}

impl Op {
    fn from_byte(byte: u8) -> Option<Op> {
        [Op::Describe, Op::Reset, Op::ResetNext, Op::Step].into_iter().find(|op| *op as u8 == byte)
    }
    fn words(self) -> &'static str {
        match self {
            Op::Describe => "its description",
            Op::Reset => "a reset",
            Op::ResetNext => "a reset",
            Op::Step => "a step",
        }
    }
}

/// Why a remote task could not do what the actor asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RemoteTaskError {
    #[error("the simulated robot on {topic} did not answer {what} (request {sequence}) within {waited_s:.0} s: is `rrl sim --lockstep` running with this launch file, on this ROS_DOMAIN_ID?")]
    NoAnswer { topic: String, what: &'static str, sequence: u64, waited_s: f64 },
    #[error("the simulated robot on {topic} refused {what}: {reason}")]
    Refused { topic: String, what: &'static str, reason: String },
    #[error("the simulated robot on {topic} sent a reply that does not parse ({len} bytes, for {what})")]
    Malformed { topic: String, what: &'static str, len: usize },
    #[error("ROS 2: {0}")]
    Ros(String),
}

fn put_f64s(out: &mut Vec<u8>, values: &[f64]) {
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Reads little-endian values from a reply, front to back.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let slice = self.bytes.get(self.at..self.at + n)?;
        self.at += n;
        Some(slice)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    fn f64(&mut self) -> Option<f64> {
        self.take(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    fn f64s(&mut self) -> Option<Vec<f64>> {
        let n = self.u32()? as usize;
        (0..n).map(|_| self.f64()).collect()
    }
    fn rest(&mut self) -> &'a [u8] {
        let rest = &self.bytes[self.at.min(self.bytes.len())..];
        self.at = self.bytes.len();
        rest
    }
}

const TERMINATED: u8 = 1;
const TRUNCATED: u8 = 2;
const SUCCESS_KNOWN: u8 = 4;
const SUCCEEDED: u8 = 8;

/// What every successful reply carries: the task's state after the request.
#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    reward: f64,
    flags: u8,
    safety_events: u64,
    observation: Vec<f64>,
}

/// What a `Describe` reply adds.
#[derive(Debug, Clone, PartialEq)]
struct Description {
    action_low: Vec<f64>,
    action_high: Vec<f64>,
    recovery: Vec<Vec<f64>>,
}

fn outcome_of<E: PracticeTask>(task: &mut E, step: Option<Step>) -> Outcome {
    let mut flags = 0;
    if let Some(step) = step {
        flags |= if step.terminated { TERMINATED } else { 0 } | if step.truncated { TRUNCATED } else { 0 };
    }
    if let Some(success) = task.success() {
        flags |= SUCCESS_KNOWN | if success { SUCCEEDED } else { 0 };
    }
    Outcome { reward: step.map_or(0.0, |s| s.reward), flags, safety_events: task.take_safety_events(), observation: task.observation().to_vec() }
}

fn encode_outcome(out: &mut Vec<u8>, outcome: &Outcome) {
    out.push(0);
    out.extend_from_slice(&outcome.reward.to_le_bytes());
    out.push(outcome.flags);
    out.extend_from_slice(&outcome.safety_events.to_le_bytes());
    put_f64s(out, &outcome.observation);
}

/// What the node did, for its report.
#[derive(Debug, Default, Clone, Copy)]
pub struct ServedCounts {
    pub requests: u64,
    pub steps: u64,
    pub resets: u64,
    /// Requests that arrived again and were answered with the reply already sent.
    pub repeated: u64,
    pub refused: u64,
}

/// The node's side, free of ROS so that its rules can be tested alone.
struct Server<E> {
    task: E,
    incarnation: u64,
    /// Per actor session: the last sequence number answered and its reply.
    answered: HashMap<u64, (u64, Vec<u8>)>,
    /// The session whose episode the task is in.
    episode_of: Option<u64>,
    counts: ServedCounts,
}

impl<E: PracticeTask> Server<E> {
    fn new(task: E, incarnation: u64) -> Server<E> {
        Server { task, incarnation, answered: HashMap::new(), episode_of: None, counts: ServedCounts::default() }
    }

    /// The reply to one request, if it deserves one (stale and malformed ones do not).
    fn handle(&mut self, request: &[u8]) -> Option<Vec<u8>> {
        let mut r = Reader { bytes: request, at: 0 };
        let (session, sequence, op) = (r.u64()?, r.u64()?, r.u8()?);
        if let Some((last, reply)) = self.answered.get(&session) {
            if sequence == *last {
                self.counts.repeated += 1;
                return Some(reply.clone());
            }
            if sequence < *last {
                return None;
            }
        }
        self.counts.requests += 1;
        let mut reply = Vec::with_capacity(64 + 8 * self.task.observation_size());
        reply.extend_from_slice(&self.incarnation.to_le_bytes());
        reply.extend_from_slice(&session.to_le_bytes());
        reply.extend_from_slice(&sequence.to_le_bytes());
        match self.execute(session, Op::from_byte(op), &mut r) {
            Ok(body) => reply.extend_from_slice(&body),
            Err(reason) => {
                self.counts.refused += 1;
                reply.push(1);
                reply.extend_from_slice(reason.as_bytes());
            }
        }
        self.answered.insert(session, (sequence, reply.clone()));
        Some(reply)
    }

    fn execute(&mut self, session: u64, op: Option<Op>, r: &mut Reader) -> Result<Vec<u8>, String> {
        let mut body = Vec::new();
        match op {
            None => return Err("unknown request kind".into()),
            Some(Op::Describe) => {
                let outcome = Outcome { reward: 0.0, flags: 0, safety_events: 0, observation: self.task.observation().to_vec() };
                encode_outcome(&mut body, &outcome);
                put_f64s(&mut body, self.task.action_low());
                put_f64s(&mut body, self.task.action_high());
                let recovery = self.task.recovery_actions();
                body.extend_from_slice(&(recovery.len() as u32).to_le_bytes());
                for action in &recovery {
                    put_f64s(&mut body, action);
                }
            }
            Some(op @ (Op::Reset | Op::ResetNext)) => {
                if op == Op::Reset {
                    let seed = r.u64().ok_or("a reset without its seed")?;
                    self.task.reset(seed);
                } else {
                    self.task.reset_next();
                }
                self.counts.resets += 1;
                self.episode_of = Some(session);
                encode_outcome(&mut body, &outcome_of(&mut self.task, None));
            }
            Some(Op::Step) => {
                if self.episode_of != Some(session) {
                    return Err("no episode of this actor is running here (the node restarted, or another actor reset the robot since): start again with --resume".into());
                }
                let action = r.f64s().ok_or("a step without a whole action")?;
                let step = self.task.step(&action).map_err(|e| e.to_string())?;
                self.counts.steps += 1;
                encode_outcome(&mut body, &outcome_of(&mut self.task, Some(step)));
            }
        }
        Ok(body)
    }
}

fn fresh_id() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    // Distinct per process and per call within it.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    nanos ^ (u64::from(std::process::id()) << 40) ^ CALLS.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Serves `task` on `namespace`'s `task/*` topics until `stop()` says so.
pub fn serve<E: PracticeTask>(task: E, namespace: &str, stop: &dyn Fn() -> bool) -> anyhow::Result<ServedCounts> {
    let ctx = r2r::Context::create()?;
    let mut node = r2r::Node::create(ctx, "rrl_sim_task", namespace)?;
    let mut requests = node.subscribe::<Bytes>("task/requests", qos())?;
    let replies = node.create_publisher::<Bytes>("task/replies", qos())?;
    let mut server = Server::new(task, fresh_id());
    tracing::info!(namespace, "the simulated robot's task serves lockstep steps on task/requests");
    while !stop() {
        node.spin_once(Duration::from_millis(5));
        while let Some(Some(request)) = requests.next().now_or_never() {
            if let Some(reply) = server.handle(&request.data) {
                replies.publish(&Bytes { data: reply, ..Default::default() })?;
            }
        }
    }
    Ok(server.counts)
}

/// The task node on a thread of this process (`rrl practice --robot node`),
/// reached over DDS like one in another process.
pub struct InProcessTaskNode {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<ServedCounts>>>,
}

impl InProcessTaskNode {
    pub fn start<E: PracticeTask + 'static>(task: E, namespace: &str) -> anyhow::Result<InProcessTaskNode> {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, namespace) = (stop.clone(), namespace.to_string());
        let thread = std::thread::Builder::new().name("sim-task-node".into()).spawn(move || serve(task, &namespace, &|| flag.load(Ordering::Acquire)))?;
        Ok(InProcessTaskNode { stop, thread: Some(thread) })
    }

    pub fn finish(mut self) -> anyhow::Result<serde_json::Value> {
        self.stop.store(true, Ordering::Release);
        let counts = self.thread.take().expect("joined once").join().map_err(|_| anyhow::anyhow!("the task node panicked"))??;
        Ok(counts_json(&counts))
    }
}

impl Drop for InProcessTaskNode {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub fn counts_json(counts: &ServedCounts) -> serde_json::Value {
    serde_json::json!({"requests": counts.requests, "steps": counts.steps, "resets": counts.resets, "repeated_replies": counts.repeated, "refused": counts.refused})
}

/// The actor's end: the remote task as an `Environment`.
pub struct RemoteTask {
    node: r2r::Node,
    requests: r2r::Publisher<Bytes>,
    replies: Box<dyn Stream<Item = Bytes> + Unpin + Send>,
    topic: String,
    session: u64,
    sequence: u64,
    answer_within: Duration,
    observation: Vec<f64>,
    action_low: Vec<f64>,
    action_high: Vec<f64>,
    recovery: Vec<Vec<f64>>,
    success: Option<bool>,
    safety_events: u64,
    /// A reset that failed (a reset cannot return an error): the next step reports it.
    failure: Option<RemoteTaskError>,
    request: Vec<u8>,
}

impl RemoteTask {
    /// Finds the task node on `namespace` and asks for its description;
    /// every request waits up to `answer_within` for its reply.
    pub fn connect(namespace: &str, answer_within: Duration) -> Result<RemoteTask, RemoteTaskError> {
        let ros = |e: r2r::Error| RemoteTaskError::Ros(e.to_string());
        let ctx = r2r::Context::create().map_err(ros)?;
        let session = fresh_id();
        let mut node = r2r::Node::create(ctx, &format!("rrl_task_client_{:x}", session & 0xffff_ffff), namespace).map_err(ros)?;
        let replies = Box::new(node.subscribe::<Bytes>("task/replies", qos()).map_err(ros)?);
        let requests = node.create_publisher::<Bytes>("task/requests", qos()).map_err(ros)?;
        let topic = format!("{}/task/requests", if namespace.starts_with('/') { namespace.to_string() } else { format!("/{namespace}") });
        let mut task = RemoteTask {
            node,
            requests,
            replies,
            topic,
            session,
            sequence: 0,
            answer_within,
            observation: Vec::new(),
            action_low: Vec::new(),
            action_high: Vec::new(),
            recovery: Vec::new(),
            success: None,
            safety_events: 0,
            failure: None,
            request: Vec::new(),
        };
        let reply = task.call(Op::Describe, &[])?;
        let malformed = RemoteTaskError::Malformed { topic: task.topic.clone(), what: Op::Describe.words(), len: reply.len() };
        let mut r = Reader { bytes: &reply, at: 0 };
        task.absorb(&mut r).ok_or(malformed.clone())?;
        let description = (|| {
            let (low, high) = (r.f64s()?, r.f64s()?);
            let count = r.u32()? as usize;
            let recovery = (0..count).map(|_| r.f64s()).collect::<Option<Vec<_>>>()?;
            Some(Description { action_low: low, action_high: high, recovery })
        })()
        .ok_or(malformed)?;
        task.action_low = description.action_low;
        task.action_high = description.action_high;
        task.recovery = description.recovery;
        Ok(task)
    }

    /// Sends one request and waits for its reply (resending as needed);
    /// the reply's body after the status byte.
    fn call(&mut self, op: Op, payload: &[u8]) -> Result<Vec<u8>, RemoteTaskError> {
        self.sequence += 1;
        self.request.clear();
        self.request.extend_from_slice(&self.session.to_le_bytes());
        self.request.extend_from_slice(&self.sequence.to_le_bytes());
        self.request.push(op as u8);
        self.request.extend_from_slice(payload);
        let started = Instant::now();
        let (mut sent, mut warned) = (None::<Instant>, started);
        loop {
            if sent.is_none_or(|at| at.elapsed() >= RESEND_AFTER) {
                self.requests.publish(&Bytes { data: self.request.clone(), ..Default::default() }).map_err(|e| RemoteTaskError::Ros(e.to_string()))?;
                sent = Some(Instant::now());
            }
            self.node.spin_once(Duration::from_millis(1));
            while let Some(Some(reply)) = self.replies.next().now_or_never() {
                let mut r = Reader { bytes: &reply.data, at: 0 };
                let (Some(_incarnation), Some(session), Some(sequence)) = (r.u64(), r.u64(), r.u64()) else { continue };
                if session != self.session || sequence != self.sequence {
                    continue;
                }
                return match r.u8() {
                    Some(0) => Ok(r.rest().to_vec()),
                    Some(_) => Err(RemoteTaskError::Refused { topic: self.topic.clone(), what: op.words(), reason: String::from_utf8_lossy(r.rest()).into_owned() }),
                    None => Err(RemoteTaskError::Malformed { topic: self.topic.clone(), what: op.words(), len: reply.data.len() }),
                };
            }
            let waited = started.elapsed();
            if waited >= self.answer_within {
                return Err(RemoteTaskError::NoAnswer { topic: self.topic.clone(), what: op.words(), sequence: self.sequence, waited_s: waited.as_secs_f64() });
            }
            if warned.elapsed() >= WARN_EVERY {
                warned = Instant::now();
                tracing::warn!(topic = %self.topic, waited_s = waited.as_secs(), "practice is paused: the simulated robot has not answered {} yet", op.words());
            }
        }
    }

    /// Takes in the state part of a reply (after the status byte).
    fn absorb(&mut self, r: &mut Reader) -> Option<(f64, u8)> {
        let (reward, flags, safety_events, observation) = (r.f64()?, r.u8()?, r.u64()?, r.f64s()?);
        self.safety_events += safety_events;
        self.success = (flags & SUCCESS_KNOWN != 0).then_some(flags & SUCCEEDED != 0);
        self.observation = observation;
        Some((reward, flags))
    }

    fn reset_with(&mut self, op: Op, payload: &[u8]) -> &[f64] {
        let result = self.call(op, payload).and_then(|reply| {
            let len = reply.len();
            self.absorb(&mut Reader { bytes: &reply, at: 0 }).map(|_| ()).ok_or(RemoteTaskError::Malformed { topic: self.topic.clone(), what: op.words(), len })
        });
        if let Err(e) = result {
            self.failure = Some(e);
        }
        &self.observation
    }
}

impl Environment for RemoteTask {
    type Error = RemoteTaskError;

    fn observation_size(&self) -> usize {
        self.observation.len()
    }
    fn action_size(&self) -> usize {
        self.action_low.len()
    }
    fn action_low(&self) -> &[f64] {
        &self.action_low
    }
    fn action_high(&self) -> &[f64] {
        &self.action_high
    }
    fn observation(&self) -> &[f64] {
        &self.observation
    }
    fn reset(&mut self, seed: u64) -> &[f64] {
        self.reset_with(Op::Reset, &seed.to_le_bytes())
    }
    fn reset_next(&mut self) -> &[f64] {
        self.reset_with(Op::ResetNext, &[])
    }
    fn step(&mut self, action: &[f64]) -> Result<Step, RemoteTaskError> {
        if let Some(failure) = self.failure.take() {
            return Err(failure);
        }
        let mut payload = Vec::with_capacity(4 + 8 * action.len());
        put_f64s(&mut payload, action);
        let reply = self.call(Op::Step, &payload)?;
        let len = reply.len();
        let (reward, flags) = self.absorb(&mut Reader { bytes: &reply, at: 0 }).ok_or(RemoteTaskError::Malformed { topic: self.topic.clone(), what: Op::Step.words(), len })?;
        Ok(Step { reward, terminated: flags & TERMINATED != 0, truncated: flags & TRUNCATED != 0 })
    }
    fn success(&self) -> Option<bool> {
        self.success
    }
}

impl PracticeTask for RemoteTask {
    fn recovery_actions(&self) -> Vec<Vec<f64>> {
        self.recovery.clone()
    }
    fn take_safety_events(&mut self) -> u64 {
        std::mem::take(&mut self.safety_events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-dimensional task: the state moves by the action; reward is the new state.
    struct Counter {
        state: Vec<f64>,
        steps: u64,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("counter refuses {0}")]
    struct CounterError(f64);

    impl Environment for Counter {
        type Error = CounterError;
        fn observation_size(&self) -> usize {
            1
        }
        fn action_size(&self) -> usize {
            1
        }
        fn action_low(&self) -> &[f64] {
            &[-1.0]
        }
        fn action_high(&self) -> &[f64] {
            &[1.0]
        }
        fn observation(&self) -> &[f64] {
            &self.state
        }
        fn reset(&mut self, seed: u64) -> &[f64] {
            self.state = vec![seed as f64];
            &self.state
        }
        fn reset_next(&mut self) -> &[f64] {
            self.state = vec![0.0];
            &self.state
        }
        fn step(&mut self, action: &[f64]) -> Result<Step, CounterError> {
            if action[0].abs() > 1.0 {
                return Err(CounterError(action[0]));
            }
            self.state[0] += action[0];
            self.steps += 1;
            Ok(Step { reward: self.state[0], terminated: self.state[0] >= 3.0, truncated: false })
        }
        fn success(&self) -> Option<bool> {
            Some(self.state[0] >= 3.0)
        }
    }
    impl PracticeTask for Counter {}

    fn request(session: u64, sequence: u64, op: Op, payload: &[u8]) -> Vec<u8> {
        let mut r = session.to_le_bytes().to_vec();
        r.extend_from_slice(&sequence.to_le_bytes());
        r.push(op as u8);
        r.extend_from_slice(payload);
        r
    }

    fn step_request(session: u64, sequence: u64, action: f64) -> Vec<u8> {
        let mut payload = Vec::new();
        put_f64s(&mut payload, &[action]);
        request(session, sequence, Op::Step, &payload)
    }

    fn status_of(reply: &[u8]) -> u8 {
        reply[24]
    }

    #[test]
    fn a_repeated_request_gets_the_same_reply_without_stepping_again_and_a_stale_one_none() {
        let mut server = Server::new(Counter { state: vec![0.0], steps: 0 }, 7);
        let reset = server.handle(&request(1, 1, Op::Reset, &2u64.to_le_bytes())).unwrap();
        assert_eq!(status_of(&reset), 0);
        let first = server.handle(&step_request(1, 2, 1.0)).unwrap();
        let again = server.handle(&step_request(1, 2, 1.0)).unwrap();
        assert_eq!(first, again);
        assert_eq!(server.task.steps, 1, "a resent step must not step twice");
        assert_eq!(server.counts.repeated, 1);
        assert!(server.handle(&step_request(1, 1, 1.0)).is_none(), "an older request is stale");
        // The reply carries the new state, the reward and the task's verdict.
        let mut r = Reader { bytes: &first[25..], at: 0 };
        assert_eq!((r.f64(), r.u8(), r.u64(), r.f64s()), (Some(3.0), Some(TERMINATED | SUCCESS_KNOWN | SUCCEEDED), Some(0), Some(vec![3.0])));
    }

    #[test]
    fn a_step_of_an_episode_the_node_never_started_and_a_bad_action_are_refused_with_the_reason() {
        let mut server = Server::new(Counter { state: vec![0.0], steps: 0 }, 7);
        let refused = server.handle(&step_request(1, 5, 0.5)).unwrap();
        assert_eq!(status_of(&refused), 1);
        assert!(String::from_utf8_lossy(&refused[25..]).contains("no episode of this actor"));
        server.handle(&request(2, 1, Op::ResetNext, &[])).unwrap();
        // Session 1 lost the robot to session 2's episode.
        assert_eq!(status_of(&server.handle(&step_request(1, 6, 0.5)).unwrap()), 1);
        let bad = server.handle(&step_request(2, 2, 5.0)).unwrap();
        assert_eq!(String::from_utf8_lossy(&bad[25..]), "counter refuses 5");
        assert_eq!(server.task.steps, 0);
        assert!(server.handle(&[1, 2, 3]).is_none(), "a request too short to read is dropped");
    }
}
