//! Training the safety gate's learned risk critic (Bresa / Recovery RL):
//! Q_risk(s, a) ≈ the discounted chance of a constraint violation from
//! state s after command a, learned from the cost labels the gate itself
//! produces (1 when a tick was clipped by a limit, held or reflexed).
//!
//! Inputs are the gate's: joint positions, joint velocities and the
//! commanded positions (3·joints values). Target (Recovery RL):
//! c + (1 − c)·γ_risk·max_k Q_target,k(s', a'), with a' the command the
//! robot actually received next (the data is the robot's own log) and the
//! max over an ensemble of target critics (pessimistic). Each member is an
//! MLP with a sigmoid output trained by binary cross-entropy on that soft
//! target. Member 0 is exported for the gate, which evaluates it in pure
//! Rust (`safety::RiskCritic`).

use std::path::Path;

use rrl_types::rng::Rng;
use tch::{Device, Kind, Tensor};

use crate::adam::Adam;
use crate::nets::EnsembleMlp;

/// One gate tick as the critic learns from it.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskTick {
    /// Positions, velocities, command: 3·joints values.
    pub input: Vec<f32>,
    /// 1 when the gate had to intervene on this tick.
    pub cost: f32,
}

/// Consecutive ticks of one or more episodes, paired for training.
#[derive(Debug, Default)]
pub struct RiskDataset {
    inputs: Vec<f32>,
    next_inputs: Vec<f32>,
    costs: Vec<f32>,
    /// No next tick to bootstrap from (end of a recording).
    ends: Vec<f32>,
    width: usize,
    last: Option<RiskTick>,
}

impl RiskDataset {
    pub fn new(input_width: usize) -> RiskDataset {
        RiskDataset { width: input_width, ..RiskDataset::default() }
    }

    pub fn len(&self) -> usize {
        self.costs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.costs.is_empty()
    }

    /// Adds the next tick of the current recording.
    pub fn push(&mut self, tick: RiskTick) -> Result<(), String> {
        if tick.input.len() != self.width {
            return Err(format!("risk tick has {} inputs, the critic takes {}", tick.input.len(), self.width));
        }
        if let Some(previous) = self.last.replace(tick.clone()) {
            self.add(&previous, Some(&tick.input));
        }
        Ok(())
    }

    /// Ends the current recording: its last tick has no successor.
    pub fn end_recording(&mut self) {
        if let Some(last) = self.last.take() {
            self.add(&last, None);
        }
    }

    fn add(&mut self, tick: &RiskTick, next: Option<&[f32]>) {
        self.inputs.extend_from_slice(&tick.input);
        self.next_inputs.extend_from_slice(next.unwrap_or(&tick.input));
        self.costs.push(tick.cost);
        // A violation ends the chain too: c = 1 makes the target 1 anyway.
        self.ends.push(f32::from(u8::from(next.is_none())));
    }

    pub fn violation_rate(&self) -> f64 {
        self.costs.iter().map(|&c| f64::from(c)).sum::<f64>() / self.len().max(1) as f64
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RiskTrainerConfig {
    pub hidden: Vec<i64>,
    pub members: i64,
    pub gamma_risk: f64,
    pub lr: f64,
    pub tau: f64,
    pub batch_size: usize,
    pub seed: u64,
}

impl Default for RiskTrainerConfig {
    fn default() -> Self {
        RiskTrainerConfig { hidden: vec![64, 64], members: 2, gamma_risk: 0.8, lr: 1e-3, tau: 0.01, batch_size: 256, seed: 0 }
    }
}

pub struct RiskCriticTrainer {
    config: RiskTrainerConfig,
    critic: EnsembleMlp,
    target: EnsembleMlp,
    target_params: Vec<Tensor>,
    optimizer: Adam,
    rng: Rng,
    input_width: i64,
}

impl RiskCriticTrainer {
    pub fn new(input_width: usize, config: RiskTrainerConfig) -> RiskCriticTrainer {
        let mut rng = Rng::seed(config.seed);
        // No LayerNorm: the gate's evaluator is a plain ReLU MLP.
        let critic = EnsembleMlp::new(&mut rng, config.members, input_width as i64, &config.hidden, 1, false, Device::Cpu);
        let target = critic.detached_copy();
        let target_params = target.params("target").into_iter().map(|p| p.tensor).collect();
        let optimizer = Adam::new(critic.params("risk").into_iter().map(|p| p.tensor).collect(), config.lr, Some(10.0));
        RiskCriticTrainer { config, critic, target, target_params, optimizer, rng, input_width: input_width as i64 }
    }

    /// One gradient step on a random batch; the loss.
    pub fn update(&mut self, data: &RiskDataset) -> f64 {
        let n = data.len();
        let b = self.config.batch_size.min(n).max(1);
        let rows: Vec<usize> = (0..b).map(|_| self.rng.below(n as u64) as usize).collect();
        let w = self.input_width as usize;
        let gather = |source: &[f32], width: usize| -> Tensor {
            let mut out = Vec::with_capacity(b * width);
            for &r in &rows {
                out.extend_from_slice(&source[r * width..(r + 1) * width]);
            }
            Tensor::from_slice(&out).reshape([b as i64, width as i64])
        };
        let x = gather(&data.inputs, w);
        let next = gather(&data.next_inputs, w);
        let cost = gather(&data.costs, 1).reshape([-1]);
        let end = gather(&data.ends, 1).reshape([-1]);
        let target = tch::no_grad(|| {
            let next_risk = self.target.forward(&next).squeeze_dim(-1).sigmoid().amax([0], false);
            let continuing: Tensor = (end.neg() + 1.0) * next_risk * self.config.gamma_risk;
            &cost + (cost.neg() + 1.0) * continuing
        });
        let logits = self.critic.forward(&x).squeeze_dim(-1);
        let members = logits.size()[0];
        let loss = logits.binary_cross_entropy_with_logits::<Tensor>(&target.unsqueeze(0).expand([members, b as i64], false), None, None, tch::Reduction::Mean);
        self.optimizer.zero_grad();
        loss.backward();
        self.optimizer.step();
        tch::no_grad(|| {
            for (target, online) in self.target_params.iter_mut().zip(&self.optimizer.params) {
                let _ = target.lerp_(online, self.config.tau);
            }
        });
        loss.double_value(&[])
    }

    /// Risk of member 0 (the exported one) for inputs [B, 3·joints].
    pub fn risk(&self, inputs: &Tensor) -> Tensor {
        tch::no_grad(|| self.critic.forward(inputs).get(0).squeeze_dim(-1).sigmoid())
    }

    /// Writes member 0 in the gate's plain format, atomically.
    pub fn export(&self, path: &Path) -> Result<(), crate::checkpoint::CheckpointError> {
        let params = self.critic.params("risk");
        let layers: Vec<(Tensor, Tensor)> = params
            .chunks(2)
            .map(|pair| (pair[0].tensor.get(0).to_kind(Kind::Float), pair[1].tensor.get(0).reshape([-1]).to_kind(Kind::Float)))
            .collect();
        crate::checkpoint::export_risk_critic(&layers, path)
    }
}
