//! End-to-end tests across crates and processes: ROS 2 nodes over DDS with
//! rclpy as an independent peer, serial devices over pseudo-terminals, the
//! simulated robot. Holds test support only, never product code.

use std::path::PathBuf;
use std::process::Command;

/// Gives this test process its own ROS 2 domain and keeps DDS on loopback.
/// Call before creating any ROS context. Returns the domain id.
pub fn isolate_ros_domain() -> u32 {
    // Domains 0..=101 are valid on Linux with Fast DDS' default ports; spread
    // processes over 20..=99 by pid so parallel test binaries do not meet.
    let domain = 20 + std::process::id() % 80;
    std::env::set_var("ROS_DOMAIN_ID", domain.to_string());
    std::env::set_var("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST");
    domain
}

/// The project venv's Python, which has rclpy and the vendors' SDKs.
pub fn venv_python() -> PathBuf {
    for var in ["RRL_VENV", "VIRTUAL_ENV"] {
        if let Some(venv) = std::env::var_os(var) {
            let python = PathBuf::from(venv).join("bin/python");
            if python.exists() {
                return python;
            }
        }
    }
    PathBuf::from("python3")
}

/// A Python script of this crate, run with the venv's interpreter and this
/// process' environment (ROS domain included).
pub fn python_script(name: &str) -> Command {
    let mut cmd = Command::new(venv_python());
    cmd.arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python").join(name));
    cmd
}
