//! `rrl reward-node` between an rclpy camera/task peer and an emulated
//! OpenAI-compatible VLM endpoint: stamped estimates come back for the
//! frames published, progress rises as the scene does, done at the end;
//! the task set as the node's ROS parameter takes effect.

mod common;

use std::process::Stdio;

#[test]
fn the_reward_node_scores_camera_frames_and_keeps_their_stamps() {
    let emulator = common::VlmEmulator::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("reward.ron");
    std::fs::write(
        &config,
        format!(
            r#"(
    name: "reward_test",
    namespace: "cell",
    robot: Sim((task: PandaReach)),
    safety: (),
    cameras: [(name: "front", source: Topic("front/image_raw"), width: 16, height: 12)],
    reward: Vlm((endpoint: "{}", model: "emulated-vlm", task: "make the scene red", cameras: ["front"], api_key_env: Some("RRL_TEST_VLM_KEY"), timeout_ms: 5000, max_concurrent: 2)),
)"#,
            emulator.url()
        ),
    )
    .unwrap();
    let domain = (20 + (std::process::id() + 29) % 80).to_string();
    let node = common::rrl_command(&["reward-node", "--config", config.to_str().unwrap(), "--duration-s", "15"], &domain).stdout(Stdio::piped()).spawn().unwrap();
    let peer = common::ros_peer("reward_peer.py", &["cell"], &domain).output().unwrap();
    let node_out = node.wait_with_output().unwrap();
    drop(emulator);
    assert!(peer.status.success(), "{}", String::from_utf8_lossy(&peer.stderr));
    let report: serde_json::Value = serde_json::from_slice(&peer.stdout).unwrap();
    let estimates = report["estimates"].as_array().unwrap();
    assert!(estimates.len() >= 3, "{report}");
    let sent: Vec<i64> = report["sent"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    for e in estimates {
        assert!(sent.contains(&e["sec"].as_i64().unwrap()) && e["nanosec"] == 5000, "estimate stamped with a frame's stamp: {e}");
    }
    let progress: Vec<f64> = estimates.iter().map(|e| e["progress"].as_f64().unwrap()).collect();
    assert!(progress.windows(2).all(|w| w[1] >= w[0]), "{progress:?}");
    // Ten steps each closing 11 % of the remaining gap: 1 - 0.89^9 of the way.
    assert!(*progress.last().unwrap() > 60.0, "{progress:?}");
    assert_eq!(estimates.last().unwrap()["sec"], 109, "the newest frame is always scored");
    assert_eq!(estimates.last().unwrap()["done"], 1.0);
    let counters: serde_json::Value = serde_json::from_slice(&node_out.stdout).unwrap();
    assert_eq!(counters["failed"], 0, "{counters}");
    assert_eq!(counters["offered"], 10, "{counters}");
    assert_eq!((report["task_parameter_set"].as_bool(), report["task_after_set"].as_str()), (Some(true), Some("stack the cube")), "{report}");
    assert_eq!(counters["task"], "stack the cube", "{counters}");
}
