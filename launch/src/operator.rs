//! The operators a command can take (`--operator`): none, a gamepad or
//! SpaceMouse over ROS 2 (`ros_edge::joy`), or the keyboard of the
//! terminal running rrl (here: terminal I/O belongs to the binary); and
//! `Paced`, which paces the steps in the operator's poll.

use std::time::{Duration, Instant};

use crossbeam::channel::Receiver;
use policies::practice::{Operator, OperatorCommand, OperatorInput};
use ros_edge::joy::JoyOperator;

use ros_edge::joy::HOLD_AFTER_RELEASE;

/// Keys of the keyboard operator (end-effector tasks).
pub const KEYBOARD_HELP: &str = "keys: w/s x, a/d y, r/f z, g gripper open/close, y success, n failure, m success marking on/off (teleop --label-frames), p pause/resume, space scene reset done, q stop";

/// A key's displacement: (axis, direction).
fn key_motion(key: u8) -> Option<(usize, f64)> {
    Some(match key {
        b'w' => (0, 1.0),
        b's' => (0, -1.0),
        b'a' => (1, 1.0),
        b'd' => (1, -1.0),
        b'r' => (2, 1.0),
        b'f' => (2, -1.0),
        _ => return None,
    })
}

/// The terminal in non-canonical, no-echo mode while the operator lives
/// (keys arrive as pressed, not per line); restored on drop. Ctrl-C still
/// interrupts.
struct RawTerminal {
    original: libc::termios,
}

impl RawTerminal {
    /// `None` when stdin is not a terminal (keys piped in).
    fn enter() -> Option<RawTerminal> {
        // SAFETY: termios calls on file descriptor 0 with a properly sized,
        // initialised struct; failures are reported by return value.
        unsafe {
            if libc::isatty(0) != 1 {
                return None;
            }
            let mut original = std::mem::MaybeUninit::<libc::termios>::uninit();
            if libc::tcgetattr(0, original.as_mut_ptr()) != 0 {
                return None;
            }
            let original = original.assume_init();
            let mut raw = original;
            raw.c_lflag &= !(libc::ICANON | libc::ECHO);
            raw.c_cc[libc::VMIN] = 1;
            raw.c_cc[libc::VTIME] = 0;
            if libc::tcsetattr(0, libc::TCSANOW, &raw) != 0 {
                return None;
            }
            Some(RawTerminal { original })
        }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        // SAFETY: restores the attributes read in `enter` on the same descriptor.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &self.original);
        }
    }
}

/// The human at the keyboard of the terminal running rrl (see
/// `KEYBOARD_HELP`). A movement key takes over and moves the hand along
/// its axis for `HOLD_AFTER_RELEASE` (key repeat keeps it going while the
/// key is held); `g` toggles the gripper, which the takeover then holds.
/// Keys also come piped on stdin, one byte each.
pub struct KeyboardOperator {
    keys: Receiver<u8>,
    action_size: usize,
    motion: Vec<(Instant, usize, f64)>,
    gripper_closed: bool,
    /// Toggled by `m`: a terminal reports no key releases, so the keyboard
    /// toggles what a gamepad button marks while held.
    marking_success: bool,
    last_active: Option<Instant>,
    paused: bool,
    _reset_presser: robot_drivers::worker::Worker,
    _terminal: Option<RawTerminal>,
}

impl KeyboardOperator {
    /// `namespace`: where the space bar says the scene is reset.
    pub fn start(namespace: &str, action_size: usize) -> anyhow::Result<KeyboardOperator> {
        let terminal = RawTerminal::enter();
        let (tx, keys) = crossbeam::channel::unbounded();
        // The space bar's presses are published from a thread joined when the
        // operator drops (never from the key reader, which outlives it and
        // would publish while the process tears ROS down).
        let reset_done = ros_edge::reset_window::ResetDoneButton::start(namespace)?;
        let (press, presses) = crossbeam::channel::bounded::<()>(16);
        let reset_presser = robot_drivers::worker::Worker::spawn("operator-reset-key", move |stop| {
            while !robot_drivers::worker::stopping(stop) {
                if presses.recv_timeout(std::time::Duration::from_millis(50)).is_ok() {
                    reset_done.press();
                }
            }
        })?;
        // The reader blocks on stdin for the life of the process; it is not joined.
        std::thread::Builder::new().name("operator-keys".into()).spawn(move || {
            use std::io::Read;
            let mut byte = [0u8; 1];
            while let Ok(1) = std::io::stdin().lock().read(&mut byte) {
                // Here, not in `poll`: the reset window is open while the
                // robot resets and nobody polls the operator.
                if byte[0] == b' ' {
                    let _ = press.try_send(());
                    continue;
                }
                if tx.send(byte[0]).is_err() {
                    return;
                }
            }
        })?;
        eprintln!("operator: {KEYBOARD_HELP}");
        Ok(KeyboardOperator { keys, action_size, motion: Vec::new(), gripper_closed: false, marking_success: false, last_active: None, paused: false, _reset_presser: reset_presser, _terminal: terminal })
    }
}

impl Operator for KeyboardOperator {
    fn labels(&self) -> bool {
        true
    }
    fn poll(&mut self, _observation: &[f64]) -> OperatorInput {
        let mut input = OperatorInput::default();
        let now = Instant::now();
        while let Ok(key) = self.keys.try_recv() {
            match key {
                // A label ends the episode, and with it any success marking:
                // the next episode's frames start as failures.
                b'y' | b'\n' | b'\r' => {
                    input.command = Some(OperatorCommand::Success);
                    self.marking_success = false;
                }
                b'n' => {
                    input.command = Some(OperatorCommand::Failure);
                    self.marking_success = false;
                }
                b'q' => input.command = Some(OperatorCommand::Stop),
                b'p' => {
                    self.paused = !self.paused;
                    input.command = Some(if self.paused { OperatorCommand::Pause } else { OperatorCommand::Resume });
                }
                b'g' => {
                    self.gripper_closed = !self.gripper_closed;
                    self.last_active = Some(now);
                }
                b'm' => {
                    self.marking_success = !self.marking_success;
                    eprintln!("operator: success marking {}", if self.marking_success { "ON: frames are labelled successes" } else { "off" });
                }
                other => {
                    if let Some((axis, direction)) = key_motion(other) {
                        self.motion.retain(|(_, a, _)| *a != axis);
                        self.motion.push((now, axis, direction));
                        self.last_active = Some(now);
                    }
                }
            }
        }
        input.marking_success = self.marking_success;
        self.motion.retain(|(pressed, ..)| now.duration_since(*pressed) <= HOLD_AFTER_RELEASE);
        if self.last_active.is_some_and(|t| now.duration_since(t) <= HOLD_AFTER_RELEASE) {
            let mut action = vec![0.0; self.action_size];
            for (_, axis, direction) in &self.motion {
                if *axis < self.action_size.min(3) {
                    action[*axis] = *direction;
                }
            }
            if self.action_size > 3 {
                action[3] = if self.gripper_closed { 1.0 } else { -1.0 };
            }
            input.takeover = Some(action);
        }
        input
    }
}

/// The operator named on the command line (`--operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OperatorKind {
    /// Autonomous practice: nobody takes over.
    None,
    /// A gamepad or SpaceMouse over ROS 2 (`sensor_msgs/Joy`), commands on `<namespace>/practice/command`.
    Joy,
    /// This terminal's keyboard.
    Keyboard,
}

impl OperatorKind {
    /// `launch`'s operator: a gamepad maps to its robot's actions (a car's
    /// throttle and steering, else the tool's axes and gripper).
    pub fn start(self, launch: &rrl_types::config::LaunchFile, joy_topic: &str, action_size: usize) -> anyhow::Result<Box<dyn Operator>> {
        let namespace = launch.namespace.as_str();
        let is_car = matches!(launch.robot, rrl_types::config::RobotConfig::Car(_)) || wiring::robot::is_car_twin(launch);
        let mapping = if is_car { ros_edge::joy::JoyMapping::Car } else { ros_edge::joy::JoyMapping::Tool };
        Ok(match self {
            OperatorKind::None => Box::new(policies::practice::NoOperator),
            OperatorKind::Joy => Box::new(JoyOperator::start(namespace, joy_topic, action_size, mapping)?),
            OperatorKind::Keyboard => Box::new(KeyboardOperator::start(namespace, action_size)?),
        })
    }
}

/// A leader arm beside the human's other devices: the leader's takeover
/// wins; labels, pauses and stops come from either (the human's first).
struct WithLeader {
    leader: wiring::leader::LeaderOperator,
    other: Box<dyn Operator>,
}

impl Operator for WithLeader {
    fn labels(&self) -> bool {
        self.other.labels()
    }
    fn poll(&mut self, observation: &[f64]) -> OperatorInput {
        let (leader, other) = (self.leader.poll(observation), self.other.poll(observation));
        OperatorInput { takeover: leader.takeover.or(other.takeover), command: other.command.or(leader.command), marking_success: other.marking_success }
    }
}

/// `other`, joined by the launch file's leader arm when it has one.
pub fn with_leader(other: Box<dyn Operator>, leader: Option<wiring::leader::LeaderOperator>) -> Box<dyn Operator> {
    match leader {
        Some(leader) => Box::new(WithLeader { leader, other }),
        None => other,
    }
}

/// Paces policy steps to the robot's rate (`--realtime`, teleoperation) by
/// waiting in the operator poll, which happens once per step.
pub struct Paced<'a> {
    inner: &'a mut dyn Operator,
    period: Option<Duration>,
    last: Option<Instant>,
}

impl<'a> Paced<'a> {
    /// `period` `None`: not paced.
    pub fn new(inner: &'a mut dyn Operator, period: Option<Duration>) -> Paced<'a> {
        Paced { inner, period, last: None }
    }
}

impl Operator for Paced<'_> {
    fn labels(&self) -> bool {
        self.inner.labels()
    }
    fn poll(&mut self, observation: &[f64]) -> OperatorInput {
        if let (Some(period), Some(last)) = (self.period, self.last) {
            if let Some(wait) = (last + period).checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        self.last = Some(Instant::now());
        self.inner.poll(observation)
    }
}
