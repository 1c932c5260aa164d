//! Checkpoint racing (FastRLAP's task), the part the simulated car twin and
//! a real car share: what the policy observes, the reward, checkpoints and
//! laps, and when the car has collided or is stuck. Plain arithmetic on
//! odometry and IMU readings, so both cars judge a step the same way.
//!
//! An episode is one lap: it succeeds when the car has passed every
//! checkpoint once, starting from whichever comes next. Episodes follow
//! one another from wherever the car is (no resets), and a collision or a
//! stuck car asks for the recovery manoeuvre (reverse and turn toward the
//! next checkpoint) instead of a human.

use crate::config::CourseConfig;

/// Values the policy observes (see `CourseProgress::observe`).
pub const COURSE_OBSERVATION_SIZE: usize = 8;
/// Relative checkpoint positions are observed in units of this, m.
const GOAL_SCALE_M: f64 = 3.0;
/// Throttle above this (either way) counts as trying to move.
const TRYING: f64 = 0.2;
/// The recovery manoeuvre: this many steps of reversing while turning.
const RECOVERY_STEPS: usize = 8;
/// Readings closer in time than this give no rates (progress, acceleration).
const MIN_STEP_S: f64 = 1e-3;

/// Where the car is and how it moves: odometry, and the IMU when there is one.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CarReading {
    /// Seconds on the car's clock.
    pub time_s: f64,
    pub x: f64,
    pub y: f64,
    pub yaw: f64,
    /// Forward speed, m/s (negative reversing).
    pub speed: f64,
    pub yaw_rate: f64,
    /// Horizontal acceleration in the car's frame (forward, left), m/s²:
    /// the IMU's newest, or zero without one.
    pub accel: (f64, f64),
}

impl CarReading {
    /// `point` in the car's frame: (ahead, to the left), m.
    pub fn relative(&self, point: (f64, f64)) -> (f64, f64) {
        let (dx, dy) = (point.0 - self.x, point.1 - self.y);
        let (s, c) = self.yaw.sin_cos();
        (c * dx + s * dy, -s * dx + c * dy)
    }

    fn distance_to(&self, point: (f64, f64)) -> f64 {
        (point.0 - self.x).hypot(point.1 - self.y)
    }
}

/// What one step did on the course.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CourseStep {
    /// Progress toward the next checkpoint in units of full speed (1: at
    /// full throttle straight at it), less the collision penalty.
    pub reward: f64,
    /// A checkpoint was passed.
    pub passed: bool,
    /// The lap (the episode) is complete.
    pub lap: bool,
    pub collided: bool,
    pub stuck: bool,
}

/// The course's state across steps and episodes.
#[derive(Debug, Clone)]
pub struct CourseProgress {
    course: CourseConfig,
    next: usize,
    passed_this_lap: usize,
    last: Option<CarReading>,
    /// Since when, and from where, the car has been trying to move without moving.
    trying_since: Option<(f64, (f64, f64))>,
    needs_recovery: bool,
    collisions: u64,
    laps: u64,
}

/// A course these rules cannot race (the launch file's check refuses it
/// with its place in the file; this guards every other way in).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("course: {0}")]
pub struct CourseError(pub String);

/// Why an action was refused.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum ActionError {
    #[error("action has {got} values, a car takes 2 (throttle, steering)")]
    Size { got: usize },
    #[error("action[{index}] is {value}; actions must be finite")]
    NonFinite { index: usize, value: f64 },
}

/// The actions' bounds: throttle and steering in [-1, 1].
pub const ACTION_LOW: [f64; 2] = [-1.0; 2];
pub const ACTION_HIGH: [f64; 2] = [1.0; 2];

/// A checked action: (throttle, steering), clamped to [-1, 1].
pub fn throttle_and_steering(action: &[f64]) -> Result<(f64, f64), ActionError> {
    if action.len() != 2 {
        return Err(ActionError::Size { got: action.len() });
    }
    if let Some(index) = action.iter().position(|a| !a.is_finite()) {
        return Err(ActionError::NonFinite { index, value: action[index] });
    }
    Ok((action[0].clamp(-1.0, 1.0), action[1].clamp(-1.0, 1.0)))
}

/// Yaw of the unit quaternion (w, x, y, z): the rotation about z a planar car has.
pub fn yaw_of(w: f64, x: f64, y: f64, z: f64) -> f64 {
    (2.0 * (w * z + x * y)).atan2(1.0 - 2.0 * (y * y + z * z))
}

/// The unit quaternion (w, z) of a rotation by `yaw` about z.
pub fn yaw_quaternion(yaw: f64) -> (f64, f64) {
    ((yaw / 2.0).cos(), (yaw / 2.0).sin())
}

impl CourseConfig {
    /// What the rules need of a course wherever it came from: two or more
    /// finite checkpoints, and positive, finite scales.
    pub fn validate(&self) -> Result<(), CourseError> {
        if self.checkpoints.len() < 2 {
            return Err(CourseError(format!("at least two checkpoints, got {}", self.checkpoints.len())));
        }
        if self.checkpoints.iter().any(|p| !(p.0.is_finite() && p.1.is_finite())) {
            return Err(CourseError("checkpoints must be finite".into()));
        }
        for (name, value) in [("max_speed_mps", self.max_speed_mps), ("max_yaw_rate_rps", self.max_yaw_rate_rps), ("bump_mps2", self.bump_mps2), ("checkpoint_radius_m", self.checkpoint_radius_m), ("stuck_after_s", self.stuck_after_s), ("stuck_distance_m", self.stuck_distance_m)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(CourseError(format!("{name} must be positive and finite, got {value}")));
            }
        }
        if !(self.collision_penalty.is_finite() && self.collision_penalty >= 0.0) {
            return Err(CourseError(format!("collision_penalty must be finite and at least 0, got {}", self.collision_penalty)));
        }
        Ok(())
    }

    /// The twist (m/s, rad/s) an action asks for.
    pub fn twist(&self, (throttle, steering): (f64, f64)) -> (f64, f64) {
        (throttle * self.max_speed_mps, steering * self.max_yaw_rate_rps)
    }
}

impl CourseProgress {
    pub fn new(course: CourseConfig) -> Result<CourseProgress, CourseError> {
        course.validate()?;
        Ok(CourseProgress { course, next: 0, passed_this_lap: 0, last: None, trying_since: None, needs_recovery: false, collisions: 0, laps: 0 })
    }

    pub fn course(&self) -> &CourseConfig {
        &self.course
    }

    /// A new lap from where the car is; the next checkpoint stays.
    pub fn start_lap(&mut self, reading: &CarReading) {
        self.passed_this_lap = 0;
        self.last = Some(*reading);
        self.trying_since = None;
        self.needs_recovery = false;
    }

    /// From the start of the course again (the twin put back at its start).
    pub fn restart(&mut self, reading: &CarReading) {
        self.next = 0;
        self.start_lap(reading);
    }

    pub fn next_checkpoint(&self) -> (f64, f64) {
        self.course.checkpoints[self.next]
    }

    fn after_next(&self) -> (f64, f64) {
        self.course.checkpoints[(self.next + 1) % self.course.checkpoints.len()]
    }

    /// Whether every checkpoint was passed since the lap started.
    pub fn lap_done(&self) -> bool {
        self.passed_this_lap >= self.course.checkpoints.len()
    }

    /// A collision or a stuck car since the lap started: the recovery
    /// manoeuvre is due.
    pub fn needs_recovery(&self) -> bool {
        self.needs_recovery
    }

    /// Collisions and completed laps since the course began.
    pub fn collisions(&self) -> u64 {
        self.collisions
    }
    pub fn laps(&self) -> u64 {
        self.laps
    }

    /// Judges the step that led to `now` under `throttle` (the action, in
    /// [-1, 1]); `peak_accel` is the largest horizontal acceleration seen
    /// over the step (IMU), or `None` to estimate it from the speed change.
    /// A step whose reading is no newer than the last (a repeated or
    /// backward stamp) made no progress: rates need time.
    pub fn step(&mut self, now: &CarReading, throttle: f64, peak_accel: Option<f64>) -> CourseStep {
        let Some(before) = self.last.replace(*now) else {
            return CourseStep::default();
        };
        let dt = now.time_s - before.time_s;
        let timed = dt.is_finite() && dt >= MIN_STEP_S;
        let target = self.next_checkpoint();
        let progress = if timed { (before.distance_to(target) - now.distance_to(target)) / dt / self.course.max_speed_mps } else { 0.0 };
        let accel = peak_accel.unwrap_or(if timed { ((now.speed - before.speed) / dt).abs() } else { 0.0 });
        let collided = accel > self.course.bump_mps2;
        let stuck = self.watch_stuck(now, throttle);
        let mut step = CourseStep { reward: progress, collided, stuck, ..CourseStep::default() };
        if collided {
            step.reward -= self.course.collision_penalty;
            self.collisions += 1;
        }
        self.needs_recovery |= collided || stuck;
        if now.distance_to(target) <= self.course.checkpoint_radius_m {
            step.passed = true;
            self.next = (self.next + 1) % self.course.checkpoints.len();
            self.passed_this_lap += 1;
            if self.lap_done() {
                step.lap = true;
                self.laps += 1;
            }
        }
        step
    }

    fn watch_stuck(&mut self, now: &CarReading, throttle: f64) -> bool {
        if throttle.abs() <= TRYING {
            self.trying_since = None;
            return false;
        }
        let (since, from) = *self.trying_since.get_or_insert((now.time_s, (now.x, now.y)));
        if now.distance_to(from) > self.course.stuck_distance_m {
            self.trying_since = Some((now.time_s, (now.x, now.y)));
            return false;
        }
        now.time_s - since >= self.course.stuck_after_s
    }

    /// The policy's observation: speed and yaw rate (of full throttle and
    /// steering), the next two checkpoints in the car's frame (of 3 m,
    /// clipped at ±2), and the horizontal acceleration (of the bump
    /// threshold, clipped at ±2).
    pub fn observe(&self, reading: &CarReading, out: &mut [f64; COURSE_OBSERVATION_SIZE]) {
        let goal = |p: (f64, f64)| {
            let (ahead, left) = reading.relative(p);
            ((ahead / GOAL_SCALE_M).clamp(-2.0, 2.0), (left / GOAL_SCALE_M).clamp(-2.0, 2.0))
        };
        let (g1, g2) = (goal(self.next_checkpoint()), goal(self.after_next()));
        let bump = self.course.bump_mps2;
        *out = [
            reading.speed / self.course.max_speed_mps,
            reading.yaw_rate / self.course.max_yaw_rate_rps,
            g1.0,
            g1.1,
            g2.0,
            g2.1,
            (reading.accel.0 / bump).clamp(-2.0, 2.0),
            (reading.accel.1 / bump).clamp(-2.0, 2.0),
        ];
    }

    /// Reverse while turning toward the next checkpoint: (throttle, steering)
    /// actions in [-1, 1].
    pub fn recovery(&self, reading: &CarReading) -> Vec<[f64; 2]> {
        let (_, left) = reading.relative(self.next_checkpoint());
        let turn = if left >= 0.0 { 0.8 } else { -0.8 };
        vec![[-0.6, turn]; RECOVERY_STEPS]
    }
}

/// A scripted driver for demos, from the observation alone: steer at the
/// next checkpoint, slowing for sharp turns. (throttle, steering) in [-1, 1].
pub fn pursue(observation: &[f64]) -> [f64; 2] {
    let bearing = observation[3].atan2(observation[2]);
    let steer = (1.5 * bearing).clamp(-1.0, 1.0);
    let throttle = (0.8 * bearing.cos().max(0.0)).max(0.15);
    [throttle, steer]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ArenaConfig;

    fn course() -> CourseConfig {
        CourseConfig {
            checkpoints: vec![(2.0, 0.0), (0.0, 1.0), (-2.0, 0.0)],
            checkpoint_radius_m: 0.4,
            arena: ArenaConfig { half_length_m: 3.0, half_width_m: 2.0 },
            cones: vec![],
            start: (0.0, 0.0, 0.0),
            max_speed_mps: 1.0,
            max_yaw_rate_rps: 3.0,
            collision_penalty: 1.0,
            bump_mps2: 10.0,
            stuck_after_s: 1.0,
            stuck_distance_m: 0.05,
        }
    }

    fn at(time_s: f64, x: f64, y: f64, speed: f64) -> CarReading {
        CarReading { time_s, x, y, speed, ..CarReading::default() }
    }

    #[test]
    fn driving_at_the_checkpoint_at_full_speed_earns_one_per_step_and_passing_all_is_a_lap() {
        let mut p = CourseProgress::new(course()).unwrap();
        p.start_lap(&at(0.0, 0.0, 0.0, 0.0));
        let s = p.step(&at(0.1, 0.1, 0.0, 1.0), 1.0, None);
        assert!((s.reward - 1.0).abs() < 1e-9, "{s:?}");
        // Away from it: negative progress.
        let s = p.step(&at(0.2, 0.05, 0.0, -0.5), -1.0, None);
        assert!(s.reward < 0.0 && !s.passed, "{s:?}");
        assert!(p.step(&at(0.3, 1.7, 0.0, 1.0), 1.0, Some(0.0)).passed);
        assert_eq!(p.next_checkpoint(), (0.0, 1.0));
        assert!(p.step(&at(0.4, 0.1, 0.9, 1.0), 1.0, Some(0.0)).passed);
        let last = p.step(&at(0.5, -1.8, 0.1, 1.0), 1.0, Some(0.0));
        assert!(last.passed && last.lap && p.lap_done() && p.laps() == 1, "{last:?}");
        // The next lap starts from where the car is, aiming at the first checkpoint again.
        p.start_lap(&at(0.5, -1.8, 0.1, 1.0));
        assert!(!p.lap_done());
        assert_eq!(p.next_checkpoint(), (2.0, 0.0));
    }

    #[test]
    fn a_bump_is_a_penalised_collision_that_asks_for_recovery() {
        let mut p = CourseProgress::new(course()).unwrap();
        p.start_lap(&at(0.0, 0.0, 0.0, 1.0));
        let quiet = p.step(&at(0.1, 0.1, 0.0, 1.0), 1.0, Some(9.0));
        assert!(!quiet.collided && !p.needs_recovery());
        let hit = p.step(&at(0.2, 0.1, 0.0, 0.0), 1.0, Some(30.0));
        assert!(hit.collided && p.needs_recovery() && p.collisions() == 1, "{hit:?}");
        assert!(hit.reward < -0.9, "{hit:?}");
        // Without an IMU, the speed's change tells: 1 m/s to 0 in 0.05 s is 20 m/s².
        let mut q = CourseProgress::new(course()).unwrap();
        q.start_lap(&at(0.0, 0.0, 0.0, 1.0));
        assert!(q.step(&at(0.05, 0.05, 0.0, 0.0), 1.0, None).collided);
        p.start_lap(&at(0.2, 0.1, 0.0, 0.0));
        assert!(!p.needs_recovery(), "a new lap starts clean");
    }

    #[test]
    fn throttle_without_motion_for_the_stuck_time_is_stuck_and_standing_still_is_not() {
        let mut p = CourseProgress::new(course()).unwrap();
        p.start_lap(&at(0.0, 0.0, 0.0, 0.0));
        // Standing still with no throttle: never stuck.
        for k in 1..=20 {
            assert!(!p.step(&at(k as f64 * 0.1, 0.0, 0.0, 0.0), 0.0, Some(0.0)).stuck);
        }
        // Pushing against a wall: stuck after a second, not before.
        let mut first = None;
        for k in 21..=40 {
            if p.step(&at(k as f64 * 0.1, 0.01, 0.0, 0.0), 0.9, Some(0.0)).stuck {
                first.get_or_insert(k);
            }
        }
        assert_eq!(first, Some(31), "stuck from 1 s after the push began");
        // Moving slowly but surely is not stuck.
        let mut q = CourseProgress::new(course()).unwrap();
        q.start_lap(&at(0.0, 0.0, 0.0, 0.0));
        for k in 1..=30 {
            assert!(!q.step(&at(k as f64 * 0.1, k as f64 * 0.03, 0.0, 0.3), 0.3, Some(0.0)).stuck, "step {k}");
        }
    }

    #[test]
    fn a_repeated_stamp_earns_nothing_and_a_course_without_checkpoints_is_refused() {
        let mut p = CourseProgress::new(course()).unwrap();
        p.start_lap(&at(1.0, 0.0, 0.0, 0.0));
        // The same stamp again, the pose jumped (a driver restart): no reward, no bump.
        let s = p.step(&at(1.0, 0.5, 0.0, 1.0), 1.0, None);
        assert_eq!((s.reward, s.collided), (0.0, false), "{s:?}");
        let s = p.step(&at(0.5, 0.6, 0.0, 1.0), 1.0, None);
        assert_eq!((s.reward, s.collided), (0.0, false), "a stamp going back: {s:?}");
        let mut empty = course();
        empty.checkpoints.clear();
        assert!(CourseProgress::new(empty).unwrap_err().to_string().contains("two checkpoints"));
        let mut still = course();
        still.max_speed_mps = 0.0;
        assert!(CourseProgress::new(still).is_err());
        assert_eq!(throttle_and_steering(&[2.0, -0.5]), Ok((1.0, -0.5)));
        assert_eq!(throttle_and_steering(&[0.0]), Err(ActionError::Size { got: 1 }));
        assert!(matches!(throttle_and_steering(&[0.0, f64::NAN]), Err(ActionError::NonFinite { index: 1, .. })));
        let (w, z) = yaw_quaternion(2.0);
        assert!((yaw_of(w, 0.0, 0.0, z) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn checkpoints_are_observed_in_the_car_frame_and_recovery_turns_toward_the_next() {
        let p = CourseProgress::new(course()).unwrap();
        // Facing +y at the origin: the first checkpoint (2, 0) is 2 m to the right.
        let facing_left = CarReading { yaw: std::f64::consts::FRAC_PI_2, ..CarReading::default() };
        let mut o = [0.0; COURSE_OBSERVATION_SIZE];
        p.observe(&facing_left, &mut o);
        assert!(o[2].abs() < 1e-9 && (o[3] + 2.0 / 3.0).abs() < 1e-9, "{o:?}");
        assert!(p.recovery(&facing_left).iter().all(|a| a[0] < 0.0 && a[1] < 0.0), "turn right, toward it");
        let facing_right = CarReading { yaw: -std::f64::consts::FRAC_PI_2, ..CarReading::default() };
        assert!(p.recovery(&facing_right).iter().all(|a| a[1] > 0.0));
        p.observe(&facing_left, &mut o);
        let [throttle, steer] = pursue(&o);
        assert!(throttle > 0.0 && steer < 0.0);
    }
}
