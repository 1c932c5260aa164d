//! Reward sources behind one trait: the VLM progress critic (an
//! OpenAI-compatible endpoint), CLIP-style rewards, success classifiers,
//! human labels, and potential-based shaping; plus their async pipeline.
//! No ROS here: the reward node that serves a source over ROS 2 lives in
//! the ROS edge crate (`ros_edge`).
//!
//! Owns turning observations and a task description into rewards and done
//! flags. Must never block the actor or the control loop (a late reward is
//! counted, not waited for), never log API keys, and never download a model:
//! weights are configured local paths.

pub mod clip;
pub mod encode;
mod http;
pub mod metrics;
pub mod pipeline;
pub mod shaping;
pub mod source;
pub mod vlm;

pub use clip::{ClipReward, ImageEncoder, SuccessClassifier};
pub use source::{Frame, RewardError, RewardEstimate, RewardSource};
pub use vlm::{VlmProgressCritic, VlmPrompts, VlmSettings};
