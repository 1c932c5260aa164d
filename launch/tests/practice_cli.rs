//! `rrl practice`, `rrl eval` and `rrl export-mcap` as a user runs them,
//! including a practice process killed with SIGKILL mid-run and resumed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const LAUNCH: &str = r#"(
    name: "sim_panda_reach",
    namespace: "panda",
    robot: Sim((task: PandaReach, seed: 1)),
    safety: (preset: Some(FrankaPanda)),
    learner: (device: Cpu, hidden: [64, 64], critics: 2, batch_size: 64, utd: 1, warmup_steps: 100, initial_temperature: 0.01),
    practice: (max_episode_steps: 40, demo_episodes: 2, total_steps: 100000, eval_episodes: 2),
)"#;

fn rrl(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rrl"));
    cmd.args(args).env("RRL_LOG", "warn").env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST").env("ROS_DOMAIN_ID", (20 + std::process::id() % 80).to_string());
    cmd
}

fn run(args: &[&str]) -> Output {
    rrl(args).output().expect("run rrl")
}

fn json_of(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "rrl failed: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn episode_files(run: &Path) -> Vec<PathBuf> {
    recording::list_episodes(&run.join("episodes")).unwrap()
}

/// Runs `rrl args` beside a Python ROS 2 peer script (namespace `panda`) on
/// a private domain; the rrl JSON report once both are done.
fn run_beside_peer(args: &[&str], script: &str, domain_offset: u32) -> serde_json::Value {
    run_beside_peer_in(args, script, domain_offset, "panda")
}

/// `run_beside_peer` for a robot in `namespace`.
fn run_beside_peer_in(args: &[&str], script: &str, domain_offset: u32, namespace: &str) -> serde_json::Value {
    let domain = (20 + (std::process::id() + domain_offset) % 80).to_string();
    let child = common::Running::spawn(rrl(args).env("ROS_DOMAIN_ID", &domain).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()));
    let python = std::env::var_os("VIRTUAL_ENV").map(|v| PathBuf::from(v).join("bin/python")).unwrap_or_else(|| "python3".into());
    let peer = Command::new(python)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python").join(script))
        .arg(namespace)
        .env("ROS_DOMAIN_ID", &domain)
        .env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        .output()
        .unwrap();
    if !peer.status.success() {
        // What rrl said tells why the peer saw nothing.
        let mut child = child;
        let _ = child.child().kill();
        let rrl = child.wait_with_output_within(Duration::from_secs(30));
        panic!("the peer failed on domain {domain}: {}{}\nrrl ({}): {}{}", String::from_utf8_lossy(&peer.stdout), String::from_utf8_lossy(&peer.stderr), rrl.status, String::from_utf8_lossy(&rrl.stdout), String::from_utf8_lossy(&rrl.stderr));
    }
    json_of(&child.wait_with_output_within(Duration::from_secs(300)))
}

/// The practice killed below steps this robot node (`rrl sim --lockstep`
/// in its own process), which counts the steps it served: the truth the
/// episodes on disk are held to.
/// Fault matrix: actor killed | `rrl practice` SIGKILLed mid-episode; its robot is an `rrl sim --lockstep` process | refuses to overwrite without `--resume`; resumes from disk | every step the robot served is on disk (but one in flight); resume, eval and export work
#[test]
fn practice_killed_mid_run_resumes_without_losing_episodes_then_eval_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("reach.ron");
    // A namespace of its own: other tests of this binary step `panda` nodes on the same domain.
    std::fs::write(&config, LAUNCH.replace("namespace: \"panda\"", "namespace: \"panda_killed\"")).unwrap();
    let run_dir = dir.path().join("run");
    let (config_arg, run_arg) = (config.to_str().unwrap(), run_dir.to_str().unwrap());

    let node = common::Running::spawn(rrl(&["sim", "--lockstep", "--config", config_arg]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null()));
    let mut child = common::Running::spawn(rrl(&["practice", "--config", config_arg, "--run-dir", run_arg, "--robot", "remote", "--robot-answer-s", "60"]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()));
    let started = Instant::now();
    while episode_files(&run_dir).len() < 6 {
        assert!(started.elapsed() < Duration::from_secs(240), "practice recorded no episodes");
        assert!(child.child().try_wait().unwrap().is_none(), "practice exited early");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.child().kill().unwrap(); // SIGKILL: no chance to clean up
    child.child().wait().unwrap();
    // SIGTERM stops the node with its report: the steps it served.
    let mut node = node;
    // SAFETY: a signal to a child this test started and still owns.
    unsafe { libc::kill(node.child().id() as i32, libc::SIGTERM) };
    let served = json_of(&node.wait_with_output_within(Duration::from_secs(60)));

    // Every file reads back; only the episode in flight may be unfinished.
    let episodes: Vec<_> = episode_files(&run_dir).iter().map(|p| recording::read_episode(p).unwrap()).collect();
    let unfinished = episodes.iter().filter(|e| e.outcome.is_none()).count();
    assert!(unfinished <= 1, "{unfinished} unfinished episodes");
    assert!(episodes[..episodes.len() - 1].iter().all(|e| e.outcome.is_some()));
    let recorded_steps: usize = episodes.iter().map(|e| e.steps.len()).sum();
    // Every step the robot took is on disk (demos and practice), but for
    // the one whose answer the kill may have cut off.
    let demo_steps: usize = recording::list_episodes(&run_dir.join("demos")).unwrap().iter().map(|p| recording::read_episode(p).unwrap().steps.len()).sum();
    let served_steps = served["steps"].as_u64().unwrap() as usize;
    assert!(served_steps > 200, "{served}");
    assert!(demo_steps + recorded_steps + 1 >= served_steps, "the robot took {served_steps} steps, only {} are on disk", demo_steps + recorded_steps);
    assert!(demo_steps + recorded_steps <= served_steps, "more steps on disk ({}) than the robot took ({served_steps})", demo_steps + recorded_steps);

    // The same run is not silently overwritten.
    let refused = run(&["practice", "--config", config_arg, "--run-dir", run_arg]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--resume"), "{}", String::from_utf8_lossy(&refused.stderr));

    let total = (recorded_steps + 120).to_string();
    let resumed = json_of(&run(&["practice", "--config", config_arg, "--run-dir", run_arg, "--resume", "--steps", &total]));
    assert_eq!(resumed["resumed_episodes"].as_u64().unwrap(), episodes.last().unwrap().header.episode + 1);
    assert_eq!(resumed["total_steps"].as_u64().unwrap() as usize, recorded_steps + 120);
    assert_eq!(resumed["eval"]["episodes"], 2);
    let after: Vec<_> = episode_files(&run_dir).iter().map(|p| recording::read_episode(p).unwrap()).collect();
    assert_eq!(after.iter().map(|e| e.steps.len()).sum::<usize>(), recorded_steps + 120, "the killed session's steps are all still there");
    for file in ["practice.csv", "success_rate.png", "learner.safetensors", "eval/eval.json", "eval/eval_returns.png"] {
        assert!(run_dir.join(file).exists(), "{file} missing");
    }

    let eval_dir = dir.path().join("eval2");
    let eval = json_of(&run(&["eval", run_dir.join("learner.safetensors").to_str().unwrap(), "--config", config_arg, "--episodes", "3", "--out", eval_dir.to_str().unwrap()]));
    assert_eq!(eval["returns"].as_array().unwrap().len(), 3);
    let recorded_eval: Vec<recording::Episode> = recording::list_episodes(&eval_dir.join("episodes")).unwrap().iter().map(|p| recording::read_episode(p).unwrap()).collect();
    assert_eq!(recorded_eval.len(), 3);
    // The reported rate is that of the recorded episodes' outcomes.
    let successes = recorded_eval.iter().filter(|e| e.outcome.as_ref().and_then(|o| o.success) == Some(true)).count();
    assert_eq!(eval["success_rate"].as_f64().unwrap(), successes as f64 / 3.0, "{eval}");

    let mcap = dir.path().join("run.mcap");
    let exported = json_of(&run(&["export-mcap", run_arg, "--out", mcap.to_str().unwrap()]));
    let steps_everywhere: u64 = ["demos", "episodes", "eval/episodes"]
        .iter()
        .flat_map(|f| recording::list_episodes(&run_dir.join(f)).unwrap())
        .map(|p| recording::read_episode(&p).unwrap().steps.len() as u64)
        .sum();
    // Four messages per step plus episode markers.
    assert!(exported["messages"].as_u64().unwrap() > 4 * steps_everywhere);
    let bytes = std::fs::read(&mcap).unwrap();
    assert_eq!(&bytes[..8], b"\x89MCAP0\r\n");
    assert_eq!(&bytes[bytes.len() - 8..], b"\x89MCAP0\r\n");
}

#[test]
fn practice_refuses_a_launch_file_it_cannot_practise_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pendulum.ron");
    std::fs::write(&config, LAUNCH.replace("PandaReach", "InvertedPendulum").replace("preset: Some(FrankaPanda)", "")).unwrap();
    let out = run(&["practice", "--config", config.to_str().unwrap(), "--run-dir", dir.path().join("r").to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pendulum.ron") && err.contains("Panda task"), "{err}");
}

/// The learner as a ROS 2 node of the practising process (README command
/// A's `--learner node`): the actor's stream crosses DDS whole, the learner
/// keeps step with the simulation (one update per step after warm-up), any
/// node on the domain sees its acknowledgements and weights, and the final
/// checkpoint is evaluated. A node that fails stops practice with its reason.
#[test]
fn practice_over_a_learner_node_of_its_own_process_keeps_step_over_ros2() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("reach.ron");
    std::fs::write(&config, LAUNCH).unwrap();
    let run_dir = dir.path().join("run");
    let (config_arg, run_arg) = (config.to_str().unwrap(), run_dir.to_str().unwrap());
    // The watcher subscribes first, and practice runs long enough (about
    // 8 s here) for DDS discovery that misses its first announcements
    // (about 2 s late in 1 run of 4 here) to match the node while it
    // still publishes.
    let domain = (20 + (std::process::id() + 23) % 80).to_string();
    let mut watcher = common::Running::spawn(common::ros_peer("watch_learner.py", &["panda", &ros_edge::wire::VERSION.to_string()], &domain).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()));
    let mut said = common::LogLines::of(watcher.child().stdout.take().unwrap());
    said.wait_for("listening", Duration::from_secs(60), |line| line == "listening");
    let practice = common::Running::spawn(rrl(&["practice", "--config", config_arg, "--run-dir", run_arg, "--learner", "node", "--steps", "1000"]).env("ROS_DOMAIN_ID", &domain).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()));
    let report = json_of(&practice.wait_with_output_within(Duration::from_secs(300)));
    let watched = watcher.wait_with_output_within(Duration::from_secs(130));
    let seen: serde_json::Value = serde_json::from_str(said.all().lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("watcher ({e}): {}", String::from_utf8_lossy(&watched.stderr)));
    // Decoded as the wire format says: counts no larger than the learner's.
    assert_eq!(seen["bad_headers"], 0, "messages not of the wire format's version and kind: {seen}");
    assert!(watched.status.success() && seen["ok"] == true, "the watcher saw no acknowledgement and weights past 20 updates: {seen}");
    assert!(seen["max_ack_updates"].as_u64().unwrap() <= 900 && seen["max_weight_updates"].as_u64().unwrap() <= 900, "{seen}");
    assert!(seen["acked_items"].as_u64().unwrap() <= report["link"]["stream_items"].as_u64().unwrap(), "{seen} {report}");
    assert_eq!(report["total_steps"], 1000);
    assert_eq!(report["learner_updates"], 900, "one update per step after the 100 warm-up steps: {report}");
    let link = &report["link"];
    assert_eq!(link["unconfirmed"], 0, "{link}");
    assert_eq!(link["learner_node"]["actors"]["1"]["received"], link["stream_items"], "every item reached the node once: {link}");
    assert_eq!(report["eval"]["episodes"], 2);
    assert!(run_dir.join("learner.safetensors").exists());

    // A checkpoint left where a fresh run starts: the node refuses it, and
    // practice (which waits on the node in lockstep) ends with that reason.
    let stale = dir.path().join("stale");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("learner.safetensors"), b"not a checkpoint").unwrap();
    let output = rrl(&["practice", "--config", config_arg, "--run-dir", stale.to_str().unwrap(), "--learner", "node", "--steps", "400"])
        .env("ROS_DOMAIN_ID", (20 + (std::process::id() + 24) % 80).to_string())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("learner.safetensors exists: pass --resume"), "{stderr}");
}

/// A human with a SpaceMouse (an rclpy node publishing sensor_msgs/Joy)
/// takes over, then stops the session over `practice/command`.
#[test]
fn a_spacemouse_over_ros_takes_over_and_stops_practice() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("reach.ron");
    std::fs::write(&config, LAUNCH).unwrap();
    let run_dir = dir.path().join("run");
    let report = run_beside_peer(&["practice", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap(), "--operator", "joy", "--realtime", "--eval-episodes", "1"], "joy_operator.py", 17);
    assert_eq!(report["stopped_by_operator"], true);
    let episodes: Vec<_> = episode_files(&run_dir).iter().map(|p| recording::read_episode(p).unwrap()).collect();
    let taken: Vec<_> = episodes.iter().flat_map(|e| &e.steps).filter(|s| s.flags.intervention).collect();
    // 2 s of puck at 10 Hz (plus the hold after release), never the whole session.
    assert!((10..=40).contains(&taken.len()), "{} intervention steps", taken.len());
    // The puck's action while pushed, then holding still for the grace period after release.
    let pushed = taken.iter().filter(|s| (s.action[0] - 0.8).abs() < 1e-6).count();
    assert!(pushed >= 10, "{pushed} steps carried the puck's action");
    assert!(taken.iter().all(|s| s.action[1] == 0.0 && s.action[2] == 0.0 && s.action[3] == -1.0), "only the human's actions are flagged");
    assert_eq!(episodes.last().unwrap().outcome.as_ref().unwrap().reason, "stopped");
}

/// Teleoperated demos (an rclpy SpaceMouse peer) land in the run's demos/
/// with their labels, and practice on that run learns from them instead of
/// recording scripted ones.
#[test]
fn teleop_records_labelled_demos_that_practice_then_uses() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("reach.ron");
    std::fs::write(&config, LAUNCH).unwrap();
    let run_dir = dir.path().join("run");
    let report = run_beside_peer(&["teleop", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap(), "--episodes", "5", "--label-frames"], "teleop_peer.py", 53);
    assert_eq!(report["episodes"], 2, "{report}");
    let demos: Vec<_> = recording::list_episodes(&run_dir.join("demos")).unwrap().iter().map(|p| recording::read_episode(p).unwrap()).collect();
    assert_eq!(demos.len(), 2);
    let first = demos[0].outcome.as_ref().unwrap();
    assert_eq!((first.reason.as_str(), first.success), ("success", Some(true)));
    assert!(first.interventions >= 10, "{first:?}");
    // --label-frames: every step's frames are labelled, success while button
    // 5 was held (one stretch, amid failures), and the success label judges
    // the last step.
    let marks = |demo: &recording::Episode| -> String { demo.steps.iter().map(|s| match s.flags.label { Some(true) => 'T', Some(false) => 'F', None => '-' }).collect() };
    let first_marks = marks(&demos[0]);
    assert!(first_marks.ends_with('T'), "the success label judges the last step: {first_marks}");
    let marked = first_marks[..first_marks.len() - 1].trim_start_matches('F');
    assert!(first_marks.starts_with('F') && marked.starts_with('T') && !marked.trim_start_matches('T').contains(['T', '-']), "failures, then one stretch marked a success while the button was held, then failures: {first_marks}");
    assert!(!marks(&demos[1]).contains(['T', '-']), "a stopped demo's frames are all failures (nothing was marked): {}", marks(&demos[1]));
    let all: String = demos.iter().map(marks).collect();
    assert_eq!(report["labelled_frames"], serde_json::json!({"success": all.matches('T').count(), "failure": all.matches('F').count()}), "{report}");
    // The hand moved along +x under the human's control.
    let x = |s: &recording::EpisodeStep| s.observation[7];
    assert!(x(demos[0].steps.last().unwrap()) > x(&demos[0].steps[0]) + 0.05, "the arm followed the puck");
    assert_eq!(demos[1].outcome.as_ref().unwrap().reason, "stopped");

    let practised = json_of(&run(&["practice", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap(), "--steps", "150", "--eval-episodes", "1"]));
    assert_eq!(practised["total_steps"], 150);
    assert_eq!(recording::list_episodes(&run_dir.join("demos")).unwrap().len(), 2, "the human's demos are used, no scripted ones added");
}

/// `rrl teleop` on the car twin from a gamepad: the stick's left-right is
/// steering and up-down throttle (the same peer as the arm's teleop: it
/// pushes axis 0, labels a success, then pulls axis 1 back), recorded as
/// the human's demos.
#[test]
fn teleop_drives_the_car_twin_from_a_gamepad() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("files/sim_car_course.ron");
    let report = run_beside_peer_in(&["teleop", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap(), "--episodes", "5"], "teleop_peer.py", 19, "car");
    assert_eq!(report["episodes"], 2, "{report}");
    let demos: Vec<_> = recording::list_episodes(&run_dir.join("demos")).unwrap().iter().map(|p| recording::read_episode(p).unwrap()).collect();
    assert_eq!(demos[0].outcome.as_ref().unwrap().success, Some(true), "the human's success label");
    let human = |demo: &recording::Episode| -> Vec<Vec<f32>> { demo.steps.iter().filter(|s| s.flags.intervention).map(|s| s.action.clone()).collect() };
    // Axis 0 at 0.7: steering only, and the car turned (the first checkpoint moved in its view).
    assert!(human(&demos[0]).iter().any(|a| a[0] == 0.0 && (a[1] - 0.7).abs() < 1e-3), "{:?}", human(&demos[0]));
    let (first, last) = (&demos[0].steps[0].observation, &demos[0].steps.last().unwrap().next_observation);
    assert!((first[2] - last[2]).abs() + (first[3] - last[3]).abs() > 0.1, "the car turned: {first:?} -> {last:?}");
    // Axis 1 at -0.6: reverse, and the car backed up.
    assert!(human(&demos[1]).iter().any(|a| (a[0] + 0.6).abs() < 1e-3 && a[1] == 0.0), "{:?}", human(&demos[1]));
    assert!(demos[1].steps.iter().any(|s| s.next_observation[0] < -0.1), "the car reversed");
}

/// Behaviour cloning on a run's demos: `rrl bc train` writes a policy that
/// `rrl bc eval` runs in recorded episodes, doing better than holding still;
/// a run without demos and a damaged policy file are refused.
#[test]
fn bc_trains_on_the_runs_demos_and_beats_holding_still() {
    use rrl_types::Environment;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("reach.ron");
    std::fs::write(&config, LAUNCH.replace("demo_episodes: 2", "demo_episodes: 10")).unwrap();
    let (c, run_dir) = (config.to_str().unwrap(), dir.path().join("run"));
    let r = run_dir.to_str().unwrap();
    let refused = run(&["bc", "train", "--config", c, "--run-dir", r]);
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("no demos"));
    json_of(&run(&["practice", "--config", c, "--run-dir", r, "--steps", "1", "--eval-episodes", "0"]));
    let trained = json_of(&run(&["bc", "train", "--config", c, "--run-dir", r]));
    assert_eq!(trained["demos"], 10);
    let eval = json_of(&run(&["bc", "eval", "--config", c, "--run-dir", r, "--episodes", "10"]));
    assert_eq!(recording::list_episodes(&run_dir.join("bc_eval/episodes")).unwrap().len(), 10);
    let bc_mean = eval["mean_return"].as_f64().unwrap();
    // Holding still from the same starts (same seeds, 40-step episodes).
    let mut env = sim_bridge::panda::PandaTask::new(sim_bridge::panda::PandaVariant::Reach, sim_bridge::panda::RewardKind::Dense).unwrap();
    env.set_max_episode_steps(40);
    let mut still = 0.0;
    for e in 0..10 {
        env.reset(60_000 + e);
        loop {
            let step = env.step(&[0.0, 0.0, 0.0, -1.0]).unwrap();
            still += step.reward;
            if step.done() {
                break;
            }
        }
    }
    still /= 10.0;
    assert!(bc_mean > still + 3.0, "BC {bc_mean:.1} vs holding still {still:.1}");
    let policy = run_dir.join("bc.safetensors");
    let mut bytes = std::fs::read(&policy).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&policy, bytes).unwrap();
    let damaged = run(&["bc", "eval", "--config", c, "--run-dir", r]);
    assert!(!damaged.status.success() && String::from_utf8_lossy(&damaged.stderr).contains("bc.safetensors"), "{}", String::from_utf8_lossy(&damaged.stderr));
}

/// The keyboard operator, keys piped on stdin as a terminal would deliver
/// them: `a` held moves the hand along +y in a teleoperated demo (the
/// simulated robot a lockstep ROS 2 node, `--robot node`), `y` labels it a
/// success; in practice `q` stops the session.
#[test]
fn keyboard_keys_drive_a_demo_label_it_and_stop_practice() {
    use std::io::Write;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("reach.ron");
    std::fs::write(&config, LAUNCH).unwrap();
    let run_dir = dir.path().join("run");
    // Killed if the test fails: it would wait for keys forever.
    let mut teleop = common::Running::spawn(
        rrl(&["teleop", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap(), "--episodes", "1", "--operator", "keyboard", "--robot", "node", "--label-frames"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut keys = teleop.child().stdin.take().unwrap();
    // Keys typed before teleop listens would all arrive at once: wait until
    // it has opened its first demo episode (its keyboard reader is started
    // before that; it then waits for the first move).
    let started = std::time::Instant::now();
    while recording::list_episodes(&run_dir.join("demos")).map_or(true, |e| e.is_empty()) {
        assert!(started.elapsed() < Duration::from_secs(120), "teleop opened no demo episode in 120 s");
        assert!(teleop.child().try_wait().unwrap().is_none(), "teleop ended before its first demo");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Key repeat while `a` is held: about 20 presses a second; halfway, `m`
    // marks the view a success from then on.
    for press in 0..40 {
        if press == 20 {
            keys.write_all(b"m").unwrap();
        }
        keys.write_all(b"a").unwrap();
        keys.flush().unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    keys.write_all(b"y").unwrap();
    keys.flush().unwrap();
    let report = json_of(&teleop.wait_with_output_within(Duration::from_secs(120)));
    assert_eq!((report["episodes"].as_u64(), report["successes"].as_u64()), (Some(1), Some(1)), "{report}");
    let demo = recording::read_episode(&recording::list_episodes(&run_dir.join("demos")).unwrap()[0]).unwrap();
    assert_eq!(demo.steps.last().unwrap().flags.label, Some(true), "the y key labels the last step's frames");
    let marks: String = demo.steps.iter().map(|s| match s.flags.label { Some(true) => 'T', Some(false) => 'F', None => '-' }).collect();
    let marked = marks[..marks.len() - 1].trim_start_matches('F');
    assert!(marks.starts_with('F') && !marked.is_empty() && marked.chars().all(|c| c == 'T'), "failures until `m`, successes after (the last, `y`'s): {marks}");
    // Every recorded step was a step of the robot node.
    assert_eq!(report["robot_node"]["steps"].as_u64(), Some(demo.steps.len() as u64), "{report}");
    let y = |s: &recording::EpisodeStep| s.observation[8];
    assert!(y(demo.steps.last().unwrap()) > y(&demo.steps[0]) + 0.05, "the hand should have moved along +y");
    // About 20 steps see a key held; on a loaded machine the 10 Hz teleop loop sees fewer of them.
    let interventions = demo.outcome.as_ref().unwrap().interventions;
    assert!(interventions >= 5, "{interventions} steps marked as the operator's");

    let mut practice = common::Running::spawn(
        rrl(&["practice", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap(), "--steps", "100000", "--realtime", "--operator", "keyboard", "--eval-episodes", "0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut keys = practice.child().stdin.take().unwrap();
    // Stop once practice is under way (a step of its first episode is on disk).
    let started = Instant::now();
    let steps_on_disk = |run_dir: &Path| -> usize { episode_files(run_dir).iter().filter_map(|p| recording::read_episode(p).ok()).map(|e| e.steps.len()).sum() };
    while steps_on_disk(&run_dir) == 0 {
        assert!(started.elapsed() < Duration::from_secs(120), "practice recorded no episode");
        std::thread::sleep(Duration::from_millis(20));
    }
    keys.write_all(b"q").unwrap();
    keys.flush().unwrap();
    let report = json_of(&practice.wait_with_output_within(Duration::from_secs(120)));
    assert_eq!(report["stopped_by_operator"], true, "{report}");
    // Every step it took is on disk, and the stop came long before the budget.
    let recorded: usize = episode_files(&run_dir).iter().map(|p| recording::read_episode(p).unwrap().steps.iter().filter(|s| !s.flags.recovery).count()).sum();
    assert_eq!(report["total_steps"].as_u64().unwrap() as usize, recorded, "{report}");
    assert!(recorded > 0 && recorded < 2_000, "{recorded} steps before the stop");
}

/// Residual practice on a BC base (`--base`): the learner sees the base's
/// action in its observation, starts as exactly the base (a deterministic
/// evaluation before any update plays zero residuals), the scripted demos
/// are relabelled as bounded residuals, and a base that is not a policy
/// file is refused naming it.
#[test]
fn residual_practice_starts_from_its_bc_base_with_relabelled_demos() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("reach.ron");
    std::fs::write(&config, LAUNCH).unwrap();
    let c = config.to_str().unwrap();
    let base_run = dir.path().join("base");
    let b = base_run.to_str().unwrap();
    json_of(&run(&["practice", "--config", c, "--run-dir", b, "--steps", "1", "--eval-episodes", "0"]));
    json_of(&run(&["bc", "train", "--config", c, "--run-dir", b, "--steps", "200"]));
    let policy = base_run.join("bc.safetensors");

    let residual_run = dir.path().join("residual");
    let r = residual_run.to_str().unwrap();
    let report = json_of(&run(&["practice", "--config", c, "--run-dir", r, "--steps", "1", "--eval-episodes", "2", "--base", policy.to_str().unwrap(), "--residual-scale", "0.25"]));
    assert_eq!(report["base"]["residual_scale"], 0.25, "{report}");
    let read = |folder: &str| -> Vec<recording::Episode> { recording::list_episodes(&residual_run.join(folder)).unwrap().iter().map(|p| recording::read_episode(p).unwrap()).collect() };
    let demos = read("demos");
    assert_eq!(demos.len(), 2);
    for demo in &demos {
        assert_eq!((demo.header.observation_size, demo.header.action_size), (17 + 4, 4), "observation = task + base action");
        assert!(demo.steps.iter().flat_map(|s| &s.action).all(|a| a.abs() <= 1.0));
    }
    assert!(demos.iter().flat_map(|d| &d.steps).flat_map(|s| &s.action).any(|a| a.abs() > 0.01), "the expert differs from a weak base somewhere");
    let evaluated = read("eval/episodes");
    assert_eq!(evaluated.len(), 2);
    assert!(evaluated.iter().flat_map(|e| &e.steps).flat_map(|s| &s.action).all(|a| *a == 0.0), "before any update the residual is exactly zero: the base plays alone");
    // The base alone was evaluated on the same episodes before practice: the same returns.
    assert_eq!(report["base"]["eval"]["returns"], report["eval"]["returns"], "{report}");

    std::fs::write(dir.path().join("base.bin"), b"not a policy").unwrap();
    let refused = run(&["practice", "--config", c, "--run-dir", dir.path().join("other").to_str().unwrap(), "--steps", "1", "--base", dir.path().join("base.bin").to_str().unwrap()]);
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("base.bin"), "{}", String::from_utf8_lossy(&refused.stderr));
}

/// `practice.base: BehaviourCloning(..)` in the launch file: practice
/// records the task's own demos, clones them into `base/bc.safetensors`,
/// evaluates that base alone, then practises the residual on demos
/// relabelled for it; a resumed run finds the base and trains nothing.
#[test]
fn a_launch_file_base_is_cloned_from_the_runs_demos_before_practice() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("reach.ron");
    std::fs::write(&config, LAUNCH.replace("eval_episodes: 2)", "eval_episodes: 2, base: BehaviourCloning((steps: 200, residual_scale: 0.25)))")).unwrap();
    let c = config.to_str().unwrap();
    let run_dir = dir.path().join("run");
    let r = run_dir.to_str().unwrap();
    let report = json_of(&run(&["practice", "--config", c, "--run-dir", r, "--steps", "1"]));
    assert_eq!((report["base"]["trained"].as_bool(), report["base"]["demos"].as_u64(), report["base"]["residual_scale"].as_f64()), (Some(true), Some(2), Some(0.25)), "{report}");
    assert!(report["base"]["final_loss"].as_f64().unwrap().is_finite(), "{report}");
    assert!(run_dir.join("base/bc.safetensors").exists());
    let sizes = |folder: &str| -> Vec<(usize, usize)> { recording::list_episodes(&run_dir.join(folder)).unwrap().iter().map(|p| recording::read_episode(p).unwrap().header).map(|h| (h.observation_size, h.action_size)).collect() };
    assert_eq!(sizes("base/demos"), vec![(17, 4); 2], "the base learns from the task itself");
    assert_eq!(sizes("demos"), vec![(21, 4); 2], "the residual's demos see the base's action");
    assert_eq!(report["base"]["eval"]["episodes"], 2, "{report}");

    let resumed = json_of(&run(&["practice", "--config", c, "--run-dir", r, "--steps", "2", "--resume", "--eval-episodes", "0"]));
    assert_eq!(resumed["base"]["trained"], false, "{resumed}");
    assert_eq!(resumed["total_steps"], 2, "{resumed}");
}

/// A disk that fills mid-practice (a 4 MiB tmpfs in a private mount
/// namespace, filled by a file: the kernel's own ENOSPC): practice pauses
/// with a clear message (the actor sends nothing, so the gate holds the
/// robot), resumes by itself once the file is deleted, and completes with
/// every step recorded, no torn record, and a checkpoint that loads.
/// Fault matrix: disk full | a 4 MiB tmpfs filled with dd (real ENOSPC), the file removed later | practice pauses with the robot held, retries every second, resumes | pause and resume said; 800 steps recorded once, no torn tail; the final checkpoint loads
#[test]
fn a_full_disk_pauses_practice_until_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("reach.ron");
    std::fs::write(&config, LAUNCH).unwrap();
    let kept = dir.path().join("kept");
    let disk = dir.path().join("disk");
    std::fs::create_dir_all(&kept).unwrap();
    std::fs::create_dir_all(&disk).unwrap();
    // Everything below runs inside the namespace, where the tmpfs exists;
    // the run is copied out before it goes away.
    let script = r#"
set -u
mount -t tmpfs -o size=4m rrl-test-disk "$DISK" || exit 90
"$RRL" practice --config "$CONFIG" --run-dir "$DISK/run" --steps 800 --eval-episodes 1 > "$KEPT/stdout" 2> "$KEPT/stderr" &
pid=$!
waited=0
until [ "$(ls "$DISK/run/episodes" 2>/dev/null | wc -l)" -ge 2 ]; do sleep 0.02; waited=$((waited + 1)); [ $waited -lt 6000 ] || exit 91; done
dd if=/dev/zero of="$DISK/filler" bs=64k 2>/dev/null
waited=0
until grep -q "practice is paused" "$KEPT/stderr"; do sleep 0.05; waited=$((waited + 1)); [ $waited -lt 1200 ] || exit 92; done
sleep 2
rm "$DISK/filler"
wait $pid
status=$?
cp -r "$DISK/run" "$KEPT/run"
exit $status
"#;
    let output = Command::new("timeout")
        .args(["300", "unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script])
        .env("RRL", env!("CARGO_BIN_EXE_rrl"))
        .env("CONFIG", &config)
        .env("DISK", &disk)
        .env("KEPT", &kept)
        .env("RRL_LOG", "warn")
        .env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        .env("ROS_DOMAIN_ID", (20 + (std::process::id() + 31) % 80).to_string())
        .output()
        .unwrap();
    let stderr = std::fs::read_to_string(kept.join("stderr")).unwrap_or_default();
    assert!(output.status.success(), "exit {:?}: {}\n{stderr}", output.status.code(), String::from_utf8_lossy(&output.stderr));
    let paused = stderr.find("the disk is full").unwrap_or_else(|| panic!("no pause message: {stderr}"));
    assert!(stderr[paused..].contains("practice is paused"), "{stderr}");
    assert!(stderr[paused..].contains("practice resumes"), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(std::fs::read_to_string(kept.join("stdout")).unwrap().lines().last().unwrap()).unwrap();
    assert_eq!(report["total_steps"], 800, "{report}");
    let run_dir = kept.join("run");
    let episodes: Vec<recording::Episode> = episode_files(&run_dir).iter().map(|p| recording::read_episode(p).unwrap()).collect();
    assert_eq!(episodes.iter().map(|e| e.steps.len()).sum::<usize>(), 800, "every practice step is recorded once");
    assert!(episodes.iter().all(|e| e.torn_tail_bytes == 0 && e.outcome.is_some()), "every episode is whole");
    let rows = std::fs::read_to_string(run_dir.join("practice.csv")).unwrap();
    assert_eq!(rows.lines().count(), 1 + episodes.len(), "one whole row per episode: {rows}");
    assert!(rows.lines().all(|l| l.split(',').count() == 11), "{rows}");
    assert_eq!(report["eval"]["episodes"], 1, "the final checkpoint was written and loads: {report}");
}

/// Rewards practice cannot give as configured, or cannot give without a
/// person, are refused at start-up with the reason, never silently
/// replaced by the task's own reward.
#[test]
fn practice_refuses_a_classifier_without_cameras_and_a_human_reward_without_a_human() {
    let dir = tempfile::tempdir().unwrap();
    let classifier = "Classifier((model: \"success.safetensors\")),\n    cameras: [(name: \"front\", source: Sim(\"front\"), width: 32, height: 32)]";
    for (reward, says) in [(classifier, "a classifier scores the cameras the policy sees, and it sees none"), ("Human", "pass --operator keyboard or joy")] {
        let config = dir.path().join("reach.ron");
        std::fs::write(&config, LAUNCH.replace("    practice:", &format!("    reward: {reward},\n    practice:"))).unwrap();
        let output = run(&["practice", "--config", config.to_str().unwrap(), "--run-dir", dir.path().join("run").to_str().unwrap()]);
        assert!(!output.status.success(), "{reward}: practice started");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says) && stderr.contains("reach.ron"), "{reward}: {stderr}");
        assert!(!dir.path().join("run").exists(), "{reward}: nothing is written before the refusal");
    }
}

/// A learner that stops being finite (here: learning rates of 1e30) ends
/// `rrl practice` with an error naming the update and its losses, said
/// once; the episodes on disk stay whole, and no checkpoint of a
/// non-finite learner is written.
/// Fault matrix: NaN learner | learning rates of 1e30 in the launch file | `rrl practice` stops naming the update | non-zero exit; `no longer finite at update`; any saved checkpoint is finite
#[test]
fn a_learner_that_goes_non_finite_stops_practice_naming_the_update() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("nan.ron");
    std::fs::write(&config, LAUNCH.replace("initial_temperature: 0.01)", "initial_temperature: 0.01, actor_lr: 1e30, critic_lr: 1e30)").replace("demo_episodes: 2", "demo_episodes: 0")).unwrap();
    let run_dir = dir.path().join("run");
    let out = run(&["practice", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap(), "--steps", "2000"]);
    assert!(!out.status.success(), "practice went on with a non-finite learner");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no longer finite at update"), "{stderr}");
    assert_eq!(stderr.matches("the learner thread failed").count(), 1, "{stderr}");
    let steps: usize = episode_files(&run_dir).iter().map(|p| recording::read_episode(p).unwrap().steps.len()).sum();
    assert!(steps > 0 && steps < 2000, "{steps} steps recorded before the stop");
    if run_dir.join("learner.safetensors").exists() {
        // Only a finite learner was ever saved: it loads and acts.
        let eval = json_of(&run(&["eval", run_dir.join("learner.safetensors").to_str().unwrap(), "--config", config.to_str().unwrap(), "--episodes", "1", "--out", dir.path().join("eval").to_str().unwrap()]));
        assert!(eval["returns"][0].as_f64().unwrap().is_finite(), "{eval}");
    }
}
