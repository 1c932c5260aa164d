//! The human at the robot over ROS 2: a gamepad (`sensor_msgs/Joy` from
//! `joy_node`) or a SpaceMouse (`/spacenav/joy` from `spacenav`) takes over
//! by moving, and `practice/command` (`std_msgs/String`: pause, resume,
//! success, failure, stop) steers the session.
//!
//! Mapping for end-effector tasks: axes 0, 1, 2 are x, y, z displacements
//! (already in [-1, 1]); button 0 held closes the gripper; buttons 2 and 3
//! label the episode a success or a failure (on press). The human is in
//! control while any axis is beyond the dead zone or button 0 or 1 is held,
//! and for `HOLD_AFTER_RELEASE` after, so a brief pause of the hand does not
//! hand control back mid-manoeuvre.

use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, TryRecvError};
use futures::StreamExt;
use policies::practice::{Operator, OperatorCommand, OperatorInput};
use r2r::QosProfile;

const DEAD_ZONE: f32 = 0.1;
const HOLD_AFTER_RELEASE: Duration = Duration::from_millis(500);

enum FromRos {
    Joy { axes: Vec<f32>, buttons: Vec<i32> },
    Command(String),
}

pub struct JoyOperator {
    inbox: Receiver<FromRos>,
    action_size: usize,
    last_active: Option<Instant>,
    axes: Vec<f32>,
    buttons: Vec<i32>,
    /// Spins the ROS node; stopped and joined on drop (a node still spinning
    /// while the process exits corrupts the heap in rcl's teardown).
    _spinner: robot_drivers::worker::Worker,
}

pub fn parse_command(text: &str) -> Option<OperatorCommand> {
    Some(match text.trim().to_ascii_lowercase().as_str() {
        "pause" => OperatorCommand::Pause,
        "resume" => OperatorCommand::Resume,
        "success" => OperatorCommand::Success,
        "failure" => OperatorCommand::Failure,
        "stop" => OperatorCommand::Stop,
        _ => return None,
    })
}

impl JoyOperator {
    /// Subscribes to `joy_topic` and `<namespace>/practice/command` on a
    /// node spun by its own thread.
    pub fn start(namespace: &str, joy_topic: &str, action_size: usize) -> anyhow::Result<JoyOperator> {
        let ctx = r2r::Context::create()?;
        let mut node = r2r::Node::create(ctx, "rrl_operator", namespace)?;
        let joy = node.subscribe::<r2r::sensor_msgs::msg::Joy>(joy_topic, QosProfile::default())?;
        let commands = node.subscribe::<r2r::std_msgs::msg::String>("practice/command", QosProfile::default())?;
        let (tx, inbox) = crossbeam::channel::unbounded();
        let spinner = robot_drivers::worker::Worker::spawn("operator-ros", move |stop| {
            let mut joy = joy.fuse();
            let mut commands = commands.fuse();
            while !robot_drivers::worker::stopping(stop) {
                node.spin_once(Duration::from_millis(5));
                use futures::FutureExt;
                while let Some(Some(msg)) = joy.next().now_or_never() {
                    if tx.send(FromRos::Joy { axes: msg.axes, buttons: msg.buttons }).is_err() {
                        return;
                    }
                }
                while let Some(Some(msg)) = commands.next().now_or_never() {
                    if tx.send(FromRos::Command(msg.data)).is_err() {
                        return;
                    }
                }
            }
        })?;
        tracing::info!(joy_topic, command_topic = "practice/command", "operator listening");
        Ok(JoyOperator { inbox, action_size, last_active: None, axes: Vec::new(), buttons: Vec::new(), _spinner: spinner })
    }
}

impl Operator for JoyOperator {
    fn poll(&mut self, _observation: &[f64]) -> OperatorInput {
        let mut input = OperatorInput::default();
        loop {
            match self.inbox.try_recv() {
                Ok(FromRos::Joy { axes, buttons }) => {
                    let pressed = |i: usize, list: &[i32]| list.get(i).is_some_and(|&b| b != 0);
                    if axes.iter().any(|a| a.abs() > DEAD_ZONE) || pressed(0, &buttons) || pressed(1, &buttons) {
                        self.last_active = Some(Instant::now());
                    }
                    // Labels act on the press, not while held.
                    if pressed(2, &buttons) && !pressed(2, &self.buttons) {
                        input.command = Some(OperatorCommand::Success);
                    }
                    if pressed(3, &buttons) && !pressed(3, &self.buttons) {
                        input.command = Some(OperatorCommand::Failure);
                    }
                    self.axes = axes;
                    self.buttons = buttons;
                }
                Ok(FromRos::Command(text)) => match parse_command(&text) {
                    Some(command) => input.command = Some(command),
                    None => tracing::warn!(command = %text, "unknown practice command: use pause, resume, success, failure or stop"),
                },
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        if self.last_active.is_some_and(|t| t.elapsed() <= HOLD_AFTER_RELEASE) {
            let axis = |k: usize| f64::from(self.axes.get(k).copied().unwrap_or(0.0)).clamp(-1.0, 1.0);
            let mut action: Vec<f64> = (0..self.action_size.min(3)).map(axis).collect();
            if self.action_size > 3 {
                action.push(if self.buttons.first().is_some_and(|&b| b != 0) { 1.0 } else { -1.0 });
            }
            action.resize(self.action_size, 0.0);
            input.takeover = Some(action);
        }
        input
    }
}

/// Keys of the keyboard operator (end-effector tasks).
pub const KEYBOARD_HELP: &str = "keys: w/s x, a/d y, r/f z, g gripper open/close, y success, n failure, p pause/resume, q stop";

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
    last_active: Option<Instant>,
    paused: bool,
    _terminal: Option<RawTerminal>,
}

impl KeyboardOperator {
    pub fn start(action_size: usize) -> anyhow::Result<KeyboardOperator> {
        let terminal = RawTerminal::enter();
        let (tx, keys) = crossbeam::channel::unbounded();
        // The reader blocks on stdin for the life of the process; it is not joined.
        std::thread::Builder::new().name("operator-keys".into()).spawn(move || {
            use std::io::Read;
            let mut byte = [0u8; 1];
            while let Ok(1) = std::io::stdin().lock().read(&mut byte) {
                if tx.send(byte[0]).is_err() {
                    return;
                }
            }
        })?;
        eprintln!("operator: {KEYBOARD_HELP}");
        Ok(KeyboardOperator { keys, action_size, motion: Vec::new(), gripper_closed: false, last_active: None, paused: false, _terminal: terminal })
    }
}

impl Operator for KeyboardOperator {
    fn poll(&mut self, _observation: &[f64]) -> OperatorInput {
        let mut input = OperatorInput::default();
        let now = Instant::now();
        while let Ok(key) = self.keys.try_recv() {
            match key {
                b'y' | b'\n' | b'\r' => input.command = Some(OperatorCommand::Success),
                b'n' => input.command = Some(OperatorCommand::Failure),
                b'q' => input.command = Some(OperatorCommand::Stop),
                b'p' => {
                    self.paused = !self.paused;
                    input.command = Some(if self.paused { OperatorCommand::Pause } else { OperatorCommand::Resume });
                }
                b'g' => {
                    self.gripper_closed = !self.gripper_closed;
                    self.last_active = Some(now);
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

/// The operator named on the command line: `none` (autonomous practice),
/// `joy` (gamepad or SpaceMouse over ROS 2, commands on
/// `<namespace>/practice/command`) or `keyboard` (this terminal).
pub fn operator_named(name: &str, namespace: &str, joy_topic: &str, action_size: usize, allow_none: bool) -> anyhow::Result<Box<dyn Operator>> {
    Ok(match name {
        "none" if allow_none => Box::new(policies::practice::NoOperator),
        "joy" => Box::new(JoyOperator::start(namespace, joy_topic, action_size)?),
        "keyboard" => Box::new(KeyboardOperator::start(action_size)?),
        other if allow_none => anyhow::bail!("unknown operator `{other}`: use none, joy or keyboard"),
        other => anyhow::bail!("unknown operator `{other}`: use joy or keyboard"),
    })
}
