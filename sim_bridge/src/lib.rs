//! MuJoCo simulations of robots and benchmark tasks, driven the way real
//! ones are: the Panda behind the same hardware interface as real arms,
//! the car twin by a twist. `ros_edge` serves them as ROS 2 nodes; this
//! crate never speaks ROS.
//!
//! Owns physics, simulated sensors and cameras, task rewards and scripted
//! experts, and the gate's bookkeeping as a simulated task ticks it
//! (`gated`). Model files come from installed Python packages (gymnasium,
//! gym-hil) at run time and are never copied into the repository; the car
//! twin's model is written here from the launch file's course (`car`). Must never
//! let a bad input reach MuJoCo's C code unchecked (wrong action sizes, NaN),
//! and never depend on learning code.

pub mod arm;
pub mod assets;
pub mod bench;
pub mod camera;
pub mod car;
pub mod env;
pub mod gated;
pub mod gym;
pub mod osc;
pub mod panda;
pub mod scene_cameras;

pub use assets::{load_model, AssetPackage, SimError};
pub use env::BatchedEnv;
pub use rrl_types::{Environment, Step};
pub use gym::{GymEnv, GymTask};

/// The MuJoCo library version this binary runs with, e.g. "3.17.0".
pub fn mujoco_version() -> String {
    // SAFETY: mj_versionString returns a pointer to a static NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(mujoco_rs::mujoco_c::mj_versionString()) }.to_string_lossy().into_owned()
}
