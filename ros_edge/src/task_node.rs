//! The simulated robot's task as a ROS 2 node that an actor steps in
//! lockstep: the simulation advances only when the actor asks, so a run
//! over DDS is step for step the run the actor would make with the
//! simulation in its own process (same seeds, same episodes), and a
//! 2-core machine is not paced by a wall clock.
//!
//! Topics under the robot's namespace (`std_msgs/UInt8MultiArray`, reliable,
//! carrying `wire` messages):
//! - `task/requests`: `wire::TaskRequest` (actor session, sequence number,
//!   and `Describe`, `Reset` with its seed, `ResetNext` or `Step` with the
//!   action);
//! - `task/replies`: `wire::TaskReply` (node incarnation, session, sequence,
//!   and the task's state after the request: reward, termination, success,
//!   the gate's safety events and reflexes, the observation, the recovery
//!   manoeuvre for where the robot is and whether the task itself calls
//!   for it; for `Describe` also the action bounds; or the reason of a
//!   refusal).
//!
//! Delivery: the actor sends one request at a time and sends it again
//! when no reply came; the node answers a repeated sequence number with
//! the reply it sent (never stepping twice), ignores older ones, and
//! steps only the episode that session started, so a node that restarted
//! refuses a step of an episode it never saw instead of stepping another.
//! A request of another wire format version is answered with a reply of
//! this node's version, which that actor refuses naming both versions.
//! The node never sleeps between requests beyond its spin timeout and
//! must never step without a request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, Stream, StreamExt};
use rrl_types::{Environment, PracticeTask, SafetyEvents, Step};

use crate::qos::{bytes_message, Bytes};
use crate::wire::{TaskAnswer, TaskDescription, TaskOp, TaskReply, TaskRequest, TaskState, WireError};
use crate::EdgeError;

/// A request not answered within this long is sent again (the first ones
/// can be lost while discovery matches the two ends).
const RESEND_AFTER: Duration = Duration::from_millis(250);
/// While the node does not answer, the actor says so this often.
const WARN_EVERY: Duration = Duration::from_secs(5);

/// Why a remote task could not do what the actor asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RemoteTaskError {
    #[error("the simulated robot on {topic} did not answer {what} (request {sequence}) within {waited_s:.0} s: is `rrl sim --lockstep` running with this launch file, on this ROS_DOMAIN_ID?")]
    NoAnswer { topic: String, what: &'static str, sequence: u64, waited_s: f64 },
    #[error("the simulated robot on {topic} refused {what}: {reason}")]
    Refused { topic: String, what: &'static str, reason: String },
    #[error("the simulated robot on {topic} sent a reply to {what} that does not parse: {error}")]
    Malformed { topic: String, what: &'static str, error: WireError },
    #[error("ROS 2: {0}")]
    Ros(String),
}

fn state_of<E: PracticeTask>(task: &mut E, step: Option<Step>) -> TaskState {
    let step = step.unwrap_or(Step { reward: 0.0, terminated: false, truncated: false });
    let recovery = task.recovery_actions();
    if recovery.len() > crate::wire::MAX_RECOVERY_ACTIONS {
        tracing::warn!(actions = recovery.len(), "the task's recovery manoeuvre has more actions than the wire carries ({}): the rest are left out", crate::wire::MAX_RECOVERY_ACTIONS);
    }
    TaskState { reward: step.reward, terminated: step.terminated, truncated: step.truncated, success: task.success(), safety: task.take_safety_events(), observation: task.observation().to_vec(), frames: frames_of(task), recovery, needs_recovery: task.needs_recovery() }
}

/// The task's camera frames with their layout, if its policy sees cameras
/// (frames that do not fit their layout are not sent: the actor then
/// refuses the state as one without the frames its policy needs).
fn frames_of<E: PracticeTask>(task: &E) -> Option<(rrl_types::FrameLayout, Vec<u8>)> {
    task.frame_layout().zip(task.frames().map(<[u8]>::to_vec)).filter(|(layout, rgb)| rgb.len() == layout.bytes())
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
    /// Requests that did not parse (another wire format version among them).
    pub unreadable: u64,
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
    fn handle(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        let request = match TaskRequest::decode(bytes) {
            Ok(request) => request,
            Err(error) => {
                self.counts.unreadable += 1;
                tracing::warn!("task/requests: a request that does not parse: {error}");
                // An actor of another release learns the versions from a reply in ours.
                let reason = format!("this node speaks rrl wire format version {}: {error}", crate::wire::VERSION);
                return matches!(error, WireError::Version { .. }).then(|| TaskReply { incarnation: self.incarnation, session: 0, sequence: 0, answer: TaskAnswer::Refused(reason) }.encode());
            }
        };
        let (session, sequence) = (request.session, request.sequence);
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
        let answer = self.execute(session, request.op).unwrap_or_else(|reason| {
            self.counts.refused += 1;
            TaskAnswer::Refused(reason)
        });
        let reply = TaskReply { incarnation: self.incarnation, session, sequence, answer }.encode();
        self.answered.insert(session, (sequence, reply.clone()));
        Some(reply)
    }

    fn execute(&mut self, session: u64, op: TaskOp) -> Result<TaskAnswer, String> {
        Ok(match op {
            TaskOp::Describe => {
                let state = TaskState { observation: self.task.observation().to_vec(), frames: frames_of(&self.task), ..TaskState::default() };
                let description = TaskDescription { action_low: self.task.action_low().to_vec(), action_high: self.task.action_high().to_vec(), recovery: self.task.recovery_actions() };
                TaskAnswer::Described(state, description)
            }
            op @ (TaskOp::Reset { .. } | TaskOp::ResetNext) => {
                match op {
                    TaskOp::Reset { seed } => self.task.reset(seed),
                    _ => self.task.reset_next(),
                };
                self.counts.resets += 1;
                self.episode_of = Some(session);
                TaskAnswer::State(state_of(&mut self.task, None))
            }
            TaskOp::Step { action } => {
                if self.episode_of != Some(session) {
                    return Err("no episode of this actor is running here (the node restarted, or another actor reset the robot since): start again with --resume".into());
                }
                if action.len() != self.task.action_size() {
                    return Err(format!("an action of {} values; the task takes {}", action.len(), self.task.action_size()));
                }
                let step = self.task.step(&action).map_err(|e| e.to_string())?;
                self.counts.steps += 1;
                TaskAnswer::State(state_of(&mut self.task, Some(step)))
            }
        })
    }
}

/// Serves `task` on `namespace`'s `task/*` topics until `stop()` says so.
pub fn serve<E: PracticeTask>(task: E, namespace: &str, stop: &dyn Fn() -> bool) -> Result<ServedCounts, EdgeError> {
    let ctx = r2r::Context::create()?;
    let mut node = r2r::Node::create(ctx, "rrl_sim_task", namespace)?;
    let mut requests = node.subscribe::<Bytes>("task/requests", crate::qos::lockstep())?;
    let replies = node.create_publisher::<Bytes>("task/replies", crate::qos::lockstep())?;
    let mut server = Server::new(task, crate::fresh_id());
    tracing::info!(namespace, "the simulated robot's task serves lockstep steps on task/requests");
    while !stop() {
        node.spin_once(Duration::from_millis(5));
        while let Some(Some(request)) = requests.next().now_or_never() {
            if let Some(reply) = server.handle(&request.data) {
                replies.publish(&bytes_message(reply))?;
            }
        }
    }
    Ok(server.counts)
}

/// The task node on a thread of this process (`rrl practice --robot node`),
/// reached over DDS like one in another process.
pub struct InProcessTaskNode {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Result<ServedCounts, EdgeError>>>,
}

impl InProcessTaskNode {
    pub fn start<E: PracticeTask + 'static>(task: E, namespace: &str) -> Result<InProcessTaskNode, EdgeError> {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, namespace) = (stop.clone(), namespace.to_string());
        let thread = std::thread::Builder::new()
            .name("sim-task-node".into())
            .spawn(move || serve(task, &namespace, &|| flag.load(Ordering::Acquire)))
            .map_err(EdgeError::io("starting the task node's thread"))?;
        Ok(InProcessTaskNode { stop, thread: Some(thread) })
    }

    pub fn finish(mut self) -> Result<serde_json::Value, EdgeError> {
        self.stop.store(true, Ordering::Release);
        let counts = self.thread.take().expect("joined once").join().map_err(|_| EdgeError::Panicked("task node"))??;
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
    serde_json::json!({"requests": counts.requests, "steps": counts.steps, "resets": counts.resets, "repeated_replies": counts.repeated, "refused": counts.refused, "unreadable": counts.unreadable})
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
    /// Whether the task itself called for its manoeuvre after the last request.
    called_recovery: bool,
    success: Option<bool>,
    safety_events: SafetyEvents,
    /// The current observation's camera frames and their layout, if the task has cameras.
    frames: Option<(rrl_types::FrameLayout, Vec<u8>)>,
    /// A reset that failed (a reset cannot return an error): the next step reports it.
    failure: Option<RemoteTaskError>,
}

impl RemoteTask {
    /// Finds the task node on `namespace` and asks for its description;
    /// every request waits up to `answer_within` for its reply.
    pub fn connect(namespace: &str, answer_within: Duration) -> Result<RemoteTask, RemoteTaskError> {
        let ros = |e: r2r::Error| RemoteTaskError::Ros(e.to_string());
        let ctx = r2r::Context::create().map_err(ros)?;
        let session = crate::fresh_id();
        let mut node = r2r::Node::create(ctx, &format!("rrl_task_client_{:x}", session & 0xffff_ffff), namespace).map_err(ros)?;
        let replies = Box::new(node.subscribe::<Bytes>("task/replies", crate::qos::lockstep()).map_err(ros)?);
        let requests = node.create_publisher::<Bytes>("task/requests", crate::qos::lockstep()).map_err(ros)?;
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
            called_recovery: false,
            success: None,
            safety_events: SafetyEvents::default(),
            frames: None,
            failure: None,
        };
        match task.call(TaskOp::Describe)? {
            TaskAnswer::Described(state, description) => {
                task.absorb(&state);
                task.action_low = description.action_low;
                task.action_high = description.action_high;
                task.recovery = description.recovery;
                Ok(task)
            }
            _ => Err(task.unexpected(TaskOp::Describe.words())),
        }
    }

    fn unexpected(&self, what: &'static str) -> RemoteTaskError {
        RemoteTaskError::Refused { topic: self.topic.clone(), what, reason: "the node answered with another kind of reply".into() }
    }

    /// Sends one request and waits for its reply (resending as needed).
    fn call(&mut self, op: TaskOp) -> Result<TaskAnswer, RemoteTaskError> {
        self.sequence += 1;
        let what = op.words();
        let request = bytes_message(TaskRequest { session: self.session, sequence: self.sequence, op }.encode());
        let started = Instant::now();
        let (mut sent, mut warned) = (None::<Instant>, started);
        loop {
            if sent.is_none_or(|at| at.elapsed() >= RESEND_AFTER) {
                self.requests.publish(&request).map_err(|e| RemoteTaskError::Ros(e.to_string()))?;
                sent = Some(Instant::now());
            }
            self.node.spin_once(Duration::from_millis(1));
            while let Some(Some(reply)) = self.replies.next().now_or_never() {
                let reply = match TaskReply::decode(&reply.data) {
                    Ok(reply) => reply,
                    // A node of another release: nothing we send would be understood.
                    Err(error @ WireError::Version { .. }) => return Err(RemoteTaskError::Malformed { topic: self.topic.clone(), what, error }),
                    Err(error) => {
                        tracing::warn!(topic = %self.topic, "dropped a reply that does not parse: {error}");
                        continue;
                    }
                };
                if reply.session != self.session || reply.sequence != self.sequence {
                    continue;
                }
                return match reply.answer {
                    TaskAnswer::Refused(reason) => Err(RemoteTaskError::Refused { topic: self.topic.clone(), what, reason }),
                    answer => Ok(answer),
                };
            }
            let waited = started.elapsed();
            if waited >= self.answer_within {
                return Err(RemoteTaskError::NoAnswer { topic: self.topic.clone(), what, sequence: self.sequence, waited_s: waited.as_secs_f64() });
            }
            if warned.elapsed() >= WARN_EVERY {
                warned = Instant::now();
                tracing::warn!(topic = %self.topic, waited_s = waited.as_secs(), "practice is paused: the simulated robot has not answered {what} yet");
            }
        }
    }

    /// Takes in the task's state from a reply.
    fn absorb(&mut self, state: &TaskState) {
        self.safety_events += state.safety;
        self.success = state.success;
        self.observation.clone_from(&state.observation);
        self.frames.clone_from(&state.frames);
        self.called_recovery = state.needs_recovery;
        // The manoeuvre for where the robot is now: actions the task takes (its size, finite), else the last good one.
        let fits = |a: &Vec<f64>| a.len() == self.action_low.len() && a.iter().all(|v| v.is_finite());
        if !state.recovery.is_empty() && (self.action_low.is_empty() || state.recovery.iter().all(fits)) {
            self.recovery.clone_from(&state.recovery);
        }
    }

    fn reset_with(&mut self, op: TaskOp) -> &[f64] {
        let what = op.words();
        match self.call(op) {
            Ok(TaskAnswer::State(state)) => self.absorb(&state),
            Ok(_) => self.failure = Some(self.unexpected(what)),
            Err(e) => self.failure = Some(e),
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
        self.reset_with(TaskOp::Reset { seed })
    }
    fn reset_next(&mut self) -> &[f64] {
        self.reset_with(TaskOp::ResetNext)
    }
    fn step(&mut self, action: &[f64]) -> Result<Step, RemoteTaskError> {
        if let Some(failure) = self.failure.take() {
            return Err(failure);
        }
        match self.call(TaskOp::Step { action: action.to_vec() })? {
            TaskAnswer::State(state) => {
                self.absorb(&state);
                Ok(Step { reward: state.reward, terminated: state.terminated, truncated: state.truncated })
            }
            _ => Err(self.unexpected(TaskOp::Step { action: Vec::new() }.words())),
        }
    }
    fn success(&self) -> Option<bool> {
        self.success
    }
    fn frames(&self) -> Option<&[u8]> {
        self.frames.as_ref().map(|(_, rgb)| rgb.as_slice())
    }
    fn frame_layout(&self) -> Option<rrl_types::FrameLayout> {
        self.frames.as_ref().map(|(layout, _)| *layout)
    }
}

impl PracticeTask for RemoteTask {
    /// The manoeuvre for where the robot is after the last request.
    fn recovery_actions(&self) -> Vec<Vec<f64>> {
        self.recovery.clone()
    }
    fn needs_recovery(&self) -> bool {
        self.called_recovery
    }
    fn take_safety_events(&mut self) -> SafetyEvents {
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

    fn request(session: u64, sequence: u64, op: TaskOp) -> Vec<u8> {
        TaskRequest { session, sequence, op }.encode()
    }

    fn step_request(session: u64, sequence: u64, action: f64) -> Vec<u8> {
        request(session, sequence, TaskOp::Step { action: vec![action] })
    }

    fn answer_of(reply: &[u8]) -> TaskAnswer {
        TaskReply::decode(reply).unwrap().answer
    }

    fn refusal_of(reply: &[u8]) -> String {
        match answer_of(reply) {
            TaskAnswer::Refused(reason) => reason,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn a_repeated_request_gets_the_same_reply_without_stepping_again_and_a_stale_one_none() {
        let mut server = Server::new(Counter { state: vec![0.0], steps: 0 }, 7);
        let reset = server.handle(&request(1, 1, TaskOp::Reset { seed: 2 })).unwrap();
        assert!(matches!(answer_of(&reset), TaskAnswer::State(_)));
        let first = server.handle(&step_request(1, 2, 1.0)).unwrap();
        let again = server.handle(&step_request(1, 2, 1.0)).unwrap();
        assert_eq!(first, again);
        assert_eq!(server.task.steps, 1, "a resent step must not step twice");
        assert_eq!(server.counts.repeated, 1);
        assert!(server.handle(&step_request(1, 1, 1.0)).is_none(), "an older request is stale");
        // The reply carries the new state, the reward and the task's verdict.
        let expected = TaskState { reward: 3.0, terminated: true, truncated: false, success: Some(true), safety: SafetyEvents::default(), observation: vec![3.0], frames: None, recovery: Vec::new(), needs_recovery: false };
        assert_eq!(answer_of(&first), TaskAnswer::State(expected));
    }

    #[test]
    fn a_step_of_an_episode_the_node_never_started_and_a_bad_action_are_refused_with_the_reason() {
        let mut server = Server::new(Counter { state: vec![0.0], steps: 0 }, 7);
        let refused = server.handle(&step_request(1, 5, 0.5)).unwrap();
        assert!(refusal_of(&refused).contains("no episode of this actor"));
        server.handle(&request(2, 1, TaskOp::ResetNext)).unwrap();
        // Session 1 lost the robot to session 2's episode.
        assert!(refusal_of(&server.handle(&step_request(1, 6, 0.5)).unwrap()).contains("no episode of this actor"));
        let bad = server.handle(&step_request(2, 2, 5.0)).unwrap();
        assert_eq!(refusal_of(&bad), "counter refuses 5");
        let two = server.handle(&request(2, 3, TaskOp::Step { action: vec![0.5, 0.5] })).unwrap();
        assert_eq!(refusal_of(&two), "an action of 2 values; the task takes 1");
        assert_eq!(server.task.steps, 0);
        assert!(server.handle(&[1, 2, 3]).is_none(), "a request too short to read is dropped");
        assert_eq!(server.counts.unreadable, 1);
    }

    #[test]
    fn an_actor_of_another_wire_format_version_is_refused_naming_both_versions() {
        let mut server = Server::new(Counter { state: vec![0.0], steps: 0 }, 7);
        let mut future = request(1, 1, TaskOp::Describe);
        future[2..4].copy_from_slice(&(crate::wire::VERSION + 1).to_le_bytes());
        let reply = server.handle(&future).expect("an actor of another release is told");
        assert_eq!(server.counts.unreadable, 1);
        let reason = refusal_of(&reply);
        assert!(reason.contains(&format!("version {}", crate::wire::VERSION + 1)) && reason.contains(&format!("version {}", crate::wire::VERSION)), "{reason}");
        // That actor reads the node's reply as another version, naming both too.
        let mut reply_from_the_future = reply.clone();
        reply_from_the_future[2..4].copy_from_slice(&(crate::wire::VERSION + 1).to_le_bytes());
        assert_eq!(TaskReply::decode(&reply_from_the_future).unwrap_err(), WireError::Version { theirs: crate::wire::VERSION + 1, ours: crate::wire::VERSION });
    }
}
