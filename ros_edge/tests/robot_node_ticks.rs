//! The ticking threads `rrl sim` runs neither allocate nor free per tick,
//! counted per thread, every heap call: `robot_node::serve` over the
//! simulated Panda with its gripper, its pick scene's cube pose and a
//! rendered camera (`rrl driver` runs the same function over a real
//! robot's driver), and `car_node::serve` over the car twin with its
//! camera; commands arrive over DDS from another node. Publishing,
//! verdict strings and logs happen on the nodes' own threads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ros_edge::robot_node::{both, pick_scene, rendered_cameras, RenderedCamera, RobotNodeSpec};
use robot_drivers::HardwareInterface;
use sim_bridge::arm::{SimArm, PANDA_HOME};
use sim_bridge::scene_cameras::CameraSpec;

#[global_allocator]
static GLOBAL: heap_count::PerThreadCount = heap_count::PerThreadCount;

const RATE_HZ: f64 = 250.0;
const WARM_UP_TICKS: usize = 250;

/// This binary's private ROS domain, set once before any test of it
/// spawns a thread (r2r reads it from the process's environment).
fn private_ros_domain() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::env::set_var("ROS_DOMAIN_ID", (20 + (std::process::id() + 62) % 80).to_string());
        std::env::set_var("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST");
    });
}

/// Publishes `message` on `topic` of `namespace` ten times a second from a
/// node of its own, until the returned flag is cleared.
fn keep_publishing<T: r2r::WrappedTypesupport + Send + 'static>(namespace: &'static str, topic: &'static str, message: T) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let publishing = Arc::new(AtomicBool::new(true));
    let still = publishing.clone();
    let thread = std::thread::spawn(move || {
        let ctx = r2r::Context::create().unwrap();
        let mut node = r2r::Node::create(ctx, "commander", namespace).unwrap();
        let publisher = node.create_publisher::<T>(topic, r2r::QosProfile::default()).unwrap();
        while still.load(Ordering::Relaxed) {
            publisher.publish(&message).unwrap();
            node.spin_once(Duration::from_millis(100));
        }
    });
    (publishing, thread)
}

#[test]
fn the_robot_nodes_ticking_thread_neither_allocates_nor_frees_per_tick() {
    private_ros_domain();
    let arm = SimArm::panda_with_gripper().unwrap();
    let safety: rrl_types::config::SafetyConfig = ron::from_str("(preset: Some(FrankaPanda))").unwrap();
    let gate = safety::Gate::build(&safety, arm.joint_names(), RATE_HZ).unwrap();
    let camera = RenderedCamera { name: "front".into(), spec: CameraSpec { model_camera: "front".into(), width: 64, height: 64, fps: 10.0 } };

    // An arm command at home, ten times a second, over DDS from another node.
    let (commanding, commander) = keep_publishing("panda_ticks", "joint_commands", r2r::std_msgs::msg::Float64MultiArray { data: PANDA_HOME.to_vec(), ..Default::default() });

    // This thread's heap calls after each tick, kept without allocating.
    let mut heap_calls: Vec<u64> = Vec::with_capacity(100_000);
    let period = 1.0 / RATE_HZ;
    let spec = RobotNodeSpec { node_name: "sim_robot", namespace: "panda_ticks", robot_kind: "Sim", launch_file: "test".into(), rate_hz: RATE_HZ, duration_s: Some(6.0), publish_clock: true, gripper: true, stop: || false };
    let after_tick = |arm: &mut SimArm| {
        arm.advance(period);
        if heap_calls.len() < heap_calls.capacity() {
            heap_calls.push(heap_count::heap_calls());
        }
    };
    let report = ros_edge::robot_node::serve(arm, gate, spec, |arm| arm.now(), after_tick, both(rendered_cameras(vec![camera]), pick_scene(7))).unwrap();
    commanding.store(false, Ordering::Relaxed);
    commander.join().unwrap();

    let ticks = report["ticks"].as_u64().unwrap() as usize;
    assert!(ticks >= WARM_UP_TICKS + 1000, "{report}");
    assert!(report["passed"].as_u64().unwrap() > 500, "the commands over DDS reached the gate and passed: {report}");
    let counted = &heap_calls[WARM_UP_TICKS..];
    let calls = counted.last().unwrap() - counted[0];
    let per_tick: Vec<u64> = counted.windows(2).map(|w| w[1] - w[0]).filter(|&d| d > 0).take(10).collect();
    assert_eq!(calls, 0, "the ticking thread made {calls} heap calls over {} ticks (first nonzero ticks: {per_tick:?})", counted.len());
}

/// The car twin's ticking thread: the calling thread's heap calls over a
/// run of 2 s and one of 6 s (its set-up and report alike) are the same,
/// so the 1000 ticks between cost none.
#[test]
fn the_car_twins_ticking_thread_neither_allocates_nor_frees_per_tick() {
    private_ros_domain();
    let launch = rrl_types::config::LaunchFile::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../launch/files/sim_car_course.ron")).unwrap();
    let course = launch.course.clone().unwrap();
    let twist = r2r::geometry_msgs::msg::Twist { linear: r2r::geometry_msgs::msg::Vector3 { x: 0.5, y: 0.0, z: 0.0 }, angular: r2r::geometry_msgs::msg::Vector3 { x: 0.0, y: 0.0, z: 0.2 } };
    let (driving, driver) = keep_publishing("car_ticks", "cmd_vel", twist);
    let heap_calls_of_a_run = |seconds: f64| {
        let mut car = sim_bridge::car::CarSim::load(&course).unwrap();
        car.place(course.start);
        let cameras = vec![RenderedCamera { name: "front".into(), spec: CameraSpec { model_camera: "front".into(), width: 64, height: 48, fps: 10.0 } }];
        let spec = ros_edge::car_node::CarNodeSpec { namespace: "car_ticks", course: &course, cameras, rate_hz: 250.0, duration_s: Some(seconds), stop: || false };
        let before = heap_count::heap_calls();
        let report = ros_edge::car_node::serve(car, spec).unwrap();
        (heap_count::heap_calls() - before, report)
    };
    // A first run pays this thread's one-time costs (its channel context, lazy statics).
    heap_calls_of_a_run(1.0);
    let (short, short_report) = heap_calls_of_a_run(2.0);
    let (long, long_report) = heap_calls_of_a_run(6.0);
    driving.store(false, Ordering::Relaxed);
    driver.join().unwrap();
    let ticks = |report: &serde_json::Value| report["ticks"].as_u64().unwrap();
    assert!(ticks(&long_report) >= ticks(&short_report) + 800, "{short_report} {long_report}");
    assert!(long_report["twists"].as_u64().unwrap() > 0, "the twists over DDS reached the car: {long_report}");
    // Even a per-tick push into a growing vector (a reallocation now and then) would differ.
    assert_eq!(long, short, "a run 4 s (1000 ticks) longer made {} more heap calls on the ticking thread ({short} in 2 s, {long} in 6 s)", long as i64 - short as i64);
}
