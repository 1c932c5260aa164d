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
use crate::pixels::{frames_tensor, random_shift, ConvEncoder, PixelConfig, PixelReplay};
use crate::replay::{Batch, ReplayBuffer};

/// Where `Sac::update` draws its batches from.
pub trait Sample {
    fn sample(&mut self, size: usize) -> Batch;
    fn is_empty(&self) -> bool;
}

impl Sample for ReplayBuffer {
    fn sample(&mut self, size: usize) -> Batch {
        ReplayBuffer::sample(self, size)
    }
    fn is_empty(&self) -> bool {
        ReplayBuffer::is_empty(self)
    }
}

impl Sample for PixelReplay {
    fn sample(&mut self, size: usize) -> Batch {
        PixelReplay::sample(self, size)
    }
    fn is_empty(&self) -> bool {
        PixelReplay::is_empty(self)
    }
}

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
    /// Camera frames besides the state vector (`observation_size` is then
    /// the state's size); `None` for state observations only.
    pub pixels: Option<PixelConfig>,
    /// Start the actor's mean at exactly zero (a residual learner then
    /// starts as its base policy).
    pub zero_actor_output: bool,
    /// The first this many updates train the critics only (`LearnerConfig::critic_warmup_updates`).
    pub critic_warmup_updates: u64,
    /// With `zero_actor_output`, the actor's starting standard deviation
    /// (`LearnerConfig::residual_initial_std`).
    pub residual_initial_std: Option<f64>,
    /// Weight of the squared action in the actor's loss (`LearnerConfig::residual_penalty`).
    pub residual_penalty: f64,
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
            target_entropy: Some(learner.target_entropy_per_action * action_size as f64),
            initial_temperature: learner.initial_temperature,
            max_grad_norm: None,
            seed,
            pixels: None,
            zero_actor_output: false,
            critic_warmup_updates: learner.critic_warmup_updates,
            residual_initial_std: learner.residual_initial_std,
            residual_penalty: learner.residual_penalty,
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
    /// The pixel encoder shared by actor and critic, trained by the critic's
    /// optimizer (its parameters follow the critic's there).
    pub encoder: Option<ConvEncoder>,
    /// The target's parameters in the critic optimizer's order, listed once
    /// for the Polyak update instead of on every critic step.
    target_params: Vec<Tensor>,
    pub log_temperature: Tensor,
    pub actor_opt: Adam,
    pub critic_opt: Adam,
    pub temperature_opt: Adam,
    /// Draws replay indices, target subsets and policy noise.
    pub rng: Rng,
    /// Updates so far (the first `critic_warmup_updates` of them train the critics only).
    pub updates: u64,
}

impl Sac {
    /// A learner for `config`. Panics only when its pixel encoder is a
    /// pretrained file that does not load; `try_new` says so as an error.
    pub fn new(config: SacConfig, device: Device) -> Sac {
        Sac::try_new(config, device).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_new(config: SacConfig, device: Device) -> Result<Sac, crate::pixels::EncoderError> {
        let mut rng = Rng::seed(config.seed);
        let (state, a) = (config.observation_size as i64, config.action_size as i64);
        // With pixels, actor and critic see the state followed by the encoder's features.
        let o = state + config.pixels.as_ref().map_or(0, |p| p.feature_size);
        let mut actor = GaussianActor::new(&mut rng, o, a, &config.hidden, false, device);
        if config.zero_actor_output {
            actor.zero_output(config.residual_initial_std);
        }
        let critic = EnsembleMlp::new(&mut rng, config.critics, o + a, &config.hidden, 1, config.critic_layer_norm, device);
        let target = critic.detached_copy();
        // Drawn after the networks, so state-only learners are unchanged by pixel support.
        let encoder = config.pixels.as_ref().map(|p| ConvEncoder::try_new(&mut rng, p, device)).transpose()?;
        let log_temperature = Tensor::from(config.initial_temperature.ln() as f32).to_device(device).set_requires_grad(true);
        let tensors = |params: Vec<Param>| params.into_iter().map(|p| p.tensor).collect::<Vec<_>>();
        let actor_opt = Adam::new(tensors(actor.trunk.params("actor")), config.actor_lr, config.max_grad_norm);
        let mut critic_params = tensors(critic.params("critic"));
        if let Some(encoder) = &encoder {
            critic_params.extend(tensors(encoder.params("encoder")));
        }
        // The target's parameters pair with the first of these (the critic's) in the Polyak update.
        let critic_opt = Adam::new(critic_params, config.critic_lr, config.max_grad_norm);
        let temperature_opt = Adam::new(vec![log_temperature.shallow_clone()], config.temperature_lr, None);
        let target_params = tensors(target.params("target"));
        Ok(Sac { config, device, actor, critic, target, encoder, target_params, log_temperature, actor_opt, critic_opt, temperature_opt, rng, updates: 0 })
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
        let obs = self.row(observation);
        self.act_on(&obs, deterministic)
    }

    /// One observation as a [1, n] row on the learner's device.
    fn row(&self, values: &[f64]) -> Tensor {
        let values: Vec<f32> = values.iter().map(|&x| x as f32).collect();
        Tensor::from_slice(&values).reshape([1, values.len() as i64]).to_device(self.device)
    }

    /// The actor's action for one row of its input.
    fn act_on(&mut self, obs: &Tensor, deterministic: bool) -> Vec<f64> {
        let noise = if deterministic {
            None
        } else {
            self.reseed_device_generator();
            Some(self.noise(1))
        };
        let action = tch::no_grad(|| match &noise {
            None => self.actor.mean_action(obs),
            Some(noise) => self.actor.sample(obs, noise).0,
        });
        let values: Vec<f32> = Vec::try_from(&action.reshape([-1]).to_device(Device::Cpu)).expect("f32 action");
        values.into_iter().map(f64::from).collect()
    }

    /// An action in [-1, 1]^A for a state and its camera frames (as
    /// `PixelReplay::add_frame` takes them).
    pub fn act_pixels(&mut self, state: &[f64], frames: &[u8], deterministic: bool) -> Vec<f64> {
        let encoder = self.encoder.as_ref().expect("act_pixels needs a learner configured with pixels");
        let state = self.row(state);
        let input = tch::no_grad(|| Tensor::cat(&[state, encoder.forward(&frames_tensor(frames, encoder.config.layout(), self.device))], -1));
        self.act_on(&input, deterministic)
    }

    /// The actor's and critic's inputs of a batch: the observation, or the
    /// state and the encoder's features of randomly shifted frames (with
    /// gradients to the encoder for the current frames only).
    fn inputs(&self, batch: &Batch) -> (Tensor, Tensor) {
        match (&self.encoder, &batch.images, &batch.next_images) {
            (None, _, _) => (batch.observation.shallow_clone(), batch.next_observation.shallow_clone()),
            (Some(encoder), Some(images), Some(next_images)) => {
                let pad = encoder.config.shift_pad;
                let features = encoder.forward(&random_shift(images, pad));
                let next_features = tch::no_grad(|| encoder.forward(&random_shift(next_images, pad)));
                (Tensor::cat(&[&batch.observation, &features], -1), Tensor::cat(&[&batch.next_observation, &next_features], -1))
            }
            (Some(_), _, _) => panic!("a pixel learner was given a batch without frames"),
        }
    }

    fn draw_batch<R: Sample>(&mut self, replay: &mut R, demos: Option<&mut R>) -> Batch {
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

    /// One critic (and encoder) update; returns the loss and the actor's
    /// input for this batch, detached (DrQ: the actor does not train the encoder).
    fn critic_step(&mut self, batch: &Batch) -> (Tensor, Tensor) {
        let n = self.config.critics;
        let rows = batch.observation.size()[0] as usize;
        let (observation, next_observation) = self.inputs(batch);
        let noise = self.noise(rows);
        // A random subset of target critics, as in RLPD (all when they are 2 of 2).
        let subset = (self.config.target_critics < n).then(|| Tensor::randperm(n, (Kind::Int64, self.device)).narrow(0, 0, self.config.target_critics));
        let target: Tensor = tch::no_grad(|| {
            let (next_action, next_log_prob) = self.actor.sample(&next_observation, &noise);
            let next_input = Tensor::cat(&[&next_observation, &next_action], -1);
            let next_q = match &subset {
                Some(subset) => self.target.forward_members(&next_input, subset),
                None => self.target.forward(&next_input),
            };
            let next_q = next_q.squeeze_dim(-1).amin(0, false);
            let soft = next_q - self.log_temperature.exp() * next_log_prob;
            &batch.reward + &batch.discount * (1.0 - &batch.terminal) * soft
        });
        let input = Tensor::cat(&[&observation, &batch.action], -1);
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
        (loss.detach(), observation.detach())
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
        let mut actor_loss = (&temperature * &log_prob - q).mean(Kind::Float);
        if self.config.residual_penalty > 0.0 {
            // A residual stays near its base unless the critics say a correction pays.
            actor_loss += action.square().sum_dim_intlist(-1, false, Kind::Float).mean(Kind::Float) * self.config.residual_penalty;
        }
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
    pub fn update(&mut self, replay: &mut ReplayBuffer, demos: Option<&mut ReplayBuffer>) -> UpdateStats {
        self.update_from(replay, demos)
    }

    /// `update` for a learner with pixels, from frame-store replays.
    pub fn update_pixels(&mut self, replay: &mut PixelReplay, demos: Option<&mut PixelReplay>) -> UpdateStats {
        self.update_from(replay, demos)
    }

    fn update_from<R: Sample>(&mut self, replay: &mut R, mut demos: Option<&mut R>) -> UpdateStats {
        self.reseed_device_generator();
        let mut critic_loss = Tensor::from(0.0f32);
        let mut last_observation = None;
        for _ in 0..self.config.utd {
            let batch = self.draw_batch(replay, demos.as_deref_mut());
            let (loss, actor_input) = self.critic_step(&batch);
            critic_loss = loss;
            last_observation = Some(actor_input);
        }
        let observation = last_observation.expect("utd >= 1");
        let (actor_loss, temperature, entropy) = match self.updates < self.config.critic_warmup_updates {
            false => self.actor_step(&observation),
            // The critics' head start: the actor and temperature stay as they
            // are; the zeros stand for "no actor step", not measured losses.
            true => {
                let none = || Tensor::zeros([], (Kind::Float, self.device));
                (none(), self.log_temperature.exp().detach(), none())
            }
        };
        self.updates += 1;
        UpdateStats { critic_loss, actor_loss, temperature, entropy }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixels::PixelTransition;
    use crate::replay::Transition;

    /// The critics' head start: for `critic_warmup_updates` updates the
    /// critics learn and the actor and temperature stay exactly as they
    /// were; the next update moves the actor.
    #[test]
    fn the_actor_waits_for_the_critics_head_start() {
        let learner = LearnerConfig { hidden: vec![16], batch_size: 8, critic_warmup_updates: 3, initial_temperature: 0.5, ..LearnerConfig::default() };
        let mut sac = Sac::new(SacConfig::from_learner(&learner, 2, 1, 1), Device::Cpu);
        let mut replay = ReplayBuffer::new(2, 1, 64, Device::Cpu);
        let mut rng = Rng::seed(2);
        for _ in 0..32 {
            let observation = vec![rng.uniform(-1.0, 1.0) as f32, rng.uniform(-1.0, 1.0) as f32];
            replay.push(&Transition { observation: observation.clone(), action: vec![rng.uniform(-1.0, 1.0) as f32], reward: observation[0], next_observation: observation, terminal: false, discount: 0.99 });
        }
        let snapshot = |sac: &Sac| -> Vec<Tensor> { sac.actor.trunk.params("a").iter().chain(sac.critic.params("c").iter()).map(|p| p.tensor.copy()).collect::<Vec<_>>() };
        let actor_tensors = sac.actor.trunk.params("a").len();
        let before = snapshot(&sac);
        let temperature = sac.log_temperature.double_value(&[]);
        for _ in 0..3 {
            sac.update(&mut replay, None);
        }
        let waited = snapshot(&sac);
        assert!(before[..actor_tensors].iter().zip(&waited).all(|(a, b)| a.equal(b)), "the actor moved during the critics' head start");
        assert!(before[actor_tensors..].iter().zip(&waited[actor_tensors..]).any(|(a, b)| !a.equal(b)), "the critics did not learn during their head start");
        assert_eq!(sac.log_temperature.double_value(&[]), temperature, "the temperature moved during the critics' head start");
        sac.update(&mut replay, None);
        let after = snapshot(&sac);
        assert!(waited[..actor_tensors].iter().zip(&after).any(|(a, b)| !a.equal(b)), "the actor did not move after the head start");
        assert_eq!(sac.updates, 4);
    }

    /// A residual starts at a zero mean with the standard deviation asked
    /// for, and without one in the middle of the log-std range.
    #[test]
    fn a_residual_starts_at_zero_with_the_exploration_asked_for() {
        let learner = LearnerConfig { hidden: vec![16], residual_initial_std: Some(0.02), ..LearnerConfig::default() };
        let mut config = SacConfig::from_learner(&learner, 3, 2, 1);
        config.zero_actor_output = true;
        let sac = Sac::new(config.clone(), Device::Cpu);
        let observation = Tensor::from_slice(&[0.3f32, -0.2, 0.9, 1.0, 0.5, -0.7]).view([2, 3]);
        assert_eq!(sac.actor.mean_action(&observation).abs().max().double_value(&[]), 0.0);
        let std = sac.actor.std(&observation);
        assert!((std - 0.02).abs().max().double_value(&[]) < 1e-6, "{:?}", Vec::<f32>::try_from(sac.actor.std(&observation).flatten(0, -1)).unwrap());
        config.residual_initial_std = None;
        let sac = Sac::new(config, Device::Cpu);
        assert!((sac.actor.std(&observation) - (-1.5f64).exp()).abs().max().double_value(&[]) < 1e-6);
    }

    /// The residual penalty pulls the actor's actions toward zero: the same
    /// learner, seeds and data, with and without it.
    #[test]
    fn the_residual_penalty_keeps_actions_near_zero() {
        let run = |penalty: f64| {
            let learner = LearnerConfig { hidden: vec![16], batch_size: 16, residual_penalty: penalty, actor_lr: 3e-3, initial_temperature: 0.01, ..LearnerConfig::default() };
            let mut sac = Sac::new(SacConfig::from_learner(&learner, 2, 2, 1), Device::Cpu);
            let mut replay = ReplayBuffer::new(2, 2, 64, Device::Cpu);
            let mut rng = Rng::seed(2);
            for _ in 0..64 {
                let observation = vec![rng.uniform(-1.0, 1.0) as f32, rng.uniform(-1.0, 1.0) as f32];
                let action = vec![rng.uniform(-1.0, 1.0) as f32, rng.uniform(-1.0, 1.0) as f32];
                // Reward for large first actions: the critics ask for the bound.
                replay.push(&Transition { reward: action[0], observation: observation.clone(), action, next_observation: observation, terminal: true, discount: 0.99 });
            }
            tch::manual_seed(3);
            for _ in 0..200 {
                sac.update(&mut replay, None);
            }
            let observation = Tensor::from_slice(&[0.3f32, -0.2, -0.5, 0.8]).view([2, 2]);
            sac.actor.mean_action(&observation).square().mean(Kind::Float).double_value(&[])
        };
        let (free, penalised) = (run(0.0), run(5.0));
        assert!(free > 0.2 && penalised < 0.5 * free, "mean squared action {penalised} with the penalty, {free} without");
    }

    /// DrQ's gradient routing: a critic step gives the encoder gradients;
    /// the actor step sees its features detached and leaves them as they were.
    #[test]
    fn the_critic_trains_the_encoder_and_the_actor_does_not() {
        let learner = LearnerConfig { hidden: vec![16], batch_size: 8, ..LearnerConfig::default() };
        let mut config = SacConfig::from_learner(&learner, 2, 1, 1);
        let pixels = PixelConfig { cameras: 2, height: 16, width: 16, feature_size: 4, shift_pad: 1, filters: 4, pretrained: None };
        config.pixels = Some(pixels.clone());
        let mut sac = Sac::new(config, Device::Cpu);
        let mut replay = PixelReplay::new(2, 1, &pixels, 64, Device::Cpu).unwrap();
        let mut rng = Rng::seed(2);
        for _ in 0..20 {
            let bytes: Vec<u8> = (0..pixels.frame_bytes()).map(|_| (rng.uniform(0.0, 255.0)) as u8).collect();
            let frame = replay.add_frame(&bytes);
            let state = Transition { observation: vec![0.1, 0.2], action: vec![0.5], reward: 1.0, next_observation: vec![0.0, 0.3], terminal: false, discount: 0.99 };
            replay.push(&PixelTransition { state, frame, next_frame: frame });
        }
        tch::manual_seed(3);
        let batch = replay.sample(8);
        let (_, actor_input) = sac.critic_step(&batch);
        assert!(!actor_input.requires_grad(), "the actor's input must be detached from the encoder");
        assert_eq!(actor_input.size(), [8, 2 + 4]);
        let encoder = sac.encoder.as_ref().unwrap().params("encoder");
        let grads: Vec<Tensor> = encoder.iter().map(|p| p.tensor.grad().copy()).collect();
        assert!(grads.iter().any(|g| g.abs().sum(Kind::Float).double_value(&[]) > 0.0), "the critic loss must reach the encoder");
        let _ = sac.actor_step(&actor_input);
        for (p, before) in encoder.iter().zip(&grads) {
            assert!(p.tensor.grad().equal(before), "{}: the actor step changed the encoder's gradient", p.name);
        }
    }
}
