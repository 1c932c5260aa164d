//! The human at the robot: what they can ask for, and how their commands
//! steer the episode in hand.

/// What the human at the robot asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorCommand {
    Pause,
    Resume,
    /// End the episode now, labelled a success.
    Success,
    /// End the episode now, labelled a failure.
    Failure,
    /// Finish the current episode as stopped and end practice.
    Stop,
}

/// One poll of the human's devices.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OperatorInput {
    /// While the human is acting: their action, in the environment's bounds;
    /// it replaces the policy's.
    pub takeover: Option<Vec<f64>>,
    pub command: Option<OperatorCommand>,
    /// The human marks what the robot shows now a success (a gamepad
    /// button held, a key toggled): with `rrl teleop --label-frames` every
    /// step's frames are labelled by it, success while marked, failure
    /// otherwise.
    pub marking_success: bool,
}

/// The human at the robot (keyboard, gamepad, SpaceMouse, or a script
/// standing in for one in simulation). Polled once per policy step; must
/// not block.
pub trait Operator {
    fn poll(&mut self, observation: &[f64]) -> OperatorInput;
    /// Whether this operator can label episodes. The newest step then
    /// waits for the next poll before it is recorded and sent, so that a
    /// label judging it still reaches it (a terminal transition on disk
    /// and at the learner alike).
    fn labels(&self) -> bool {
        false
    }
}

/// Fully autonomous practice: nobody at the robot.
pub struct NoOperator;

impl Operator for NoOperator {
    fn poll(&mut self, _: &[f64]) -> OperatorInput {
        OperatorInput::default()
    }
}

/// The episode in hand as the operator's commands left it; practice and
/// teleoperation obey the same commands the same way.
#[derive(Debug, Default)]
pub(super) struct EpisodeControls {
    /// Set by `Success` / `Failure`.
    pub(super) label: Option<bool>,
    pub(super) paused: bool,
    pub(super) stop: bool,
}

impl EpisodeControls {
    pub(super) fn apply(&mut self, command: Option<OperatorCommand>) {
        match command {
            Some(OperatorCommand::Pause) => self.paused = true,
            Some(OperatorCommand::Resume) => self.paused = false,
            Some(OperatorCommand::Success) => self.label = Some(true),
            Some(OperatorCommand::Failure) => self.label = Some(false),
            Some(OperatorCommand::Stop) => self.stop = true,
            None => {}
        }
    }

    /// Why the operator ends the episode now, if they do (a stop before a label).
    pub(super) fn end_reason(&self) -> Option<&'static str> {
        if self.stop {
            return Some("stopped");
        }
        self.label.map(|success| if success { "success" } else { "failure" })
    }
}
