//! Training the safety gate's learned risk critic (Bresa / Recovery RL):
//! Q_risk(s, a) ≈ the discounted chance of a constraint violation from
//! state s after command a, learned from the gate's recorded ticks: the
//! cost is 1 where the measured state broke a limit (`CostLabel::Violation`)
//! or where the gate protected (`CostLabel::Protective`).
//!
//! Inputs are the gate's: joint positions, joint velocities and the
//! commanded positions (3·joints values). Target (Recovery RL):
//! c + (1 − c)·γ_risk^gap·max_k Q_target,k(s', a'), with (s', a') the next
//! recorded tick, `gap` gate ticks later (quiet ticks are decimated), the
//! command the robot actually received (the data is the robot's own log),
//! and the max over an ensemble of target critics (pessimistic). Also: how
//! early and precisely a critic anticipates violations (`Anticipation`). Each member is an
//! MLP with a sigmoid output trained by binary cross-entropy on that soft
//! target. Member 0 is exported for the gate, which evaluates it in pure
//! Rust (`safety::RiskCritic`).

use std::path::Path;

use rrl_types::rng::Rng;
use rrl_types::GateTick;
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
    /// Gate ticks from each tick to its successor (more than 1 where quiet
    /// ticks were decimated): the target discounts by γ^gap.
    gaps: Vec<f32>,
    width: usize,
    last: Option<RiskTick>,
}

/// A larger gap between recorded ticks breaks the chain: the successor is
/// too far ahead to bootstrap from (ticks were lost, or the gate restarted).
pub const MAX_TICK_GAP: u64 = 1000;

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

    /// Adds the next tick of the current recording, one gate tick after the last.
    pub fn push(&mut self, tick: RiskTick) -> Result<(), String> {
        self.push_after(tick, 1)
    }

    /// Adds the next tick of the current recording, `gap` gate ticks after
    /// the last one added.
    pub fn push_after(&mut self, tick: RiskTick, gap: u64) -> Result<(), String> {
        if tick.input.len() != self.width {
            return Err(format!("risk tick has {} inputs, the critic takes {}", tick.input.len(), self.width));
        }
        if let Some(previous) = self.last.replace(tick.clone()) {
            self.add(&previous, Some(&tick.input), gap.max(1));
        }
        Ok(())
    }

    /// Sets the current chain aside (its last tick still waits for its
    /// successor) so that another robot's chain can go on; `resume` takes
    /// it up again.
    pub fn set_aside(&mut self) -> Option<RiskTick> {
        self.last.take()
    }

    /// Takes up a chain set aside by `set_aside`; the current one must
    /// have been set aside or ended first.
    pub fn resume(&mut self, pending: Option<RiskTick>) {
        debug_assert!(self.last.is_none(), "the current chain was neither set aside nor ended");
        self.last = pending;
    }

    /// Ends the current recording: its last tick has no successor.
    pub fn end_recording(&mut self) {
        if let Some(last) = self.last.take() {
            self.add(&last, None, 1);
        }
    }

    /// The recorded ticks of one episode, labelled by `label`; a gap of
    /// more than `MAX_TICK_GAP` ticks (or ticks out of order) starts a new
    /// chain. Ticks without an input (the state did not fit the gate) are
    /// skipped. Returns how many ticks were added.
    pub fn push_recorded(&mut self, ticks: &[GateTick], label: CostLabel) -> Result<usize, String> {
        let added = self.continue_recorded(ticks, label, None)?;
        self.end_recording();
        Ok(added)
    }

    /// Adds recorded ticks to the current chain, whose last tick had index
    /// `last` (None: they start a new one), leaving the chain open for more.
    pub fn continue_recorded(&mut self, ticks: &[GateTick], label: CostLabel, last: Option<u64>) -> Result<usize, String> {
        if last.is_none() {
            self.end_recording();
        }
        let mut previous = last;
        let mut added = 0;
        let width = self.width;
        for tick in ticks.iter().filter(|t| usize::from(t.width) == width) {
            let gap = match previous {
                Some(p) if tick.index > p && tick.index - p <= MAX_TICK_GAP => tick.index - p,
                Some(_) => {
                    self.end_recording();
                    1
                }
                None => 1,
            };
            self.push_after(RiskTick { input: tick.input().to_vec(), cost: label.cost(tick) }, gap)?;
            previous = Some(tick.index);
            added += 1;
        }
        Ok(added)
    }

    /// Each training pair: input, next input, cost, end, gap.
    #[cfg(test)]
    pub(crate) fn rows(&self) -> Vec<(Vec<f32>, Vec<f32>, f32, f32, f32)> {
        let w = self.width;
        (0..self.len()).map(|k| (self.inputs[k * w..(k + 1) * w].to_vec(), self.next_inputs[k * w..(k + 1) * w].to_vec(), self.costs[k], self.ends[k], self.gaps[k])).collect()
    }

    /// Ticks labelled with a cost.
    pub fn labelled(&self) -> usize {
        self.costs.iter().filter(|&&c| c > 0.5).count()
    }

    /// Forgets the `n` oldest ticks (a bounded memory over long practice).
    pub fn drop_oldest(&mut self, n: usize) {
        let n = n.min(self.len());
        let w = self.width;
        self.inputs.drain(..n * w);
        self.next_inputs.drain(..n * w);
        self.costs.drain(..n);
        self.ends.drain(..n);
        self.gaps.drain(..n);
    }

    fn add(&mut self, tick: &RiskTick, next: Option<&[f32]>, gap: u64) {
        self.inputs.extend_from_slice(&tick.input);
        self.next_inputs.extend_from_slice(next.unwrap_or(&tick.input));
        self.costs.push(tick.cost);
        // A violation ends the chain too: c = 1 makes the target 1 anyway.
        self.ends.push(f32::from(u8::from(next.is_none())));
        self.gaps.push(gap as f32);
    }

    pub fn violation_rate(&self) -> f64 {
        self.costs.iter().map(|&c| f64::from(c)).sum::<f64>() / self.len().max(1) as f64
    }
}

/// What makes a recorded tick a cost of 1 for the critic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CostLabel {
    /// The measured state broke a limit (a joint past its range, the tool
    /// outside its box): what the rules did not prevent.
    Violation,
    /// The gate protected on the tick (a hard limit reached, a hold, a
    /// reflex): Recovery RL's constraint signal from the gate's verdicts.
    Protective,
}

impl CostLabel {
    pub fn cost(self, tick: &GateTick) -> f32 {
        f32::from(u8::from(match self {
            CostLabel::Violation => tick.violation,
            // Not the critic's own reflexes: once it acts, they would teach it itself.
            CostLabel::Protective => tick.protective && tick.verdict != rrl_types::TickVerdict::Reflex,
        }))
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
        // γ^gap: a successor several (decimated) ticks ahead is discounted for each.
        let discount = (gather(&data.gaps, 1).reshape([-1]) * self.config.gamma_risk.ln()).exp();
        let target = tch::no_grad(|| {
            let next_risk = self.target.forward(&next).squeeze_dim(-1).sigmoid().amax([0], false);
            let continuing: Tensor = (end.neg() + 1.0) * next_risk * discount;
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

    /// Member 0's layers as the gate's evaluator takes them:
    /// `(weight [out][in], bias [out])`.
    pub fn layers(&self) -> Vec<(Vec<Vec<f32>>, Vec<f32>)> {
        let params = self.critic.params("risk");
        params
            .chunks(2)
            .map(|pair| {
                // Stored [in, out] per member (for a batched matmul); the gate takes [out][in].
                let weight = pair[0].tensor.get(0).detach().to_kind(Kind::Float).to_device(Device::Cpu).transpose(0, 1).contiguous();
                let inputs = weight.size()[1] as usize;
                let flat = Vec::<f32>::try_from(weight.reshape([-1])).unwrap_or_default();
                let rows = flat.chunks(inputs).map(<[f32]>::to_vec).collect();
                let bias = Vec::<f32>::try_from(pair[1].tensor.get(0).detach().reshape([-1]).to_kind(Kind::Float).to_device(Device::Cpu)).unwrap_or_default();
                (rows, bias)
            })
            .collect()
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

/// How early and how precisely a critic anticipates violations on
/// recorded ticks it did not learn from.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Anticipation {
    /// Gate ticks judged (decimated ones counted through the recorded tick
    /// after them), labelled ones left out.
    pub ticks: u64,
    /// Ticks up to `horizon` gate ticks before a labelled one: what the
    /// critic should flag.
    pub dangerous: u64,
    /// Ticks the critic flagged (risk above the threshold).
    pub flagged: u64,
    /// Flagged and dangerous.
    pub flagged_dangerous: u64,
    /// Starts of a labelled run of ticks.
    pub onsets: u64,
    /// Onsets whose tick just before was flagged.
    pub anticipated_onsets: u64,
    /// Gate ticks from the first flag of an unbroken run of flags to its
    /// onset, summed over anticipated onsets.
    pub lead_ticks_total: u64,
}

impl Anticipation {
    /// Adds one episode's ticks and the critic's risk for each. A labelled
    /// tick itself is not judged (its input may show the violation: flagging
    /// it anticipates nothing); every other tick counts for the gate ticks
    /// since the recorded one before it (quiet ticks were decimated).
    pub fn add_episode(&mut self, ticks: &[GateTick], risks: &[f32], label: CostLabel, threshold: f32, horizon: u64) {
        let n = ticks.len().min(risks.len());
        let labelled: Vec<bool> = ticks[..n].iter().map(|t| label.cost(t) > 0.5).collect();
        let flagged: Vec<bool> = risks[..n].iter().map(|&r| r > threshold).collect();
        // Index of the next labelled tick after each tick.
        let mut next_labelled: Vec<Option<u64>> = vec![None; n];
        let mut upcoming = None;
        for i in (0..n).rev() {
            next_labelled[i] = upcoming;
            if labelled[i] {
                upcoming = Some(ticks[i].index);
            }
        }
        for i in 0..n {
            if labelled[i] {
                if i == 0 || !labelled[i - 1] {
                    self.onsets += 1;
                    if i > 0 && flagged[i - 1] {
                        self.anticipated_onsets += 1;
                        let mut first = i - 1;
                        while first > 0 && flagged[first - 1] && !labelled[first - 1] {
                            first -= 1;
                        }
                        self.lead_ticks_total += ticks[i].index.saturating_sub(ticks[first].index);
                    }
                }
                continue;
            }
            let weight = if i == 0 { 1 } else { ticks[i].index.saturating_sub(ticks[i - 1].index).clamp(1, MAX_TICK_GAP) };
            let dangerous = next_labelled[i].is_some_and(|at| at.saturating_sub(ticks[i].index) <= horizon);
            self.ticks += weight;
            self.dangerous += weight * u64::from(dangerous);
            self.flagged += weight * u64::from(flagged[i]);
            self.flagged_dangerous += weight * u64::from(flagged[i] && dangerous);
        }
    }

    pub fn precision(&self) -> Option<f64> {
        (self.flagged > 0).then(|| self.flagged_dangerous as f64 / self.flagged as f64)
    }

    pub fn recall(&self) -> Option<f64> {
        (self.dangerous > 0).then(|| self.flagged_dangerous as f64 / self.dangerous as f64)
    }

    pub fn mean_lead_ticks(&self) -> Option<f64> {
        (self.anticipated_onsets > 0).then(|| self.lead_ticks_total as f64 / self.anticipated_onsets as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(index: u64, violation: bool) -> GateTick {
        GateTick { index, violation, width: 3, ..GateTick::default() }
    }

    #[test]
    fn anticipation_counts_flags_before_an_onset_and_its_lead() {
        // Ticks 1..=10, violations at 7 and 8; the critic flags 5, 6 (before
        // the onset), 7 (during it: not judged) and 2 (a false alarm).
        let ticks: Vec<GateTick> = (1..=10).map(|i| tick(i, i == 7 || i == 8)).collect();
        let risks: Vec<f32> = (1..=10).map(|i| if [2, 5, 6, 7].contains(&i) { 0.9 } else { 0.1 }).collect();
        let mut a = Anticipation::default();
        a.add_episode(&ticks, &risks, CostLabel::Violation, 0.5, 3);
        // Judged: the 8 ticks not labelled; dangerous: 4, 5, 6 (a violation within 3 ticks ahead).
        assert_eq!((a.ticks, a.dangerous, a.flagged, a.flagged_dangerous), (8, 3, 3, 2));
        assert_eq!((a.onsets, a.anticipated_onsets, a.lead_ticks_total), (1, 1, 2));
        assert_eq!(a.precision(), Some(2.0 / 3.0));
        assert_eq!(a.recall(), Some(2.0 / 3.0));
        // Decimated: a quiet tick recorded after a gap of 4 counts for 4 gate ticks.
        let sparse = [tick(4, false), tick(8, false), tick(9, true)];
        let mut b = Anticipation::default();
        b.add_episode(&sparse, &[0.9, 0.1, 0.1], CostLabel::Violation, 0.5, 3);
        assert_eq!((b.ticks, b.flagged, b.dangerous), (5, 1, 4));
    }

    #[test]
    fn decimated_ticks_are_discounted_by_their_gap_and_long_gaps_break_the_chain() {
        let ticks = [tick(2, false), tick(4, false), tick(5, true), tick(5000, false)];
        let mut data = RiskDataset::new(3);
        assert_eq!(data.push_recorded(&ticks, CostLabel::Violation).unwrap(), 4);
        assert_eq!(data.gaps, vec![2.0, 1.0, 1.0, 1.0]);
        // The tick after the 4995-tick gap starts a chain of its own; both chains end.
        assert_eq!(data.ends, vec![0.0, 0.0, 1.0, 1.0]);
        assert_eq!(data.costs, vec![0.0, 0.0, 1.0, 0.0]);
    }
}
