//! A ros2_control arm that reports its external wrench on a topic: the
//! gate holds it once the force passes `safety.max_force_n`. The arm is the
//! rclpy emulator of `topic_arm.rs`, pressing on something past a joint
//! angle; its own test process, so its own ROS domain.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use robot_drivers::topic_arm::TopicArm;
use robot_drivers::{CommandSlot, ControlLoop, HardwareInterface};
use rrl_types::config::TopicArmConfig;
use rrl_types::{Clock, CommandMode, JointCommand, JointVec, SystemClock};
use safety::{Gate, HoldReason, Verdict};

/// Fault matrix: force exceeded | the emulated arm reports 50 N on its wrench topic past a joint angle | the gate holds | 5 N passes; every tick after the contact held; the arm stops short
#[test]
fn an_external_force_on_the_wrench_topic_holds_the_arm() {
    let domain = 20 + (std::process::id() + 41) % 80;
    let python = std::env::var_os("VIRTUAL_ENV").map(|v| PathBuf::from(v).join("bin/python")).unwrap_or_else(|| "python3".into());
    let emulated = Emulated(Command::new(python)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/ros2_control_arm.py"))
        // Its lifetime is only a bound: the test ends it.
        .args(["120", "0.3"])
        .env("ROS_DOMAIN_ID", domain.to_string())
        .env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        .spawn()
        .expect("start the emulated arm"));
    std::env::set_var("ROS_DOMAIN_ID", domain.to_string());
    std::env::set_var("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST");
    let config: TopicArmConfig = ron::from_str(
        "(joint_names: [\"a\", \"b\"], state_topic: \"/joint_states\", wrench_topic: Some(\"/external_wrench\"), command: ForwardPosition(topic: \"/forward_position_controller/commands\"))",
    )
    .unwrap();
    let mut arm = TopicArm::new(config, "");
    arm.configure().unwrap();
    arm.activate().unwrap();
    let names = arm.joint_names().to_vec();
    let safety: rrl_types::config::SafetyConfig = ron::from_str("(joints: [(name: \"a\", velocity: Some(0.5))], command_timeout_ms: 100, state_timeout_ms: 100, max_force_n: Some(30.0))").unwrap();
    let slot = CommandSlot::new();
    let mut control = ControlLoop::new(arm, Gate::build(&safety, &names, 100.0).unwrap(), slot.clone());
    let mut tick = || {
        let now = SystemClock.now();
        slot.offer(JointCommand { stamp: now, mode: CommandMode::Position, values: JointVec::from_slice(&[0.8, -0.2]).unwrap() });
        let verdict = control.tick(now).unwrap();
        std::thread::sleep(Duration::from_millis(10));
        (verdict, *control.state())
    };
    // Until the contact holds the arm, then 100 ticks more.
    let started = Instant::now();
    let mut verdicts = Vec::new();
    while !verdicts.iter().any(|(v, _)| *v == Verdict::Held(HoldReason::ForceExceeded)) {
        assert!(started.elapsed() < Duration::from_secs(60), "the 50 N contact never held the arm: {:?}", verdicts.last());
        verdicts.push(tick());
    }
    let forced = verdicts.len() - 1;
    verdicts.extend((0..100).map(|_| tick()));
    drop(emulated);
    let light = verdicts.iter().filter(|(v, s)| !matches!(v, Verdict::Held(_)) && s.wrench.is_some_and(|w| (w[2] + 5.0).abs() < 1e-9)).count();
    assert!(light > 10, "before the contact the 5 N push must not hold the arm, {light} ticks went through");
    assert!(verdicts[forced..].iter().all(|(v, _)| matches!(v, Verdict::Held(_))), "once pressing, every tick holds");
    let furthest = verdicts.iter().map(|(_, s)| s.position.as_slice().first().copied().unwrap_or(0.0)).fold(f64::MIN, f64::max);
    assert!(furthest < 0.36, "the held arm kept going to a = {furthest}");
}

/// The emulated arm, ended when the test ends, passing or failing.
struct Emulated(std::process::Child);

impl Drop for Emulated {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
