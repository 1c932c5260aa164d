//! The one wire format of rrl's own topics (`std_msgs/UInt8MultiArray`
//! payloads): lockstep task requests and replies, an actor's stream of
//! transitions, the learner's acknowledgements and its actor weights.
//!
//! Every message starts with `[b"rl"][format version u16][kind u8]`, little
//! endian throughout. A message of another format version is refused with
//! both versions named, so two rrl releases that cannot talk say so
//! instead of misreading each other. Every count read from the wire is
//! checked against the bytes actually there before anything is allocated,
//! and errors name the message, the field and its byte offset.

use policies::practice::{ActorWeights, PublishedCritic, ToLearner};
use policies::replay::Transition;
use rrl_types::SafetyEvents;

/// The format this build speaks. Bump it whenever any layout below changes.
/// 2: stream items carry camera frames and transitions name theirs; task
/// states carry the observation's frames.
/// 3: task states carry the task's own call for its recovery with the
/// manoeuvre then (a car's collision).
/// 4: task states always carry the recovery manoeuvre for where the robot
/// is, and a flag when the task itself calls for it.
pub const VERSION: u16 = 4;
const MAGIC: [u8; 2] = *b"rl";
const HEADER: usize = 5;

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    TaskRequest = 1,
    TaskReply = 2,
    StreamItem = 3,
    Acks = 4,
    Weights = 5,
    RiskCritic = 6,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::TaskRequest => "task request",
            Kind::TaskReply => "task reply",
            Kind::StreamItem => "stream item",
            Kind::Acks => "acknowledgement",
            Kind::Weights => "weights",
            Kind::RiskCritic => "risk critic",
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WireError {
    #[error("not an rrl message ({len} bytes without the `rl` header)")]
    NotOurs { len: usize },
    #[error("the peer speaks rrl wire format version {theirs}, this rrl speaks version {ours}: run the same rrl release on both ends")]
    Version { theirs: u16, ours: u16 },
    #[error("expected a {expected} message, got message kind {got}")]
    Kind { expected: &'static str, got: u8 },
    #[error("{message}: `{field}` at byte {at} needs {needed} bytes, the message has {len}")]
    Truncated { message: &'static str, field: &'static str, at: usize, needed: usize, len: usize },
    #[error("{message}: `{field}` at byte {at}: {reason}")]
    Invalid { message: &'static str, field: &'static str, at: usize, reason: String },
    #[error("{message}: {extra} bytes after its end")]
    Trailing { message: &'static str, extra: usize },
}

/// Builds one message: header first, then fields in order.
pub struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    pub fn new(kind: Kind) -> Writer {
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.push(kind as u8);
        Writer { bytes }
    }
    fn put<const N: usize>(&mut self, bytes: [u8; N]) -> &mut Self {
        self.bytes.extend_from_slice(&bytes);
        self
    }
    pub fn u8(&mut self, v: u8) -> &mut Self { self.put([v]) }
    pub fn u32(&mut self, v: u32) -> &mut Self { self.put(v.to_le_bytes()) }
    pub fn u64(&mut self, v: u64) -> &mut Self { self.put(v.to_le_bytes()) }
    pub fn i64(&mut self, v: i64) -> &mut Self { self.put(v.to_le_bytes()) }
    pub fn f32(&mut self, v: f32) -> &mut Self { self.put(v.to_le_bytes()) }
    pub fn f64(&mut self, v: f64) -> &mut Self { self.put(v.to_le_bytes()) }
    /// A count, then the values.
    pub fn f64s(&mut self, values: &[f64]) -> &mut Self {
        self.u32(values.len() as u32);
        values.iter().for_each(|v| self.bytes.extend_from_slice(&v.to_le_bytes()));
        self
    }
    pub fn f32s(&mut self, values: &[f32]) -> &mut Self {
        self.u32(values.len() as u32);
        values.iter().for_each(|v| self.bytes.extend_from_slice(&v.to_le_bytes()));
        self
    }
    /// A count, then UTF-8.
    pub fn text(&mut self, text: &str) -> &mut Self {
        self.bytes(text.as_bytes())
    }
    /// A count, then the bytes.
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.u32(bytes.len() as u32);
        self.bytes.extend_from_slice(bytes);
        self
    }
    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// The kind of a message, after checking its header and version.
pub fn kind_of(bytes: &[u8]) -> Result<u8, WireError> {
    if bytes.len() < HEADER || bytes[..2] != MAGIC {
        return Err(WireError::NotOurs { len: bytes.len() });
    }
    let theirs = u16::from_le_bytes([bytes[2], bytes[3]]);
    if theirs != VERSION {
        return Err(WireError::Version { theirs, ours: VERSION });
    }
    Ok(bytes[4])
}

/// Reads one message front to back; every read is bounded by the bytes
/// that are there.
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    message: &'static str,
}

impl<'a> Reader<'a> {
    /// Checks the header: ours, this version, the expected kind.
    pub fn open(bytes: &'a [u8], expected: Kind) -> Result<Reader<'a>, WireError> {
        let got = kind_of(bytes)?;
        if got != expected as u8 {
            return Err(WireError::Kind { expected: expected.name(), got });
        }
        Ok(Reader { bytes, at: HEADER, message: expected.name() })
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], WireError> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return Err(WireError::Truncated { message: self.message, field, at: self.at, needed: n, len: self.bytes.len() });
        };
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }
    fn le<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], WireError> {
        Ok(self.take(N, field)?.try_into().expect("N bytes"))
    }
    pub fn u8(&mut self, field: &'static str) -> Result<u8, WireError> { Ok(self.le::<1>(field)?[0]) }
    pub fn u32(&mut self, field: &'static str) -> Result<u32, WireError> { self.le(field).map(u32::from_le_bytes) }
    pub fn u64(&mut self, field: &'static str) -> Result<u64, WireError> { self.le(field).map(u64::from_le_bytes) }
    pub fn i64(&mut self, field: &'static str) -> Result<i64, WireError> { self.le(field).map(i64::from_le_bytes) }
    pub fn f32(&mut self, field: &'static str) -> Result<f32, WireError> { self.le(field).map(f32::from_le_bytes) }
    pub fn f64(&mut self, field: &'static str) -> Result<f64, WireError> { self.le(field).map(f64::from_le_bytes) }
    /// A count of items of `item_size` bytes each, checked against what is left.
    fn count(&mut self, item_size: usize, field: &'static str) -> Result<usize, WireError> {
        let at = self.at;
        let n = self.u32(field)? as usize;
        let left = self.bytes.len() - self.at;
        if n.saturating_mul(item_size.max(1)) > left {
            return Err(WireError::Invalid { message: self.message, field, at, reason: format!("{n} items announced, only {left} bytes left") });
        }
        Ok(n)
    }
    pub fn f64s(&mut self, field: &'static str) -> Result<Vec<f64>, WireError> {
        let n = self.count(8, field)?;
        Ok(self.take(8 * n, field)?.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
    }
    pub fn f32s(&mut self, field: &'static str) -> Result<Vec<f32>, WireError> {
        let n = self.count(4, field)?;
        Ok(self.take(4 * n, field)?.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect())
    }
    pub fn text(&mut self, field: &'static str) -> Result<String, WireError> {
        let at = self.at;
        let bytes = self.bytes(field)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| WireError::Invalid { message: self.message, field, at, reason: "not UTF-8".into() })
    }
    /// A count, then that many bytes.
    pub fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], WireError> {
        let n = self.count(1, field)?;
        self.take(n, field)
    }
    /// Where the next field starts.
    fn position(&self) -> usize {
        self.at
    }
    /// The field that started at `at` holds what this message cannot mean.
    fn invalid(&self, field: &'static str, at: usize, reason: impl Into<String>) -> WireError {
        WireError::Invalid { message: self.message, field, at, reason: reason.into() }
    }
    /// The message must end here.
    pub fn end(self) -> Result<(), WireError> {
        match self.bytes.len() - self.at {
            0 => Ok(()),
            extra => Err(WireError::Trailing { message: self.message, extra }),
        }
    }
}

// ---------------------------------------------------------------------------
// Lockstep task: requests and replies
// ---------------------------------------------------------------------------

/// What an actor asks of a lockstep task node.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskOp {
    /// Sizes, action bounds and the recovery manoeuvre.
    Describe,
    Reset { seed: u64 },
    ResetNext,
    Step { action: Vec<f64> },
}

impl TaskOp {
    /// In words, for messages: "a step".
    pub fn words(&self) -> &'static str {
        match self {
            TaskOp::Describe => "its description",
            TaskOp::Reset { .. } | TaskOp::ResetNext => "a reset",
            TaskOp::Step { .. } => "a step",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskRequest {
    /// The actor's session: one per actor process.
    pub session: u64,
    pub sequence: u64,
    pub op: TaskOp,
}

impl TaskRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(Kind::TaskRequest);
        w.u64(self.session).u64(self.sequence);
        match &self.op {
            TaskOp::Describe => w.u8(0),
            TaskOp::Reset { seed } => w.u8(1).u64(*seed),
            TaskOp::ResetNext => w.u8(2),
            TaskOp::Step { action } => w.u8(3).f64s(action),
        };
        w.finish()
    }

    pub fn decode(bytes: &[u8]) -> Result<TaskRequest, WireError> {
        let mut r = Reader::open(bytes, Kind::TaskRequest)?;
        let (session, sequence) = (r.u64("session")?, r.u64("sequence")?);
        let at = r.position();
        let op = match r.u8("op")? {
            0 => TaskOp::Describe,
            1 => TaskOp::Reset { seed: r.u64("seed")? },
            2 => TaskOp::ResetNext,
            3 => TaskOp::Step { action: r.f64s("action")? },
            other => return Err(r.invalid("op", at, format!("unknown request kind {other}"))),
        };
        r.end()?;
        Ok(TaskRequest { session, sequence, op })
    }
}

/// The task's state after a request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskState {
    pub reward: f64,
    pub terminated: bool,
    pub truncated: bool,
    pub success: Option<bool>,
    pub safety: SafetyEvents,
    pub observation: Vec<f64>,
    /// The observation's camera frames (RGB, and their layout) for a
    /// policy that sees cameras; PNG per camera on the wire.
    pub frames: Option<(rrl_types::FrameLayout, Vec<u8>)>,
    /// The recovery manoeuvre for where the robot is now (at most
    /// `MAX_RECOVERY_ACTIONS` actions).
    pub recovery: Vec<Vec<f64>>,
    /// The task itself calls for it (`PracticeTask::needs_recovery`).
    pub needs_recovery: bool,
}

/// The most actions one recovery manoeuvre may have on the wire.
pub const MAX_RECOVERY_ACTIONS: usize = 256;

/// What a `Describe` reply adds to the state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskDescription {
    pub action_low: Vec<f64>,
    pub action_high: Vec<f64>,
    pub recovery: Vec<Vec<f64>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TaskAnswer {
    State(TaskState),
    Described(TaskState, TaskDescription),
    /// The node refused the request, and why.
    Refused(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskReply {
    /// The node's incarnation: a restarted node has a new one.
    pub incarnation: u64,
    pub session: u64,
    pub sequence: u64,
    pub answer: TaskAnswer,
}

const TERMINATED: u8 = 1;
const TRUNCATED: u8 = 2;
const SUCCESS_KNOWN: u8 = 4;
const SUCCEEDED: u8 = 8;
const NEEDS_RECOVERY: u8 = 16;

fn put_state(w: &mut Writer, s: &TaskState) {
    let flags = if s.terminated { TERMINATED } else { 0 } | if s.truncated { TRUNCATED } else { 0 } | s.success.map_or(0, |ok| SUCCESS_KNOWN | if ok { SUCCEEDED } else { 0 }) | if s.needs_recovery { NEEDS_RECOVERY } else { 0 };
    w.f64(s.reward).u8(flags).u64(s.safety.protective).u64(s.safety.reflexes).f64s(&s.observation);
    match &s.frames {
        None => w.u8(0),
        // `frames_of` sends only frames that fit their layout (and check-config bounds the layout).
        Some((layout, rgb)) => match recording::frames::encode(rgb, *layout) {
            Ok(encoded) => w.u8(1).bytes(&encoded),
            Err(_) => w.u8(0),
        },
    };
    put_actions(w, &s.recovery);
}

/// A list of actions: the count, then each action (at most
/// `MAX_RECOVERY_ACTIONS`: the sender keeps to what its readers take).
fn put_actions(w: &mut Writer, actions: &[Vec<f64>]) {
    let actions = &actions[..actions.len().min(MAX_RECOVERY_ACTIONS)];
    w.u32(actions.len() as u32);
    actions.iter().for_each(|a| {
        w.f64s(a);
    });
}

fn read_actions(r: &mut Reader, field: &'static str) -> Result<Vec<Vec<f64>>, WireError> {
    let at = r.position();
    let count = r.count(4, field)?;
    if count > MAX_RECOVERY_ACTIONS {
        return Err(r.invalid(field, at, format!("{count} actions, at most {MAX_RECOVERY_ACTIONS}")));
    }
    (0..count).map(|_| r.f64s(field)).collect()
}

fn read_state(r: &mut Reader) -> Result<TaskState, WireError> {
    let reward = r.f64("reward")?;
    let flags = r.u8("flags")?;
    let safety = SafetyEvents { protective: r.u64("safety events")?, reflexes: r.u64("reflexes")? };
    let observation = r.f64s("observation")?;
    let at = r.position();
    let frames = match r.u8("frames")? {
        0 => None,
        1 => {
            let at = r.position();
            Some(recording::frames::decode(r.bytes("frames")?).map_err(|e| r.invalid("frames", at, e.to_string()))?)
        }
        other => return Err(r.invalid("frames", at, format!("frames flag {other}, expected 0 or 1"))),
    };
    let recovery = read_actions(r, "recovery action")?;
    Ok(TaskState { reward, terminated: flags & TERMINATED != 0, truncated: flags & TRUNCATED != 0, success: (flags & SUCCESS_KNOWN != 0).then_some(flags & SUCCEEDED != 0), safety, observation, frames, recovery, needs_recovery: flags & NEEDS_RECOVERY != 0 })
}

impl TaskReply {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(Kind::TaskReply);
        w.u64(self.incarnation).u64(self.session).u64(self.sequence);
        match &self.answer {
            TaskAnswer::State(state) => {
                w.u8(0);
                put_state(&mut w, state);
            }
            TaskAnswer::Described(state, d) => {
                w.u8(1);
                put_state(&mut w, state);
                w.f64s(&d.action_low).f64s(&d.action_high);
                put_actions(&mut w, &d.recovery);
            }
            TaskAnswer::Refused(reason) => {
                w.u8(2).text(reason);
            }
        }
        w.finish()
    }

    pub fn decode(bytes: &[u8]) -> Result<TaskReply, WireError> {
        let mut r = Reader::open(bytes, Kind::TaskReply)?;
        let (incarnation, session, sequence) = (r.u64("incarnation")?, r.u64("session")?, r.u64("sequence")?);
        let at = r.position();
        let answer = match r.u8("status")? {
            0 => TaskAnswer::State(read_state(&mut r)?),
            1 => {
                let state = read_state(&mut r)?;
                let (action_low, action_high) = (r.f64s("action low")?, r.f64s("action high")?);
                let recovery = read_actions(&mut r, "recovery action")?;
                TaskAnswer::Described(state, TaskDescription { action_low, action_high, recovery })
            }
            2 => TaskAnswer::Refused(r.text("reason")?),
            other => return Err(r.invalid("status", at, format!("unknown status {other}"))),
        };
        r.end()?;
        Ok(TaskReply { incarnation, session, sequence, answer })
    }
}

// ---------------------------------------------------------------------------
// Actor -> learner stream, acknowledgements, weights
// ---------------------------------------------------------------------------

/// The most bytes one stream item's gate ticks may inflate to: a bound on
/// what a peer can make the learner allocate (4 s of 16-joint ticks at 1 kHz).
const MAX_GATE_TICK_BYTES: usize = 4 << 20;

/// One item of an actor's ordered stream to its learner.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamItem {
    pub actor: u64,
    pub sequence: u64,
    pub item: ToLearner,
}

impl StreamItem {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(Kind::StreamItem);
        w.u64(self.actor).u64(self.sequence);
        match &self.item {
            ToLearner::OnlineStep => {
                w.u8(2);
            }
            ToLearner::Transition { transition: t, demo, frames } => {
                w.u8(1).u8(u8::from(*demo)).u8(u8::from(t.terminal)).f32(t.reward).f32(t.discount).f32s(&t.observation).f32s(&t.action).f32s(&t.next_observation);
                match frames {
                    None => w.u8(0),
                    Some((frame, next)) => w.u8(1).u64(*frame).u64(*next),
                };
            }
            // Lossless and compact: PNG per camera (the frames are the policy's input).
            ToLearner::Frames { index, layout, rgb } => {
                let encoded = recording::frames::encode(rgb, *layout).expect("the actor checked its frames against their layout");
                w.u8(3).u64(*index).bytes(&encoded);
            }
            // Compressed as the episode files hold them.
            ToLearner::GateTicks { episode, ticks, .. } => {
                w.u8(4).u64(*episode).bytes(&recording::gate_ticks::encode(ticks));
            }
        }
        w.finish()
    }

    /// The sending actor and sequence number of a stream item of this
    /// version, read without its item: a learner drops duplicates and holds
    /// early items before decoding them (frames are decoded once, when due).
    pub fn header_of(bytes: &[u8]) -> Result<(u64, u64), WireError> {
        let mut r = Reader::open(bytes, Kind::StreamItem)?;
        Ok((r.u64("actor")?, r.u64("sequence")?))
    }

    pub fn decode(bytes: &[u8]) -> Result<StreamItem, WireError> {
        let mut r = Reader::open(bytes, Kind::StreamItem)?;
        let (actor, sequence) = (r.u64("actor")?, r.u64("sequence")?);
        let at = r.position();
        let item = match r.u8("item kind")? {
            2 => ToLearner::OnlineStep,
            1 => {
                let (demo, terminal) = (r.u8("demo")? != 0, r.u8("terminal")? != 0);
                let (reward, discount) = (r.f32("reward")?, r.f32("discount")?);
                let (observation, action) = (r.f32s("observation")?, r.f32s("action")?);
                let next_at = r.position();
                let next_observation = r.f32s("next observation")?;
                if next_observation.len() != observation.len() {
                    return Err(r.invalid("next observation", next_at, format!("{} values, the observation has {}", next_observation.len(), observation.len())));
                }
                let frames_at = r.position();
                let frames = match r.u8("frames")? {
                    0 => None,
                    1 => Some((r.u64("frame")?, r.u64("next frame")?)),
                    other => return Err(r.invalid("frames", frames_at, format!("frames flag {other}, expected 0 or 1"))),
                };
                ToLearner::Transition { transition: Transition { observation, action, reward, next_observation, terminal, discount }, demo, frames }
            }
            3 => {
                let index = r.u64("frame index")?;
                let at = r.position();
                let (layout, rgb) = recording::frames::decode(r.bytes("frames")?).map_err(|e| r.invalid("frames", at, e.to_string()))?;
                ToLearner::Frames { index, layout, rgb }
            }
            4 => {
                let episode = r.u64("episode")?;
                let at = r.position();
                let ticks = recording::gate_ticks::decode(r.bytes("gate ticks")?, MAX_GATE_TICK_BYTES).map_err(|e| r.invalid("gate ticks", at, e))?;
                ToLearner::GateTicks { actor, episode, ticks }
            }
            other => return Err(r.invalid("item kind", at, format!("unknown item kind {other}"))),
        };
        r.end()?;
        Ok(StreamItem { actor, sequence, item })
    }
}

/// The learner's acknowledgement: its incarnation, its updates, and per
/// actor heard from the next sequence number it expects.
#[derive(Debug, Clone, PartialEq)]
pub struct Acks {
    pub incarnation: u64,
    pub updates: u64,
    pub actors: Vec<(u64, u64)>,
}

impl Acks {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(Kind::Acks);
        w.u64(self.incarnation).u64(self.updates).u32(self.actors.len() as u32);
        for (actor, next) in &self.actors {
            w.u64(*actor).u64(*next);
        }
        w.finish()
    }

    pub fn decode(bytes: &[u8]) -> Result<Acks, WireError> {
        let mut r = Reader::open(bytes, Kind::Acks)?;
        let (incarnation, updates) = (r.u64("incarnation")?, r.u64("updates")?);
        let count = r.count(16, "actors")?;
        let actors = (0..count).map(|_| Ok((r.u64("actor")?, r.u64("next expected")?))).collect::<Result<_, WireError>>()?;
        r.end()?;
        Ok(Acks { incarnation, updates, actors })
    }
}

/// Layers of a published risk critic: at most this many, none wider.
const MAX_CRITIC_LAYERS: usize = 16;
const MAX_CRITIC_WIDTH: usize = 4096;

/// A risk critic the learner publishes to the actors' gates
/// (`policies::practice::PublishedCritic`): `[update u64][critic updates
/// u64][acting u8][precision f64][recall f64 (NaN: none)][onsets u64]
/// [anticipated u64][layers u32]`, then per layer `[outputs u32][inputs
/// u32][weight f32s][bias f32s]`. Its values are checked again where the
/// gate takes it (`safety::RiskCritic::from_layers`).
pub fn encode_critic(critic: &PublishedCritic) -> Vec<u8> {
    let mut w = Writer::new(Kind::RiskCritic);
    w.u64(critic.update).u64(critic.critic_updates).u8(u8::from(critic.acting));
    w.f64(critic.precision.unwrap_or(f64::NAN)).f64(critic.recall.unwrap_or(f64::NAN)).u64(critic.onsets).u64(critic.anticipated_onsets);
    w.u32(critic.layers.len() as u32);
    for (weight, bias) in &critic.layers {
        let inputs = weight.first().map_or(0, Vec::len);
        w.u32(weight.len() as u32).u32(inputs as u32);
        w.f32s(&weight.iter().flatten().copied().collect::<Vec<f32>>()).f32s(bias);
    }
    w.finish()
}

pub fn decode_critic(bytes: &[u8]) -> Result<PublishedCritic, WireError> {
    let mut r = Reader::open(bytes, Kind::RiskCritic)?;
    let (update, critic_updates) = (r.u64("update")?, r.u64("critic updates")?);
    let acting = r.u8("acting")? != 0;
    let known = |v: f64| (!v.is_nan()).then_some(v);
    let (precision, recall) = (known(r.f64("precision")?), known(r.f64("recall")?));
    let (onsets, anticipated_onsets) = (r.u64("onsets")?, r.u64("anticipated onsets")?);
    let at = r.position();
    let count = r.count(8, "layers")?;
    if count == 0 || count > MAX_CRITIC_LAYERS {
        return Err(r.invalid("layers", at, format!("{count} layers, expected 1 to {MAX_CRITIC_LAYERS}")));
    }
    let mut layers = Vec::with_capacity(count);
    for _ in 0..count {
        let at = r.position();
        let (outputs, inputs) = (r.u32("outputs")? as usize, r.u32("inputs")? as usize);
        if outputs == 0 || inputs == 0 || outputs > MAX_CRITIC_WIDTH || inputs > MAX_CRITIC_WIDTH {
            return Err(r.invalid("layer shape", at, format!("{outputs} x {inputs}, each side 1 to {MAX_CRITIC_WIDTH}")));
        }
        let weight_at = r.position();
        let weight = r.f32s("weight")?;
        if weight.len() != outputs * inputs {
            return Err(r.invalid("weight", weight_at, format!("{} values for a {outputs} x {inputs} layer", weight.len())));
        }
        let bias_at = r.position();
        let bias = r.f32s("bias")?;
        if bias.len() != outputs {
            return Err(r.invalid("bias", bias_at, format!("{} values for {outputs} outputs", bias.len())));
        }
        layers.push((weight.chunks(inputs).map(<[f32]>::to_vec).collect(), bias));
    }
    r.end()?;
    Ok(PublishedCritic { update, critic_updates, layers, acting, precision, recall, onsets, anticipated_onsets })
}

/// Actor weights after `updates` learner updates: per tensor its shape
/// and its f32 values.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    pub updates: u64,
    pub tensors: Vec<(Vec<i64>, Vec<f32>)>,
}

/// Tensors of more dimensions than this are no actor weights.
const MAX_DIMS: usize = 8;

impl Weights {
    pub fn of(weights: &ActorWeights, updates: u64) -> Weights {
        let tensors = weights.0.iter().map(|t| (t.size(), Vec::<f32>::try_from(&t.reshape([-1]).to_kind(tch::Kind::Float)).expect("f32 weights"))).collect();
        Weights { updates, tensors }
    }

    pub fn into_actor_weights(self) -> ActorWeights {
        ActorWeights(self.tensors.into_iter().map(|(size, values)| tch::Tensor::from_slice(&values).reshape(&size)).collect())
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(Kind::Weights);
        w.u64(self.updates).u32(self.tensors.len() as u32);
        for (size, values) in &self.tensors {
            w.u32(size.len() as u32);
            size.iter().for_each(|d| {
                w.i64(*d);
            });
            w.f32s(values);
        }
        w.finish()
    }

    pub fn decode(bytes: &[u8]) -> Result<Weights, WireError> {
        let mut r = Reader::open(bytes, Kind::Weights)?;
        let updates = r.u64("updates")?;
        let count = r.count(8, "tensors")?;
        let mut tensors = Vec::with_capacity(count);
        for _ in 0..count {
            let at = r.position();
            let dims = r.u32("dimensions")? as usize;
            if dims > MAX_DIMS {
                return Err(r.invalid("dimensions", at, format!("{dims} dimensions, at most {MAX_DIMS}")));
            }
            let size = (0..dims).map(|_| r.i64("dimension")).collect::<Result<Vec<_>, _>>()?;
            let values_at = r.position();
            let values = r.f32s("values")?;
            let numel = size.iter().try_fold(1i64, |n, &d| if d < 0 { None } else { n.checked_mul(d) });
            if numel != Some(values.len() as i64) {
                return Err(r.invalid("values", values_at, format!("{} values for a tensor of shape {size:?}", values.len())));
            }
            tensors.push((size, values));
        }
        r.end()?;
        Ok(Weights { updates, tensors })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transition() -> Transition {
        Transition { observation: vec![1.0, -2.5], action: vec![0.25], reward: -0.5, next_observation: vec![1.5, -2.0], terminal: true, discount: 0.97 }
    }

    /// Every prefix of a message is refused (never a panic or a wrong
    /// value), and so is a byte too many.
    fn refuses_every_cut<T: std::fmt::Debug>(bytes: &[u8], decode: impl Fn(&[u8]) -> Result<T, WireError>) {
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "a message cut at byte {cut} of {} was read", bytes.len());
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(matches!(decode(&longer), Err(WireError::Trailing { extra: 1, .. })));
    }

    #[test]
    fn every_message_round_trips_and_every_cut_is_refused() {
        for op in [TaskOp::Describe, TaskOp::Reset { seed: 7 }, TaskOp::ResetNext, TaskOp::Step { action: vec![0.5, -1.0] }] {
            let request = TaskRequest { session: 3, sequence: 9, op };
            let bytes = request.encode();
            assert_eq!(TaskRequest::decode(&bytes), Ok(request));
            refuses_every_cut(&bytes, TaskRequest::decode);
        }
        let layout = rrl_types::FrameLayout { cameras: 1, height: 2, width: 3 };
        let state = TaskState { reward: -1.5, terminated: true, truncated: false, success: Some(false), safety: SafetyEvents { protective: 4, reflexes: 2 }, observation: vec![0.1, 0.2, 0.3], frames: Some((layout, (0..18).collect())), recovery: vec![vec![-0.6, 0.8]; 3], needs_recovery: true };
        let description = TaskDescription { action_low: vec![-1.0; 2], action_high: vec![1.0; 2], recovery: vec![vec![0.0, 1.0], vec![0.5, 0.5]] };
        for answer in [TaskAnswer::State(state.clone()), TaskAnswer::State(TaskState::default()), TaskAnswer::Described(state, description), TaskAnswer::Refused("no episode here".into())] {
            let reply = TaskReply { incarnation: 11, session: 3, sequence: 9, answer };
            let bytes = reply.encode();
            assert_eq!(TaskReply::decode(&bytes), Ok(reply));
            refuses_every_cut(&bytes, TaskReply::decode);
        }
        let layout = rrl_types::FrameLayout { cameras: 2, height: 3, width: 4 };
        let frames = ToLearner::Frames { index: 12, layout, rgb: (0..layout.bytes() as u8).collect() };
        let tick = |index: u64| rrl_types::GateTick { index, stamp_ns: 10 * index, verdict: rrl_types::TickVerdict::Clipped, detail: 32, protective: true, violation: index == 5, risk: 0.25, width: 3, ..Default::default() };
        let ticks = ToLearner::GateTicks { actor: 2, episode: 4, ticks: (4..7).map(tick).collect() };
        for item in [ToLearner::Transition { transition: transition(), demo: true, frames: None }, ToLearner::Transition { transition: transition(), demo: false, frames: Some((7, 9)) }, frames, ToLearner::OnlineStep, ticks] {
            let message = StreamItem { actor: 2, sequence: 40, item };
            let bytes = message.encode();
            assert_eq!(StreamItem::decode(&bytes), Ok(message));
            refuses_every_cut(&bytes, StreamItem::decode);
        }
        let acks = Acks { incarnation: 5, updates: 1000, actors: vec![(1, 17), (2, 3)] };
        assert_eq!(Acks::decode(&acks.encode()), Ok(acks.clone()));
        refuses_every_cut(&acks.encode(), Acks::decode);
        let weights = Weights { updates: 42, tensors: vec![(vec![1, 2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), (vec![1], vec![7.0])] };
        assert_eq!(Weights::decode(&weights.encode()), Ok(weights.clone()));
        refuses_every_cut(&weights.encode(), Weights::decode);
        // Through libtorch tensors and back.
        let tensors = weights.clone().into_actor_weights();
        assert_eq!(Weights::of(&tensors, 42), weights);
        let critic = PublishedCritic { update: 7, critic_updates: 400, layers: vec![(vec![vec![1.0, 2.0], vec![3.0, 4.0]], vec![0.5, -0.5]), (vec![vec![0.25, 0.75]], vec![-1.0])], acting: true, precision: Some(0.8), recall: None, onsets: 3, anticipated_onsets: 2 };
        assert_eq!(decode_critic(&encode_critic(&critic)), Ok(critic.clone()));
        refuses_every_cut(&encode_critic(&critic), decode_critic);
        // A layer whose bias does not fit its outputs is refused where it starts.
        let mut lopsided = critic;
        lopsided.layers[1].1.push(2.0);
        let err = decode_critic(&encode_critic(&lopsided)).unwrap_err().to_string();
        assert!(err.contains("bias") && err.contains("2 values for 1 outputs"), "{err}");
    }

    /// Fault matrix: forged wire messages | a message of another wire format version | refused | both versions named
    #[test]
    fn a_message_of_another_format_version_is_refused_naming_both_versions() {
        let mut bytes = Acks { incarnation: 1, updates: 2, actors: vec![] }.encode();
        bytes[2..4].copy_from_slice(&(VERSION + 1).to_le_bytes());
        let err = Acks::decode(&bytes).unwrap_err();
        assert_eq!(err, WireError::Version { theirs: VERSION + 1, ours: VERSION });
        let text = err.to_string();
        assert!(text.contains(&format!("version {}", VERSION + 1)) && text.contains(&format!("version {VERSION}")), "{text}");
        assert!(matches!(Acks::decode(b"hello world"), Err(WireError::NotOurs { .. })));
        let request = TaskRequest { session: 1, sequence: 1, op: TaskOp::Describe }.encode();
        assert!(matches!(Acks::decode(&request), Err(WireError::Kind { got: 1, .. })));
    }

    /// Fault matrix: forged wire messages | an ack announcing 4 billion actors, weights with 4 billion tensors | refused before allocating | the field and byte offset named
    #[test]
    fn counts_larger_than_the_message_are_refused_before_allocating() {
        // A weights message announcing 4 billion tensors in 20 bytes.
        let mut w = Writer::new(Kind::Weights);
        w.u64(1).u32(u32::MAX);
        let err = Weights::decode(&w.finish()).unwrap_err();
        assert!(err.to_string().contains("4294967295 items announced"), "{err}");
        // A forged acknowledgement announcing 4 billion actors (the actor
        // would otherwise loop over them).
        let mut w = Writer::new(Kind::Acks);
        w.u64(1).u64(2).u32(u32::MAX);
        assert!(matches!(Acks::decode(&w.finish()), Err(WireError::Invalid { field: "actors", .. })));
        // A step whose action claims a billion values.
        let mut w = Writer::new(Kind::TaskRequest);
        w.u64(1).u64(1).u8(3).u32(1_000_000_000).f64(0.0);
        let err = TaskRequest::decode(&w.finish()).unwrap_err();
        assert!(matches!(&err, WireError::Invalid { field: "action", at: 22, .. }), "{err}");
        // An unknown request kind is named where it stands (after the header, session and sequence).
        let mut w = Writer::new(Kind::TaskRequest);
        w.u64(1).u64(1).u8(9);
        assert!(matches!(TaskRequest::decode(&w.finish()), Err(WireError::Invalid { field: "op", at: 21, .. })));
        // A tensor whose values do not fill its shape.
        let weights = Weights { updates: 1, tensors: vec![(vec![2, 2], vec![1.0, 2.0, 3.0])] };
        assert!(Weights::decode(&weights.encode()).unwrap_err().to_string().contains("3 values for a tensor of shape [2, 2]"));
    }
}
