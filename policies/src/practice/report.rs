//! What practice hands back: a report per episode and per session, or a
//! typed error.

use std::path::PathBuf;

/// Per-episode report for status lines and metric files.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EpisodeReport {
    pub episode: u64,
    pub steps: u64,
    pub total_steps: u64,
    pub episode_return: f64,
    pub success: Option<bool>,
    pub interventions: u64,
    pub safety_events: u64,
    pub reason: String,
    pub learner_updates: u64,
    pub seconds: f64,
    /// Learned rewards of this episode's steps: (joined, missing).
    pub learned_rewards: (u64, u64),
    /// Played with the policy's mean action (confirming an early stop),
    /// not sampled.
    pub deterministic: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PracticeReport {
    pub episodes: Vec<EpisodeReport>,
    /// Episodes and steps found on disk at start (a resumed run).
    pub resumed_episodes: u64,
    pub resumed_steps: u64,
    pub total_steps: u64,
    pub learner_updates: u64,
    pub stopped_by_operator: bool,
    /// Ended early: `stop_at_success` was reached and confirmed.
    pub reached_success: bool,
    /// Each confirmation of the early stop: (steps so far, successes of
    /// `PracticeSettings::confirm_episodes` deterministic episodes).
    pub confirmations: Vec<(u64, u32)>,
    /// Risk critics trained during practice that the gate took, and of
    /// those the ones that acted (the rest ran in shadow mode).
    pub risk_critics: (u64, u64),
}

#[derive(Debug, thiserror::Error)]
pub enum PracticeError {
    #[error("environment error at step {step}: {message}")]
    Environment { step: u64, message: String },
    #[error(transparent)]
    Recording(#[from] recording::RecordingError),
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    #[error("recorded episode {path}: {problem}")]
    Mismatch { path: PathBuf, problem: String },
    #[error("the learner thread failed: {0}")]
    Learner(String),
    #[error("cameras: {0}")]
    Cameras(String),
    #[error("the operator's action has {got} values, the task takes {expected}")]
    TakeoverSize { expected: usize, got: usize },
}
