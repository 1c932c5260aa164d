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
//!
//! Two threads: the calling thread ticks the robot (read → gate → write)
//! and only hands each tick's outcome over through bounded lock-free
//! queues, so it neither allocates, frees, locks nor blocks per tick
//! (`tests/robot_node_ticks.rs` counts); the node's own thread does
//! everything ROS 2 (r2r allocates for every message), formats verdicts
//! and logs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::queue::ArrayQueue;
use futures::{FutureExt, StreamExt};
use r2r::QosProfile;
use robot_drivers::camera::{CameraGrabber, StampedFrame};
use robot_drivers::image_topic::{image_message, ros_time};
use robot_drivers::pacing::Pacer;
use robot_drivers::{CommandSlot, ControlLoop, HardwareError, HardwareInterface};
use rrl_types::config::CameraConfig;
use rrl_types::{CommandMode, JointCommand, JointState, JointVec, MonotonicClock, Timestamp};
use safety::{Gate, Verdict};
use sim_bridge::arm::SimArm;
use sim_bridge::scene_cameras::{CameraSpec, FrameSink, SceneSnapshots, SinkError};

use crate::EdgeError;

/// How often a node whose robot fell off the wire tries to reconnect.
const RECONNECT_EVERY: Duration = Duration::from_millis(500);

/// Ticks that may wait for the node's thread to publish them: at 1 kHz,
/// a quarter of a second. Beyond it the oldest are dropped (counted).
const TICKS_WAITING: usize = 256;

/// Work beside the control loop, in two halves: `control` runs on the
/// ticking thread after each tick that reached the robot, and must not
/// allocate, lock or block (it copies what the other half needs into
/// lock-free queues); `ros` runs on the node's thread each turn (it
/// publishes, reads subscriptions, and stops the node with an error).
pub struct PerTick<H> {
    pub control: Box<dyn FnMut(&mut H) + Send>,
    pub ros: Box<dyn FnMut() -> Result<(), EdgeError>>,
}

impl<H> PerTick<H> {
    /// Work on the node's thread alone.
    fn ros_only(ros: impl FnMut() -> Result<(), EdgeError> + 'static) -> PerTick<H> {
        PerTick { control: Box::new(|_| {}), ros: Box::new(ros) }
    }
}

/// What a node needs set up on its own thread (it gets the r2r node there).
pub type Setup<H> = Box<dyn FnOnce(&mut r2r::Node) -> Result<PerTick<H>, EdgeError> + Send>;

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
pub fn rendered_cameras(cameras: Vec<RenderedCamera>) -> Setup<SimArm> {
    Box::new(move |node| {
        if cameras.is_empty() {
            return Ok(PerTick::ros_only(|| Ok(())));
        }
        let fastest_fps = cameras.iter().map(|c| c.spec.fps).fold(0.0, f64::max);
        let sink = Publish::on(node, &cameras)?;
        let specs = cameras.into_iter().map(|c| c.spec).collect();
        let snapshots = Arc::new(SceneSnapshots::start(specs, sink).map_err(EdgeError::io("starting the camera renderer"))?);
        let watched = snapshots.clone();
        let mut last = f64::NEG_INFINITY;
        Ok(PerTick {
            // A copy of the scene's positions into a free buffer: the renderer's thread does the rest.
            control: Box::new(move |arm: &mut SimArm| {
                let now = arm.now();
                if now.as_secs_f64() - last + 1e-9 >= 1.0 / fastest_fps {
                    last = now.as_secs_f64();
                    snapshots.offer(arm.sim_mut(), now);
                }
            }),
            ros: Box::new(move || watched.failure().map_or(Ok(()), |e| Err(EdgeError::Refused(e)))),
        })
    })
}

/// The pick scene's object, as a motion-capture system and a person would
/// serve it: the cube's pose on `cube/pose` (`geometry_msgs/PoseStamped`,
/// base frame: the newest at each turn of the node's thread, which keeps
/// up with the ticks), and a message on `scene/reset`
/// (`std_msgs/Empty`) puts the cube back on the table at a random spot of
/// the task's cube area — the simulator's stand-in for a person resetting
/// the scene.
pub fn pick_scene(seed: u64) -> Setup<SimArm> {
    Box::new(move |node| {
        let pose = node.create_publisher::<r2r::geometry_msgs::msg::PoseStamped>("cube/pose", QosProfile::sensor_data())?;
        let mut resets = node.subscribe::<r2r::std_msgs::msg::Empty>("scene/reset", QosProfile::default())?;
        // Resets asked for, and the newest pose read: the two threads' only links.
        let (asked, done) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let newest = Arc::new(ArrayQueue::<(Timestamp, [f64; 3], [f64; 4])>::new(1));
        let (asked_here, newest_here) = (asked.clone(), newest.clone());
        let mut rng = rrl_types::rng::Rng::seed(seed);
        let mut table_z = None;
        let mut message = r2r::geometry_msgs::msg::PoseStamped::default();
        message.header.frame_id = "base".into();
        Ok(PerTick {
            control: Box::new(move |arm: &mut SimArm| {
                let stamp = arm.now();
                let sim = arm.sim_mut();
                let table_z = *table_z.get_or_insert(sim.block_position()[2]);
                while done.load(Ordering::Relaxed) < asked_here.load(Ordering::Relaxed) {
                    let [[x0, y0], [x1, y1]] = sim_bridge::panda::CUBE_BOUNDS;
                    sim.put_block([rng.uniform(x0, x1), rng.uniform(y0, y1), table_z]);
                    done.fetch_add(1, Ordering::Relaxed);
                }
                let _ = newest_here.force_push((stamp, sim.block_position(), sim.block_orientation()));
            }),
            ros: Box::new(move || {
                while let Some(Some(_)) = resets.next().now_or_never() {
                    asked.fetch_add(1, Ordering::Relaxed);
                }
                if let Some((stamp, [x, y, z], [qw, qx, qy, qz])) = newest.pop() {
                    message.header.stamp = ros_time(stamp);
                    message.pose.position = r2r::geometry_msgs::msg::Point { x, y, z };
                    message.pose.orientation = r2r::geometry_msgs::msg::Quaternion { x: qx, y: qy, z: qz, w: qw };
                    pose.publish(&message)?;
                }
                Ok(())
            }),
        })
    })
}

/// Two setups of per-tick work on one node, run one after the other each tick.
pub fn both<H: 'static>(first: Setup<H>, second: Setup<H>) -> Setup<H> {
    Box::new(move |node| {
        let (mut first, mut second) = (first(node)?, second(node)?);
        Ok(PerTick {
            control: Box::new(move |hardware: &mut H| {
                (first.control)(hardware);
                (second.control)(hardware);
            }),
            ros: Box::new(move || {
                (first.ros)()?;
                (second.ros)()
            }),
        })
    })
}

/// Starts the node's OpenCV cameras, each publishing `<camera>/image_raw`
/// on its own thread, and turns a camera that stopped on an error into the
/// node's error.
pub fn opencv_cameras<H>(cameras: Vec<CameraConfig>) -> Setup<H> {
    Box::new(move |node| {
        let mut grabbers = Vec::new();
        for camera in cameras {
            let publisher = node.create_publisher::<r2r::sensor_msgs::msg::Image>(&format!("{}/image_raw", camera.name), QosProfile::sensor_data())?;
            let frame_id = camera.name.clone();
            let grabber = CameraGrabber::start(&camera, move |frame| publisher.publish(&image_message(frame, &frame_id)).map_err(|e| e.to_string())).map_err(|e| EdgeError::Refused(format!("camera `{}`: {e}", camera.name)))?;
            tracing::info!(camera = %camera.name, source = ?camera.source, "camera publishing");
            grabbers.push(grabber);
        }
        Ok(PerTick::ros_only(move || match grabbers.iter().find_map(|g| g.newest().failure()) {
            Some(why) => Err(EdgeError::Refused(why.to_string())),
            None => Ok(()),
        }))
    })
}

/// One tick's outcome, handed from the ticking thread to the node's.
#[derive(Clone, Copy)]
struct TickOut {
    /// The tick's time (the robot's clock), and the robot's time after it (`/clock`).
    now: Timestamp,
    robot_time: Timestamp,
    state: JointState,
    /// `None`: the robot was off the wire (held, reconnecting).
    verdict: Option<Verdict>,
}

/// What the ticking thread says about the robot's wire; logged by the node's thread.
enum WireEvent {
    Lost(HardwareError),
    ReconnectFailed(HardwareError),
    Reconnected { after_s: f64 },
}

/// Sets `stopping` when dropped: a thread that ends in any way, a panic
/// included, stops the other.
pub(crate) struct StopOnDrop<'a>(pub(crate) &'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// The two threads' links.
struct Links {
    ticks: ArrayQueue<TickOut>,
    dropped_ticks: AtomicU64,
    wire: ArrayQueue<WireEvent>,
    /// Set by the ticking thread when it stops, and by the node's thread when it fails.
    stopping: AtomicBool,
}

/// Serves `hardware` behind `gate` until the spec's duration has passed
/// (or `stop` says so); the node's report. `clock_of` reads the robot's
/// time, `after_tick` advances a simulation, `setup` adds per-tick work
/// (cameras). A robot that falls off the wire is held and reconnected.
pub fn serve<H: HardwareInterface + 'static>(
    hardware: H,
    gate: Gate,
    spec: RobotNodeSpec,
    clock_of: impl Fn(&H) -> Timestamp,
    mut after_tick: impl FnMut(&mut H),
    setup: Setup<H>,
) -> Result<serde_json::Value, EdgeError> {
    let RobotNodeSpec { node_name, namespace, robot_kind, launch_file, rate_hz, duration_s, publish_clock, gripper, stop } = spec;
    let node_spec = NodeSpec {
        node_name: node_name.to_string(),
        namespace: namespace.to_string(),
        robot_kind: robot_kind.to_string(),
        launch_file,
        rate_hz,
        publish_clock,
        joint_names: hardware.joint_names().to_vec(),
        // Commands arrive in the robot's own mode (positions for arms, velocities for cars).
        command_mode: hardware.native_mode(),
        gripper,
    };
    let slot = CommandSlot::new();
    let mut control = ControlLoop::new(hardware, gate, slot.clone());
    let links = Arc::new(Links { ticks: ArrayQueue::new(TICKS_WAITING), dropped_ticks: AtomicU64::new(0), wire: ArrayQueue::new(16), stopping: AtomicBool::new(false) });
    let (ready, set_up) = std::sync::mpsc::channel();
    let node_links = links.clone();
    let node = std::thread::Builder::new()
        .name("robot-node-ros".into())
        .spawn(move || run_node(node_spec, slot, node_links, setup, ready))
        .map_err(EdgeError::io("starting the robot node's ROS thread"))?;
    // The ROS side first: the node is up (or failed) before the robot is driven.
    let (mut extra, node) = handed_over(set_up, node, "robot node")?;

    let stops_the_node = StopOnDrop(&links.stopping);
    let started = Instant::now();
    // Keeps pace with the wall clock, like hardware would.
    let mut pacer = Pacer::at_rate(rate_hz, MonotonicClock);
    let (mut ticks, mut hardware_errors, mut reconnects) = (0u64, 0u64, 0u64);
    let (mut disconnected_since, mut last_attempt): (Option<Instant>, Option<Instant>) = (None, None);
    while !links.stopping.load(Ordering::Acquire) && !duration_s.is_some_and(|d| started.elapsed().as_secs_f64() >= d) && !stop() {
        let now = clock_of(control.hardware());
        let verdict = match control.tick(now) {
            Ok(verdict) => {
                after_tick(control.hardware_mut());
                extra(control.hardware_mut());
                Some(verdict)
            }
            Err(error) => {
                // The robot fell off the wire: hold (nothing reaches it anyway), keep the
                // node alive, and reconnect when it returns.
                hardware_errors += 1;
                if disconnected_since.is_none() {
                    disconnected_since = Some(Instant::now());
                    let _ = links.wire.force_push(WireEvent::Lost(error));
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
                            let after_s = disconnected_since.take().map_or(0.0, |t| t.elapsed().as_secs_f64());
                            let _ = links.wire.force_push(WireEvent::Reconnected { after_s });
                        }
                        Err(e) => {
                            let _ = links.wire.force_push(WireEvent::ReconnectFailed(e));
                        }
                    }
                }
                None
            }
        };
        let out = TickOut { now, robot_time: clock_of(control.hardware()), state: *control.state(), verdict };
        if links.ticks.force_push(out).is_some() {
            links.dropped_ticks.fetch_add(1, Ordering::Relaxed);
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
    // The renderer's last reference then goes with the node's thread, before its node.
    drop(extra);
    drop(stops_the_node);
    let malformed = node.join().map_err(|_| EdgeError::Panicked("robot node"))??;
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
        "unpublished_ticks": links.dropped_ticks.load(Ordering::Relaxed),
    }))
}

/// What a node's thread hands the ticking thread once it is set up, and
/// that thread's handle; its set-up error (or its panic) instead.
pub(crate) fn handed_over<T, R>(
    set_up: std::sync::mpsc::Receiver<Result<T, EdgeError>>,
    node: std::thread::JoinHandle<Result<R, EdgeError>>,
    what: &'static str,
) -> Result<(T, std::thread::JoinHandle<Result<R, EdgeError>>), EdgeError> {
    match set_up.recv() {
        Ok(Ok(handed)) => Ok((handed, node)),
        Ok(Err(e)) => {
            let _ = node.join();
            Err(e)
        }
        Err(_) => Err(node.join().map_err(|_| EdgeError::Panicked(what))?.err().unwrap_or(EdgeError::Panicked(what))),
    }
}

/// What the node's thread needs to know, owned.
struct NodeSpec {
    node_name: String,
    namespace: String,
    robot_kind: String,
    launch_file: String,
    rate_hz: f64,
    publish_clock: bool,
    joint_names: Vec<String>,
    command_mode: CommandMode,
    gripper: bool,
}

/// The node's thread: sets the node up (handing the ticking thread its
/// half of the per-tick work), then publishes every tick handed over,
/// takes commands into `slot`, and logs, until the ticking thread stops or
/// something fails here; the malformed commands it counted.
fn run_node<H>(spec: NodeSpec, slot: Arc<CommandSlot>, links: Arc<Links>, setup: Setup<H>, ready: std::sync::mpsc::Sender<Result<Box<dyn FnMut(&mut H) + Send>, EdgeError>>) -> Result<u64, EdgeError> {
    let _stops_the_ticking = StopOnDrop(&links.stopping);
    let fail = |links: &Links, e: EdgeError| {
        links.stopping.store(true, Ordering::Release);
        Err(e)
    };
    let set_up = (|| {
        let ctx = r2r::Context::create()?;
        let mut node = r2r::Node::create(ctx, &spec.node_name, &spec.namespace)?;
        let topics = NodeTopics::create(&mut node, spec.gripper)?;
        let extra = setup(&mut node)?;
        // What the node drives, as read-only ROS parameters (`ros2 param list`/`get`).
        let described: Vec<(&str, r2r::ParameterValue)> = vec![
            ("robot", r2r::ParameterValue::String(spec.robot_kind.clone())),
            ("launch_file", r2r::ParameterValue::String(spec.launch_file.clone())),
            ("joints", r2r::ParameterValue::StringArray(spec.joint_names.clone())),
            ("control_rate_hz", r2r::ParameterValue::Double(spec.rate_hz)),
            ("command_mode", r2r::ParameterValue::String(format!("{:?}", spec.command_mode))),
        ];
        let parameters = crate::params::parameter_service(&mut node, &described)?;
        let described: Vec<(String, r2r::ParameterValue)> = described.into_iter().map(|(n, v)| (n.to_string(), v)).collect();
        Ok::<_, EdgeError>((node, topics, extra, parameters, described))
    })();
    let (mut node, mut topics, extra, (mut services, mut parameter_events), described) = match set_up {
        Ok(parts) => parts,
        Err(e) => {
            let _ = ready.send(Err(EdgeError::Refused(e.to_string())));
            return Err(e);
        }
    };
    let PerTick { control, ros: mut extra_ros } = extra;
    if ready.send(Ok(control)).is_err() {
        return Ok(0);
    }
    tracing::info!(node = %spec.node_name, namespace = %spec.namespace, rate_hz = spec.rate_hz, "robot node up");

    let mut combined = GripperCommands::new(spec.gripper.then_some(spec.joint_names.len() - 1));
    let mut message = r2r::sensor_msgs::msg::JointState { name: spec.joint_names.clone(), ..Default::default() };
    let (mut malformed, mut newest_robot_time) = (0u64, None::<Timestamp>);
    loop {
        let stopping = links.stopping.load(Ordering::Acquire);
        node.spin_once(Duration::from_millis(1));
        services.run_until_stalled();
        while let Some(Some((name, _))) = parameter_events.next().now_or_never() {
            // Read-only: the launch file is the one place the robot is configured.
            if let Some((_, value)) = described.iter().find(|(n, _)| *n == name) {
                node.params.lock().expect("parameters").insert(name.clone(), r2r::Parameter::new(value.clone()));
            }
            tracing::warn!(parameter = %name, "the robot node's parameters are read-only; edit the launch file instead");
        }
        // The ticks handed over, in order: joint states, verdicts, the clock
        // (those waiting now: a flood cannot keep commands out).
        for _ in 0..links.ticks.len() {
            let Some(out) = links.ticks.pop() else { break };
            newest_robot_time = Some(out.robot_time);
            if let Err(e) = topics.publish_tick(&out, &mut message, spec.publish_clock) {
                return fail(&links, e);
            }
            if out.verdict.is_some() {
                combined.know_state(&out.state);
            }
        }
        while let Some(event) = links.wire.pop() {
            match event {
                WireEvent::Lost(error) => tracing::error!("{error}; the robot is held, reconnecting every {RECONNECT_EVERY:?}"),
                WireEvent::ReconnectFailed(error) => tracing::debug!("reconnect failed: {error}"),
                WireEvent::Reconnected { after_s } => tracing::info!(after_s, "robot reconnected"),
            }
        }
        // Commands are stamped with the robot's time after the newest tick (the
        // next tick's, for a simulation): the gate ages them from there.
        if let Some(now) = newest_robot_time {
            malformed += topics.take_commands(&mut combined, &slot, now, spec.command_mode);
        }
        if let Err(e) = extra_ros() {
            return fail(&links, e);
        }
        if stopping {
            return Ok(malformed);
        }
    }
}

/// The node's own topics.
struct NodeTopics {
    joint_states: r2r::Publisher<r2r::sensor_msgs::msg::JointState>,
    clock: r2r::Publisher<r2r::rosgraph_msgs::msg::Clock>,
    verdicts: r2r::Publisher<r2r::std_msgs::msg::String>,
    commands: futures::stream::LocalBoxStream<'static, r2r::std_msgs::msg::Float64MultiArray>,
    gripper_commands: Option<futures::stream::LocalBoxStream<'static, r2r::std_msgs::msg::Float64MultiArray>>,
}

impl NodeTopics {
    fn create(node: &mut r2r::Node, gripper: bool) -> Result<NodeTopics, EdgeError> {
        Ok(NodeTopics {
            joint_states: node.create_publisher("joint_states", QosProfile::sensor_data())?,
            clock: node.create_publisher("/clock", QosProfile::default())?,
            verdicts: node.create_publisher("safety/verdicts", QosProfile::default())?,
            commands: node.subscribe("joint_commands", QosProfile::default())?.boxed_local(),
            gripper_commands: match gripper {
                true => Some(node.subscribe("gripper/commands", QosProfile::default())?.boxed_local()),
                false => None,
            },
        })
    }

    /// Publishes one tick: its joint states and `/clock` when it reached
    /// the robot, its verdict when the gate did not pass it.
    fn publish_tick(&self, out: &TickOut, message: &mut r2r::sensor_msgs::msg::JointState, publish_clock: bool) -> Result<(), EdgeError> {
        let Some(verdict) = out.verdict else {
            self.verdicts.publish(&r2r::std_msgs::msg::String { data: format!("{:.3} held (Disconnected)", out.now.as_secs_f64()) })?;
            return Ok(());
        };
        let state = &out.state;
        message.header.stamp = ros_time(state.stamp);
        message.position.clear();
        message.position.extend_from_slice(state.position.as_slice());
        message.velocity.clear();
        message.velocity.extend_from_slice(state.velocity.as_slice());
        message.effort.clear();
        message.effort.extend_from_slice(state.effort.as_slice());
        self.joint_states.publish(message)?;
        if publish_clock {
            self.clock.publish(&r2r::rosgraph_msgs::msg::Clock { clock: ros_time(out.robot_time) })?;
        }
        if verdict != Verdict::Pass {
            self.verdicts.publish(&r2r::std_msgs::msg::String { data: format!("{:.3} {verdict}", out.now.as_secs_f64()) })?;
        }
        Ok(())
    }

    /// Offers the commands that came to `slot`; how many were malformed.
    fn take_commands(&mut self, combined: &mut GripperCommands, slot: &CommandSlot, now: Timestamp, mode: CommandMode) -> u64 {
        let mut malformed = 0;
        if let Some(gripper_commands) = self.gripper_commands.as_mut() {
            while let Some(Some(msg)) = gripper_commands.next().now_or_never() {
                match combined.gripper(&msg.data) {
                    Ok(Some(command)) => slot.offer(command),
                    Ok(None) => {}
                    Err(()) => malformed += 1,
                }
            }
        }
        while let Some(Some(msg)) = self.commands.next().now_or_never() {
            // A command of the wrong size is still offered: the gate holds on it and says why.
            match combined.arm(&msg.data, now, mode) {
                Joined::Command(command) => slot.offer(command),
                Joined::NotYet => {}
                Joined::Malformed => malformed += 1,
            }
        }
        malformed
    }
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
