//! The robot as ROS 2 nodes, paced to the wall clock: `rrl sim` (the
//! simulated Panda) and `rrl driver` (a serial-servo arm). Both publish
//! `joint_states` (sensor-data QoS) and `safety/verdicts`, take position
//! commands on `joint_commands` (std_msgs/Float64MultiArray), which reach the
//! robot only through the safety gate; the simulation also publishes
//! `/clock` (simulated time).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::{FutureExt, StreamExt};
use r2r::QosProfile;
use robot_drivers::servo_arm::ServoArm;
use robot_drivers::{CommandSlot, ControlLoop, HardwareInterface};
use rrl_types::config::{LaunchFile, RobotConfig, SimTask};
use rrl_types::{Clock, CommandMode, JointCommand, JointVec, SystemClock, Timestamp};
use safety::{Gate, GateConfig, Verdict};
use sim_bridge::arm::SimArm;

fn ros_time(t: Timestamp) -> r2r::builtin_interfaces::msg::Time {
    r2r::builtin_interfaces::msg::Time { sec: (t.0 / 1_000_000_000) as i32, nanosec: (t.0 % 1_000_000_000) as u32 }
}

/// The gate of a launch file for a robot with `joint_names`, with its risk
/// critic when one is configured and usable (else rules only, said once).
fn gate_for(launch: &LaunchFile, config: &Path, joint_names: &[String], rate_hz: f64) -> anyhow::Result<Gate> {
    let mut gate = Gate::new(GateConfig::from_launch(&launch.safety, joint_names, rate_hz)?);
    if let Some(risk) = &launch.safety.risk_critic {
        // Relative paths are relative to the launch file.
        let weights = config.parent().unwrap_or(Path::new(".")).join(&risk.weights);
        let loaded = safety::RiskCritic::load(&weights, 3 * joint_names.len()).map_err(anyhow::Error::from).and_then(|critic| Ok(gate.set_risk_critic(critic, risk.threshold as f32, risk.reflex)?));
        match loaded {
            Ok(()) => tracing::info!(weights = %weights.display(), threshold = risk.threshold, "risk critic active"),
            Err(e) => tracing::warn!("risk critic refused, the gate runs on its rules only: {e:#}"),
        }
    }
    Ok(gate)
}

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
    run_node(&launch, config, "sim_robot", arm, sim.control_rate_hz, duration_s, |arm| arm.now(), |arm| arm.advance(period), true)
}

/// `rrl driver`: a serial-servo arm of a launch file.
pub fn run_driver(config: &Path, duration_s: Option<f64>) -> anyhow::Result<serde_json::Value> {
    let launch = LaunchFile::load(config)?;
    let RobotConfig::SerialArm(serial) = &launch.robot else {
        bail!("{}: `rrl driver` runs serial-servo arms for now; this launch file's robot is {}", config.display(), launch.robot.kind_name());
    };
    let mut arm = ServoArm::new(serial.clone());
    arm.configure().with_context(|| format!("connecting to the arm on {}", serial.port))?;
    arm.activate()?;
    run_node(&launch, config, "servo_arm", arm, serial.control_rate_hz, duration_s, |_| SystemClock.now(), |_| {}, false)
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
) -> anyhow::Result<serde_json::Value> {
    let joint_names = hardware.joint_names().to_vec();
    let gate = gate_for(launch, config, &joint_names, rate_hz)?;
    let slot = CommandSlot::new();
    let mut control = ControlLoop::new(hardware, gate, slot.clone());

    let ctx = r2r::Context::create()?;
    let mut node = r2r::Node::create(ctx, node_name, &launch.namespace)?;
    let joint_states = node.create_publisher::<r2r::sensor_msgs::msg::JointState>("joint_states", QosProfile::sensor_data())?;
    let clock = node.create_publisher::<r2r::rosgraph_msgs::msg::Clock>("/clock", QosProfile::default())?;
    let verdicts = node.create_publisher::<r2r::std_msgs::msg::String>("safety/verdicts", QosProfile::default())?;
    let mut commands = node.subscribe::<r2r::std_msgs::msg::Float64MultiArray>("joint_commands", QosProfile::default())?;
    tracing::info!(node = node_name, namespace = %launch.namespace, rate_hz, "robot node up");

    let period = 1.0 / rate_hz;
    let started = Instant::now();
    let mut ticks: u64 = 0;
    let mut malformed: u64 = 0;
    let mut message = r2r::sensor_msgs::msg::JointState { name: joint_names.clone(), ..Default::default() };
    loop {
        if duration_s.is_some_and(|d| started.elapsed().as_secs_f64() >= d) {
            break;
        }
        node.spin_once(Duration::ZERO);
        let now = clock_of(control.hardware());
        while let Some(Some(msg)) = commands.next().now_or_never() {
            // A command of the wrong size is still offered: the gate holds on it and says why.
            match JointVec::from_slice(&msg.data) {
                Some(values) => slot.offer(JointCommand { stamp: now, mode: CommandMode::Position, values }),
                None => malformed += 1,
            }
        }
        let verdict = control.tick(now).context("control tick")?;
        after_tick(control.hardware_mut());
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
            verdicts.publish(&r2r::std_msgs::msg::String { data: format!("{:.3} {verdict:?}", now.as_secs_f64()) })?;
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
    }))
}
