//! `rrl driver` on a small car with a camera: the car is an rclpy emulator
//! on the far end of its Twist/Odometry/IMU topics, the camera an image
//! sequence on disk. An independent rclpy peer drives the car through the
//! driver's gate and checks the published images; the image-topic camera
//! source reads the same images back in this process.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use robot_drivers::image_topic::ImageTopicCamera;

/// This binary's private ROS domain, set in its own environment (the
/// in-process image-topic camera reads it there; its children inherit it).
/// Every test calls this first, so the variables are set once, before any
/// test of the binary has a thread that spawns processes.
fn private_ros_domain() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::env::set_var("ROS_DOMAIN_ID", (20 + (std::process::id() + 53) % 80).to_string());
        std::env::set_var("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST");
    });
}

#[test]
fn rrl_driver_runs_a_car_with_a_camera_that_an_rclpy_peer_and_an_image_topic_source_read() {
    private_ros_domain();
    let dir = tempfile::tempdir().unwrap();
    let pattern = common::write_colour_sequence(dir.path());
    let config = dir.path().join("car.ron");
    let example = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("files/car.ron")).unwrap();
    let launch = example
        .replace("cmd_vel_topic: \"cmd_vel\"", "cmd_vel_topic: \"/cmd_vel\"")
        .replace("odom_topic: \"odom\"", "odom_topic: \"/odom\"")
        .replace("Some(\"imu/data\")", "Some(\"/imu/data\")")
        .replace("source: Device(0), width: 128, height: 96", &format!("source: ImageSequence(\"{pattern}\"), width: 32, height: 24"));
    assert!(launch.contains("ImageSequence") && launch.contains("\"/odom\""), "the example car launch file changed shape");
    std::fs::write(&config, launch).unwrap();

    let car = Command::new(common::venv_python())
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../robot_drivers/tests/python/twist_car.py"))
        .args(["28", "28"])
        .stdout(Stdio::null())
        .spawn()
        .expect("start the emulated car");
    let mut driver = Command::new(env!("CARGO_BIN_EXE_rrl"))
        .args(["driver", "--config", config.to_str().unwrap(), "--duration-s", "26"])
        .env("RRL_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start rrl driver");

    let camera = ImageTopicCamera::subscribe("front", "", "/car/front/image_raw", 16, 12).unwrap();
    let peer = Command::new(common::venv_python())
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/drive_car.py"))
        .args(["car", "32", "24"])
        .output()
        .expect("run the rclpy peer");
    let mut frames = Vec::new();
    let started = Instant::now();
    while frames.len() < 6 && started.elapsed() < Duration::from_secs(5) {
        if let Some(frame) = camera.newest().take() {
            frames.push(frame);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = driver.kill();
    let _ = driver.wait();
    let mut car = car;
    let _ = car.kill();
    let _ = car.wait();

    let report = String::from_utf8_lossy(&peer.stdout);
    assert!(peer.status.success(), "rclpy peer: {report}\n{}", String::from_utf8_lossy(&peer.stderr));
    assert!(frames.len() >= 6, "the image-topic source got {} frames", frames.len());
    for frame in &frames {
        assert_eq!((frame.width, frame.height, frame.rgb.len()), (16, 12, 16 * 12 * 3));
        let pixel = [frame.rgb[0], frame.rgb[1], frame.rgb[2]];
        assert!([[255, 0, 0], [0, 255, 0], [0, 0, 255]].contains(&pixel), "pixel {pixel:?}");
        assert!(frame.rgb.chunks(3).all(|p| p == pixel), "a solid image stays solid when resized");
    }
    assert!(frames.windows(2).all(|w| w[1].stamp > w[0].stamp), "stamps are the capture times, in order");
}

/// A camera that cannot be opened stops `rrl driver` at start-up, naming
/// the camera and its source.
#[test]
fn rrl_driver_refuses_a_camera_it_cannot_open_naming_it() {
    private_ros_domain();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("car.ron");
    let example = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("files/car.ron")).unwrap();
    std::fs::write(&config, example.replace("source: Device(0)", "source: Path(\"/nonexistent/front.avi\")")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rrl"))
        .args(["driver", "--config", config.to_str().unwrap(), "--duration-s", "5"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "rrl driver must refuse a camera it cannot open");
    assert!(stderr.contains("camera `front`") && stderr.contains("/nonexistent/front.avi"), "{stderr}");
}
