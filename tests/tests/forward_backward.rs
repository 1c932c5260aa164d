//! Reset-free practice in two directions on a real arm's task (SERL's
//! forward and backward): an SO-101 on its emulated Feetech bus (the device
//! emulator at the far end of a pseudo-terminal). Forward succeeds when the
//! tool reaches a point; backward when a detector's `std_msgs/Bool` topic,
//! published by this test over DDS in a private domain, says so. Episodes
//! alternate without resets, each judged by its own source only.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use robot_drivers::feetech::emulator::FeetechEmulator;
use rrl_types::config::LaunchFile;
use rrl_types::{Environment, Step};

const JOINTS: [&str; 6] = tests::SO101_JOINTS;

fn launch(dir: &std::path::Path, port: &str, forward: [f64; 3]) -> LaunchFile {
    let text = format!(
        r#"(
    name: "forward_backward",
    {}
    reward: Task,
    task: (
        actions: Tool((step_m: Some([0.01]))),
        observe: [Tool, Direction],
        goal: None,
        reset: [Home],
        directions: Some((
            forward: ToolAt(({}, {}, {}), 0.01),
            backward: Topic("/bin/empty"),
        )),
    ),
    practice: (policy_rate_hz: 10.0, max_episode_steps: 200, home: Some([0.0, 0.0, 0.0, 0.0, 0.0, 0.0]), reset_noise_rad: 0.0),
)"#,
        tests::so101_on_emulated_bus(port),
        forward[0],
        forward[1],
        forward[2]
    );
    let path = dir.join("forward_backward.ron");
    std::fs::write(&path, text).unwrap();
    LaunchFile::load(&path).unwrap()
}

/// The detector: publishes `flag` on /bin/empty at 20 Hz until `stop`.
fn detector(flag: Arc<AtomicBool>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let ctx = r2r::Context::create().unwrap();
        let mut node = r2r::Node::create(ctx, "bin_detector", "").unwrap();
        let publisher = node.create_publisher::<r2r::std_msgs::msg::Bool>("/bin/empty", r2r::QosProfile::default()).unwrap();
        while !stop.load(Ordering::Relaxed) {
            publisher.publish(&r2r::std_msgs::msg::Bool { data: flag.load(Ordering::Relaxed) }).unwrap();
            // A publisher alone has nothing to spin for.
            std::thread::sleep(Duration::from_millis(50));
        }
    })
}

#[test]
fn forward_and_backward_alternate_without_resets_each_judged_by_its_own_source() {
    tests::isolate_ros_domain();
    let dir = tempfile::tempdir().unwrap();
    let wire = robot_drivers::pty::PtyPair::spawn().unwrap();
    let _servos = FeetechEmulator::spawn(wire.b(), 1_000_000, &[1, 2, 3, 4, 5, 6]).unwrap();
    let (chain, _) = safety::so101::chain(&JOINTS.map(String::from)).unwrap();
    let home = chain.tool_position(&[0.0; 6]);
    let forward_point = [home[0] + 0.08, home[1] + 0.05, home[2] - 0.06];
    let launch = launch(dir.path(), wire.a(), forward_point);
    let (bin_empty, stop) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicBool::new(false)));
    let publisher = detector(bin_empty.clone(), stop.clone());
    let mut task = wiring::robot::start_arm(&launch, &dir.path().join("forward_backward.ron"), 0).unwrap();

    // Forward, after the one reset: the detector says true at first, which is backward's success, not forward's.
    let observation = task.reset(0).to_vec();
    assert_eq!(observation[3], 1.0, "the first episode goes forward");
    let mut steps = 0;
    let step = loop {
        let tool = &task.observation()[..3];
        let action: Vec<f64> = (0..3).map(|k| ((forward_point[k] - tool[k]) / 0.01).clamp(-1.0, 1.0)).collect();
        let step = task.step(&action).unwrap();
        steps += 1;
        // The detector turns false well before backward starts (its
        // messages take a moment to arrive).
        if steps == 3 {
            bin_empty.store(false, Ordering::Relaxed);
        }
        if step.terminated || steps == 150 {
            break step;
        }
        assert_eq!(step.reward, 0.0, "a forward step short of its point is unrewarded");
    };
    assert_eq!(step, Step { reward: 1.0, terminated: true, truncated: false }, "forward ends on reaching its point ({steps} steps)");
    assert!(steps > 5, "the point was reached in {steps} steps: too near the start to show anything");
    assert_eq!(task.success(), Some(true));
    let reached = task.observation()[..3].to_vec();

    // Backward: no reset (the tool stays where forward left it), and
    // forward's point reached does not count; the detector's true does.
    let observation = task.reset_next().to_vec();
    assert_eq!(observation[3], -1.0, "the second episode goes backward");
    assert!((0..3).all(|k| (observation[k] - reached[k]).abs() < 0.005), "a reset moved the tool from {reached:?} to {:?}", &observation[..3]);
    for _ in 0..10 {
        let step = task.step(&[0.0, 0.0, 0.0]).unwrap();
        assert!(!step.terminated && step.reward == 0.0, "backward ended at forward's point while the detector said false: {step:?}");
    }
    assert_eq!(task.success(), Some(false));
    bin_empty.store(true, Ordering::Relaxed);
    let mut steps = 0;
    while !task.step(&[0.0, 0.0, 0.0]).unwrap().terminated {
        steps += 1;
        assert!(steps < 30, "backward did not end on its detector's true");
    }

    // Forward again, from where backward left the arm.
    let observation = task.reset_next().to_vec();
    assert_eq!(observation[3], 1.0, "the third episode goes forward again");
    assert!((0..3).all(|k| (observation[k] - reached[k]).abs() < 0.005), "a reset moved the tool");
    stop.store(true, Ordering::Relaxed);
    publisher.join().unwrap();
}
