//! `rrl launch` on one file: the simulated Panda (rendered cameras) and the
//! VLM reward node in one process; an rclpy peer sees the robot's joint
//! states, its camera frames and reward estimates carrying those frames'
//! stamps. The VLM is the emulated OpenAI-compatible endpoint.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

#[test]
fn one_launch_file_starts_the_simulated_robot_and_its_reward_node() {
    let python = common::venv_python();
    let emulator = common::VlmEmulator::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cell.ron");
    std::fs::write(
        &config,
        format!(
            r#"(
    name: "cell",
    namespace: "cell",
    robot: Sim((task: PandaPickCube)),
    cameras: [(name: "front", source: Sim("front"), width: 64, height: 64, fps: 5.0)],
    safety: (preset: Some(FrankaPanda)),
    reward: Vlm((endpoint: "{}", model: "emulated-vlm", task: "pick up the cube", cameras: ["front"], api_key_env: Some("RRL_TEST_VLM_KEY"), timeout_ms: 5000, max_concurrent: 1)),
)"#,
            emulator.url()
        ),
    )
    .unwrap();
    let domain = (20 + (std::process::id() + 71) % 80).to_string();
    let launched = Command::new(env!("CARGO_BIN_EXE_rrl"))
        .args(["launch", config.to_str().unwrap(), "--duration-s", "20"])
        .env("ROS_DOMAIN_ID", &domain)
        .env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        .env("RRL_TEST_VLM_KEY", "test-key")
        .env("RRL_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let peer = Command::new(&python)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/watch_rewards.py"))
        .arg("cell")
        .env("ROS_DOMAIN_ID", &domain)
        .env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        .output()
        .unwrap();
    let out = launched.wait_with_output().unwrap();
    drop(emulator);
    assert!(out.status.success(), "rrl launch failed");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["robot"]["ticks"].as_u64().unwrap() > 100, "{report}");
    assert!(report["reward"]["scored"].as_u64().unwrap() >= 3, "{report}");
    let seen: serde_json::Value = serde_json::from_slice(&peer.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&peer.stderr)));
    assert!(seen["joint_states"].as_u64().unwrap() > 50, "{seen}");
    assert!(seen["images"].as_u64().unwrap() >= 3, "{seen}");
    assert!(seen["estimates"].as_u64().unwrap() >= 3, "{seen}");
    assert!(seen["estimates_of_seen_frames"].as_u64().unwrap() >= 2, "estimates carry the stamps of the camera's frames: {seen}");

    // --only names what the file has.
    let refused = Command::new(env!("CARGO_BIN_EXE_rrl")).args(["launch", config.to_str().unwrap(), "--only", "learner"]).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("robot, reward"));
}
