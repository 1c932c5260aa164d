//! `rrl sim`: the simulated robot of a launch file as a ROS 2 node. The car
//! twin serves its topics as a small car's driver does (`ros_edge::car_node`).
//! The simulated Panda: on
//! the wall clock like a real robot's driver (joint states, `/clock`, its
//! rendered `Sim(..)` cameras, commands through the gate; the pick task's
//! robot also its gripper on `gripper/commands` and the cube's pose on
//! `cube/pose`, as a ros2_control arm with mocap would), or with
//! `--lockstep` as its practice task's node, which an actor steps over
//! ROS 2 (`rrl practice --robot remote`); simulated time then advances
//! only per step.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use robot_drivers::HardwareInterface;
use ros_edge::robot_node::{RenderedCamera, RobotNodeSpec};
use rrl_types::config::{CameraSource, LaunchFile, RobotConfig, SimTask};
use safety::Gate;
use sim_bridge::arm::SimArm;
use sim_bridge::camera::SimCamera;
use sim_bridge::scene_cameras::CameraSpec;

#[derive(clap::Args)]
pub struct SimArgs {
    /// Launch file with a `Sim(..)` robot.
    #[arg(long)]
    pub config: PathBuf,
    /// Stop after this many seconds (default: until SIGINT or SIGTERM, which stop it with its report).
    #[arg(long)]
    pub duration_s: Option<f64>,
    /// Serve the practice task in lockstep to an actor (`rrl practice --robot remote`) instead of running on the wall clock.
    #[arg(long)]
    pub lockstep: bool,
}

impl SimArgs {
    pub fn run(self) -> anyhow::Result<serde_json::Value> {
        crate::stop_signal::listen().context("listen for SIGINT and SIGTERM")?;
        match self.lockstep {
            true => run_lockstep(&self.config, self.duration_s, &crate::stop_signal::requested),
            false => run(&self.config, self.duration_s),
        }
    }
}

/// The simulated robot on the wall clock: the Panda behind its gate, or
/// the car twin as a car's driver.
pub fn run(config: &Path, duration_s: Option<f64>) -> anyhow::Result<serde_json::Value> {
    let launch = LaunchFile::load(config)?;
    let RobotConfig::Sim(sim) = &launch.robot else {
        bail!("{}: `rrl sim` runs simulated robots; this launch file's robot is {}", config.display(), launch.robot.kind_name());
    };
    if sim.task == SimTask::CarCourse {
        // Checked at load: the car twin has its course.
        let course = launch.course.as_ref().context("the car twin's course")?;
        let mut car = sim_bridge::car::CarSim::load(course)?;
        car.place(course.start);
        let cameras = rendered(&launch, &car, config)?;
        let spec = ros_edge::car_node::CarNodeSpec { namespace: &launch.namespace, course, cameras, rate_hz: sim.control_rate_hz, duration_s, stop: crate::stop_signal::requested };
        let mut report = ros_edge::car_node::serve(car, spec)?;
        report["robot"] = serde_json::json!("CarCourse");
        return Ok(report);
    }
    if !matches!(sim.task, SimTask::PandaPickCube | SimTask::PandaReach) {
        bail!("{}: `rrl sim` runs the simulated Panda (PandaPickCube, PandaReach); {:?} is a learning benchmark, see `rrl train`", config.display(), sim.task);
    }
    // The pick task's robot has its gripper, and its scene a cube to pick.
    let pick = sim.task == SimTask::PandaPickCube;
    let mut arm = if pick { SimArm::panda_with_gripper()? } else { SimArm::panda()? };
    arm.configure()?;
    arm.activate()?;
    let period = 1.0 / sim.control_rate_hz;
    let cameras = rendered(&launch, arm.sim_mut(), config)?;
    let gate = Gate::build(&launch.safety, arm.joint_names(), sim.control_rate_hz).with_context(|| format!("{}: safety section", config.display()))?;
    let spec = RobotNodeSpec {
        node_name: "sim_robot",
        namespace: &launch.namespace,
        robot_kind: launch.robot.kind_name(),
        launch_file: config.display().to_string(),
        rate_hz: sim.control_rate_hz,
        duration_s,
        publish_clock: true,
        gripper: pick,
        stop: crate::stop_signal::requested,
    };
    let cameras = ros_edge::robot_node::rendered_cameras(cameras);
    Ok(match pick {
        true => ros_edge::robot_node::serve(arm, gate, spec, |arm| arm.now(), |arm| arm.advance(period), ros_edge::robot_node::both(cameras, ros_edge::robot_node::pick_scene(sim.seed)))?,
        false => ros_edge::robot_node::serve(arm, gate, spec, |arm| arm.now(), |arm| arm.advance(period), cameras)?,
    })
}

/// Every launch-file camera with a `Sim(..)` source, as a camera to render
/// in `scene`: checked before the node starts.
fn rendered(launch: &LaunchFile, scene: &impl sim_bridge::camera::RenderScene, config: &Path) -> anyhow::Result<Vec<RenderedCamera>> {
    let mut cameras = Vec::new();
    for camera in &launch.cameras {
        if let CameraSource::Sim(model_camera) = &camera.source {
            SimCamera::check_name(scene, model_camera).with_context(|| format!("{}: camera `{}`", config.display(), camera.name))?;
            cameras.push(RenderedCamera { name: camera.name.clone(), spec: CameraSpec { model_camera: model_camera.clone(), width: camera.width, height: camera.height, fps: camera.fps } });
        }
    }
    Ok(cameras)
}

/// The simulated robot's practice task (the Panda's or the car twin's, with
/// the launch file's gate) as a node that an actor steps over ROS 2. Serves until `duration_s` has
/// passed, or `until()` says so, or killed.
pub fn run_lockstep(config: &Path, duration_s: Option<f64>, until: &dyn Fn() -> bool) -> anyhow::Result<serde_json::Value> {
    let launch = LaunchFile::load(config)?;
    let started = Instant::now();
    let deadline = duration_s.map(Duration::from_secs_f64);
    let stop = || until() || deadline.is_some_and(|d| started.elapsed() >= d);
    let (counts, task_name) = match wiring::robot::is_car_twin(&launch) {
        true => (ros_edge::task_node::serve(wiring::robot::car_task(&launch, config)?, &launch.namespace, &stop)?, "CarCourse".to_string()),
        false => {
            let (task, variant) = wiring::robot::panda_task(&launch, config)?;
            (ros_edge::task_node::serve(task, &launch.namespace, &stop)?, format!("{variant:?}"))
        }
    };
    let mut report = ros_edge::task_node::counts_json(&counts);
    report["task"] = serde_json::json!(task_name);
    report["namespace"] = serde_json::json!(launch.namespace);
    Ok(report)
}
