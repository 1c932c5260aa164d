//! The simulated Franka Panda (gym-hil's MJCF scene, torque-driven joints)
//! behind robot_drivers' hardware interface: the same lifecycle, state and
//! command types as a real arm, with a joint impedance controller standing
//! in for the robot's own (torque = Kp·(q* − q) − Kd·q̇ + gravity and
//! Coriolis compensation), and simulated time as its clock.

use std::sync::Arc;

use mujoco_rs::prelude::{MjData, MjModel, MjtObjBase};
use robot_drivers::hardware::{check_write, transition, HardwareError, HardwareInterface, Lifecycle};
use rrl_types::{CommandMode, JointCommand, JointState, JointVec, Timestamp};

use crate::assets::{load_model, AssetPackage, SimError};

/// The Panda's arm joints as the MJCF names them.
pub const PANDA_JOINTS: [&str; 7] = ["joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "joint7"];

/// A ready pose above the table, gripper pointing down.
pub const PANDA_HOME: [f64; 7] = [0.0, 0.3, 0.0, -1.8, 0.0, 2.1, 0.785];

/// Joint stiffness and damping of the impedance controller (Franka's
/// example values for joint impedance control).
const KP: [f64; 7] = [600.0, 600.0, 600.0, 600.0, 250.0, 150.0, 50.0];
const KD: [f64; 7] = [50.0, 50.0, 50.0, 20.0, 20.0, 20.0, 10.0];

pub struct SimArm {
    names: Vec<String>,
    lifecycle: Lifecycle,
    data: MjData<Arc<MjModel>>,
    qpos_index: [usize; 7],
    dof_index: [usize; 7],
    torque_limit: [f64; 7],
    target: [f64; 7],
    timestep: f64,
}

impl SimArm {
    pub fn panda() -> Result<SimArm, SimError> {
        let path = AssetPackage::GymHil.path("scene.xml")?;
        let model = Arc::new(load_model(&path)?);
        let mut qpos_index = [0; 7];
        let mut dof_index = [0; 7];
        for (i, name) in PANDA_JOINTS.iter().enumerate() {
            let id = model
                .name_to_id(MjtObjBase::mjOBJ_JOINT, name)
                .ok_or_else(|| SimError::ModelLoad { path: path.clone(), reason: format!("no joint `{name}`") })?;
            qpos_index[i] = model.jnt_qposadr()[id] as usize;
            dof_index[i] = model.jnt_dofadr()[id] as usize;
        }
        let torque_limit = std::array::from_fn(|i| model.actuator_ctrlrange()[i][1]);
        let timestep = model.ffi().opt.timestep;
        let mut arm = SimArm {
            names: PANDA_JOINTS.iter().map(|s| s.to_string()).collect(),
            lifecycle: Lifecycle::Unconfigured,
            data: MjData::new(model),
            qpos_index,
            dof_index,
            torque_limit,
            target: PANDA_HOME,
            timestep,
        };
        arm.reset_to(&PANDA_HOME);
        Ok(arm)
    }

    /// Puts the arm at rest at `pose` (and the target with it).
    pub fn reset_to(&mut self, pose: &[f64; 7]) {
        self.data.reset();
        for (i, &q) in pose.iter().enumerate() {
            self.data.qpos_mut()[self.qpos_index[i]] = q;
        }
        self.target = *pose;
        self.data.forward();
    }

    /// Simulated time.
    pub fn now(&self) -> Timestamp {
        Timestamp::from_secs_f64(self.data.time())
    }

    /// Advances the physics by `seconds`, the impedance controller running
    /// at the physics rate toward the last written target.
    pub fn advance(&mut self, seconds: f64) {
        let steps = (seconds / self.timestep).round().max(1.0) as usize;
        for _ in 0..steps {
            for i in 0..7 {
                let q = self.data.qpos()[self.qpos_index[i]];
                let qd = self.data.qvel()[self.dof_index[i]];
                let bias = self.data.qfrc_bias()[self.dof_index[i]];
                let torque = KP[i] * (self.target[i] - q) - KD[i] * qd + bias;
                self.data.ctrl_mut()[i] = torque.clamp(-self.torque_limit[i], self.torque_limit[i]);
            }
            self.data.step();
        }
    }

    pub fn joint_positions(&self) -> [f64; 7] {
        std::array::from_fn(|i| self.data.qpos()[self.qpos_index[i]])
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
        let mut position = JointVec::zeros(7);
        let mut velocity = JointVec::zeros(7);
        let mut effort = JointVec::zeros(7);
        for i in 0..7 {
            position[i] = self.data.qpos()[self.qpos_index[i]];
            velocity[i] = self.data.qvel()[self.dof_index[i]];
            effort[i] = self.data.ctrl()[i];
        }
        // Stamped with simulated time: the sim is the clock.
        *state = JointState { stamp: self.now(), position, velocity, effort };
        Ok(())
    }
    fn write(&mut self, command: &JointCommand) -> Result<(), HardwareError> {
        check_write(self, command, &[CommandMode::Position])?;
        for i in 0..7 {
            self.target[i] = command.values[i];
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use robot_drivers::{CommandSlot, ControlLoop};
    use rrl_types::config::SafetyConfig;
    use safety::{Gate, GateConfig, Verdict};

    /// The whole control path on the simulated Panda: commands go through
    /// the Panda's published limits in the gate, and the arm follows.
    #[test]
    fn the_simulated_panda_follows_gated_commands() {
        let mut arm = SimArm::panda().unwrap();
        arm.configure().unwrap();
        arm.activate().unwrap();
        let safety: SafetyConfig = ron::from_str("(preset: Some(FrankaPanda))").unwrap();
        let names: Vec<String> = PANDA_JOINTS.iter().map(|s| s.to_string()).collect();
        let gate = Gate::new(GateConfig::from_launch(&safety, &names, 100.0).unwrap());
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
