//! A real arm's task section over ROS 2: its scripted reset moves against
//! the rclpy ros2_control arm emulator (the far end of the topics), and
//! the human reset window, in a private ROS domain on loopback.

use std::path::PathBuf;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use r2r::QosProfile;
use rrl_types::config::LaunchFile;
use rrl_types::Environment;

/// The emulator's two-link arm: joint `a` about z at 10 cm height, a 30 cm
/// upper and a 20 cm lower link; the tool moves in the plane z = 0.1.
const ARM_URDF: &str = r#"<?xml version="1.0"?>
<robot name="emulated_two_link">
  <link name="base"/><link name="upper"/><link name="lower"/><link name="tool"/>
  <joint name="a" type="revolute"><parent link="base"/><child link="upper"/><origin xyz="0 0 0.1"/><axis xyz="0 0 1"/><limit lower="-1.5" upper="1.5" velocity="2.0" effort="5"/></joint>
  <joint name="b" type="revolute"><parent link="upper"/><child link="lower"/><origin xyz="0.3 0 0"/><axis xyz="0 0 1"/><limit lower="-2.0" upper="2.0" velocity="2.0" effort="5"/></joint>
  <joint name="tool_mount" type="fixed"><parent link="lower"/><child link="tool"/><origin xyz="0.2 0 0"/></joint>
</robot>"#;

fn launch_with_reset(dir: &std::path::Path, reset: &str) -> LaunchFile {
    std::fs::write(dir.join("arm.urdf"), ARM_URDF).unwrap();
    let text = format!(
        r#"(
    name: "waypoints",
    robot: TopicArm((joint_names: ["a", "b"], state_topic: "/joint_states", command: ForwardPosition(topic: "/forward_position_controller/commands"), state_timeout_ms: 300)),
    safety: (
        command_timeout_ms: 300,
        state_timeout_ms: 300,
        urdf: Some((file: "arm.urdf", base_link: "base", tip_link: "tool")),
        workspace: Some((min: (-0.6, -0.6, 0.0), max: (0.6, 0.6, 0.3), max_step_m: 0.02, max_speed_mps: 0.5)),
    ),
    practice: (home: Some([0.3, 0.8]), reset_noise_rad: 0.0, reset_timeout_s: 20.0),
    task: (reset: {reset}),
)"#
    );
    let path = dir.join("waypoints.ron");
    std::fs::write(&path, text).unwrap();
    LaunchFile::load(&path).unwrap()
}

/// The tool point the arm's joint states put it at, per message, on a thread.
fn watch_tool(launch: &LaunchFile, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> std::thread::JoinHandle<Vec<[f64; 3]>> {
    let gate = safety::GateConfig::from_launch(&launch.safety, &launch.robot.joint_names(), 100.0).unwrap();
    let chain = gate.workspace.unwrap().chain;
    std::thread::spawn(move || {
        let ctx = r2r::Context::create().unwrap();
        let mut node = r2r::Node::create(ctx, "tool_watcher", "").unwrap();
        let mut states = node.subscribe::<r2r::sensor_msgs::msg::JointState>("/joint_states", QosProfile::sensor_data()).unwrap();
        let mut tools = Vec::new();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            node.spin_once(Duration::from_millis(5));
            while let Some(Some(msg)) = states.next().now_or_never() {
                let q = |name: &str| msg.position[msg.name.iter().position(|n| n == name).unwrap()];
                tools.push(chain.tool_position(&[q("a"), q("b")]));
            }
        }
        tools
    })
}

#[test]
fn a_waypoint_reset_moves_the_emulated_ros2_control_arm_through_its_point_then_home() {
    tests::isolate_ros_domain();
    let emulator = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../robot_drivers/tests/python/ros2_control_arm.py");
    let mut arm = std::process::Command::new(tests::venv_python()).arg(emulator).arg("90").spawn().expect("start the emulated arm");
    let dir = tempfile::tempdir().unwrap();
    let waypoint = [0.45, -0.2, 0.1];
    let launch = launch_with_reset(dir.path(), &format!("[Tool(({}, {}, {})), Wait(0.2), Home]", waypoint[0], waypoint[1], waypoint[2]));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = watch_tool(&launch, stop.clone());
    let hardware = robot_drivers::topic_arm::TopicArm::new(match &launch.robot {
        rrl_types::config::RobotConfig::TopicArm(topics) => topics.clone(),
        _ => unreachable!(),
    }, "");
    let mut task = wiring::arm_task::ArmTask::start(hardware, &launch, 1).expect("the task starts against the emulated arm");
    task.reset(1);
    // A reset that failed reports why at the next step.
    task.step(&[0.0, 0.0, 0.0]).expect("the reset and a step ran");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let tools = watcher.join().unwrap();
    let _ = arm.kill();
    let _ = arm.wait();
    let distance = |a: &[f64; 3], b: &[f64; 3]| (0..3).map(|k| (a[k] - b[k]).powi(2)).sum::<f64>().sqrt();
    let nearest = tools.iter().map(|t| distance(t, &waypoint)).fold(f64::INFINITY, f64::min);
    assert!(nearest < 0.015, "the tool came no nearer than {nearest:.3} m to the waypoint {waypoint:?} ({} states)", tools.len());
    let chain_home = safety::GateConfig::from_launch(&launch.safety, &launch.robot.joint_names(), 100.0).unwrap().workspace.unwrap().chain.tool_position(&[0.3, 0.8]);
    let last = tools.last().expect("joint states came");
    assert!(distance(last, &chain_home) < 0.03, "the reset ended at {last:?}, home's tool point is {chain_home:?}");
    // It went to the waypoint first: the visit comes before the arm is home.
    let visit = tools.iter().position(|t| distance(t, &waypoint) < 0.015).unwrap();
    let home_from = tools.iter().rposition(|t| distance(t, &chain_home) > 0.03).unwrap_or(0);
    assert!(visit < home_from, "the waypoint (state {visit}) was visited before the way home (from state {home_from})");
}

#[test]
fn the_human_reset_window_waits_for_its_word_and_times_out_naming_its_topic() {
    tests::isolate_ros_domain();
    let window = ros_edge::reset_window::ResetWindow::start("/window_test").unwrap();
    // Nobody answers: it times out, naming what to publish where.
    let mut ticks = 0;
    let outcome = window.wait(Duration::from_millis(600), || -> Result<(), ()> {
        ticks += 1;
        std::thread::sleep(Duration::from_millis(10));
        Ok(())
    });
    let why = outcome.unwrap().expect_err("no word came");
    assert!(why.contains("/window_test/practice/reset_done") && why.contains("std_msgs/Empty"), "{why}");
    assert!(ticks > 10, "the arm was held on every tick of the window ({ticks} ticks)");

    // A person (this thread) who sees the window open says the scene is
    // ready, on every status until the window has closed (a first word may
    // go out before DDS has matched its publisher to the window).
    let closed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let person_sees_closed = closed.clone();
    let person = std::thread::spawn(move || {
        let ctx = r2r::Context::create().unwrap();
        let mut node = r2r::Node::create(ctx, "person", "/window_test").unwrap();
        let mut status = node.subscribe::<r2r::std_msgs::msg::String>("practice/status", QosProfile::default()).unwrap();
        let done = node.create_publisher::<r2r::std_msgs::msg::Empty>("practice/reset_done", QosProfile::default()).unwrap();
        let mut seen = String::new();
        while !person_sees_closed.load(std::sync::atomic::Ordering::Relaxed) {
            node.spin_once(Duration::from_millis(10));
            while let Some(Some(msg)) = status.next().now_or_never() {
                if msg.data.starts_with(ros_edge::reset_window::WAITING) {
                    done.publish(&r2r::std_msgs::msg::Empty::default()).unwrap();
                    seen = msg.data;
                }
            }
        }
        seen
    });
    let outcome = window.wait(Duration::from_secs(30), || -> Result<(), ()> {
        std::thread::sleep(Duration::from_millis(10));
        Ok(())
    });
    closed.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = person.join().unwrap();
    assert!(seen.contains("(window 2)") && seen.contains("left"), "the status numbers the window and says what it waits for and how long: {seen:?}");
    outcome.unwrap().expect("the person's word ends the window");
}
