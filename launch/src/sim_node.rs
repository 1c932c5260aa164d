//! The robot as ROS 2 nodes, paced to the wall clock: `rrl sim` (the
//! simulated Panda, whose `Sim(..)` cameras are rendered and published as
//! `sensor_msgs/Image` rgb8 on `<camera>/image_raw` at their rate) and
//! `rrl driver` (a serial-servo arm, a ros2_control arm over its topics or
//! a car, with their OpenCV cameras). Both publish
//! `joint_states` (sensor-data QoS) and `safety/verdicts`, take position
//! commands on `joint_commands` (std_msgs/Float64MultiArray), which reach the
//! robot only through the safety gate; the simulation also publishes
//! `/clock` (simulated time). `rrl sim --lockstep` serves the practice
//! task instead, stepped by an actor (see `task_node`).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::{FutureExt, StreamExt};
use r2r::QosProfile;
use robot_drivers::camera::{CameraGrabber, StampedFrame};
use robot_drivers::car::TopicCar;
use robot_drivers::image_topic::{image_message, ros_time};
use robot_drivers::io_thread::IoThread;
use robot_drivers::servo_arm::ServoArm;
use robot_drivers::topic_arm::TopicArm;
use robot_drivers::{CommandSlot, ControlLoop, HardwareInterface};
use rrl_types::config::{CameraConfig, CameraSource, LaunchFile, RobotConfig, SimTask};
use rrl_types::{Clock, JointCommand, JointVec, SystemClock, Timestamp};
use safety::{Gate, Verdict};
use sim_bridge::arm::SimArm;
use sim_bridge::camera::SimCamera;

use wiring::scene_cameras::{CameraSpec, FrameSink, SceneSnapshots};


/// How often a node whose robot fell off the wire tries to reconnect.
const RECONNECT_EVERY: Duration = Duration::from_millis(500);

/// Work a node does after each control tick (publishing cameras, checking
/// their threads); an error stops the node.
type PerTick<H> = Box<dyn FnMut(&mut H) -> anyhow::Result<()>>;

/// `rrl sim`: the simulated Panda of a launch file.
pub fn run(config: &Path, duration_s: Option<f64>) -> anyhow::Result<serde_json::Value> {
    let launch = LaunchFile::load(config)?;
    let RobotConfig::Sim(sim) = &launch.robot else {
        bail!("{}: `rrl sim` runs simulated robots; this launch file's robot is {}", config.display(), launch.robot.kind_name());
    };
    if !matches!(sim.task, SimTask::PandaPickCube | SimTask::PandaReach) {
        bail!("{}: `rrl sim` runs the simulated Panda (PandaPickCube, PandaReach); {:?} is a learning benchmark, see `rrl train`", config.display(), sim.task);
    }
    let mut arm = SimArm::panda()?;
    arm.configure()?;
    arm.activate()?;
    let period = 1.0 / sim.control_rate_hz;
    // Rendered cameras: every launch-file camera with a `Sim(..)` source.
    let cameras: Vec<(String, String, u32, u32, f64)> = launch
        .cameras
        .iter()
        .filter_map(|c| match &c.source {
            CameraSource::Sim(model_camera) => Some((c.name.clone(), model_camera.clone(), c.width, c.height, c.fps)),
            _ => None,
        })
        .collect();
    let fastest_fps = cameras.iter().map(|c| c.4).fold(0.0, f64::max);
    // Check the camera names before any node starts.
    for (name, model_camera, ..) in &cameras {
        SimCamera::check_name(arm.sim_mut(), model_camera).with_context(|| format!("{}: camera `{name}`", config.display()))?;
    }
    let setup = move |node: &mut r2r::Node| -> anyhow::Result<PerTick<SimArm>> {
        if cameras.is_empty() {
            return Ok(Box::new(|_| Ok(())));
        }
        let mut publishers = Vec::new();
        for (name, ..) in &cameras {
            publishers.push((name.clone(), node.create_publisher::<r2r::sensor_msgs::msg::Image>(&format!("{name}/image_raw"), QosProfile::sensor_data())?));
        }
        let specs = cameras.iter().map(|(_, model_camera, width, height, fps)| CameraSpec { model_camera: model_camera.clone(), width: *width, height: *height, fps: *fps }).collect();
        let snapshots = SceneSnapshots::start(specs, Publish { publishers, frame: StampedFrame { stamp: Timestamp::ZERO, sequence: 0, width: 0, height: 0, rgb: Vec::new() } })?;
        let mut last = f64::NEG_INFINITY;
        Ok(Box::new(move |arm: &mut SimArm| {
            let now = arm.now();
            if now.as_secs_f64() - last + 1e-9 >= 1.0 / fastest_fps {
                last = now.as_secs_f64();
                snapshots.offer(arm.sim_mut(), now);
            }
            snapshots.failure().map_or(Ok(()), |e| Err(anyhow::anyhow!(e)))
        }))
    };
    run_node(&launch, config, "sim_robot", arm, sim.control_rate_hz, duration_s, |arm| arm.now(), |arm| arm.advance(period), true, setup)
}

/// `rrl sim --lockstep`: the simulated Panda's practice task (with the
/// launch file's gate) as a node that an actor (`rrl practice --robot
/// remote`) steps over ROS 2; simulated time advances only per step.
/// Serves until `duration_s` has passed, or `until()` says so, or killed.
pub fn run_lockstep(config: &Path, duration_s: Option<f64>, until: &dyn Fn() -> bool) -> anyhow::Result<serde_json::Value> {
    let launch = LaunchFile::load(config)?;
    let (task, variant) = wiring::robot::panda_task(&launch, config)?;
    let started = Instant::now();
    let deadline = duration_s.map(Duration::from_secs_f64);
    let counts = ros_edge::task_node::serve(task, &launch.namespace, &|| until() || deadline.is_some_and(|d| started.elapsed() >= d))?;
    let mut report = ros_edge::task_node::counts_json(&counts);
    report["task"] = serde_json::json!(format!("{variant:?}"));
    report["namespace"] = serde_json::json!(launch.namespace);
    Ok(report)
}

/// `rrl driver`: a real robot of a launch file (serial-servo arm,
/// ros2_control arm over topics, or car), with its OpenCV cameras grabbed
/// on their own threads and published as rgb8 `<camera>/image_raw`
/// (sensor-data QoS, stamped with the capture time).
pub fn run_driver(config: &Path, duration_s: Option<f64>) -> anyhow::Result<serde_json::Value> {
    let launch = LaunchFile::load(config)?;
    let mut cameras = Vec::new();
    for camera in &launch.cameras {
        match &camera.source {
            // Published by another node already; nothing to drive here.
            CameraSource::Topic(_) => {}
            CameraSource::Sim(_) => bail!("{}: camera `{}` is a simulated camera; `rrl sim` renders those", config.display(), camera.name),
            _ => cameras.push(camera.clone()),
        }
    }
    match &launch.robot {
        RobotConfig::SerialArm(serial) => {
            // The bus's blocking I/O runs on its own thread; the control loop only swaps state and command.
            let arm = IoThread::spawn(ServoArm::new(serial.clone()), launch.robot.control_rate_hz());
            drive(&launch, config, "servo_arm", arm, &format!("the arm on {}", serial.port), duration_s, cameras)
        }
        RobotConfig::TopicArm(topics) => drive(&launch, config, "topic_arm", TopicArm::new(topics.clone(), &launch.namespace), "the arm's topics", duration_s, cameras),
        RobotConfig::Car(car) => drive(&launch, config, "car", TopicCar::new(car.clone(), &launch.namespace), "the car's topics", duration_s, cameras),
        RobotConfig::Sim(_) => bail!("{}: this launch file's robot is simulated; run it with `rrl sim`", config.display()),
    }
}

/// A real robot as a node: connected, activated, then ticked on the wall
/// clock with its OpenCV cameras publishing.
fn drive<H: HardwareInterface>(launch: &LaunchFile, config: &Path, node_name: &str, mut hardware: H, what: &str, duration_s: Option<f64>, cameras: Vec<CameraConfig>) -> anyhow::Result<serde_json::Value> {
    hardware.configure().with_context(|| format!("connecting to {what}"))?;
    hardware.activate()?;
    run_node(launch, config, node_name, hardware, launch.robot.control_rate_hz(), duration_s, |_| SystemClock.now(), |_| {}, false, publish_cameras(cameras))
}

/// Starts the node's OpenCV cameras, each publishing `<camera>/image_raw`,
/// and turns a camera that stopped on an error into the node's error (a
/// lock-free check each tick).
fn publish_cameras<H>(cameras: Vec<CameraConfig>) -> impl FnOnce(&mut r2r::Node) -> anyhow::Result<PerTick<H>> {
    move |node| {
        let mut grabbers = Vec::new();
        for camera in cameras {
            let publisher = node.create_publisher::<r2r::sensor_msgs::msg::Image>(&format!("{}/image_raw", camera.name), QosProfile::sensor_data())?;
            let frame_id = camera.name.clone();
            let grabber = CameraGrabber::start(&camera, move |frame| publisher.publish(&image_message(frame, &frame_id)).map_err(|e| e.to_string()))?;
            tracing::info!(camera = %camera.name, source = ?camera.source, "camera publishing");
            grabbers.push(grabber);
        }
        Ok(Box::new(move |_: &mut H| match grabbers.iter().find_map(|g| g.newest().failure()) {
            Some(why) => Err(anyhow::anyhow!("{why}")),
            None => Ok(()),
        }))
    }
}

#[allow(clippy::too_many_arguments)]
fn run_node<H: HardwareInterface>(
    launch: &LaunchFile,
    config: &Path,
    node_name: &str,
    hardware: H,
    rate_hz: f64,
    duration_s: Option<f64>,
    clock_of: impl Fn(&H) -> Timestamp,
    mut after_tick: impl FnMut(&mut H),
    publish_clock: bool,
    setup_extra: impl FnOnce(&mut r2r::Node) -> anyhow::Result<PerTick<H>>,
) -> anyhow::Result<serde_json::Value> {
    let joint_names = hardware.joint_names().to_vec();
    // Commands arrive in the robot's own mode (positions for arms, velocities for cars).
    let command_mode = hardware.native_mode();
    let gate = Gate::build(&launch.safety, &joint_names, rate_hz).with_context(|| format!("{}: safety section", config.display()))?;
    let slot = CommandSlot::new();
    let mut control = ControlLoop::new(hardware, gate, slot.clone());

    let ctx = r2r::Context::create()?;
    let mut node = r2r::Node::create(ctx, node_name, &launch.namespace)?;
    let joint_states = node.create_publisher::<r2r::sensor_msgs::msg::JointState>("joint_states", QosProfile::sensor_data())?;
    let clock = node.create_publisher::<r2r::rosgraph_msgs::msg::Clock>("/clock", QosProfile::default())?;
    let verdicts = node.create_publisher::<r2r::std_msgs::msg::String>("safety/verdicts", QosProfile::default())?;
    let mut commands = node.subscribe::<r2r::std_msgs::msg::Float64MultiArray>("joint_commands", QosProfile::default())?;
    let mut extra = setup_extra(&mut node)?;
    // What the node drives, as read-only ROS parameters (`ros2 param list`/`get`).
    let described: Vec<(&str, r2r::ParameterValue)> = vec![
        ("robot", r2r::ParameterValue::String(launch.robot.kind_name().into())),
        ("launch_file", r2r::ParameterValue::String(config.display().to_string())),
        ("joints", r2r::ParameterValue::StringArray(joint_names.clone())),
        ("control_rate_hz", r2r::ParameterValue::Double(rate_hz)),
        ("command_mode", r2r::ParameterValue::String(format!("{command_mode:?}"))),
    ];
    let (mut services, mut parameter_events) = ros_edge::params::parameter_service(&mut node, &described)?;
    tracing::info!(node = node_name, namespace = %launch.namespace, rate_hz, "robot node up");

    let period = 1.0 / rate_hz;
    let started = Instant::now();
    let mut ticks: u64 = 0;
    let mut malformed: u64 = 0;
    let (mut hardware_errors, mut reconnects) = (0u64, 0u64);
    let (mut disconnected_since, mut last_attempt): (Option<Instant>, Option<Instant>) = (None, None);
    let mut message = r2r::sensor_msgs::msg::JointState { name: joint_names.clone(), ..Default::default() };
    // What a tick that reached the robot publishes.
    let mut publish_tick = |control: &mut ControlLoop<H>, verdict: Verdict, now: Timestamp| -> anyhow::Result<()> {
        after_tick(control.hardware_mut());
        extra(control.hardware_mut())?;
        let state = control.state();
        message.header.stamp = ros_time(state.stamp);
        message.position.clear();
        message.position.extend_from_slice(state.position.as_slice());
        message.velocity.clear();
        message.velocity.extend_from_slice(state.velocity.as_slice());
        message.effort.clear();
        message.effort.extend_from_slice(state.effort.as_slice());
        joint_states.publish(&message)?;
        if publish_clock {
            clock.publish(&r2r::rosgraph_msgs::msg::Clock { clock: ros_time(clock_of(control.hardware())) })?;
        }
        if verdict != Verdict::Pass {
            verdicts.publish(&r2r::std_msgs::msg::String { data: format!("{:.3} {verdict}", now.as_secs_f64()) })?;
        }
        Ok(())
    };
    loop {
        if duration_s.is_some_and(|d| started.elapsed().as_secs_f64() >= d) {
            break;
        }
        node.spin_once(Duration::ZERO);
        services.run_until_stalled();
        while let Some(Some((name, _))) = parameter_events.next().now_or_never() {
            // Read-only: the launch file is the one place the robot is configured.
            if let Some((_, value)) = described.iter().find(|(n, _)| *n == name) {
                node.params.lock().expect("parameters").insert(name.clone(), r2r::Parameter::new(value.clone()));
            }
            tracing::warn!(parameter = %name, "the robot node's parameters are read-only; edit the launch file instead");
        }
        let now = clock_of(control.hardware());
        while let Some(Some(msg)) = commands.next().now_or_never() {
            // A command of the wrong size is still offered: the gate holds on it and says why.
            match JointVec::from_slice(&msg.data) {
                Some(values) => slot.offer(JointCommand { stamp: now, mode: command_mode, values }),
                None => malformed += 1,
            }
        }
        let verdict = match control.tick(now) {
            Ok(verdict) => Some(verdict),
            Err(error) => {
                // The robot fell off the wire: hold (nothing reaches it anyway), keep the
                // node alive, and reconnect when it returns.
                hardware_errors += 1;
                if disconnected_since.is_none() {
                    tracing::error!("{error}; the robot is held, reconnecting every {RECONNECT_EVERY:?}");
                    disconnected_since = Some(Instant::now());
                }
                if last_attempt.is_none_or(|t| t.elapsed() >= RECONNECT_EVERY) {
                    last_attempt = Some(Instant::now());
                    let hardware = control.hardware_mut();
                    let _ = hardware.recover();
                    match hardware.configure().and_then(|_| hardware.activate()) {
                        Ok(()) => {
                            reconnects += 1;
                            // The limiter starts again from wherever the robot is now.
                            control.gate().forget_motion();
                            tracing::info!(after_s = disconnected_since.map_or(0.0, |t| t.elapsed().as_secs_f64()), "robot reconnected");
                            disconnected_since = None;
                        }
                        Err(e) => tracing::debug!("reconnect failed: {e}"),
                    }
                }
                verdicts.publish(&r2r::std_msgs::msg::String { data: format!("{:.3} held (Disconnected)", now.as_secs_f64()) })?;
                None
            }
        };
        if let Some(verdict) = verdict {
            publish_tick(&mut control, verdict, now)?;
        }
        ticks += 1;
        // Keep pace with the wall clock, like hardware would.
        let due = started + Duration::from_secs_f64(ticks as f64 * period);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let counts = control.counts();
    Ok(serde_json::json!({
        "ticks": ticks,
        "robot_seconds": clock_of(control.hardware()).as_secs_f64(),
        "passed": counts.passed,
        "clipped": counts.clipped,
        "held": counts.held,
        "reflexes": counts.reflexes,
        "malformed_commands": malformed,
        "hardware_errors": hardware_errors,
        "reconnects": reconnects,
    }))
}

/// Publishes rendered frames as `sensor_msgs/Image` rgb8.
struct Publish {
    publishers: Vec<(String, r2r::Publisher<r2r::sensor_msgs::msg::Image>)>,
    frame: StampedFrame,
}

impl FrameSink for Publish {
    fn frame(&mut self, camera: usize, stamp: Timestamp, width: u32, height: u32, rgb: &[u8]) -> Result<(), wiring::scene_cameras::SinkError> {
        let (name, publisher) = &self.publishers[camera];
        self.frame.rgb.clear();
        self.frame.rgb.extend_from_slice(rgb);
        (self.frame.stamp, self.frame.width, self.frame.height) = (stamp, width, height);
        publisher.publish(&image_message(&self.frame, name))?;
        self.frame.sequence += 1;
        Ok(())
    }
}
