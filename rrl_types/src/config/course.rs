//! The `course` section: what a car practises, FastRLAP's recipe. A loop of
//! checkpoints in the odometry frame, driven to one after another; the
//! arena they lie in; and, for the simulated twin only, its walls, cones
//! and start pose. The same section drives the twin and a real car.

use serde::{Deserialize, Serialize};

use super::{CameraSource, Checker, LaunchFile, RobotConfig, SimTask};

/// A car's two velocity-commanded "joints": forward speed (m/s) and yaw
/// rate (rad/s), so the gate drives a car as it drives an arm.
pub const CAR_JOINTS: [&str; 2] = ["linear_x", "angular_z"];

/// The cameras of the simulated car twin, by their MJCF names.
pub const CAR_TWIN_CAMERAS: [&str; 1] = ["front"];

/// A checkpoint-racing course.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CourseConfig {
    /// Goal points `(x, y)` in metres, in the odometry frame, driven to in
    /// order and looping: one lap passes every one. At least two.
    pub checkpoints: Vec<(f64, f64)>,
    /// A checkpoint counts as passed within this distance. Default: 0.4 m.
    #[serde(default = "default_checkpoint_radius")]
    pub checkpoint_radius_m: f64,
    /// The rectangle the course lies in, centred on the odometry origin:
    /// walls in the simulated twin; every checkpoint must lie inside.
    pub arena: ArenaConfig,
    /// Obstacles `(x, y)` of the simulated twin (cylinders of 8 cm
    /// radius); a real course has its own. Default: none.
    #[serde(default)]
    pub cones: Vec<(f64, f64)>,
    /// Where the simulated twin starts, `(x, y, yaw)` (m, m, rad). A real
    /// car starts wherever it stands. Default: the origin, facing +x.
    #[serde(default)]
    pub start: (f64, f64, f64),
    /// Full throttle, m/s: the speed a throttle action of 1 asks for.
    /// Default: 1.5.
    #[serde(default = "default_max_speed")]
    pub max_speed_mps: f64,
    /// Full steering, rad/s: the yaw rate a steering action of 1 asks
    /// for. Default: 3.0.
    #[serde(default = "default_max_yaw_rate")]
    pub max_yaw_rate_rps: f64,
    /// Subtracted from the reward of a step with a collision. Default: 1.
    #[serde(default = "default_collision_penalty")]
    pub collision_penalty: f64,
    /// A horizontal acceleration (IMU, or odometry's speed change without
    /// one) above this counts as a collision. Default: 12 m/s².
    #[serde(default = "default_bump")]
    pub bump_mps2: f64,
    /// Throttle held without moving `stuck_distance_m` for this long
    /// counts as stuck. Default: 1 s.
    #[serde(default = "default_stuck_after")]
    pub stuck_after_s: f64,
    /// See `stuck_after_s`. Default: 0.05 m.
    #[serde(default = "default_stuck_distance")]
    pub stuck_distance_m: f64,
}

/// A rectangle centred on the odometry origin.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArenaConfig {
    /// Half its extent along x, m.
    pub half_length_m: f64,
    /// Half its extent along y, m.
    pub half_width_m: f64,
}

impl ArenaConfig {
    /// Whether `(x, y)` lies at least `margin` inside the walls.
    pub fn contains(&self, (x, y): (f64, f64), margin: f64) -> bool {
        x.abs() <= self.half_length_m - margin && y.abs() <= self.half_width_m - margin
    }
}

fn default_checkpoint_radius() -> f64 {
    0.4
}
fn default_max_speed() -> f64 {
    1.5
}
fn default_max_yaw_rate() -> f64 {
    3.0
}
fn default_collision_penalty() -> f64 {
    1.0
}
fn default_bump() -> f64 {
    12.0
}
fn default_stuck_after() -> f64 {
    1.0
}
fn default_stuck_distance() -> f64 {
    0.05
}

/// The simulated twin's own limits: its motors' top speed, m/s.
pub const TWIN_TOP_SPEED_MPS: f64 = 3.0;
/// The twin's policy steps at 10 Hz (its 50 physics steps of 2 ms).
pub const TWIN_POLICY_RATE_HZ: f64 = 10.0;
/// Control rates whose ticks divide the twin's step evenly.
pub const TWIN_CONTROL_RATES_HZ: [f64; 6] = [10.0, 20.0, 50.0, 100.0, 250.0, 500.0];

impl CourseConfig {
    /// `twin`: checked for the simulated car (its start, cones and top speed).
    pub(super) fn check(&self, twin: bool, c: &mut Checker) {
        if self.checkpoints.len() < 2 {
            c.fail("course.checkpoints", format!("a course needs at least two checkpoints, got {}", self.checkpoints.len()), Some("e.g. [(2.0, 0.0), (-2.0, 0.0)]"));
        }
        c.positive("course.arena.half_length_m", self.arena.half_length_m, "metres");
        c.positive("course.arena.half_width_m", self.arena.half_width_m, "metres");
        c.positive("course.checkpoint_radius_m", self.checkpoint_radius_m, "metres");
        c.positive("course.max_speed_mps", self.max_speed_mps, "m/s");
        c.positive("course.max_yaw_rate_rps", self.max_yaw_rate_rps, "rad/s");
        c.positive("course.bump_mps2", self.bump_mps2, "m/s²");
        c.positive("course.stuck_after_s", self.stuck_after_s, "seconds");
        c.positive("course.stuck_distance_m", self.stuck_distance_m, "metres");
        if !(self.collision_penalty.is_finite() && self.collision_penalty >= 0.0) {
            c.fail("course.collision_penalty", format!("must be a finite number ≥ 0, got {}", self.collision_penalty), None);
        }
        let arena = self.arena;
        let describe = format!("the arena spans x ∈ [{:.2}, {:.2}], y ∈ [{:.2}, {:.2}] m", -arena.half_length_m, arena.half_length_m, -arena.half_width_m, arena.half_width_m);
        for (i, &point) in self.checkpoints.iter().enumerate() {
            if !(point.0.is_finite() && point.1.is_finite()) || !arena.contains(point, 0.0) {
                c.fail(format!("course.checkpoints[{i}]"), format!("checkpoint ({}, {}) lies outside the arena", point.0, point.1), Some(&describe));
            }
        }
        // Neighbours on the loop, the last and the first included.
        let n = self.checkpoints.len();
        for i in (0..n).filter(|_| n >= 2) {
            let (a, b) = (self.checkpoints[(i + n - 1) % n], self.checkpoints[i]);
            if (a.0 - b.0).hypot(a.1 - b.1) < self.checkpoint_radius_m && (i > 0 || n > 2) {
                c.fail(format!("course.checkpoints[{i}]"), "this checkpoint lies within checkpoint_radius_m of the one before it on the loop: both would pass at once", None);
            }
        }
        if twin {
            for (i, &cone) in self.cones.iter().enumerate() {
                if !(cone.0.is_finite() && cone.1.is_finite()) || !arena.contains(cone, 0.0) {
                    c.fail(format!("course.cones[{i}]"), format!("cone ({}, {}) lies outside the arena", cone.0, cone.1), Some(&describe));
                }
            }
            let start = (self.start.0, self.start.1);
            // The car's half length plus a little: it must not start in a wall.
            if !(start.0.is_finite() && start.1.is_finite() && self.start.2.is_finite()) || !arena.contains(start, 0.25) {
                c.fail("course.start", format!("the car would start at ({}, {}), in or outside a wall", start.0, start.1), Some(&describe));
            }
            if let Some(i) = self.cones.iter().position(|cone| (cone.0 - start.0).hypot(cone.1 - start.1) < 0.35) {
                c.fail("course.start", format!("the car would start on cone {i}"), None);
            }
            if self.max_speed_mps > TWIN_TOP_SPEED_MPS {
                c.fail("course.max_speed_mps", format!("the simulated car's motors top out at {TWIN_TOP_SPEED_MPS} m/s"), None);
            }
        } else {
            if !self.cones.is_empty() {
                c.fail("course.cones", "cones belong to the simulated twin; a real course has its own", Some("remove them for a real car"));
            }
            if self.start != (0.0, 0.0, 0.0) {
                c.fail("course.start", "a real car starts wherever it stands", Some("remove `start` for a real car"));
            }
        }
    }
}

impl LaunchFile {
    /// A course goes with a car, and a simulated car needs one.
    pub(super) fn check_course(&self, c: &mut Checker) {
        let twin = matches!(&self.robot, RobotConfig::Sim(sim) if sim.task == SimTask::CarCourse);
        match (&self.course, &self.robot) {
            (None, _) if twin => c.fail("robot.task", "the car twin races the launch file's course, and it has none", Some("add `course: Some((checkpoints: [..], arena: (half_length_m: .., half_width_m: ..)))`")),
            (Some(course), RobotConfig::Car(car)) => {
                course.check(false, c);
                if course.max_speed_mps > car.max_linear_mps {
                    c.fail("course.max_speed_mps", format!("full throttle would ask for {} m/s; the car's driver caps it at {} m/s (robot.max_linear_mps)", course.max_speed_mps, car.max_linear_mps), None);
                }
                if course.max_yaw_rate_rps > car.max_angular_rps {
                    c.fail("course.max_yaw_rate_rps", format!("full steering would ask for {} rad/s; the car's driver caps it at {} rad/s (robot.max_angular_rps)", course.max_yaw_rate_rps, car.max_angular_rps), None);
                }
            }
            (Some(course), _) if twin => course.check(true, c),
            (Some(_), other) => c.fail("course", format!("a course is raced by a car; a {} robot has none", other.kind_name()), Some("remove it, or use Car(..) or Sim((task: CarCourse))")),
            (None, _) => {}
        }
        if let (true, RobotConfig::Sim(sim)) = (twin, &self.robot) {
            if !TWIN_CONTROL_RATES_HZ.contains(&sim.control_rate_hz) {
                c.fail("robot.control_rate_hz", format!("the car twin's gate ticks a whole number of times per 0.1 s step: {} Hz does not", sim.control_rate_hz), Some("10, 20, 50, 100, 250 or 500"));
            }
            if self.practice.policy_rate_hz != TWIN_POLICY_RATE_HZ {
                c.fail("practice.policy_rate_hz", format!("the car twin steps at {TWIN_POLICY_RATE_HZ} Hz, not {}", self.practice.policy_rate_hz), Some("10.0, or leave it out"));
            }
        }
        if twin {
            for (i, camera) in self.cameras.iter().enumerate() {
                if let CameraSource::Sim(name) = &camera.source {
                    if !CAR_TWIN_CAMERAS.contains(&name.as_str()) {
                        c.fail(format!("cameras[{i}].source"), format!("the simulated car has no camera `{name}`"), Some(&format!("its cameras: {}", CAR_TWIN_CAMERAS.join(", "))));
                    }
                }
            }
        }
    }
}
