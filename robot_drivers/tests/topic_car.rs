//! A small car over its topics: gated velocity commands go out as Twist,
//! odometry and IMU come back as the car's state, commands beyond the car's
//! limits are capped, and a car whose odometry falls silent is stopped. The
//! car is an rclpy node (an emulator on the far end of the topics) in a
//! private ROS domain on loopback.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use robot_drivers::car::TopicCar;
use robot_drivers::{CommandSlot, ControlLoop, HardwareInterface};
use rrl_types::config::CarConfig;
use rrl_types::{Clock, CommandMode, JointCommand, JointVec, SystemClock};
use safety::{Gate, HoldReason, Verdict};

#[test]
fn a_car_follows_gated_twists_is_capped_and_stops_when_odometry_falls_silent() {
    let domain = 20 + (std::process::id() + 41) % 80;
    std::env::set_var("ROS_DOMAIN_ID", domain.to_string());
    std::env::set_var("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST");
    let python = std::env::var_os("VIRTUAL_ENV").map(|v| PathBuf::from(v).join("bin/python")).unwrap_or_else(|| "python3".into());
    let emulated = Command::new(python)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/twist_car.py"))
        .args(["6", "8"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the emulated car");

    let config: CarConfig = ron::from_str(
        "(cmd_vel_topic: \"/cmd_vel\", odom_topic: \"/odom\", imu_topic: Some(\"/imu/data\"), state_timeout_ms: 100, max_linear_mps: 1.5, max_angular_rps: 1.0)",
    )
    .unwrap();
    let mut car = TopicCar::new(config, "");
    car.configure().unwrap();
    car.activate().unwrap();
    let names = car.joint_names().to_vec();
    let safety: rrl_types::config::SafetyConfig = ron::from_str(
        "(joints: [(name: \"linear_x\", velocity: Some(2.0), acceleration: Some(3.0)), (name: \"angular_z\", velocity: Some(2.5), acceleration: Some(8.0))], command_timeout_ms: 100, state_timeout_ms: 100)",
    )
    .unwrap();
    let gate = Gate::build(&safety, &names, 50.0).unwrap();
    let slot = CommandSlot::new();
    let mut control = ControlLoop::new(car, gate, slot.clone());
    // The timeline starts with the first odometry (the emulator's clock starts with the first twist, sent right after).
    let waiting = Instant::now();
    while control.state().position.len() != 2 {
        assert!(waiting.elapsed() < Duration::from_secs(30), "no odometry from the emulated car");
        control.tick(SystemClock.now()).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let start = Instant::now();
    let mut trace = Vec::new();
    while start.elapsed() < Duration::from_millis(7_500) {
        let now = SystemClock.now();
        let wanted = if start.elapsed() < Duration::from_secs(3) { [0.8, 0.5] } else { [5.0, 0.0] };
        slot.offer(JointCommand { stamp: now, mode: CommandMode::Velocity, values: JointVec::from_slice(&wanted).unwrap() });
        let verdict = control.tick(now).unwrap();
        trace.push((start.elapsed(), verdict, *control.state(), control.hardware().pose()));
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(control);
    let output = emulated.wait_with_output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("the emulated car's report");

    let at = |t: u64| trace.iter().rfind(|(e, ..)| *e < Duration::from_millis(t)).unwrap();
    let (_, _, cruising, _) = at(2_900);
    assert!((cruising.velocity[0] - 0.8).abs() < 0.05, "speed {} while asking 0.8", cruising.velocity[0]);
    assert!((cruising.velocity[1] - 0.5).abs() < 0.05, "yaw rate {} (from the IMU) while asking 0.5", cruising.velocity[1]);
    let (_, verdict, capped, pose) = at(5_900);
    assert!((capped.velocity[0] - 1.5).abs() < 0.05, "5 m/s asked: the driver caps at the car's 1.5, got {}", capped.velocity[0]);
    assert!(matches!(verdict, Verdict::Clipped(_)), "5 m/s is over the gate's 2 m/s limit: {verdict:?}");
    let pose = pose.expect("odometry arrived");
    assert!(pose.distance > 4.0 && (pose.yaw - capped.position[1]).abs() < 1e-12, "pose {pose:?}");
    let (_, last_verdict, ..) = trace.last().unwrap();
    assert_eq!(*last_verdict, Verdict::Held(HoldReason::StaleState), "a car with silent odometry must be held");
    assert_eq!(report["last_twist"], serde_json::json!([0.0, 0.0]), "the silent car's last command must be a stop: {report}");
}
