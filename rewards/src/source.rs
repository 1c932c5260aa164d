//! The one trait every reward source implements, and what flows through it.

use rrl_types::Timestamp;

/// A camera frame: tightly packed RGB8, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub stamp: Timestamp,
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl Frame {
    pub fn new(stamp: Timestamp, width: u32, height: u32, rgb: Vec<u8>) -> Result<Frame, RewardError> {
        let expected = width as usize * height as usize * 3;
        if rgb.len() != expected || width == 0 || height == 0 {
            return Err(RewardError::FrameSize { width, height, expected, got: rgb.len() });
        }
        Ok(Frame { stamp, width, height, rgb })
    }
}

/// What a reward source says about the newest frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RewardEstimate {
    /// Stamp of the frame this scores, so rewards join transitions by time.
    pub stamp: Timestamp,
    /// Task progress in [0, 100] where the source has a notion of it.
    pub progress: Option<f64>,
    pub reward: f64,
    pub done: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RewardError {
    #[error("frame of {width}x{height} RGB needs {expected} bytes, got {got}")]
    FrameSize { width: u32, height: u32, expected: usize, got: usize },
    #[error("reward endpoint {url}: {message}")]
    Endpoint { url: String, message: String },
    #[error("reward endpoint {url}: no answer within {timeout_ms} ms")]
    Timeout { url: String, timeout_ms: u64 },
    #[error("reward endpoint {url}: the model's answer has no number in it: {answer:?}")]
    Unparseable { url: String, answer: String },
    #[error("{path}: {message}")]
    Model { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// A source of rewards for one task. `reset` starts an episode; `score`
/// rates the newest frames (one per camera, in the configured order).
/// Implementations may block (an HTTP request, a forward pass): the reward
/// node calls them off the actor's thread.
pub trait RewardSource: Send {
    fn name(&self) -> &str;
    fn reset(&mut self, task: &str) -> Result<(), RewardError>;
    fn score(&mut self, frames: &[Frame]) -> Result<RewardEstimate, RewardError>;
}
