//! Manipulation on the simulated Franka Panda (gym-hil's scene): pick up a
//! cube and lift it, the standard sim task of human-in-the-loop RL, and an
//! easier reach variant. Actions are end-effector displacements plus a
//! gripper command; a Cartesian controller (damped least-squares inverse
//! kinematics holding the gripper pointing down, with a null-space pull to
//! the home pose) turns them into joint targets for the joint impedance
//! controller. Task constants follow gym-hil's pick task: 10 Hz control,
//! 2 ms physics, success when the cube is 10 cm up and within 5 cm of the
//! fingertips; the cube is sampled in x ∈ [0.35, 0.55], y ∈ [−0.15, 0.15]
//! (gym-hil's area moved 5 cm out, see `CUBE_BOUNDS`).

use nalgebra::{Matrix3, Vector3, Vector6};
use rrl_types::config::{GripperAction, PandaController, RobotPreset};
use rrl_types::rng::Rng;
use rrl_types::{CommandMode, Environment, GateTick, JointCommand, JointState, JointVec, PracticeTask, SafetyEvents, Step, TickDecimator};
use safety::Gate;

use crate::gated::SimGate;

use crate::arm::{PandaSim, RenderQuality, PANDA_HOME};
use crate::camera::CameraRig;
use crate::assets::SimError;
use crate::osc::{osc_torques, OscGains, OscTarget};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PandaVariant {
    /// Grasp the cube and lift it 10 cm.
    PickCube,
    /// Bring the fingertips within 2 cm of a sampled point.
    Reach,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewardKind {
    /// Shaped: closeness to the cube (or goal) plus lift progress, as a
    /// cost in [-1, 0), and 0 on success.
    Dense,
    /// 1 on success, else 0.
    Sparse,
}

/// Seconds of simulated time per environment step (10 Hz).
pub const CONTROL_DT: f64 = 0.1;
/// Largest end-effector displacement per step, per axis, metres.
pub const MAX_STEP_M: f64 = 0.03;
/// The box the fingertips are kept in (gym-hil's Cartesian bounds).
pub const WORKSPACE: [[f64; 3]; 2] = [[0.2, -0.3, 0.0], [0.6, 0.3, 0.5]];
/// Where the cube spawns: gym-hil's 20 x 30 cm area, 5 cm farther out.
/// Nearer than 35 cm the gripper, pointing down, needs the elbow at
/// -3.07 rad (its hard limit is -3.0718), past the gate's soft limit, so
/// those cubes could not be picked through the gate at all.
/// Where the cube is placed: (x, y) min and max, m.
pub const CUBE_BOUNDS: [[f64; 2]; 2] = [[0.35, -0.15], [0.55, 0.15]];
const REACH_BOUNDS: [[f64; 3]; 2] = [[0.3, -0.15, 0.1], [0.5, 0.15, 0.3]];
const IK_EVERY: usize = 5;
/// Largest joint command change per controller tick, rad (2 rad/s at 100 Hz).
const MAX_JOINT_STEP: f64 = 0.02;
const MAX_EPISODE_STEPS: u32 = 100;

/// What `monitor_violations` watches: the fingertips' box and the arm's
/// published joint ranges (the safety preset's table, in joint order).
#[derive(Debug, Clone, Copy)]
struct ViolationBox {
    min: [f64; 3],
    max: [f64; 3],
    joint_ranges: [(f64, f64); 7],
}

pub struct PandaTask {
    variant: PandaVariant,
    reward: RewardKind,
    sim: PandaSim,
    rng: Rng,
    joint_target: [f64; 7],
    ee_target: [f64; 3],
    down: Matrix3<f64>,
    goal: [f64; 3],
    cube_start_z: f64,
    steps: u32,
    observation: Vec<f64>,
    /// The safety gate between the Cartesian controller and the joints, at
    /// the controller's rate, as on the real robot.
    gate: Option<SimGate>,
    /// Uniform noise on the home pose at reset, rad.
    home_noise_rad: f64,
    max_episode_steps: u32,
    controller: PandaController,
    /// How pick-cube reads its gripper slot.
    gripper: GripperAction,
    osc_gains: OscGains,
    /// The box the measured fingertips must stay in, for counting violations.
    violation_box: Option<ViolationBox>,
    violation_steps: u64,
    /// Reach without resets: episodes alternate between a sampled goal
    /// (forward) and the home fingertip point (backward), from wherever
    /// the last one left the arm.
    reset_free: bool,
    backward_next: bool,
    needs_full_reset: bool,
    home_pinch: [f64; 3],
    /// Cameras rendered after every reset and step, for pixel learners.
    cameras: Option<CameraRig>,
    frames: Vec<u8>,
    /// A frame that failed to render at a reset, reported by the next step.
    render_error: Option<SimError>,
}

const ACTION_LOW: [f64; 4] = [-1.0; 4];
const ACTION_HIGH: [f64; 4] = [1.0; 4];

impl PandaTask {
    pub fn new(variant: PandaVariant, reward: RewardKind) -> Result<PandaTask, SimError> {
        let sim = PandaSim::load()?;
        let m = sim.pinch_orientation();
        let down = Matrix3::from_row_slice(&m);
        let ee = sim.pinch_position();
        let mut task = PandaTask {
            variant,
            reward,
            sim,
            rng: Rng::seed(0),
            joint_target: PANDA_HOME,
            ee_target: ee,
            down,
            goal: [0.0; 3],
            cube_start_z: 0.0,
            steps: 0,
            observation: Vec::with_capacity(17),
            gate: None,
            home_noise_rad: 0.0,
            max_episode_steps: MAX_EPISODE_STEPS,
            controller: PandaController::InverseKinematics,
            gripper: GripperAction::Continuous,
            osc_gains: OscGains::default(),
            violation_box: None,
            violation_steps: 0,
            reset_free: false,
            backward_next: false,
            needs_full_reset: true,
            home_pinch: ee,
            cameras: None,
            frames: Vec::new(),
            render_error: None,
        };
        task.write_observation();
        Ok(task)
    }

    /// The task observed by the named scene cameras (`front`,
    /// `handcam_rgb`) at `side` x `side` as well as by its state. The
    /// state is then what a real robot knows about itself: for pick-cube
    /// the cube's position is left out (the cameras see it); reach keeps
    /// its goal, which no camera shows.
    pub fn with_cameras(variant: PandaVariant, reward: RewardKind, cameras: &[String], side: u32) -> Result<PandaTask, SimError> {
        let mut task = Self::new(variant, reward)?;
        let rig = CameraRig::start(cameras, side, RenderQuality::Learning)?;
        task.frames = vec![0; rig.layout().bytes()];
        task.cameras = Some(rig);
        task.write_observation();
        match task.render_error.take() {
            Some(error) => Err(error),
            None => Ok(task),
        }
    }

    /// The full state (joints, fingertips, gripper, cube or goal) even when
    /// cameras stand in for part of it: what a scripted expert acts on.
    pub fn full_observation(&self) -> &[f64] {
        &self.observation
    }

    /// Chooses the Cartesian controller (inverse kinematics by default).
    /// Choose before `set_gate`: the gate runs at the controller's rate.
    pub fn set_controller(&mut self, controller: PandaController) {
        self.controller = controller;
    }

    pub fn controller(&self) -> PandaController {
        self.controller
    }

    /// Chooses how pick-cube reads its gripper slot (continuous by
    /// default); `None` keeps continuous, the slot being always there.
    pub fn set_gripper(&mut self, gripper: GripperAction) {
        self.gripper = gripper;
    }

    pub fn gripper(&self) -> GripperAction {
        self.gripper
    }

    /// Puts `gate` between the Cartesian controller and the joints: every
    /// joint target (inverse kinematics) or joint torque (operational
    /// space) is checked, and clipped or held ones count as safety events.
    /// The gate's control period must be `1 / control_rate_hz()`.
    pub fn set_gate(&mut self, gate: Gate) {
        self.gate = Some(SimGate::new(gate));
    }

    /// Records the gate's ticks (`safety::Gate::tick_record`: the critic's
    /// input, the verdict, and whether the measured state broke a limit),
    /// as `decimator` keeps them, for `PracticeTask::take_gate_ticks`
    /// (after `set_gate`; a bounded number wait to be taken, later ones are
    /// dropped and their indices show the gap).
    pub fn record_gate_ticks(&mut self, decimator: TickDecimator) {
        debug_assert!(self.gate.is_some(), "record_gate_ticks needs the gate: call set_gate first");
        if let Some(gate) = self.gate.as_mut() {
            gate.record_ticks(decimator);
        }
    }

    /// Counts, from the measured state and independently of any gate, the
    /// steps in which the fingertips left `[min, max]` by more than 2 mm or
    /// a joint passed its published position limit.
    pub fn monitor_violations(&mut self, min: [f64; 3], max: [f64; 3]) {
        let published = safety::preset_limits(RobotPreset::FrankaPanda);
        let joint_ranges = std::array::from_fn(|j| published[j].1.position.expect("the Panda preset has position limits"));
        self.violation_box = Some(ViolationBox { min, max, joint_ranges });
    }

    /// Violating steps since the last call.
    pub fn take_violation_steps(&mut self) -> u64 {
        std::mem::take(&mut self.violation_steps)
    }

    /// Whether the measured state breaks the monitored constraints now.
    fn violates(&self) -> bool {
        let Some(ViolationBox { min, max, joint_ranges }) = self.violation_box else { return false };
        let pinch = self.sim.pinch_position();
        let outside = (0..3).any(|k| pinch[k] < min[k] - 0.002 || pinch[k] > max[k] + 0.002);
        let q = self.sim.joint_positions();
        let beyond = joint_ranges.iter().zip(q).any(|(&(lo, hi), q)| q < lo || q > hi);
        outside || beyond
    }

    /// Reset-free practice for the reach task: after the first episode the
    /// arm is never teleported; episodes alternate between a sampled goal
    /// and the home fingertip point (forward and backward, as FastRLAP-style
    /// autonomous practice does), each starting where the last one ended.
    /// Refused for pick-cube, whose backward task (putting the cube back)
    /// the scene cannot score.
    pub fn set_reset_free(&mut self, on: bool) -> Result<(), SimError> {
        if on && self.variant == PandaVariant::PickCube {
            return Err(SimError::Unsupported { what: "reset-free practice on PickCube (only Reach has a backward task)" });
        }
        self.reset_free = on;
        Ok(())
    }

    /// Scripted resets start from the home pose plus uniform noise of this
    /// many radians per joint (0 by default).
    pub fn set_home_noise(&mut self, radians: f64) {
        self.home_noise_rad = radians.abs();
    }

    /// Episode length limit in steps (100 by default, as gym-hil).
    pub fn set_max_episode_steps(&mut self, steps: u32) {
        self.max_episode_steps = steps.max(1);
    }

    /// The controller rate the gate runs at: 100 Hz for inverse kinematics,
    /// the physics rate (500 Hz) for operational-space torques.
    pub fn control_rate_hz(&self) -> f64 {
        match self.controller {
            PandaController::InverseKinematics => 1.0 / (self.sim.timestep() * IK_EVERY as f64),
            PandaController::OperationalSpace => 1.0 / self.sim.timestep(),
        }
    }

    /// Runs `values` (joint targets or torques) through the gate, if there
    /// is one, and counts protective interventions; returns what may be sent.
    fn gate_command(&mut self, mode: CommandMode, values: [f64; 7]) -> [f64; 7] {
        let Some(gate) = self.gate.as_mut() else { return values };
        let now = self.sim.now();
        let state = JointState {
            stamp: now,
            position: JointVec::from_slice(&self.sim.joint_positions()).expect("7 joints"),
            velocity: JointVec::from_slice(&self.sim.joint_velocities()).expect("7 joints"),
            effort: JointVec::from_slice(&self.sim.joint_torques()).expect("7 joints"),
            wrench: None,
        };
        let command = JointCommand { stamp: now, mode, values: JointVec::from_slice(&values).expect("7 joints") };
        let out = gate.check(&state, &command);
        let mut sent = [0.0; 7];
        if out.values.len() == 7 {
            sent.copy_from_slice(out.values.as_slice());
        } else if mode == CommandMode::Position {
            // Nothing may be sent yet: the arm keeps its current target.
            sent = values;
        }
        sent
    }

    /// One operational-space physics step toward the end-effector target,
    /// the gripper pointing down and the arm pulled toward home.
    fn step_operational_space(&mut self) {
        let target = OscTarget { position: self.ee_target, orientation: self.down, rest: PANDA_HOME };
        // A singular mass matrix cannot come from a physical model; should
        // it ever, no torque is the safe answer.
        let torques = osc_torques(&mut self.sim, &target, &self.osc_gains).unwrap_or([0.0; 7]);
        let torques = self.gate_command(CommandMode::Effort, torques);
        self.sim.step_with_torques(&torques);
    }

    pub fn variant(&self) -> PandaVariant {
        self.variant
    }

    pub fn sim(&self) -> &PandaSim {
        &self.sim
    }

    /// The scene, for rendering its cameras (which needs the data mutably).
    pub fn sim_mut(&mut self) -> &mut PandaSim {
        &mut self.sim
    }

    /// The reach goal (reach variant).
    pub fn goal(&self) -> [f64; 3] {
        self.goal
    }

    pub fn is_success(&self) -> bool {
        let pinch = self.sim.pinch_position();
        match self.variant {
            PandaVariant::PickCube => {
                let cube = self.sim.block_position();
                distance(&pinch, &cube) < 0.05 && cube[2] - self.cube_start_z > 0.1
            }
            PandaVariant::Reach => distance(&pinch, &self.goal) < 0.02,
        }
    }

    fn write_observation(&mut self) {
        let obs = &mut self.observation;
        obs.clear();
        obs.extend_from_slice(&self.sim.joint_positions());
        obs.extend_from_slice(&self.sim.pinch_position());
        obs.push(self.sim.gripper());
        match self.variant {
            PandaVariant::PickCube => {
                let (cube, pinch) = (self.sim.block_position(), self.sim.pinch_position());
                obs.extend_from_slice(&cube);
                // The cube as seen from the fingertips: what a grasp must
                // zero, to the millimetre, given directly rather than left
                // to the networks to subtract.
                obs.extend((0..3).map(|k| cube[k] - pinch[k]));
            }
            PandaVariant::Reach => {
                let (goal, pinch) = (self.goal, self.sim.pinch_position());
                obs.extend_from_slice(&goal);
                // The goal as seen from the fingertips, for the same reason.
                obs.extend((0..3).map(|k| goal[k] - pinch[k]));
            }
        }
        if let Some(rig) = self.cameras.as_mut() {
            if let Err(error) = rig.render(&self.sim, &mut self.frames) {
                self.render_error.get_or_insert(error);
            }
        }
    }

    /// One damped least-squares step toward `ee_target` with the gripper
    /// held pointing down, plus a null-space pull toward home.
    fn solve_ik(&mut self) {
        let jacobian = self.sim.pinch_jacobian();
        let pinch = Vector3::from(self.sim.pinch_position());
        let position_error = Vector3::from(self.ee_target) - pinch;
        let current = Matrix3::from_row_slice(&self.sim.pinch_orientation());
        // Rotation error: half the sum of column cross products.
        let mut rotation_error = Vector3::zeros();
        for k in 0..3 {
            rotation_error += current.column(k).cross(&self.down.column(k));
        }
        rotation_error *= 0.5;
        let mut error = Vector6::zeros();
        error.fixed_rows_mut::<3>(0).copy_from(&position_error);
        error.fixed_rows_mut::<3>(3).copy_from(&rotation_error);
        let q = self.sim.joint_positions();
        let pull = safety::ik::JointColumns::from_fn(|j, _| if j < 7 { 0.1 * (PANDA_HOME[j] - q[j]) } else { 0.0 });
        let jacobian = safety::ik::ToolJacobian::from_fn(|r, c| if c < 7 { jacobian[(r, c)] } else { 0.0 });
        let Some(dq) = safety::ik::dls_step(&jacobian, &error, Some(&pull)) else { return };
        for i in 0..7 {
            safety::ik::follow(q[i], dq[i], &mut self.joint_target[i], MAX_JOINT_STEP);
        }
    }

    fn reward_and_done(&self) -> (f64, bool) {
        let success = self.is_success();
        let pinch = self.sim.pinch_position();
        // Dense rewards are shaped costs in [-1, 0) and 0 on success, which
        // ends the episode: finishing sooner is always worth more, so the
        // shaping cannot teach hovering short of the goal. tanh(5 d) keeps a
        // slope out to 30 cm, where exp(-20 d) was flat beyond 15.
        let reward = match (self.reward, self.variant) {
            (RewardKind::Sparse, _) => f64::from(u8::from(success)),
            (RewardKind::Dense, _) if success => 0.0,
            (RewardKind::Dense, PandaVariant::PickCube) => {
                let cube = self.sim.block_position();
                let lift = ((cube[2] - self.cube_start_z) / 0.1).clamp(0.0, 1.0);
                0.3 * (1.0 - (5.0 * distance(&pinch, &cube)).tanh()) + 0.7 * lift - 1.0
            }
            (RewardKind::Dense, PandaVariant::Reach) => -(5.0 * distance(&pinch, &self.goal)).tanh(),
        };
        let cube = self.sim.block_position();
        let cube_lost = self.variant == PandaVariant::PickCube
            && (cube[0] < CUBE_BOUNDS[0][0] - 0.05 || cube[0] > CUBE_BOUNDS[1][0] + 0.05 || cube[1] < CUBE_BOUNDS[0][1] - 0.05 || cube[1] > CUBE_BOUNDS[1][1] + 0.05);
        (reward, success || cube_lost)
    }
}

fn distance(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

impl Environment for PandaTask {
    type Error = SimError;

    fn observation_size(&self) -> usize {
        self.observation().len()
    }
    fn action_size(&self) -> usize {
        4
    }
    fn action_low(&self) -> &[f64] {
        &ACTION_LOW
    }
    fn action_high(&self) -> &[f64] {
        &ACTION_HIGH
    }
    fn observation(&self) -> &[f64] {
        // With cameras, pick-cube's state stops before the cube's position.
        match (self.cameras.is_some(), self.variant) {
            (true, PandaVariant::PickCube) => &self.observation[..11],
            _ => &self.observation,
        }
    }

    fn frames(&self) -> Option<&[u8]> {
        self.cameras.is_some().then_some(&self.frames[..])
    }

    fn frame_layout(&self) -> Option<rrl_types::FrameLayout> {
        self.cameras.as_ref().map(CameraRig::layout)
    }

    /// Reset-free, only the task's first reset moves the arm; later ones
    /// re-seed and set the next goal from where the arm is.
    fn reset(&mut self, seed: u64) -> &[f64] {
        self.rng = Rng::seed(seed);
        self.reset_next()
    }

    fn success(&self) -> Option<bool> {
        Some(self.is_success())
    }

    fn reset_next(&mut self) -> &[f64] {
        if self.reset_free && !self.needs_full_reset {
            // The arm stays where it is; only the goal changes.
            self.goal = if self.backward_next { self.home_pinch } else { std::array::from_fn(|k| self.rng.uniform(REACH_BOUNDS[0][k], REACH_BOUNDS[1][k])) };
            self.backward_next = !self.backward_next;
            self.ee_target = self.sim.pinch_position();
            self.steps = 0;
            if let Some(gate) = self.gate.as_mut() {
                gate.take_events();
            }
            self.write_observation();
            return self.observation();
        }
        self.needs_full_reset = false;
        self.backward_next = true;
        let noise = self.home_noise_rad;
        let home: [f64; 7] = std::array::from_fn(|i| PANDA_HOME[i] + self.rng.uniform(-noise, noise));
        self.sim.reset_to(&home);
        self.sim.set_gripper(0.0);
        let x = self.rng.uniform(CUBE_BOUNDS[0][0], CUBE_BOUNDS[1][0]);
        let y = self.rng.uniform(CUBE_BOUNDS[0][1], CUBE_BOUNDS[1][1]);
        self.sim.place_block(x, y);
        self.goal = std::array::from_fn(|k| self.rng.uniform(REACH_BOUNDS[0][k], REACH_BOUNDS[1][k]));
        self.cube_start_z = self.sim.block_position()[2];
        self.joint_target = home;
        self.ee_target = self.sim.pinch_position();
        self.steps = 0;
        if let Some(gate) = self.gate.as_mut() {
            // A teleported arm: the limiter restarts from the new pose.
            gate.restart();
        }
        self.write_observation();
        self.observation()
    }

    fn step(&mut self, action: &[f64]) -> Result<Step, SimError> {
        if action.len() != 4 {
            return Err(SimError::ActionSize { task: "Panda", expected: 4, got: action.len() });
        }
        if let Some(index) = action.iter().position(|a| !a.is_finite()) {
            return Err(SimError::NonFiniteAction { task: "Panda", index, value: action[index] });
        }
        let pinch = self.sim.pinch_position();
        for k in 0..3 {
            self.ee_target[k] = (pinch[k] + MAX_STEP_M * action[k].clamp(-1.0, 1.0)).clamp(WORKSPACE[0][k], WORKSPACE[1][k]);
        }
        if self.variant == PandaVariant::PickCube {
            let closure = match self.gripper {
                GripperAction::OpenClose => f64::from(u8::from(action[3] > 0.0)),
                GripperAction::Continuous | GripperAction::None => (action[3].clamp(-1.0, 1.0) + 1.0) * 0.5,
            };
            self.sim.set_gripper(closure);
        }
        let substeps = (CONTROL_DT / self.sim.timestep()).round() as usize;
        let mut violated = false;
        for i in 0..substeps {
            if i % IK_EVERY == 0 {
                violated |= self.violates();
            }
            match self.controller {
                PandaController::InverseKinematics => {
                    if i % IK_EVERY == 0 {
                        self.solve_ik();
                        self.joint_target = self.gate_command(CommandMode::Position, self.joint_target);
                    }
                    let target = self.joint_target;
                    self.sim.step_toward(&target);
                }
                PandaController::OperationalSpace => self.step_operational_space(),
            }
        }
        self.steps += 1;
        self.violation_steps += u64::from(violated || self.violates());
        self.write_observation();
        if let Some(error) = self.render_error.take() {
            return Err(error);
        }
        let (reward, terminated) = self.reward_and_done();
        Ok(Step { reward, terminated, truncated: !terminated && self.steps >= self.max_episode_steps })
    }
}

impl PracticeTask for PandaTask {
    /// Open the gripper and lift 15 cm: frees a hand pressed on the table
    /// or wedged against the cube.
    fn recovery_actions(&self) -> Vec<Vec<f64>> {
        (0..5).map(|_| vec![0.0, 0.0, 1.0, -1.0]).collect()
    }

    fn take_safety_events(&mut self) -> SafetyEvents {
        self.gate.as_mut().map(SimGate::take_events).unwrap_or_default()
    }

    fn take_gate_ticks(&mut self, out: &mut Vec<GateTick>) {
        if let Some(gate) = self.gate.as_mut() {
            gate.take_ticks(out);
        }
    }

    fn take_measured_violations(&mut self) -> Option<u64> {
        self.violation_box.is_some().then(|| self.take_violation_steps())
    }

    fn offer_risk_critic(&mut self, layers: &[(Vec<Vec<f32>>, Vec<f32>)], acting: bool) -> Result<(), String> {
        self.gate.as_mut().ok_or("this task has no safety gate")?.offer_risk_critic(layers, acting)
    }

    fn expert_observation(&self) -> &[f64] {
        self.full_observation()
    }
}

/// A scripted expert for demos: above the cube, down, grasp, lift (or
/// straight to the goal for reach). Deterministic given the observation.
#[derive(Debug, Default)]
pub struct ScriptedExpert {
    grasp_ticks: u32,
}

impl ScriptedExpert {
    pub fn reset(&mut self) {
        self.grasp_ticks = 0;
    }

    /// The action for observation `obs` of a `PandaTask` of `variant`.
    pub fn act(&mut self, variant: PandaVariant, obs: &[f64]) -> [f64; 4] {
        let pinch = [obs[7], obs[8], obs[9]];
        let object = [obs[11], obs[12], obs[13]];
        let toward = |target: [f64; 3]| -> [f64; 3] { std::array::from_fn(|k| ((target[k] - pinch[k]) / MAX_STEP_M).clamp(-1.0, 1.0)) };
        match variant {
            PandaVariant::Reach => {
                let d = toward(object);
                [d[0], d[1], d[2], -1.0]
            }
            PandaVariant::PickCube => {
                let horizontal = ((pinch[0] - object[0]).powi(2) + (pinch[1] - object[1]).powi(2)).sqrt();
                if self.grasp_ticks > 0 {
                    self.grasp_ticks += 1;
                    // Close first, then lift.
                    if self.grasp_ticks < 5 {
                        return [0.0, 0.0, 0.0, 1.0];
                    }
                    let d = toward([pinch[0], pinch[1], object[2] + 0.2]);
                    return [d[0], d[1], d[2], 1.0];
                }
                if horizontal > 0.01 || pinch[2] - object[2] > 0.01 {
                    // A funnel: the closer above the cube, the lower, so the
                    // action is a smooth function of where the hand is
                    // (demos a policy can clone without averaging two modes).
                    let d = toward([object[0], object[1], object[2] + (3.0 * horizontal).min(0.1)]);
                    return [d[0], d[1], d[2], -1.0];
                }
                self.grasp_ticks = 1;
                [0.0, 0.0, 0.0, 1.0]
            }
        }
    }
}

/// The scripted expert with uniform noise (±`noise`) on its Cartesian
/// actions (the gripper command kept): a weak demonstrator for behaviour
/// cloning and demo buffers.
pub struct NoisyExpert {
    expert: ScriptedExpert,
    variant: PandaVariant,
    noise: f64,
    rng: Rng,
}

impl NoisyExpert {
    pub fn new(variant: PandaVariant, noise: f64, seed: u64) -> NoisyExpert {
        NoisyExpert { expert: ScriptedExpert::default(), variant, noise, rng: Rng::seed(seed) }
    }

    /// The action for a full observation of the task; `episode_start` resets the expert.
    pub fn act(&mut self, obs: &[f64], episode_start: bool) -> Vec<f64> {
        if episode_start {
            self.expert.reset();
        }
        let mut action = self.expert.act(self.variant, obs).to_vec();
        for a in action.iter_mut().take(3) {
            *a = (*a + self.rng.uniform(-self.noise, self.noise)).clamp(-1.0, 1.0);
        }
        action
    }

    /// Observations and actions (f32, per episode) of `episodes` episodes
    /// on `task`, episode k reset with seed `first_seed + k`.
    #[allow(clippy::type_complexity)]
    pub fn record(&mut self, task: &mut PandaTask, episodes: u64, first_seed: u64) -> Result<(Vec<Vec<Vec<f32>>>, Vec<Vec<Vec<f32>>>), SimError> {
        let (mut observations, mut actions) = (Vec::new(), Vec::new());
        for k in 0..episodes {
            let (mut obs_list, mut act_list) = (Vec::new(), Vec::new());
            let mut obs = task.reset(first_seed + k).to_vec();
            loop {
                let action = self.act(task.full_observation(), obs_list.is_empty());
                obs_list.push(obs.iter().map(|&x| x as f32).collect());
                act_list.push(action.iter().map(|&x| x as f32).collect());
                let step = task.step(&action)?;
                obs = task.observation().to_vec();
                if step.done() {
                    break;
                }
            }
            observations.push(obs_list);
            actions.push(act_list);
        }
        Ok((observations, actions))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panda_gate(task: &PandaTask) -> Gate {
        gate_of(task, "(preset: Some(FrankaPanda))")
    }

    /// The gate a launch file's `safety` section (`safety`, RON) builds for the Panda.
    fn gate_of(task: &PandaTask, safety: &str) -> Gate {
        let safety: rrl_types::config::SafetyConfig = ron::from_str(safety).unwrap();
        let names: Vec<String> = crate::arm::PANDA_JOINTS.iter().map(|s| s.to_string()).collect();
        Gate::build(&safety, &names, task.control_rate_hz()).unwrap()
    }

    fn mean_abs_difference(a: &[u8], b: &[u8]) -> f64 {
        a.iter().zip(b).map(|(x, y)| (f64::from(*x) - f64::from(*y)).abs()).sum::<f64>() / a.len() as f64
    }

    /// Frames are rendered for every observation, follow the arm, and the
    /// task (its cameras on a render thread of their own) can be stepped
    /// from another thread; pick-cube's state then leaves the cube out.
    #[test]
    fn a_task_with_cameras_shows_frames_that_follow_the_arm_from_any_thread() {
        let cameras = vec!["front".to_string(), "handcam_rgb".to_string()];
        let mut task = PandaTask::with_cameras(PandaVariant::PickCube, RewardKind::Dense, &cameras, 32).unwrap();
        assert_eq!(task.frame_layout(), Some(rrl_types::FrameLayout { cameras: 2, height: 32, width: 32 }));
        task.reset(3);
        assert_eq!((task.observation_size(), task.observation().len(), task.full_observation().len()), (11, 11, 17));
        assert_eq!(task.full_observation()[11..14], task.sim().block_position(), "the full state goes on with the cube");
        let first = task.frames().unwrap().to_vec();
        assert_eq!(first.len(), 2 * 32 * 32 * 3);
        let camera = 32 * 32 * 3;
        let moved = std::thread::spawn(move || {
            for _ in 0..10 {
                task.step(&[0.0, 0.0, 1.0, 0.0]).unwrap();
            }
            task
        })
        .join()
        .unwrap();
        let after = moved.frames().unwrap();
        let (front, wrist) = (mean_abs_difference(&first[..camera], &after[..camera]), mean_abs_difference(&first[camera..], &after[camera..]));
        assert!(wrist > 2.0 && front > 2.0, "lifting the hand 20 cm changes both views: wrist {wrist}, front {front}");
        // The frames are those of the state the task is in now.
        use crate::camera::RenderScene;
        let mut check = PandaSim::load_with(RenderQuality::Learning).unwrap();
        let mut positions = Vec::new();
        moved.sim().copy_positions(&mut positions);
        check.show_positions(&positions);
        let mut wrist_camera = crate::camera::SimCamera::new(&check, "handcam_rgb", 32, 32).unwrap();
        assert_eq!(wrist_camera.render(&mut check).unwrap(), &after[camera..]);
        let reach = PandaTask::with_cameras(PandaVariant::Reach, RewardKind::Dense, &cameras[..1], 16).unwrap();
        assert_eq!((reach.observation_size(), reach.frames().unwrap().len()), (17, 16 * 16 * 3), "reach keeps its goal in the state");
        let err = PandaTask::with_cameras(PandaVariant::Reach, RewardKind::Dense, &["top".to_string()], 16).err().unwrap().to_string();
        assert!(err.contains("`top`") && err.contains("handcam_rgb"), "{err}");
    }

    fn run_expert(variant: PandaVariant, episodes: u64) -> (usize, Vec<f64>) {
        run_expert_with(PandaTask::new(variant, RewardKind::Dense).unwrap(), episodes)
    }

    fn run_expert_with(mut task: PandaTask, episodes: u64) -> (usize, Vec<f64>) {
        let variant = task.variant();
        let mut expert = ScriptedExpert::default();
        let mut successes = 0;
        let mut returns = Vec::new();
        for e in 0..episodes {
            let mut obs = task.reset(100 + e).to_vec();
            expert.reset();
            let mut total = 0.0;
            loop {
                let action = expert.act(variant, &obs);
                let step = task.step(&action).unwrap();
                total += step.reward;
                obs = task.observation().to_vec();
                if step.done() {
                    successes += usize::from(task.is_success());
                    break;
                }
            }
            returns.push(total);
        }
        (successes, returns)
    }

    #[test]
    fn the_scripted_expert_reaches_every_goal() {
        let (successes, _) = run_expert(PandaVariant::Reach, 5);
        assert_eq!(successes, 5);
    }

    #[test]
    fn the_scripted_expert_picks_up_the_cube() {
        let (successes, returns) = run_expert(PandaVariant::PickCube, 6);
        assert!(successes >= 5, "expert succeeded {successes} of 6, returns {returns:?}");
    }

    #[test]
    fn through_the_panda_limits_gate_the_expert_still_picks_up_the_cube() {
        let mut task = PandaTask::new(PandaVariant::PickCube, RewardKind::Dense).unwrap();
        task.set_gate(panda_gate(&task));
        // Without a gate the expert picks every cube; the Panda's joint
        // limits slow its IK stream and some episodes run out of steps
        // (75-80 % over 40 seeds; the sim and gate are deterministic).
        let (successes, returns) = run_expert_with(task, 20);
        assert!(successes >= 14, "expert through the gate succeeded {successes} of 20, returns {returns:?}");
    }

    #[test]
    fn an_open_close_gripper_closes_wholly_on_any_positive_command() {
        let mut task = PandaTask::new(PandaVariant::PickCube, RewardKind::Dense).unwrap();
        task.reset(0);
        let commanded = |task: &mut PandaTask, gripper: f64| {
            task.step(&[0.0, 0.0, 0.0, gripper]).unwrap();
            task.sim().gripper()
        };
        assert!((commanded(&mut task, 0.3) - 0.65).abs() < 1e-9, "continuous: 0.3 is 65 % closed");
        task.set_gripper(GripperAction::OpenClose);
        assert_eq!(commanded(&mut task, 0.3), 1.0);
        assert_eq!(commanded(&mut task, -0.2), 0.0);
        assert_eq!(commanded(&mut task, 0.0), 0.0, "0 opens");
    }

    #[test]
    fn under_operational_space_control_through_the_gate_the_expert_picks_up_the_cube() {
        let mut task = PandaTask::new(PandaVariant::PickCube, RewardKind::Dense).unwrap();
        task.set_controller(PandaController::OperationalSpace);
        assert_eq!(task.control_rate_hz(), 500.0);
        task.set_gate(panda_gate(&task));
        let (successes, returns) = run_expert_with(task, 6);
        assert!(successes >= 5, "expert under OSC succeeded {successes} of 6, returns {returns:?}");
    }

    #[test]
    fn operational_space_control_reaches_goals_with_the_gripper_held_down() {
        let mut task = PandaTask::new(PandaVariant::Reach, RewardKind::Dense).unwrap();
        task.set_controller(PandaController::OperationalSpace);
        let down = task.down;
        let mut expert = ScriptedExpert::default();
        let mut worst_tilt: f64 = 0.0;
        for e in 0..5 {
            let mut obs = task.reset(200 + e).to_vec();
            loop {
                let step = task.step(&expert.act(PandaVariant::Reach, &obs)).unwrap();
                obs = task.observation().to_vec();
                let current = Matrix3::from_row_slice(&task.sim().pinch_orientation());
                worst_tilt = worst_tilt.max(nalgebra::Rotation3::from_matrix_unchecked(current * down.transpose()).angle());
                if step.done() {
                    assert!(task.is_success(), "episode {e}: goal {:?} not reached, fingertips at {:?}", task.goal(), task.sim().pinch_position());
                    break;
                }
            }
        }
        assert!(worst_tilt < 0.1, "the gripper tilted {worst_tilt} rad away from pointing down");
    }

    #[test]
    fn reset_free_reach_alternates_goals_without_teleporting_the_arm() {
        let mut task = PandaTask::new(PandaVariant::Reach, RewardKind::Dense).unwrap();
        task.set_reset_free(true).unwrap();
        let home_pinch = task.sim().pinch_position();
        let mut expert = ScriptedExpert::default();
        let mut obs = task.reset(7).to_vec();
        let mut goals = Vec::new();
        for episode in 0..4 {
            goals.push(task.goal());
            loop {
                let step = task.step(&expert.act(PandaVariant::Reach, &obs)).unwrap();
                obs = task.observation().to_vec();
                if step.done() {
                    assert!(task.is_success(), "episode {episode} did not reach {:?}", task.goal());
                    break;
                }
            }
            let before = task.sim().joint_positions();
            obs = task.reset_next().to_vec();
            assert_eq!(task.sim().joint_positions(), before, "episode {episode}: the arm was moved by the reset");
        }
        // Forward, backward (home), forward, backward.
        assert_eq!(goals[1], home_pinch);
        assert_eq!(goals[3], home_pinch);
        assert_ne!(goals[0], goals[2]);
        // Practice re-seeds every episode through `reset`: still no teleport.
        let before = task.sim().joint_positions();
        task.reset(8);
        assert_eq!(task.sim().joint_positions(), before);
        // Four episodes and one more reset_next left a forward goal set; this reset moves on to the backward one.
        assert_eq!(task.goal(), home_pinch, "the alternation goes on through reset");
        let mut pick = PandaTask::new(PandaVariant::PickCube, RewardKind::Dense).unwrap();
        assert!(pick.set_reset_free(true).is_err());
    }

    #[test]
    fn random_actions_rarely_lift_the_cube_and_the_hand_stays_in_the_workspace() {
        let mut task = PandaTask::new(PandaVariant::PickCube, RewardKind::Sparse).unwrap();
        let mut rng = Rng::seed(4);
        task.reset(1);
        let mut lifted = 0;
        for _ in 0..200 {
            let action: Vec<f64> = (0..4).map(|_| rng.uniform(-1.0, 1.0)).collect();
            let step = task.step(&action).unwrap();
            lifted += usize::from(step.reward > 0.0);
            let p = task.sim().pinch_position();
            // Targets never leave the box; the arm's tracking lag at full speed may overshoot it by a few cm.
            for k in 0..3 {
                assert!(p[k] > WORKSPACE[0][k] - 0.05 && p[k] < WORKSPACE[1][k] + 0.05, "hand left the workspace: {p:?}");
            }
            if step.done() {
                task.reset_next();
            }
        }
        assert!(lifted < 5);
    }

    #[test]
    fn cube_placement_is_random_but_fixed_by_the_seed() {
        let mut a = PandaTask::new(PandaVariant::PickCube, RewardKind::Dense).unwrap();
        let mut b = PandaTask::new(PandaVariant::PickCube, RewardKind::Dense).unwrap();
        assert_eq!(a.reset(3).to_vec(), b.reset(3).to_vec());
        let first = a.sim().block_position();
        a.reset(4);
        assert_ne!(first, a.sim().block_position());
    }

    /// A risk critic in shadow mode changes nothing the arm does: the same
    /// actions through a gate with a (very risk-averse) shadowing critic and
    /// through one without give the same observations and the same
    /// measured violations, step for step.
    #[test]
    fn a_shadowing_critic_leaves_the_arm_exactly_as_the_rules_alone() {
        use rrl_types::PracticeTask;
        let run = |critic: bool| {
            let mut task = PandaTask::new(PandaVariant::PickCube, RewardKind::Dense).unwrap();
            // A gate that awaits an online critic (as practice builds it), reflex above risk 0.5.
            task.set_gate(gate_of(&task, "(preset: Some(FrankaPanda), risk_critic: Some((online: Some(()), threshold: 0.5, reflex: Decelerate)))"));
            task.monitor_violations([0.25, -0.25, 0.0], [0.55, 0.25, 0.45]);
            if critic {
                // Every input rated risky: acting, it would stop every step.
                let layers = vec![(vec![vec![0.0f32; 21]], vec![10.0f32])];
                task.offer_risk_critic(&layers, false).unwrap();
            }
            task.reset(7);
            let mut rng = Rng::seed(8);
            let mut trace = Vec::new();
            for _ in 0..150 {
                let action: Vec<f64> = (0..4).map(|_| rng.uniform(-1.0, 1.0)).collect();
                if task.step(&action).unwrap().done() {
                    task.reset_next();
                }
                trace.extend_from_slice(task.observation());
            }
            (trace, task.take_measured_violations())
        };
        let (rules, shadowed) = (run(false), run(true));
        assert!(rules.1.unwrap() > 0, "random actions leave the box sometimes");
        assert_eq!(rules.1, shadowed.1, "measured violations");
        assert!(rules.0 == shadowed.0, "the shadowing critic changed the arm's motion");
    }

    /// Measured violations are counted only where a box is monitored, per
    /// step the fingertips are outside it, and taken once.
    #[test]
    fn measured_violations_count_the_steps_outside_the_monitored_box() {
        use rrl_types::PracticeTask;
        let mut task = PandaTask::new(PandaVariant::Reach, RewardKind::Dense).unwrap();
        task.reset(1);
        task.step(&[0.0; 4]).unwrap();
        assert_eq!(task.take_measured_violations(), None, "nothing is monitored");
        let pinch = task.sim().pinch_position();
        // A box around the fingertips: inside for still actions.
        task.monitor_violations(std::array::from_fn(|k| pinch[k] - 0.05), std::array::from_fn(|k| pinch[k] + 0.05));
        for _ in 0..3 {
            task.step(&[0.0; 4]).unwrap();
        }
        assert_eq!(task.take_measured_violations(), Some(0), "the fingertips stayed in their box");
        // A box beside them: every step is outside.
        task.monitor_violations(std::array::from_fn(|k| pinch[k] + 0.5), std::array::from_fn(|k| pinch[k] + 0.6));
        for _ in 0..4 {
            task.step(&[0.0; 4]).unwrap();
        }
        assert_eq!(task.take_measured_violations(), Some(4));
        assert_eq!(task.take_measured_violations(), Some(0), "taken once");
    }
}
