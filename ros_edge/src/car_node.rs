//! The car twin as a small car's driver node, on the wall clock: the newest
//! `geometry_msgs/Twist` on `cmd_vel` drives it; `nav_msgs/Odometry` on
//! `odom` and `sensor_msgs/Imu` on `imu/data` come out every tick, stamped
//! with the wall clock, as a real car's driver publishes them; its
//! cameras' frames on `<camera>/image_raw`, rendered off the loop. A twist
//! older than half a second stops the car, as a car's own command timeout
//! would. No gate here: as on a real car, the gate runs in the process that
//! drives it (`rrl practice` with a `Car(..)` robot).

use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use r2r::QosProfile;
use robot_drivers::image_topic::ros_time;
use robot_drivers::pacing::Pacer;
use rrl_types::config::CourseConfig;
use rrl_types::course::yaw_quaternion;
use rrl_types::{Clock, MonotonicClock, SystemClock};
use sim_bridge::car::CarSim;
use sim_bridge::scene_cameras::SceneSnapshots;

use crate::robot_node::{Publish, RenderedCamera};
use crate::EdgeError;

/// A twist older than this stops the car.
const TWIST_TIMEOUT: Duration = Duration::from_millis(500);

pub struct CarNodeSpec<'a> {
    pub namespace: &'a str,
    /// The twin's course (its scene, for the camera thread's copy).
    pub course: &'a CourseConfig,
    /// Cameras of the twin to publish.
    pub cameras: Vec<RenderedCamera>,
    pub rate_hz: f64,
    /// Stop after this long (default: until `stop` says so).
    pub duration_s: Option<f64>,
    /// Stops (with the node's report) once this says so: the binary's SIGINT or SIGTERM.
    pub stop: fn() -> bool,
}

/// Serves `car` until `spec.duration_s` has passed or `spec.stop()`; what it did, as JSON.
pub fn serve(mut car: CarSim, spec: CarNodeSpec) -> Result<serde_json::Value, EdgeError> {
    let ctx = r2r::Context::create()?;
    let mut node = r2r::Node::create(ctx, "sim_car", spec.namespace)?;
    let odometry = node.create_publisher::<r2r::nav_msgs::msg::Odometry>("odom", QosProfile::sensor_data())?;
    let imu = node.create_publisher::<r2r::sensor_msgs::msg::Imu>("imu/data", QosProfile::sensor_data())?;
    let mut twists = node.subscribe::<r2r::geometry_msgs::msg::Twist>("cmd_vel", QosProfile::default())?;
    let fastest_fps = spec.cameras.iter().map(|c| c.spec.fps).fold(0.0, f64::max);
    let snapshots = match spec.cameras.is_empty() {
        true => None,
        false => {
            let sink = Publish::on(&mut node, &spec.cameras)?;
            let course = spec.course.clone();
            let specs = spec.cameras.into_iter().map(|c| c.spec).collect();
            Some(SceneSnapshots::start_with(specs, sink, move || CarSim::load(&course)).map_err(EdgeError::io("starting the camera renderer"))?)
        }
    };
    let mut last_frame = f64::NEG_INFINITY;
    tracing::info!(namespace = spec.namespace, rate_hz = spec.rate_hz, "car twin node up");
    let period = 1.0 / spec.rate_hz;
    let mut pacer = Pacer::at_rate(spec.rate_hz, MonotonicClock);
    let started = Instant::now();
    let (mut ticks, mut received, mut timeouts) = (0u64, 0u64, 0u64);
    let mut twist: Option<((f64, f64), Instant)> = None;
    // Built once; each tick fills in the numbers.
    let mut message = r2r::nav_msgs::msg::Odometry::default();
    message.header.frame_id = "odom".into();
    message.child_frame_id = "base_link".into();
    let mut sample = r2r::sensor_msgs::msg::Imu::default();
    sample.header.frame_id = "imu".into();
    sample.linear_acceleration.z = 9.81;
    while spec.duration_s.is_none_or(|d| started.elapsed().as_secs_f64() < d) && !(spec.stop)() {
        node.spin_once(Duration::ZERO);
        while let Some(Some(message)) = twists.next().now_or_never() {
            received += 1;
            // Anything read from a wire is bounded: a non-finite twist is a stop.
            let (v, w) = (message.linear.x, message.angular.z);
            let finite = v.is_finite() && w.is_finite();
            twist = Some((if finite { (v, w) } else { (0.0, 0.0) }, Instant::now()));
        }
        let (v, w) = match twist {
            Some((command, at)) if at.elapsed() <= TWIST_TIMEOUT => command,
            Some(_) => {
                timeouts += 1;
                twist = None;
                (0.0, 0.0)
            }
            None => (0.0, 0.0),
        };
        car.drive(v, w);
        let (accel, _) = car.advance(period);
        let reading = car.reading();
        let stamp = ros_time(SystemClock.now());
        let (w, z) = yaw_quaternion(reading.yaw);
        message.header.stamp = stamp.clone();
        message.pose.pose.position.x = reading.x;
        message.pose.pose.position.y = reading.y;
        (message.pose.pose.orientation.w, message.pose.pose.orientation.z) = (w, z);
        message.twist.twist.linear.x = reading.speed;
        message.twist.twist.angular.z = reading.yaw_rate;
        odometry.publish(&message)?;
        sample.header.stamp = stamp;
        (sample.linear_acceleration.x, sample.linear_acceleration.y) = accel;
        sample.angular_velocity.z = reading.yaw_rate;
        imu.publish(&sample)?;
        if let Some(snapshots) = &snapshots {
            // The newest pose goes to the camera thread, at most at the fastest camera's rate.
            let now = SystemClock.now();
            if now.as_secs_f64() - last_frame + 1e-9 >= 1.0 / fastest_fps {
                last_frame = now.as_secs_f64();
                snapshots.offer(&car, now);
            }
            if let Some(why) = snapshots.failure() {
                return Err(EdgeError::Refused(why));
            }
        }
        ticks += 1;
        pacer.wait();
    }
    let last = car.reading();
    Ok(serde_json::json!({"ticks": ticks, "twists": received, "twist_timeouts": timeouts, "pose": [last.x, last.y, last.yaw]}))
}
