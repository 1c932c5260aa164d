//! The risk critic's three reflexes on a ros2_control arm over its topics
//! (an rclpy emulator on the far end, loopback, a private ROS domain). The
//! source keeps asking joint `a` for 0.6 rad; a critic judges any command
//! for `a` past 0.3 rad risky. Hold stops the arm dead at the edge,
//! Decelerate lets it coast in with each step half the last, Recover backs
//! it off to the last command the critic found comfortably safe and keeps
//! it there while the source insists.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use robot_drivers::topic_arm::TopicArm;
use robot_drivers::{CommandSlot, ControlLoop, HardwareInterface};
use rrl_types::config::{Reflex, TopicArmConfig};
use rrl_types::{Clock, CommandMode, JointCommand, JointVec, SystemClock};
use safety::{Gate, RiskCritic, Verdict};

const EDGE: f32 = 0.3;

/// risk = sigmoid(50 · (command of `a` − EDGE)); inputs: 2 positions, 2 velocities, 2 commands.
fn edge_critic() -> RiskCritic {
    RiskCritic::from_layers(vec![(vec![vec![0.0, 0.0, 0.0, 0.0, 50.0, 0.0]], vec![-50.0 * EDGE])]).unwrap()
}

/// One tick as the test sees it: verdict, command `a` sent, `a` measured.
type Tick = (Verdict, f64, f64);

/// Drives the emulated arm toward a = 0.6 for `seconds` through a gate with
/// the edge critic and `reflex`; every tick.
fn drive(reflex: Reflex, domain: u32) -> Vec<Tick> {
    std::env::set_var("ROS_DOMAIN_ID", domain.to_string());
    std::env::set_var("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST");
    let python = std::env::var_os("VIRTUAL_ENV").map(|v| PathBuf::from(v).join("bin/python")).unwrap_or_else(|| "python3".into());
    let mut emulated = Command::new(python).arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/ros2_control_arm.py")).arg("8").spawn().expect("start the emulated arm");
    let config: TopicArmConfig = ron::from_str("(joint_names: [\"a\", \"b\"], state_topic: \"/joint_states\", command: ForwardPosition(topic: \"/forward_position_controller/commands\"))").unwrap();
    let mut arm = TopicArm::new(config, "");
    arm.configure().unwrap();
    arm.activate().unwrap();
    let names = arm.joint_names().to_vec();
    let safety: rrl_types::config::SafetyConfig = ron::from_str("(joints: [(name: \"a\", velocity: Some(0.5))], command_timeout_ms: 100, state_timeout_ms: 100)").unwrap();
    let mut gate = Gate::build(&safety, &names, 100.0).unwrap();
    gate.set_risk_critic(edge_critic(), 0.5, reflex).unwrap();
    let slot = CommandSlot::new();
    let mut control = ControlLoop::new(arm, gate, slot.clone());
    // The arm's first state, then 2.5 s of the source asking for a = 0.6.
    let waited = Instant::now();
    while !matches!(control.tick(SystemClock.now()), Ok(Verdict::Held(safety::HoldReason::NoCommand))) || control.state().position.is_empty() {
        assert!(waited.elapsed() < Duration::from_secs(20), "the emulated arm never published its state");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut ticks = Vec::new();
    for _ in 0..250 {
        let now = SystemClock.now();
        slot.offer(JointCommand { stamp: now, mode: CommandMode::Position, values: JointVec::from_slice(&[0.6, -0.2]).unwrap() });
        let verdict = control.tick(now).unwrap();
        ticks.push((verdict, control.sent().values[0], control.state().position[0]));
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = emulated.kill();
    let _ = emulated.wait();
    ticks
}

fn reflexes(ticks: &[Tick]) -> Vec<usize> {
    ticks.iter().enumerate().filter(|(_, t)| matches!(t.0, Verdict::Reflex { .. })).map(|(i, _)| i).collect()
}

#[test]
fn hold_decelerate_and_recover_each_keep_the_arm_off_the_risky_region_their_own_way() {
    let domain = 20 + (std::process::id() + 43) % 80;
    let edge = f64::from(EDGE);

    // Hold: from the first reflex on, the command stays where it was.
    let held = drive(Reflex::Hold, domain);
    let first = reflexes(&held)[0];
    let stopped_at = held[first].1;
    assert!(stopped_at <= edge && stopped_at > edge - 0.01, "held at {stopped_at}");
    assert!(held[first..].iter().all(|t| (t.1 - stopped_at).abs() < 1e-9), "the command moved after the hold");
    let measured = held.last().unwrap().2;
    assert!((measured - stopped_at).abs() < 0.01, "the arm stopped at {measured}, the hold at {stopped_at}");

    // Decelerate: consecutive reflex ticks step on, each step half the last.
    let coasted = drive(Reflex::Decelerate, domain);
    let at = reflexes(&coasted);
    let steps: Vec<f64> = at.windows(2).take_while(|w| w[1] == w[0] + 1).map(|w| coasted[w[1]].1 - coasted[w[0]].1).take(4).collect();
    assert!(steps.len() >= 3, "consecutive reflex ticks: {at:?}");
    for pair in steps.windows(2) {
        assert!(pair[0] > 0.0 && (pair[1] / pair[0] - 0.5).abs() < 0.05, "the steps did not halve: {steps:?}");
    }
    let farthest = coasted.iter().map(|t| t.2).fold(f64::MIN, f64::max);
    assert!(farthest < edge + 0.01, "coasted to {farthest}, past the edge at {edge}");

    // Recover: back to the last comfortably safe command (risk below 0.25:
    // a below 0.3 − ln 3 / 50 ≈ 0.278) and kept there.
    let recovered = drive(Reflex::Recover, domain);
    let farthest = recovered.iter().map(|t| t.2).fold(f64::MIN, f64::max);
    let (_, command, measured) = *recovered.last().unwrap();
    assert!(command < 0.279 && measured < 0.285, "recovered to command {command}, measured {measured}");
    assert!(farthest - measured > 0.01, "the arm came back from {farthest} to {measured}");
    assert!(reflexes(&recovered).len() > 100, "latched while the source insists");
}
