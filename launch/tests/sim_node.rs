//! `rrl sim` as a user runs it: the simulated Panda as a ROS 2 node, driven
//! by an independent rclpy node over DDS on loopback (private domain).

use std::path::PathBuf;
use std::process::Command;

#[test]
fn an_rclpy_node_drives_the_simulated_panda_through_the_gate() {
    let domain = 20 + std::process::id() % 80;
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("files/sim_panda_pick.ron");
    let mut sim = Command::new(env!("CARGO_BIN_EXE_rrl"))
        .args(["sim", "--config", config.to_str().unwrap(), "--duration-s", "30"])
        .env("ROS_DOMAIN_ID", domain.to_string())
        .env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        .env("RRL_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start rrl sim");
    let python = std::env::var_os("VIRTUAL_ENV").map(|v| PathBuf::from(v).join("bin/python")).unwrap_or_else(|| "python3".into());
    let driver = Command::new(python)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/drive_sim.py"))
        .arg("panda")
        .env("ROS_DOMAIN_ID", domain.to_string())
        .env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        .output()
        .expect("run the rclpy driver");
    let _ = sim.kill();
    let _ = sim.wait();
    let report = String::from_utf8_lossy(&driver.stdout);
    assert!(driver.status.success(), "rclpy driver: {report}\n{}", String::from_utf8_lossy(&driver.stderr));
    assert!(report.contains("\"ok\": true"), "{report}");
}
