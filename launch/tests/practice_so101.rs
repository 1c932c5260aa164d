//! The shipped SO-101 launch file's pick task on its emulated Feetech bus
//! (the device emulator at the far end of a pseudo-terminal): practice
//! steps through the gate with tool actions on the SO-101's kinematics,
//! the gripper servo driven by the task, the VLM reward from the emulated
//! endpoint on replayed camera frames, and each reset — let go, lift, home,
//! then the human reset window, answered by an rclpy peer.

mod common;

use std::path::PathBuf;

/// One of these tests at a time: each emulated bus answers from a thread
/// of this process, and three practices beside three emulators starve
/// them past the bus's patience on two cores (servo reads time out).
static ONE_BUS_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_bus_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    // A failed test (a poisoned lock) does not fail the others.
    ONE_BUS_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The shipped SO-101 file, pointed at the emulated bus on `port`, replayed
/// frames in `dir` and the emulated VLM endpoint, in `namespace`, with a
/// short practice; returns its path.
fn so101_config(dir: &std::path::Path, port: &str, vlm: &common::VlmEmulator, namespace: &str) -> PathBuf {
    let shipped = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("files/so101_serial.ron")).unwrap();
    let sequence = format!("ImageSequence(\"{}\")", common::write_colour_sequence(dir));
    let so101 = shipped
        .replace("/dev/ttyACM0", port)
        // The emulated bus answers from a thread of this loaded test process:
        // more patience than a real bus needs.
        .replace("read_timeout_ms: 10,", "read_timeout_ms: 100,")
        .replace("namespace: \"so101\"", &format!("namespace: \"{namespace}\""))
        .replace("Device(0)", &sequence)
        .replace("Device(2)", &sequence)
        .replace("http://127.0.0.1:8000/v1/chat/completions", &vlm.url())
        // The emulated endpoint wants its model's name and the test's key.
        .replace("model: \"vlac\"", "model: \"emulated-vlm\"")
        .replace("timeout_ms: 3000,", "timeout_ms: 3000, api_key_env: Some(\"RRL_TEST_VLM_KEY\"),")
        .replace("practice: (policy_rate_hz: 10.0, max_episode_steps: 150, demo_episodes: 0)", "practice: (policy_rate_hz: 10.0, max_episode_steps: 10, demo_episodes: 0, total_steps: 30, eval_episodes: 1)");
    assert!(so101.contains("total_steps: 30") && so101.contains("read_timeout_ms: 100") && so101.contains("RRL_TEST_VLM_KEY") && so101.contains("emulated-vlm") && so101.contains(namespace), "the shipped file's practice or reward section changed");
    let config = dir.join("so101.ron");
    std::fs::write(&config, so101).unwrap();
    config
}

#[test]
fn the_shipped_so101_pick_task_practises_on_its_emulated_bus_and_resets_through_its_window() {
    let _bus = one_bus_at_a_time();
    let domain = (20 + (std::process::id() + 67) % 80).to_string();
    let dir = tempfile::tempdir().unwrap();
    let pair = robot_drivers::pty::PtyPair::spawn().unwrap();
    let _servos = robot_drivers::feetech::emulator::FeetechEmulator::spawn(pair.b(), 1_000_000, &[1, 2, 3, 4, 5, 6]).unwrap();
    let vlm = common::VlmEmulator::start();
    let config = so101_config(dir.path(), pair.a(), &vlm, "so101");
    let run_dir = dir.path().join("run");

    let mut human = common::ros_peer("pick_human.py", &["/so101", "600"], &domain).stdout(std::process::Stdio::piped()).spawn().expect("start the human's stand-in");
    let output = common::rrl_command(&["practice", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap()], &domain).output().unwrap();
    let _ = human.kill();
    let said = String::from_utf8_lossy(&human.wait_with_output().unwrap().stdout).to_string();
    assert!(output.status.success(), "rrl practice failed: {}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&output.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(report["task"], "ArmTask");
    assert!(report["total_steps"].as_u64().unwrap() >= 30, "{report}");

    let episodes: Vec<_> = recording::list_episodes(&run_dir.join("episodes")).unwrap().iter().map(|p| recording::read_episode(p).unwrap()).collect();
    assert!(episodes.len() >= 3, "{} practice episodes", episodes.len());
    // Observation: five arm joints, the jaw tips' point, the gripper's closure.
    let (tool, gripper) = (5, 8);
    for episode in &episodes {
        assert_eq!((episode.header.observation_size, episode.header.action_size), (9, 4));
        let first = &episode.steps[0].observation;
        // The reset let go: the gripper servo went to its open position
        // (it stands nearly closed, at 0.07 rad, when the bus powers up).
        assert!(first[gripper] < 0.1, "the gripper's closure at the episode's start is {}", first[gripper]);
        // The tool point is the SO-101's, inside the shipped box.
        assert!((-0.42..-0.08).contains(&first[tool + 1]) && (0.01..0.3).contains(&first[tool + 2]), "tool at {:?}", &first[tool..tool + 3]);
    }
    // The critic's `done` (its completion answer for a red frame) ends an
    // episode as a success, its last step terminal; the rest run out of time
    // (but the last, which the step budget cuts).
    let (done, timed_out): (Vec<_>, Vec<_>) = episodes.iter().filter(|e| e.outcome.as_ref().is_some_and(|o| o.reason != "budget")).partition(|e| e.outcome.as_ref().unwrap().success == Some(true));
    assert!(!done.is_empty(), "no episode ended on the critic's done: {:?}", episodes.iter().map(|e| (e.steps.len(), e.outcome.as_ref().map(|o| o.reason.clone()))).collect::<Vec<_>>());
    assert!(done.iter().all(|e| e.steps.last().unwrap().flags.terminated && e.outcome.as_ref().unwrap().reason == "success"));
    assert!(timed_out.iter().all(|e| e.steps.len() == 10 && !e.steps.last().unwrap().flags.terminated), "an episode ended early without the critic's done: {:?}", timed_out.iter().map(|e| (e.steps.len(), &e.outcome)).collect::<Vec<_>>());
    let moved = episodes.iter().flat_map(|e| &e.steps).any(|s| (0..5).any(|j| (s.next_observation[j] - s.observation[j]).abs() > 0.005));
    assert!(moved, "practice steps moved no joint of the emulated arm");
    // The operator's live view over ROS 2 went through the episodes and said
    // when practice waited for the scene reset.
    let live: Vec<serde_json::Value> = said.lines().filter_map(|l| l.strip_prefix("live ")).map(|j| serde_json::from_str(j).unwrap()).collect();
    assert!(live.iter().any(|v| v["waiting_for"].as_str().is_some_and(|w| w.starts_with("the scene reset"))), "the live view never waited for the scene reset: {live:?}");
    assert!(live.iter().any(|v| v["step"].as_u64() > Some(0) && v["waiting_for"].is_null()), "the live view never showed a step being practised");
    let last = live.last().unwrap();
    assert!(last["episodes"].as_u64() >= Some(2) && last["successes"].as_u64() >= Some(1), "the live view's session totals: {last}");
    // Every episode (and the evaluation's) began after a reset window the human closed.
    let windows = said.lines().filter(|l| l.starts_with("reset done")).count();
    assert!(windows > episodes.len(), "{windows} reset windows closed for {} practice episodes and an evaluation:\n{said}", episodes.len());
}

/// The same arm under `rrl launch --run-dir`: its actor drives the
/// emulated bus itself (no robot node) and feeds a learner node of the
/// same process over ROS 2.
#[test]
fn the_so101_practises_under_rrl_launch_with_a_learner_node() {
    let _bus = one_bus_at_a_time();
    let domain = (20 + (std::process::id() + 67) % 80).to_string();
    let dir = tempfile::tempdir().unwrap();
    let pair = robot_drivers::pty::PtyPair::spawn().unwrap();
    let _servos = robot_drivers::feetech::emulator::FeetechEmulator::spawn(pair.b(), 1_000_000, &[1, 2, 3, 4, 5, 6]).unwrap();
    let vlm = common::VlmEmulator::start();
    // Its own namespace: the other test of this binary shares the domain.
    let config = so101_config(dir.path(), pair.a(), &vlm, "so101_fleet");
    let run_dir = dir.path().join("fleet");
    let mut human = common::ros_peer("pick_human.py", &["/so101_fleet", "600"], &domain).stdout(std::process::Stdio::null()).spawn().expect("start the human's stand-in");
    let output = common::rrl_command(&["launch", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap(), "--steps", "20", "--learner-idle-s", "2"], &domain).output().unwrap();
    let _ = human.kill();
    let _ = human.wait();
    assert!(output.status.success(), "rrl launch failed: {}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&output.stdout).lines().last().unwrap()).unwrap();
    assert!(report.get("robot").is_none(), "a real arm's actor drives it; no robot node starts: {report}");
    assert_eq!(report["actor"]["task"], "ArmTask", "{report}");
    assert!(report["actor"]["total_steps"].as_u64().unwrap() >= 20, "{report}");
    let episodes = recording::list_episodes(&run_dir.join("so101_pick").join("episodes")).unwrap();
    assert!(episodes.len() >= 2, "{} episodes", episodes.len());
    assert!(run_dir.join("learner").exists(), "the learner node's folder");
}

/// The shipped SO-101 file practising on a success classifier of its wrist
/// camera, the real-arm path: the policy sees the wrist camera's frames
/// (replayed red, green, blue at 32x32), and a classifier trained by
/// `rrl classifier train` on labelled frames in which red is the success
/// rewards the steps whose frames it calls red and ends their episodes.
/// A real arm has no truth to count its verdicts against.
#[test]
fn the_so101_practises_on_a_classifier_of_its_wrist_camera() {
    let _bus = one_bus_at_a_time();
    let domain = (20 + (std::process::id() + 67) % 80).to_string();
    let dir = tempfile::tempdir().unwrap();
    let pair = robot_drivers::pty::PtyPair::spawn().unwrap();
    let _servos = robot_drivers::feetech::emulator::FeetechEmulator::spawn(pair.b(), 1_000_000, &[1, 2, 3, 4, 5, 6]).unwrap();
    let vlm = common::VlmEmulator::start();
    // Labelled frames of the three colours, red the success.
    let labelled = dir.path().join("labelled");
    common::colour_run(&labelled, 32);
    let model = dir.path().join("red.safetensors");
    let trained = common::rrl_command(&["classifier", "train", labelled.to_str().unwrap(), "--out", model.to_str().unwrap(), "--steps", "150", "--min-per-class", "5"], &domain).output().unwrap();
    assert!(trained.status.success(), "{}", String::from_utf8_lossy(&trained.stderr));
    let shipped = std::fs::read_to_string(so101_config(dir.path(), pair.a(), &vlm, "so101_classifier")).unwrap();
    let (start, end) = (shipped.find("    reward: Vlm((").unwrap(), shipped.find("    // The pick:").unwrap());
    let so101 = format!("{}    reward: Classifier((model: \"{}\")),\n{}", &shipped[..start], model.display(), &shipped[end..])
        .replace("observe: [Joints, Tool, Gripper]", "observe: [Joints, Tool, Gripper, Camera(\"wrist\")]")
        .replace("learner: (critics: 10, critic_layer_norm: true, utd: 4)", "learner: (critics: 2, hidden: [32, 32], batch_size: 32, utd: 1, pixels: (features: 16, filters: 8))");
    let so101 = so101.replacen("width: 128, height: 128", "width: 32, height: 32", 2);
    assert!(so101.contains("Camera(\"wrist\")") && so101.contains("Classifier((") && so101.contains("pixels:"), "the shipped file changed: {so101}");
    let config = dir.path().join("so101_classifier.ron");
    std::fs::write(&config, so101).unwrap();
    let run_dir = dir.path().join("run");
    let mut human = common::ros_peer("pick_human.py", &["/so101_classifier", "600"], &domain).stdout(std::process::Stdio::null()).spawn().expect("start the human's stand-in");
    let output = common::rrl_command(&["practice", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap()], &domain).output().unwrap();
    let _ = human.kill();
    let _ = human.wait();
    assert!(output.status.success(), "rrl practice failed: {}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&output.stdout).lines().last().unwrap()).unwrap();
    let classifier = &report["learned_rewards"]["classifier"];
    assert!(classifier["scored"].as_u64().unwrap() >= 30, "{report}");
    assert!(classifier["against_truth"].is_null(), "a real arm has no truth to judge by: {report}");
    let scorer = policies::classifier::FrameClassifier::load(&model, None).unwrap();
    let mut verdicts = [0, 0];
    for path in recording::list_episodes(&run_dir.join("episodes")).unwrap() {
        let episode = recording::read_episode(&path).unwrap();
        for (i, step) in episode.steps.iter().enumerate() {
            let rgb = recording::frames::decode(step.next_frames.as_ref().expect("the wrist camera's frames are recorded")).unwrap().1;
            let red = rgb.chunks(3).filter(|p| p[0] > 200 && p[1] < 50).count() * 2 > rgb.len() / 3;
            let success = scorer.scores(&rgb).unwrap()[0] >= scorer.threshold;
            assert_eq!(success, red, "{} step {i}: the classifier calls the red frames successes", path.display());
            assert_eq!((step.reward, step.flags.terminated), (f32::from(u8::from(success)), success), "{} step {i}", path.display());
            assert!(!success || i + 1 == episode.steps.len(), "{} step {i}: a success ends the episode", path.display());
            let outcome = episode.outcome.as_ref().unwrap();
            if success {
                assert_eq!((outcome.success, outcome.reason.as_str()), (Some(true), "success"), "{}", path.display());
            }
            verdicts[usize::from(success)] += 1;
        }
    }
    assert!(verdicts[0] > 0 && verdicts[1] > 0, "both verdicts occur (other colours, red): {verdicts:?}");
}
