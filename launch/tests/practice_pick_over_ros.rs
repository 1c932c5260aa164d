//! Pick-cube through the real-arm path: `rrl sim` serves the simulated
//! Panda as a ros2_control arm with a gripper controller and motion capture
//! would (joint states with the gripper, position commands, the gripper's
//! own command topic, the cube's PoseStamped), `rrl practice` runs the
//! shipped `sim_panda_pick_over_ros.ron` task section against it, and an
//! rclpy peer plays the human: it labels an episode a success when the cube
//! is lifted and answers each reset window by putting the cube back. All
//! in a private ROS domain on loopback.

mod common;

use std::path::PathBuf;
use std::process::Stdio;

fn files() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("files")
}

#[test]
fn the_pick_task_section_runs_over_ros_with_gripper_object_pose_human_labels_and_reset_windows() {
    let domain = (20 + (std::process::id() + 61) % 80).to_string();
    let dir = tempfile::tempdir().unwrap();
    // The shipped task, shortened: three scripted demos, a short practice
    // in warm-up, one evaluation episode, no behaviour-cloning base.
    let shipped = std::fs::read_to_string(files().join("sim_panda_pick_over_ros.ron")).unwrap();
    let short = shipped
        .replace("demo_episodes: 20,", "demo_episodes: 3,")
        .replace("demo_noise: [0.1, 0.1, 0.1, 0.0],", "demo_noise: [0.0, 0.0, 0.0, 0.0],")
        .replace("total_steps: 6000,", "total_steps: 40,")
        .replace("eval_episodes: 10,", "eval_episodes: 1,")
        .replace("max_episode_steps: 60,", "max_episode_steps: 40,");
    let base = "        base: BehaviourCloning((steps: 3000, horizon: 4, execute: 2, residual_scale: [0.5, 0.5, 0.5, 2.0])),\n";
    assert!(short.contains(base) && short.contains("total_steps: 40,") && short.contains("demo_episodes: 3,") && short.contains("demo_noise: [0.0, 0.0, 0.0, 0.0],"), "the shipped file's practice section changed");
    let short = short.replace(base, "");
    let config = dir.path().join("pick.ron");
    std::fs::write(&config, &short).unwrap();
    let run_dir = dir.path().join("run");

    let mut sim = common::rrl_command(&["sim", "--config", files().join("sim_panda_pick.ron").to_str().unwrap(), "--duration-s", "400"], &domain).stdout(Stdio::null()).spawn().expect("start rrl sim");
    let human = common::ros_peer("pick_human.py", &["/panda", "400"], &domain).stdout(Stdio::piped()).spawn().expect("start the human's stand-in");
    let output = common::rrl_command(&["practice", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap(), "--operator", "joy"], &domain).output().unwrap();
    let _ = sim.kill();
    let _ = sim.wait();
    let mut human = human;
    let _ = human.kill();
    let said = String::from_utf8_lossy(&human.wait_with_output().unwrap().stdout).to_string();
    assert!(output.status.success(), "rrl practice failed: {}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&output.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(report["task"], "ArmTask");

    // The scripted picker's demos: the gripper closed on the cube, the cube
    // rose, and the human's success label made the step it judged the
    // episode's one terminal step, with reward 1.
    let demos: Vec<_> = recording::list_episodes(&run_dir.join("demos")).unwrap().iter().map(|p| recording::read_episode(p).unwrap()).collect();
    assert_eq!(demos.len(), 3);
    let picked: Vec<_> = demos.iter().filter(|d| d.outcome.as_ref().and_then(|o| o.success) == Some(true)).collect();
    assert!(picked.len() >= 2, "the human labelled {} of 3 scripted picks a success; the human said:\n{said}", picked.len());
    // Observation: 7 joints, the tool (3), the gripper's closure, the cube's pose (7).
    let (tool, gripper, cube) = (7, 10, 11);
    for demo in &picked {
        let steps = &demo.steps;
        assert_eq!(steps[0].observation.len(), 18);
        let (first, last) = (&steps[0].observation, &steps.last().unwrap().next_observation);
        assert!(last[cube + 2] - first[cube + 2] > 0.04, "the cube rose from {} to {}", first[cube + 2], last[cube + 2]);
        assert!(last[gripper] > 0.2 && first[gripper] < 0.1, "the gripper went from {} (open) to {} (closed on the cube)", first[gripper], last[gripper]);
        // The tool held the cube: they are within a few centimetres.
        let apart = (0..3).map(|k| (last[tool + k] - last[cube + k]).powi(2)).sum::<f32>().sqrt();
        assert!(apart < 0.05, "tool and cube {apart} m apart at the end");
        let terminal: Vec<_> = steps.iter().filter(|s| s.flags.terminated).collect();
        assert_eq!(terminal.len(), 1, "exactly one terminal step");
        assert!(steps.last().unwrap().flags.terminated && steps.last().unwrap().reward == 1.0);
        assert!(steps[..steps.len() - 1].iter().all(|s| s.reward == 0.0));
    }
    // Every episode began after a reset window the human closed; the
    // cube was put back each time (on the table, inside the cube area).
    let episodes = recording::list_episodes(&run_dir.join("episodes")).unwrap().len();
    let windows = said.lines().filter(|l| l.starts_with("reset done")).count();
    assert!(windows >= demos.len() + episodes, "{windows} reset windows closed for {} demos and {episodes} practice episodes:\n{said}", demos.len());
    for demo in &demos {
        let start = &demo.steps[0].observation;
        assert!(start[cube + 2] < 0.03 && (0.34..0.56).contains(&start[cube]) && (-0.16..0.16).contains(&start[cube + 1]), "the cube starts at {:?}", &start[cube..cube + 3]);
    }
}
