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

/// How an environment's camera frames are laid out: `cameras` RGB8 images
/// of `height` x `width`, one after another, each row-major, top row first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLayout {
    pub cameras: usize,
    pub height: usize,
    pub width: usize,
}

impl FrameLayout {
    pub fn bytes(&self) -> usize {
        self.cameras * self.height * self.width * 3
    }
}

/// "2 camera(s) of 128x128", as messages name a layout.
impl std::fmt::Display for FrameLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} camera(s) of {}x{}", self.cameras, self.width, self.height)
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
    /// The camera frames that belong to the current observation (laid out
    /// as `frame_layout` says); `None` for state-only tasks.
    fn frames(&self) -> Option<&[u8]> {
        None
    }
    fn frame_layout(&self) -> Option<FrameLayout> {
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
    /// Applies one action of the recovery manoeuvre. Like `step`, but the
    /// step is not the policy's: whatever scores the policy's steps (a
    /// learned reward) does not see it. Default: `step`.
    fn recovery_step(&mut self, action: &[f64]) -> Result<Step, Self::Error> {
        self.step(action)
    }
    /// The task itself saw the robot get into trouble in the last step (a
    /// car's collision, or its wheels turning without it moving): the
    /// episode ends there and the recovery manoeuvre runs, as when the
    /// observation stopped changing. Default: never.
    fn needs_recovery(&self) -> bool {
        false
    }
    /// What a scripted demonstrator acts on: the observation, or, in
    /// simulation when cameras stand in for part of the state (the cube's
    /// position), the full state the simulator knows.
    fn expert_observation(&self) -> &[f64] {
        self.observation()
    }
    /// Safety-gate interventions since the last call.
    fn take_safety_events(&mut self) -> SafetyEvents {
        SafetyEvents::default()
    }
    /// Steps since the last call in which a simulator's measured state broke
    /// the safety box it monitors, counted independently of any gate (`rrl
    /// bench safety`); `None` where nothing monitors one (a real robot).
    fn take_measured_violations(&mut self) -> Option<u64> {
        None
    }
    /// Appends the safety gate's ticks since the last call to `out`, for
    /// recording beside the episode (the risk critic's data). Default:
    /// none (a task without a gate of its own in this process).
    fn take_gate_ticks(&mut self, _out: &mut Vec<crate::GateTick>) {}
    /// Puts a risk critic trained during practice into the task's gate:
    /// `layers` as `(weight [out][in], bias [out])`, acting or in shadow
    /// mode. Refused (the gate keeps what it had) when it does not fit, or
    /// when the gate runs in another process.
    fn offer_risk_critic(&mut self, _layers: &[(Vec<Vec<f32>>, Vec<f32>)], _acting: bool) -> Result<(), String> {
        Err("this task's safety gate runs in another process (a robot node): a critic trained here cannot reach it".into())
    }
    /// Learned rewards (a VLM progress critic, a success classifier) that
    /// arrive after the step they score; `None` when the environment's own
    /// reward is final.
    fn learned_rewards(&mut self) -> Option<&mut dyn LearnedRewards> {
        None
    }
    /// What the operator sees of the session (a real robot's task keeps
    /// one; the actor writes the episode's progress into it). Default: none.
    fn live_status(&self) -> Option<std::sync::Arc<crate::LiveStatus>> {
        None
    }
}

/// The safety gate's interventions over some control ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SafetyEvents {
    /// Ticks the gate protected the robot: a limit reached, a hold, a reflex.
    pub protective: u64,
    /// Of those, ticks on which the learned risk critic's reflex ran.
    pub reflexes: u64,
}

impl SafetyEvents {
    pub fn any(&self) -> bool {
        self.protective > 0
    }
}

impl std::ops::AddAssign for SafetyEvents {
    fn add_assign(&mut self, other: SafetyEvents) {
        self.protective += other.protective;
        self.reflexes += other.reflexes;
    }
}

/// Rewards computed off the actor's thread for the steps of the current
/// episode. The actor holds each step (its record and what the learner
/// gets) until its reward is known or overdue, and never waits on the
/// model while the episode runs.
pub trait LearnedRewards {
    /// The learned reward of the episode's `step`-th step (1-based), once
    /// known. Must not block.
    fn reward_of(&mut self, step: u64) -> Option<f64>;
    /// How long a step waits for its reward; after that it is learned from
    /// with reward 0 and counted as missing.
    fn deadline(&self) -> std::time::Duration;
}
