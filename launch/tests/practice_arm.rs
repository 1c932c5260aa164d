//! `rrl practice` on a real arm's interface: a ros2_control arm over its
//! topics (the rclpy arm emulator of robot_drivers' tests, the far end of
//! the wire), kinematics from a URDF, the reach task in tool space, the
//! safety gate ticking on its own control thread, demos by the scripted
//! reacher, practice on the wall clock and a final evaluation; reset-free
//! (forward and backward episodes, no reset between them).

mod common;

use std::path::PathBuf;
use std::process::Command;

const ARM_URDF: &str = r#"<?xml version="1.0"?>
<robot name="emulated_two_link">
  <link name="base"/><link name="upper"/><link name="lower"/><link name="tool"/>
  <joint name="a" type="revolute">
    <parent link="base"/><child link="upper"/>
    <origin xyz="0 0 0.1"/>
    <axis xyz="0 0 1"/>
    <limit lower="-1.5" upper="1.5" velocity="2.0" effort="5"/>
  </joint>
  <joint name="b" type="revolute">
    <parent link="upper"/><child link="lower"/>
    <origin xyz="0.3 0 0"/>
    <axis xyz="0 0 1"/>
    <limit lower="-2.0" upper="2.0" velocity="2.0" effort="5"/>
  </joint>
  <joint name="tool_mount" type="fixed">
    <parent link="lower"/><child link="tool"/>
    <origin xyz="0.2 0 0"/>
  </joint>
</robot>"#;

const LAUNCH: &str = r#"(
    name: "emulated_arm_reach",
    robot: TopicArm((
        joint_names: ["a", "b"],
        state_topic: "/joint_states",
        command: ForwardPosition(topic: "/forward_position_controller/commands"),
        control_rate_hz: 100.0,
        state_timeout_ms: 300,
    )),
    safety: (
        command_timeout_ms: 300,
        state_timeout_ms: 300,
        urdf: Some((file: "arm.urdf", base_link: "base", tip_link: "tool")),
        workspace: Some((min: (-0.6, -0.6, 0.0), max: (0.6, 0.6, 0.3), max_step_m: 0.02, max_speed_mps: 0.5)),
    ),
    learner: (device: Cpu, hidden: [32, 32], critics: 2, batch_size: 32, utd: 1, warmup_steps: 20),
    reward: Task,
    practice: (policy_rate_hz: 10.0, max_episode_steps: 30, demo_episodes: 2, total_steps: 40, eval_episodes: 1, reset_noise_rad: 0.0, tool_step_m: 0.04, goal_tolerance_m: 0.03, home: Some([0.3, 0.8]), reset_free: true),
)"#;

/// The run's two recorded demo episodes, of which the scripted reacher
/// brought at least one to its goal.
fn two_demos_reaching_a_goal(run_dir: &std::path::Path) -> Vec<recording::Episode> {
    let demos: Vec<_> = recording::list_episodes(&run_dir.join("demos")).unwrap().iter().map(|p| recording::read_episode(p).unwrap()).collect();
    assert_eq!(demos.len(), 2);
    let reached = demos.iter().filter(|d| d.outcome.as_ref().and_then(|o| o.success) == Some(true)).count();
    assert!(reached >= 1, "the scripted reacher reached {reached} of 2 goals");
    demos
}

/// Runs `rrl practice` on `config` against the rclpy ros2_control arm
/// emulator on its own ROS domain; returns rrl's output.
fn practise_with_emulated_arm(config: &std::path::Path, run_dir: &std::path::Path, domain_offset: u32, emulator_flags: &[&str]) -> std::process::Output {
    rrl_with_emulated_arm(&["practice", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap()], domain_offset, emulator_flags)
}

/// Runs `rrl args` against the rclpy ros2_control arm emulator on its own
/// ROS domain; returns rrl's output.
fn rrl_with_emulated_arm(args: &[&str], domain_offset: u32, emulator_flags: &[&str]) -> std::process::Output {
    let domain = (20 + (std::process::id() + domain_offset) % 80).to_string();
    let emulator = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../robot_drivers/tests/python/ros2_control_arm.py");
    let mut arm = Command::new(common::venv_python()).arg(emulator).arg("120").args(emulator_flags).env("ROS_DOMAIN_ID", &domain).env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST").spawn().expect("start the emulated arm");
    let output = Command::new(env!("CARGO_BIN_EXE_rrl"))
        .args(args)
        .env("RRL_TEST_VLM_KEY", "test-key")
        .env("RRL_LOG", "warn")
        .env("ROS_DOMAIN_ID", &domain)
        .env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        .output()
        .unwrap();
    let _ = arm.kill();
    let _ = arm.wait();
    output
}

#[test]
fn practice_reaches_with_a_ros2_control_arm_through_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("arm.urdf"), ARM_URDF).unwrap();
    let config = dir.path().join("arm.ron");
    std::fs::write(&config, LAUNCH).unwrap();
    let run_dir = dir.path().join("run");
    let output = practise_with_emulated_arm(&config, &run_dir, 53, &[]);
    assert!(output.status.success(), "rrl practice failed: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(report["task"], "ArmReach");
    assert!(report["total_steps"].as_u64().unwrap() >= 40, "{report}");
    assert_eq!(report["eval"]["episodes"], 1);

    // The scripted reacher's demos moved the real (emulated) joints to their goals.
    let demos = two_demos_reaching_a_goal(&run_dir);
    for demo in &demos {
        let (first, last) = (&demo.steps[0].observation, &demo.steps.last().unwrap().next_observation);
        // Observation: joints a, b, tool x, y, z, goal x, y, z, goal - tool.
        assert_eq!(first.len(), 11);
        assert!((0..3).all(|k| (first[8 + k] - (first[5 + k] - first[2 + k])).abs() < 1e-5), "{first:?}");
        assert!((first[0] - last[0]).abs() + (first[1] - last[1]).abs() > 0.05, "the joints did not move: {first:?} -> {last:?}");
        // The planar arm's tool stays at the height of its base.
        assert!((last[4] - 0.1).abs() < 1e-4, "tool height {}", last[4]);
    }
    // Reset-free: every practice episode starts where the last one ended,
    // and every other goal is the home pose's tool point.
    let episodes: Vec<_> = recording::list_episodes(&run_dir.join("episodes")).unwrap().iter().map(|p| recording::read_episode(p).unwrap()).collect();
    assert!(episodes.len() >= 2, "{} practice episodes", episodes.len());
    let home_tool = [0.3 * 0.3f64.cos() + 0.2 * 1.1f64.cos(), 0.3 * 0.3f64.sin() + 0.2 * 1.1f64.sin(), 0.1];
    let at_home = |obs: &[f32]| (0..3).all(|k| (f64::from(obs[5 + k]) - home_tool[k]).abs() < 1e-4);
    let backward = episodes.iter().filter(|e| at_home(&e.steps[0].observation)).count();
    assert!(backward >= 1 && backward <= episodes.len().div_ceil(2) + 1, "{backward} of {} episodes aimed home", episodes.len());
    for pair in episodes.windows(2) {
        let (end, start) = (&pair[0].steps.last().unwrap().next_observation, &pair[1].steps[0].observation);
        let moved = (end[0] - start[0]).abs() + (end[1] - start[1]).abs();
        assert!(moved < 0.1, "the arm jumped {moved} rad between episodes: no reset should run");
    }
    for file in ["practice.csv", "learner.safetensors", "eval/eval.json"] {
        assert!(run_dir.join(file).exists(), "{file} missing");
    }

    // `rrl eval` on the arm, as after practice on a real one: the checkpoint drives the emulated joints.
    let out = dir.path().join("eval_again");
    let checkpoint = run_dir.join("learner.safetensors");
    let output = rrl_with_emulated_arm(&["eval", checkpoint.to_str().unwrap(), "--config", config.to_str().unwrap(), "--episodes", "2", "--out", out.to_str().unwrap()], 53, &[]);
    assert!(output.status.success(), "rrl eval failed: {}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&output.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(report["episodes"], 2, "{report}");
    assert_eq!(report["returns"].as_array().map(Vec::len), Some(2), "{report}");
    let evaluated: Vec<_> = recording::list_episodes(&out.join("episodes")).unwrap().iter().map(|p| recording::read_episode(p).unwrap()).collect();
    assert_eq!(evaluated.len(), 2);
    assert!(evaluated.iter().all(|e| e.header.task == "ArmReach" && e.steps[0].observation.len() == 11 && e.outcome.is_some()), "{:?}", evaluated.iter().map(|e| &e.header).collect::<Vec<_>>());
}

/// A real arm learning from a real camera's frames scored by a VLM: the
/// camera (an image sequence standing in for a device, grabbed on its own
/// thread) is offered after every step, the emulated endpoint's estimates
/// become the recorded rewards of the steps whose frames they scored. Mid-
/// practice the camera stalls (its files vanish for 2.5 s): practice pauses
/// with a clear message rather than score a stale view, and resumes when
/// frames come again.
/// Fault matrix: camera stalled | the reward camera's image files deleted for 2.5 s mid-practice | practice pauses rather than score a stale view; resumes when frames return | stall and resume said; every step's reward joined or counted missing
#[test]
fn practice_on_a_real_arm_learns_from_vlm_progress_on_its_camera() {
    let vlm = common::VlmEmulator::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("arm.urdf"), ARM_URDF).unwrap();
    let frames = dir.path().join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    let pattern = common::write_colour_sequence(&frames);
    let launch = LAUNCH
        .replace("reward: Task,", &format!(r#"cameras: [(name: "scene", source: ImageSequence("{pattern}"), width: 32, height: 24, fps: 30.0)],
    reward: Vlm((endpoint: "{}", model: "emulated-vlm", task: "reach the goal", cameras: ["scene"], api_key_env: Some("RRL_TEST_VLM_KEY"), timeout_ms: 4000, max_concurrent: 2)),"#, vlm.url()))
        .replace("reset_free: true", "reset_free: false");
    let config = dir.path().join("arm.ron");
    std::fs::write(&config, launch).unwrap();
    let run_dir = dir.path().join("run");
    let (watched, stalled_frames) = (run_dir.join("episodes"), frames.clone());
    let staller = std::thread::spawn(move || {
        // Once practice has begun (its first episode file exists), the camera's source goes away for a while.
        let begun = std::time::Instant::now();
        while std::fs::read_dir(&watched).map_or(true, |mut d| d.next().is_none()) && begun.elapsed().as_secs() < 60 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        for entry in std::fs::read_dir(&stalled_frames).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(2500));
        common::write_colour_sequence(&stalled_frames);
    });
    let output = practise_with_emulated_arm(&config, &run_dir, 61, &[]);
    staller.join().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let paused = stderr.find("reward camera has stalled").unwrap_or_else(|| panic!("no stall message: {stderr}"));
    assert!(stderr[paused..].contains("delivers frames again: practice resumes"), "{stderr}");
    assert!(output.status.success(), "rrl practice failed: {}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&output.stdout).lines().last().unwrap()).unwrap();
    let learned = &report["learned_rewards"];
    let (joined, missing) = (learned["joined"].as_u64().unwrap(), learned["missing"].as_u64().unwrap());
    assert_eq!(joined + missing, report["total_steps"].as_u64().unwrap(), "every online step is joined or counted missing: {report}");
    assert!(joined * 2 >= joined + missing, "most steps get their frame's estimate from a prompt model: {report}");
    assert!(learned["vlm"]["scored"].as_u64().unwrap() > 0, "{report}");
    // Env episodes 1 and 2 are the demos, then practice.
    let (matched, zero, varied) = common::check_learned_rewards(&run_dir, 3);
    assert_eq!((matched, zero), (joined, missing), "the recorded rewards are the joined ones");
    assert!(varied, "the camera's changing frames gave changing estimates");
}

/// A robot whose driver stops publishing mid-run (2 s of silence, from
/// 2 s after practice's first command): the gate holds the arm for the
/// stale state at control rate (its recorded verdicts say so, tick by
/// tick), practice pauses with a clear message instead of acting on a
/// stale state, resumes by itself when states return, and completes with
/// every step recorded.
/// Fault matrix: robot silent | the emulated ros2_control arm (rclpy) stops publishing joint states for 2 s | the gate holds for the stale state; practice pauses, then resumes | a run of >= 120 ticks held for StaleState in the recorded gate ticks; pause then resume said; every step recorded
#[test]
fn practice_pauses_while_the_arm_stops_publishing_and_resumes_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("arm.urdf"), ARM_URDF).unwrap();
    let config = dir.path().join("arm.ron");
    std::fs::write(&config, LAUNCH.replace("reset_free: true", "reset_free: false")).unwrap();
    let run_dir = dir.path().join("run");
    let output = practise_with_emulated_arm(&config, &run_dir, 67, &["--silent=2.0:2.0"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "rrl practice failed: {stderr}");
    let paused = stderr.find("practice is paused").unwrap_or_else(|| panic!("no pause message: {stderr}"));
    let resumed = stderr.find("practice resumes").unwrap_or_else(|| panic!("no resume message: {stderr}"));
    assert!(paused < resumed, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&output.stdout).lines().last().unwrap()).unwrap();
    let recorded: usize = recording::list_episodes(&run_dir.join("episodes")).unwrap().iter().map(|p| recording::read_episode(p).unwrap().steps.len()).sum();
    assert_eq!(recorded as u64, report["total_steps"].as_u64().unwrap(), "every practice step is recorded: {report}");
    assert!(recorded >= 40, "{report}");

    // The gate's own record: one long run of ticks held for the stale
    // state, 2 s of silence less the 300 ms the state may age, at 100 Hz.
    let ticks: Vec<rrl_types::GateTick> = ["demos", "episodes", "eval/episodes"]
        .iter()
        .flat_map(|folder| recording::list_episodes(&run_dir.join(folder)).unwrap())
        .flat_map(|p| recording::read_episode(&p).unwrap().gate_ticks)
        .collect();
    let stale: Vec<u64> = ticks.iter().filter(|t| t.verdict == rrl_types::TickVerdict::Held && t.detail == safety::HoldReason::StaleState as u16).map(|t| t.index).collect();
    assert!(stale.len() >= 120, "{} ticks held for a stale state; 2 s of silence at 100 Hz hold about 170", stale.len());
    let longest_run = stale.windows(2).fold((1, 1), |(best, run), w| if w[1] == w[0] + 1 { (best.max(run + 1), run + 1) } else { (best, 1) }).0;
    assert!(longest_run >= 120, "the hold lasted through the silence tick after tick: longest run {longest_run} of {}", stale.len());
    assert!(ticks.iter().filter(|t| t.verdict == rrl_types::TickVerdict::Held && t.detail == safety::HoldReason::StaleState as u16).all(|t| t.protective), "a stale-state hold protects the robot");
}

#[test]
fn practice_on_a_real_arm_without_a_workspace_box_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("arm.urdf"), ARM_URDF).unwrap();
    let config = dir.path().join("arm.ron");
    let without_box = LAUNCH.replace("workspace: Some((min: (-0.6, -0.6, 0.0), max: (0.6, 0.6, 0.3), max_step_m: 0.02, max_speed_mps: 0.5)),", "");
    assert_ne!(without_box, LAUNCH);
    std::fs::write(&config, without_box).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_rrl"))
        .args(["practice", "--config", config.to_str().unwrap(), "--run-dir", dir.path().join("run").to_str().unwrap()])
        .env("RRL_LOG", "warn")
        .env("ROS_DOMAIN_ID", (20 + (std::process::id() + 59) % 80).to_string())
        .env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("arm.ron") && err.contains("safety.workspace"), "{err}");
}

/// A task observing a topic nobody publishes stops at its first reset,
/// naming the topic (and how many of its messages were refused).
#[test]
fn a_task_observing_a_silent_topic_stops_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("arm.urdf"), ARM_URDF).unwrap();
    let config = dir.path().join("arm.ron");
    let silent = LAUNCH.replace("reset_free: true),", "reset_free: true, reset_timeout_s: 8.0),\n    task: (observe: [Joints, Tool, Goal, Pose(\"/mocap/cube\")]),");
    assert_ne!(silent, LAUNCH);
    std::fs::write(&config, silent).unwrap();
    let output = practise_with_emulated_arm(&config, &dir.path().join("run"), 73, &[]);
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("task observation: no message within 8.0 s on `/mocap/cube` (0 messages refused)"), "{err}");
}

/// The simulated Panda as a real arm: `rrl sim` (MuJoCo, its own gate,
/// `/panda/joint_states` out, `/panda/joint_commands` in) on one side of
/// DDS, and on the other `rrl practice` with the shipped
/// `sim_panda_over_ros.ron` — the real-arm code path (tool-space reach, IK,
/// the gate on its own control thread on the wall clock) and its learner as
/// a node over ROS 2. Shortened schedule, same file otherwise.
#[test]
fn practice_reaches_with_the_simulated_panda_over_its_ros2_topics() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let shipped = std::fs::read_to_string(repo.join("launch/files/sim_panda_over_ros.ron")).unwrap();
    let short = shipped
        .replace("demo_episodes: 5", "demo_episodes: 2")
        .replace("total_steps: 6000", "total_steps: 60")
        .replace("eval_episodes: 10", "eval_episodes: 1")
        .replace("hidden: [256, 256]", "hidden: [32, 32]")
        .replace("batch_size: 256", "batch_size: 32")
        .replace("warmup_steps: 300", "warmup_steps: 20");
    assert_ne!(short, shipped);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("over_ros.ron");
    std::fs::write(&config, short).unwrap();
    let run_dir = dir.path().join("run");

    let domain = (20 + (std::process::id() + 61) % 80).to_string();
    let ros = |cmd: &mut Command| {
        cmd.env("ROS_DOMAIN_ID", &domain).env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST").env("RRL_LOG", "warn");
    };
    let mut sim = Command::new(env!("CARGO_BIN_EXE_rrl"));
    sim.args(["sim", "--config", repo.join("launch/files/sim_panda_reach.ron").to_str().unwrap(), "--duration-s", "240"]).stdout(std::process::Stdio::null());
    ros(&mut sim);
    let mut sim = sim.spawn().expect("start rrl sim");
    let mut practice = Command::new(env!("CARGO_BIN_EXE_rrl"));
    practice.args(["practice", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap(), "--learner", "node"]);
    ros(&mut practice);
    let output = practice.output().unwrap();
    let _ = sim.kill();
    let _ = sim.wait();
    assert!(output.status.success(), "rrl practice failed: {}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&output.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(report["task"], "ArmReach");
    assert!(report["total_steps"].as_u64().unwrap() >= 60, "{report}");
    assert_eq!(report["eval"]["episodes"], 1);
    assert_eq!(report["link"]["unconfirmed"], 0, "{report}");
    assert!(report["learner_updates"].as_u64().unwrap() > 0, "{report}");

    // The scripted reacher moved the simulated Panda's joints to its goals over the topics.
    let demos = two_demos_reaching_a_goal(&run_dir);
    for demo in &demos {
        let (first, last) = (&demo.steps[0].observation, &demo.steps.last().unwrap().next_observation);
        // Observation: 7 joints, tool x, y, z, goal x, y, z, goal - tool.
        assert_eq!(first.len(), 16);
        let moved: f32 = (0..7).map(|j| (first[j] - last[j]).abs()).sum();
        assert!(moved > 0.05, "the Panda's joints did not move: {first:?} -> {last:?}");
        // The tool stays in the launch file's workspace box (2 cm for tracking overshoot).
        assert!((0.28..=0.72).contains(&last[7]) && (-0.32..=0.32).contains(&last[8]) && (0.08..=0.57).contains(&last[9]), "tool at {:?}", &last[7..10]);
    }
}

/// The learned risk critic a launch file configures is in the gate of the
/// real-arm path too (it was built without it before the one gate
/// builder): a critic that always fires holds the emulated arm, and every
/// recorded demo, practice and evaluation step carries its reflex.
#[test]
fn practice_on_a_ros2_control_arm_records_the_configured_critics_reflex() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("arm.urdf"), ARM_URDF).unwrap();
    // Two joints: positions, velocities and commands, 6 inputs.
    common::write_always_firing_critic(&dir.path().join("critic.safetensors"), 6);
    // Home is where the emulated arm stands, so a held arm still resets.
    let launch = LAUNCH
        .replace("        state_timeout_ms: 300,\n        urdf:", "        state_timeout_ms: 300,\n        risk_critic: Some((weights: \"critic.safetensors\", threshold: 0.5, reflex: Hold)),\n        urdf:")
        .replace("home: Some([0.3, 0.8]), reset_free: true", "home: Some([0.1, -0.2]), reset_free: false");
    assert!(launch.contains("risk_critic") && launch.contains("reset_free: false"));
    let config = dir.path().join("arm.ron");
    std::fs::write(&config, launch).unwrap();
    let run_dir = dir.path().join("run");
    let output = practise_with_emulated_arm(&config, &run_dir, 79, &[]);
    assert!(output.status.success(), "rrl practice failed: {}", String::from_utf8_lossy(&output.stderr));
    let (mut steps, mut reflexes) = (0, 0);
    for folder in ["demos", "episodes", "eval/episodes"] {
        for path in recording::list_episodes(&run_dir.join(folder)).unwrap() {
            for step in recording::read_episode(&path).unwrap().steps {
                steps += 1;
                reflexes += usize::from(step.flags.reflex && step.flags.safety_event);
                // Held: the joints stay where the arm stood.
                assert!((step.next_observation[0] - 0.1).abs() < 0.02 && (step.next_observation[1] + 0.2).abs() < 0.02, "the held arm moved: {:?}", step.next_observation);
            }
        }
    }
    assert!(steps >= 40, "{steps} recorded steps");
    assert_eq!(reflexes, steps, "every step of the held arm ran the critic's reflex");
}
