//! The car twin: a small differential-drive car (1/10 scale: 36 x 18 cm,
//! 2.4 kg, 5 cm wheels, motors torque-limited to about 5 m/s² and 3 m/s)
//! in a walled arena with cones, racing the launch file's checkpoints
//! (FastRLAP's task; the rules live in `rrl_types::course`, which a real
//! car shares).
//!
//! The model is written here from the course, not loaded from a package.
//! The car is driven as a real one is, by a twist (forward speed, yaw
//! rate) through the safety gate at the control rate, and it reports what
//! a real car's driver does: odometry (pose, forward speed, yaw rate) and
//! an IMU (acceleration, gyro).

use std::fmt::Write as _;
use std::sync::Arc;

use mujoco_rs::prelude::{MjData, MjModel, MjtObjBase};
use rrl_types::config::{CourseConfig, CAR_TWIN_CAMERAS};
use rrl_types::course::{throttle_and_steering, yaw_of, yaw_quaternion, ActionError, CarReading, CourseProgress, ACTION_HIGH, ACTION_LOW, COURSE_OBSERVATION_SIZE};
use rrl_types::{CommandMode, Environment, GateTick, JointCommand, JointState, JointVec, PracticeTask, SafetyEvents, Step, TickDecimator, Timestamp};
use safety::Gate;

use crate::assets::SimError;
use crate::camera::{CameraRig, RenderScene};
use crate::gated::SimGate;

/// Seconds of simulated time per environment step (10 Hz).
pub const CAR_CONTROL_DT: f64 = 0.1;
/// Physics step, s.
const PHYSICS_DT: f64 = 0.002;
const WHEEL_RADIUS: f64 = 0.05;
/// Distance between the wheels, m.
const TRACK: f64 = 0.23;
/// Radius of a cone, m.
pub const CONE_RADIUS: f64 = 0.08;
/// The car counts as overturned when its up axis tilts this far from vertical (cos).
const UPRIGHT_COS: f64 = 0.5;

/// The MJCF of the car in `course`'s arena: walls around it, its cones,
/// the checkpoints as flat discs that do not collide, and the car at the
/// course's start with a forward camera (`front`).
pub fn course_mjcf(course: &CourseConfig) -> String {
    let (hx, hy) = (course.arena.half_length_m, course.arena.half_width_m);
    let (sx, sy, syaw) = course.start;
    let mut world = String::new();
    // Walls: 10 cm thick, 30 cm high, inner faces on the arena's edges.
    for (name, x, y, sx_, sy_) in [("north", 0.0, hy + 0.05, hx + 0.1, 0.05), ("south", 0.0, -hy - 0.05, hx + 0.1, 0.05), ("east", hx + 0.05, 0.0, 0.05, hy + 0.1), ("west", -hx - 0.05, 0.0, 0.05, hy + 0.1)] {
        let _ = writeln!(world, r#"    <geom name="wall_{name}" type="box" pos="{x} {y} 0.15" size="{sx_} {sy_} 0.15" rgba="0.75 0.75 0.72 1"/>"#);
    }
    for (i, (x, y)) in course.cones.iter().enumerate() {
        let _ = writeln!(world, r#"    <geom name="cone_{i}" type="cylinder" pos="{x} {y} 0.12" size="{CONE_RADIUS} 0.12" rgba="1 0.45 0 1"/>"#);
    }
    for (i, (x, y)) in course.checkpoints.iter().enumerate() {
        let _ = writeln!(world, r#"    <site name="checkpoint_{i}" type="cylinder" pos="{x} {y} 0.002" size="{} 0.002" rgba="0.1 0.9 0.2 0.35"/>"#, course.checkpoint_radius_m);
    }
    let camera = CAR_TWIN_CAMERAS[0];
    format!(
        r#"<mujoco model="rrl_car_course">
  <compiler angle="radian"/>
  <option timestep="{PHYSICS_DT}" integrator="implicitfast"/>
  <visual><global offwidth="640" offheight="480"/><quality shadowsize="0"/></visual>
  <asset>
    <texture name="grid" type="2d" builtin="checker" width="256" height="256" rgb1="0.32 0.34 0.37" rgb2="0.27 0.29 0.32"/>
    <material name="floor" texture="grid" texrepeat="{tx} {ty}"/>
  </asset>
  <default><geom friction="1.0 0.005 0.0001"/></default>
  <worldbody>
    <light pos="0 0 6" dir="0 0 -1" directional="true"/>
    <geom name="floor" type="plane" size="{fx} {fy} 0.1" material="floor"/>
{world}    <body name="car" pos="{sx} {sy} 0.06" euler="0 0 {syaw}">
      <freejoint name="car"/>
      <geom name="chassis" type="box" size="0.18 0.09 0.03" mass="2.0" rgba="0.1 0.3 0.8 1"/>
      <geom name="caster_front" type="sphere" pos="0.14 0 -0.035" size="0.025" mass="0.05" condim="1" priority="1" rgba="0.2 0.2 0.2 1"/>
      <geom name="caster_back" type="sphere" pos="-0.14 0 -0.035" size="0.025" mass="0.05" condim="1" priority="1" rgba="0.2 0.2 0.2 1"/>
      <site name="imu" pos="0 0 0"/>
      <camera name="{camera}" pos="0.19 0 0.05" xyaxes="0 -1 0 0 0 1" fovy="75"/>
      <body name="wheel_left" pos="0 {half_track} -0.01">
        <joint name="wheel_left" type="hinge" axis="0 1 0" damping="0.0005"/>
        <geom type="cylinder" size="{WHEEL_RADIUS} 0.015" zaxis="0 1 0" mass="0.15" friction="1.5 0.01 0.001" rgba="0.1 0.1 0.1 1"/>
      </body>
      <body name="wheel_right" pos="0 -{half_track} -0.01">
        <joint name="wheel_right" type="hinge" axis="0 1 0" damping="0.0005"/>
        <geom type="cylinder" size="{WHEEL_RADIUS} 0.015" zaxis="0 1 0" mass="0.15" friction="1.5 0.01 0.001" rgba="0.1 0.1 0.1 1"/>
      </body>
    </body>
  </worldbody>
  <actuator>
    <velocity name="left" joint="wheel_left" kv="0.2" ctrlrange="-{top} {top}" forcerange="-0.3 0.3"/>
    <velocity name="right" joint="wheel_right" kv="0.2" ctrlrange="-{top} {top}" forcerange="-0.3 0.3"/>
  </actuator>
  <sensor>
    <accelerometer name="accelerometer" site="imu"/>
    <gyro name="gyro" site="imu"/>
  </sensor>
</mujoco>
"#,
        tx = (hx * 2.0).ceil(),
        ty = (hy * 2.0).ceil(),
        fx = hx + 1.0,
        fy = hy + 1.0,
        half_track = TRACK / 2.0,
        top = rrl_types::config::TWIN_TOP_SPEED_MPS / WHEEL_RADIUS,
    )
}

/// The car twin's physics: its pose, wheels and IMU.
pub struct CarSim {
    data: MjData<Arc<MjModel>>,
    qpos: usize,
    dof: usize,
    accelerometer: usize,
    gyro: usize,
    left: usize,
    right: usize,
}

impl CarSim {
    pub fn load(course: &CourseConfig) -> Result<CarSim, SimError> {
        let bad = |reason: String| SimError::ModelLoad { path: "<car course>".into(), reason };
        let model = Arc::new(MjModel::from_xml_string(&course_mjcf(course)).map_err(|e| bad(e.to_string()))?);
        let id = |kind, name: &str| model.name_to_id(kind, name).ok_or_else(|| bad(format!("no `{name}`")));
        let joint = id(MjtObjBase::mjOBJ_JOINT, "car")?;
        let (qpos, dof) = (model.jnt_qposadr()[joint] as usize, model.jnt_dofadr()[joint] as usize);
        let accelerometer = model.sensor_adr()[id(MjtObjBase::mjOBJ_SENSOR, "accelerometer")?] as usize;
        let gyro = model.sensor_adr()[id(MjtObjBase::mjOBJ_SENSOR, "gyro")?] as usize;
        let (left, right) = (id(MjtObjBase::mjOBJ_ACTUATOR, "left")?, id(MjtObjBase::mjOBJ_ACTUATOR, "right")?);
        let mut sim = CarSim { data: MjData::new(model), qpos, dof, accelerometer, gyro, left, right };
        sim.data.forward();
        Ok(sim)
    }

    /// Everything back at rest, the car at `(x, y, yaw)`.
    pub fn place(&mut self, (x, y, yaw): (f64, f64, f64)) {
        self.data.reset();
        let q = self.qpos;
        let (w, z) = yaw_quaternion(yaw);
        let pose = [x, y, 0.06, w, 0.0, 0.0, z];
        self.data.qpos_mut()[q..q + 7].copy_from_slice(&pose);
        self.data.forward();
    }

    pub fn now(&self) -> Timestamp {
        Timestamp::from_secs_f64(self.data.time())
    }

    /// Asks the wheels for forward speed `linear` (m/s) and yaw rate
    /// `angular` (rad/s); the motors' torque limits decide how fast they get there.
    pub fn drive(&mut self, linear: f64, angular: f64) {
        let (left, right) = (linear - angular * TRACK / 2.0, linear + angular * TRACK / 2.0);
        let ctrl = self.data.ctrl_mut();
        ctrl[self.left] = left / WHEEL_RADIUS;
        ctrl[self.right] = right / WHEEL_RADIUS;
    }

    pub fn step(&mut self) {
        self.data.step();
    }

    /// Runs the physics for one control tick of `seconds` (whole physics
    /// steps of 2 ms). Returns the mean horizontal acceleration over it, in
    /// the car's frame (what an IMU's low-pass filter reports at that
    /// rate), and the signed distance driven. Both the in-process twin and
    /// its driver node tick this way, so a bump and the observed
    /// acceleration are the same on either.
    pub fn advance(&mut self, seconds: f64) -> ((f64, f64), f64) {
        let steps = (seconds / PHYSICS_DT).round().max(1.0) as usize;
        let (mut sum, mut distance) = ((0.0, 0.0), 0.0);
        for _ in 0..steps {
            self.step();
            let r = self.reading();
            sum = (sum.0 + r.accel.0, sum.1 + r.accel.1);
            distance += r.speed * PHYSICS_DT;
        }
        ((sum.0 / steps as f64, sum.1 / steps as f64), distance)
    }

    /// What odometry and the IMU would say now.
    pub fn reading(&self) -> CarReading {
        let (q, v) = (self.data.qpos(), self.data.qvel());
        let yaw = yaw_of(q[self.qpos + 3], q[self.qpos + 4], q[self.qpos + 5], q[self.qpos + 6]);
        // A free joint's linear velocity is in the world frame, its angular one in the body's.
        let speed = v[self.dof] * yaw.cos() + v[self.dof + 1] * yaw.sin();
        let sensors = self.data.sensordata();
        CarReading {
            time_s: self.data.time(),
            x: q[self.qpos],
            y: q[self.qpos + 1],
            yaw,
            speed,
            yaw_rate: sensors[self.gyro + 2],
            accel: (sensors[self.accelerometer], sensors[self.accelerometer + 1]),
        }
    }

    /// How far the car's up axis is from vertical, as its cosine (1 upright).
    pub fn uprightness(&self) -> f64 {
        let q = &self.data.qpos()[self.qpos + 3..self.qpos + 7];
        1.0 - 2.0 * (q[1] * q[1] + q[2] * q[2])
    }
}

impl RenderScene for CarSim {
    fn data(&self) -> &MjData<Arc<MjModel>> {
        &self.data
    }
    fn data_mut(&mut self) -> &mut MjData<Arc<MjModel>> {
        &mut self.data
    }
}

/// Checkpoint racing on the twin: actions (throttle, steering) in [-1, 1]
/// scaled by the course's full speed and yaw rate, through the gate (the
/// car's two velocity "joints") at the control rate.
pub struct CarTask {
    sim: CarSim,
    progress: CourseProgress,
    gate: Option<SimGate>,
    /// Control ticks per 0.1 s step.
    ticks_per_step: usize,
    /// The last tick's mean horizontal acceleration (the IMU's newest).
    accel: (f64, f64),
    /// Signed distance travelled (the gate's position of `linear_x`).
    odometer: f64,
    observation: [f64; COURSE_OBSERVATION_SIZE],
    steps: u32,
    max_episode_steps: u32,
    /// The next reset puts the car back at the start (the first, or after it overturned).
    needs_placing: bool,
    overturned: bool,
    /// Cameras rendered after every reset and step, for pixel learners.
    cameras: Option<CameraRig>,
    frames: Vec<u8>,
    /// A frame that failed to render at a reset, reported by the next step.
    render_error: Option<SimError>,
}

/// Physics steps in one 0.1 s step of the task.
const STEP_PHYSICS: usize = 50;

impl CarTask {
    pub fn new(course: &CourseConfig) -> Result<CarTask, SimError> {
        let sim = CarSim::load(course)?;
        let reading = sim.reading();
        let mut progress = CourseProgress::new(course.clone()).map_err(|e| SimError::ModelLoad { path: "<car course>".into(), reason: e.to_string() })?;
        progress.restart(&reading);
        let mut task = CarTask { sim, progress, gate: None, ticks_per_step: 10, accel: (0.0, 0.0), odometer: 0.0, observation: [0.0; COURSE_OBSERVATION_SIZE], steps: 0, max_episode_steps: 300, needs_placing: true, overturned: false, cameras: None, frames: Vec::new(), render_error: None };
        task.observe();
        Ok(task)
    }

    /// The task observed by the twin's named cameras (`front`) at `side` x
    /// `side` as well as by its state, rendered on a thread of their own.
    pub fn with_cameras(course: &CourseConfig, cameras: &[String], side: u32) -> Result<CarTask, SimError> {
        let mut task = Self::new(course)?;
        let scene = course.clone();
        let rig = CameraRig::start_with(cameras, side, move || CarSim::load(&scene))?;
        task.frames = vec![0; rig.layout().bytes()];
        task.cameras = Some(rig);
        task.observe();
        match task.render_error.take() {
            Some(error) => Err(error),
            None => Ok(task),
        }
    }

    /// Puts `gate` (for the joints `linear_x`, `angular_z` in velocity
    /// mode, built for `control_rate_for(hz)`) between the policy and the
    /// wheels, ticking at that rate.
    pub fn set_gate(&mut self, gate: Gate, hz: f64) {
        self.gate = Some(SimGate::new(gate));
        self.ticks_per_step = Self::ticks_for(hz);
    }

    /// The control rate the gate ticks at.
    pub fn control_rate_hz(&self) -> f64 {
        self.ticks_per_step as f64 / CAR_CONTROL_DT
    }

    /// Whole ticks per step, evenly spaced (a divisor of its 50 physics
    /// steps), nearest to `hz`.
    fn ticks_for(hz: f64) -> usize {
        let wanted = hz * CAR_CONTROL_DT;
        (1..=STEP_PHYSICS).filter(|t| STEP_PHYSICS % t == 0).min_by(|a, b| (*a as f64 - wanted).abs().total_cmp(&(*b as f64 - wanted).abs())).unwrap_or(10)
    }

    /// The control rate the twin runs when asked for `hz` (10, 20, 50,
    /// 100, 250 or 500 Hz, the nearest). Build the gate for this rate.
    pub fn control_rate_for(hz: f64) -> f64 {
        Self::ticks_for(hz) as f64 / CAR_CONTROL_DT
    }

    /// Records the gate's ticks for the risk critic; after `set_gate`.
    pub fn record_gate_ticks(&mut self, decimator: TickDecimator) {
        debug_assert!(self.gate.is_some(), "record_gate_ticks needs the gate: call set_gate first");
        if let Some(gate) = self.gate.as_mut() {
            gate.record_ticks(decimator);
        }
    }

    pub fn set_max_episode_steps(&mut self, steps: u32) {
        self.max_episode_steps = steps.max(1);
    }

    pub fn sim(&self) -> &CarSim {
        &self.sim
    }

    /// Puts the car at `pose` (x, y, yaw) at rest, as though it had been carried there.
    pub fn place(&mut self, pose: (f64, f64, f64)) {
        self.sim.place(pose);
        self.odometer = 0.0;
        self.accel = (0.0, 0.0);
        if let Some(gate) = self.gate.as_mut() {
            gate.restart();
        }
        self.progress.start_lap(&self.reading());
        self.observe();
    }

    pub fn progress(&self) -> &CourseProgress {
        &self.progress
    }

    /// What odometry and the IMU say now: the IMU's acceleration is the
    /// last tick's mean, as a driver publishes it.
    fn reading(&self) -> CarReading {
        CarReading { accel: self.accel, ..self.sim.reading() }
    }

    fn observe(&mut self) {
        self.progress.observe(&self.reading(), &mut self.observation);
        if let Some(rig) = self.cameras.as_mut() {
            if let Err(error) = rig.render(&self.sim, &mut self.frames) {
                self.render_error.get_or_insert(error);
            }
        }
    }

    /// One gate tick: the requested twist, limited, to the wheels.
    fn gated_drive(&mut self, linear: f64, angular: f64) {
        let Some(gate) = self.gate.as_mut() else {
            self.sim.drive(linear, angular);
            return;
        };
        let r = self.sim.reading();
        let now = self.sim.now();
        let mut state = JointState::zeros(2);
        state.stamp = now;
        state.position = JointVec::from_slice(&[self.odometer, r.yaw]).expect("2 joints");
        state.velocity = JointVec::from_slice(&[r.speed, r.yaw_rate]).expect("2 joints");
        let command = JointCommand { stamp: now, mode: CommandMode::Velocity, values: JointVec::from_slice(&[linear, angular]).expect("2 joints") };
        let out = gate.check(&state, &command);
        match out.values.as_slice() {
            [v, w] => self.sim.drive(*v, *w),
            // Nothing may be sent: a velocity-driven car stops.
            _ => self.sim.drive(0.0, 0.0),
        }
    }
}

impl Environment for CarTask {
    type Error = SimError;

    fn observation_size(&self) -> usize {
        COURSE_OBSERVATION_SIZE
    }
    fn action_size(&self) -> usize {
        2
    }
    fn action_low(&self) -> &[f64] {
        &ACTION_LOW
    }
    fn action_high(&self) -> &[f64] {
        &ACTION_HIGH
    }
    fn observation(&self) -> &[f64] {
        &self.observation
    }

    fn reset(&mut self, _seed: u64) -> &[f64] {
        self.reset_next()
    }

    /// The car stays where the last episode left it (as a real car does),
    /// except the first time and after it overturned: then at the start.
    fn reset_next(&mut self) -> &[f64] {
        if std::mem::take(&mut self.needs_placing) {
            self.place(self.progress.course().start);
            let reading = self.sim.reading();
            self.progress.restart(&reading);
        } else {
            self.progress.start_lap(&self.reading());
            if let Some(gate) = self.gate.as_mut() {
                gate.take_events();
            }
        }
        self.steps = 0;
        self.overturned = false;
        self.observe();
        &self.observation
    }

    fn step(&mut self, action: &[f64]) -> Result<Step, SimError> {
        let (throttle, steer) = throttle_and_steering(action).map_err(|e| match e {
            ActionError::Size { got } => SimError::ActionSize { task: "CarCourse", expected: 2, got },
            ActionError::NonFinite { index, value } => SimError::NonFiniteAction { task: "CarCourse", index, value },
        })?;
        let (linear, angular) = self.progress.course().twist((throttle, steer));
        let tick_s = CAR_CONTROL_DT / self.ticks_per_step as f64;
        let mut peak_accel: f64 = 0.0;
        for _ in 0..self.ticks_per_step {
            self.gated_drive(linear, angular);
            let (accel, distance) = self.sim.advance(tick_s);
            (self.accel, self.odometer) = (accel, self.odometer + distance);
            peak_accel = peak_accel.max(self.accel.0.hypot(self.accel.1));
        }
        let step = self.progress.step(&self.reading(), throttle, Some(peak_accel));
        self.steps += 1;
        self.observe();
        if let Some(error) = self.render_error.take() {
            return Err(error);
        }
        if self.sim.uprightness() < UPRIGHT_COS {
            // Only a human could right a real car; the twin is put back at the start.
            self.overturned = true;
            self.needs_placing = true;
        }
        Ok(Step { reward: step.reward, terminated: false, truncated: step.lap || self.overturned || self.steps >= self.max_episode_steps })
    }

    /// A lap: every checkpoint passed since the episode began.
    fn success(&self) -> Option<bool> {
        Some(self.progress.lap_done())
    }

    fn frames(&self) -> Option<&[u8]> {
        self.cameras.is_some().then_some(&self.frames[..])
    }

    fn frame_layout(&self) -> Option<rrl_types::FrameLayout> {
        self.cameras.as_ref().map(CameraRig::layout)
    }
}

impl PracticeTask for CarTask {
    /// Reverse and turn toward the next checkpoint.
    fn recovery_actions(&self) -> Vec<Vec<f64>> {
        self.progress.recovery(&self.reading()).iter().map(|a| a.to_vec()).collect()
    }

    fn needs_recovery(&self) -> bool {
        self.progress.needs_recovery()
    }

    fn take_safety_events(&mut self) -> SafetyEvents {
        self.gate.as_mut().map(SimGate::take_events).unwrap_or_default()
    }

    fn take_gate_ticks(&mut self, out: &mut Vec<GateTick>) {
        if let Some(gate) = self.gate.as_mut() {
            gate.take_ticks(out);
        }
    }

    fn offer_risk_critic(&mut self, layers: &[(Vec<Vec<f32>>, Vec<f32>)], acting: bool) -> Result<(), String> {
        self.gate.as_mut().ok_or("this task has no safety gate")?.offer_risk_critic(layers, acting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rrl_types::config::ArenaConfig;
    use rrl_types::course::pursue;

    pub fn oval() -> CourseConfig {
        CourseConfig {
            checkpoints: vec![(1.8, 0.0), (0.0, 1.1), (-1.8, 0.0), (0.0, -1.1)],
            checkpoint_radius_m: 0.4,
            arena: ArenaConfig { half_length_m: 2.75, half_width_m: 1.75 },
            cones: vec![(0.0, 0.0), (0.5, 0.0), (-0.5, 0.0)],
            start: (0.0, -1.1, 0.0),
            max_speed_mps: 1.5,
            max_yaw_rate_rps: 3.0,
            collision_penalty: 1.0,
            bump_mps2: 12.0,
            stuck_after_s: 1.0,
            stuck_distance_m: 0.05,
        }
    }

    #[test]
    fn full_throttle_drives_forward_near_full_speed_and_steering_turns_left() {
        let mut task = CarTask::new(&oval()).unwrap();
        task.reset(0);
        for _ in 0..10 {
            task.step(&[1.0, 0.0]).unwrap();
        }
        let r = task.sim().reading();
        assert!(r.speed > 1.3 && r.speed < 1.6, "1 s of full throttle: {r:?}");
        assert!(r.x > 0.8 && (r.y - oval().start.1).abs() < 0.05 && r.yaw.abs() < 0.05, "straight along +x: {r:?}");
        for _ in 0..5 {
            task.step(&[0.3, 1.0]).unwrap();
        }
        let r = task.sim().reading();
        assert!(r.yaw > 0.5 && r.yaw_rate > 1.0, "a left turn: {r:?}");
    }

    #[test]
    fn the_scripted_driver_laps_the_course_without_a_collision() {
        let mut task = CarTask::new(&oval()).unwrap();
        task.set_max_episode_steps(400);
        let mut laps = Vec::new();
        task.reset(0);
        for _ in 0..3 {
            let mut steps = 0;
            loop {
                let action = pursue(task.observation());
                let step = task.step(&action).unwrap();
                steps += 1;
                if step.done() {
                    break;
                }
            }
            assert_eq!(task.success(), Some(true), "lap {} not finished in {steps} steps", laps.len());
            laps.push(steps);
            task.reset_next();
        }
        eprintln!("scripted laps, steps: {laps:?}");
        assert_eq!(task.progress().collisions(), 0, "laps {laps:?}");
        assert!(laps.iter().all(|&s| s < 200), "laps of under 20 s: {laps:?}");
    }

    #[test]
    fn driving_into_a_wall_is_a_collision_and_the_recovery_frees_the_car() {
        let mut course = oval();
        course.start = (2.0, 0.0, 0.0);
        let mut task = CarTask::new(&course).unwrap();
        task.reset(0);
        let mut hit = None;
        for k in 0..30 {
            task.step(&[1.0, 0.0]).unwrap();
            if task.needs_recovery() {
                hit = Some(k);
                break;
            }
        }
        assert!(hit.is_some(), "the car must notice the east wall: {:?}", task.sim().reading());
        assert_eq!(task.progress().collisions(), 1, "a bump, felt at once (step {hit:?})");
        let pinned = task.sim().reading();
        for action in task.recovery_actions() {
            task.step(&action).unwrap();
        }
        let freed = task.sim().reading();
        assert!(freed.x < pinned.x - 0.2, "the recovery backs away from the wall: {pinned:?} -> {freed:?}");
        task.reset_next();
        assert!(!task.needs_recovery(), "the next lap starts clean");
        // It was not carried back: it goes on from where the recovery left it.
        assert!((task.sim().reading().x - freed.x).abs() < 1e-9);
    }

    #[test]
    fn the_front_camera_sees_the_course_change_as_the_car_drives() {
        let mut task = CarTask::with_cameras(&oval(), &["front".to_string()], 32).unwrap();
        task.reset(0);
        assert_eq!(task.frame_layout(), Some(rrl_types::FrameLayout { cameras: 1, height: 32, width: 32 }));
        let first = task.frames().unwrap().to_vec();
        let (lo, hi) = first.iter().fold((255u8, 0u8), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        assert!(hi - lo > 60, "a real view has contrast: {lo}..{hi}");
        for _ in 0..8 {
            task.step(&[0.3, 1.0]).unwrap();
        }
        let turned = task.frames().unwrap();
        let changed = first.iter().zip(turned).map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs()).sum::<i32>() as f64 / first.len() as f64;
        assert!(changed > 5.0, "turning changes the view: {changed}");
        assert!(CarTask::with_cameras(&oval(), &["rear".to_string()], 32).err().unwrap().to_string().contains("rear"));
    }

    #[test]
    fn bad_actions_are_refused() {
        let mut task = CarTask::new(&oval()).unwrap();
        task.reset(0);
        assert!(matches!(task.step(&[0.0]), Err(SimError::ActionSize { .. })));
        assert!(matches!(task.step(&[f64::NAN, 0.0]), Err(SimError::NonFiniteAction { index: 0, .. })));
    }
}
