//! What the operator sees of a session as it runs — the episode, its step
//! and return so far, how many steps the human drove, the successes so
//! far, what the session waits for, the safety gate's protective verdicts
//! and the newest frames the policy saw — shared without locks between the
//! threads that make it (the actor, the task, the reward) and the screen,
//! topic or console that shows it. Writers only store atomics (and copy
//! frames into recycled buffers while a console watches): nothing blocks
//! on the actor's thread.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};

use crate::frame_tap::FrameTap;
use crate::TickVerdict;

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
    /// The operator paused practice (the robot holds).
    paused: AtomicBool,
    gate_clipped: AtomicU64,
    gate_held: AtomicU64,
    gate_reflexes: AtomicU64,
    /// The newest protective verdict: `verdict << 16 | detail`, plus one
    /// (0: none yet).
    gate_last: AtomicU32,
    /// The newest frames the policy saw, for a console.
    pub frames: FrameTap,
    /// The newest frame of the reward camera (a VLM reward's), for a console.
    pub reward_frames: FrameTap,
}

/// A finished episode as `practice.csv` keeps it and a console draws it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpisodeSummary {
    pub episode: u64,
    pub steps: u64,
    pub total_steps: u64,
    pub episode_return: f64,
    pub success: Option<bool>,
    /// Steps the human drove.
    pub interventions: u64,
}

/// The gate's protective verdicts of a session, as recorded: limits that
/// clipped a command (position, effort, workspace), holds and reflexes.
/// The limiter's routine shaping (velocity, acceleration, jerk) is not
/// counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GateCounts {
    pub clipped: u64,
    pub held: u64,
    pub reflexes: u64,
    /// The newest of them: the verdict and its detail (clip flags, hold
    /// reason, reflex; see `GateTick::detail`).
    pub last: Option<(TickVerdict, u16)>,
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
    pub paused: bool,
    pub gate: GateCounts,
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

    /// The operator paused (or resumed) practice.
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
    }

    /// The gate ticks recorded for the step just taken.
    pub fn show_ticks(&self, ticks: &[crate::GateTick]) {
        for tick in ticks {
            self.gate_ticked(tick.verdict, tick.detail, tick.protective);
        }
    }

    /// A gate tick recorded for the step just taken; only protective ones count.
    pub fn gate_ticked(&self, verdict: TickVerdict, detail: u16, protective: bool) {
        let counter = match verdict {
            _ if !protective => return,
            TickVerdict::Pass => return,
            TickVerdict::Clipped => &self.gate_clipped,
            TickVerdict::Held => &self.gate_held,
            TickVerdict::Reflex => &self.gate_reflexes,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.gate_last.store(((verdict as u32) << 16 | u32::from(detail)) + 1, Ordering::Relaxed);
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
            paused: self.paused.load(Ordering::Relaxed),
            gate: GateCounts {
                clipped: self.gate_clipped.load(Ordering::Relaxed),
                held: self.gate_held.load(Ordering::Relaxed),
                reflexes: self.gate_reflexes.load(Ordering::Relaxed),
                last: match self.gate_last.load(Ordering::Relaxed) {
                    0 => None,
                    code => TickVerdict::from_byte(((code - 1) >> 16) as u8).map(|v| (v, ((code - 1) & 0xffff) as u16)),
                },
            },
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
        if self.paused {
            line += " | paused";
        }
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
        // Routine shaping is not counted; the newest protective verdict is kept.
        live.gate_ticked(TickVerdict::Clipped, 2, false);
        live.gate_ticked(TickVerdict::Held, 3, true);
        live.gate_ticked(TickVerdict::Clipped, 32, true);
        assert_eq!(live.snapshot().gate, GateCounts { clipped: 1, held: 1, reflexes: 0, last: Some((TickVerdict::Clipped, 32)) });
    }
}
