//! A small car (FastRLAP class) through its topics: `geometry_msgs/Twist`
//! out, `nav_msgs/Odometry` and optionally `sensor_msgs/Imu` in.
//!
//! The car is two velocity-commanded "joints", `linear_x` (m/s) and
//! `angular_z` (rad/s), so the same control loop and safety gate drive it
//! as an arm. Its joint state: position = (signed distance travelled, yaw),
//! velocity = (forward speed, yaw rate — from the IMU when there is one,
//! it is fresher than odometry). The state's stamp is the older of the
//! newest odometry and IMU stamps, so either sensor falling silent shows up
//! as a stale state in the gate. As a second line, the driver itself sends
//! a zero twist when odometry is older than `state_timeout_ms`, and never
//! sends more than `max_linear_mps` / `max_angular_rps`.

use std::sync::Arc;
use std::time::Duration;

use crossbeam::queue::ArrayQueue;
use futures::{FutureExt, StreamExt};
use rrl_types::config::CarConfig;
use rrl_types::{CommandMode, JointCommand, JointState, Timestamp};

use crate::hardware::{check_write, transition, HardwareError, HardwareInterface, Lifecycle};
use crate::image_topic::received_stamp;
use crate::worker::{stopping, Worker};

/// The car's joint names, in order.
pub use rrl_types::config::CAR_JOINTS;

/// IMU samples a task may leave untaken before the oldest are dropped
/// (about 2.5 s at 100 Hz).
const IMU_FEED: usize = 256;

/// Where the odometry says the car is.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CarPose {
    pub stamp: Timestamp,
    pub x: f64,
    pub y: f64,
    pub yaw: f64,
    /// Signed distance travelled along the path since the driver started.
    pub distance: f64,
    pub speed: f64,
    pub yaw_rate: f64,
}

/// One IMU message: horizontal acceleration in the car's frame (forward,
/// left; m/s²) and yaw rate.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ImuSample {
    pub stamp: Timestamp,
    pub accel: (f64, f64),
    pub yaw_rate: f64,
}

/// What a task reads of the car beside its control loop (which owns the
/// driver): the newest odometry, and every IMU sample (bounded; the oldest
/// go first) for the bumps between two looks.
#[derive(Clone)]
pub struct CarFeed {
    pose: Arc<ArrayQueue<CarPose>>,
    imu: Arc<ArrayQueue<ImuSample>>,
}

impl CarFeed {
    fn new() -> CarFeed {
        CarFeed { pose: Arc::new(ArrayQueue::new(1)), imu: Arc::new(ArrayQueue::new(IMU_FEED)) }
    }

    /// The newest odometry, if any came since the last look.
    pub fn take_pose(&self) -> Option<CarPose> {
        self.pose.pop()
    }

    /// Hands every IMU sample that came since the last look to `each`.
    pub fn drain_imu(&self, mut each: impl FnMut(ImuSample)) {
        while let Some(sample) = self.imu.pop() {
            each(sample);
        }
    }
}

pub struct TopicCar {
    config: CarConfig,
    namespace: String,
    joints: Vec<String>,
    lifecycle: Lifecycle,
    newest_pose: Arc<ArrayQueue<CarPose>>,
    newest_imu: Arc<ArrayQueue<ImuSample>>,
    outgoing: Arc<ArrayQueue<(f64, f64)>>,
    feed: CarFeed,
    pose: Option<CarPose>,
    imu: Option<ImuSample>,
    worker: Option<Worker>,
}

impl TopicCar {
    pub fn new(config: CarConfig, namespace: &str) -> TopicCar {
        TopicCar {
            config,
            namespace: namespace.to_string(),
            joints: CAR_JOINTS.iter().map(|s| s.to_string()).collect(),
            lifecycle: Lifecycle::Unconfigured,
            newest_pose: Arc::new(ArrayQueue::new(1)),
            newest_imu: Arc::new(ArrayQueue::new(1)),
            outgoing: Arc::new(ArrayQueue::new(1)),
            feed: CarFeed::new(),
            pose: None,
            imu: None,
            worker: None,
        }
    }

    /// The newest odometry, if any has arrived.
    pub fn pose(&self) -> Option<CarPose> {
        self.pose
    }

    /// The car's odometry and IMU for a task, beside the control loop.
    pub fn feed(&self) -> CarFeed {
        self.feed.clone()
    }

    fn device(&self, message: impl std::fmt::Display) -> HardwareError {
        HardwareError::Device { robot: format!("car on {}", self.config.odom_topic), message: message.to_string() }
    }

    fn start_node(&mut self) -> Result<(), HardwareError> {
        let ctx = r2r::Context::create().map_err(|e| self.device(e))?;
        let mut node = r2r::Node::create(ctx, "car", &self.namespace).map_err(|e| self.device(e))?;
        let mut odometry = node.subscribe::<r2r::nav_msgs::msg::Odometry>(&self.config.odom_topic, r2r::QosProfile::sensor_data()).map_err(|e| self.device(e))?;
        let mut imu = match &self.config.imu_topic {
            Some(topic) => Some(node.subscribe::<r2r::sensor_msgs::msg::Imu>(topic, r2r::QosProfile::sensor_data()).map_err(|e| self.device(e))?),
            None => None,
        };
        let twist = node.create_publisher::<r2r::geometry_msgs::msg::Twist>(&self.config.cmd_vel_topic, r2r::QosProfile::default()).map_err(|e| self.device(e))?;
        let (newest_pose, newest_imu, outgoing, feed) = (self.newest_pose.clone(), self.newest_imu.clone(), self.outgoing.clone(), self.feed.clone());
        let worker = Worker::spawn("car", move |stop| {
            let mut previous: Option<CarPose> = None;
            while !stopping(stop) {
                node.spin_once(Duration::from_millis(1));
                while let Some(Some(msg)) = odometry.next().now_or_never() {
                    let pose = pose_of(&msg, previous.as_ref());
                    previous = Some(pose);
                    let _ = newest_pose.force_push(pose);
                    let _ = feed.pose.force_push(pose);
                }
                if let Some(imu) = imu.as_mut() {
                    while let Some(Some(msg)) = imu.next().now_or_never() {
                        let sample = ImuSample { stamp: received_stamp(&msg.header.stamp), accel: (msg.linear_acceleration.x, msg.linear_acceleration.y), yaw_rate: msg.angular_velocity.z };
                        let _ = newest_imu.force_push(sample);
                        let _ = feed.imu.force_push(sample);
                    }
                }
                if let Some((linear, angular)) = outgoing.pop() {
                    let mut message = r2r::geometry_msgs::msg::Twist::default();
                    message.linear.x = linear;
                    message.angular.z = angular;
                    let _ = twist.publish(&message);
                }
            }
            // Leave the car stopped when the driver goes.
            let _ = twist.publish(&r2r::geometry_msgs::msg::Twist::default());
        })
        .map_err(|e| self.device(e))?;
        self.worker = Some(worker);
        Ok(())
    }
}

/// Yaw of a unit quaternion (rotation about z, as a planar car has).
fn yaw_of(q: &r2r::geometry_msgs::msg::Quaternion) -> f64 {
    rrl_types::course::yaw_of(q.w, q.x, q.y, q.z)
}

fn pose_of(msg: &r2r::nav_msgs::msg::Odometry, previous: Option<&CarPose>) -> CarPose {
    let p = &msg.pose.pose.position;
    let speed = msg.twist.twist.linear.x;
    let distance = match previous {
        // Signed by the direction of travel, so reversing counts down.
        Some(prev) => prev.distance + ((p.x - prev.x).hypot(p.y - prev.y)).copysign(if speed < 0.0 { -1.0 } else { 1.0 }),
        None => 0.0,
    };
    CarPose { stamp: received_stamp(&msg.header.stamp), x: p.x, y: p.y, yaw: yaw_of(&msg.pose.pose.orientation), distance, speed, yaw_rate: msg.twist.twist.angular.z }
}

impl HardwareInterface for TopicCar {
    fn name(&self) -> &str {
        &self.config.odom_topic
    }
    fn joint_names(&self) -> &[String] {
        &self.joints
    }
    fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }
    fn configure(&mut self) -> Result<(), HardwareError> {
        if self.lifecycle == Lifecycle::Unconfigured && self.worker.is_none() {
            self.start_node()?;
        }
        transition(&self.config.odom_topic, &mut self.lifecycle, "configure")
    }
    fn activate(&mut self) -> Result<(), HardwareError> {
        transition(&self.config.odom_topic, &mut self.lifecycle, "activate")
    }
    fn deactivate(&mut self) -> Result<(), HardwareError> {
        // Stopped, not coasting, when no longer active.
        let _ = self.outgoing.force_push((0.0, 0.0));
        transition(&self.config.odom_topic, &mut self.lifecycle, "deactivate")
    }
    fn recover(&mut self) -> Result<(), HardwareError> {
        transition(&self.config.odom_topic, &mut self.lifecycle, "recover")
    }
    /// The newest odometry (and IMU); the same again, growing stale, while
    /// the car is silent. Before the first odometry: an empty state, which
    /// the gate holds on.
    fn read(&mut self, _now: Timestamp, state: &mut JointState) -> Result<(), HardwareError> {
        if let Some(pose) = self.newest_pose.pop() {
            self.pose = Some(pose);
        }
        if let Some(imu) = self.newest_imu.pop() {
            self.imu = Some(imu);
        }
        let Some(pose) = self.pose else {
            *state = JointState::zeros(0);
            return Ok(());
        };
        let mut measured = JointState::zeros(2);
        measured.position[0] = pose.distance;
        measured.position[1] = pose.yaw;
        measured.velocity[0] = pose.speed;
        measured.stamp = pose.stamp;
        match (self.config.imu_topic.is_some(), self.imu) {
            (false, _) => measured.velocity[1] = pose.yaw_rate,
            (true, Some(imu)) => {
                measured.velocity[1] = imu.yaw_rate;
                measured.stamp = measured.stamp.min(imu.stamp);
            }
            // An IMU is configured but silent: as stale as can be.
            (true, None) => measured.stamp = Timestamp::ZERO,
        }
        *state = measured;
        Ok(())
    }
    fn native_mode(&self) -> CommandMode {
        CommandMode::Velocity
    }
    fn write(&mut self, command: &JointCommand) -> Result<(), HardwareError> {
        check_write(self, command, &[CommandMode::Velocity])?;
        let fresh = self.pose.is_some_and(|p| command.stamp.nanos_since(p.stamp) <= self.config.state_timeout_ms * 1_000_000);
        let twist = if fresh {
            (
                command.values[0].clamp(-self.config.max_linear_mps, self.config.max_linear_mps),
                command.values[1].clamp(-self.config.max_angular_rps, self.config.max_angular_rps),
            )
        } else {
            (0.0, 0.0)
        };
        let _ = self.outgoing.force_push(twist);
        Ok(())
    }
}
