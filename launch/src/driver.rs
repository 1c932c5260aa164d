//! `rrl driver`: a real robot of a launch file (serial-servo arm,
//! ros2_control arm over topics, or car) as a ROS 2 node behind its gate,
//! with its OpenCV cameras grabbed on their own threads and published as
//! rgb8 `<camera>/image_raw` (sensor-data QoS, stamped with the capture
//! time).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use robot_drivers::car::TopicCar;
use robot_drivers::io_thread::IoThread;
use robot_drivers::servo_arm::ServoArm;
use robot_drivers::topic_arm::TopicArm;
use robot_drivers::HardwareInterface;
use ros_edge::robot_node::RobotNodeSpec;
use rrl_types::config::{CameraConfig, CameraSource, LaunchFile, RobotConfig};
use rrl_types::{Clock, SystemClock};
use safety::Gate;

#[derive(clap::Args)]
pub struct DriverArgs {
    /// Launch file with a `SerialArm(..)`, `TopicArm(..)` or `Car(..)` robot.
    #[arg(long)]
    pub config: PathBuf,
    /// Stop after this many seconds (default: until SIGINT or SIGTERM, which stop it with its report).
    #[arg(long)]
    pub duration_s: Option<f64>,
}

impl DriverArgs {
    pub fn run(self) -> anyhow::Result<serde_json::Value> {
        crate::stop_signal::listen().context("listen for SIGINT and SIGTERM")?;
        run(&self.config, self.duration_s)
    }
}

pub fn run(config: &Path, duration_s: Option<f64>) -> anyhow::Result<serde_json::Value> {
    let launch = LaunchFile::load(config)?;
    let mut cameras = Vec::new();
    for camera in &launch.cameras {
        match &camera.source {
            // Published by another node already; nothing to drive here.
            CameraSource::Topic(_) => {}
            CameraSource::Sim(_) => bail!("{}: camera `{}` is a simulated camera; `rrl sim` renders those", config.display(), camera.name),
            _ => cameras.push(camera.clone()),
        }
    }
    match &launch.robot {
        RobotConfig::SerialArm(serial) => {
            // The bus's blocking I/O runs on its own thread; the control loop only swaps state and command.
            let arm = IoThread::spawn(ServoArm::new(serial.clone()), launch.robot.control_rate_hz());
            drive(&launch, config, "servo_arm", arm, &format!("the arm on {}", serial.port), duration_s, cameras)
        }
        RobotConfig::TopicArm(topics) => drive(&launch, config, "topic_arm", TopicArm::new(topics.clone(), &launch.namespace), "the arm's topics", duration_s, cameras),
        RobotConfig::Car(car) => drive(&launch, config, "car", TopicCar::new(car.clone(), &launch.namespace), "the car's topics", duration_s, cameras),
        RobotConfig::Sim(_) => bail!("{}: this launch file's robot is simulated; run it with `rrl sim`", config.display()),
    }
}

/// A real robot as a node: connected, activated, then ticked on the wall
/// clock with its OpenCV cameras publishing.
fn drive<H: HardwareInterface + 'static>(launch: &LaunchFile, config: &Path, node_name: &str, mut hardware: H, what: &str, duration_s: Option<f64>, cameras: Vec<CameraConfig>) -> anyhow::Result<serde_json::Value> {
    let rate_hz = launch.robot.control_rate_hz();
    let gate = Gate::build(&launch.safety, hardware.joint_names(), rate_hz).with_context(|| format!("{}: safety section", config.display()))?;
    hardware.configure().with_context(|| format!("connecting to {what}"))?;
    hardware.activate()?;
    let spec = RobotNodeSpec { node_name, namespace: &launch.namespace, robot_kind: launch.robot.kind_name(), launch_file: config.display().to_string(), rate_hz, duration_s, publish_clock: false, gripper: false, stop: crate::stop_signal::requested };
    Ok(ros_edge::robot_node::serve(hardware, gate, spec, |_| SystemClock.now(), |_| {}, ros_edge::robot_node::opencv_cameras(cameras))?)
}
