//! The gate's risk critic trained while the robot practises (Bresa style):
//! the actor streams the gate's recorded ticks to the learner, which trains
//! the Recovery RL critic on them beside SAC and publishes it to the gate
//! every few updates, tagged with its update count as the policy weights
//! are. Every few episodes one is held out; a critic acts only once it
//! flags the held-out ticks before violations precisely enough, and until
//! then runs in shadow mode (scored and recorded, not acting).

use rrl_types::config::{OnlineRiskCriticConfig, RiskLabel};
use rrl_types::GateTick;
use tch::Tensor;

use crate::risk::{Anticipation, CostLabel, RiskCriticTrainer, RiskDataset, RiskTrainerConfig};

/// The practice side of `safety.risk_critic.online`.
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineRiskSettings {
    pub config: OnlineRiskCriticConfig,
    /// The gate's threshold: the held-out check flags what it would.
    pub threshold: f32,
    pub seed: u64,
}

/// A critic on its way from the learner to the gate.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedCritic {
    /// The learner's update count when it was published: the sequence the
    /// policy weights are numbered by (0 during the warm-up).
    pub update: u64,
    /// The critic's own gradient steps so far.
    pub critic_updates: u64,
    /// `(weight [out][in], bias [out])` per layer, as `safety::RiskCritic::from_layers` takes them.
    pub layers: Vec<(Vec<Vec<f32>>, Vec<f32>)>,
    /// The held-out check passed: the gate acts on it.
    pub acting: bool,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    /// Held-out violation onsets, and those the critic flagged ahead.
    pub onsets: u64,
    pub anticipated_onsets: u64,
}

/// Training ticks kept (the oldest quarter goes when full): at 50 recorded
/// ticks a second, over five hours of practice.
const MAX_TRAIN_TICKS: usize = 1_000_000;
/// Held-out ticks kept (whole episodes, the oldest go first).
const MAX_HELD_TICKS: usize = 200_000;
/// Labelled training ticks before the first update.
const MIN_LABELLED: usize = 20;

pub(super) struct OnlineRisk {
    settings: OnlineRiskSettings,
    label: CostLabel,
    /// Built with the first ticks, which give the input width.
    trainer: Option<RiskCriticTrainer>,
    train: Option<RiskDataset>,
    /// The held-out episodes' ticks, one list per episode.
    held: Vec<(u64, Vec<GateTick>)>,
    /// The actor and episode whose ticks came last, and the index of its last tick.
    current: Option<(u64, u64, u64)>,
    pub(super) updates: u64,
}

impl OnlineRisk {
    pub(super) fn new(settings: OnlineRiskSettings) -> OnlineRisk {
        let label = match settings.config.label {
            RiskLabel::Violation => CostLabel::Violation,
            RiskLabel::Protective => CostLabel::Protective,
        };
        OnlineRisk { settings, label, trainer: None, train: None, held: Vec::new(), current: None, updates: 0 }
    }

    fn held_out(&self, episode: u64) -> bool {
        let every = self.settings.config.holdout_every.max(2);
        episode % every == every - 1
    }

    /// Takes in the gate ticks of one step of `actor`'s `episode`.
    pub(super) fn add(&mut self, actor: u64, episode: u64, ticks: &[GateTick]) -> Result<(), String> {
        let Some(width) = ticks.iter().map(|t| usize::from(t.width)).find(|&w| w > 0) else { return Ok(()) };
        let held_out = self.held_out(episode);
        let train = self.train.get_or_insert_with(|| RiskDataset::new(width));
        if self.trainer.is_none() {
            let config = &self.settings.config;
            let trainer = RiskTrainerConfig { hidden: config.hidden.clone(), gamma_risk: config.gamma_risk, seed: self.settings.seed, ..RiskTrainerConfig::default() };
            self.trainer = Some(RiskCriticTrainer::new(width, trainer));
        }
        match self.current {
            // Another robot's ticks: this chain is cut, its future unknown.
            Some((a, _, _)) if a != actor => train.abandon_pending(),
            Some((_, e, _)) if e != episode => train.end_recording(),
            _ => {}
        }
        if held_out {
            match self.held.last_mut() {
                Some((e, list)) if *e == episode => list.extend_from_slice(ticks),
                _ => self.held.push((episode, ticks.to_vec())),
            }
            while self.held.iter().map(|(_, l)| l.len()).sum::<usize>() > MAX_HELD_TICKS && self.held.len() > 1 {
                self.held.remove(0);
            }
        } else {
            let last = self.current.filter(|&(a, e, _)| (a, e) == (actor, episode)).map(|(_, _, i)| i);
            train.continue_recorded(ticks, self.label, last)?;
            if train.len() > MAX_TRAIN_TICKS {
                train.drop_oldest(MAX_TRAIN_TICKS / 4);
            }
        }
        if let Some(last) = ticks.last() {
            self.current = Some((actor, episode, last.index));
        }
        Ok(())
    }

    /// Whether there is something to learn: enough labelled training ticks.
    pub(super) fn ready(&self) -> bool {
        self.train.as_ref().is_some_and(|t| t.labelled() >= MIN_LABELLED)
    }

    /// One gradient step; when one is due, the critic to publish at the
    /// learner's `sac_update`.
    pub(super) fn update(&mut self, sac_update: u64) -> Option<PublishedCritic> {
        let (Some(trainer), Some(train)) = (self.trainer.as_mut(), self.train.as_ref()) else { return None };
        trainer.update(train);
        self.updates += 1;
        (self.updates % self.settings.config.publish_every.max(1) == 0).then(|| self.publish(sac_update))
    }

    /// Writes the critic as it stands in the gate's format (atomically), for
    /// a launch file's `risk_critic.weights` after practice.
    pub(super) fn export(&self, path: &std::path::Path) -> Result<(), crate::checkpoint::CheckpointError> {
        match &self.trainer {
            Some(trainer) => trainer.export(path),
            None => Ok(()),
        }
    }

    /// The critic as it stands, with its held-out check.
    fn publish(&self, sac_update: u64) -> PublishedCritic {
        let trainer = self.trainer.as_ref().expect("published after an update");
        let config = &self.settings.config;
        let mut check = Anticipation::default();
        for (_, ticks) in &self.held {
            let ticks: Vec<GateTick> = ticks.iter().filter(|t| t.width > 0).copied().collect();
            let Some(width) = ticks.first().map(|t| usize::from(t.width)) else { continue };
            let flat: Vec<f32> = ticks.iter().flat_map(|t| t.input().iter().copied()).collect();
            let risks = Vec::<f32>::try_from(trainer.risk(&Tensor::from_slice(&flat).reshape([ticks.len() as i64, width as i64]))).unwrap_or_default();
            check.add_episode(&ticks, &risks, self.label, self.settings.threshold, config.horizon_ticks);
        }
        let (precision, recall) = (check.precision(), check.recall());
        let acting = precision.is_some_and(|p| p >= config.min_precision) && recall.is_some_and(|r| r >= config.min_recall);
        PublishedCritic { update: sac_update, critic_updates: self.updates, layers: trainer.layers(), acting, precision, recall, onsets: check.onsets, anticipated_onsets: check.anticipated_onsets }
    }
}
