//! The early stop (`stop_at_success`): once enough of the recent practice
//! episodes succeed, episodes with the deterministic policy (the one
//! evaluated and deployed) confirm it before practice ends. The actor
//! holds its learner still while they run (`LearnerLink::hold_updates`: a
//! learner thread, or the learner node of practice's own process), so the
//! policy confirmed is the one checkpointed and evaluated.

use std::collections::VecDeque;

use super::{PracticeReport, SUCCESS_WINDOW};

pub(super) struct EarlyStop {
    /// Successes of the last `SUCCESS_WINDOW` practice episodes after the warm-up.
    recent: VecDeque<bool>,
    /// (played, succeeded) while deterministic episodes confirm an early stop.
    confirming: Option<(u32, u32)>,
    /// Deterministic episodes a confirmation plays.
    confirm_episodes: u32,
}

impl EarlyStop {
    pub(super) fn new(confirm_episodes: u32) -> EarlyStop {
        EarlyStop { recent: VecDeque::with_capacity(SUCCESS_WINDOW + 1), confirming: None, confirm_episodes: confirm_episodes.max(1) }
    }

    /// Whether episodes are played with the policy's mean action now.
    pub(super) fn confirming(&self) -> bool {
        self.confirming.is_some()
    }

    /// Counts a finished episode towards `target` (a share of successes).
    /// A confirmation's verdict goes into `report`: `confirmations`, and
    /// `reached_success` when it holds. `after_warmup`: the learner's
    /// policy acted in the episode (random warm-up episodes do not count).
    pub(super) fn episode_ended(&mut self, target: f64, succeeded: bool, after_warmup: bool, report: &mut PracticeReport) {
        if let Some((played, successes)) = self.confirming.as_mut() {
            *played += 1;
            *successes += u32::from(succeeded);
            if *played == self.confirm_episodes {
                let successes = *successes;
                report.confirmations.push((report.total_steps, successes));
                self.confirming = None;
                if f64::from(successes) >= target * f64::from(self.confirm_episodes) {
                    tracing::info!(successes, of = self.confirm_episodes, total_steps = report.total_steps, "the deterministic policy confirms the success target: practice ends here");
                    report.reached_success = true;
                } else {
                    // The mean action is not yet what the samples were: practise on, count afresh.
                    tracing::info!(successes, of = self.confirm_episodes, "the deterministic policy fell short of the success target: practice goes on");
                    self.recent.clear();
                }
            }
        } else {
            if after_warmup {
                self.recent.push_back(succeeded);
                if self.recent.len() > SUCCESS_WINDOW {
                    self.recent.pop_front();
                }
            }
            let successes = self.recent.iter().filter(|s| **s).count();
            if self.recent.len() == SUCCESS_WINDOW && successes as f64 >= target * SUCCESS_WINDOW as f64 {
                tracing::info!(successes, window = SUCCESS_WINDOW, total_steps = report.total_steps, "practice reached its success target: {} episodes with the deterministic policy confirm it", self.confirm_episodes);
                self.confirming = Some((0, 0));
            }
        }
    }
}
