//! A real arm's policy sees its cameras: an SO-101 on its emulated Feetech
//! bus (the device emulator at the far end of a pseudo-terminal) with a
//! wrist camera read through OpenCV from an image sequence. Its frames are
//! cropped to the launch file's region and resized; every observation's
//! frames are captured after the step's action took effect; a camera that
//! stops delivering pauses the task (the operator is told what it waits
//! for) until frames come again.

use std::path::Path;
use std::time::{Duration, Instant};

use robot_drivers::feetech::emulator::FeetechEmulator;
use rrl_types::config::LaunchFile;
use rrl_types::{Environment, FrameLayout, LiveStatus, PracticeTask, Waiting};
use wiring::arm_task::ArmTask;

/// A 64x48 picture, `background` but for a 16x16 `square` at (40, 8), as
/// PNG bytes (through the frame codec, whose cameras are PNGs).
fn picture(background: [u8; 3], square: [u8; 3]) -> Vec<u8> {
    let rgb: Vec<u8> = (0..48).flat_map(|y| (0..64).flat_map(move |x| if (40..56).contains(&x) && (8..24).contains(&y) { square } else { background })).collect();
    let encoded = recording::frames::encode(&rgb, FrameLayout { cameras: 1, height: 48, width: 64 }).unwrap();
    recording::frames::camera_pngs(&encoded).unwrap().1[0].to_vec()
}

fn launch(dir: &Path, port: &str) -> LaunchFile {
    let pattern = dir.join("frames").join("%04d.png");
    let text = format!(
        r#"(
    name: "arm_cameras",
    {}
    cameras: [(name: "wrist", source: ImageSequence("{}"), width: 16, height: 16, fps: 30.0, crop: Some((x: 40, y: 8, width: 16, height: 16)))],
    reward: Human,
    task: (
        actions: Joints((step_rad: [0.02])),
        observe: [Joints, Camera("wrist")],
        goal: None,
        reset: [Home],
    ),
    practice: (policy_rate_hz: 10.0, max_episode_steps: 50, home: Some([0.0, 0.0, 0.0, 0.0, 0.0, 0.0]), reset_noise_rad: 0.0),
)"#,
        tests::so101_on_emulated_bus(port),
        pattern.display()
    );
    let path = dir.join("arm_cameras.ron");
    std::fs::write(&path, text).unwrap();
    LaunchFile::load(&path).unwrap()
}

/// Steps `task` on a thread of its own while its camera delivers nothing
/// new, and returns once the operator is told the step waits for the
/// camera. A frame the camera grabbed just before it stalled may still
/// serve one step; the next must wait (failing if it completes instead).
fn step_that_waits_for_its_camera(mut task: ArmTask, live: &LiveStatus) -> std::thread::JoinHandle<(ArmTask, Result<(), wiring::arm_task::ArmTaskError>)> {
    for attempt in 0..2 {
        let stepping = std::thread::spawn(move || {
            let result = task.step(&[0.0; 6]).map(|_| ());
            (task, result)
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        while live.snapshot().waiting != Waiting::PolicyCamera && !stepping.is_finished() {
            assert!(Instant::now() < deadline, "a camera without new frames did not pause the task");
            std::thread::sleep(Duration::from_millis(10));
        }
        if live.snapshot().waiting == Waiting::PolicyCamera {
            return stepping;
        }
        assert!(attempt == 0, "a second step completed while its camera gave no new frame");
        let (stepped, result) = stepping.join().unwrap();
        result.unwrap();
        task = stepped;
    }
    unreachable!("the second attempt waits or fails")
}

/// Fault matrix: camera stalled | the policy camera's frame files deleted | the step waits (live view: waiting for the policy camera) | no step completes while stalled; the next one sees the new frame
#[test]
fn the_policy_sees_the_cropped_camera_and_a_stalled_camera_pauses_the_arm() {
    tests::isolate_ros_domain();
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    // Green in the crop, blue around it; then red in the crop twice (a
    // cycle of three frames, which a 10 Hz policy does not alias).
    std::fs::write(frames.join("0000.png"), picture([0, 0, 255], [0, 255, 0])).unwrap();
    std::fs::write(frames.join("0001.png"), picture([0, 0, 255], [255, 0, 0])).unwrap();
    std::fs::write(frames.join("0002.png"), picture([0, 0, 255], [255, 0, 0])).unwrap();
    let wire = robot_drivers::pty::PtyPair::spawn().unwrap();
    let _servos = FeetechEmulator::spawn(wire.b(), 1_000_000, &[1, 2, 3, 4, 5, 6]).unwrap();
    let launch = launch(dir.path(), wire.a());
    assert_eq!(wiring::learner::observed_frames(&launch), Some(FrameLayout { cameras: 1, height: 16, width: 16 }), "a learner is built for the frames the task will give");
    let mut task = wiring::robot::start_arm(&launch, &dir.path().join("arm_cameras.ron"), 0).unwrap();
    assert_eq!(task.frame_layout(), Some(FrameLayout { cameras: 1, height: 16, width: 16 }));
    assert_eq!(task.observation_size(), 6, "the joints only: frames travel beside the observation");

    task.reset(0);
    // Every pixel the crop of one of the two images: all green or all red, never the blue around.
    let seen = |task: &ArmTask| -> [u8; 3] {
        let frames = task.frames().expect("the policy's frames");
        assert_eq!(frames.len(), 16 * 16 * 3);
        let first: [u8; 3] = frames[..3].try_into().unwrap();
        assert!(frames.chunks(3).all(|p| p == first), "one image's crop, whole: {frames:?}");
        assert!(first == [0, 255, 0] || first == [255, 0, 0], "the crop let the background in: {first:?}");
        first
    };
    seen(&task);
    let mut colours = std::collections::HashSet::new();
    for _ in 0..6 {
        task.step(&[0.0; 6]).unwrap();
        colours.insert(seen(&task));
    }
    assert_eq!(colours.len(), 2, "steps see the camera's newest frames as they change: {colours:?}");

    // The camera stops: the files are gone. The next step waits, the operator is told why.
    let live = task.live_status().unwrap();
    for file in ["0000.png", "0001.png", "0002.png"] {
        std::fs::remove_file(frames.join(file)).unwrap();
    }
    let stepping = step_that_waits_for_its_camera(task, &live);
    // Frames again: the step completes with a view from after its action.
    std::fs::write(frames.join("0000.png"), picture([0, 0, 255], [255, 255, 0])).unwrap();
    let (task, result) = stepping.join().unwrap();
    result.unwrap();
    assert_eq!(seen_yellow(&task), [255, 255, 0], "the step that waited sees the camera's new frame");
    assert_eq!(live.snapshot().waiting, Waiting::Nothing);
}

fn seen_yellow(task: &ArmTask) -> [u8; 3] {
    task.frames().unwrap()[..3].try_into().unwrap()
}

/// The same arm seeing a camera another node publishes over ROS 2 (here
/// this test, on its private DDS domain): a `sensor_msgs/Image` topic,
/// resized to the policy's frames; when the publisher goes quiet the step
/// waits, and goes on once images come again.
#[test]
fn the_policy_sees_an_image_topic_and_waits_while_it_is_quiet() {
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::sync::Arc;
    tests::isolate_ros_domain();
    let dir = tempfile::tempdir().unwrap();
    let wire = robot_drivers::pty::PtyPair::spawn().unwrap();
    let _servos = FeetechEmulator::spawn(wire.b(), 1_000_000, &[1, 2, 3, 4, 5, 6]).unwrap();
    let text = format!(
        r#"(
    name: "arm_topic_camera",
    namespace: "so101",
    {}
    cameras: [(name: "desk", source: Topic("desk/image_raw"), width: 16, height: 16)],
    reward: Human,
    task: (actions: Joints((step_rad: [0.02])), observe: [Joints, Camera("desk")], goal: None, reset: [Home]),
    practice: (policy_rate_hz: 10.0, max_episode_steps: 50, home: Some([0.0, 0.0, 0.0, 0.0, 0.0, 0.0]), reset_noise_rad: 0.0),
)"#,
        tests::so101_on_emulated_bus(wire.a())
    );
    let config = dir.path().join("arm_topic_camera.ron");
    std::fs::write(&config, text).unwrap();
    let launch = LaunchFile::load(&config).unwrap();
    // The publisher: a 32x32 rgb8 image of one colour at 30 Hz, quiet while the colour is 0.
    let grey = Arc::new(AtomicU8::new(200));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let publisher = {
        let (grey, stop) = (grey.clone(), stop.clone());
        std::thread::spawn(move || {
            let ctx = r2r::Context::create().unwrap();
            let mut node = r2r::Node::create(ctx, "desk_camera", "so101").unwrap();
            let images = node.create_publisher::<r2r::sensor_msgs::msg::Image>("desk/image_raw", r2r::QosProfile::sensor_data()).unwrap();
            while !stop.load(Ordering::Relaxed) {
                let value = grey.load(Ordering::Relaxed);
                if value > 0 {
                    let now = rrl_types::Clock::now(&rrl_types::SystemClock);
                    let frame = robot_drivers::camera::StampedFrame { stamp: now, sequence: 0, width: 32, height: 32, rgb: vec![value; 32 * 32 * 3] };
                    images.publish(&robot_drivers::image_topic::image_message(&frame, "desk")).unwrap();
                }
                std::thread::sleep(Duration::from_millis(33));
            }
        })
    };
    let mut task = wiring::robot::start_arm(&launch, &config, 0).unwrap();
    assert_eq!(task.frame_layout(), Some(FrameLayout { cameras: 1, height: 16, width: 16 }));
    task.reset(0);
    task.step(&[0.0; 6]).unwrap();
    assert!(task.frames().unwrap().iter().all(|&v| v == 200), "the topic's image, resized");

    let live = task.live_status().unwrap();
    grey.store(0, Ordering::Relaxed);
    let stepping = step_that_waits_for_its_camera(task, &live);
    grey.store(90, Ordering::Relaxed);
    let (task, result) = stepping.join().unwrap();
    result.unwrap();
    assert!(task.frames().unwrap().iter().all(|&v| v == 90), "the step that waited sees the new image");
    stop.store(true, Ordering::Relaxed);
    publisher.join().unwrap();
}
