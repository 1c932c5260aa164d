//! The actor's copy of the policy: it acts without waiting on the learner
//! thread and takes the learner's weights when new ones come. A pixel
//! policy's copy holds the encoder too (the learner trains it; a frozen
//! trunk is loaded here from the same file).

use rrl_types::rng::Rng;
use tch::{Device, Kind, Tensor};

use super::{ActorWeights, PracticeError};
use crate::nets::{GaussianActor, Param};
use crate::pixels::{frames_tensor, ConvEncoder};
use crate::sac::SacConfig;

/// The actor's own copy of the policy, on the CPU, sampled with its own
/// generator (independent of the learner thread's).
pub(super) struct ActorCopy {
    net: GaussianActor,
    encoder: Option<ConvEncoder>,
    rng: Rng,
    action_size: usize,
}

impl ActorCopy {
    /// A fresh network of the task's sizes with its own seeded generator;
    /// it acts until the learner's first weights arrive.
    pub(super) fn new(config: &SacConfig, observation_size: usize, action_size: usize) -> Result<ActorCopy, PracticeError> {
        let mut rng = Rng::seed(config.seed ^ 0xAC70_0000);
        let features = config.pixels.as_ref().map_or(0, |p| p.feature_size);
        let mut net = GaussianActor::new(&mut rng, observation_size as i64 + features, action_size as i64, &config.hidden, false, Device::Cpu);
        if config.zero_actor_output {
            // Until the learner's first weights arrive, act as the learner starts.
            net.zero_output(config.residual_initial_std);
        }
        let encoder = config.pixels.as_ref().map(|p| ConvEncoder::try_new(&mut rng, p, Device::Cpu)).transpose().map_err(|e| PracticeError::Cameras(format!("the actor's copy of the policy: {e}")))?;
        Ok(ActorCopy { net, encoder, rng, action_size })
    }

    /// The weights the learner sends, in `ActorWeights` order.
    fn params(&self) -> Vec<Param> {
        let mut params = self.net.trunk.params("actor");
        params.extend(self.encoder.iter().flat_map(|e| e.params("encoder")));
        params
    }

    /// Takes the learner's weights; refused, naming the first misfit, when
    /// they were made for another network (a learner started for another
    /// task, or without the actor's residual base).
    pub(super) fn load(&mut self, weights: &ActorWeights) -> Result<(), PracticeError> {
        let params = self.params();
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

    /// A warm-up action: uniform in [-1, 1], from the actor's generator.
    pub(super) fn random_action(&mut self) -> Vec<f64> {
        (0..self.action_size).map(|_| self.rng.uniform(-1.0, 1.0)).collect()
    }

    /// The policy's action in [-1, 1] for the observation (and, for a
    /// pixel policy, its camera frames): sampled, or its mean when `deterministic`.
    pub(super) fn act(&mut self, observation: &[f64], frames: Option<&[u8]>, deterministic: bool) -> Result<Vec<f64>, PracticeError> {
        let obs: Vec<f32> = observation.iter().map(|&x| x as f32).collect();
        let mut obs = Tensor::from_slice(&obs).reshape([1, obs.len() as i64]);
        if let Some(encoder) = &self.encoder {
            let layout = encoder.config.layout();
            let frames = frames.filter(|f| f.len() == layout.bytes()).ok_or_else(|| {
                PracticeError::Cameras(format!("the policy sees {layout}; the task gave {} bytes of frames", frames.map_or(0, <[u8]>::len)))
            })?;
            let features = tch::no_grad(|| encoder.forward(&frames_tensor(frames, encoder.config.layout(), Device::Cpu)));
            obs = Tensor::cat(&[obs, features], -1);
        }
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
        Ok(values.into_iter().map(f64::from).collect())
    }
}
