//! Residual RL on a frozen base policy: a behaviour-cloned MLP with action
//! chunks trained here, or a user's TorchScript policy, behind one trait;
//! the residual learner sees the base action as part of its observation and
//! adds a bounded correction (`ResidualEnv` turns any task into the task
//! of choosing that correction, so SAC/RLPD, practice and checkpoints work
//! on it unchanged).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use rrl_types::rng::Rng;
use rrl_types::config::ResidualScale;
use rrl_types::{Environment, PracticeTask, Step};
use tch::{CModule, Device, Kind, Tensor};

use crate::adam::Adam;
use crate::checkpoint::ParamMismatch;
use crate::nets::EnsembleMlp;
use crate::pixels::{frames_tensor, in_batches, random_shift, ConvEncoder, PixelConfig};

#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    #[error("base policy {path}: not a loadable TorchScript module: {message}")]
    Load { path: PathBuf, message: String },
    #[error("base policy {path}: for an observation of {observation} values it returns shape {got:?}; the robot needs {action} actions ([1, {action}] or a chunk [1, H, {action}])")]
    Shape { path: PathBuf, observation: usize, action: usize, got: Vec<i64> },
    #[error("base policy {path}: {message}")]
    Run { path: PathBuf, message: String },
    #[error("behaviour cloning: {0}")]
    Data(String),
}

/// A frozen policy: actions in [-1, 1] (the learner's space). It may plan
/// action chunks and play them out over several calls.
pub trait BasePolicy: Send {
    fn observation_size(&self) -> usize;
    fn action_size(&self) -> usize;
    /// Forget any chunk in progress (an episode starts).
    fn reset(&mut self);
    /// The action for an observation and, for a task with cameras, its
    /// frames (a base that sees no cameras ignores them).
    fn act(&mut self, observation: &[f64], frames: Option<&[u8]>) -> Result<Vec<f64>, BaseError>;
}

fn chunk_player(chunk: &Tensor, action_size: usize, queue: &mut VecDeque<Vec<f64>>, execute: usize) {
    let values: Vec<f32> = Vec::try_from(&chunk.reshape([-1]).to_kind(Kind::Float)).expect("f32 actions");
    for action in values.chunks(action_size).take(execute.max(1)) {
        queue.push_back(action.iter().map(|&a| f64::from(a).clamp(-1.0, 1.0)).collect());
    }
}

/// A user's policy exported as TorchScript: `forward(obs [1, O]) -> [1, A]`
/// or an action chunk `[1, H, A]`, treated as a black box.
pub struct TorchScriptPolicy {
    module: CModule,
    path: PathBuf,
    observation_size: usize,
    action_size: usize,
    execute: usize,
    queue: VecDeque<Vec<f64>>,
}

impl TorchScriptPolicy {
    /// Loads the module and checks its output shape on a zero observation;
    /// `execute` actions of each chunk are played before asking again.
    pub fn load(path: &Path, observation_size: usize, action_size: usize, execute: usize) -> Result<TorchScriptPolicy, BaseError> {
        let mut module = CModule::load_on_device(path, Device::Cpu).map_err(|e| BaseError::Load { path: path.into(), message: e.to_string() })?;
        module.set_eval();
        let probe = Tensor::zeros([1, observation_size as i64], (Kind::Float, Device::Cpu));
        let shape_error = |got: Vec<i64>| BaseError::Shape { path: path.into(), observation: observation_size, action: action_size, got };
        let out = tch::no_grad(|| module.forward_ts(&[probe])).map_err(|e| BaseError::Run { path: path.into(), message: format!("fails on a [1, {observation_size}] observation: {e}") })?;
        let size = out.size();
        let fits = matches!(size.as_slice(), [1, a] if *a == action_size as i64) || matches!(size.as_slice(), [1, h, a] if *h >= 1 && *a == action_size as i64);
        if !fits {
            return Err(shape_error(size));
        }
        Ok(TorchScriptPolicy { module, path: path.into(), observation_size, action_size, execute, queue: VecDeque::new() })
    }
}

impl BasePolicy for TorchScriptPolicy {
    fn observation_size(&self) -> usize {
        self.observation_size
    }
    fn action_size(&self) -> usize {
        self.action_size
    }
    fn reset(&mut self) {
        self.queue.clear();
    }
    fn act(&mut self, observation: &[f64], _frames: Option<&[u8]>) -> Result<Vec<f64>, BaseError> {
        if self.queue.is_empty() {
            let obs: Vec<f32> = observation.iter().map(|&x| x as f32).collect();
            let input = Tensor::from_slice(&obs).reshape([1, obs.len() as i64]);
            let out = tch::no_grad(|| self.module.forward_ts(&[input])).map_err(|e| BaseError::Run { path: self.path.clone(), message: e.to_string() })?;
            chunk_player(&out, self.action_size, &mut self.queue, self.execute);
        }
        Ok(self.queue.pop_front().expect("a chunk holds at least one action"))
    }
}

/// Behaviour cloning: an MLP from observation to a chunk of `horizon`
/// actions (tanh-bounded), trained by mean squared error on demos; plays
/// `execute` actions of each chunk. From pixel demos, an encoder (trained
/// with the MLP, with random shifts; or a frozen trunk's head) turns the
/// frames into features that join the observation.
pub struct BcPolicy {
    net: EnsembleMlp,
    encoder: Option<ConvEncoder>,
    observation_size: usize,
    action_size: usize,
    horizon: usize,
    execute: usize,
    queue: VecDeque<Vec<f64>>,
}

/// Demonstrations for behaviour cloning: per episode, observations and
/// actions in [-1, 1], and for pixel demos each observation's frames.
pub struct Demos<'a> {
    pub episodes: Vec<(&'a [Vec<f32>], &'a [Vec<f32>])>,
    /// Per episode, per step, the observation's frames (`pixels`' layout).
    pub frames: Option<Vec<&'a [Vec<u8>]>>,
}

impl BcPolicy {
    /// Clones `demos`; with `pixels`, from their frames as well (the demos
    /// must carry them).
    #[allow(clippy::too_many_arguments)]
    pub fn train(demos: &Demos, observation_size: usize, action_size: usize, horizon: usize, execute: usize, hidden: &[i64], steps: usize, seed: u64, pixels: Option<&PixelConfig>) -> Result<(BcPolicy, f64), BaseError> {
        let horizon = horizon.max(1);
        // Targets: the next `horizon` actions, the last one repeated past the episode's end.
        let (mut xs, mut ys, mut images) = (Vec::new(), Vec::new(), Vec::new());
        for (e, (observations, actions)) in demos.episodes.iter().enumerate() {
            if observations.len() != actions.len() {
                return Err(BaseError::Data(format!("an episode has {} observations and {} actions", observations.len(), actions.len())));
            }
            if let Some(pixels) = pixels {
                let frames = demos.frames.as_ref().and_then(|f| f.get(e)).ok_or_else(|| BaseError::Data(format!("demo {e} has no camera frames, and the policy sees {} camera(s)", pixels.cameras)))?;
                if frames.len() != observations.len() || frames.iter().any(|f| f.len() != pixels.frame_bytes()) {
                    return Err(BaseError::Data(format!("demo {e}: {} frames for {} steps, each must be {} bytes", frames.len(), observations.len(), pixels.frame_bytes())));
                }
                for frame in frames.iter() {
                    images.extend_from_slice(frame);
                }
            }
            for t in 0..observations.len() {
                if observations[t].len() != observation_size {
                    return Err(BaseError::Data(format!("observation of {} values, expected {observation_size}", observations[t].len())));
                }
                xs.extend_from_slice(&observations[t]);
                for k in 0..horizon {
                    let a = &actions[(t + k).min(actions.len() - 1)];
                    if a.len() != action_size {
                        return Err(BaseError::Data(format!("action of {} values, expected {action_size}", a.len())));
                    }
                    ys.extend_from_slice(a);
                }
            }
        }
        let n = xs.len() / observation_size.max(1);
        if n == 0 {
            return Err(BaseError::Data("no demonstration steps".into()));
        }
        let x = Tensor::from_slice(&xs).reshape([n as i64, observation_size as i64]);
        let y = Tensor::from_slice(&ys).reshape([n as i64, (horizon * action_size) as i64]);
        let mut rng = Rng::seed(seed);
        let encoder = pixels.map(|p| ConvEncoder::try_new(&mut rng, p, Device::Cpu)).transpose().map_err(|e| BaseError::Data(e.to_string()))?;
        let features = pixels.map_or(0, |p| p.feature_size);
        let net = EnsembleMlp::new(&mut rng, 1, observation_size as i64 + features, hidden, (horizon * action_size) as i64, false, Device::Cpu);
        let mut params: Vec<Tensor> = net.params("bc").into_iter().map(|p| p.tensor).collect();
        params.extend(encoder.iter().flat_map(|e| e.params("bc_encoder")).map(|p| p.tensor));
        let mut optimizer = Adam::new(params, 1e-3, None);
        // Frames as [n, cameras*3, H, W] u8, rows as the observations'.
        let images = pixels.map(|p| frames_tensor(&images, p.layout(), Device::Cpu));
        // A frozen trunk without shifts gives each frame the same features every
        // step: computed once here, the head trains at a state policy's cost.
        let images = match (&encoder, images) {
            (Some(encoder), Some(images)) if encoder.config.precomputes() => Some(in_batches(&images, 256, |batch| encoder.trunk_features(batch).expect("a frozen trunk"))),
            (_, images) => images,
        };
        let mut loss_value = f64::NAN;
        for _ in 0..steps {
            let rows: Vec<i64> = (0..256.min(n)).map(|_| rng.below(n as u64) as i64).collect();
            let index = Tensor::from_slice(&rows);
            let mut input = x.index_select(0, &index);
            if let (Some(encoder), Some(images)) = (&encoder, &images) {
                // The encoder learns with the policy, on randomly shifted frames (DrQ's
                // augmentation); a frozen trunk's precomputed features pass through unshifted.
                let shifted = random_shift(&images.index_select(0, &index), encoder.config.shift_pad);
                input = Tensor::cat(&[input, encoder.forward(&shifted)], -1);
            }
            let prediction = net.forward(&input).squeeze_dim(0).tanh();
            let loss = (prediction - y.index_select(0, &index)).square().mean(Kind::Float);
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
            loss_value = loss.double_value(&[]);
        }
        Ok((BcPolicy { net, encoder, observation_size, action_size, horizon, execute: execute.clamp(1, horizon), queue: VecDeque::new() }, loss_value))
    }

    /// The frames this policy sees, if any.
    pub fn pixels(&self) -> Option<&PixelConfig> {
        self.encoder.as_ref().map(|e| &e.config)
    }
}

impl BcPolicy {
    /// Saves the network and its shape atomically (checksummed safetensors).
    pub fn save(&self, path: &Path) -> Result<(), crate::checkpoint::CheckpointError> {
        let encoder = self.encoder.iter().flat_map(|e| e.params("bc_encoder"));
        let mut tensors: Vec<(String, Tensor)> = self.net.params("bc").into_iter().chain(encoder).map(|p| (p.name, p.tensor.detach().copy())).collect();
        let meta = [self.observation_size, self.action_size, self.horizon, self.execute].map(|v| v as i64);
        tensors.push(("meta.shape".into(), Tensor::from_slice(&meta)));
        if let Some(p) = self.pixels() {
            // The frames it was cloned from: a launch file with other cameras is refused at load.
            let trunk = self.encoder.as_ref().and_then(ConvEncoder::trunk_fingerprint).map_or(0, |h| h as i64);
            tensors.push(("meta.pixels".into(), Tensor::from_slice(&[p.cameras, p.height, p.width, p.feature_size, p.filters, trunk])));
        }
        crate::checkpoint::write_atomically(path, tensors)
    }

    /// Loads a policy written by `save` (checksum verified); one cloned
    /// from frames needs the task's `pixels` (the same cameras and encoder).
    pub fn load(path: &Path, hidden: &[i64], pixels: Option<&PixelConfig>) -> Result<BcPolicy, BaseError> {
        let bad = |message: String| BaseError::Load { path: path.into(), message };
        let stored = crate::checkpoint::read_verified(path).map_err(|e| bad(e.to_string()))?;
        let meta = stored.iter().find(|(n, _)| n == "meta.shape").ok_or_else(|| bad("no meta.shape".into()))?;
        let meta: Vec<i64> = Vec::<i64>::try_from(&meta.1).map_err(|e: tch::TchError| bad(e.to_string()))?;
        let [o, a, horizon, execute] = meta[..] else { return Err(bad(format!("meta.shape has {} values", meta.len()))) };
        let saved_pixels = match stored.iter().find(|(n, _)| n == "meta.pixels") {
            Some((_, t)) => Some(Vec::<i64>::try_from(t).map_err(|e: tch::TchError| bad(e.to_string()))?),
            None => None,
        };
        let pixels = match (&saved_pixels, pixels) {
            (None, _) => None,
            (Some(saved), _) if saved.len() != 6 => return Err(bad(format!("meta.pixels has {} values", saved.len()))),
            (Some(saved), Some(p)) if saved[..5] == [p.cameras, p.height, p.width, p.feature_size, p.filters] => Some(p),
            (Some(saved), Some(p)) => return Err(bad(format!("cloned from {} camera(s) of {}x{} (features {}, filters {}); the task's policy sees {} of {}x{} (features {}, filters {})", saved[0], saved[2], saved[1], saved[3], saved[4], p.cameras, p.width, p.height, p.feature_size, p.filters))),
            (Some(saved), None) => return Err(bad(format!("cloned from {} camera(s) of {}x{}; the task shows its policy no cameras", saved[0], saved[2], saved[1]))),
        };
        let mut rng = Rng::seed(0);
        let encoder = pixels.map(|p| ConvEncoder::try_new(&mut rng, p, Device::Cpu)).transpose().map_err(|e| bad(e.to_string()))?;
        if let Some(saved) = &saved_pixels {
            let ours = encoder.as_ref().and_then(ConvEncoder::trunk_fingerprint).map_or(0, |h| h as i64);
            if saved[5] != ours {
                let describe = |h: i64| if h == 0 { "the trained DrQ encoder".to_string() } else { format!("the frozen trunk of fingerprint {h:#018x}") };
                return Err(bad(format!("cloned with {}; the task's learner.pixels gives {}", describe(saved[5]), describe(ours))));
            }
        }
        let features = pixels.map_or(0, |p| p.feature_size);
        let net = EnsembleMlp::new(&mut rng, 1, o + features, hidden, horizon * a, false, Device::Cpu);
        let params = net.params("bc").into_iter().chain(encoder.iter().flat_map(|e| e.params("bc_encoder")));
        crate::checkpoint::copy_params(params, &stored).map_err(|mismatch| match mismatch {
            ParamMismatch::Missing(name) => bad(format!("missing {name}")),
            ParamMismatch::Shape { name, stored, needed } => bad(format!("{name} has shape {stored:?}, the network {needed:?} (hidden sizes differ?)")),
        })?;
        Ok(BcPolicy { net, encoder, observation_size: o as usize, action_size: a as usize, horizon: horizon as usize, execute: execute as usize, queue: VecDeque::new() })
    }
}

impl BasePolicy for BcPolicy {
    fn observation_size(&self) -> usize {
        self.observation_size
    }
    fn action_size(&self) -> usize {
        self.action_size
    }
    fn reset(&mut self) {
        self.queue.clear();
    }
    fn act(&mut self, observation: &[f64], frames: Option<&[u8]>) -> Result<Vec<f64>, BaseError> {
        if self.queue.is_empty() {
            let obs: Vec<f32> = observation.iter().map(|&x| x as f32).collect();
            let mut input = Tensor::from_slice(&obs).reshape([1, obs.len() as i64]);
            if let Some(encoder) = &self.encoder {
                let frames = frames.filter(|f| f.len() == encoder.config.frame_bytes()).ok_or_else(|| BaseError::Data(format!("the base sees {}; the task gave {} bytes of frames", encoder.config.layout(), frames.map_or(0, <[u8]>::len))))?;
                let features = tch::no_grad(|| encoder.forward(&frames_tensor(frames, encoder.config.layout(), Device::Cpu)));
                input = Tensor::cat(&[input, features], -1);
            }
            let chunk = tch::no_grad(|| self.net.forward(&input).tanh());
            chunk_player(&chunk.reshape([self.horizon as i64, self.action_size as i64]), self.action_size, &mut self.queue, self.execute);
        }
        Ok(self.queue.pop_front().expect("a chunk holds at least one action"))
    }
}

/// The base action plus a residual bounded per action by `scales`, in [-1, 1].
pub fn combine(base: &[f64], residual: &[f64], scales: &[f64]) -> Vec<f64> {
    base.iter().zip(residual).zip(scales).map(|((b, r), scale)| (b + scale * r.clamp(-1.0, 1.0)).clamp(-1.0, 1.0)).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum ResidualError<E: std::error::Error + 'static> {
    #[error(transparent)]
    Task(E),
    #[error(transparent)]
    Base(#[from] BaseError),
}

/// `env` seen by a residual learner: observation = [task observation, base
/// action], action = the residual in [-1, 1]^A, applied as
/// base + scale·residual, each action with its own scale (in the task's
/// [-1, 1] action space, mapped to its
/// bounds).
pub struct ResidualEnv<E: Environment, B: BasePolicy> {
    pub env: E,
    pub base: B,
    /// The residual's bound on each action.
    pub scales: Vec<f64>,
    observation: Vec<f64>,
    base_action: Vec<f64>,
    /// What a scripted demonstrator sees: the task's expert observation and the base action.
    expert: Vec<f64>,
    /// The task's `PracticeTask::expert_observation`, kept for `refresh`, which only knows the task as an `Environment`.
    expert_of: for<'a> fn(&'a E) -> &'a [f64],
    low: Vec<f64>,
    high: Vec<f64>,
    env_action: Vec<f64>,
}

impl<E: Environment, B: BasePolicy> ResidualEnv<E, B> {
    /// Refuses a base whose sizes do not match the task's, and a scale
    /// with another number of bounds than the task has actions. A scripted
    /// demonstrator sees the task's expert observation (in simulation, the
    /// state the cameras stand in for) followed by the base action.
    pub fn new(env: E, base: B, scale: &ResidualScale) -> Result<ResidualEnv<E, B>, BaseError>
    where
        E: PracticeTask,
    {
        if (base.observation_size(), base.action_size()) != (env.observation_size(), env.action_size()) {
            return Err(BaseError::Data(format!(
                "the base policy takes {} observations and gives {} actions; the task has {} and {}",
                base.observation_size(),
                base.action_size(),
                env.observation_size(),
                env.action_size()
            )));
        }
        let scales = scale.per_action(env.action_size()).map_err(BaseError::Data)?.iter().map(|s| s.abs()).collect();
        let (low, high) = (env.action_low().to_vec(), env.action_high().to_vec());
        Ok(ResidualEnv { env, base, scales, observation: Vec::new(), base_action: Vec::new(), expert: Vec::new(), expert_of: <E as PracticeTask>::expert_observation, low, high, env_action: Vec::new() })
    }

    /// The base's action for the current observation (what a zero residual plays).
    pub fn base_action(&self) -> &[f64] {
        &self.base_action
    }

    fn refresh(&mut self) {
        // A base that fails mid-episode plays zeros; the error is logged once per episode.
        self.base_action = self.base.act(self.env.observation(), self.env.frames()).unwrap_or_else(|e| {
            tracing::warn!("base policy failed: {e}");
            vec![0.0; self.env.action_size()]
        });
        self.observation.clear();
        self.observation.extend_from_slice(self.env.observation());
        self.observation.extend_from_slice(&self.base_action);
        self.expert.clear();
        self.expert.extend_from_slice((self.expert_of)(&self.env));
        self.expert.extend_from_slice(&self.base_action);
    }
}

impl<E: Environment, B: BasePolicy> Environment for ResidualEnv<E, B> {
    type Error = E::Error;

    fn observation_size(&self) -> usize {
        self.env.observation_size() + self.env.action_size()
    }
    fn action_size(&self) -> usize {
        self.env.action_size()
    }
    fn action_low(&self) -> &[f64] {
        &RESIDUAL_LOW[..self.env.action_size().min(RESIDUAL_LOW.len())]
    }
    fn action_high(&self) -> &[f64] {
        &RESIDUAL_HIGH[..self.env.action_size().min(RESIDUAL_HIGH.len())]
    }
    fn observation(&self) -> &[f64] {
        &self.observation
    }
    fn reset(&mut self, seed: u64) -> &[f64] {
        self.env.reset(seed);
        self.base.reset();
        self.refresh();
        &self.observation
    }
    fn reset_next(&mut self) -> &[f64] {
        self.env.reset_next();
        self.base.reset();
        self.refresh();
        &self.observation
    }
    fn step(&mut self, residual: &[f64]) -> Result<Step, E::Error> {
        let action = combine(&self.base_action, residual, &self.scales);
        crate::train::to_env_action(&action, &self.low, &self.high, &mut self.env_action);
        let step = self.env.step(&self.env_action)?;
        self.refresh();
        Ok(step)
    }
    fn success(&self) -> Option<bool> {
        self.env.success()
    }
    fn frames(&self) -> Option<&[u8]> {
        self.env.frames()
    }
    fn frame_layout(&self) -> Option<rrl_types::FrameLayout> {
        self.env.frame_layout()
    }
}

/// No recovery manoeuvre: it is an action of the task, which a residual
/// cannot express; a stuck episode just ends and the reset takes over.
impl<E: PracticeTask, B: BasePolicy> PracticeTask for ResidualEnv<E, B> {
    fn expert_observation(&self) -> &[f64] {
        &self.expert
    }
    fn take_safety_events(&mut self) -> rrl_types::SafetyEvents {
        self.env.take_safety_events()
    }
    fn take_gate_ticks(&mut self, out: &mut Vec<rrl_types::GateTick>) {
        self.env.take_gate_ticks(out)
    }
    fn take_measured_violations(&mut self) -> Option<u64> {
        self.env.take_measured_violations()
    }
    fn offer_risk_critic(&mut self, layers: &[(Vec<Vec<f32>>, Vec<f32>)], acting: bool) -> Result<(), String> {
        self.env.offer_risk_critic(layers, acting)
    }
    fn learned_rewards(&mut self) -> Option<&mut dyn rrl_types::LearnedRewards> {
        self.env.learned_rewards()
    }
    fn live_status(&self) -> Option<std::sync::Arc<rrl_types::LiveStatus>> {
        self.env.live_status()
    }
}

impl BasePolicy for Box<dyn BasePolicy> {
    fn observation_size(&self) -> usize {
        (**self).observation_size()
    }
    fn action_size(&self) -> usize {
        (**self).action_size()
    }
    fn reset(&mut self) {
        (**self).reset()
    }
    fn act(&mut self, observation: &[f64], frames: Option<&[u8]>) -> Result<Vec<f64>, BaseError> {
        (**self).act(observation, frames)
    }
}

/// A demo action of the task relabelled as the residual that reproduces it
/// on top of `base` (clipped to what the residual can reach on each action).
pub fn residual_for(task_action: &[f64], base: &[f64], scales: &[f64]) -> Vec<f64> {
    task_action.iter().zip(base).zip(scales).map(|((a, b), scale)| if *scale > 0.0 { ((a - b) / scale).clamp(-1.0, 1.0) } else { 0.0 }).collect()
}

const RESIDUAL_LOW: [f64; 32] = [-1.0; 32];
const RESIDUAL_HIGH: [f64; 32] = [1.0; 32];
