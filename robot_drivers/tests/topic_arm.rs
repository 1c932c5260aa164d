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
    // Its lifetime is only a bound: the test ends it when it wants the arm silent.
    let emulated = Emulated(Command::new(python)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/ros2_control_arm.py"))
        .arg("120")
        .spawn()
        .expect("start the emulated arm"));

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
    let mut tick = || {
        let now = SystemClock.now();
        slot.offer(JointCommand { stamp: now, mode: CommandMode::Position, values: JointVec::from_slice(&goal).unwrap() });
        let verdict = control.tick(now).unwrap();
        std::thread::sleep(Duration::from_millis(10));
        (verdict, *control.state())
    };
    // Until the arm is at the goal (reordered by name: `b` stays at 0).
    let started = Instant::now();
    loop {
        let (verdict, state) = tick();
        if state.position.len() == 2 && (state.position[0] - 0.4).abs() < 0.02 && state.position[1].abs() < 0.02 {
            assert!(!matches!(verdict, Verdict::Held(_)), "the arm at its goal is not held: {verdict:?}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the arm never reached the goal: at {:?}, {verdict:?}", state.position);
    }
    // The arm falls silent: the gate holds it once its state is older than 100 ms, and keeps holding.
    drop(emulated);
    let silent = Instant::now();
    while tick().0 != Verdict::Held(HoldReason::StaleState) {
        assert!(silent.elapsed() < Duration::from_secs(10), "the silent arm was never held");
    }
    for _ in 0..50 {
        assert_eq!(tick().0, Verdict::Held(HoldReason::StaleState), "the silent arm must stay held");
    }
}

/// The emulated arm, ended when the test ends, passing or failing.
struct Emulated(std::process::Child);

impl Drop for Emulated {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
