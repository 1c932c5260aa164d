//! Learners and policies on libtorch (tch): SAC/RLPD, residual RL, behaviour
//! cloning, success classifiers on camera frames, encoders, replay and demo
//! buffers, checkpoints, and the devices they run on.
//!
//! Owns everything that needs libtorch. Must never be linked into the safety
//! gate or a driver (the robot computer may have no libtorch): what the gate
//! needs from a learner, such as risk-critic weights, leaves this crate in a
//! plain file format.

pub mod adam;
pub mod bench;
pub mod checkpoint;
pub mod classifier;
pub mod device;
pub mod nets;
pub mod pixels;
pub mod trunk;
pub mod practice;
pub mod replay;
pub mod residual;
pub mod risk;
pub mod sac;
pub mod train;

pub use device::{select_device, set_cpu_threads, CudaReport, PolicyError};
pub use sac::{Sac, SacConfig, Sample};
pub use train::{train, EvalPoint, TrainError, TrainEvent, TrainSettings};
