//! Shared value types of the stack: timestamps and clocks, joint vectors,
//! joint states and commands, and the schema of RON launch files with its
//! located validation errors; and the small rules several crates must
//! apply alike (the gate-tick decimator, a car's checkpoint racing in
//! `course`, which the car twin and a real car share).
//!
//! Every other crate may depend on this one, so it stays small and light: no
//! ROS, no libtorch, no OpenCV, no MuJoCo, and no I/O except reading a launch
//! file. Value types used on the control loop (`JointVec`, `JointState`,
//! `JointCommand`) are `Copy` and fixed-size so the hot path never allocates.

pub mod clock;
pub mod config;
pub mod course;
pub mod env;
pub mod frame_tap;
pub mod gate_tick;
pub mod joint;
pub mod live;
pub mod rng;
mod ron_locator;

pub use env::{Environment, FrameLayout, LearnedRewards, PracticeTask, SafetyEvents, Step};
pub use gate_tick::{GateTick, TickDecimator, TickVerdict, MAX_TICK_INPUTS, QUIET_TICK_RECORD_HZ};
pub use clock::{Clock, ManualClock, MonotonicClock, SleepUntil, SystemClock, Timestamp};
pub use joint::{CommandMode, JointCommand, JointState, JointVec, MAX_JOINTS};
pub use live::{EpisodeSummary, GateCounts, LiveSnapshot, LiveStatus, Waiting};

/// The most values one observed topic (a `Float64MultiArray`) may carry:
/// anything read from a wire is bounded.
pub const MAX_TOPIC_VALUES: usize = 64;

/// The most cameras one policy sees, and the largest side of their frames
/// (what the frame codec carries: `recording::frames`).
pub const MAX_POLICY_CAMERAS: usize = 16;
pub const MAX_POLICY_CAMERA_SIDE: usize = 4096;
