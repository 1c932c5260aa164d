//! `rrl launch` on one file: the simulated Panda (rendered cameras) and the
//! VLM reward node in one process; an rclpy peer sees the robot's joint
//! states, its camera frames and reward estimates carrying those frames'
//! stamps. The VLM is the emulated OpenAI-compatible endpoint.

mod common;

use std::process::{Command, Stdio};

#[test]
fn one_launch_file_starts_the_simulated_robot_and_its_reward_node() {
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
    let launched = common::rrl_command(&["launch", config.to_str().unwrap(), "--duration-s", "20"], &domain).stdout(Stdio::piped()).spawn().unwrap();
    let peer = common::ros_peer("watch_rewards.py", &["cell"], &domain).output().unwrap();
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

/// `rrl launch` with a run folder: two simulated robots, each in its own
/// namespace and each a lockstep task node its actor steps over ROS 2,
/// practise in one process and feed one learner through their shared
/// learner namespace; every item of both streams reaches it once.
/// Both practise a residual on a base cloned from their demos, so the
/// learner node must build the residual's network (task + base action)
/// for its weights to fit the actors.
#[test]
fn two_robots_practise_in_one_launch_and_feed_one_shared_learner() {
    let dir = tempfile::tempdir().unwrap();
    let mut configs = Vec::new();
    for robot in ["r1", "r2"] {
        let config = dir.path().join(format!("{robot}.ron"));
        std::fs::write(
            &config,
            format!(
                r#"(
    name: "reach_{robot}",
    namespace: "{robot}",
    robot: Sim((task: PandaReach, seed: 1)),
    safety: (preset: Some(FrankaPanda)),
    learner: (device: Cpu, hidden: [32, 32], critics: 2, batch_size: 32, utd: 1, warmup_steps: 50, initial_temperature: 0.01, publish_every_updates: 20, namespace: Some("fleet")),
    practice: (max_episode_steps: 20, demo_episodes: 1, total_steps: 100000, eval_episodes: 1, base: BehaviourCloning((steps: 50))),
)"#
            ),
        )
        .unwrap();
        configs.push(config);
    }
    let run_dir = dir.path().join("run");
    let out = Command::new(env!("CARGO_BIN_EXE_rrl"))
        .arg("launch")
        .args(configs.iter().map(|c| c.to_str().unwrap()))
        .args(["--run-dir", run_dir.to_str().unwrap(), "--steps", "60", "--learner-idle-s", "3"])
        .env("ROS_DOMAIN_ID", (20 + (std::process::id() + 83) % 80).to_string())
        .env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        .env("RRL_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "rrl launch failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let learner = &report["learner"];
    for (id, robot) in [("1", "reach_r1"), ("2", "reach_r2")] {
        let actor = &report[format!("{robot}/actor")];
        assert_eq!(actor["total_steps"], 60, "{report}");
        assert_eq!(actor["base"]["trained"], true, "{report}");
        assert_eq!(actor["link"]["unconfirmed"], 0, "{report}");
        // Each actor stepped its own robot's lockstep task node over ROS 2: every practice step and more (demos, evaluation).
        let robot_node = &report[format!("{robot}/robot")];
        assert!(robot_node["steps"].as_u64().unwrap() > 60, "{report}");
        assert_eq!(robot_node["refused"], 0, "{report}");
        assert_eq!(learner["actors"][id]["received"], actor["link"]["stream_items"], "actor {id}: {report}");
        // Resent items may arrive twice on the wire; the learner drops them (counted), never learns twice.
        assert_eq!(learner["actors"][id]["malformed"], 0, "{report}");
        assert!(!recording::list_episodes(&run_dir.join(robot).join("episodes")).unwrap().is_empty(), "{robot} recorded no episode");
    }
    assert!(learner["updates"].as_u64().unwrap() > 0, "{report}");
    assert!(run_dir.join("learner/learner.safetensors").exists());
}

/// The car twin under `rrl launch`: its lockstep task node, an actor
/// stepping it over ROS 2 and a learner node, from the shipped file.
#[test]
fn the_car_twin_practises_under_rrl_launch() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("files/sim_car_course.ron")).unwrap();
    let short = shipped.replace("demo_episodes: 3,", "demo_episodes: 1,").replace("eval_episodes: 10,", "eval_episodes: 1,").replace("warmup_steps: 500,", "warmup_steps: 50,").replace("batch_size: 256,", "batch_size: 32,");
    for wanted in ["demo_episodes: 1,", "eval_episodes: 1,", "warmup_steps: 50,", "batch_size: 32,"] {
        assert!(short.contains(wanted), "the shipped file changed: `{wanted}` not set");
    }
    let config = dir.path().join("car.ron");
    std::fs::write(&config, short).unwrap();
    let run_dir = dir.path().join("run");
    let out = Command::new(env!("CARGO_BIN_EXE_rrl"))
        .args(["launch", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap(), "--steps", "100", "--learner-idle-s", "3"])
        .env("ROS_DOMAIN_ID", (20 + (std::process::id() + 97) % 80).to_string())
        .env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        .env("RRL_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "rrl launch failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(report["actor"]["task"], "CarCourse", "{report}");
    assert_eq!(report["actor"]["total_steps"], 100, "{report}");
    assert_eq!(report["actor"]["link"]["unconfirmed"], 0, "{report}");
    // The twin's lockstep node stepped every practice step and more (the demo lap, the evaluation).
    assert_eq!(report["robot"]["task"], "CarCourse", "{report}");
    assert!(report["robot"]["steps"].as_u64().unwrap() > 100 && report["robot"]["refused"] == 0, "{report}");
    assert!(report["learner"]["updates"].as_u64().unwrap() > 0, "{report}");
    let demos = recording::list_episodes(&run_dir.join("sim_car_course/demos")).unwrap();
    let lap = recording::read_episode(&demos[0]).unwrap();
    assert_eq!(lap.outcome.and_then(|o| o.success), Some(true), "the scripted lap over ROS 2");
}
