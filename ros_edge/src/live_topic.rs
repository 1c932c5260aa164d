//! The operator's live view of a session over ROS 2:
//! `<namespace>/practice/live` (`std_msgs/String`, one JSON object: the
//! episode, its step and return so far, the steps the human drove, the
//! episodes and successes of the session, and what it waits for), twice a
//! second, from a thread of its own that reads the session's `LiveStatus`.
//! The same view, as one line, goes to a callback of the caller's (the
//! terminal's progress bar).

use std::sync::Arc;
use std::time::Duration;

use r2r::QosProfile;
use robot_drivers::worker::{stopping, Worker};
use rrl_types::{LiveSnapshot, LiveStatus, Waiting};

use crate::EdgeError;

/// How often the view is published.
const EVERY: Duration = Duration::from_millis(500);

pub struct LiveTopic {
    _publisher: Worker,
}

/// The view as the topic carries it.
pub fn to_json(seen: &LiveSnapshot) -> serde_json::Value {
    serde_json::json!({
        "episode": seen.episode,
        "step": seen.step,
        "episode_return": seen.episode_return,
        "human_steps": seen.human_steps,
        "episodes": seen.episodes,
        "successes": seen.successes,
        "waiting_for": (seen.waiting != Waiting::Nothing).then(|| seen.waiting.describe()),
    })
}

impl LiveTopic {
    pub fn start(namespace: &str, live: Arc<LiveStatus>, mut show: impl FnMut(&str) + Send + 'static) -> Result<LiveTopic, EdgeError> {
        let ctx = r2r::Context::create()?;
        let mut node = r2r::Node::create(ctx, "practice_live", namespace)?;
        let publisher = node.create_publisher::<r2r::std_msgs::msg::String>("practice/live", QosProfile::default())?;
        let worker = Worker::spawn("practice-live", move |stop| {
            // The node lives as long as its publisher, on this thread.
            let _node = node;
            while !stopping(stop) {
                let seen = live.snapshot();
                show(&seen.line());
                if let Err(e) = publisher.publish(&r2r::std_msgs::msg::String { data: to_json(&seen).to_string() }) {
                    tracing::debug!("practice/live not published: {e}");
                }
                std::thread::sleep(EVERY);
            }
        })
        .map_err(EdgeError::io("starting the live view's thread"))?;
        Ok(LiveTopic { _publisher: worker })
    }
}
