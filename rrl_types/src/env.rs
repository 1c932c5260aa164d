//! The environment API every simulated task (and, through a wrapper, every
//! robot) offers to learners: Gymnasium's semantics in Rust.

/// What one `step` produced besides the observation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub reward: f64,
    /// The episode ended by the task's own rule (fell, succeeded).
    pub terminated: bool,
    /// The episode was cut by its time limit.
    pub truncated: bool,
}

impl Step {
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// A task with Gymnasium's semantics: `reset(seed)` then `step` until
/// terminated or truncated. Deterministic for a seed.
pub trait Environment: Send {
    type Error: std::error::Error + Send + Sync + 'static;

    fn observation_size(&self) -> usize;
    fn action_size(&self) -> usize;
    fn action_low(&self) -> &[f64];
    fn action_high(&self) -> &[f64];
    /// The current observation.
    fn observation(&self) -> &[f64];
    /// Starts an episode; the seed fixes this episode and all that follow
    /// through `reset_next`.
    fn reset(&mut self, seed: u64) -> &[f64];
    /// Starts the next episode from the generator state left by the last.
    fn reset_next(&mut self) -> &[f64];
    /// Applies one action; bad actions are refused with an error.
    fn step(&mut self, action: &[f64]) -> Result<Step, Self::Error>;
    /// Whether the task counts the current state as solved; `None` for
    /// tasks without a notion of success (locomotion).
    fn success(&self) -> Option<bool> {
        None
    }
}

/// What autonomous practice needs from a task beyond `Environment`: a way
/// out when the robot is stuck, and the safety events of the last step.
pub trait PracticeTask: Environment {
    /// Actions (in the environment's bounds) of the manoeuvre that frees a
    /// stuck robot, e.g. open the gripper and lift. Default: none; the
    /// episode just ends and the reset takes over.
    fn recovery_actions(&self) -> Vec<Vec<f64>> {
        Vec::new()
    }
    /// Safety-gate interventions (clipped, held, reflex) since the last call.
    fn take_safety_events(&mut self) -> u64 {
        0
    }
}
