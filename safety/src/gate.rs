//! The gate itself: one `check` per control tick, between whatever produced
//! a command and the hardware write.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use std::path::Path;

use rrl_types::config::{Reflex, RobotPreset, SafetyConfig};
use rrl_types::{CommandMode, GateTick, JointCommand, JointState, JointVec, TickVerdict, Timestamp, MAX_JOINTS};

use crate::critic::{critic_channel, CriticLoader, CriticSlot, RiskCritic};
use crate::kinematics::{KinematicChain, KinematicsError};
use crate::so101;
use crate::limits::{enforce_effort, enforce_position, enforce_velocity, preset_limits, ClipFlags, JointLimit, JointMotion};

/// Why a tick held the robot instead of forwarding the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldReason {
    /// No action source has sent a command yet.
    NoCommand,
    EStop,
    StaleCommand,
    StaleState,
    NonFiniteCommand,
    NonFiniteState,
    CommandSize,
    StateSize,
    WrongCommandMode,
    TorqueExceeded,
    /// The robot reports an external force above `max_force_n`.
    ForceExceeded,
}

/// What the gate did with one tick's command.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Forwarded unchanged.
    Pass,
    /// Forwarded after the named limits changed it.
    Clipped(ClipFlags),
    /// Not forwarded: the robot holds its last safe command.
    Held(HoldReason),
    /// The learned risk critic judged the command too risky and the reflex ran.
    Reflex { risk: f32, reflex: Reflex },
}

/// In words, for logs and errors: "passed", "clipped (position, workspace)",
/// "held (StaleState)", "reflex Hold (risk 0.93)".
impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Pass => f.write_str("passed"),
            Verdict::Clipped(flags) => {
                f.write_str("clipped (")?;
                for (i, name) in flags.names().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(name)?;
                }
                f.write_str(")")
            }
            Verdict::Held(reason) => write!(f, "held ({reason:?})"),
            Verdict::Reflex { risk, reflex } => write!(f, "reflex {reflex:?} (risk {risk:.2})"),
        }
    }
}

impl HoldReason {
    const ALL: [HoldReason; 11] = [
        HoldReason::NoCommand,
        HoldReason::EStop,
        HoldReason::StaleCommand,
        HoldReason::StaleState,
        HoldReason::NonFiniteCommand,
        HoldReason::NonFiniteState,
        HoldReason::CommandSize,
        HoldReason::StateSize,
        HoldReason::WrongCommandMode,
        HoldReason::TorqueExceeded,
        HoldReason::ForceExceeded,
    ];

    /// The reason a recorded tick's `detail` numbers.
    pub fn from_number(number: u16) -> Option<HoldReason> {
        HoldReason::ALL.into_iter().find(|r| *r as u16 == number)
    }
}

/// A recorded tick's verdict in words, as `Verdict`'s `Display` says it
/// (without the risk, which a tick keeps apart): "clipped (workspace)",
/// "held (StaleState)", "reflex Hold".
pub fn describe_tick(verdict: TickVerdict, detail: u16) -> String {
    match verdict {
        TickVerdict::Pass => Verdict::Pass.to_string(),
        TickVerdict::Clipped => Verdict::Clipped(ClipFlags(detail as u8)).to_string(),
        TickVerdict::Held => match HoldReason::from_number(detail) {
            Some(reason) => Verdict::Held(reason).to_string(),
            None => format!("held (reason {detail})"),
        },
        TickVerdict::Reflex => match [Reflex::Hold, Reflex::Decelerate, Reflex::Recover].into_iter().find(|r| *r as u16 == detail) {
            Some(reflex) => format!("reflex {reflex:?}"),
            None => format!("reflex {detail}"),
        },
    }
}

impl Verdict {
    /// Whether the gate protected the robot or its surroundings: a position,
    /// effort or workspace limit reached, a hold or a reflex. Velocity,
    /// acceleration, jerk and tool-speed shaping is the limiter's normal
    /// work on a command stream (ros2_control's limiter does it silently).
    pub fn is_protective(&self) -> bool {
        match self {
            Verdict::Pass => false,
            Verdict::Clipped(flags) => flags.0 & (ClipFlags::POSITION.0 | ClipFlags::EFFORT.0 | ClipFlags::WORKSPACE.0) != 0,
            Verdict::Held(_) | Verdict::Reflex { .. } => true,
        }
    }

    /// The cost label for the risk critic: 1 when a constraint was hit.
    pub fn cost(&self) -> f64 {
        match self {
            Verdict::Pass => 0.0,
            Verdict::Clipped(_) | Verdict::Held(_) | Verdict::Reflex { .. } => 1.0,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SafetyError {
    #[error("safety.joints: unknown joint `{name}`; the robot has: {known}")]
    UnknownJoint { name: String, known: String },
    #[error("the robot has {0} joints; the gate supports at most {MAX_JOINTS}")]
    TooManyJoints(usize),
    #[error("safety.{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("safety.urdf: {0}")]
    Kinematics(#[from] KinematicsError),
    /// A configured risk critic that cannot serve: the gate is not built
    /// without it (a critic the user asked for is never silently dropped).
    #[error("safety.risk_critic: {0}")]
    Critic(String),
}

/// A handle that trips the e-stop from any thread (a button, a watchdog).
/// Tripping is one atomic store; only `Gate::reset_estop` clears it.
#[derive(Debug, Clone, Default)]
pub struct EStop(Arc<AtomicBool>);

impl EStop {
    pub fn trip(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_tripped(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The gate's fixed configuration.
#[derive(Debug, Clone)]
pub struct GateConfig {
    pub joints: usize,
    pub limits: [JointLimit; MAX_JOINTS],
    pub soft_margin: f64,
    pub command_timeout_ns: u64,
    pub state_timeout_ns: u64,
    pub max_torque: Option<f64>,
    /// Largest external force the robot may report, N.
    pub max_force: Option<f64>,
    /// The Cartesian box and step limit on the tool point.
    pub workspace: Option<CartesianLimits>,
    /// Control period.
    pub dt: f64,
}

/// Where the tool point may go, and how far per tick.
#[derive(Debug, Clone)]
pub struct CartesianLimits {
    pub chain: KinematicChain,
    pub min: [f64; 3],
    pub max: [f64; 3],
    /// Largest tool displacement per tick: the smaller of the step limit
    /// and the speed limit times the control period, m.
    pub max_step: f64,
}

impl CartesianLimits {
    /// How far `point` lies inside the box from its nearest wall (negative
    /// outside).
    pub fn clearance(&self, point: &[f64; 3]) -> f64 {
        (0..3).map(|k| (point[k] - self.min[k]).min(self.max[k] - point[k])).fold(f64::INFINITY, f64::min)
    }

    /// How far `point` lies outside the box (0 inside).
    pub fn outside(&self, point: &[f64; 3]) -> f64 {
        let mut squared = 0.0;
        for k in 0..3 {
            let beyond = (self.min[k] - point[k]).max(point[k] - self.max[k]).max(0.0);
            squared += beyond * beyond;
        }
        squared.sqrt()
    }
}

impl GateConfig {
    /// From a launch file's safety section, for a robot with these joints.
    pub fn from_launch(safety: &SafetyConfig, joint_names: &[String], control_rate_hz: f64) -> Result<GateConfig, SafetyError> {
        if joint_names.len() > MAX_JOINTS {
            return Err(SafetyError::TooManyJoints(joint_names.len()));
        }
        let index_of = |name: &str| {
            joint_names.iter().position(|j| j == name).ok_or_else(|| SafetyError::UnknownJoint { name: name.into(), known: joint_names.join(", ") })
        };
        let mut limits = [JointLimit::default(); MAX_JOINTS];
        if let Some(preset) = safety.preset {
            for (name, limit) in preset_limits(preset) {
                limits[index_of(name)?] = limit;
            }
        }
        if safety.command_timeout_ms == 0 || safety.state_timeout_ms == 0 {
            return Err(SafetyError::Invalid { field: "command_timeout_ms/state_timeout_ms".into(), message: "timeouts must be positive".into() });
        }
        if !(control_rate_hz.is_finite() && control_rate_hz > 0.0) {
            return Err(SafetyError::Invalid { field: "control_rate_hz".into(), message: format!("must be positive, got {control_rate_hz}") });
        }
        let urdf = match &safety.urdf {
            Some(urdf) => Some(KinematicChain::load_urdf(Path::new(&urdf.file), &urdf.base_link, &urdf.tip_link, joint_names)?),
            // A preset with a built-in URDF, unless the launch file names its own.
            None if safety.preset == Some(RobotPreset::So101) => Some(so101::chain(joint_names)?),
            None => None,
        };
        let urdf_chain = match urdf {
            Some((chain, urdf_limits)) => {
                for (name, limit) in urdf_limits {
                    let slot = &mut limits[index_of(&name)?];
                    // The preset's tables stay; the URDF fills what they leave open.
                    slot.position = slot.position.or(limit.position);
                    slot.velocity = slot.velocity.or(limit.velocity);
                    slot.effort = slot.effort.or(limit.effort);
                }
                Some(chain)
            }
            None => None,
        };
        for joint in &safety.joints {
            limits[index_of(&joint.name)?].apply(joint);
        }
        let workspace = match &safety.workspace {
            None => None,
            Some(ws) => {
                let chain = match (urdf_chain, safety.preset) {
                    // The launch file's URDF, or the preset's built-in one (So101).
                    (Some(chain), _) => chain,
                    (None, Some(preset @ (RobotPreset::FrankaPanda | RobotPreset::FrankaResearch3))) => {
                        let mut indices = [0; 7];
                        for (k, name) in preset.joint_names().iter().enumerate() {
                            indices[k] = index_of(name)?;
                        }
                        KinematicChain::panda().with_joint_indices(&indices)
                    }
                    _ => return Err(SafetyError::Invalid { field: "workspace".into(), message: "the box needs the robot's kinematics: name its URDF in safety.urdf".into() }),
                };
                let offset = [ws.tool_offset_m.0, ws.tool_offset_m.1, ws.tool_offset_m.2];
                Some(CartesianLimits {
                    chain: chain.with_tool_offset(offset),
                    min: [ws.min.0, ws.min.1, ws.min.2],
                    max: [ws.max.0, ws.max.1, ws.max.2],
                    max_step: ws.max_step_m.min(ws.max_speed_mps / control_rate_hz),
                })
            }
        };
        for (i, limit) in limits.iter().take(joint_names.len()).enumerate() {
            if let Some((lo, hi)) = limit.position {
                if !(lo + safety.soft_margin_rad < hi - safety.soft_margin_rad) {
                    return Err(SafetyError::Invalid {
                        field: format!("joints[{}].position", joint_names[i]),
                        message: format!("[{lo}, {hi}] leaves no room inside a soft margin of {}", safety.soft_margin_rad),
                    });
                }
            }
        }
        Ok(GateConfig {
            joints: joint_names.len(),
            limits,
            soft_margin: safety.soft_margin_rad,
            command_timeout_ns: safety.command_timeout_ms * 1_000_000,
            state_timeout_ns: safety.state_timeout_ms * 1_000_000,
            max_torque: safety.max_torque_nm,
            max_force: safety.max_force_n,
            workspace,
            dt: 1.0 / control_rate_hz,
        })
    }
}

/// The learned part of the gate: critic, threshold, reflex, and where new
/// weights come in.
struct RiskStage {
    critic: Option<RiskCritic>,
    slot: Option<CriticSlot>,
    threshold: f32,
    reflex: Reflex,
    input: Vec<f32>,
    /// The last forwarded position command the critic judged comfortably
    /// safe (risk below half the threshold): where `Recover` retreats to.
    comfortable: Option<[f64; MAX_JOINTS]>,
    /// `Recover` latched: the robot retreats and waits there until the
    /// incoming command itself is no longer risky.
    recovering: bool,
    /// The risk the critic gave this tick's command; NaN when none judged it.
    last_risk: f32,
    /// Whether the critic's verdict triggers the reflex; in shadow mode
    /// (false) it is scored and recorded only, until the learner's held-out
    /// check trusts it.
    acting: bool,
    /// Whether `input` holds this tick's critic input (a held tick has none).
    input_ready: bool,
}

/// The gate. Per-tick work is bounded, allocation-free and lock-free.
pub struct Gate {
    config: GateConfig,
    estop: EStop,
    /// The joint positions measured in the last checked tick, for
    /// `measured_violation` (judged only when asked: off the per-tick path).
    measured: JointVec,
    /// Last forwarded motion per joint; `None` until the first tick.
    motion: Option<[JointMotion; MAX_JOINTS]>,
    /// Consecutive ticks on which the workspace box refused all of the
    /// limiter's step.
    workspace_refusals: u32,
    risk: RiskStage,
    /// Ticks checked or held since the gate was built.
    ticks: u64,
}

impl Gate {
    /// The one way a gate is built from a launch file's safety section: its
    /// rules, and its risk critic whenever one is configured (the weights'
    /// path was resolved when the file was parsed). A critic that cannot be
    /// loaded or does not fit the robot refuses the gate.
    pub fn build(safety: &SafetyConfig, joint_names: &[String], control_rate_hz: f64) -> Result<Gate, SafetyError> {
        let mut gate = Gate::new(GateConfig::from_launch(safety, joint_names, control_rate_hz)?);
        if let Some(risk) = &safety.risk_critic {
            if risk.weights.is_empty() {
                // Trained online: the learner's first critic arrives in shadow mode.
                (gate.risk.threshold, gate.risk.reflex) = (risk.threshold as f32, risk.reflex);
            } else {
                let critic = RiskCritic::load(Path::new(&risk.weights), 3 * joint_names.len()).map_err(|e| SafetyError::Critic(e.to_string()))?;
                gate.set_risk_critic(critic, risk.threshold as f32, risk.reflex)?;
            }
        }
        Ok(gate)
    }

    fn new(config: GateConfig) -> Gate {
        let input = vec![0.0; 3 * config.joints];
        Gate { config, estop: EStop::default(), measured: JointVec::zeros(0), motion: None, workspace_refusals: 0, risk: RiskStage { critic: None, slot: None, threshold: 1.0, reflex: Reflex::Hold, input, comfortable: None, recovering: false, last_risk: f32::NAN, acting: true, input_ready: false }, ticks: 0 }
    }

    /// Adds the learned risk critic: commands whose risk exceeds `threshold`
    /// trigger `reflex`. Its input is every joint's position, velocity and
    /// limited command, in that order.
    pub fn set_risk_critic(&mut self, critic: RiskCritic, threshold: f32, reflex: Reflex) -> Result<(), SafetyError> {
        if critic.input_size() != 3 * self.config.joints {
            return Err(SafetyError::Invalid { field: "risk_critic.weights".into(), message: format!("the critic takes {} inputs, the gate gives {}", critic.input_size(), 3 * self.config.joints) });
        }
        self.risk.critic = Some(critic);
        self.risk.threshold = threshold;
        self.risk.reflex = reflex;
        self.risk.acting = true;
        Ok(())
    }

    /// Puts `critic` in place of the current one (or none), keeping the
    /// threshold and reflex; `acting` false scores it without acting
    /// (shadow mode). A critic that does not fit is refused and the gate
    /// keeps the one it had.
    pub fn replace_risk_critic(&mut self, critic: RiskCritic, acting: bool) -> Result<(), SafetyError> {
        if critic.input_size() != 3 * self.config.joints {
            return Err(SafetyError::Invalid { field: "risk_critic".into(), message: format!("the new critic takes {} inputs, the gate gives {}: the gate keeps the critic it had", critic.input_size(), 3 * self.config.joints) });
        }
        self.risk.critic = Some(critic);
        self.risk.acting = acting;
        if !acting {
            self.risk.recovering = false;
        }
        Ok(())
    }

    /// Whether a critic is in the gate and acting (not in shadow mode).
    pub fn risk_critic_acting(&self) -> bool {
        self.risk.critic.is_some() && self.risk.acting
    }

    /// A handle through which new critic weights reach the gate between
    /// ticks, without a lock and without a missed tick.
    pub fn critic_loader(&mut self) -> CriticLoader {
        let (loader, slot) = critic_channel(3 * self.config.joints);
        self.risk.slot = Some(slot);
        loader
    }

    pub fn config(&self) -> &GateConfig {
        &self.config
    }

    /// Whether the state measured in the last checked tick was itself
    /// beyond a limit (a joint past its position range, the tool outside
    /// its box): what the commands did not prevent, e.g. a position-
    /// controlled arm lagging or overshooting. The risk critic's label.
    pub fn measured_violation(&self) -> bool {
        let q = self.measured.as_slice();
        if q.len() != self.config.joints || !self.measured.all_finite() {
            return false;
        }
        let beyond = self.config.limits.iter().zip(q).any(|(l, &q)| l.position.is_some_and(|(lo, hi)| q < lo || q > hi));
        beyond || self.config.workspace.as_ref().is_some_and(|w| w.outside(&w.chain.tool_position(q)) > 0.0)
    }

    /// A handle for tripping the e-stop from elsewhere.
    /// Forgets the last forwarded motion, for when the robot was moved
    /// outside the gate's control (a simulation reset, a manual repositioning
    /// with brakes released): the limiter restarts from the next state read.
    pub fn forget_motion(&mut self) {
        self.motion = None;
        self.workspace_refusals = 0;
        // A safe point from before the jump is no place to retreat to.
        self.risk.comfortable = None;
        self.risk.recovering = false;
    }

    /// What every tick does first: count it, and forget the last tick's
    /// critic judgement and input.
    fn start_tick(&mut self, state: &JointState) {
        self.ticks += 1;
        self.measured = state.position;
        self.risk.last_risk = f32::NAN;
        self.risk.input_ready = false;
        // Every tick, held ones too: a critic offered while the robot holds is not kept waiting.
        if let Some(slot) = &self.risk.slot {
            if let Some(acting) = slot.swap_into(&mut self.risk.critic) {
                self.risk.acting = acting;
                self.risk.recovering &= acting;
                // A safe point the old critic chose is no place the new one vouched for.
                self.risk.comfortable = None;
            }
        }
    }

    /// The last tick (`check` or `hold`) as it is recorded for the risk
    /// critic: its input (the state it read and the command it judged, or
    /// for a held tick the command it sent), the verdict, the critic's risk
    /// and whether the measured state broke a limit. No allocation; costs
    /// one forward kinematics when a workspace box is set.
    pub fn tick_record(&self, stamp: Timestamp, state: &JointState, verdict: &Verdict, sent: &JointCommand) -> GateTick {
        let n = self.config.joints;
        let mut tick = GateTick { index: self.ticks, stamp_ns: stamp.0, risk: self.risk.last_risk, width: (3 * n) as u8, ..GateTick::default() };
        if self.risk.input_ready {
            tick.input[..3 * n].copy_from_slice(&self.risk.input);
        } else if state.position.len() == n && state.velocity.len() == n {
            // Held: the command that went out (or the measured pose when nothing did).
            for j in 0..n {
                tick.input[j] = state.position[j] as f32;
                tick.input[n + j] = state.velocity[j] as f32;
                tick.input[2 * n + j] = if sent.values.len() == n && sent.mode == CommandMode::Position { sent.values[j] } else { state.position[j] } as f32;
            }
        } else {
            tick.width = 0;
        }
        // A NaN state (held) must not reach a critic's training data.
        if !tick.input().iter().all(|v| v.is_finite()) {
            tick.width = 0;
        }
        (tick.verdict, tick.detail) = match verdict {
            Verdict::Pass => (TickVerdict::Pass, 0),
            Verdict::Clipped(flags) => (TickVerdict::Clipped, u16::from(flags.0)),
            Verdict::Held(reason) => (TickVerdict::Held, *reason as u16),
            Verdict::Reflex { reflex, .. } => (TickVerdict::Reflex, *reflex as u16),
        };
        // A hold for a missing or stale command protects from nothing the
        // source asked for: not a cost for the critic (and not worth
        // keeping every tick of while a robot waits for its operator).
        tick.protective = verdict.is_protective() && !matches!(verdict, Verdict::Held(HoldReason::NoCommand | HoldReason::StaleCommand));
        tick.violation = self.measured_violation();
        tick
    }

    pub fn estop(&self) -> EStop {
        self.estop.clone()
    }

    /// Clears a tripped e-stop: an explicit, deliberate act.
    pub fn reset_estop(&mut self) {
        self.estop.0.store(false, Ordering::Release);
    }

    /// Checks `command` against `state` at time `now`, writing what may be
    /// sent to the hardware into `out` (always a command: on hold, the last
    /// safe position, or the measured one before any command passed).
    /// Holds deliberately (e.g. before any command arrived), reporting `reason`.
    pub fn hold(&mut self, now: Timestamp, state: &JointState, mode: CommandMode, reason: HoldReason, out: &mut JointCommand) -> Verdict {
        self.start_tick(state);
        let n = self.config.joints;
        match motion_from(&mut self.motion, n, now, self.config.state_timeout_ns, state) {
            Some(motion) => hold_at(motion, n, now, mode, reason, out),
            None => Self::hold_without_state(n, now, state, out),
        }
    }

    /// Before any fresh state there is no safe command to give: `out` is left
    /// empty, and the caller sends nothing (the robot's own controller holds).
    fn hold_without_state(n: usize, now: Timestamp, state: &JointState, out: &mut JointCommand) -> Verdict {
        *out = JointCommand { stamp: now, mode: CommandMode::Position, values: JointVec::zeros(0) };
        Verdict::Held(if state.position.len() != n { HoldReason::StateSize } else { HoldReason::StaleState })
    }

    /// Checks `command` against `state` at time `now`, writing what may be
    /// sent to the hardware into `out`: on hold, the last safe position; an
    /// empty command (send nothing) before any fresh state was seen.
    pub fn check(&mut self, now: Timestamp, state: &JointState, command: &JointCommand, out: &mut JointCommand) -> Verdict {
        self.start_tick(state);
        let config = &self.config;
        let n = config.joints;
        let estop = self.estop.is_tripped();
        let (dt, margin) = (config.dt, config.soft_margin);
        let (state_timeout, command_timeout, max_torque) = (config.state_timeout_ns, config.command_timeout_ns, config.max_torque);
        let limits = &config.limits;
        let Some(motion) = motion_from(&mut self.motion, n, now, state_timeout, state) else {
            return Self::hold_without_state(n, now, state, out);
        };
        let hold = |motion: &mut [JointMotion; MAX_JOINTS], out: &mut JointCommand, mode: CommandMode, reason: HoldReason| hold_at(motion, n, now, mode, reason, out);
        let mode = command.mode;
        if estop {
            return hold(motion, out, mode, HoldReason::EStop);
        }
        if state.position.len() != n {
            return hold(motion, out, mode, HoldReason::StateSize);
        }
        if !(state.position.all_finite() && state.velocity.all_finite()) {
            return hold(motion, out, mode, HoldReason::NonFiniteState);
        }
        if now.nanos_since(state.stamp) > state_timeout || state.stamp.nanos_since(now) > state_timeout {
            return hold(motion, out, mode, HoldReason::StaleState);
        }
        if let Some(max_torque) = max_torque {
            if state.effort.len() == n && state.effort.as_slice().iter().any(|e| e.abs() > max_torque) {
                return hold(motion, out, mode, HoldReason::TorqueExceeded);
            }
        }
        if let (Some(max_force), Some(wrench)) = (self.config.max_force, state.wrench) {
            // An unknown (non-finite) force is no evidence of safety either.
            if !wrench[..3].iter().all(|f| f.is_finite()) {
                return hold(motion, out, mode, HoldReason::NonFiniteState);
            }
            if (wrench[0] * wrench[0] + wrench[1] * wrench[1] + wrench[2] * wrench[2]).sqrt() > max_force {
                return hold(motion, out, mode, HoldReason::ForceExceeded);
            }
        }
        if command.values.len() != n {
            return hold(motion, out, mode, HoldReason::CommandSize);
        }
        if !command.values.all_finite() {
            return hold(motion, out, mode, HoldReason::NonFiniteCommand);
        }
        if now.nanos_since(command.stamp) > command_timeout || command.stamp.nanos_since(now) > command_timeout {
            return hold(motion, out, mode, HoldReason::StaleCommand);
        }
        let mut flags = ClipFlags::default();
        let mut values = JointVec::zeros(n);
        // Where the joints were before this tick (a copy on the stack), kept
        // only when a reflex may need it: Recover retreats from there,
        // Decelerate halves the speed they had.
        let before = matches!(self.risk.reflex, Reflex::Recover | Reflex::Decelerate).then_some(*motion);
        // Where the tool starts this tick, when a Cartesian box is checked.
        let cartesian_start = self.config.workspace.as_ref().map(|_| *motion);
        for j in 0..n {
            let limit = &limits[j];
            let (next, f, value) = match mode {
                CommandMode::Position => {
                    let (next, f) = enforce_position(&motion[j], command.values[j], dt, limit, margin);
                    (next, f, next.position)
                }
                CommandMode::Velocity => {
                    let (next, f) = enforce_velocity(&motion[j], command.values[j], dt, limit);
                    (next, f, next.velocity)
                }
                CommandMode::Effort => {
                    let (value, f) = enforce_effort(command.values[j], state.position[j], state.velocity[j], limit, margin);
                    (JointMotion { position: state.position[j], velocity: 0.0, acceleration: 0.0, target: None }, f, value)
                }
            };
            flags |= f;
            values[j] = value;
            motion[j] = next;
        }
        if let (Some(workspace), Some(start)) = (&self.config.workspace, &cartesian_start) {
            if matches!(mode, CommandMode::Position | CommandMode::Velocity) {
                let joints = JointLimits { limits, margin, requested: &command.values };
                flags |= keep_in_workspace(workspace, start, state, mode, n, dt, motion, &mut values, &joints, &mut self.workspace_refusals);
            }
        }
        let fill = |input: &mut [f32], commands: &[f64]| {
            for j in 0..n {
                input[j] = state.position[j] as f32;
                input[n + j] = state.velocity[j] as f32;
                input[2 * n + j] = commands[j] as f32;
            }
        };
        // Filled with or without a critic: the recorded tick is what one would judge.
        fill(&mut self.risk.input, values.as_slice());
        self.risk.input_ready = true;
        if let Some(critic) = &mut self.risk.critic {
            let input = &mut self.risk.input;
            if let (true, Some(comfortable), Some(before)) = (self.risk.recovering, self.risk.comfortable, &before) {
                // Latched: judge what the source asks for, not the limiter's next step toward it.
                fill(input, command.values.as_slice());
                let risk = critic.risk(input);
                self.risk.last_risk = risk;
                if risk > self.risk.threshold {
                    retreat(before, &comfortable, n, dt, limits, margin, motion, &mut values);
                    *out = JointCommand { stamp: now, mode, values };
                    return Verdict::Reflex { risk, reflex: Reflex::Recover };
                }
                self.risk.recovering = false;
                // Back to the limited command, which the rest of the tick judges and records.
                fill(input, values.as_slice());
            }
            let risk = critic.risk(input);
            self.risk.last_risk = risk;
            // In shadow mode the risk is only recorded: the command goes on
            // (the comfortable point is kept current for when it acts).
            let acting = self.risk.acting;
            if mode == CommandMode::Position && risk < 0.5 * self.risk.threshold {
                let mut comfortable = [0.0; MAX_JOINTS];
                comfortable[..n].copy_from_slice(values.as_slice());
                self.risk.comfortable = Some(comfortable);
            }
            if acting && risk > self.risk.threshold {
                let reflex = self.risk.reflex;
                match (reflex, self.risk.comfortable, &before) {
                    (Reflex::Recover, Some(comfortable), Some(before)) if mode == CommandMode::Position => {
                        // Back toward the last comfortably safe command, within the joint limits, and stay until the source asks for something safe.
                        retreat(before, &comfortable, n, dt, limits, margin, motion, &mut values);
                        self.risk.recovering = true;
                        *out = JointCommand { stamp: now, mode, values };
                    }
                    (Reflex::Decelerate, _, Some(before)) if mode == CommandMode::Position => {
                        // Undo this tick's step and coast at half the speed the
                        // joints had: on consecutive reflex ticks the speed
                        // halves each time, so the arm comes to rest within
                        // one tick's travel instead of creeping on.
                        for j in 0..n {
                            let velocity = 0.5 * before[j].velocity;
                            values[j] = before[j].position + velocity * dt;
                            motion[j] = JointMotion { position: values[j], velocity, acceleration: (velocity - before[j].velocity) / dt, target: None };
                        }
                        *out = JointCommand { stamp: now, mode, values };
                    }
                    _ => {
                        // Hold where the last tick left the joints: this tick's step is not taken.
                        for j in 0..n {
                            motion[j].position -= motion[j].velocity * dt;
                        }
                        stop_at(motion, n, now, mode, out);
                    }
                }
                return Verdict::Reflex { risk, reflex };
            }
        }
        *out = JointCommand { stamp: now, mode, values };
        if flags.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Clipped(flags)
        }
    }
}

/// Shortens this tick's joint step (position mode: from the last forwarded
/// command; velocity mode: from the measured pose over one period) to the
/// largest share that keeps the tool point within the per-tick step limit
/// and either inside the box or no farther outside than it was. Returns
/// which of the two it had to enforce. The Cartesian limits protect the world around the
/// robot, so they win over the joints' acceleration and jerk limits on the
/// tick they act. In position mode, after `STUCK_AT_A_WALL_TICKS` ticks of
/// refusing all of the step, it may instead take a straight share of the
/// requested step that the joint limits pass unchanged and that moves the
/// tool away from the walls.
#[allow(clippy::too_many_arguments)]
fn keep_in_workspace(
    limits: &CartesianLimits,
    start: &[JointMotion; MAX_JOINTS],
    state: &JointState,
    mode: CommandMode,
    n: usize,
    dt: f64,
    motion: &mut [JointMotion; MAX_JOINTS],
    values: &mut JointVec,
    joints: &JointLimits,
    refusals: &mut u32,
) -> ClipFlags {
    let from_joint = |j: usize| if mode == CommandMode::Velocity { state.position[j] } else { start[j].position };
    let desired = *values;
    let step_of = |j: usize| if mode == CommandMode::Velocity { desired[j] * dt } else { desired[j] - start[j].position };
    let tool_at = |share: f64| {
        let p = limits.chain.tool_pose_with(|j| if j < n { from_joint(j) + share * step_of(j) } else { 0.0 }).translation.vector;
        [p.x, p.y, p.z]
    };
    let origin = tool_at(0.0);
    let origin_outside = limits.outside(&origin);
    let violations = |p: [f64; 3]| {
        let step = ((p[0] - origin[0]).powi(2) + (p[1] - origin[1]).powi(2) + (p[2] - origin[2]).powi(2)).sqrt();
        let outside = limits.outside(&p);
        let mut flags = ClipFlags::default();
        if step > limits.max_step {
            flags |= ClipFlags::TOOL_SPEED;
        }
        if outside > 0.0 && outside > origin_outside {
            flags |= ClipFlags::WORKSPACE;
        }
        flags
    };
    let acceptable = |p: [f64; 3]| violations(p).is_empty();
    let flags = violations(tool_at(1.0));
    if flags.is_empty() {
        *refusals = 0;
        return flags;
    }
    // Not taking the step is always acceptable; bisect for the largest share
    // that is (16 halvings: within 1/65536 of the step, bounded work).
    let (mut good, mut bad) = (0.0, 1.0);
    for _ in 0..16 {
        let mid = 0.5 * (good + bad);
        if acceptable(tool_at(mid)) {
            good = mid;
        } else {
            bad = mid;
        }
    }
    *refusals = if good == 0.0 { refusals.saturating_add(1) } else { 0 };
    if *refusals > STUCK_AT_A_WALL_TICKS && mode == CommandMode::Position {
        // Nothing of the limiter's step could be taken for a while. Its per-joint limits
        // may have bent the step out of the box (near a wall, the first
        // millimetres of a lift can point into it), and from rest the same
        // bend comes back every tick: the arm would stay there for good.
        // Try instead a share of the step the source asked for, straight in
        // joint space, small enough that the limiter passes it unchanged,
        // and only one that takes the tool away from the walls: this is a
        // way out of a wall, not a way to slide along it.
        let origin_clearance = limits.clearance(&origin);
        let mut next = [JointMotion::default(); MAX_JOINTS];
        for halvings in 0..=16 {
            let share = 0.5f64.powi(halvings);
            let within_joint_limits = (0..n).all(|j| {
                let candidate = start[j].position + share * (joints.requested[j] - start[j].position);
                next[j] = enforce_position(&start[j], candidate, dt, &joints.limits[j], joints.margin).0;
                (next[j].position - candidate).abs() <= 1e-12
            });
            if !within_joint_limits {
                continue;
            }
            let p = limits.chain.tool_pose_with(|j| if j < n { next[j].position } else { 0.0 }).translation.vector;
            let p = [p.x, p.y, p.z];
            if acceptable(p) && limits.clearance(&p) > origin_clearance {
                for j in 0..n {
                    values[j] = next[j].position;
                    motion[j] = next[j];
                }
                return flags;
            }
        }
    }
    for j in 0..n {
        let previous = start[j];
        let (position, velocity) = match mode {
            CommandMode::Velocity => {
                values[j] = good * desired[j];
                (state.position[j] + values[j] * dt, values[j])
            }
            _ => {
                values[j] = from_joint(j) + good * step_of(j);
                (values[j], (values[j] - previous.position) / dt)
            }
        };
        motion[j] = JointMotion { position, velocity, acceleration: (velocity - previous.velocity) / dt, target: None };
    }
    flags
}

/// Ticks of refusing every share of the limiter's step after which
/// `keep_in_workspace` looks for a way off the wall of its own (a passing
/// refusal, e.g. exploration turning around at a wall, is left as it was).
const STUCK_AT_A_WALL_TICKS: u32 = 10;

/// The joints' limits, for a step `keep_in_workspace` makes of its own.
struct JointLimits<'a> {
    limits: &'a [JointLimit; MAX_JOINTS],
    margin: f64,
    /// The command the source asked for this tick, before any limit.
    requested: &'a JointVec,
}

/// One limited step from where the joints were before this tick (`before`)
/// toward `target`, written to `motion` and `values`: the limiter brakes
/// toward its target, so the retreat arrives instead of swinging past.
#[allow(clippy::too_many_arguments)]
fn retreat(before: &[JointMotion; MAX_JOINTS], target: &[f64; MAX_JOINTS], n: usize, dt: f64, limits: &[JointLimit; MAX_JOINTS], margin: f64, motion: &mut [JointMotion; MAX_JOINTS], values: &mut JointVec) {
    for j in 0..n {
        let (next, _) = enforce_position(&before[j], target[j], dt, &limits[j], margin);
        values[j] = next.position;
        motion[j] = next;
    }
}

/// Stops every joint where it was last commanded (position mode) or at zero
/// velocity/effort (other modes), and reports why.
fn hold_at(motion: &mut [JointMotion; MAX_JOINTS], n: usize, now: Timestamp, mode: CommandMode, reason: HoldReason, out: &mut JointCommand) -> Verdict {
    stop_at(motion, n, now, mode, out);
    Verdict::Held(reason)
}

fn stop_at(motion: &mut [JointMotion; MAX_JOINTS], n: usize, now: Timestamp, mode: CommandMode, out: &mut JointCommand) {
    let mut values = JointVec::zeros(n);
    for j in 0..n {
        motion[j].velocity = 0.0;
        motion[j].acceleration = 0.0;
        motion[j].target = None;
        if mode == CommandMode::Position {
            values[j] = motion[j].position;
        }
    }
    *out = JointCommand { stamp: now, mode, values };
}

/// The per-joint motion memory, started from the first fresh, finite state
/// of the right size; `None` until then.
fn motion_from<'a>(motion: &'a mut Option<[JointMotion; MAX_JOINTS]>, n: usize, now: Timestamp, timeout_ns: u64, state: &JointState) -> Option<&'a mut [JointMotion; MAX_JOINTS]> {
    let fresh = now.nanos_since(state.stamp) <= timeout_ns && state.stamp.nanos_since(now) <= timeout_ns;
    if motion.is_none() && fresh && state.position.len() == n && state.position.all_finite() {
        let mut m = [JointMotion::default(); MAX_JOINTS];
        for (j, slot) in m.iter_mut().enumerate().take(n) {
            slot.position = state.position[j];
        }
        *motion = Some(m);
    }
    motion.as_mut()
}

#[cfg(test)]
mod tick_words {
    use super::*;

    /// Where a reason stands in `HoldReason::ALL`; exhaustive, so a new
    /// reason does not compile until it is listed.
    fn listed_at(reason: HoldReason) -> usize {
        match reason {
            HoldReason::NoCommand => 0,
            HoldReason::EStop => 1,
            HoldReason::StaleCommand => 2,
            HoldReason::StaleState => 3,
            HoldReason::NonFiniteCommand => 4,
            HoldReason::NonFiniteState => 5,
            HoldReason::CommandSize => 6,
            HoldReason::StateSize => 7,
            HoldReason::WrongCommandMode => 8,
            HoldReason::TorqueExceeded => 9,
            HoldReason::ForceExceeded => 10,
        }
    }

    #[test]
    fn every_hold_reason_is_listed_once() {
        for (i, reason) in HoldReason::ALL.into_iter().enumerate() {
            assert_eq!(listed_at(reason), i, "{reason:?}");
        }
    }

    #[test]
    fn a_recorded_tick_reads_as_the_verdict_it_recorded() {
        for reason in HoldReason::ALL {
            assert_eq!(describe_tick(TickVerdict::Held, reason as u16), Verdict::Held(reason).to_string());
        }
        assert_eq!(describe_tick(TickVerdict::Clipped, 33), "clipped (position, workspace)");
        for reflex in [Reflex::Hold, Reflex::Decelerate, Reflex::Recover] {
            assert_eq!(describe_tick(TickVerdict::Reflex, reflex as u16), format!("reflex {reflex:?}"));
        }
    }
}
