//! The early stop (`stop_at_success`): once enough of the recent practice
//! episodes succeed, episodes with the deterministic policy (the one
//! evaluated and deployed) confirm it before practice ends.

use std::collections::VecDeque;

use super::{PracticeReport, CONFIRM_EPISODES, SUCCESS_WINDOW};

pub(super) struct EarlyStop {
    /// Successes of the last `SUCCESS_WINDOW` practice episodes after the warm-up.
    recent: VecDeque<bool>,
    /// (played, succeeded) while deterministic episodes confirm an early stop.
    confirming: Option<(u32, u32)>,
}

impl EarlyStop {
    pub(super) fn new() -> EarlyStop {
        EarlyStop { recent: VecDeque::with_capacity(SUCCESS_WINDOW + 1), confirming: None }
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
            if *played == CONFIRM_EPISODES {
                let successes = *successes;
                report.confirmations.push((report.total_steps, successes));
                self.confirming = None;
                if f64::from(successes) >= target * f64::from(CONFIRM_EPISODES) {
                    tracing::info!(successes, of = CONFIRM_EPISODES, total_steps = report.total_steps, "the deterministic policy confirms the success target: practice ends here");
                    report.reached_success = true;
                } else {
                    // The mean action is not yet what the samples were: practise on, count afresh.
                    tracing::info!(successes, of = CONFIRM_EPISODES, "the deterministic policy fell short of the success target: practice goes on");
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
                tracing::info!(successes, window = SUCCESS_WINDOW, total_steps = report.total_steps, "practice reached its success target: {CONFIRM_EPISODES} episodes with the deterministic policy confirm it");
                self.confirming = Some((0, 0));
            }
        }
    }
}
