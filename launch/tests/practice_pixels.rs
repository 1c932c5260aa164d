//! `rrl practice` from a camera as a user runs it: the simulated Panda's
//! reach seen by its front camera, a behaviour-cloning base cloned from the
//! pixel demos, residual practice, evaluation, and the MCAP export with the
//! camera's images; a launch file whose policy sees no camera refuses that
//! base by name.

use std::process::{Command, Output};

const LAUNCH: &str = r#"(
    name: "reach_from_pixels",
    namespace: "panda",
    robot: Sim((task: PandaReach, seed: 1, observe_cameras: ["front"])),
    cameras: [(name: "front", source: Sim("front"), width: 24, height: 24)],
    safety: (preset: Some(FrankaPanda)),
    learner: (device: Cpu, hidden: [32, 32], batch_size: 32, warmup_steps: 40, initial_temperature: 0.01, pixels: (features: 8, filters: 4)),
    practice: (max_episode_steps: 20, demo_episodes: 2, total_steps: 100000, eval_episodes: 1,
        base: BehaviourCloning((steps: 100, horizon: 2, execute: 1, residual_scale: 0.5))),
)"#;

fn rrl(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rrl"));
    cmd.args(args).env("RRL_LOG", "warn").env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST").env("ROS_DOMAIN_ID", (20 + (std::process::id() + 7) % 80).to_string());
    cmd
}

fn json_of(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "rrl failed: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[test]
fn pixel_practice_on_a_base_cloned_from_pixel_demos_then_eval_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("reach_pixels.ron");
    std::fs::write(&config, LAUNCH).unwrap();
    let run_dir = dir.path().join("run");
    let (config_arg, run_arg) = (config.to_str().unwrap(), run_dir.to_str().unwrap());
    let report = json_of(&rrl(&["practice", "--config", config_arg, "--run-dir", run_arg, "--steps", "80"]).output().unwrap());
    assert_eq!(report["total_steps"], 80);
    assert_eq!(report["base"]["trained"], true, "{}", report["base"]);
    assert_eq!(report["eval"]["episodes"], 1);
    assert!(report["learner_updates"].as_u64().unwrap() > 0);

    // Every recorded observation has its frame: demos, practice and evaluation.
    let layout = rrl_types::FrameLayout { cameras: 1, height: 24, width: 24 };
    for folder in ["base/demos", "episodes", "eval/episodes"] {
        let episodes = recording::list_episodes(&run_dir.join(folder)).unwrap();
        assert!(!episodes.is_empty(), "{folder}: no episodes");
        for path in episodes {
            let episode = recording::read_episode(&path).unwrap();
            let first = episode.reset_frames.as_deref().unwrap_or_else(|| panic!("{}: no first frames", path.display()));
            assert_eq!(recording::frames::layout(first).unwrap(), layout);
            assert!(episode.steps.iter().filter(|s| !s.flags.recovery).all(|s| s.next_frames.is_some()), "{}: a step without frames", path.display());
        }
    }

    let mcap = dir.path().join("run.mcap");
    let exported = json_of(&rrl(&["export-mcap", run_arg, "--out", mcap.to_str().unwrap()]).output().unwrap());
    let images = &exported["topics"]["/rrl/camera_0/image/compressed"];
    assert_eq!(images["type"], "sensor_msgs/msg/CompressedImage");
    assert_eq!(images["messages"], exported["topics"]["/rrl/observation"]["messages"], "one image beside each observation");

    // The simulated robot as a lockstep task node and the learner as a node, both over ROS 2:
    // the task states carry the frames, the learner link streams them.
    let node_run = dir.path().join("node_run");
    let over_ros = json_of(&rrl(&["practice", "--config", config_arg, "--run-dir", node_run.to_str().unwrap(), "--robot", "node", "--learner", "node", "--steps", "30", "--eval-episodes", "0"]).output().unwrap());
    assert_eq!(over_ros["total_steps"], 30);
    assert_eq!(over_ros["link"]["unconfirmed"], 0);
    assert!(!node_run.join(".learner_stream_actor1.bin").exists(), "the link's spill file goes when practice ends");
    for path in recording::list_episodes(&node_run.join("episodes")).unwrap() {
        let episode = recording::read_episode(&path).unwrap();
        assert_eq!(recording::frames::layout(episode.reset_frames.as_deref().unwrap()).unwrap(), layout, "{}", path.display());
    }

    // The same task without the camera cannot use a base cloned from it.
    let state_only = dir.path().join("reach_state.ron");
    std::fs::write(&state_only, LAUNCH.replace(r#", observe_cameras: ["front"]"#, "")).unwrap();
    let base = run_dir.join("base/bc.safetensors");
    let refused = rrl(&["practice", "--config", state_only.to_str().unwrap(), "--run-dir", dir.path().join("other").to_str().unwrap(), "--steps", "1", "--base", base.to_str().unwrap()]).output().unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("cloned from 1 camera(s) of 24x24") && stderr.contains("shows its policy no cameras"), "{stderr}");
}

/// The car twin practises from its front camera as well as its state: the
/// frames of every step are recorded with the episodes and the learner
/// trains a pixel encoder on them.
#[test]
fn the_car_twin_practises_from_its_front_camera() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("files/sim_car_course.ron")).unwrap();
    let pixels = shipped
        .replace("task: CarCourse,", "task: CarCourse,\n        observe_cameras: [\"front\"],")
        .replace("source: Sim(\"front\"), width: 128, height: 96, fps: 10.0", "source: Sim(\"front\"), width: 24, height: 24, fps: 10.0")
        .replace("hidden: [256, 256],", "hidden: [32, 32], pixels: (features: 8, filters: 4),")
        .replace("batch_size: 256,", "batch_size: 16,")
        .replace("warmup_steps: 500,", "warmup_steps: 30,")
        .replace("demo_episodes: 3,", "demo_episodes: 1,")
        .replace("eval_episodes: 10,", "eval_episodes: 1,");
    for wanted in ["observe_cameras: [\"front\"]", "width: 24, height: 24", "pixels: (features: 8", "batch_size: 16,", "warmup_steps: 30,", "demo_episodes: 1,", "eval_episodes: 1,"] {
        assert!(pixels.contains(wanted), "the shipped file changed: `{wanted}` not set");
    }
    let config = dir.path().join("car_pixels.ron");
    std::fs::write(&config, pixels).unwrap();
    let run_dir = dir.path().join("run");
    let report = json_of(&rrl(&["practice", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap(), "--steps", "60"]).output().unwrap());
    assert_eq!((report["task"].as_str(), report["total_steps"].as_u64()), (Some("CarCourse"), Some(60)), "{report}");
    assert!(report["learner_updates"].as_u64().unwrap() > 0, "{report}");
    let episodes: Vec<_> = recording::list_episodes(&run_dir.join("episodes")).unwrap().iter().map(|p| recording::read_episode(p).unwrap()).collect();
    let policy_steps: Vec<_> = episodes.iter().flat_map(|e| e.steps.iter().filter(|s| !s.flags.recovery)).collect();
    assert_eq!(policy_steps.len(), 60);
    for step in &policy_steps {
        let frames = step.next_frames.as_ref().expect("every policy step keeps its camera frames");
        let (layout, rgb) = recording::frames::decode(frames).unwrap();
        assert_eq!((layout.cameras, layout.width, layout.height, rgb.len()), (1, 24, 24, 24 * 24 * 3));
    }
}
