//! The ROS 2 edge of rrl: its own nodes and topics over DDS through r2r
//! (the drivers of robots that are themselves reached over topics — a
//! ros2_control arm, a car, an image topic — live in `robot_drivers`).
//!
//! Owns the QoS profiles and node parameters of rrl's nodes, the one
//! versioned wire format of its own topics (`wire`), the lockstep task
//! server and client (`task_node`), and the actor ↔ learner link with the
//! learner node (`learner_link`), a robot behind its gate as a node
//! (`robot_node`, for `rrl sim` and `rrl driver`), the car twin as a car's
//! driver node (`car_node`, for `rrl sim`: like a real car's driver it has
//! no gate; the gate runs where the car is driven), the VLM reward node
//! (`reward_node`), the topics a real-arm task observes besides the robot
//! (`observed_topics`), its human reset window (`reset_window`), and the human's gamepad or SpaceMouse (`joy`).
//!
//! Must never read launch files or decide what a robot is: it is handed
//! built parts (a task, learner settings) and serves them. Must never be
//! depended on by the crates below it (types, safety, drivers, simulation,
//! policies, rewards, recording).

pub mod car_node;
pub mod joy;
pub mod observed_topics;
pub mod learner_link;
pub mod live_topic;
pub mod params;
pub mod qos;
pub mod reset_window;
pub mod reward_node;
pub mod robot_node;
pub mod stream_store;
pub mod task_node;
pub mod wire;

/// What can go wrong at the ROS 2 edge.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("ROS 2: {0}")]
    Ros(#[from] r2r::Error),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("{0}")]
    Refused(String),
    #[error("learner failed: {0}")]
    Learner(String),
    #[error("the {0} thread panicked")]
    Panicked(&'static str),
}

impl EdgeError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> EdgeError {
        let what = what.into();
        move |source| EdgeError::Io { what, source }
    }
}

/// A fresh 64-bit id, distinct per process and per call: node incarnations
/// and actor sessions.
pub(crate) fn fresh_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 40) ^ CALLS.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}
