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

use crate::risk::{Anticipation, CostLabel, RiskCriticTrainer, RiskDataset, RiskTick, RiskTrainerConfig};

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
    /// The held-out episodes' ticks, one list per (actor, episode).
    held: Vec<((u64, u64), Vec<GateTick>)>,
    /// Held-out ticks kept at most (`MAX_HELD_TICKS`).
    max_held_ticks: usize,
    /// The actor and episode whose ticks came last, and the index of its last tick.
    current: Option<(u64, u64, u64)>,
    /// Other actors' chains, set aside while one actor's ticks come in, the
    /// longest aside first: actor, episode, last tick index and the tick
    /// waiting for its successor.
    aside: Vec<(u64, u64, u64, Option<RiskTick>)>,
    pub(super) updates: u64,
}

/// Actors whose chains are kept aside at once; beyond that the one set
/// aside longest ago is cut.
const MAX_ACTORS_ASIDE: usize = 64;

impl OnlineRisk {
    pub(super) fn new(settings: OnlineRiskSettings) -> OnlineRisk {
        let label = match settings.config.label {
            RiskLabel::Violation => CostLabel::Violation,
            RiskLabel::Protective => CostLabel::Protective,
        };
        OnlineRisk { settings, label, trainer: None, train: None, held: Vec::new(), max_held_ticks: MAX_HELD_TICKS, current: None, aside: Vec::new(), updates: 0 }
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
        if let Some((a, e, i)) = self.current.filter(|&(a, _, _)| a != actor) {
            // Another robot's ticks: the last robot's chain waits aside for
            // its next ticks, and this robot's chain, if it has one, goes on.
            let pending = train.set_aside();
            self.current = self.aside.iter().position(|&(b, ..)| b == actor).map(|at| {
                let (_, e, i, resumed) = self.aside.remove(at);
                train.resume(resumed);
                (actor, e, i)
            });
            if self.aside.len() >= MAX_ACTORS_ASIDE {
                let (cut, ..) = self.aside.remove(0);
                tracing::warn!(actor = cut, "more robots than the online risk critic keeps chains for ({MAX_ACTORS_ASIDE}): the chain set aside longest is cut");
            }
            self.aside.push((a, e, i, pending));
        }
        if self.current.is_some_and(|(_, e, _)| e != episode) {
            train.end_recording();
        }
        if held_out {
            match self.held.iter_mut().rev().find(|(key, _)| *key == (actor, episode)) {
                Some((_, list)) => list.extend_from_slice(ticks),
                None => self.held.push(((actor, episode), ticks.to_vec())),
            }
            while self.held.iter().map(|(_, l)| l.len()).sum::<usize>() > self.max_held_ticks && self.held.len() > 1 {
                // The oldest finished episode goes first: an actor's newest
                // list may still be growing, and a cut one would be judged
                // from its middle. Only when every list is some actor's
                // newest does the oldest go regardless (the bound holds).
                let finished = (0..self.held.len()).find(|&i| self.held[i + 1..].iter().any(|((a, _), _)| *a == self.held[i].0 .0));
                self.held.remove(finished.unwrap_or(0));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> OnlineRiskSettings {
        OnlineRiskSettings { config: OnlineRiskCriticConfig::default(), threshold: 0.5, seed: 1 }
    }

    /// Step `step` of `actor`: two consecutive ticks, inputs naming both,
    /// the second a violation every third step.
    fn ticks(actor: u64, step: u64) -> Vec<GateTick> {
        (0..2)
            .map(|k| {
                let index = 2 * step + k;
                let mut tick = GateTick { index, width: 3, violation: k == 1 && step % 3 == 2, ..GateTick::default() };
                tick.input[..3].copy_from_slice(&[actor as f32, index as f32, 0.5]);
                tick
            })
            .collect()
    }

    fn sorted(mut rows: Vec<(Vec<f32>, Vec<f32>, f32, f32, f32)>) -> Vec<(Vec<f32>, Vec<f32>, f32, f32, f32)> {
        rows.sort_by(|a, b| a.partial_cmp(b).unwrap());
        rows
    }

    /// Two robots' ticks arriving step by step in turn make the same
    /// training pairs as each robot's ticks arriving whole: a robot's chain
    /// is set aside while the other's come in, never cut.
    #[test]
    fn interleaved_actors_keep_each_chain_whole() {
        let (mut interleaved, mut one_by_one) = (OnlineRisk::new(settings()), OnlineRisk::new(settings()));
        for step in 0..6 {
            for actor in [1, 2] {
                interleaved.add(actor, 0, &ticks(actor, step)).unwrap();
            }
        }
        for actor in [1, 2] {
            for step in 0..6 {
                one_by_one.add(actor, 0, &ticks(actor, step)).unwrap();
            }
        }
        let (a, b) = (interleaved.train.as_ref().unwrap().rows(), one_by_one.train.as_ref().unwrap().rows());
        // 12 ticks per robot, each paired with its successor but the last (still open).
        assert_eq!((a.len(), b.len()), (22, 22));
        assert_eq!(sorted(a.clone()), sorted(b));
        for (input, next, _, end, gap) in &a {
            assert_eq!((input[0], next[1] - input[1], *end, *gap), (next[0], 1.0, 0.0, 1.0), "a pair crosses robots or skips a tick: {input:?} -> {next:?}");
        }
        // As many robots as chains are kept aside, plus the one acting: none is cut.
        let mut many = OnlineRisk::new(settings());
        let robots = MAX_ACTORS_ASIDE as u64 + 1;
        for step in 0..3 {
            for actor in 0..robots {
                many.add(actor, 0, &ticks(actor, step)).unwrap();
            }
        }
        assert_eq!(many.train.as_ref().unwrap().len() as u64, robots * 5, "6 ticks per robot, all paired but the last");
        // Held-out episodes (3 of every 4th) are kept per robot, not merged.
        let mut held = OnlineRisk::new(settings());
        for step in 0..3 {
            for actor in [1, 2] {
                held.add(actor, 3, &ticks(actor, step)).unwrap();
            }
        }
        assert_eq!(held.held.iter().map(|(key, list)| (*key, list.len())).collect::<Vec<_>>(), vec![((1, 3), 6), ((2, 3), 6)]);
    }

    /// When the held-out ticks outgrow their bound, finished episodes go,
    /// oldest first; an episode still coming in stays whole, though older.
    #[test]
    fn a_held_out_episode_in_progress_is_never_cut() {
        let mut risk = OnlineRisk::new(settings());
        risk.max_held_ticks = 20;
        // Robot 1 starts held-out episode 3; robot 2 then finishes held-out
        // episodes 3, 7, 11 and 15, six ticks each, past the bound.
        risk.add(1, 3, &ticks(1, 0)).unwrap();
        for episode in [3, 7, 11, 15] {
            for step in 0..3 {
                risk.add(2, episode, &ticks(2, step)).unwrap();
            }
        }
        risk.add(1, 3, &ticks(1, 1)).unwrap();
        let kept: Vec<((u64, u64), u64, usize)> = risk.held.iter().map(|(key, list)| (*key, list[0].index, list.len())).collect();
        // Robot 1's episode keeps its first tick; robot 2's oldest episodes went.
        assert_eq!(kept, vec![((1, 3), 0, 4), ((2, 11), 0, 6), ((2, 15), 0, 6)]);
    }
}
