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
    /// The most the gate's risk critic did in this episode.
    pub risk_critic: CriticRole,
    /// Steps (recovery manoeuvres' included) whose measured state broke a
    /// simulator's monitored box, counted apart from any gate; `None` where
    /// nothing monitors one (a real robot).
    pub measured_violations: Option<u64>,
}

/// What the gate's risk critic did in an episode, least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CriticRole {
    /// The gate had no risk critic.
    #[default]
    None,
    /// Scored and recorded, not acting: it has not passed its held-out check.
    Shadow,
    /// It passed its check, and shadowed all the same: the other arm of
    /// `safety.risk_critic.online.alternate_episodes`.
    Withheld,
    /// It acted.
    Acting,
}

impl CriticRole {
    pub const ALL: [CriticRole; 4] = [CriticRole::None, CriticRole::Shadow, CriticRole::Withheld, CriticRole::Acting];

    /// As `practice.csv` and the reports name it.
    pub fn name(self) -> &'static str {
        match self {
            CriticRole::None => "none",
            CriticRole::Shadow => "shadow",
            CriticRole::Withheld => "withheld",
            CriticRole::Acting => "acting",
        }
    }
}

/// Episodes of one `CriticRole`, summed: under
/// `risk_critic.online.alternate_episodes` the `acting` and `withheld`
/// roles are the A/B test's two arms.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct RoleTally {
    pub episodes: u64,
    pub steps: u64,
    /// Measured violations (a simulator's), when every episode has a count.
    pub measured_violations: Option<u64>,
    pub violations_per_1000_steps: Option<f64>,
    /// Per episode as well: a reflex that only slows the arm lowers the
    /// rate per step (its episodes run longer), not this.
    pub violations_per_episode: Option<f64>,
    /// Sampled episodes (not confirming an early stop) and their successes.
    pub sampled_episodes: u64,
    pub sampled_successes: u64,
}

/// `episodes` summed per role (roles without episodes left out).
pub fn by_critic_role(episodes: &[EpisodeReport]) -> std::collections::BTreeMap<&'static str, RoleTally> {
    let mut roles = std::collections::BTreeMap::new();
    for episode in episodes {
        let tally: &mut RoleTally = roles.entry(episode.risk_critic.name()).or_insert(RoleTally { measured_violations: Some(0), ..RoleTally::default() });
        tally.episodes += 1;
        tally.steps += episode.steps;
        tally.measured_violations = tally.measured_violations.zip(episode.measured_violations).map(|(a, b)| a + b);
        if !episode.deterministic {
            tally.sampled_episodes += 1;
            tally.sampled_successes += u64::from(episode.success == Some(true));
        }
    }
    for tally in roles.values_mut() {
        tally.violations_per_1000_steps = tally.measured_violations.map(|v| 1000.0 * v as f64 / tally.steps.max(1) as f64);
        tally.violations_per_episode = tally.measured_violations.map(|v| v as f64 / tally.episodes.max(1) as f64);
    }
    roles
}

/// The measured violations the episodes counted, each at its end (0 where
/// nothing monitors them).
pub fn episodes_measured_violations(episodes: &[EpisodeReport]) -> u64 {
    episodes.iter().filter_map(|e| e.measured_violations).sum()
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
