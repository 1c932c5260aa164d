//! A ros2_control arm over its topics: the driver reorders joint states by
//! name, sends forward-position commands through the gate, and holds when
//! the arm falls silent. The arm is an rclpy node (an emulator on the far
//! end of the topics) in a private ROS domain on loopback.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use robot_drivers::topic_arm::TopicArm;
use robot_drivers::{CommandSlot, ControlLoop, HardwareInterface};
use rrl_types::config::TopicArmConfig;
use rrl_types::{Clock, CommandMode, JointCommand, JointVec, SystemClock};
use safety::{Gate, HoldReason, Verdict};

#[test]
fn a_topic_arm_follows_gated_commands_and_holds_when_silent() {
    let domain = 20 + (std::process::id() + 17) % 80;
    std::env::set_var("ROS_DOMAIN_ID", domain.to_string());
    std::env::set_var("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST");
    let python = std::env::var_os("VIRTUAL_ENV").map(|v| PathBuf::from(v).join("bin/python")).unwrap_or_else(|| "python3".into());
    let mut emulated = Command::new(python)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/ros2_control_arm.py"))
        .arg("6")
        .spawn()
        .expect("start the emulated arm");

    let config: TopicArmConfig = ron::from_str("(joint_names: [\"a\", \"b\"], state_topic: \"/joint_states\", command: ForwardPosition(topic: \"/forward_position_controller/commands\"))").unwrap();
    let mut arm = TopicArm::new(config, "");
    arm.configure().unwrap();
    arm.activate().unwrap();
    let names = arm.joint_names().to_vec();
    let safety: rrl_types::config::SafetyConfig = ron::from_str("(joints: [(name: \"a\", velocity: Some(0.5))], command_timeout_ms: 100, state_timeout_ms: 100)").unwrap();
    let gate = Gate::build(&safety, &names, 100.0).unwrap();
    let slot = CommandSlot::new();
    let mut control = ControlLoop::new(arm, gate, slot.clone());
    let goal = [0.4, 0.0];
    let start = Instant::now();
    let mut verdicts = Vec::new();
    while start.elapsed() < Duration::from_secs(9) {
        let now = SystemClock.now();
        slot.offer(JointCommand { stamp: now, mode: CommandMode::Position, values: JointVec::from_slice(&goal).unwrap() });
        verdicts.push((start.elapsed(), control.tick(now).unwrap(), *control.state()));
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = emulated.kill();
    let _ = emulated.wait();
    let reached = verdicts.iter().filter(|(t, _, _)| *t < Duration::from_millis(5_800)).last().unwrap().2;
    assert!((reached.position[0] - 0.4).abs() < 0.02 && reached.position[1].abs() < 0.02, "arm at {:?}", reached.position);
    let (_, last_verdict, _) = verdicts.last().unwrap();
    assert_eq!(*last_verdict, Verdict::Held(HoldReason::StaleState), "the silent arm must be held");
}

