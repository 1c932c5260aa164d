//! Topics a real-arm task observes besides the robot itself: an object's
//! `geometry_msgs/PoseStamped` from motion capture or a fiducial tracker,
//! a `std_msgs/Float64MultiArray` of a fixed size, or a detector's
//! `std_msgs/Bool` (a direction's success source). A thread spins the
//! subscriptions and keeps each topic's newest values; the task takes them
//! without a lock. A message of the wrong size is refused and counted,
//! never stored: what is read from the wire is bounded. Samples are aged
//! by arrival, so a tracker without time sync reads fresh or stale alike.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::queue::ArrayQueue;
use futures::{FutureExt, StreamExt};
use r2r::QosProfile;
use robot_drivers::worker::{stopping, Worker};
use rrl_types::MAX_TOPIC_VALUES;

use crate::EdgeError;

/// What a topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind {
    /// `geometry_msgs/PoseStamped`: x, y, z, qx, qy, qz, qw.
    Pose,
    /// `std_msgs/Float64MultiArray` of exactly this many values.
    Array(usize),
    /// `std_msgs/Bool`: 1 true, 0 false.
    Bool,
}

impl TopicKind {
    pub fn len(self) -> usize {
        match self {
            TopicKind::Pose => 7,
            TopicKind::Array(len) => len,
            TopicKind::Bool => 1,
        }
    }
}

const MAX_VALUES: usize = MAX_TOPIC_VALUES;

/// One topic's newest values, stamped on arrival.
#[derive(Clone, Copy)]
struct Sample {
    received: Instant,
    values: [f64; MAX_VALUES],
}

struct Topic {
    name: String,
    kind: TopicKind,
    newest: Arc<ArrayQueue<Sample>>,
    last: Option<Sample>,
    refused: Arc<AtomicU64>,
}

/// The observed topics' newest values.
pub struct ObservedTopics {
    topics: Vec<Topic>,
    _spin: Worker,
}

impl ObservedTopics {
    /// Subscribes to `topics` (names relative to `namespace`) on a node of its own.
    pub fn start(namespace: &str, topics: &[(String, TopicKind)]) -> Result<ObservedTopics, EdgeError> {
        let ctx = r2r::Context::create()?;
        let mut node = r2r::Node::create(ctx, "task_observations", namespace)?;
        let mut receivers: Vec<Box<dyn FnMut() + Send>> = Vec::new();
        let mut kept = Vec::new();
        for (name, kind) in topics {
            if kind.len() == 0 || kind.len() > MAX_VALUES {
                return Err(EdgeError::Refused(format!("topic `{name}`: an observed array holds 1 to {MAX_VALUES} values, not {}", kind.len())));
            }
            let (newest, refused) = (Arc::new(ArrayQueue::new(1)), Arc::new(AtomicU64::new(0)));
            let (store, count) = (newest.clone(), refused.clone());
            let keep = move |values: &[f64]| {
                let mut sample = Sample { received: Instant::now(), values: [0.0; MAX_VALUES] };
                sample.values[..values.len()].copy_from_slice(values);
                let _ = store.force_push(sample);
            };
            receivers.push(match *kind {
                TopicKind::Pose => {
                    let mut poses = node.subscribe::<r2r::geometry_msgs::msg::PoseStamped>(name, QosProfile::sensor_data())?;
                    Box::new(move || {
                        while let Some(Some(msg)) = poses.next().now_or_never() {
                            let (p, o) = (&msg.pose.position, &msg.pose.orientation);
                            let values = [p.x, p.y, p.z, o.x, o.y, o.z, o.w];
                            match values.iter().all(|v| v.is_finite()) {
                                true => keep(&values),
                                false => _ = count.fetch_add(1, Ordering::Relaxed),
                            }
                        }
                    })
                }
                TopicKind::Bool => {
                    let mut flags = node.subscribe::<r2r::std_msgs::msg::Bool>(name, QosProfile::sensor_data())?;
                    Box::new(move || {
                        while let Some(Some(msg)) = flags.next().now_or_never() {
                            keep(&[f64::from(u8::from(msg.data))]);
                        }
                    })
                }
                TopicKind::Array(len) => {
                    let mut arrays = node.subscribe::<r2r::std_msgs::msg::Float64MultiArray>(name, QosProfile::sensor_data())?;
                    Box::new(move || {
                        while let Some(Some(msg)) = arrays.next().now_or_never() {
                            match msg.data.len() == len && msg.data.iter().all(|v| v.is_finite()) {
                                true => keep(&msg.data),
                                false => _ = count.fetch_add(1, Ordering::Relaxed),
                            }
                        }
                    })
                }
            });
            kept.push(Topic { name: name.clone(), kind: *kind, newest, last: None, refused });
        }
        let spin = Worker::spawn("task-observations", move |stop| {
            while !stopping(stop) {
                node.spin_once(Duration::from_millis(5));
                for receive in receivers.iter_mut() {
                    receive();
                }
            }
        })
        .map_err(EdgeError::io("starting the observed topics' thread"))?;
        Ok(ObservedTopics { topics: kept, _spin: spin })
    }

    /// Takes every topic's newest values, if new ones came.
    pub fn refresh(&mut self) {
        for topic in &mut self.topics {
            if let Some(sample) = topic.newest.pop() {
                topic.last = Some(sample);
            }
        }
    }

    /// Topic `i`'s newest values (zeros before the first message).
    pub fn values(&self, i: usize) -> &[f64] {
        const NOTHING: [f64; MAX_VALUES] = [0.0; MAX_VALUES];
        let topic = &self.topics[i];
        &topic.last.as_ref().map_or(&NOTHING, |s| &s.values)[..topic.kind.len()]
    }

    /// Waits until every topic has delivered once; the error names the
    /// topics still silent after `timeout`, and how many of their
    /// messages were refused.
    pub fn wait_for_all(&mut self, timeout: Duration) -> Result<(), String> {
        let started = Instant::now();
        loop {
            self.refresh();
            let silent: Vec<String> = self.topics.iter().filter(|t| t.last.is_none()).map(|t| format!("`{}` ({} messages refused)", t.name, t.refused.load(Ordering::Relaxed))).collect();
            if silent.is_empty() {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                return Err(format!("no message within {:.1} s on {}", timeout.as_secs_f64(), silent.join(", ")));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The age of the oldest topic's newest message, and that topic's name.
    pub fn oldest(&self) -> Option<(Duration, &str)> {
        self.topics.iter().filter_map(|t| t.last.map(|s| (s.received.elapsed(), t.name.as_str()))).max_by_key(|(age, _)| *age)
    }

    /// Messages refused (wrong size, not finite) per topic, by name.
    pub fn refused(&self) -> Vec<(String, u64)> {
        self.topics.iter().map(|t| (t.name.clone(), t.refused.load(Ordering::Relaxed))).collect()
    }
}
