//! The car twin as a small car's driver node, on the wall clock: the newest
//! `geometry_msgs/Twist` on `cmd_vel` drives it; `nav_msgs/Odometry` on
//! `odom` and `sensor_msgs/Imu` on `imu/data` come out every tick, stamped
//! with the wall clock, as a real car's driver publishes them; its
//! cameras' frames on `<camera>/image_raw`, rendered off the loop. A twist
//! older than half a second stops the car, as a car's own command timeout
//! would. No gate here: as on a real car, the gate runs in the process that
//! drives it (`rrl practice` with a `Car(..)` robot).
//!
//! As in `robot_node`, the calling thread only steps the car and hands each
//! tick over through bounded lock-free queues (no allocation, lock or
//! blocking per tick); the node's own thread does everything ROS 2.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::queue::ArrayQueue;
use futures::{FutureExt, StreamExt};
use r2r::QosProfile;
use robot_drivers::image_topic::ros_time;
use robot_drivers::pacing::Pacer;
use rrl_types::config::CourseConfig;
use rrl_types::course::yaw_quaternion;
use rrl_types::course::CarReading;
use rrl_types::{Clock, MonotonicClock, SystemClock, Timestamp};
use sim_bridge::car::CarSim;
use sim_bridge::scene_cameras::SceneSnapshots;

use crate::robot_node::{handed_over, Publish, RenderedCamera, StopOnDrop};
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

/// Ticks that may wait for the node's thread to publish them.
const TICKS_WAITING: usize = 256;

/// One tick of the car, handed to the node's thread: its reading, its
/// horizontal acceleration and the wall-clock stamp.
#[derive(Clone, Copy)]
struct CarTick {
    stamp: Timestamp,
    reading: CarReading,
    accel: (f64, f64),
}

/// The two threads' links.
struct Links {
    ticks: ArrayQueue<CarTick>,
    dropped_ticks: AtomicU64,
    /// The newest twist (linear, angular) and when it came; a non-finite one is a stop.
    twist: ArrayQueue<((f64, f64), Instant)>,
    twists: AtomicU64,
    /// Set by the stepping thread when it stops, and by the node's thread when it fails.
    stopping: AtomicBool,
}

/// Serves `car` until `spec.duration_s` has passed or `spec.stop()`; what it did, as JSON.
pub fn serve(mut car: CarSim, spec: CarNodeSpec) -> Result<serde_json::Value, EdgeError> {
    let links = Arc::new(Links { ticks: ArrayQueue::new(TICKS_WAITING), dropped_ticks: AtomicU64::new(0), twist: ArrayQueue::new(1), twists: AtomicU64::new(0), stopping: AtomicBool::new(false) });
    let fastest_fps = spec.cameras.iter().map(|c| c.spec.fps).fold(0.0, f64::max);
    let (ready, set_up) = std::sync::mpsc::channel();
    let (namespace, course, cameras, node_links) = (spec.namespace.to_string(), spec.course.clone(), spec.cameras, links.clone());
    let node = std::thread::Builder::new()
        .name("car-node-ros".into())
        .spawn(move || run_node(&namespace, course, cameras, node_links, ready))
        .map_err(EdgeError::io("starting the car node's ROS thread"))?;
    let (snapshots, node): (Option<Arc<SceneSnapshots>>, _) = handed_over(set_up, node, "car node")?;
    let stops_the_node = StopOnDrop(&links.stopping);
    tracing::info!(namespace = spec.namespace, rate_hz = spec.rate_hz, "car twin node up");
    let mut last_frame = f64::NEG_INFINITY;
    let period = 1.0 / spec.rate_hz;
    let mut pacer = Pacer::at_rate(spec.rate_hz, MonotonicClock);
    let started = Instant::now();
    let (mut ticks, mut timeouts) = (0u64, 0u64);
    let mut twist: Option<((f64, f64), Instant)> = None;
    while spec.duration_s.is_none_or(|d| started.elapsed().as_secs_f64() < d) && !(spec.stop)() && !links.stopping.load(Ordering::Acquire) {
        if let Some(newest) = links.twist.pop() {
            twist = Some(newest);
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
        let stamp = SystemClock.now();
        if links.ticks.force_push(CarTick { stamp, reading: car.reading(), accel }).is_some() {
            links.dropped_ticks.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(snapshots) = &snapshots {
            // The newest pose goes to the camera thread, at most at the fastest camera's rate.
            if stamp.as_secs_f64() - last_frame + 1e-9 >= 1.0 / fastest_fps {
                last_frame = stamp.as_secs_f64();
                snapshots.offer(&car, stamp);
            }
        }
        ticks += 1;
        pacer.wait();
    }
    // The renderer's last reference then goes with the node's thread, before its node.
    drop(snapshots);
    drop(stops_the_node);
    node.join().map_err(|_| EdgeError::Panicked("car node"))??;
    let last = car.reading();
    Ok(serde_json::json!({
        "ticks": ticks,
        "twists": links.twists.load(Ordering::Relaxed),
        "twist_timeouts": timeouts,
        "pose": [last.x, last.y, last.yaw],
        "unpublished_ticks": links.dropped_ticks.load(Ordering::Relaxed),
    }))
}

/// The node's thread: sets up the node and the camera renderer (handing the
/// stepping thread the renderer's snapshots), then publishes every tick
/// handed over and passes twists on, until the stepping thread stops or
/// something fails here.
fn run_node(namespace: &str, course: CourseConfig, cameras: Vec<RenderedCamera>, links: Arc<Links>, ready: std::sync::mpsc::Sender<Result<Option<Arc<SceneSnapshots>>, EdgeError>>) -> Result<(), EdgeError> {
    let _stops_the_stepping = StopOnDrop(&links.stopping);
    let set_up = (|| {
        let ctx = r2r::Context::create()?;
        let mut node = r2r::Node::create(ctx, "sim_car", namespace)?;
        let odometry = node.create_publisher::<r2r::nav_msgs::msg::Odometry>("odom", QosProfile::sensor_data())?;
        let imu = node.create_publisher::<r2r::sensor_msgs::msg::Imu>("imu/data", QosProfile::sensor_data())?;
        let twists = node.subscribe::<r2r::geometry_msgs::msg::Twist>("cmd_vel", QosProfile::default())?;
        let snapshots = match cameras.is_empty() {
            true => None,
            false => {
                let sink = Publish::on(&mut node, &cameras)?;
                let specs = cameras.into_iter().map(|c| c.spec).collect();
                Some(Arc::new(SceneSnapshots::start_with(specs, sink, move || CarSim::load(&course)).map_err(EdgeError::io("starting the camera renderer"))?))
            }
        };
        Ok::<_, EdgeError>((node, odometry, imu, twists, snapshots))
    })();
    let (mut node, odometry, imu, mut twists, snapshots) = match set_up {
        Ok(parts) => parts,
        Err(e) => {
            let _ = ready.send(Err(EdgeError::Refused(e.to_string())));
            return Err(e);
        }
    };
    if ready.send(Ok(snapshots.clone())).is_err() {
        return Ok(());
    }
    let fail = |e: EdgeError| {
        links.stopping.store(true, Ordering::Release);
        Err(e)
    };
    // Built once; each tick fills in the numbers.
    let mut message = r2r::nav_msgs::msg::Odometry::default();
    message.header.frame_id = "odom".into();
    message.child_frame_id = "base_link".into();
    let mut sample = r2r::sensor_msgs::msg::Imu::default();
    sample.header.frame_id = "imu".into();
    sample.linear_acceleration.z = 9.81;
    loop {
        let stopping = links.stopping.load(Ordering::Acquire);
        node.spin_once(Duration::from_millis(1));
        while let Some(Some(message)) = twists.next().now_or_never() {
            links.twists.fetch_add(1, Ordering::Relaxed);
            // Anything read from a wire is bounded: a non-finite twist is a stop.
            let (v, w) = (message.linear.x, message.angular.z);
            let finite = v.is_finite() && w.is_finite();
            let _ = links.twist.force_push((if finite { (v, w) } else { (0.0, 0.0) }, Instant::now()));
        }
        // The ticks waiting now (a flood cannot keep twists out).
        for _ in 0..links.ticks.len() {
            let Some(CarTick { stamp, reading, accel }) = links.ticks.pop() else { break };
            let stamp = ros_time(stamp);
            let (w, z) = yaw_quaternion(reading.yaw);
            message.header.stamp = stamp.clone();
            message.pose.pose.position.x = reading.x;
            message.pose.pose.position.y = reading.y;
            (message.pose.pose.orientation.w, message.pose.pose.orientation.z) = (w, z);
            message.twist.twist.linear.x = reading.speed;
            message.twist.twist.angular.z = reading.yaw_rate;
            if let Err(e) = odometry.publish(&message) {
                return fail(e.into());
            }
            sample.header.stamp = stamp;
            (sample.linear_acceleration.x, sample.linear_acceleration.y) = accel;
            sample.angular_velocity.z = reading.yaw_rate;
            if let Err(e) = imu.publish(&sample) {
                return fail(e.into());
            }
        }
        if let Some(why) = snapshots.as_ref().and_then(|s| s.failure()) {
            return fail(EdgeError::Refused(why));
        }
        if stopping {
            return Ok(());
        }
    }
}
