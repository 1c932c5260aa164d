//! Autonomous practice: act, learn online, reset, repeat (SERL/FastRLAP
//! style), with human takeover, stuck detection and recovery, and every
//! transition recorded durably as it happens.
//!
//! Two threads: the actor (the caller's thread) steps the task with its own
//! copy of the policy and never waits on the learner; the learner thread
//! owns SAC, the replay and demo buffers, updates, and hands new actor
//! weights back through a one-slot mailbox (newest wins). The episode files
//! are the source of truth: on start, every recorded episode of the run is
//! read back into the buffers (demo episodes and human interventions into
//! the demo buffer too), so a restarted run loses nothing and demo buffers
//! need no separate persistence; the learner checkpoint carries the rest.
//!
//! One module a role; everything public is re-exported here, so callers
//! name `policies::practice::X` whichever module holds it.

mod actions;
mod actor;
mod early_stop;
mod episodes;
mod evaluation;
mod gate_critic;
mod learner;
mod online_risk;
mod operator;
mod policy_copy;
mod report;
mod reward_wait;
mod run_files;
mod settings;
mod shaping;
mod stuck;
mod teleop;

pub use actions::to_policy_action;
pub use actor::{practice, practice_with_link};
pub use episodes::{record_demo_episodes, Judge};
pub use evaluation::evaluate_recorded;
pub use learner::{run_learner, ActorWeights, LearnerLink, LearnerShared, LocalLearner, ToLearner, RISK_CRITIC_FILE};
pub use online_risk::{OnlineRiskSettings, PublishedCritic};
pub use operator::{NoOperator, Operator, OperatorCommand, OperatorInput};
pub use report::{by_critic_role, episodes_measured_violations, CriticRole, EpisodeReport, RoleTally, PracticeError, PracticeReport};
pub use settings::{PracticeSettings, SUCCESS_WINDOW};
pub use shaping::Shaping;
pub use teleop::teleoperate;
