//! Learned rewards (a VLM progress critic, a success classifier) arrive
//! after the step they score: steps wait here for theirs before they are
//! recorded and sent to the learner.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use recording::EpisodeStep;
use rrl_types::PracticeTask;

use super::PracticeError;
use crate::replay::Transition;

/// A step held until its learned reward is known: its record and what the
/// learner gets of it.
pub(super) struct AwaitedStep {
    /// 1-based, within the episode.
    pub(super) step: u64,
    pub(super) record: EpisodeStep,
    pub(super) transition: Transition,
    /// The step ends the episode (for the n-step writer).
    pub(super) over: bool,
    pub(super) demo: bool,
    pub(super) since: Instant,
    /// A human's label ended the episode on this step: its reward is the
    /// label's, whatever a learned reward says.
    pub(super) labelled: bool,
    /// The next observation's camera frames (raw), for the file and the learner.
    pub(super) next_frames: Option<Vec<u8>>,
}

/// Steps waiting for their learned rewards, released in order: with the
/// reward once it is known, or with reward 0 once it is overdue (counted
/// as missing). Without learned rewards every step is released at once.
#[derive(Default)]
pub(super) struct RewardWait {
    queue: VecDeque<AwaitedStep>,
    pub(super) joined: u64,
    pub(super) missing: u64,
}

impl RewardWait {
    /// Queues a step behind those still waiting: steps are released in order.
    pub(super) fn push(&mut self, step: AwaitedStep) {
        self.queue.push_back(step);
    }

    /// The human ended the episode on its newest step (a label, or a stop):
    /// the n-step writer flushes there; a label with `label_rewards` makes
    /// the step terminal with reward 1 for a success, 0 for a failure.
    /// False when no step waits (the operator does not hold steps for a
    /// label, so the newest one was released already).
    pub(super) fn end_newest(&mut self, label: Option<bool>, label_rewards: bool) -> bool {
        let Some(step) = self.queue.back_mut() else { return false };
        step.over = true;
        // The human saw this step's frames when they judged it.
        step.record.flags.label = label;
        if let (Some(success), true) = (label, label_rewards) {
            let reward = if success { 1.0 } else { 0.0 };
            (step.record.reward, step.transition.reward) = (reward, reward);
            (step.record.flags.terminated, step.transition.terminal) = (true, true);
            step.labelled = true;
        }
        true
    }

    /// Releases what can be released now; with `until_empty`, waits for
    /// the rest (at the end of an episode, at most one deadline). With
    /// `hold_newest` the newest step stays until the next call (a label may
    /// still judge it).
    pub(super) fn release<E: PracticeTask>(&mut self, env: &mut E, until_empty: bool, hold_newest: bool, emit: &mut dyn FnMut(AwaitedStep) -> Result<(), PracticeError>) -> Result<(), PracticeError> {
        while let Some(front) = self.queue.front() {
            if hold_newest && self.queue.len() == 1 {
                return Ok(());
            }
            let learned = match env.learned_rewards() {
                _ if front.labelled => Some(None),
                None => Some(None),
                Some(rewards) => match rewards.reward_of(front.step) {
                    Some(reward) => {
                        self.joined += 1;
                        Some(Some(reward))
                    }
                    None if front.since.elapsed() >= rewards.deadline() => {
                        self.missing += 1;
                        Some(Some(0.0))
                    }
                    None => None,
                },
            };
            match learned {
                None if until_empty => std::thread::sleep(Duration::from_millis(2)),
                None => return Ok(()),
                Some(reward) => {
                    let mut step = self.queue.pop_front().expect("front exists");
                    if let Some(reward) = reward {
                        step.record.reward = reward as f32;
                        step.transition.reward = reward as f32;
                    }
                    emit(step)?;
                }
            }
        }
        Ok(())
    }
}

