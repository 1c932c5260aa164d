//! How a practice run goes, and the early stop's fixed sizes.

use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct PracticeSettings {
    pub task: String,
    /// Online environment steps to practise, counting earlier sessions of
    /// a resumed run.
    pub total_steps: u64,
    /// Uniformly random actions for the first steps of a fresh run.
    pub warmup_steps: u64,
    /// Episodes end after this many steps at the latest.
    pub max_episode_steps: u64,
    /// The robot counts as stuck when no observation component moved more
    /// than `stuck_tolerance` over this many steps (0: never).
    pub stuck_steps: usize,
    pub stuck_tolerance: f64,
    pub seed: u64,
    /// Run folder: `episodes/`, `learner.safetensors`.
    pub run_dir: PathBuf,
    /// fsync after every step (robots) rather than at episode end (sim).
    pub sync_every_step: bool,
    /// Simulation: the actor waits for the learner so that exactly one
    /// update happens per environment step, as in synchronous training, and
    /// for each step's learned reward. On a robot (false) the actor never
    /// waits within an episode.
    pub lockstep: bool,
    /// Actor weights are published every this many updates.
    pub publish_every: u64,
    /// The learner checkpoints every this many updates (and at the end).
    pub checkpoint_every: u64,
    pub replay_capacity: usize,
    /// The actor holds the robot while more items than this await the
    /// learner's confirmation (remote learners).
    pub max_backlog: u64,
    /// Practice ends early once this share of the last
    /// `SUCCESS_WINDOW` practice episodes after the warm-up succeeded and
    /// the same share of `confirm_episodes` deterministic episodes confirm it.
    pub stop_at_success: Option<f64>,
    /// Episodes with the deterministic policy (the one evaluated and
    /// deployed) that confirm an early stop.
    pub confirm_episodes: u32,
    /// Rewards come from the human's labels alone (`reward: Human`): every
    /// step's reward is 0, a success label makes the episode's last step
    /// terminal with reward 1, a failure label terminal with reward 0.
    pub human_reward: bool,
    /// A human's labels override a learned reward (`Classifier(..)`): a
    /// success label makes the labelled step terminal with reward 1, a
    /// failure label terminal with reward 0; other steps keep theirs.
    pub labels_override: bool,
    /// A dense shaping term added to every transition the learner gets
    /// (live, on resume, from demos); episodes on disk stay unshaped.
    pub shaping: Option<super::Shaping>,
    /// Train the gate's risk critic during practice from the gate's ticks
    /// (`safety.risk_critic.online`); None: the gate keeps what it was built with.
    pub risk_critic: Option<super::OnlineRiskSettings>,
    /// Where the actor shows the session (episode, step, gate verdicts,
    /// frames) when the task keeps no view of its own: a console watching
    /// simulated practice. None: nothing shows it.
    pub live: Option<std::sync::Arc<rrl_types::LiveStatus>>,
}

/// Practice episodes the early stop (`stop_at_success`) looks back over.
pub const SUCCESS_WINDOW: usize = 20;
