//! Hardware: the ros2_control-style hardware interface and the drivers behind
//! it (serial-servo buses, ROS 2 topic robots, cameras), the paced loop
//! their threads run on, plus the emulated devices their tests talk to over
//! pseudo-terminals.
//!
//! Owns every byte that crosses a wire to a robot or a camera. Must never
//! contain learning code, and must never write a command to hardware that did
//! not come through the safety gate: drivers expose `write`, the control loop
//! decides what reaches it.

pub mod camera;
pub mod car;
pub mod control;
pub mod control_thread;
pub mod dynamixel;
pub mod dynamixel_emulator;
pub mod feetech;
pub mod feetech_emulator;
pub mod hardware;
pub mod image_topic;
pub mod io_thread;
pub mod leader;
pub mod pacing;
pub mod pty;
pub mod serial;
pub mod servo_arm;
pub mod servo_bus;
mod servo_emulation;
mod servo_wire;
pub mod topic_arm;
pub mod worker;

pub use control::{CommandSlot, ControlLoop, VerdictCounts};
pub use hardware::{HardwareError, HardwareInterface, Lifecycle, MockHardware};
