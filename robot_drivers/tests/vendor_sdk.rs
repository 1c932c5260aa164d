//! The device emulators are faithful to the real protocols: the
//! manufacturer's own Python SDK, as an independent client, talks to them.

use std::path::PathBuf;
use std::process::Command;

use robot_drivers::dynamixel_emulator::DynamixelEmulator;
use robot_drivers::pty::PtyPair;

fn python() -> PathBuf {
    std::env::var_os("VIRTUAL_ENV").map(|v| PathBuf::from(v).join("bin/python")).unwrap_or_else(|| "python3".into())
}

#[test]
fn robotis_dynamixel_sdk_drives_the_emulated_servos() {
    let pair = PtyPair::spawn().unwrap();
    let _emulator = DynamixelEmulator::spawn(pair.b(), 1_000_000, &[1, 2]).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/dynamixel_sdk_client.py");
    let out = Command::new(python()).arg(script).arg(pair.a()).output().expect("run the SDK client");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "SDK client: {report}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(report.contains("\"ok\": true"), "{report}");
}

#[test]
fn feetech_sdk_drives_the_emulated_sts3215_servos() {
    let pair = PtyPair::spawn().unwrap();
    let _emulator = robot_drivers::feetech::emulator::FeetechEmulator::spawn(pair.b(), 1_000_000, &[1, 2]).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/feetech_sdk_client.py");
    let out = Command::new(python()).arg(script).arg(pair.a()).output().expect("run the SDK client");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "SDK client: {report}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(report.contains("\"ok\": true"), "{report}");
}
