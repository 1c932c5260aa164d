//! A real car's task over its driver (`Car(..)`: Twist out, odometry and
//! IMU in), racing the launch file's course by the same rules as the twin
//! (`rrl_types::course`). The driver sits behind the control thread, which
//! ticks read → gate → write at the car's control rate on the wall clock
//! (`crate::control_link`); the task offers each step's twist every tick of
//! its policy period and reads the pose and the IMU's samples (for bumps)
//! from the driver's feed.
//!
//! A state older than the safety section's `state_timeout_ms` — the
//! odometry's, or the IMU's when the car has one: the age the gate sees —
//! pauses practice before the next step (the gate stops the car
//! meanwhile), and practice resumes by itself when it comes back. Nothing
//! is recorded while paused.

use std::sync::Arc;
use std::time::{Duration, Instant};

use robot_drivers::car::{CarFeed, TopicCar};
use robot_drivers::pacing::Pacer;
use robot_drivers::HardwareInterface;
use rrl_types::config::{LaunchFile, RobotConfig};
use rrl_types::course::{throttle_and_steering, ActionError, CarReading, CourseProgress, ACTION_HIGH, ACTION_LOW, COURSE_OBSERVATION_SIZE};
use rrl_types::{Clock, CommandMode, Environment, JointCommand, JointVec, LiveStatus, MonotonicClock, PracticeTask, Step, SystemClock, TickDecimator, Timestamp, Waiting, QUIET_TICK_RECORD_HZ};
use safety::Gate;

use crate::control_link::ControlLink;
use crate::policy_cameras::{CameraError, PolicyCameras};

#[derive(Debug, thiserror::Error)]
pub enum CarTaskError {
    /// The launch file asks for what this car cannot do.
    #[error("{0}")]
    Unfit(String),
    #[error("the car: {0}")]
    Hardware(String),
    #[error(transparent)]
    Safety(#[from] safety::SafetyError),
    #[error(transparent)]
    Action(#[from] ActionError),
    #[error("the policy's cameras: {0}")]
    Camera(String),
}

impl From<CameraError> for CarTaskError {
    fn from(e: CameraError) -> CarTaskError {
        match e {
            CameraError::Unfit(why) => CarTaskError::Unfit(why),
            CameraError::Camera(why) => CarTaskError::Camera(why),
        }
    }
}

pub struct CarCourseTask {
    link: ControlLink,
    feed: CarFeed,
    /// Where critics trained during practice reach the control thread's gate.
    critic_loader: safety::CriticLoader,
    progress: CourseProgress,
    reading: CarReading,
    /// Whether any odometry has come.
    seen_pose: bool,
    /// When the newest odometry arrived here (to tell a silent car from
    /// one whose stamps are behind this machine's clock).
    pose_arrived: Option<Instant>,
    /// The stamp of the control thread's newest state: the older of the
    /// newest odometry and IMU (`Timestamp::ZERO` while a configured IMU is silent).
    state_stamp: Timestamp,
    /// The largest horizontal acceleration among the IMU samples taken
    /// since the last step was judged (between steps too).
    peak_accel: f64,
    has_imu: bool,
    state_timeout: Duration,
    reset_timeout: Duration,
    policy_ticks: usize,
    ticks: Pacer<MonotonicClock>,
    observation: [f64; COURSE_OBSERVATION_SIZE],
    steps: u32,
    max_steps: u32,
    live: Arc<LiveStatus>,
    /// The cameras the policy sees (`robot.observe_cameras`), if any.
    cameras: Option<PolicyCameras>,
}

impl CarCourseTask {
    /// Starts the car's driver and control thread for `launch` (a `Car(..)`
    /// robot with a `course`).
    pub fn start(launch: &LaunchFile) -> Result<CarCourseTask, CarTaskError> {
        let RobotConfig::Car(car) = &launch.robot else {
            return Err(CarTaskError::Unfit(format!("a {} robot is not a car", launch.robot.kind_name())));
        };
        let course = launch.course.clone().ok_or_else(|| CarTaskError::Unfit("a car practises its launch file's course, and it has none: add a `course` section (checkpoints in the odometry frame, the arena)".into()))?;
        let progress = CourseProgress::new(course).map_err(|e| CarTaskError::Unfit(e.to_string()))?;
        let rate = car.control_rate_hz;
        // The one gate builder: rules, and the risk critic when one is configured.
        let mut gate = Gate::build(&launch.safety, &launch.robot.joint_names(), rate)?;
        let critic_loader = gate.critic_loader();
        // A stall is said after a second without a fresh frame (the wait itself starts at once).
        let cameras = PolicyCameras::start("robot.observe_cameras", &car.observe_cameras, &launch.cameras, &launch.namespace, Duration::from_secs(1))?;
        let mut hardware = TopicCar::new(car.clone(), &launch.namespace);
        let feed = hardware.feed();
        let hardware_error = |e: robot_drivers::HardwareError| CarTaskError::Hardware(e.to_string());
        hardware.configure().map_err(hardware_error)?;
        hardware.activate().map_err(hardware_error)?;
        let control_period = Duration::from_secs_f64(1.0 / rate);
        let link = ControlLink::start(hardware, gate, control_period, TickDecimator::for_rate(rate, QUIET_TICK_RECORD_HZ)).map_err(CarTaskError::Hardware)?;
        let practice = &launch.practice;
        Ok(CarCourseTask {
            link,
            feed,
            critic_loader,
            progress,
            reading: CarReading::default(),
            seen_pose: false,
            pose_arrived: None,
            state_stamp: Timestamp::ZERO,
            peak_accel: 0.0,
            has_imu: car.imu_topic.is_some(),
            state_timeout: Duration::from_millis(launch.safety.state_timeout_ms),
            reset_timeout: Duration::from_secs_f64(practice.reset_timeout_s),
            policy_ticks: (rate / practice.policy_rate_hz).round().max(1.0) as usize,
            ticks: Pacer::new(control_period, MonotonicClock),
            observation: [0.0; COURSE_OBSERVATION_SIZE],
            steps: 0,
            max_steps: practice.max_episode_steps,
            live: Arc::default(),
            cameras,
        })
    }

    pub fn progress(&self) -> &CourseProgress {
        &self.progress
    }

    /// Takes the newest odometry, the control thread's newest state stamp,
    /// and every IMU sample since the last look (their peak acceleration
    /// kept for the next step's judgement).
    fn take_newest(&mut self) {
        if let Some(pose) = self.feed.take_pose() {
            let r = &mut self.reading;
            (r.time_s, r.x, r.y, r.yaw, r.speed) = (pose.stamp.as_secs_f64(), pose.x, pose.y, pose.yaw, pose.speed);
            if !self.has_imu {
                r.yaw_rate = pose.yaw_rate;
            }
            self.seen_pose = true;
            self.pose_arrived = Some(Instant::now());
        }
        if let Some(state) = self.link.take_state() {
            self.state_stamp = state.stamp;
        }
        let (reading, peak) = (&mut self.reading, &mut self.peak_accel);
        self.feed.drain_imu(|sample| {
            *peak = peak.max(sample.accel.0.hypot(sample.accel.1));
            reading.accel = sample.accel;
            reading.yaw_rate = sample.yaw_rate;
        });
    }

    /// How old the state the gate sees is; `None` before the first odometry.
    fn state_age(&self) -> Option<Duration> {
        self.seen_pose.then(|| Duration::from_nanos(SystemClock.now().nanos_since(self.state_stamp)))
    }

    /// Returns once the car's state (odometry, and IMU if it has one) is
    /// fresh. While it is stale (the car stopped publishing) practice
    /// pauses here: no step is taken or recorded, the gate stops the car,
    /// the log says so once, and practice resumes by itself when it comes
    /// back. `within` bounds the wait (`None`: no bound).
    fn wait_for_state(&mut self, within: Option<Duration>) -> Result<(), CarTaskError> {
        let started = Instant::now();
        let first = !self.seen_pose;
        // The cause the log last gave; Some while practice is paused here.
        let mut said: Option<StaleCause> = None;
        loop {
            self.link.check_failure().map_err(CarTaskError::Hardware)?;
            self.take_newest();
            let fresh = self.state_age().is_some_and(|age| age <= self.state_timeout);
            if fresh {
                match (said.is_some(), first) {
                    (true, true) => tracing::info!(waited_s = started.elapsed().as_secs_f64(), "the car's first odometry came"),
                    (true, false) => tracing::warn!(paused_s = started.elapsed().as_secs_f64(), "the car's state comes again: practice resumes"),
                    (false, _) => {}
                }
                if said.is_some() {
                    self.live.came(Waiting::ArmState);
                }
                return Ok(());
            }
            // Clock trouble: messages still come, stamped well before they came. A
            // driver that just stopped has its last stamp about as old as its
            // last arrival, so it is not taken for a lagging clock.
            let age = self.state_age();
            let arriving = match (self.pose_arrived, age) {
                (Some(came), Some(age)) => came.elapsed() <= self.state_timeout && age.saturating_sub(came.elapsed()) > self.state_timeout / 2,
                _ => false,
            };
            let cause = match age {
                None => StaleCause::NoFirstOdometry,
                Some(_) if self.has_imu && self.state_stamp == Timestamp::ZERO => StaleCause::ImuSilent,
                Some(_) if arriving => StaleCause::ClockBehind,
                Some(_) => StaleCause::Stopped,
            };
            // Said once per cause: a pause that began as a lagging clock and
            // then saw the driver stop says so.
            if said != Some(cause) {
                if said.is_none() {
                    self.live.wait_for(Waiting::ArmState);
                }
                let age_ms = age.map_or(0, |age| age.as_millis().min(u128::from(u32::MAX)) as u64);
                match cause {
                    StaleCause::NoFirstOdometry => tracing::info!("waiting for the car's first odometry"),
                    StaleCause::ImuSilent => tracing::warn!("the car's IMU has sent nothing (robot.imu_topic): practice is paused and the safety gate stops the car until it does"),
                    StaleCause::ClockBehind => tracing::warn!(behind_ms = age_ms, "the car's odometry keeps arriving, stamped behind this machine's clock (or its IMU lags): practice is paused and the safety gate stops the car until they are current; sync the car's clock (chrony or NTP)"),
                    StaleCause::Stopped => tracing::warn!("no odometry{} from the car for {age_ms} ms (has it stopped publishing?): practice is paused and the safety gate stops the car until it returns", if self.has_imu { " or IMU" } else { "" }),
                }
                said = Some(cause);
            }
            if within.is_some_and(|w| started.elapsed() > w) {
                return Err(CarTaskError::Hardware(format!("no fresh odometry{} within {:.0} s", if self.has_imu { " and IMU" } else { "" }, started.elapsed().as_secs_f64())));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Offers the twist for `throttle`, `steer` every control tick of one
    /// policy period.
    fn drive(&mut self, throttle: f64, steer: f64) -> Result<(), CarTaskError> {
        let (linear, angular) = self.progress.course().twist((throttle, steer));
        let values = JointVec::from_slice(&[linear, angular]).expect("2 joints");
        // Time spent between steps (acting, recording) is not caught up on.
        self.ticks.reanchor();
        for _ in 0..self.policy_ticks {
            self.link.offer(JointCommand { stamp: SystemClock.now(), mode: CommandMode::Velocity, values });
            self.ticks.wait();
            self.link.check_failure().map_err(CarTaskError::Hardware)?;
            self.take_newest();
        }
        Ok(())
    }

    fn observe(&mut self) {
        self.progress.observe(&self.reading, &mut self.observation);
    }

    /// Every camera's newest frame captured at or after `since` (waiting
    /// while one has none that fresh).
    fn capture_frames(&mut self, since: Timestamp) -> Result<(), CarTaskError> {
        match self.cameras.as_mut() {
            Some(cameras) => Ok(cameras.capture(since, &self.live)?),
            None => Ok(()),
        }
    }
}

impl Environment for CarCourseTask {
    type Error = CarTaskError;

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

    /// A new lap from wherever the car stands: nobody carries a car back.
    /// Waits for the car's odometry first (at most `practice.reset_timeout_s`;
    /// past that the next step reports it).
    fn reset_next(&mut self) -> &[f64] {
        // Bumps before the lap are not its own.
        self.peak_accel = 0.0;
        // A car that did not come is reported by the next step; its cameras are not waited for.
        let captured = self.wait_for_state(Some(self.reset_timeout)).and_then(|()| self.capture_frames(SystemClock.now()));
        if let Err(e) = captured {
            self.link.fail_later(e.to_string());
        }
        self.progress.start_lap(&self.reading);
        self.steps = 0;
        self.observe();
        &self.observation
    }

    fn step(&mut self, action: &[f64]) -> Result<Step, CarTaskError> {
        let (throttle, steer) = throttle_and_steering(action)?;
        self.wait_for_state(None)?;
        let acting_since = SystemClock.now();
        self.drive(throttle, steer)?;
        // Frames from before the action took effect are not this step's.
        self.capture_frames(acting_since)?;
        let peak = std::mem::take(&mut self.peak_accel);
        let step = self.progress.step(&self.reading, throttle, self.has_imu.then_some(peak));
        self.steps += 1;
        self.observe();
        Ok(Step { reward: step.reward, terminated: false, truncated: step.lap || self.steps >= self.max_steps })
    }

    fn success(&self) -> Option<bool> {
        Some(self.progress.lap_done())
    }
    fn frames(&self) -> Option<&[u8]> {
        self.cameras.as_ref().map(PolicyCameras::frames)
    }
    fn frame_layout(&self) -> Option<rrl_types::FrameLayout> {
        self.cameras.as_ref().map(PolicyCameras::layout)
    }
}

impl PracticeTask for CarCourseTask {
    /// Reverse and turn toward the next checkpoint.
    fn recovery_actions(&self) -> Vec<Vec<f64>> {
        self.progress.recovery(&self.reading).iter().map(|a| a.to_vec()).collect()
    }
    fn needs_recovery(&self) -> bool {
        self.progress.needs_recovery()
    }
    fn take_safety_events(&mut self) -> rrl_types::SafetyEvents {
        self.link.take_events()
    }
    fn take_gate_ticks(&mut self, out: &mut Vec<rrl_types::GateTick>) {
        self.link.take_ticks(out)
    }
    fn offer_risk_critic(&mut self, layers: &[(Vec<Vec<f32>>, Vec<f32>)], acting: bool) -> Result<(), String> {
        let critic = safety::RiskCritic::from_layers(layers.to_vec())?;
        self.critic_loader.offer(critic, acting).map_err(|e| e.to_string())
    }
    fn live_status(&self) -> Option<Arc<LiveStatus>> {
        Some(self.live.clone())
    }
}

/// Why the car's state is stale, as the log tells the operator.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StaleCause {
    NoFirstOdometry,
    ImuSilent,
    ClockBehind,
    Stopped,
}

