//! The human at the robot over ROS 2: a gamepad (`sensor_msgs/Joy` from
//! `joy_node`) or a SpaceMouse (`/spacenav/joy` from `spacenav`) takes over
//! by moving, and `practice/command` (`std_msgs/String`: pause, resume,
//! success, failure, stop) steers the session.
//!
//! Mapping for end-effector tasks: axes 0, 1, 2 are x, y, z displacements
//! (already in [-1, 1]); button 0 held closes the gripper; buttons 2 and 3
//! label the episode a success or a failure (on press); button 4 says the
//! scene is reset (closes the reset window, even while the robot waits in
//! it and the operator is not polled); button 5 held marks the view a
//! success (`rrl teleop --label-frames`). A car's mapping (`JoyMapping::Car`)
//! drives as RC transmitters do: axis 1 (left stick up) is throttle and
//! axis 0 (left stick left) steers left, and only that stick takes over.
//! The human is in control while any axis (a car: the left stick) is
//! beyond the dead zone or button 0 or 1 is held (not for a car),
//! and for `HOLD_AFTER_RELEASE` after, so a brief pause of the hand does not
//! hand control back mid-manoeuvre.

use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, TryRecvError};
use futures::StreamExt;
use policies::practice::{Operator, OperatorCommand, OperatorInput};
use r2r::QosProfile;

use crate::EdgeError;

const DEAD_ZONE: f32 = 0.1;

/// How the gamepad's axes become actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoyMapping {
    /// Axes 0, 1, 2 are the first three actions (tool x, y, z); button 0
    /// closes the gripper (a fourth action).
    Tool,
    /// (throttle, steering) = (axis 1, axis 0).
    Car,
}

impl JoyMapping {
    /// Whether the human is moving what this mapping reads: any axis past
    /// the dead zone or button 0 or 1 held for the tool; the left stick
    /// only for a car (a trigger resting at ±1 or the other stick must not
    /// take a car over).
    pub fn active(self, axes: &[f32], buttons: &[i32]) -> bool {
        let pressed = |i: usize| buttons.get(i).is_some_and(|&b| b != 0);
        match self {
            JoyMapping::Tool => axes.iter().any(|a| a.abs() > DEAD_ZONE) || pressed(0) || pressed(1),
            JoyMapping::Car => axes.iter().take(2).any(|a| a.abs() > DEAD_ZONE),
        }
    }

    /// The action the gamepad's `axes` and `buttons` ask for.
    pub fn action(self, axes: &[f32], buttons: &[i32], action_size: usize) -> Vec<f64> {
        let axis = |k: usize| f64::from(axes.get(k).copied().unwrap_or(0.0)).clamp(-1.0, 1.0);
        let mut action: Vec<f64> = match self {
            JoyMapping::Car => vec![axis(1), axis(0)],
            JoyMapping::Tool => (0..action_size.min(3)).map(axis).collect(),
        };
        if self == JoyMapping::Tool && action_size > 3 {
            action.push(if buttons.first().is_some_and(|&b| b != 0) { 1.0 } else { -1.0 });
        }
        action.resize(action_size, 0.0);
        action
    }

}
/// How long the human keeps control after the last movement.
pub const HOLD_AFTER_RELEASE: Duration = Duration::from_millis(500);
/// The button that says the scene is reset.
pub const RESET_DONE_BUTTON: usize = 4;
/// The button held while the view shows a success.
pub const MARK_SUCCESS_BUTTON: usize = 5;

enum FromRos {
    Joy { axes: Vec<f32>, buttons: Vec<i32> },
    Command(String),
}

pub struct JoyOperator {
    inbox: Receiver<FromRos>,
    action_size: usize,
    mapping: JoyMapping,
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
    pub fn start(namespace: &str, joy_topic: &str, action_size: usize, mapping: JoyMapping) -> Result<JoyOperator, EdgeError> {
        let ctx = r2r::Context::create()?;
        let mut node = r2r::Node::create(ctx, "rrl_operator", namespace)?;
        let joy = node.subscribe::<r2r::sensor_msgs::msg::Joy>(joy_topic, QosProfile::default())?;
        let commands = node.subscribe::<r2r::std_msgs::msg::String>("practice/command", QosProfile::default())?;
        let (tx, inbox) = crossbeam::channel::unbounded();
        let reset_done = crate::reset_window::ResetDoneButton::start(namespace)?;
        let spinner = robot_drivers::worker::Worker::spawn("operator-ros", move |stop| {
            let mut joy = joy.fuse();
            let mut commands = commands.fuse();
            let mut reset_held = false;
            while !robot_drivers::worker::stopping(stop) {
                node.spin_once(Duration::from_millis(5));
                use futures::FutureExt;
                while let Some(Some(msg)) = joy.next().now_or_never() {
                    // Here, not in `poll`: the window is open while the robot
                    // resets and nobody polls the operator.
                    let held = msg.buttons.get(RESET_DONE_BUTTON).is_some_and(|&b| b != 0);
                    if held && !reset_held {
                        reset_done.press();
                    }
                    reset_held = held;
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
        })
        .map_err(EdgeError::io("starting the operator's ROS thread"))?;
        tracing::info!(joy_topic, command_topic = "practice/command", "operator listening");
        Ok(JoyOperator { inbox, action_size, mapping, last_active: None, axes: Vec::new(), buttons: Vec::new(), _spinner: spinner })
    }
}

impl Operator for JoyOperator {
    fn labels(&self) -> bool {
        true
    }
    fn poll(&mut self, _observation: &[f64]) -> OperatorInput {
        let mut input = OperatorInput::default();
        loop {
            match self.inbox.try_recv() {
                Ok(FromRos::Joy { axes, buttons }) => {
                    let pressed = |i: usize, list: &[i32]| list.get(i).is_some_and(|&b| b != 0);
                    if self.mapping.active(&axes, &buttons) {
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
        input.marking_success = self.buttons.get(MARK_SUCCESS_BUTTON).is_some_and(|&b| b != 0);
        if self.last_active.is_some_and(|t| t.elapsed() <= HOLD_AFTER_RELEASE) {
            input.takeover = Some(self.mapping.action(&self.axes, &self.buttons, self.action_size));
        }
        input
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_car_drives_on_the_left_stick_as_an_rc_transmitter_does() {
        // Left stick pushed up (axis 1) and to the left (axis 0).
        let (axes, buttons) = ([0.4_f32, 0.9, -0.2], [1, 0]);
        assert_eq!(JoyMapping::Car.action(&axes, &buttons, 2), vec![0.9_f32 as f64, 0.4_f32 as f64], "throttle, then steering (left is positive yaw)");
        // The tool's mapping: x, y, z from axes 0-2, the gripper from button 0.
        assert_eq!(JoyMapping::Tool.action(&axes, &buttons, 4), vec![0.4_f32 as f64, 0.9_f32 as f64, -0.2_f32 as f64, 1.0]);
        // Out-of-range axes are clipped to the action bounds.
        assert_eq!(JoyMapping::Car.action(&[3.0, -7.0], &[], 2), vec![-1.0, 1.0]);
        // A trigger resting at -1 (axis 2) or the gripper button takes over an arm, not a car.
        let (resting, gripper) = ([0.0_f32, 0.0, -1.0, 0.0], [1, 0]);
        assert!(!JoyMapping::Car.active(&resting, &gripper) && JoyMapping::Tool.active(&resting, &[0, 0]) && JoyMapping::Tool.active(&[0.0], &gripper));
        assert!(JoyMapping::Car.active(&[0.0, 0.5], &[]));
    }
}
