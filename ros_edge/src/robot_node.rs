//! A robot as a ROS 2 node, paced to the wall clock: `joint_states`
//! (sensor-data QoS) and `safety/verdicts` out, position (or velocity)
//! commands in on `joint_commands` (`std_msgs/Float64MultiArray`), which
//! reach the robot only through the safety gate it is handed; a simulated
//! robot also publishes `/clock`. A robot whose last joint is a gripper
//! takes that joint's position on its own topic, `gripper/commands` (one
//! value), as ros2_control drives a gripper by its own controller;
//! `joint_commands` then carries the other joints. Its cameras publish `sensor_msgs/Image`
//! rgb8 on `<camera>/image_raw`: OpenCV cameras grabbed on their own
//! threads, or the simulated scene rendered off the control thread. The
//! node's parameters describe what it drives (read-only).

use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use r2r::QosProfile;
use robot_drivers::camera::{CameraGrabber, StampedFrame};
use robot_drivers::image_topic::{image_message, ros_time};
use robot_drivers::pacing::Pacer;
use robot_drivers::{CommandSlot, ControlLoop, HardwareInterface};
use rrl_types::config::CameraConfig;
use rrl_types::{JointCommand, JointVec, MonotonicClock, Timestamp};
use safety::{Gate, Verdict};
use sim_bridge::arm::SimArm;
use sim_bridge::scene_cameras::{CameraSpec, FrameSink, SceneSnapshots, SinkError};

use crate::EdgeError;

/// How often a node whose robot fell off the wire tries to reconnect.
const RECONNECT_EVERY: Duration = Duration::from_millis(500);

/// Work a node does after each control tick (publishing cameras, checking
/// their threads); an error stops the node.
pub type PerTick<H> = Box<dyn FnMut(&mut H) -> Result<(), EdgeError>>;

/// What the node is and how it runs.
pub struct RobotNodeSpec<'a> {
    pub node_name: &'a str,
    pub namespace: &'a str,
    /// The robot's kind and the launch file, as read-only parameters.
    pub robot_kind: &'a str,
    pub launch_file: String,
    pub rate_hz: f64,
    /// Stop after this long (default: until `stop` says so).
    pub duration_s: Option<f64>,
    /// A simulated robot publishes its time on `/clock`.
    pub publish_clock: bool,
    /// The robot's last joint is a gripper commanded on `gripper/commands`.
    pub gripper: bool,
    /// Stops (with the node's report) once this says so: the binary's SIGINT or SIGTERM.
    pub stop: fn() -> bool,
}

/// A rendered camera of the simulated scene: its topic name and what to render.
pub struct RenderedCamera {
    pub name: String,
    pub spec: CameraSpec,
}

/// Renders `cameras` off the control thread and publishes each frame on
/// `<camera>/image_raw`, at most at the fastest camera's rate of simulated time.
pub fn rendered_cameras(cameras: Vec<RenderedCamera>) -> impl FnOnce(&mut r2r::Node) -> Result<PerTick<SimArm>, EdgeError> {
    move |node| {
        if cameras.is_empty() {
            return Ok(Box::new(|_| Ok(())));
        }
        let fastest_fps = cameras.iter().map(|c| c.spec.fps).fold(0.0, f64::max);
        let sink = Publish::on(node, &cameras)?;
        let specs = cameras.into_iter().map(|c| c.spec).collect();
        let snapshots = SceneSnapshots::start(specs, sink).map_err(EdgeError::io("starting the camera renderer"))?;
        let mut last = f64::NEG_INFINITY;
        Ok(Box::new(move |arm: &mut SimArm| {
            let now = arm.now();
            if now.as_secs_f64() - last + 1e-9 >= 1.0 / fastest_fps {
                last = now.as_secs_f64();
                snapshots.offer(arm.sim_mut(), now);
            }
            snapshots.failure().map_or(Ok(()), |e| Err(EdgeError::Refused(e)))
        }))
    }
}

/// The pick scene's object, as a motion-capture system and a person would
/// serve it: the cube's pose on `cube/pose` (`geometry_msgs/PoseStamped`,
/// base frame, every tick), and a message on `scene/reset`
/// (`std_msgs/Empty`) puts the cube back on the table at a random spot of
/// the task's cube area — the simulator's stand-in for a person resetting
/// the scene.
pub fn pick_scene(seed: u64) -> impl FnOnce(&mut r2r::Node) -> Result<PerTick<SimArm>, EdgeError> {
    move |node| {
        let pose = node.create_publisher::<r2r::geometry_msgs::msg::PoseStamped>("cube/pose", QosProfile::sensor_data())?;
        let mut resets = node.subscribe::<r2r::std_msgs::msg::Empty>("scene/reset", QosProfile::default())?;
        let mut rng = rrl_types::rng::Rng::seed(seed);
        let mut table_z = None;
        let mut message = r2r::geometry_msgs::msg::PoseStamped::default();
        message.header.frame_id = "base".into();
        Ok(Box::new(move |arm: &mut SimArm| {
            let sim = arm.sim_mut();
            let table_z = *table_z.get_or_insert(sim.block_position()[2]);
            while let Some(Some(_)) = resets.next().now_or_never() {
                let [[x0, y0], [x1, y1]] = sim_bridge::panda::CUBE_BOUNDS;
                sim.put_block([rng.uniform(x0, x1), rng.uniform(y0, y1), table_z]);
            }
            let ([x, y, z], [qw, qx, qy, qz]) = (sim.block_position(), sim.block_orientation());
            message.header.stamp = ros_time(arm.now());
            message.pose.position = r2r::geometry_msgs::msg::Point { x, y, z };
            message.pose.orientation = r2r::geometry_msgs::msg::Quaternion { x: qx, y: qy, z: qz, w: qw };
            pose.publish(&message)?;
            Ok(())
        }))
    }
}

/// Two setups of per-tick work on one node, run one after the other each tick.
pub fn both<H: 'static>(
    first: impl FnOnce(&mut r2r::Node) -> Result<PerTick<H>, EdgeError>,
    second: impl FnOnce(&mut r2r::Node) -> Result<PerTick<H>, EdgeError>,
) -> impl FnOnce(&mut r2r::Node) -> Result<PerTick<H>, EdgeError> {
    move |node| {
        let (mut first, mut second) = (first(node)?, second(node)?);
        Ok(Box::new(move |hardware: &mut H| {
            first(hardware)?;
            second(hardware)
        }))
    }
}

/// Starts the node's OpenCV cameras, each publishing `<camera>/image_raw`,
/// and turns a camera that stopped on an error into the node's error (a
/// lock-free check each tick).
pub fn opencv_cameras<H>(cameras: Vec<CameraConfig>) -> impl FnOnce(&mut r2r::Node) -> Result<PerTick<H>, EdgeError> {
    move |node| {
        let mut grabbers = Vec::new();
        for camera in cameras {
            let publisher = node.create_publisher::<r2r::sensor_msgs::msg::Image>(&format!("{}/image_raw", camera.name), QosProfile::sensor_data())?;
            let frame_id = camera.name.clone();
            let grabber = CameraGrabber::start(&camera, move |frame| publisher.publish(&image_message(frame, &frame_id)).map_err(|e| e.to_string())).map_err(|e| EdgeError::Refused(format!("camera `{}`: {e}", camera.name)))?;
            tracing::info!(camera = %camera.name, source = ?camera.source, "camera publishing");
            grabbers.push(grabber);
        }
        Ok(Box::new(move |_: &mut H| match grabbers.iter().find_map(|g| g.newest().failure()) {
            Some(why) => Err(EdgeError::Refused(why.to_string())),
            None => Ok(()),
        }))
    }
}

/// Serves `hardware` behind `gate` until the spec's duration has passed
/// (or forever); the node's report. `clock_of` reads the robot's time,
/// `after_tick` advances a simulation, `setup_extra` adds per-tick work
/// (cameras). A robot that falls off the wire is held and reconnected.
pub fn serve<H: HardwareInterface>(
    hardware: H,
    gate: Gate,
    spec: RobotNodeSpec,
    clock_of: impl Fn(&H) -> Timestamp,
    mut after_tick: impl FnMut(&mut H),
    setup_extra: impl FnOnce(&mut r2r::Node) -> Result<PerTick<H>, EdgeError>,
) -> Result<serde_json::Value, EdgeError> {
    let RobotNodeSpec { node_name, namespace, robot_kind, launch_file, rate_hz, duration_s, publish_clock, gripper, stop } = spec;
    let joint_names = hardware.joint_names().to_vec();
    // Commands arrive in the robot's own mode (positions for arms, velocities for cars).
    let command_mode = hardware.native_mode();
    let slot = CommandSlot::new();
    let mut control = ControlLoop::new(hardware, gate, slot.clone());

    let ctx = r2r::Context::create()?;
    let mut node = r2r::Node::create(ctx, node_name, namespace)?;
    let joint_states = node.create_publisher::<r2r::sensor_msgs::msg::JointState>("joint_states", QosProfile::sensor_data())?;
    let clock = node.create_publisher::<r2r::rosgraph_msgs::msg::Clock>("/clock", QosProfile::default())?;
    let verdicts = node.create_publisher::<r2r::std_msgs::msg::String>("safety/verdicts", QosProfile::default())?;
    let mut commands = node.subscribe::<r2r::std_msgs::msg::Float64MultiArray>("joint_commands", QosProfile::default())?;
    let mut gripper_commands = match gripper {
        true => Some(node.subscribe::<r2r::std_msgs::msg::Float64MultiArray>("gripper/commands", QosProfile::default())?),
        false => None,
    };
    let mut combined = GripperCommands::new(gripper.then_some(joint_names.len() - 1));
    let mut extra = setup_extra(&mut node)?;
    // What the node drives, as read-only ROS parameters (`ros2 param list`/`get`).
    let described: Vec<(&str, r2r::ParameterValue)> = vec![
        ("robot", r2r::ParameterValue::String(robot_kind.into())),
        ("launch_file", r2r::ParameterValue::String(launch_file)),
        ("joints", r2r::ParameterValue::StringArray(joint_names.clone())),
        ("control_rate_hz", r2r::ParameterValue::Double(rate_hz)),
        ("command_mode", r2r::ParameterValue::String(format!("{command_mode:?}"))),
    ];
    let (mut services, mut parameter_events) = crate::params::parameter_service(&mut node, &described)?;
    tracing::info!(node = node_name, namespace, rate_hz, "robot node up");

    let started = Instant::now();
    // Keeps pace with the wall clock, like hardware would.
    let mut pacer = Pacer::at_rate(rate_hz, MonotonicClock);
    let mut ticks: u64 = 0;
    let mut malformed: u64 = 0;
    let (mut hardware_errors, mut reconnects) = (0u64, 0u64);
    let (mut disconnected_since, mut last_attempt): (Option<Instant>, Option<Instant>) = (None, None);
    let mut message = r2r::sensor_msgs::msg::JointState { name: joint_names.clone(), ..Default::default() };
    // What a tick that reached the robot publishes.
    let mut publish_tick = |control: &mut ControlLoop<H>, verdict: Verdict, now: Timestamp| -> Result<(), EdgeError> {
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
        if duration_s.is_some_and(|d| started.elapsed().as_secs_f64() >= d) || stop() {
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
        combined.know_state(control.state());
        if let Some(gripper_commands) = gripper_commands.as_mut() {
            while let Some(Some(msg)) = gripper_commands.next().now_or_never() {
                match combined.gripper(&msg.data) {
                    Ok(Some(command)) => slot.offer(command),
                    Ok(None) => {}
                    Err(()) => malformed += 1,
                }
            }
        }
        while let Some(Some(msg)) = commands.next().now_or_never() {
            // A command of the wrong size is still offered: the gate holds on it and says why.
            match combined.arm(&msg.data, now, command_mode) {
                Joined::Command(command) => slot.offer(command),
                Joined::NotYet => {}
                Joined::Malformed => malformed += 1,
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
        // A simulation's time advances one period per tick: it catches up
        // with the wall clock its peers read; a real robot starts afresh.
        if publish_clock {
            pacer.wait_catching_up();
        } else {
            pacer.wait();
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

/// What became of an arm command.
enum Joined {
    Command(JointCommand),
    /// Before the robot's first state (the gripper's position unknown).
    NotYet,
    Malformed,
}

/// Joins a gripper's own command topic to the arm's: each arm command
/// carries the gripper's newest target, and a new gripper target re-offers
/// the newest arm command with its original stamp (so it still goes stale
/// when the arm's commands stop).
struct GripperCommands {
    /// The gripper's joint index, when the robot has one on its own topic.
    index: Option<usize>,
    /// Where the gripper is sent; its measured position until a command comes.
    target: Option<f64>,
    last_arm: Option<JointCommand>,
}

impl GripperCommands {
    fn new(index: Option<usize>) -> GripperCommands {
        GripperCommands { index, target: None, last_arm: None }
    }

    fn know_state(&mut self, state: &rrl_types::JointState) {
        if let (Some(i), None) = (self.index, self.target) {
            self.target = state.position.as_slice().get(i).copied();
        }
    }

    /// The command to offer for arm values `data`.
    fn arm(&mut self, data: &[f64], stamp: Timestamp, mode: rrl_types::CommandMode) -> Joined {
        let values = match self.index {
            // The arm's joints alone: the gripper's target joins them. Before
            // the first state the gripper's position is unknown: nothing is sent.
            Some(i) if data.len() == i && i < rrl_types::MAX_JOINTS => {
                let Some(target) = self.target else { return Joined::NotYet };
                let mut values = JointVec::zeros(i + 1);
                values.as_mut_slice()[..i].copy_from_slice(data);
                values[i] = target;
                values
            }
            _ => match JointVec::from_slice(data) {
                Some(values) => values,
                None => return Joined::Malformed,
            },
        };
        // A command naming every joint names the gripper's target too.
        if let Some(&gripper) = self.index.and_then(|i| values.as_slice().get(i)).filter(|_| data.len() == values.len()) {
            self.target = Some(gripper);
        }
        let command = JointCommand { stamp, mode, values };
        self.last_arm = Some(command);
        Joined::Command(command)
    }

    /// A gripper target: `Ok(Some)` re-offers the newest arm command with
    /// it; `Err` for a message that is not one finite value.
    fn gripper(&mut self, data: &[f64]) -> Result<Option<JointCommand>, ()> {
        let (Some(i), [value]) = (self.index, data) else { return Err(()) };
        if !value.is_finite() {
            return Err(());
        }
        self.target = Some(*value);
        Ok(self.last_arm.as_mut().filter(|c| c.values.len() == i + 1).map(|c| {
            c.values[i] = *value;
            *c
        }))
    }
}

/// Publishes rendered frames as `sensor_msgs/Image` rgb8.
/// Publishes rendered frames, each camera on its own `image_raw` publisher.
pub(crate) struct Publish {
    publishers: Vec<(String, r2r::Publisher<r2r::sensor_msgs::msg::Image>)>,
    frame: StampedFrame,
}

impl Publish {
    /// `publishers`: (camera name, its publisher), in the order of the camera specs.
    pub(crate) fn new(publishers: Vec<(String, r2r::Publisher<r2r::sensor_msgs::msg::Image>)>) -> Publish {
        Publish { publishers, frame: StampedFrame { stamp: Timestamp::ZERO, sequence: 0, width: 0, height: 0, rgb: Vec::new() } }
    }

    /// A publisher on `<camera>/image_raw` for each of `cameras`, in order.
    pub(crate) fn on(node: &mut r2r::Node, cameras: &[RenderedCamera]) -> Result<Publish, EdgeError> {
        let publishers = cameras.iter().map(|c| Ok((c.name.clone(), node.create_publisher::<r2r::sensor_msgs::msg::Image>(&format!("{}/image_raw", c.name), QosProfile::sensor_data())?))).collect::<Result<Vec<_>, EdgeError>>()?;
        Ok(Publish::new(publishers))
    }
}

impl FrameSink for Publish {
    fn frame(&mut self, camera: usize, stamp: Timestamp, width: u32, height: u32, rgb: &[u8]) -> Result<(), SinkError> {
        let (name, publisher) = &self.publishers[camera];
        self.frame.rgb.clear();
        self.frame.rgb.extend_from_slice(rgb);
        (self.frame.stamp, self.frame.width, self.frame.height) = (stamp, width, height);
        publisher.publish(&image_message(&self.frame, name))?;
        self.frame.sequence += 1;
        Ok(())
    }
}
