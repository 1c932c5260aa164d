//! The safety gate: every command from any action source (policy, teleop,
//! reset script) passes through it, every control tick, before the hardware
//! write. Hard rule checks (e-stop, staleness, NaN, joint and Cartesian
//! limits) and a learned risk critic evaluated in pure Rust.
//!
//! Owns the decision of what reaches the actuators. Must never allocate,
//! lock or block on the per-tick path, and must never depend on libtorch or
//! ROS: it runs on the robot computer, at control rate, whatever else fails.

pub mod critic;
pub mod gate;
pub mod ik;
pub mod kinematics;
pub mod limits;
pub mod so101;

pub use critic::{critic_channel, CriticError, CriticLoader, RiskCritic};
pub use kinematics::{KinematicChain, KinematicsError};
pub use gate::{describe_tick, CartesianLimits, EStop, Gate, GateConfig, HoldReason, SafetyError, Verdict};
pub use limits::{enforce_effort, enforce_position, enforce_velocity, preset_limits, ClipFlags, JointLimit, JointMotion};
