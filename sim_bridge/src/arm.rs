//! The simulated Franka Panda (gym-hil's MJCF scene, torque-driven joints)
//! behind robot_drivers' hardware interface: the same lifecycle, state and
//! command types as a real arm, with a joint impedance controller standing
//! in for the robot's own (torque = Kp·(q* − q) − Kd·q̇ + gravity and
//! Coriolis compensation), and simulated time as its clock.

use std::sync::Arc;

use mujoco_rs::prelude::{MjData, MjModel, MjtObjBase};
use nalgebra::SMatrix;
use robot_drivers::hardware::{check_write, transition, HardwareError, HardwareInterface, Lifecycle};
use rrl_types::{CommandMode, JointCommand, JointState, JointVec, Timestamp};

use crate::assets::{load_model, AssetPackage, SimError};

/// The Panda's arm joints as the MJCF names them.
pub const PANDA_JOINTS: [&str; 7] = ["joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "joint7"];

/// The ready pose gym-hil's pick task starts from, gripper pointing down.
pub const PANDA_HOME: [f64; 7] = [0.0, 0.195, 0.0, -2.43, 0.0, 2.62, 0.785];

/// Shadow map side for offscreen cameras, pixels (also used by the Python
/// peer of `rrl bench sim`).
pub const SHADOW_MAP_SIZE: i32 = 1024;

/// How offscreen cameras of a loaded scene render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderQuality {
    /// Shadows (1024² map) and 4x multisampling: camera streams people look at.
    Display,
    /// No shadows, no multisampling: small frames for a learner, about 6x
    /// faster on a software renderer (3.6 -> 23.7 pairs of 64x64 frames/s
    /// on a 2-core VM); the scene, lights and colours are the same.
    Learning,
}

/// The Robotiq driver joint's range in the MJCF, rad.
const GRIPPER_DRIVER_RANGE: f64 = 0.8;

/// The gripper as a joint of `SimArm::panda_with_gripper`.
pub const GRIPPER_JOINT: &str = "gripper";

/// Joint stiffness and damping of the impedance controller (Franka's
/// example values for joint impedance control).
const KP: [f64; 7] = [600.0, 600.0, 600.0, 600.0, 250.0, 150.0, 50.0];
const KD: [f64; 7] = [50.0, 50.0, 50.0, 20.0, 20.0, 20.0, 10.0];

/// The Panda scene itself: physics, joint and site indices, and the joint
/// impedance controller, shared by the hardware-interface arm and the tasks.
pub struct PandaSim {
    pub(crate) data: MjData<Arc<MjModel>>,
    qpos_index: [usize; 7],
    dof_index: [usize; 7],
    torque_limit: [f64; 7],
    timestep: f64,
    pinch_site: usize,
    block_qpos: usize,
    block_joint: usize,
    gripper_actuator: usize,
    /// The gripper's driver joint: its position over its range is the closure.
    driver_qpos: usize,
    driver_dof: usize,
    /// Scratch space for the whole scene's mass matrix (nv x nv).
    mass_scratch: Vec<f64>,
}

impl PandaSim {
    pub fn load() -> Result<PandaSim, SimError> {
        Self::load_with(RenderQuality::Display)
    }

    /// The scene with its cameras set up to render at `quality`.
    pub fn load_with(quality: RenderQuality) -> Result<PandaSim, SimError> {
        let path = AssetPackage::GymHil.path("scene.xml")?;
        let mut model = load_model(&path)?;
        // The scene asks for a 4096² shadow map; at 1024² (MuJoCo's default)
        // Mesa's software renderer draws 128x128 frames about twice as fast
        // (3.6 -> 6.4 frames/s on a 2-core VM) and the shadows stay.
        // Physics is unaffected.
        // SAFETY: a plain field of the model, written before any data or
        // renderer uses the model.
        unsafe {
            let visual = &mut model.ffi_mut().vis.quality;
            match quality {
                RenderQuality::Display => visual.shadowsize = SHADOW_MAP_SIZE,
                RenderQuality::Learning => {
                    visual.shadowsize = 0;
                    visual.offsamples = 0;
                }
            }
        }
        let model = Arc::new(model);
        let missing = |what: &str| SimError::ModelLoad { path: path.clone(), reason: format!("no {what}") };
        let joint = |name: &str| model.name_to_id(MjtObjBase::mjOBJ_JOINT, name).ok_or_else(|| missing(&format!("joint `{name}`")));
        let mut qpos_index = [0; 7];
        let mut dof_index = [0; 7];
        for (i, name) in PANDA_JOINTS.iter().enumerate() {
            let id = joint(name)?;
            qpos_index[i] = model.jnt_qposadr()[id] as usize;
            dof_index[i] = model.jnt_dofadr()[id] as usize;
        }
        let block_joint = joint("block")?;
        let block_qpos = model.jnt_qposadr()[block_joint] as usize;
        let pinch_site = model.name_to_id(MjtObjBase::mjOBJ_SITE, "pinch").ok_or_else(|| missing("site `pinch`"))?;
        let gripper_actuator = model.name_to_id(MjtObjBase::mjOBJ_ACTUATOR, "fingers_actuator").ok_or_else(|| missing("actuator `fingers_actuator`"))?;
        let driver = joint("right_driver_joint")?;
        let (driver_qpos, driver_dof) = (model.jnt_qposadr()[driver] as usize, model.jnt_dofadr()[driver] as usize);
        let torque_limit = std::array::from_fn(|i| model.actuator_ctrlrange()[i][1]);
        let timestep = model.ffi().opt.timestep;
        let nv = model.ffi().nv as usize;
        let mut sim = PandaSim { data: MjData::new(model), qpos_index, dof_index, torque_limit, timestep, pinch_site, block_qpos, block_joint, gripper_actuator, driver_qpos, driver_dof, mass_scratch: vec![0.0; nv * nv] };
        sim.reset_to(&PANDA_HOME);
        Ok(sim)
    }


    /// Generalised velocities of the whole scene, into `out`.
    pub fn copy_velocities(&self, out: &mut Vec<f64>) {
        out.clear();
        out.extend_from_slice(self.data.qvel());
    }


    /// All state back to the model's defaults, the arm at rest at `pose`.
    pub fn reset_to(&mut self, pose: &[f64; 7]) {
        self.data.reset();
        for (i, &q) in pose.iter().enumerate() {
            self.data.qpos_mut()[self.qpos_index[i]] = q;
        }
        self.data.forward();
    }

    pub fn timestep(&self) -> f64 {
        self.timestep
    }

    /// Simulated time.
    pub fn now(&self) -> Timestamp {
        Timestamp::from_secs_f64(self.data.time())
    }

    pub fn joint_positions(&self) -> [f64; 7] {
        std::array::from_fn(|i| self.data.qpos()[self.qpos_index[i]])
    }

    pub fn joint_velocities(&self) -> [f64; 7] {
        std::array::from_fn(|i| self.data.qvel()[self.dof_index[i]])
    }

    /// Torques the controller applied in the last physics step.
    pub fn joint_torques(&self) -> [f64; 7] {
        std::array::from_fn(|i| self.data.ctrl()[i])
    }

    /// Between the fingertips, in the world frame.
    pub fn pinch_position(&self) -> [f64; 3] {
        self.data.site_xpos()[self.pinch_site]
    }

    pub fn pinch_orientation(&self) -> [f64; 9] {
        self.data.site_xmat()[self.pinch_site]
    }

    /// The pinch site's Jacobian for the arm joints: translational rows
    /// 0..3, rotational rows 3..6.
    pub fn pinch_jacobian(&self) -> SMatrix<f64, 6, 7> {
        let (jp, jr) = self.data.jac_site(true, true, self.pinch_site);
        let nv = self.data.qvel().len();
        SMatrix::from_fn(|r, c| {
            let full = if r < 3 { &jp } else { &jr };
            full[(r % 3) * nv + self.dof_index[c]]
        })
    }

    pub fn block_position(&self) -> [f64; 3] {
        let q = self.data.qpos();
        [q[self.block_qpos], q[self.block_qpos + 1], q[self.block_qpos + 2]]
    }

    /// Puts the cube at rest, upright, at (x, y, z): what a person does
    /// who puts it back on the table.
    pub fn put_block(&mut self, position: [f64; 3]) {
        let (qpos, dof) = (self.block_qpos, self.data.model().jnt_dofadr()[self.block_joint] as usize);
        let q = self.data.qpos_mut();
        q[qpos..qpos + 3].copy_from_slice(&position);
        q[qpos + 3..qpos + 7].copy_from_slice(&[1.0, 0.0, 0.0, 0.0]);
        self.data.qvel_mut()[dof..dof + 6].fill(0.0);
        self.data.forward();
    }

    pub fn place_block(&mut self, x: f64, y: f64) {
        let z = self.block_position()[2];
        let q = self.data.qpos_mut();
        q[self.block_qpos] = x;
        q[self.block_qpos + 1] = y;
        q[self.block_qpos + 2] = z;
        self.data.forward();
    }

    /// Gripper command in [0, 1] (open to closed).
    pub fn set_gripper(&mut self, closed: f64) {
        self.data.ctrl_mut()[self.gripper_actuator] = 255.0 * closed.clamp(0.0, 1.0);
    }

    pub fn gripper(&self) -> f64 {
        self.data.ctrl()[self.gripper_actuator] / 255.0
    }

    /// The fingers' measured closure, 0 open … 1 closed (they stop short
    /// of 1 on an object between them), and its rate.
    pub fn gripper_closure(&self) -> (f64, f64) {
        (self.data.qpos()[self.driver_qpos] / GRIPPER_DRIVER_RANGE, self.data.qvel()[self.driver_dof] / GRIPPER_DRIVER_RANGE)
    }

    /// The cube's orientation quaternion (w, x, y, z).
    pub fn block_orientation(&self) -> [f64; 4] {
        let q = self.data.qpos();
        std::array::from_fn(|k| q[self.block_qpos + 3 + k])
    }

    /// The arm's joint-space mass matrix (the 7x7 block of the scene's).
    pub fn arm_mass_matrix(&mut self) -> SMatrix<f64, 7, 7> {
        self.data.full_m(&mut self.mass_scratch).expect("scratch sized nv x nv at load");
        let nv = self.data.qvel().len();
        SMatrix::from_fn(|r, c| self.mass_scratch[self.dof_index[r] * nv + self.dof_index[c]])
    }

    /// Gravity, Coriolis and centrifugal forces on the arm joints.
    pub fn arm_bias_forces(&self) -> [f64; 7] {
        std::array::from_fn(|i| self.data.qfrc_bias()[self.dof_index[i]])
    }

    /// Sets the whole scene's generalised positions and velocities (as
    /// `copy_positions` orders them) and recomputes the derived quantities.
    pub fn set_state(&mut self, qpos: &[f64], qvel: &[f64]) -> Result<(), SimError> {
        for (field, values, target) in [("qpos", qpos, self.data.qpos().len()), ("qvel", qvel, self.data.qvel().len())] {
            if values.len() != target {
                return Err(SimError::StateSize { field, expected: target, got: values.len() });
            }
        }
        self.data.qpos_mut().copy_from_slice(qpos);
        self.data.qvel_mut().copy_from_slice(qvel);
        self.data.forward();
        Ok(())
    }

    /// One physics step with `torques` commanded on the arm joints on top
    /// of the robot's own gravity and Coriolis compensation (as a Franka in
    /// torque mode adds it), clamped to the actuators' range.
    pub fn step_with_torques(&mut self, torques: &[f64; 7]) {
        for i in 0..7 {
            let bias = self.data.qfrc_bias()[self.dof_index[i]];
            self.data.ctrl_mut()[i] = (torques[i] + bias).clamp(-self.torque_limit[i], self.torque_limit[i]);
        }
        self.data.step();
    }

    /// One physics step with the impedance controller pulling toward `target`.
    pub fn step_toward(&mut self, target: &[f64; 7]) {
        for i in 0..7 {
            let q = self.data.qpos()[self.qpos_index[i]];
            let qd = self.data.qvel()[self.dof_index[i]];
            let bias = self.data.qfrc_bias()[self.dof_index[i]];
            let torque = KP[i] * (target[i] - q) - KD[i] * qd + bias;
            self.data.ctrl_mut()[i] = torque.clamp(-self.torque_limit[i], self.torque_limit[i]);
        }
        self.data.step();
    }
}

/// The simulated Panda as a robot: hardware interface over `PandaSim`.
pub struct SimArm {
    names: Vec<String>,
    /// The gripper is an eighth joint (closure 0 open … 1 closed).
    gripper: bool,
    lifecycle: Lifecycle,
    sim: PandaSim,
    target: [f64; 7],
}

impl SimArm {
    pub fn panda() -> Result<SimArm, SimError> {
        Ok(SimArm { names: PANDA_JOINTS.iter().map(|s| s.to_string()).collect(), gripper: false, lifecycle: Lifecycle::Unconfigured, sim: PandaSim::load()?, target: PANDA_HOME })
    }

    /// The Panda with its gripper as an eighth joint, `GRIPPER_JOINT`: its
    /// position is the measured closure, its command the closure asked for.
    pub fn panda_with_gripper() -> Result<SimArm, SimError> {
        let mut arm = SimArm::panda()?;
        arm.names.push(GRIPPER_JOINT.into());
        arm.gripper = true;
        Ok(arm)
    }

    /// Puts the arm at rest at `pose` (and the target with it).
    pub fn reset_to(&mut self, pose: &[f64; 7]) {
        self.sim.reset_to(pose);
        self.target = *pose;
    }

    /// Simulated time.
    /// The simulation itself (for cameras rendering it).
    pub fn sim_mut(&mut self) -> &mut PandaSim {
        &mut self.sim
    }

    pub fn now(&self) -> Timestamp {
        self.sim.now()
    }

    /// Advances the physics by `seconds`, the impedance controller running
    /// at the physics rate toward the last written target.
    pub fn advance(&mut self, seconds: f64) {
        let steps = (seconds / self.sim.timestep()).round().max(1.0) as usize;
        for _ in 0..steps {
            self.sim.step_toward(&self.target);
        }
    }

    pub fn joint_positions(&self) -> [f64; 7] {
        self.sim.joint_positions()
    }
}

impl HardwareInterface for SimArm {
    fn name(&self) -> &str {
        "sim_panda"
    }
    fn joint_names(&self) -> &[String] {
        &self.names
    }
    fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }
    fn configure(&mut self) -> Result<(), HardwareError> {
        transition("sim_panda", &mut self.lifecycle, "configure")
    }
    fn activate(&mut self) -> Result<(), HardwareError> {
        // Like a real arm, activation holds the current pose.
        self.target = self.joint_positions();
        transition("sim_panda", &mut self.lifecycle, "activate")
    }
    fn deactivate(&mut self) -> Result<(), HardwareError> {
        transition("sim_panda", &mut self.lifecycle, "deactivate")
    }
    fn recover(&mut self) -> Result<(), HardwareError> {
        transition("sim_panda", &mut self.lifecycle, "recover")
    }
    fn read(&mut self, _now: Timestamp, state: &mut JointState) -> Result<(), HardwareError> {
        if matches!(self.lifecycle, Lifecycle::Unconfigured | Lifecycle::Error) {
            return Err(HardwareError::Lifecycle { robot: "sim_panda".into(), operation: "read", state: self.lifecycle });
        }
        let n = self.names.len();
        let (mut position, mut velocity, mut effort) = (JointVec::zeros(n), JointVec::zeros(n), JointVec::zeros(n));
        position.as_mut_slice()[..7].copy_from_slice(&self.sim.joint_positions());
        velocity.as_mut_slice()[..7].copy_from_slice(&self.sim.joint_velocities());
        effort.as_mut_slice()[..7].copy_from_slice(&self.sim.joint_torques());
        if self.gripper {
            (position[7], velocity[7]) = self.sim.gripper_closure();
        }
        // Stamped with simulated time: the sim is the clock.
        *state = JointState { stamp: self.now(), position, velocity, effort, wrench: None };
        Ok(())
    }
    fn write(&mut self, command: &JointCommand) -> Result<(), HardwareError> {
        check_write(self, command, &[CommandMode::Position])?;
        for i in 0..7 {
            self.target[i] = command.values[i];
        }
        if self.gripper {
            self.sim.set_gripper(command.values[7]);
        }
        Ok(())
    }
}

/// The simulated arm on the wall clock, as `rrl sim` serves it but without
/// the topics: each read first advances the physics to the wall-clock time
/// since the first read and stamps the state with the wall clock. A real-arm
/// task on it runs as on a robot, in process (tests of the actor's side).
pub struct WallClockArm {
    arm: SimArm,
    started: Option<std::time::Instant>,
}

impl WallClockArm {
    pub fn new(arm: SimArm) -> WallClockArm {
        WallClockArm { arm, started: None }
    }
}

impl HardwareInterface for WallClockArm {
    fn name(&self) -> &str {
        self.arm.name()
    }
    fn joint_names(&self) -> &[String] {
        self.arm.joint_names()
    }
    fn lifecycle(&self) -> Lifecycle {
        self.arm.lifecycle()
    }
    fn configure(&mut self) -> Result<(), HardwareError> {
        self.arm.configure()
    }
    fn activate(&mut self) -> Result<(), HardwareError> {
        self.arm.activate()
    }
    fn deactivate(&mut self) -> Result<(), HardwareError> {
        self.arm.deactivate()
    }
    fn recover(&mut self) -> Result<(), HardwareError> {
        self.arm.recover()
    }
    fn read(&mut self, now: Timestamp, state: &mut JointState) -> Result<(), HardwareError> {
        let started = *self.started.get_or_insert_with(std::time::Instant::now);
        let behind = started.elapsed().as_secs_f64() - self.arm.now().as_secs_f64();
        if behind > 0.0 {
            self.arm.advance(behind);
        }
        self.arm.read(now, state)?;
        state.stamp = rrl_types::Clock::now(&rrl_types::SystemClock);
        Ok(())
    }
    fn write(&mut self, command: &JointCommand) -> Result<(), HardwareError> {
        self.arm.write(command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use robot_drivers::{CommandSlot, ControlLoop};
    use rrl_types::config::SafetyConfig;
    use safety::{Gate, Verdict};

    /// The whole control path on the simulated Panda: commands go through
    /// the Panda's published limits in the gate, and the arm follows.
    #[test]
    fn the_simulated_panda_follows_gated_commands() {
        let mut arm = SimArm::panda().unwrap();
        arm.configure().unwrap();
        arm.activate().unwrap();
        let safety: SafetyConfig = ron::from_str("(preset: Some(FrankaPanda))").unwrap();
        let names: Vec<String> = PANDA_JOINTS.iter().map(|s| s.to_string()).collect();
        let gate = Gate::build(&safety, &names, 100.0).unwrap();
        let slot = CommandSlot::new();
        let mut control = ControlLoop::new(arm, gate, slot.clone());
        let mut goal = PANDA_HOME;
        goal[0] += 0.4;
        goal[3] += 0.3;
        let mut clipped = 0;
        for _ in 0..300 {
            let now = control.hardware().now();
            slot.offer(JointCommand { stamp: now, mode: CommandMode::Position, values: JointVec::from_slice(&goal).unwrap() });
            if matches!(control.tick(now).unwrap(), Verdict::Clipped(_)) {
                clipped += 1;
            }
            control.hardware_mut().advance(0.01);
        }
        let reached = control.hardware().joint_positions();
        for i in 0..7 {
            assert!((reached[i] - goal[i]).abs() < 0.03, "joint {i}: {} vs goal {}", reached[i], goal[i]);
        }
        assert!(clipped > 10, "a 0.4 rad step must be rate-limited by the gate, clipped {clipped} ticks");
    }

    #[test]
    fn without_commands_the_arm_holds_its_pose_against_gravity() {
        let mut arm = SimArm::panda().unwrap();
        arm.configure().unwrap();
        arm.activate().unwrap();
        arm.advance(2.0);
        let pose = arm.joint_positions();
        for i in 0..7 {
            assert!((pose[i] - PANDA_HOME[i]).abs() < 0.01, "joint {i} sagged to {}", pose[i]);
        }
        assert!((arm.now().as_secs_f64() - 2.0).abs() < 1e-9);
    }
}
