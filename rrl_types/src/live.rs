//! What the operator sees of a session as it runs — the episode, its step
//! and return so far, how many steps the human drove, the successes so
//! far, and what the session waits for — shared without locks between the
//! threads that make it (the actor, the task, the reward) and the screen
//! or topic that shows it. Writers only store atomics: nothing allocates
//! or blocks on the actor's thread.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// What a session waits for, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Waiting {
    Nothing = 0,
    /// A person to put the scene back (the human reset window).
    SceneReset = 1,
    /// The arm's scripted reset moves.
    ResetMoves = 2,
    /// The arm's state (it stopped publishing).
    ArmState = 3,
    /// An observed topic (an object's tracker, a detector).
    ObservedTopic = 4,
    /// The reward camera's frames.
    RewardCamera = 5,
    /// The reward endpoint's answers.
    RewardEndpoint = 6,
    /// The leader arm (it stopped answering).
    LeaderArm = 7,
    /// A camera the policy sees (its frames stopped coming).
    PolicyCamera = 8,
}

impl Waiting {
    fn from_code(code: u8) -> Waiting {
        match code {
            1 => Waiting::SceneReset,
            2 => Waiting::ResetMoves,
            3 => Waiting::ArmState,
            4 => Waiting::ObservedTopic,
            5 => Waiting::RewardCamera,
            6 => Waiting::RewardEndpoint,
            7 => Waiting::LeaderArm,
            8 => Waiting::PolicyCamera,
            _ => Waiting::Nothing,
        }
    }

    /// In words, for the operator.
    pub fn describe(self) -> &'static str {
        match self {
            Waiting::Nothing => "",
            Waiting::SceneReset => "the scene reset (space bar, gamepad button 4 or practice/reset_done)",
            Waiting::ResetMoves => "the reset moves",
            Waiting::ArmState => "the arm's state (it stopped publishing)",
            Waiting::ObservedTopic => "an observed topic (is the object still tracked?)",
            Waiting::RewardCamera => "the reward camera's frames",
            Waiting::RewardEndpoint => "the reward endpoint's answers",
            Waiting::LeaderArm => "the leader arm (it stopped answering)",
            Waiting::PolicyCamera => "a camera the policy sees (its frames stopped coming)",
        }
    }
}

#[derive(Debug, Default)]
pub struct LiveStatus {
    episode: AtomicU64,
    step: AtomicU64,
    return_bits: AtomicU64,
    human_steps: AtomicU64,
    episodes: AtomicU64,
    successes: AtomicU64,
    waiting: AtomicU8,
}

/// One look at a `LiveStatus`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiveSnapshot {
    pub episode: u64,
    pub step: u64,
    pub episode_return: f64,
    pub human_steps: u64,
    /// Episodes finished this session, and how many of them succeeded.
    pub episodes: u64,
    pub successes: u64,
    pub waiting: Waiting,
}

impl LiveStatus {
    pub fn episode_started(&self, episode: u64) {
        self.episode.store(episode, Ordering::Relaxed);
        self.step.store(0, Ordering::Relaxed);
        self.return_bits.store(0f64.to_bits(), Ordering::Relaxed);
        self.human_steps.store(0, Ordering::Relaxed);
    }

    pub fn stepped(&self, reward: f64, human: bool) {
        self.step.fetch_add(1, Ordering::Relaxed);
        // One writer (the actor): load and store need no compare-exchange.
        let total = f64::from_bits(self.return_bits.load(Ordering::Relaxed)) + reward;
        self.return_bits.store(total.to_bits(), Ordering::Relaxed);
        self.human_steps.fetch_add(u64::from(human), Ordering::Relaxed);
    }

    pub fn episode_ended(&self, success: Option<bool>) {
        self.episodes.fetch_add(1, Ordering::Relaxed);
        self.successes.fetch_add(u64::from(success == Some(true)), Ordering::Relaxed);
    }

    /// The session waits for `what` from now on.
    pub fn wait_for(&self, what: Waiting) {
        self.waiting.store(what as u8, Ordering::Relaxed);
    }

    /// `what` has come: the session waits no more (unless it now waits for something else).
    pub fn came(&self, what: Waiting) {
        let _ = self.waiting.compare_exchange(what as u8, Waiting::Nothing as u8, Ordering::Relaxed, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> LiveSnapshot {
        LiveSnapshot {
            episode: self.episode.load(Ordering::Relaxed),
            step: self.step.load(Ordering::Relaxed),
            episode_return: f64::from_bits(self.return_bits.load(Ordering::Relaxed)),
            human_steps: self.human_steps.load(Ordering::Relaxed),
            episodes: self.episodes.load(Ordering::Relaxed),
            successes: self.successes.load(Ordering::Relaxed),
            waiting: Waiting::from_code(self.waiting.load(Ordering::Relaxed)),
        }
    }
}

impl LiveSnapshot {
    /// One line for the operator's screen.
    pub fn line(&self) -> String {
        let mut line = format!("episode {} step {} return {:.2}", self.episode, self.step, self.episode_return);
        if self.human_steps > 0 {
            line += &format!(" ({} by you)", self.human_steps);
        }
        line += &format!(" | {}/{} succeeded", self.successes, self.episodes);
        if self.waiting != Waiting::Nothing {
            line += &format!(" | waiting for {}", self.waiting.describe());
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_follows_the_episode_and_what_it_waits_for() {
        let live = LiveStatus::default();
        live.episode_started(3);
        live.stepped(0.5, false);
        live.stepped(-0.25, true);
        live.wait_for(Waiting::SceneReset);
        let seen = live.snapshot();
        assert_eq!((seen.episode, seen.step, seen.episode_return, seen.human_steps), (3, 2, 0.25, 1));
        assert_eq!(seen.line(), "episode 3 step 2 return 0.25 (1 by you) | 0/0 succeeded | waiting for the scene reset (space bar, gamepad button 4 or practice/reset_done)");
        // Something else came: still waiting for the scene.
        live.came(Waiting::RewardCamera);
        assert_eq!(live.snapshot().waiting, Waiting::SceneReset);
        live.came(Waiting::SceneReset);
        live.episode_ended(Some(true));
        live.episode_started(4);
        let seen = live.snapshot();
        assert_eq!((seen.episode, seen.step, seen.episodes, seen.successes, seen.waiting), (4, 0, 1, 1, Waiting::Nothing));
    }
}
