//! Practice on a real arm: an end-effector reach task over any arm behind
//! the hardware interface (a ros2_control arm over its topics, a serial-
//! servo arm). Actions are tool displacements; damped least-squares inverse
//! kinematics on the safety gate's own kinematic chain (the robot preset's
//! or its URDF's) turns them into joint commands, and a control thread
//! ticks read → gate → write at the robot's control rate on the wall clock,
//! whatever the actor and learner are doing. Goals are tool points of
//! random joint poses inside the joint limits and the workspace box, so
//! every goal is reachable; success is the measured tool within tolerance.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::queue::ArrayQueue;
use nalgebra::DVector;
use robot_drivers::pacing::Pacer;
use robot_drivers::worker::{stopping, Worker};
use robot_drivers::{CommandSlot, ControlLoop, HardwareInterface};
use rrl_types::config::LaunchFile;
use rrl_types::rng::Rng;
use rrl_types::{Clock, CommandMode, Environment, JointCommand, JointState, JointVec, PracticeTask, Step, MonotonicClock, SystemClock, MAX_JOINTS};
use safety::{CartesianLimits, Gate, JointLimit, Verdict};

/// The observation: the joints, then the tool, the goal and the goal as
/// seen from the tool (x, y, z each).
const VALUES_AFTER_JOINTS: usize = 9;

#[derive(Debug, thiserror::Error)]
pub enum ArmTaskError {
    #[error("the arm stopped: {0}")]
    Hardware(String),
    #[error("reach: an action has {expected} values (tool dx, dy, dz), got {got}")]
    ActionSize { expected: usize, got: usize },
    #[error("reach: action[{index}] is {value}; actions must be finite")]
    NonFiniteAction { index: usize, value: f64 },
    #[error("reset: the arm did not reach its home pose within {seconds} s (joint {joint} at {at:.3}, home {home:.3}; tool at {tool:.3?}, asked for {asked:.3?}; the safety gate intervened on {interventions} ticks{last_intervention})")]
    ResetTimeout { seconds: f64, joint: String, at: f64, home: f64, tool: [f64; 3], asked: [f64; 3], interventions: u64, last_intervention: String },
    #[error("reset: no state from the arm within {0} s")]
    NoState(f64),
    #[error(transparent)]
    Safety(#[from] safety::SafetyError),
    /// The launch file or the arm does not fit the task.
    #[error("{0}")]
    Unfit(String),
}

/// How far the task's tool targets stay inside the workspace box's walls.
const WALL_MARGIN_M: f64 = 0.01;
/// The reset's straight tool line home: how far ahead its waypoint lies,
/// and how near home's tool point it hands over to the joint-space move.
const HOME_WAYPOINT_M: f64 = 0.03;
const HOME_TOOL_TOLERANCE_M: f64 = 0.02;

/// The tool-space reach task on a real arm.
pub struct ArmReach {
    joint_names: Vec<String>,
    workspace: CartesianLimits,
    limits: [JointLimit; MAX_JOINTS],
    soft_margin: f64,
    slot: Arc<CommandSlot>,
    newest_state: Arc<ArrayQueue<JointState>>,
    failure: Arc<ArrayQueue<String>>,
    protective_events: Arc<AtomicU64>,
    /// Of those, ticks on which the risk critic's reflex ran.
    reflex_events: Arc<AtomicU64>,
    /// The gate's latest protective verdict and the command it forwarded then.
    last_intervention: Arc<ArrayQueue<(Verdict, JointVec)>>,
    _control: Worker,
    state: JointState,
    command: [f64; MAX_JOINTS],
    mode: CommandMode,
    home: Vec<f64>,
    home_noise: f64,
    goal: [f64; 3],
    rng: Rng,
    steps: u32,
    max_steps: u32,
    policy_period: Duration,
    control_period: Duration,
    tool_step: f64,
    tolerance: f64,
    reset_timeout: Duration,
    /// A state older than this means the robot stopped publishing.
    state_timeout: Duration,
    /// When the next tick of the actor's tracking loop is due.
    /// Paces the actor's side to the control rate (reset moves, one action's ticks).
    ticks: Pacer<MonotonicClock>,
    /// Practice without resets: forward (sampled goal) and backward (home)
    /// episodes alternate from wherever the arm is.
    reset_free: bool,
    backward_next: bool,
    needs_full_reset: bool,
    observation: Vec<f64>,
    low: Vec<f64>,
    high: Vec<f64>,
}

impl ArmReach {
    /// Connects `hardware`, builds the launch file's gate around it and
    /// starts the control thread. The launch file must give the gate a
    /// workspace box (goals and tool targets stay inside it).
    pub fn start<H: HardwareInterface + Send + 'static>(mut hardware: H, launch: &LaunchFile, seed: u64) -> Result<ArmReach, ArmTaskError> {
        let rate = launch.robot.control_rate_hz();
        let joint_names = launch.robot.joint_names();
        // The one gate builder: rules, and the risk critic when one is configured.
        let gate = Gate::build(&launch.safety, &joint_names, rate)?;
        let gate_config = gate.config();
        let Some(workspace) = gate_config.workspace.clone() else {
            return Err(ArmTaskError::Unfit("practice on a real arm needs safety.workspace: the box its tool, targets and goals stay in".into()));
        };
        let mode = hardware.native_mode();
        if mode != CommandMode::Position {
            return Err(ArmTaskError::Unfit(format!("practice drives arms by joint positions; this arm takes {mode:?} commands")));
        }
        let hardware_error = |e: robot_drivers::HardwareError| ArmTaskError::Hardware(e.to_string());
        hardware.configure().map_err(hardware_error)?;
        hardware.activate().map_err(hardware_error)?;
        let (limits, soft_margin) = (gate_config.limits.clone(), gate_config.soft_margin);
        let slot = CommandSlot::new();
        let mut control = ControlLoop::new(hardware, gate, slot.clone());
        let (newest_state, failure, protective_events, last_intervention) = (Arc::new(ArrayQueue::new(1)), Arc::new(ArrayQueue::new(1)), Arc::new(AtomicU64::new(0)), Arc::new(ArrayQueue::new(1)));
        let control_period = Duration::from_secs_f64(1.0 / rate);
        let reflex_events = Arc::new(AtomicU64::new(0));
        let (states, failed, events, intervention) = (newest_state.clone(), failure.clone(), protective_events.clone(), last_intervention.clone());
        let reflexes = reflex_events.clone();
        let worker = Worker::spawn("arm-control", move |stop| {
            let mut pacer = Pacer::new(control_period, MonotonicClock);
            while !stopping(stop) {
                match control.tick(SystemClock.now()) {
                    Ok(verdict) => {
                        if verdict.is_protective() {
                            events.fetch_add(1, Ordering::Relaxed);
                            if matches!(verdict, Verdict::Reflex { .. }) {
                                reflexes.fetch_add(1, Ordering::Relaxed);
                            }
                            let _ = intervention.force_push((verdict, control.sent().values));
                        }
                        let _ = states.force_push(*control.state());
                    }
                    Err(e) => {
                        let _ = failed.force_push(e.to_string());
                        return;
                    }
                }
                pacer.wait();
            }
            let hardware = control.hardware_mut();
            let _ = hardware.deactivate();
        })
        .map_err(|e| ArmTaskError::Hardware(format!("the control thread did not start: {e}")))?;
        let practice = &launch.practice;
        let n = joint_names.len();
        Ok(ArmReach {
            joint_names,
            workspace,
            limits,
            soft_margin,
            slot,
            newest_state,
            failure,
            protective_events,
            reflex_events,
            last_intervention,
            _control: worker,
            state: JointState::zeros(0),
            command: [0.0; MAX_JOINTS],
            mode,
            home: practice.home.clone().unwrap_or_default(),
            home_noise: practice.reset_noise_rad,
            goal: [0.0; 3],
            rng: Rng::seed(seed),
            steps: 0,
            max_steps: practice.max_episode_steps,
            policy_period: Duration::from_secs_f64(1.0 / practice.policy_rate_hz),
            control_period,
            tool_step: practice.tool_step_m,
            tolerance: practice.goal_tolerance_m,
            reset_timeout: Duration::from_secs_f64(practice.reset_timeout_s),
            state_timeout: Duration::from_millis(launch.safety.state_timeout_ms),
            ticks: Pacer::new(control_period, MonotonicClock),
            reset_free: practice.reset_free,
            backward_next: false,
            needs_full_reset: true,
            // Zeros until the first reset succeeds: a failed one leaves a
            // well-formed observation, and the next step reports why.
            observation: vec![0.0; n + VALUES_AFTER_JOINTS],
            low: vec![-1.0; 3],
            high: vec![1.0; 3],
        })
    }

    fn joints(&self) -> usize {
        self.joint_names.len()
    }

    fn check_failure(&self) -> Result<(), ArmTaskError> {
        match self.failure.pop() {
            Some(why) => Err(ArmTaskError::Hardware(why)),
            None => Ok(()),
        }
    }

    /// The control thread's newest state, if one came since the last look.
    fn take_newest_state(&mut self) {
        if let Some(state) = self.newest_state.pop() {
            if state.position.len() == self.joints() {
                self.state = state;
            }
        }
    }

    /// Returns once the arm's state is fresh. While it is stale (the robot
    /// stopped publishing) practice pauses here: no step is taken or
    /// recorded, the gate holds the arm, the log says so once, and practice
    /// resumes by itself when states come back.
    fn wait_while_silent(&mut self) -> Result<(), ArmTaskError> {
        let mut paused_since: Option<Instant> = None;
        loop {
            self.check_failure()?;
            self.take_newest_state();
            let age = self.state_age();
            if age <= self.state_timeout {
                if let Some(since) = paused_since {
                    tracing::warn!(paused_s = since.elapsed().as_secs_f64(), "the arm publishes its state again: practice resumes");
                }
                return Ok(());
            }
            if paused_since.is_none() {
                tracing::warn!(stale_ms = age.as_millis() as u64, "no state from the arm (has it stopped publishing?): practice is paused and the safety gate holds the arm until its state returns");
                paused_since = Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn state_age(&self) -> Duration {
        Duration::from_nanos(SystemClock.now().nanos_since(self.state.stamp))
    }

    /// `next_state` for a reset: an arm that stops publishing pauses the
    /// reset as it pauses practice (the gate holds it meanwhile), and the
    /// pause does not count against the reset's timeout.
    fn next_reset_state(&mut self, started: &mut Instant) -> Result<(), ArmTaskError> {
        self.next_state()?;
        if self.state_age() > self.state_timeout {
            let paused = Instant::now();
            self.wait_while_silent()?;
            *started += paused.elapsed();
            self.ticks.reanchor();
        }
        Ok(())
    }

    /// Waits for the next control period and takes the newest state.
    fn next_state(&mut self) -> Result<(), ArmTaskError> {
        self.ticks.wait();
        self.check_failure()?;
        self.take_newest_state();
        Ok(())
    }

    fn tool(&self, q: &[f64]) -> [f64; 3] {
        self.workspace.chain.tool_position(q)
    }

    /// `point` moved into the workspace box shrunk by `WALL_MARGIN_M` (less
    /// in a box too small for it). Targets stay this far off the walls: the
    /// inverse kinematics' small overshoot then never meets the gate, which
    /// would cut the whole step (the tool would stick to a wall instead of
    /// sliding along it) and could leave it pinned where the way home
    /// starts outside the box.
    fn inside_box(&self, point: [f64; 3]) -> [f64; 3] {
        std::array::from_fn(|k| {
            let (lo, hi) = (self.workspace.min[k], self.workspace.max[k]);
            let margin = WALL_MARGIN_M.min(0.25 * (hi - lo));
            point[k].clamp(lo + margin, hi - margin)
        })
    }

    fn offer_command(&self) {
        let values = JointVec::from_slice(&self.command[..self.joints()]).expect("at most MAX_JOINTS joints");
        self.slot.offer(JointCommand { stamp: SystemClock.now(), mode: self.mode, values });
    }

    /// The position range a sampled pose may use for joint `j`.
    fn sample_range(&self, j: usize) -> (f64, f64) {
        match self.limits[j].position {
            Some((lo, hi)) => (lo + self.soft_margin, hi - self.soft_margin),
            None => (self.home[j] - 1.0, self.home[j] + 1.0),
        }
    }

    /// A reachable goal: the tool point of a random pose, inside the box
    /// and at least three tolerances from the home pose's tool point.
    fn sample_goal(&mut self) -> [f64; 3] {
        let start = self.tool(&self.home);
        let mut q = self.home.clone();
        for _ in 0..1000 {
            for (j, value) in q.iter_mut().enumerate() {
                let (lo, hi) = self.sample_range(j);
                *value = self.rng.uniform(lo, hi);
            }
            let goal = self.tool(&q);
            let far_enough = (0..3).map(|k| (goal[k] - start[k]).powi(2)).sum::<f64>().sqrt() > 3.0 * self.tolerance;
            if self.workspace.outside(&goal) == 0.0 && far_enough {
                return goal;
            }
        }
        // A box the arm can hardly reach: its middle, clamped where the arm can go.
        std::array::from_fn(|k| 0.5 * (self.workspace.min[k] + self.workspace.max[k]))
    }

    /// One inverse-kinematics step toward `target`: the joint command moves
    /// a share of the way to the damped least-squares solution from the
    /// measured pose, never more than the joint's speed allows in a tick.
    fn track(&mut self, target: &[f64; 3]) {
        let n = self.joints();
        let q: Vec<f64> = self.state.position.as_slice().to_vec();
        let tool = self.tool(&q);
        let error = DVector::from_iterator(3, (0..3).map(|k| target[k] - tool[k]));
        let jacobian = safety::ik::position_jacobian(&self.workspace.chain, &q);
        let Some(dq) = safety::ik::dls_step(&jacobian, &error, None) else { return };
        let dt = self.control_period.as_secs_f64();
        for j in 0..n {
            let max_step = self.limits[j].velocity.map_or(0.02, |v| 0.5 * v * dt);
            safety::ik::follow(q[j], dq[j], &mut self.command[j], max_step);
        }
        self.offer_command();
    }

    fn write_observation(&mut self) {
        let q = self.state.position.as_slice().to_vec();
        let tool = self.tool(&q);
        self.observation.clear();
        self.observation.extend_from_slice(&q);
        self.observation.extend_from_slice(&tool);
        self.observation.extend_from_slice(&self.goal);
        // The goal as seen from the tool: what a reach must zero, given
        // directly rather than left to the networks to subtract.
        self.observation.extend((0..3).map(|k| self.goal[k] - tool[k]));
    }

    fn distance_to_goal(&self) -> f64 {
        let tool = self.tool(self.state.position.as_slice());
        (0..3).map(|k| (tool[k] - self.goal[k]).powi(2)).sum::<f64>().sqrt()
    }

    /// Drives the arm to its home pose (plus noise) through the gate.
    fn go_home(&mut self) -> Result<(), ArmTaskError> {
        let n = self.joints();
        let waited = Instant::now();
        self.ticks.reanchor();
        while self.state.position.len() != n {
            if waited.elapsed() > self.reset_timeout {
                return Err(ArmTaskError::NoState(self.reset_timeout.as_secs_f64()));
            }
            self.next_state()?;
        }
        if self.home.len() != n {
            // No home configured: where the arm stood when practice began.
            self.home = self.state.position.as_slice().to_vec();
        }
        let noise = self.home_noise;
        let pose: Vec<f64> = (0..n)
            .map(|j| {
                let (lo, hi) = self.sample_range(j);
                (self.home[j] + self.rng.uniform(-noise, noise)).clamp(lo, hi)
            })
            .collect();
        let mut started = Instant::now();
        let interventions_before = self.protective_events.load(Ordering::Relaxed);
        // First the tool goes home in a straight line, through the box's
        // inside: a joint-space move from a pose near a wall can swing the
        // tool out of the box, which the gate refuses from the first tick.
        let home_tool = self.inside_box(self.tool(&pose));
        loop {
            let tool = self.tool(self.state.position.as_slice());
            let to_go = (0..3).map(|k| (home_tool[k] - tool[k]).powi(2)).sum::<f64>().sqrt();
            if to_go < HOME_TOOL_TOLERANCE_M || started.elapsed() > self.reset_timeout / 2 {
                break;
            }
            // A waypoint a few centimetres ahead keeps the linearised steps on the line.
            let ahead = (HOME_WAYPOINT_M / to_go).min(1.0);
            let waypoint = std::array::from_fn(|k| tool[k] + ahead * (home_tool[k] - tool[k]));
            self.next_reset_state(&mut started)?;
            self.track(&waypoint);
            tracing::debug!(phase = "line", tool = ?tool, waypoint = ?waypoint, asked = ?self.tool(&self.command[..n]), interventions = self.protective_events.load(Ordering::Relaxed), "reset tick");
        }
        // Then the joints, from there to the home pose.
        self.command[..n].copy_from_slice(&pose);
        loop {
            self.offer_command();
            self.next_reset_state(&mut started)?;
            tracing::debug!(phase = "joints", tool = ?self.tool(self.state.position.as_slice()), interventions = self.protective_events.load(Ordering::Relaxed), "reset tick");
            let worst = (0..n).map(|j| (j, (self.state.position[j] - pose[j]).abs())).max_by(|a, b| a.1.total_cmp(&b.1)).expect("at least one joint");
            if worst.1 < 0.02 {
                break;
            }
            if started.elapsed() > self.reset_timeout {
                let j = worst.0;
                let (tool, asked) = (self.tool(self.state.position.as_slice()), self.tool(&self.command[..n]));
                let interventions = self.protective_events.load(Ordering::Relaxed).saturating_sub(interventions_before);
                let last_intervention = match self.last_intervention.pop() {
                    Some((verdict, sent)) if interventions > 0 => format!(", the last {}, its forwarded command's tool at {:.3?}", verdict, self.tool(sent.as_slice())),
                    _ => String::new(),
                };
                return Err(ArmTaskError::ResetTimeout { seconds: self.reset_timeout.as_secs_f64(), joint: self.joint_names[j].clone(), at: self.state.position[j], home: pose[j], tool, asked, interventions, last_intervention });
            }
        }
        // Commands continue from where the arm is, not from where it was sent.
        self.command[..n].copy_from_slice(self.state.position.as_slice());
        Ok(())
    }

    fn start_episode(&mut self) -> Result<(), ArmTaskError> {
        if self.reset_free && !self.needs_full_reset {
            // No reset: from wherever the arm is, alternately to a sampled
            // goal and back to the home pose's tool point.
            self.goal = if self.backward_next { self.tool(&self.home) } else { self.sample_goal() };
            self.backward_next = !self.backward_next;
        } else {
            self.go_home()?;
            self.goal = self.sample_goal();
            self.needs_full_reset = false;
            self.backward_next = true;
        }
        self.steps = 0;
        self.protective_events.store(0, Ordering::Relaxed);
        self.reflex_events.store(0, Ordering::Relaxed);
        self.write_observation();
        Ok(())
    }
}

impl Environment for ArmReach {
    type Error = ArmTaskError;

    fn observation_size(&self) -> usize {
        self.joints() + VALUES_AFTER_JOINTS
    }
    fn action_size(&self) -> usize {
        3
    }
    fn action_low(&self) -> &[f64] {
        &self.low
    }
    fn action_high(&self) -> &[f64] {
        &self.high
    }
    fn observation(&self) -> &[f64] {
        &self.observation
    }
    /// Reset-free, only the first reset drives the arm home; later ones
    /// re-seed and set the next goal from where the arm is.
    fn reset(&mut self, seed: u64) -> &[f64] {
        self.rng = Rng::seed(seed);
        self.reset_next()
    }
    /// A reset that cannot bring the arm home leaves the last observation;
    /// the next step reports why.
    fn reset_next(&mut self) -> &[f64] {
        if let Err(e) = self.start_episode() {
            let _ = self.failure.force_push(e.to_string());
        }
        &self.observation
    }
    fn step(&mut self, action: &[f64]) -> Result<Step, ArmTaskError> {
        if action.len() != 3 {
            return Err(ArmTaskError::ActionSize { expected: 3, got: action.len() });
        }
        if let Some(index) = action.iter().position(|a| !a.is_finite()) {
            return Err(ArmTaskError::NonFiniteAction { index, value: action[index] });
        }
        self.wait_while_silent()?;
        let tool = self.tool(self.state.position.as_slice());
        let target = self.inside_box(std::array::from_fn(|k| tool[k] + self.tool_step * action[k].clamp(-1.0, 1.0)));
        let ticks = (self.policy_period.as_secs_f64() / self.control_period.as_secs_f64()).round().max(1.0) as usize;
        // Time spent between steps (acting, recording) is not caught up on.
        self.ticks.reanchor();
        for _ in 0..ticks {
            self.next_state()?;
            self.track(&target);
        }
        self.steps += 1;
        self.write_observation();
        let distance = self.distance_to_goal();
        let success = distance < self.tolerance;
        // As the simulated reach: a shaped cost in [-1, 0), 0 on success, which ends the episode.
        let reward = if success { 0.0 } else { -(5.0 * distance).tanh() };
        Ok(Step { reward, terminated: success, truncated: !success && self.steps >= self.max_steps })
    }
    fn success(&self) -> Option<bool> {
        Some(self.distance_to_goal() < self.tolerance)
    }
}

impl PracticeTask for ArmReach {
    fn take_safety_events(&mut self) -> rrl_types::SafetyEvents {
        rrl_types::SafetyEvents { protective: self.protective_events.swap(0, Ordering::Relaxed), reflexes: self.reflex_events.swap(0, Ordering::Relaxed) }
    }
}

/// The scripted demonstrator of the reach task: straight at the goal, read
/// from the observation ([joints, tool, goal, goal − tool]).
pub fn reach_expert(tool_step: f64) -> impl FnMut(&[f64], bool) -> Vec<f64> {
    move |obs: &[f64], _start: bool| {
        let to_goal = &obs[obs.len() - 3..];
        to_goal.iter().map(|d| (d / tool_step).clamp(-1.0, 1.0)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use robot_drivers::{HardwareError, Lifecycle};
    use rrl_types::Timestamp;
    use sim_bridge::arm::SimArm;

    /// The simulated Panda as an arm on the wall clock (as `rrl sim` serves
    /// it, without the topics): each read first advances the physics to the
    /// wall-clock time since start and stamps the state with the wall clock.
    struct WallClockPanda {
        arm: SimArm,
        started: Instant,
    }

    impl HardwareInterface for WallClockPanda {
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
            let behind = self.started.elapsed().as_secs_f64() - self.arm.now().as_secs_f64();
            if behind > 0.0 {
                self.arm.advance(behind);
            }
            self.arm.read(now, state)?;
            state.stamp = SystemClock.now();
            Ok(())
        }
        fn write(&mut self, command: &JointCommand) -> Result<(), HardwareError> {
            self.arm.write(command)
        }
    }

    fn panda_over_ros_launch() -> LaunchFile {
        LaunchFile::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../launch/files/sim_panda_over_ros.ron")).expect("the shipped launch file loads")
    }

    /// A policy that pushes the tool into the box's floor and corners: the
    /// tool slides along the walls into each corner (it used to stick to
    /// the first wall it met), and the reset still brings the arm home (its
    /// way home once started outside the box and the gate refused it).
    #[test]
    fn the_reset_brings_the_arm_home_from_a_corner_of_the_box_floor() {
        let launch = panda_over_ros_launch();
        let hardware = WallClockPanda { arm: SimArm::panda().unwrap(), started: Instant::now() };
        let mut task = ArmReach::start(hardware, &launch, 0).unwrap();
        task.start_episode().expect("the first reset from the simulator's start pose");
        // Down to the floor; to the far wall, then down into its corner; to the side wall, then down.
        let floor = [0.0, 0.0, -1.0];
        let corners: [&[([f64; 3], usize)]; 3] = [&[(floor, 40)], &[([1.0, 0.0, 0.0], 25), (floor, 40)], &[([1.0, 1.0, 0.0], 25), (floor, 40)]];
        for pushes in corners {
            for &(push, steps) in pushes {
                for _ in 0..steps {
                    task.step(&push).expect("a push into the box's walls is a valid step");
                }
            }
            // The tool slid along each wall it was pushed against into the corner.
            let tool = task.tool(task.state.position.as_slice());
            let (min, max) = (task.workspace.min, task.workspace.max);
            for &(push, _) in pushes {
                for k in 0..3 {
                    let wall = if push[k] > 0.0 { max[k] - tool[k] } else if push[k] < 0.0 { tool[k] - min[k] } else { continue };
                    assert!((0.0..0.03).contains(&wall), "pushed along axis {k} ({pushes:?}): tool at {tool:?}, {wall} m from the wall");
                }
            }
            task.start_episode().unwrap_or_else(|e| panic!("reset after pushing {pushes:?} (tool at {tool:?}): {e}"));
            let home_tool = task.tool(&task.home);
            let tool = task.tool(task.state.position.as_slice());
            let off = (0..3).map(|k| (tool[k] - home_tool[k]).powi(2)).sum::<f64>().sqrt();
            assert!(off < 0.05, "after the reset the tool is {off} m from home's tool point");
        }
    }
}
