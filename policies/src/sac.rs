//! Soft actor-critic with the RLPD/SERL details: a critic ensemble computed
//! as one batched network (optionally with LayerNorm), the target as the
//! minimum over a random subset of target critics, several critic updates
//! per actor update (UTD), n-step returns, demo/online batch mixing,
//! automatic temperature, Polyak targets and gradient clipping.

use tch::{Device, Kind, Tensor};

use rrl_types::config::LearnerConfig;
use rrl_types::rng::Rng;

use crate::adam::Adam;
use crate::nets::{EnsembleMlp, GaussianActor, Param};
use crate::replay::{Batch, ReplayBuffer};

#[derive(Debug, Clone, PartialEq)]
pub struct SacConfig {
    pub observation_size: usize,
    pub action_size: usize,
    pub hidden: Vec<i64>,
    pub critics: i64,
    pub target_critics: i64,
    pub critic_layer_norm: bool,
    pub batch_size: usize,
    pub utd: usize,
    pub actor_lr: f64,
    pub critic_lr: f64,
    pub temperature_lr: f64,
    pub gamma: f64,
    pub tau: f64,
    pub n_step: usize,
    pub demo_ratio: f64,
    /// Default: −(action size).
    pub target_entropy: Option<f64>,
    pub initial_temperature: f64,
    pub max_grad_norm: Option<f64>,
    pub seed: u64,
}

impl SacConfig {
    pub fn from_learner(learner: &LearnerConfig, observation_size: usize, action_size: usize, seed: u64) -> SacConfig {
        SacConfig {
            observation_size,
            action_size,
            hidden: learner.hidden.iter().map(|&h| h as i64).collect(),
            critics: learner.critics as i64,
            target_critics: learner.target_critics as i64,
            critic_layer_norm: learner.critic_layer_norm,
            batch_size: learner.batch_size as usize,
            utd: learner.utd as usize,
            actor_lr: learner.actor_lr,
            critic_lr: learner.critic_lr,
            temperature_lr: learner.actor_lr,
            gamma: learner.gamma,
            tau: learner.tau,
            n_step: learner.n_step as usize,
            demo_ratio: learner.demo_ratio,
            target_entropy: None,
            initial_temperature: learner.initial_temperature,
            max_grad_norm: None,
            seed,
        }
    }
}

/// Losses of one update, as tensors (reading them is a device sync, so the
/// caller decides when).
pub struct UpdateStats {
    pub critic_loss: Tensor,
    pub actor_loss: Tensor,
    pub temperature: Tensor,
    pub entropy: Tensor,
}

pub struct Sac {
    pub config: SacConfig,
    pub device: Device,
    pub actor: GaussianActor,
    pub critic: EnsembleMlp,
    pub target: EnsembleMlp,
    /// The target's parameters in the critic optimizer's order, listed once
    /// for the Polyak update instead of on every critic step.
    target_params: Vec<Tensor>,
    pub log_temperature: Tensor,
    pub actor_opt: Adam,
    pub critic_opt: Adam,
    pub temperature_opt: Adam,
    /// Draws replay indices, target subsets and policy noise.
    pub rng: Rng,
    /// Actor updates so far.
    pub updates: u64,
}

impl Sac {
    pub fn new(config: SacConfig, device: Device) -> Sac {
        let mut rng = Rng::seed(config.seed);
        let (o, a) = (config.observation_size as i64, config.action_size as i64);
        let actor = GaussianActor::new(&mut rng, o, a, &config.hidden, false, device);
        let critic = EnsembleMlp::new(&mut rng, config.critics, o + a, &config.hidden, 1, config.critic_layer_norm, device);
        let target = critic.detached_copy();
        let log_temperature = Tensor::from(config.initial_temperature.ln() as f32).to_device(device).set_requires_grad(true);
        let tensors = |params: Vec<Param>| params.into_iter().map(|p| p.tensor).collect::<Vec<_>>();
        let actor_opt = Adam::new(tensors(actor.trunk.params("actor")), config.actor_lr, config.max_grad_norm);
        let critic_opt = Adam::new(tensors(critic.params("critic")), config.critic_lr, config.max_grad_norm);
        let temperature_opt = Adam::new(vec![log_temperature.shallow_clone()], config.temperature_lr, None);
        let target_params = tensors(target.params("target"));
        Sac { config, device, actor, critic, target, target_params, log_temperature, actor_opt, critic_opt, temperature_opt, rng, updates: 0 }
    }

    fn noise(&self, rows: usize) -> Tensor {
        Tensor::randn([rows as i64, self.config.action_size as i64], (Kind::Float, self.device))
    }

    /// Reseeds libtorch's generator from ours. All sampling then happens on
    /// the device (no host-to-device copy per update, which would stall a
    /// GPU), yet the run stays a function of our generator's state alone,
    /// which checkpoints carry.
    fn reseed_device_generator(&mut self) {
        tch::manual_seed((self.rng.next_u64() >> 1) as i64);
    }

    /// An action in [-1, 1]^A for one observation: sampled for exploration,
    /// or the mean for evaluation.
    pub fn act(&mut self, observation: &[f64], deterministic: bool) -> Vec<f64> {
        let obs: Vec<f32> = observation.iter().map(|&x| x as f32).collect();
        let obs = Tensor::from_slice(&obs).reshape([1, obs.len() as i64]).to_device(self.device);
        let noise = if deterministic {
            None
        } else {
            self.reseed_device_generator();
            Some(self.noise(1))
        };
        let action = tch::no_grad(|| match &noise {
            None => self.actor.mean_action(&obs),
            Some(noise) => self.actor.sample(&obs, noise).0,
        });
        let values: Vec<f32> = Vec::try_from(&action.reshape([-1]).to_device(Device::Cpu)).expect("f32 action");
        values.into_iter().map(f64::from).collect()
    }

    fn draw_batch(&mut self, replay: &mut ReplayBuffer, demos: Option<&mut ReplayBuffer>) -> Batch {
        let size = self.config.batch_size;
        match demos {
            Some(demos) if !demos.is_empty() && self.config.demo_ratio > 0.0 => {
                let from_demos = ((size as f64) * self.config.demo_ratio).round() as usize;
                let online = replay.sample(size - from_demos);
                let offline = demos.sample(from_demos);
                Batch::concat(&online, &offline)
            }
            _ => replay.sample(size),
        }
    }

    fn critic_step(&mut self, batch: &Batch) -> Tensor {
        let n = self.config.critics;
        let rows = batch.observation.size()[0] as usize;
        let noise = self.noise(rows);
        // A random subset of target critics, as in RLPD (all when they are 2 of 2).
        let subset = (self.config.target_critics < n).then(|| Tensor::randperm(n, (Kind::Int64, self.device)).narrow(0, 0, self.config.target_critics));
        let target: Tensor = tch::no_grad(|| {
            let (next_action, next_log_prob) = self.actor.sample(&batch.next_observation, &noise);
            let next_input = Tensor::cat(&[&batch.next_observation, &next_action], -1);
            let next_q = match &subset {
                Some(subset) => self.target.forward_members(&next_input, subset),
                None => self.target.forward(&next_input),
            };
            let next_q = next_q.squeeze_dim(-1).amin(0, false);
            let soft = next_q - self.log_temperature.exp() * next_log_prob;
            &batch.reward + &batch.discount * (1.0 - &batch.terminal) * soft
        });
        let input = Tensor::cat(&[&batch.observation, &batch.action], -1);
        let q = self.critic.forward(&input).squeeze_dim(-1);
        // Sum over critics of each one's mean squared error.
        let loss = (q - target.unsqueeze(0)).square().mean(Kind::Float) * n as f64;
        self.critic_opt.zero_grad();
        loss.backward();
        self.critic_opt.step();
        tch::no_grad(|| {
            for (target, online) in self.target_params.iter_mut().zip(&self.critic_opt.params) {
                let _ = target.lerp_(online, self.config.tau);
            }
        });
        loss.detach()
    }

    fn actor_step(&mut self, observation: &Tensor) -> (Tensor, Tensor, Tensor) {
        let rows = observation.size()[0] as usize;
        let noise = self.noise(rows);
        let (action, log_prob) = self.actor.sample(observation, &noise);
        // The actor loss needs dQ/da only: without this, backward would also
        // compute (and throw away) gradients for every critic weight.
        let critic_params: Vec<Tensor> = self.critic_opt.params.iter().map(|p| p.shallow_clone()).collect();
        for p in &critic_params {
            let _ = p.set_requires_grad(false);
        }
        let q = self.critic.forward(&Tensor::cat(&[observation, &action], -1)).squeeze_dim(-1);
        // Two critics: the usual clipped double-Q minimum; an ensemble: its mean (RLPD/SERL).
        let q = if self.config.critics == 2 { q.amin(0, false) } else { q.mean_dim(0, false, Kind::Float) };
        let temperature = self.log_temperature.exp().detach();
        let actor_loss = (&temperature * &log_prob - q).mean(Kind::Float);
        self.actor_opt.zero_grad();
        actor_loss.backward();
        self.actor_opt.step();
        for p in &critic_params {
            let _ = p.set_requires_grad(true);
        }
        let target_entropy = self.config.target_entropy.unwrap_or(-(self.config.action_size as f64));
        let temperature_loss = -(&self.log_temperature * (log_prob.detach() + target_entropy)).mean(Kind::Float);
        self.temperature_opt.zero_grad();
        temperature_loss.backward();
        self.temperature_opt.step();
        (actor_loss.detach(), temperature, (-log_prob).mean(Kind::Float).detach())
    }

    /// `utd` critic updates on fresh batches, then one actor and temperature
    /// update on the last batch's observations.
    pub fn update(&mut self, replay: &mut ReplayBuffer, mut demos: Option<&mut ReplayBuffer>) -> UpdateStats {
        self.reseed_device_generator();
        let mut critic_loss = Tensor::from(0.0f32);
        let mut last_observation = None;
        for _ in 0..self.config.utd {
            let batch = self.draw_batch(replay, demos.as_deref_mut());
            critic_loss = self.critic_step(&batch);
            last_observation = Some(batch.observation);
        }
        let observation = last_observation.expect("utd >= 1");
        let (actor_loss, temperature, entropy) = self.actor_step(&observation);
        self.updates += 1;
        UpdateStats { critic_loss, actor_loss, temperature, entropy }
    }
}
