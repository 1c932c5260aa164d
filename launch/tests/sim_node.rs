//! `rrl sim` as a user runs it: the simulated Panda as a ROS 2 node, driven
//! by an independent rclpy node over DDS on loopback (private domain).

mod common;

use std::path::PathBuf;
use std::process::Command;

/// Fault matrix: NaN action | an rclpy node publishes a joint command with a NaN to `rrl sim` | the gate holds and says NonFiniteCommand | the arm drifts < 0.01 rad; NonFiniteCommand on `safety/verdicts`
#[test]
fn an_rclpy_node_drives_the_simulated_panda_through_the_gate() {
    let domain = 20 + std::process::id() % 80;
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("files/sim_panda_pick.ron");
    let mut sim = Command::new(env!("CARGO_BIN_EXE_rrl"))
        .args(["sim", "--config", config.to_str().unwrap(), "--duration-s", "120"])
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
    let (pair, servos) = emulated_servos();
    let dir = tempfile::tempdir().unwrap();
    write_so101_launch(dir.path(), pair.a());
    (pair, servos, dir)
}

/// A six-servo Feetech chain emulated at the far end of a new pseudo-terminal pair.
fn emulated_servos() -> (robot_drivers::pty::PtyPair, robot_drivers::feetech::emulator::FeetechEmulator) {
    let pair = robot_drivers::pty::PtyPair::spawn().unwrap();
    let servos = robot_drivers::feetech::emulator::FeetechEmulator::spawn(pair.b(), 1_000_000, &[1, 2, 3, 4, 5, 6]).unwrap();
    (pair, servos)
}

/// `dir/so101.ron`: the example SO-101 launch file on serial `port`.
fn write_so101_launch(dir: &std::path::Path, port: &str) {
    let example = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("files/so101_serial.ron")).unwrap();
    let pattern = common::write_colour_sequence(dir);
    let sequence = format!("ImageSequence(\"{pattern}\")");
    let launch = example.replace("/dev/ttyACM0", port).replace("Device(0)", &sequence).replace("Device(2)", &sequence);
    std::fs::write(dir.join("so101.ron"), launch).unwrap();
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

/// A serial arm unplugged mid-run, as a USB adapter pulled out: the wire
/// goes (the pseudo-terminal's far end closes, so the driver's reads fail
/// with EPIPE or EIO) and so does the device path (reopening fails with ENOENT).
/// `rrl driver` holds the arm (its verdicts say "held (Disconnected)"),
/// stays up, reconnects once an arm is back on the same path, and that arm
/// then tracks a new command from an rclpy node. SIGTERM ends the driver
/// with its report.
/// Fault matrix: serial unplugged | the pseudo-terminal's far end closed (EPIPE/EIO) and the device path removed (ENOENT), then an arm back on that path | `rrl driver` holds (`held (Disconnected)`), stays up, retries every 500 ms, reconnects | both errors logged; held verdicts seen; after the reconnect the arm tracks a new rclpy command; reconnects counted in the report
#[test]
fn rrl_driver_holds_an_unplugged_arm_and_tracks_commands_once_it_is_back() {
    use std::io::{BufRead, Write};
    let domain = (20 + (std::process::id() + 47) % 80).to_string();
    let dir = tempfile::tempdir().unwrap();
    // The path the launch file names, as udev's /dev/serial/by-id link would be.
    let port = dir.path().join("ttyACM_so101");
    let plug = || {
        let wire = emulated_servos();
        std::os::unix::fs::symlink(wire.0.a(), &port).unwrap();
        wire
    };
    let wire = plug();
    write_so101_launch(dir.path(), port.to_str().unwrap());
    let config = dir.path().join("so101.ron");
    let mut driver = common::Running::spawn(
        Command::new(env!("CARGO_BIN_EXE_rrl"))
            .args(["driver", "--config", config.to_str().unwrap()])
            .env("ROS_DOMAIN_ID", &domain)
            .env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
            // The failed reconnects are debug lines: the test waits on them.
            .env("RRL_LOG", "warn,ros_edge=debug")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    );
    let mut log = common::LogLines::of(driver.child().stderr.take().unwrap());
    let minute = std::time::Duration::from_secs(60);
    let mut peer = common::Running::spawn(
        Command::new(common::venv_python())
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/unplug_peer.py"))
            .arg("so101")
            .env("ROS_DOMAIN_ID", &domain)
            .env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped()),
    );
    let mut peer_says = std::io::BufReader::new(peer.child().stdout.take().unwrap()).lines();
    assert_eq!(peer_says.next().expect("the peer ended").unwrap(), "ready", "the peer saw the arm's joint states");

    // The device path goes first, so every reconnect the driver tries meets ENOENT;
    // then socat and the emulator go: the driver's next write or read fails.
    std::fs::remove_file(&port).unwrap();
    drop(wire);
    // The kernel's word for a pseudo-terminal whose far end closed: EPIPE on
    // write, EIO on read. (A loaded machine may have logged a late answer's
    // hold and reconnect before: those lines are passed over.)
    log.wait_for("the lost arm's EPIPE or EIO", minute, |l| l.contains("the robot is held, reconnecting") && (l.contains("Broken pipe") || l.contains("Input/output error")));
    log.wait_for("a reconnect failing on ENOENT", minute, |l| l.contains("reconnect failed") && l.contains("No such file or directory"));

    let _wire = plug(); // an arm on the same path again
    log.wait_for("the reconnect", minute, |l| l.contains("robot reconnected"));
    writeln!(peer.child().stdin.as_mut().unwrap(), "replugged").unwrap();
    let result: serde_json::Value = serde_json::from_str(&peer_says.next().expect("the peer's result").unwrap()).unwrap();
    drop(peer);
    assert_eq!(result["ok"], true, "the arm back on the wire tracks a new command: {result}");
    assert!(result["held_disconnected"].as_u64().unwrap() > 0, "the node said it held the arm while it was gone: {result}");

    // SAFETY: a signal to a child this test started and still owns.
    unsafe { libc::kill(driver.child().id() as i32, libc::SIGTERM) };
    let out = driver.wait_with_output_within(minute);
    assert!(out.status.success(), "rrl driver must stay up and stop cleanly on SIGTERM ({:?}); it said:\n{}", out.status, log.all());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["hardware_errors"].as_u64().unwrap() > 0, "{report}");
    // One reconnect for the replug; a loaded machine may add a bus timeout's.
    assert!(report["reconnects"].as_u64().unwrap() >= 1, "{report}");
}

/// Ctrl-C stops `rrl sim` (the simulated Panda on the wall clock) as a
/// user expects of a ROS 2 node: the first SIGINT ends it cleanly with its
/// report, however long it was asked to run.
#[test]
fn sigint_stops_rrl_sim_cleanly_with_its_report() {
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("files/sim_panda_pick.ron");
    let mut sim = common::Running::spawn(
        Command::new(env!("CARGO_BIN_EXE_rrl"))
            .args(["sim", "--config", config.to_str().unwrap(), "--duration-s", "600"])
            .env("ROS_DOMAIN_ID", (20 + (std::process::id() + 44) % 80).to_string())
            .env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
            .env("RRL_LOG", "info")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    );
    let mut log = common::LogLines::of(sim.child().stderr.take().unwrap());
    log.wait_for("`robot node up`", std::time::Duration::from_secs(120), |l| l.contains("robot node up"));
    // SAFETY: a signal to a child this test started and still owns.
    unsafe { libc::kill(sim.child().id() as i32, libc::SIGINT) };
    let out = sim.wait_with_output_within(std::time::Duration::from_secs(60));
    assert!(out.status.success(), "rrl sim did not stop cleanly on SIGINT: {:?}", out.status);
    // Its report (the signal may land before the first tick: the node is up first).
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["ticks"].is_u64() && report["robot_seconds"].is_f64(), "{report}");
}
