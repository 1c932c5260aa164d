//! Any ros2_control arm through its topics: `sensor_msgs/JointState` in
//! (reordered to the configured joint order), and commands out as
//! `std_msgs/Float64MultiArray` (forward position or velocity controllers)
//! or `trajectory_msgs/JointTrajectory` (one point a little ahead). A
//! background thread spins the ROS node; the control loop only swaps the
//! newest state in and the newest command out, so a silent robot shows up as
//! a stale state in the gate rather than a blocked loop. An optional
//! `geometry_msgs/WrenchStamped` topic reports the external force for the
//! gate's force threshold. A gripper with its own controller is one more
//! joint: read from the same joint states, its command published to its
//! own topic.

use std::sync::Arc;
use std::time::Duration;

use crossbeam::queue::ArrayQueue;
use futures::{FutureExt, StreamExt};
use rrl_types::config::{ArmCommandTopic, TopicArmConfig};
use rrl_types::{CommandMode, JointCommand, JointState, Timestamp};

use crate::hardware::{check_write, transition, HardwareError, HardwareInterface, Lifecycle};
use crate::worker::{stopping, Worker};

pub struct TopicArm {
    config: TopicArmConfig,
    /// The arm's joints, then the gripper's.
    names: Vec<String>,
    namespace: String,
    lifecycle: Lifecycle,
    newest_state: Arc<ArrayQueue<JointState>>,
    newest_wrench: Arc<ArrayQueue<(Timestamp, [f64; 6])>>,
    outgoing: Arc<ArrayQueue<JointCommand>>,
    last_state: Option<JointState>,
    last_wrench: Option<(Timestamp, [f64; 6])>,
    worker: Option<Worker>,
}

impl TopicArm {
    pub fn new(config: TopicArmConfig, namespace: &str) -> TopicArm {
        let names = config.joint_names.iter().chain(config.gripper.as_ref().map(|g| &g.joint)).cloned().collect();
        TopicArm {
            config,
            names,
            namespace: namespace.to_string(),
            lifecycle: Lifecycle::Unconfigured,
            newest_state: Arc::new(ArrayQueue::new(1)),
            newest_wrench: Arc::new(ArrayQueue::new(1)),
            outgoing: Arc::new(ArrayQueue::new(1)),
            last_state: None,
            last_wrench: None,
            worker: None,
        }
    }

    fn device(&self, message: impl std::fmt::Display) -> HardwareError {
        HardwareError::Device { robot: format!("topic arm on {}", self.config.state_topic), message: message.to_string() }
    }

    fn start_node(&mut self) -> Result<(), HardwareError> {
        let ctx = r2r::Context::create().map_err(|e| self.device(e))?;
        let mut node = r2r::Node::create(ctx, "topic_arm", &self.namespace).map_err(|e| self.device(e))?;
        let mut states = node.subscribe::<r2r::sensor_msgs::msg::JointState>(&self.config.state_topic, r2r::QosProfile::sensor_data()).map_err(|e| self.device(e))?;
        let mut wrenches = match &self.config.wrench_topic {
            Some(topic) => Some(node.subscribe::<r2r::geometry_msgs::msg::WrenchStamped>(topic, r2r::QosProfile::sensor_data()).map_err(|e| self.device(e))?),
            None => None,
        };
        let out = Out::create(&mut node, &self.config.command).map_err(|e| self.device(e))?;
        let gripper = match &self.config.gripper {
            None => None,
            Some(_) if matches!(self.config.command, ArmCommandTopic::ForwardVelocity { .. }) => return Err(self.device("a gripper needs a position-controlled arm (the gripper's command is a position)")),
            Some(gripper) => Some(Out::create(&mut node, &gripper.command).map_err(|e| self.device(e))?),
        };
        let gripper_joint = self.config.gripper.as_ref().map(|g| vec![g.joint.clone()]).unwrap_or_default();
        let names = self.names.clone();
        let arm_joints = self.config.joint_names.len();
        let on_arrival = self.config.stamp_on_arrival;
        let stamp_of = move |header: &r2r::builtin_interfaces::msg::Time| {
            if on_arrival {
                rrl_types::Clock::now(&rrl_types::SystemClock)
            } else {
                crate::image_topic::received_stamp(header)
            }
        };
        let (newest, newest_wrench, outgoing) = (self.newest_state.clone(), self.newest_wrench.clone(), self.outgoing.clone());
        let worker = Worker::spawn("topic-arm", move |stop| {
            while !stopping(stop) {
                node.spin_once(Duration::from_millis(1));
                while let Some(Some(msg)) = states.next().now_or_never() {
                    if let Some(mut state) = reorder(&names, &msg) {
                        state.stamp = stamp_of(&msg.header.stamp);
                        let _ = newest.force_push(state);
                    }
                }
                if let Some(wrenches) = wrenches.as_mut() {
                    while let Some(Some(msg)) = wrenches.next().now_or_never() {
                        let (f, t) = (&msg.wrench.force, &msg.wrench.torque);
                        let _ = newest_wrench.force_push((stamp_of(&msg.header.stamp), [f.x, f.y, f.z, t.x, t.y, t.z]));
                    }
                }
                if let Some(command) = outgoing.pop() {
                    let values = command.values.as_slice();
                    publish(&out, &names[..arm_joints], &values[..arm_joints.min(values.len())]);
                    if let (Some(out), Some(value)) = (&gripper, values.get(arm_joints)) {
                        publish(out, &gripper_joint, std::slice::from_ref(value));
                    }
                }
            }
        })
        .map_err(|e| self.device(e))?;
        self.worker = Some(worker);
        Ok(())
    }
}

/// Where a controller's commands go.
enum Out {
    Array(r2r::Publisher<r2r::std_msgs::msg::Float64MultiArray>),
    /// One point this many milliseconds ahead.
    Trajectory(r2r::Publisher<r2r::trajectory_msgs::msg::JointTrajectory>, u64),
}

impl Out {
    fn create(node: &mut r2r::Node, command: &ArmCommandTopic) -> Result<Out, r2r::Error> {
        let qos = r2r::QosProfile::default();
        Ok(match command {
            ArmCommandTopic::ForwardPosition { topic } | ArmCommandTopic::ForwardVelocity { topic } => Out::Array(node.create_publisher(topic, qos)?),
            ArmCommandTopic::Trajectory { topic, time_from_start_ms } => Out::Trajectory(node.create_publisher(topic, qos)?, *time_from_start_ms),
        })
    }
}

/// Publishes one command; a failed publish is dropped (the next tick sends a newer one).
fn publish(out: &Out, names: &[String], values: &[f64]) {
    let _ = match out {
        Out::Array(publisher) => publisher.publish(&r2r::std_msgs::msg::Float64MultiArray { data: values.to_vec(), ..Default::default() }),
        Out::Trajectory(publisher, ahead_ms) => publisher.publish(&r2r::trajectory_msgs::msg::JointTrajectory {
            joint_names: names.to_vec(),
            points: vec![r2r::trajectory_msgs::msg::JointTrajectoryPoint {
                positions: values.to_vec(),
                time_from_start: r2r::builtin_interfaces::msg::Duration { sec: (*ahead_ms / 1000) as i32, nanosec: ((*ahead_ms % 1000) * 1_000_000) as u32 },
                ..Default::default()
            }],
            ..Default::default()
        }),
    };
}

/// The message's joints in `names` order; `None` if a joint is missing.
fn reorder(names: &[String], msg: &r2r::sensor_msgs::msg::JointState) -> Option<JointState> {
    let mut state = JointState::zeros(names.len());
    for (j, name) in names.iter().enumerate() {
        let i = msg.name.iter().position(|n| n == name)?;
        state.position[j] = *msg.position.get(i)?;
        state.velocity[j] = msg.velocity.get(i).copied().unwrap_or(0.0);
        state.effort[j] = msg.effort.get(i).copied().unwrap_or(0.0);
    }
    Some(state)
}

impl HardwareInterface for TopicArm {
    fn name(&self) -> &str {
        &self.config.state_topic
    }
    fn joint_names(&self) -> &[String] {
        &self.names
    }
    fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }
    fn configure(&mut self) -> Result<(), HardwareError> {
        if self.lifecycle == Lifecycle::Unconfigured && self.worker.is_none() {
            self.start_node()?;
        }
        transition(&self.config.state_topic, &mut self.lifecycle, "configure")
    }
    fn activate(&mut self) -> Result<(), HardwareError> {
        transition(&self.config.state_topic, &mut self.lifecycle, "activate")
    }
    fn deactivate(&mut self) -> Result<(), HardwareError> {
        transition(&self.config.state_topic, &mut self.lifecycle, "deactivate")
    }
    fn recover(&mut self) -> Result<(), HardwareError> {
        transition(&self.config.state_topic, &mut self.lifecycle, "recover")
    }
    /// The newest received state; the same one again (growing stale) while
    /// the arm is silent.
    fn read(&mut self, _now: Timestamp, state: &mut JointState) -> Result<(), HardwareError> {
        if let Some(newest) = self.newest_state.pop() {
            self.last_state = Some(newest);
        }
        if let Some(wrench) = self.newest_wrench.pop() {
            self.last_wrench = Some(wrench);
        }
        match self.last_state {
            Some(mut s) => {
                if self.config.wrench_topic.is_some() {
                    // An old or missing reading says nothing about the force now.
                    let timeout = self.config.state_timeout_ms * 1_000_000;
                    s.wrench = Some(match self.last_wrench {
                        Some((stamp, wrench)) if s.stamp.nanos_since(stamp) <= timeout && stamp.nanos_since(s.stamp) <= timeout => wrench,
                        _ => [f64::NAN; 6],
                    });
                }
                *state = s;
                Ok(())
            }
            None => {
                // Nothing heard yet: an empty state, which the gate holds on.
                *state = JointState::zeros(0);
                Ok(())
            }
        }
    }
    fn native_mode(&self) -> CommandMode {
        match self.config.command {
            ArmCommandTopic::ForwardVelocity { .. } => CommandMode::Velocity,
            _ => CommandMode::Position,
        }
    }
    fn write(&mut self, command: &JointCommand) -> Result<(), HardwareError> {
        let mode = self.native_mode();
        let supported: &'static [CommandMode] = if mode == CommandMode::Velocity { &[CommandMode::Velocity] } else { &[CommandMode::Position] };
        check_write(self, command, supported)?;
        let _ = self.outgoing.force_push(*command);
        Ok(())
    }
}
