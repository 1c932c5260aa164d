//! `rrl sim` as a user runs it: the simulated Panda as a ROS 2 node, driven
//! by an independent rclpy node over DDS on loopback (private domain).

mod common;

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

/// The example SO-101 launch file (`<dir>/so101.ron`) pointed at an
/// emulated six-servo Feetech chain on a pseudo-terminal, its cameras
/// replaying an image sequence (there is no camera device here).
fn emulated_so101() -> (robot_drivers::pty::PtyPair, robot_drivers::feetech::emulator::FeetechEmulator, tempfile::TempDir) {
    let pair = robot_drivers::pty::PtyPair::spawn().unwrap();
    let servos = robot_drivers::feetech::emulator::FeetechEmulator::spawn(pair.b(), 1_000_000, &[1, 2, 3, 4, 5, 6]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("files/so101_serial.ron")).unwrap();
    let pattern = common::write_colour_sequence(dir.path());
    let sequence = format!("ImageSequence(\"{pattern}\")");
    let launch = example.replace("/dev/ttyACM0", pair.a()).replace("Device(0)", &sequence).replace("Device(2)", &sequence);
    std::fs::write(dir.path().join("so101.ron"), launch).unwrap();
    (pair, servos, dir)
}

/// `rrl driver` on an SO-101 class arm: the Feetech device emulator is the
/// far end of a pseudo-terminal, and an rclpy node drives the arm over ROS 2.
#[test]
fn an_rclpy_node_drives_an_emulated_so101_through_rrl_driver() {
    let domain = 20 + (std::process::id() + 40) % 80;
    let (_pair, _servos, dir) = emulated_so101();
    let config = dir.path().join("so101.ron");
    let mut driver = Command::new(env!("CARGO_BIN_EXE_rrl"))
        .args(["driver", "--config", config.to_str().unwrap(), "--duration-s", "25"])
        .env("ROS_DOMAIN_ID", domain.to_string())
        .env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        .env("RRL_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start rrl driver");
    let python = std::env::var_os("VIRTUAL_ENV").map(|v| PathBuf::from(v).join("bin/python")).unwrap_or_else(|| "python3".into());
    let peer = Command::new(python)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/drive_arm.py"))
        .arg("so101")
        .env("ROS_DOMAIN_ID", domain.to_string())
        .env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        .output()
        .expect("run the rclpy peer");
    let _ = driver.kill();
    let _ = driver.wait();
    let report = String::from_utf8_lossy(&peer.stdout);
    assert!(peer.status.success(), "rclpy peer: {report}\n{}", String::from_utf8_lossy(&peer.stderr));
    assert!(report.contains("\"shoulder_pan\""), "{report}");
}

/// A serial arm that falls off the wire mid-run (the emulator stops
/// answering for two seconds): `rrl driver` holds it, stays up, and
/// reconnects when it answers again.
#[test]
fn rrl_driver_survives_an_unplugged_arm_and_reconnects() {
    let (_pair, servos, dir) = emulated_so101();
    let config = dir.path().join("so101.ron");
    let driver = Command::new(env!("CARGO_BIN_EXE_rrl"))
        .args(["driver", "--config", config.to_str().unwrap(), "--duration-s", "9"])
        .env("ROS_DOMAIN_ID", (20 + (std::process::id() + 47) % 80).to_string())
        .env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        .env("RRL_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start rrl driver");
    std::thread::sleep(std::time::Duration::from_secs(3));
    servos.faults().unplugged.store(true, std::sync::atomic::Ordering::Relaxed);
    std::thread::sleep(std::time::Duration::from_secs(2));
    servos.faults().unplugged.store(false, std::sync::atomic::Ordering::Relaxed);
    let out = driver.wait_with_output().unwrap();
    assert!(out.status.success(), "rrl driver must stay up: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["hardware_errors"].as_u64().unwrap() > 0, "{report}");
    assert!(report["reconnects"].as_u64().unwrap() >= 1, "{report}");
}
