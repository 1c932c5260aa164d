//! The VLM progress critic as a ROS 2 node (`rrl reward-node`).
//!
//! Subscribes to the first configured camera's `sensor_msgs/Image` topic
//! (the camera's `Topic(..)` source, else `<namespace>/<camera>/image_raw`)
//! with sensor-data QoS, and to `reward/task` (`std_msgs/String`: a new
//! task text starts a new episode; the launch file's task is the first).
//! The task is also the node's `task` parameter: setting it (e.g.
//! `ros2 param set`) starts a new episode too.
//! Publishes `reward/estimate` as `geometry_msgs/Vector3Stamped` carrying
//! the scored frame's stamp: x = progress (0..100), y = reward, z = done
//! (0 or 1); and `reward/stats` (`std_msgs/String`, JSON counters) once a
//! second. Frames never wait for the model: newest wins.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use r2r::QosProfile;
use rewards::pipeline::ProgressPipeline;
use rewards::Frame;

use crate::EdgeError;

/// What the reward node scores and where it listens.
pub struct RewardNodeSpec<'a> {
    pub namespace: &'a str,
    /// The reward camera's image topic.
    pub image_topic: &'a str,
    /// The camera's name: the estimates' frame id.
    pub camera: &'a str,
    /// The task in words, the first episode's.
    pub task: &'a str,
    /// Stop after this long (default: until killed).
    pub duration_s: Option<f64>,
}

/// An image message as an RGB frame; `None` for encodings not handled.
fn frame_of(msg: &r2r::sensor_msgs::msg::Image) -> Option<Frame> {
    let (stamp, rgb) = robot_drivers::image_topic::rgb_of_image(msg)?;
    Frame::new(stamp, msg.width, msg.height, rgb).ok()
}

/// Serves `pipeline` (a progress critic with its requests in flight) as
/// the reward node; its counters when it stops.
pub fn serve(mut pipeline: ProgressPipeline, spec: RewardNodeSpec) -> Result<serde_json::Value, EdgeError> {
    let ctx = r2r::Context::create()?;
    let mut node = r2r::Node::create(ctx, "reward_node", spec.namespace)?;
    // The task is also the node's `task` parameter (`ros2 param set <ns>/reward_node task "..."`).
    let (mut services, mut parameter_events) = crate::params::parameter_service(&mut node, &[("task", r2r::ParameterValue::String(spec.task.to_string()))])?;
    let mut task = spec.task.to_string();
    pipeline.reset(&task);
    let mut images = node.subscribe::<r2r::sensor_msgs::msg::Image>(spec.image_topic, QosProfile::sensor_data())?;
    let mut tasks = node.subscribe::<r2r::std_msgs::msg::String>("reward/task", QosProfile::default())?;
    let estimates = node.create_publisher::<r2r::geometry_msgs::msg::Vector3Stamped>("reward/estimate", QosProfile::default())?;
    let stats = node.create_publisher::<r2r::std_msgs::msg::String>("reward/stats", QosProfile::default())?;
    tracing::info!(image_topic = spec.image_topic, "reward node up");

    let started = Instant::now();
    let mut last_stats = Instant::now();
    let (mut published, mut unsupported) = (0u64, 0u64);
    let counters = |pipeline: &ProgressPipeline, published: u64, unsupported: u64, task: &str| {
        let c = pipeline.counts();
        serde_json::json!({
            "task": task,
            "offered": c.offered.load(Ordering::Relaxed),
            "dropped": c.dropped.load(Ordering::Relaxed),
            "scored": c.scored.load(Ordering::Relaxed),
            "failed": c.failed.load(Ordering::Relaxed),
            "published": published,
            "unsupported_images": unsupported,
        })
    };
    while spec.duration_s.is_none_or(|d| started.elapsed().as_secs_f64() < d) {
        node.spin_once(Duration::from_millis(5));
        services.run_until_stalled();
        while let Some(Some(message)) = tasks.next().now_or_never() {
            tracing::info!(task = %message.data, "new episode");
            pipeline.reset(&message.data);
            task = message.data;
        }
        while let Some(Some((name, value))) = parameter_events.next().now_or_never() {
            match (name.as_str(), value) {
                ("task", r2r::ParameterValue::String(text)) => {
                    tracing::info!(task = %text, "new episode (task parameter)");
                    pipeline.reset(&text);
                    task = text;
                }
                (name, value) => tracing::warn!(parameter = name, ?value, "ignored: the reward node's parameter is `task`, a string"),
            }
        }
        while let Some(Some(image)) = images.next().now_or_never() {
            match frame_of(&image) {
                Some(frame) => pipeline.offer(frame),
                None => {
                    if unsupported == 0 {
                        tracing::warn!(encoding = %image.encoding, "images must be rgb8, bgr8 or mono8 with a consistent step; skipping");
                    }
                    unsupported += 1;
                }
            }
        }
        for estimate in pipeline.poll() {
            let stamp = r2r::builtin_interfaces::msg::Time { sec: (estimate.stamp.0 / 1_000_000_000) as i32, nanosec: (estimate.stamp.0 % 1_000_000_000) as u32 };
            let vector = r2r::geometry_msgs::msg::Vector3 { x: estimate.progress.unwrap_or(0.0), y: estimate.reward, z: f64::from(u8::from(estimate.done)) };
            estimates.publish(&r2r::geometry_msgs::msg::Vector3Stamped { header: r2r::std_msgs::msg::Header { stamp, frame_id: spec.camera.to_string() }, vector })?;
            published += 1;
        }
        if last_stats.elapsed() >= Duration::from_secs(1) {
            stats.publish(&r2r::std_msgs::msg::String { data: counters(&pipeline, published, unsupported, &task).to_string() })?;
            last_stats = Instant::now();
        }
    }
    Ok(counters(&pipeline, published, unsupported, &task))
}
