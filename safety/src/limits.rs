//! Per-joint limits, the published tables of named robots, and the limiter
//! that brings a desired command to the nearest feasible one.

use rrl_types::config::{JointLimitsConfig, RobotPreset};

/// Limits of one joint; `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct JointLimit {
    /// Hard position range (rad or m).
    pub position: Option<(f64, f64)>,
    pub velocity: Option<f64>,
    pub acceleration: Option<f64>,
    pub jerk: Option<f64>,
    pub effort: Option<f64>,
}

impl JointLimit {
    /// Overrides the fields `config` sets.
    pub fn apply(&mut self, config: &JointLimitsConfig) {
        if let Some(r) = config.position {
            self.position = Some((r.min, r.max));
        }
        self.velocity = config.velocity.or(self.velocity);
        self.acceleration = config.acceleration.or(self.acceleration);
        self.jerk = config.jerk.or(self.jerk);
        self.effort = config.effort.or(self.effort);
    }
}

/// Published limits of a named robot, by joint name.
pub fn preset_limits(preset: RobotPreset) -> Vec<(&'static str, JointLimit)> {
    match preset {
        // Franka Emika Panda, joint-space limits from the manufacturer's
        // robot and interface specifications.
        RobotPreset::FrankaPanda => {
            let q_min = [-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973];
            let q_max = [2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973];
            let velocity = [2.1750, 2.1750, 2.1750, 2.1750, 2.6100, 2.6100, 2.6100];
            let acceleration = [15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0];
            let jerk = [7500.0, 3750.0, 5000.0, 6250.0, 7500.0, 10000.0, 10000.0];
            let torque = [87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0];
            preset.joint_names()
                .iter()
                .enumerate()
                .map(|(i, &name)| {
                    (
                        name,
                        JointLimit {
                            position: Some((q_min[i], q_max[i])),
                            velocity: Some(velocity[i]),
                            acceleration: Some(acceleration[i]),
                            jerk: Some(jerk[i]),
                            effort: Some(torque[i]),
                        },
                    )
                })
                .collect()
        }
        // Franka Research 3, from the manufacturer's FR3 specifications
        // (the same kinematics as the Panda, other ranges and speeds).
        RobotPreset::FrankaResearch3 => {
            let q_min = [-2.7437, -1.7837, -2.9007, -3.0421, -2.8065, 0.5445, -3.0159];
            let q_max = [2.7437, 1.7837, 2.9007, -0.1518, 2.8065, 4.5169, 3.0159];
            let velocity = [2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26];
            let torque = [87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0];
            preset
                .joint_names()
                .iter()
                .enumerate()
                .map(|(i, &name)| {
                    let limit = JointLimit { position: Some((q_min[i], q_max[i])), velocity: Some(velocity[i]), acceleration: Some(10.0), jerk: Some(5000.0), effort: Some(torque[i]) };
                    (name, limit)
                })
                .collect()
        }
        // Hobby-servo arms publish no joint tables: conservative speeds for
        // learning, within the servos' rated speed. The SO-101's ranges are
        // its built-in URDF's (the published model's); the Koch's stay
        // within the servos' one turn.
        RobotPreset::So101 | RobotPreset::Koch => preset
            .joint_names()
            .iter()
            .map(|&name| {
                let position = (preset == RobotPreset::Koch).then_some((-3.1, 3.1));
                (name, JointLimit { position, velocity: Some(3.0), acceleration: Some(20.0), jerk: None, effort: None })
            })
            .collect(),
    }
}

/// Which limits changed a command (several may at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClipFlags(pub u8);

impl ClipFlags {
    pub const POSITION: ClipFlags = ClipFlags(1);
    pub const VELOCITY: ClipFlags = ClipFlags(2);
    pub const ACCELERATION: ClipFlags = ClipFlags(4);
    pub const JERK: ClipFlags = ClipFlags(8);
    pub const EFFORT: ClipFlags = ClipFlags(16);
    /// The tool point would have left its Cartesian box.
    pub const WORKSPACE: ClipFlags = ClipFlags(32);
    /// The tool point would have moved faster than its Cartesian step or
    /// speed limit.
    pub const TOOL_SPEED: ClipFlags = ClipFlags(64);

    pub fn contains(self, other: ClipFlags) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn names(self) -> impl Iterator<Item = &'static str> {
        [(1, "position"), (2, "velocity"), (4, "acceleration"), (8, "jerk"), (16, "effort"), (32, "workspace"), (64, "tool_speed")]
            .into_iter()
            .filter(move |(bit, _)| self.0 & bit != 0)
            .map(|(_, name)| name)
    }
}

impl std::ops::BitOrAssign for ClipFlags {
    fn bitor_assign(&mut self, rhs: ClipFlags) {
        self.0 |= rhs.0;
    }
}

/// What the limiter remembers of a joint between ticks: the last forwarded
/// position command and its velocity and acceleration.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct JointMotion {
    pub position: f64,
    pub velocity: f64,
    pub acceleration: f64,
    /// The (range-clipped) position the source last asked for; how fast
    /// that moves tells a streamed trajectory from a jump.
    pub target: Option<f64>,
}

/// The largest speed toward a limit `distance` away from which the joint
/// can still stop in time, decelerating by at most `decel`: the discrete
/// stopping sequence v, v-u, v-2u, ... (u = decel·dt) covers
/// dt·Σ max(v-k·u, 0), and this returns the largest v for which that sum
/// fits in `distance`. Exact, so braking from one tick's cap lands within
/// the next tick's cap.
pub(crate) fn braking_speed(distance: f64, decel: f64, dt: f64) -> f64 {
    if distance <= 0.0 {
        return 0.0;
    }
    let u = decel * dt;
    // With v in [m·u, (m+1)·u) the sum is dt·((m+1)·v - u·m(m+1)/2).
    let x = distance / (dt * u);
    let mut m = ((-1.0 + (1.0 + 8.0 * x).sqrt()) / 2.0).floor().max(0.0);
    while m > 0.0 && m * (m + 1.0) / 2.0 > x {
        m -= 1.0;
    }
    while (m + 1.0) * (m + 2.0) / 2.0 <= x {
        m += 1.0;
    }
    (distance / dt) / (m + 1.0) + u * m / 2.0
}

/// Brings a desired position to the nearest one reachable from `previous`
/// within one tick of `dt` under `limit` (position range tightened by
/// `margin`, velocity, acceleration, jerk), as ros2_control's joint limiter
/// does, and never so fast that the acceleration limit could not stop the
/// joint before its position limit. Priority when they conflict: position,
/// then velocity, then acceleration, then jerk.
pub fn enforce_position(previous: &JointMotion, desired: f64, dt: f64, limit: &JointLimit, margin: f64) -> (JointMotion, ClipFlags) {
    let mut flags = ClipFlags::default();
    let (lo, hi) = match limit.position {
        Some((min, max)) => (min + margin, max - margin),
        None => (f64::NEG_INFINITY, f64::INFINITY),
    };
    let mut target = desired;
    if target < lo {
        target = lo;
        flags |= ClipFlags::POSITION;
    } else if target > hi {
        target = hi;
        flags |= ClipFlags::POSITION;
    }
    // Toward the target no faster than a stop there (relative to the
    // target's own motion) allows: without this a far target is approached
    // at full speed and overshot. A target moving within the joint's speed
    // is a streamed trajectory and is followed at its speed; one that moved
    // faster jumped, and is approached as standing still.
    let mut desired_velocity = (target - previous.position) / dt;
    if let Some(amax) = limit.acceleration {
        let vmax = limit.velocity.unwrap_or(f64::INFINITY);
        let target_velocity = previous.target.map_or(0.0, |last| (target - last) / dt);
        let target_velocity = if target_velocity.abs() <= vmax { target_velocity } else { 0.0 };
        let error = target - previous.position;
        let stop = braking_speed(error.abs(), amax, dt);
        desired_velocity = if error >= 0.0 { desired_velocity.min(target_velocity + stop) } else { desired_velocity.max(target_velocity - stop) };
    }
    let mut velocity = shape_velocity(previous, desired_velocity, dt, limit, &mut flags);
    if let Some(amax) = limit.acceleration {
        // Keep a stop before the position limit possible at this deceleration,
        // never asking for more deceleration than the limit allows.
        let cap_up = braking_speed(hi - previous.position, amax, dt);
        let cap_down = braking_speed(previous.position - lo, amax, dt);
        if velocity > cap_up || velocity < -cap_down {
            let (lo_v, hi_v) = (previous.velocity - amax * dt, previous.velocity + amax * dt);
            velocity = velocity.clamp(-cap_down, cap_up).clamp(lo_v, hi_v);
            flags |= ClipFlags::POSITION;
        }
    }
    let mut position = previous.position + velocity * dt;
    // The last word: whatever the dynamics, the command stays in range.
    if position < lo || position > hi {
        position = position.clamp(lo, hi);
        velocity = (position - previous.position) / dt;
        flags |= ClipFlags::POSITION;
    }
    let acceleration = (velocity - previous.velocity) / dt;
    (JointMotion { position, velocity, acceleration, target: Some(target) }, flags)
}

/// A torque command for a joint at `position` moving at `velocity`: clamped
/// to the effort limit, and with no torque that drives the joint further
/// past its soft position limit (the range less `margin`) or faster beyond
/// its velocity limit. A torque-controlled arm has no position command to
/// clip, so this is where its position and velocity limits act; the robot's
/// own gravity compensation and joint friction hold it there.
pub fn enforce_effort(desired: f64, position: f64, velocity: f64, limit: &JointLimit, margin: f64) -> (f64, ClipFlags) {
    let mut flags = ClipFlags::default();
    let mut effort = desired;
    if let Some(max) = limit.effort {
        if effort.abs() > max {
            effort = effort.clamp(-max, max);
            flags |= ClipFlags::EFFORT;
        }
    }
    if let Some((lo, hi)) = limit.position {
        if (position > hi - margin && effort > 0.0) || (position < lo + margin && effort < 0.0) {
            effort = 0.0;
            flags |= ClipFlags::POSITION;
        }
    }
    if let Some(max) = limit.velocity {
        if velocity.abs() > max && effort * velocity > 0.0 {
            effort = 0.0;
            flags |= ClipFlags::VELOCITY;
        }
    }
    (effort, flags)
}

/// The same for a velocity command (cars, velocity-controlled joints).
pub fn enforce_velocity(previous: &JointMotion, desired: f64, dt: f64, limit: &JointLimit) -> (JointMotion, ClipFlags) {
    let mut flags = ClipFlags::default();
    let velocity = shape_velocity(previous, desired, dt, limit, &mut flags);
    let acceleration = (velocity - previous.velocity) / dt;
    (JointMotion { position: previous.position + velocity * dt, velocity, acceleration, target: None }, flags)
}

/// Velocity, then acceleration, then jerk limits applied to a desired
/// velocity, each recorded in `flags` when it changed it.
fn shape_velocity(previous: &JointMotion, desired: f64, dt: f64, limit: &JointLimit, flags: &mut ClipFlags) -> f64 {
    let mut velocity = desired;
    if let Some(vmax) = limit.velocity {
        if velocity.abs() > vmax {
            velocity = velocity.clamp(-vmax, vmax);
            *flags |= ClipFlags::VELOCITY;
        }
    }
    if let Some(amax) = limit.acceleration {
        let (lo, hi) = (previous.velocity - amax * dt, previous.velocity + amax * dt);
        if velocity < lo || velocity > hi {
            velocity = velocity.clamp(lo, hi);
            *flags |= ClipFlags::ACCELERATION;
        }
    }
    if let Some(jmax) = limit.jerk {
        let acceleration = (velocity - previous.velocity) / dt;
        let (lo, hi) = (previous.acceleration - jmax * dt, previous.acceleration + jmax * dt);
        if acceleration < lo || acceleration > hi {
            velocity = previous.velocity + acceleration.clamp(lo, hi) * dt;
            *flags |= ClipFlags::JERK;
        }
    }
    velocity
}

#[cfg(test)]
mod tests {
    use super::*;

    const PANDA_J1: JointLimit = JointLimit {
        position: Some((-2.8973, 2.8973)),
        velocity: Some(2.175),
        acceleration: Some(15.0),
        jerk: None,
        effort: None,
    };

    #[test]
    fn a_feasible_command_passes_unchanged() {
        let prev = JointMotion { position: 0.0, velocity: 0.1, acceleration: 0.0, target: None };
        let (out, flags) = enforce_position(&prev, 0.0011, 0.01, &PANDA_J1, 0.05);
        assert!(flags.is_empty(), "{flags:?}");
        assert!((out.position - 0.0011).abs() < 1e-12);
    }

    #[test]
    fn a_jump_is_limited_by_acceleration_from_rest() {
        let prev = JointMotion::default();
        let (out, flags) = enforce_position(&prev, 1.0, 0.01, &PANDA_J1, 0.05);
        assert!(flags.contains(ClipFlags::ACCELERATION) && flags.contains(ClipFlags::VELOCITY));
        assert!((out.velocity - 15.0 * 0.01).abs() < 1e-12, "v = {}", out.velocity);
    }

    #[test]
    fn a_far_target_is_approached_without_overshoot() {
        let mut motion = JointMotion::default();
        let mut furthest: f64 = 0.0;
        for _ in 0..3000 {
            let (out, _) = enforce_position(&motion, 1.0, 0.001, &PANDA_J1, 0.05);
            furthest = furthest.max(out.position);
            motion = out;
        }
        assert!(furthest <= 1.0 + 1e-12, "overshot to {furthest}");
        assert!((motion.position - 1.0).abs() < 1e-9 && motion.velocity.abs() < 1e-9, "settled at {motion:?}");
    }

    #[test]
    fn a_streamed_trajectory_is_followed_at_its_speed() {
        // The source moves its target 1 rad/s, well within the joint's limits.
        let mut motion = JointMotion::default();
        for t in 1..=1000 {
            let (out, _) = enforce_position(&motion, 0.001 * t as f64, 0.001, &PANDA_J1, 0.05);
            motion = out;
        }
        assert!((motion.velocity - 1.0).abs() < 1e-6, "cruising at {} rad/s", motion.velocity);
        assert!((motion.position - 1.0).abs() < 0.01, "lagging at {}", motion.position);
    }

    #[test]
    fn the_joint_brakes_before_its_soft_limit() {
        let mut motion = JointMotion::default();
        let mut max_pos: f64 = 0.0;
        for t in 0..2000 {
            let (out, flags) = enforce_position(&motion, 10.0, 0.001, &PANDA_J1, 0.05);
            assert!((out.velocity - motion.velocity).abs() <= 15.0 * 0.001 + 1e-9, "tick {t}: acceleration limit broken: {motion:?} -> {out:?} ({flags:?})");
            max_pos = max_pos.max(out.position);
            motion = out;
        }
        assert!(max_pos <= 2.8973 - 0.05 + 1e-12, "passed the soft limit: {max_pos}");
        assert!(max_pos > 2.8973 - 0.06, "should get close to the soft limit, reached {max_pos}");
    }

    #[test]
    fn torques_never_drive_a_joint_past_its_soft_limit_or_beyond_its_speed() {
        let limit = JointLimit { effort: Some(87.0), ..PANDA_J1 };
        let hi = 2.8973 - 0.05;
        // Inside the range and slow: passes, clamped only to the effort limit.
        assert_eq!(enforce_effort(10.0, 0.0, 0.1, &limit, 0.05), (10.0, ClipFlags::default()));
        assert_eq!(enforce_effort(-120.0, 0.0, 0.1, &limit, 0.05), (-87.0, ClipFlags::EFFORT));
        // Past the soft limit: pushing further out is cut, pulling back passes.
        let (e, f) = enforce_effort(5.0, hi + 0.01, 0.0, &limit, 0.05);
        assert_eq!((e, f), (0.0, ClipFlags::POSITION));
        assert_eq!(enforce_effort(-5.0, hi + 0.01, 0.0, &limit, 0.05), (-5.0, ClipFlags::default()));
        // Too fast: accelerating further is cut, braking passes.
        assert_eq!(enforce_effort(3.0, 0.0, 2.5, &limit, 0.05), (0.0, ClipFlags::VELOCITY));
        assert_eq!(enforce_effort(-3.0, 0.0, 2.5, &limit, 0.05), (-3.0, ClipFlags::default()));
    }

    #[test]
    fn franka_preset_has_seven_joints_with_all_limits() {
        let limits = preset_limits(RobotPreset::FrankaPanda);
        assert_eq!(limits.len(), 7);
        assert!(limits.iter().all(|(_, l)| l.position.is_some() && l.velocity.is_some() && l.acceleration.is_some() && l.jerk.is_some()));
        assert_eq!(limits[3].1.position, Some((-3.0718, -0.0698)));
    }
}
