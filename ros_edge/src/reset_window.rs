//! The human reset window of a real-arm task: the arm is held while a
//! person puts the scene back, and the next episode waits for their word —
//! a `std_msgs/Empty` on `<namespace>/practice/reset_done` — with a
//! timeout. While it waits, `<namespace>/practice/status`
//! (`std_msgs/String`) says so, every half second and numbered, for the
//! operator's screen and for anyone who resets the scene. The operator's
//! devices say the word too (`ResetDoneButton`: a key, a gamepad button).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::queue::ArrayQueue;
use futures::{FutureExt, StreamExt};
use r2r::QosProfile;
use robot_drivers::worker::{stopping, Worker};

use crate::EdgeError;

/// How often the waiting status is published again.
const STATUS_EVERY: Duration = Duration::from_millis(500);

/// The status text while the window is open; it starts with this.
pub const WAITING: &str = "waiting for the scene reset";

pub struct ResetWindow {
    /// Windows opened so far; the status names the open one, so whoever
    /// answers answers each window once.
    opened: std::cell::Cell<u64>,
    done: Arc<AtomicU64>,
    status: Arc<ArrayQueue<String>>,
    topic: String,
    _spin: Worker,
}

impl ResetWindow {
    pub fn start(namespace: &str) -> Result<ResetWindow, EdgeError> {
        let ctx = r2r::Context::create()?;
        let mut node = r2r::Node::create(ctx, "practice_reset_window", namespace)?;
        let mut done_messages = node.subscribe::<r2r::std_msgs::msg::Empty>("practice/reset_done", QosProfile::default())?;
        let publisher = node.create_publisher::<r2r::std_msgs::msg::String>("practice/status", QosProfile::default())?;
        let (done, status) = (Arc::new(AtomicU64::new(0)), Arc::new(ArrayQueue::new(4)));
        let (count, outgoing) = (done.clone(), status.clone());
        let spin = Worker::spawn("reset-window", move |stop| {
            while !stopping(stop) {
                node.spin_once(Duration::from_millis(5));
                while let Some(Some(_)) = done_messages.next().now_or_never() {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                while let Some(text) = outgoing.pop() {
                    let _ = publisher.publish(&r2r::std_msgs::msg::String { data: text });
                }
            }
        })
        .map_err(EdgeError::io("starting the reset window's thread"))?;
        let topic = format!("{}/practice/reset_done", namespace.trim_end_matches('/'));
        Ok(ResetWindow { opened: std::cell::Cell::new(0), done, status, topic, _spin: spin })
    }

    /// Opens the window and returns when the reset is done; `hold` runs
    /// every control tick meanwhile (it keeps the arm held). Fails after
    /// `timeout` with what was waited for.
    pub fn wait<E>(&self, timeout: Duration, mut hold: impl FnMut() -> Result<(), E>) -> Result<Result<(), String>, E> {
        let before = self.done.load(Ordering::Relaxed);
        let window = self.opened.get() + 1;
        self.opened.set(window);
        let started = Instant::now();
        let mut announced: Option<Instant> = None;
        tracing::info!(topic = %self.topic, timeout_s = timeout.as_secs_f64(), "{WAITING}: the arm is held");
        loop {
            if self.done.load(Ordering::Relaxed) != before {
                let _ = self.status.force_push("scene reset done".into());
                return Ok(Ok(()));
            }
            if started.elapsed() >= timeout {
                let _ = self.status.force_push("the scene reset timed out".into());
                return Ok(Err(format!("nobody finished the scene reset within {:.0} s (when the scene is ready: the space bar of `--operator keyboard`, button 4 of `--operator joy`, or std_msgs/Empty on {})", timeout.as_secs_f64(), self.topic)));
            }
            if announced.is_none_or(|t| t.elapsed() >= STATUS_EVERY) {
                let left = timeout.saturating_sub(started.elapsed()).as_secs_f64();
                let _ = self.status.force_push(format!("{WAITING} (window {window}): space bar, gamepad button 4, or std_msgs/Empty on {} ({left:.0} s left)", self.topic));
                announced = Some(Instant::now());
            }
            hold()?;
        }
    }
}

/// A key or button of the operator's that closes the reset window: each
/// press publishes `std_msgs/Empty` on `<namespace>/practice/reset_done`,
/// whoever holds the window (this process or another).
pub struct ResetDoneButton {
    publisher: r2r::Publisher<r2r::std_msgs::msg::Empty>,
    // The node the publisher belongs to lives as long as it.
    _node: r2r::Node,
}

impl ResetDoneButton {
    pub fn start(namespace: &str) -> Result<ResetDoneButton, EdgeError> {
        let ctx = r2r::Context::create()?;
        let mut node = r2r::Node::create(ctx, "practice_reset_done_button", namespace)?;
        let publisher = node.create_publisher::<r2r::std_msgs::msg::Empty>("practice/reset_done", QosProfile::default())?;
        Ok(ResetDoneButton { publisher, _node: node })
    }

    /// The human pressed it: the scene is ready.
    pub fn press(&self) {
        if let Err(e) = self.publisher.publish(&r2r::std_msgs::msg::Empty {}) {
            tracing::warn!("the reset-done press was not published: {e}");
        }
    }
}

