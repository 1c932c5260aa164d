//! `rrl sim --config FILE`: the simulated robot as a ROS 2 node, paced to
//! the wall clock like a real one. Publishes `joint_states` (sensor-data
//! QoS), `/clock` (simulated time) and `safety/verdicts`; takes position
//! commands on `joint_commands` (std_msgs/Float64MultiArray), which reach the
//! simulated arm only through the safety gate.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::{FutureExt, StreamExt};
use r2r::QosProfile;
use robot_drivers::{CommandSlot, ControlLoop, HardwareInterface};
use rrl_types::config::{LaunchFile, RobotConfig, SimTask};
use rrl_types::{CommandMode, JointCommand, JointVec, Timestamp};
use safety::{Gate, GateConfig, Verdict};
use sim_bridge::arm::SimArm;

fn ros_time(t: Timestamp) -> r2r::builtin_interfaces::msg::Time {
    r2r::builtin_interfaces::msg::Time { sec: (t.0 / 1_000_000_000) as i32, nanosec: (t.0 % 1_000_000_000) as u32 }
}

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
    let joint_names = arm.joint_names().to_vec();
    let mut gate = Gate::new(GateConfig::from_launch(&launch.safety, &joint_names, sim.control_rate_hz)?);
    if let Some(risk) = &launch.safety.risk_critic {
        // Relative paths are relative to the launch file.
        let weights = config.parent().unwrap_or(Path::new(".")).join(&risk.weights);
        let loaded = safety::RiskCritic::load(&weights, 3 * joint_names.len()).map_err(anyhow::Error::from).and_then(|critic| Ok(gate.set_risk_critic(critic, risk.threshold as f32, risk.reflex)?));
        match loaded {
            Ok(()) => tracing::info!(weights = %weights.display(), threshold = risk.threshold, "risk critic active"),
            Err(e) => tracing::warn!("risk critic refused, the gate runs on its rules only: {e:#}"),
        }
    }
    let slot = CommandSlot::new();
    let mut control = ControlLoop::new(arm, gate, slot.clone());

    let ctx = r2r::Context::create()?;
    let mut node = r2r::Node::create(ctx, "sim_robot", &launch.namespace)?;
    let joint_states = node.create_publisher::<r2r::sensor_msgs::msg::JointState>("joint_states", QosProfile::sensor_data())?;
    let clock = node.create_publisher::<r2r::rosgraph_msgs::msg::Clock>("/clock", QosProfile::default())?;
    let verdicts = node.create_publisher::<r2r::std_msgs::msg::String>("safety/verdicts", QosProfile::default())?;
    let mut commands = node.subscribe::<r2r::std_msgs::msg::Float64MultiArray>("joint_commands", QosProfile::default())?;
    tracing::info!(namespace = %launch.namespace, rate_hz = sim.control_rate_hz, "simulated Panda up");

    let period = 1.0 / sim.control_rate_hz;
    let started = Instant::now();
    let mut ticks: u64 = 0;
    let mut malformed: u64 = 0;
    let mut message = r2r::sensor_msgs::msg::JointState { name: joint_names.clone(), ..Default::default() };
    loop {
        if duration_s.is_some_and(|d| started.elapsed().as_secs_f64() >= d) {
            break;
        }
        node.spin_once(Duration::ZERO);
        let now = control.hardware().now();
        while let Some(Some(msg)) = commands.next().now_or_never() {
            // A command of the wrong size is still offered: the gate holds on it and says why.
            match JointVec::from_slice(&msg.data) {
                Some(values) => slot.offer(JointCommand { stamp: now, mode: CommandMode::Position, values }),
                None => malformed += 1,
            }
        }
        let verdict = control.tick(now).context("control tick")?;
        control.hardware_mut().advance(period);
        let state = control.state();
        message.header.stamp = ros_time(state.stamp);
        message.position.clear();
        message.position.extend_from_slice(state.position.as_slice());
        message.velocity.clear();
        message.velocity.extend_from_slice(state.velocity.as_slice());
        message.effort.clear();
        message.effort.extend_from_slice(state.effort.as_slice());
        joint_states.publish(&message)?;
        clock.publish(&r2r::rosgraph_msgs::msg::Clock { clock: ros_time(control.hardware().now()) })?;
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
        "sim_seconds": control.hardware().now().as_secs_f64(),
        "passed": counts.passed,
        "clipped": counts.clipped,
        "held": counts.held,
        "reflexes": counts.reflexes,
        "malformed_commands": malformed,
    }))
}
