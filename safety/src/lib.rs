//! The safety gate: every command from any action source (policy, teleop,
//! reset script) passes through it, every control tick, before the hardware
//! write. Hard rule checks (e-stop, staleness, NaN, joint and Cartesian
//! limits) and a learned risk critic evaluated in pure Rust.
//!
//! Owns the decision of what reaches the actuators. Must never allocate,
//! lock or block on the per-tick path, and must never depend on libtorch or
//! ROS: it runs on the robot computer, at control rate, whatever else fails.
