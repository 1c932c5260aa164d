//! The simulated robot as a ROS 2 node that practice steps in lockstep:
//! `rrl practice --robot node` (a node of the same process) and `--robot
//! remote` against `rrl sim --lockstep` in another process record the very
//! episodes the in-process simulation records; a robot that is not there
//! is named in the error; a robot node that restarts mid-episode refuses
//! to step an episode it never saw, and `--resume` carries the run on.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

// Practice of 100 steps is all warm-up (seeded random actions), so runs
// are comparable value for value.
const LAUNCH: &str = r#"(
    name: "sim_panda_reach",
    namespace: "panda",
    robot: Sim((task: PandaReach, seed: 3)),
    safety: (preset: Some(FrankaPanda)),
    learner: (device: Cpu, hidden: [32, 32], critics: 2, batch_size: 32, utd: 1, warmup_steps: 100, initial_temperature: 0.01),
    practice: (max_episode_steps: 30, demo_episodes: 2, total_steps: 100000, eval_episodes: 2),
)"#;

fn domain() -> String {
    (20 + (std::process::id() + 41) % 80).to_string()
}

fn rrl(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rrl"));
    cmd.args(args).env("RRL_LOG", "warn").env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST").env("ROS_DOMAIN_ID", domain());
    cmd
}

fn json_of(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "rrl failed: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// The lockstep robot node in its own process, killed with SIGKILL when dropped.
struct RobotNode(Child);

impl RobotNode {
    fn start(config: &Path) -> RobotNode {
        RobotNode(rrl(&["sim", "--lockstep", "--config", config.to_str().unwrap()]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start rrl sim --lockstep"))
    }
}

impl Drop for RobotNode {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every recorded episode of a run (demos, practice, evaluation): observations and actions.
fn recorded(run: &Path) -> Vec<(Vec<Vec<f32>>, Vec<Vec<f32>>)> {
    let mut files = recording::list_episodes(&run.join("demos")).unwrap();
    files.extend(recording::list_episodes(&run.join("episodes")).unwrap());
    files.extend(recording::list_episodes(&run.join("eval/episodes")).unwrap());
    files
        .iter()
        .map(|p| {
            let e = recording::read_episode(p).unwrap();
            (e.steps.iter().map(|s| s.observation.clone()).collect(), e.steps.iter().map(|s| s.action.clone()).collect())
        })
        .collect()
}

/// practice.csv without its wall-clock column.
fn practice_rows(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("practice.csv")).unwrap().lines().map(|l| l.rsplit_once(',').unwrap().0.to_string()).collect()
}

#[test]
fn practice_over_the_robot_node_records_what_the_in_process_simulation_records() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("reach.ron");
    std::fs::write(&config, LAUNCH).unwrap();
    let run = |name: &str, robot: &str| -> (PathBuf, serde_json::Value) {
        let run_dir = dir.path().join(name);
        let report = json_of(&rrl(&["practice", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap(), "--steps", "100", "--robot", robot]).output().unwrap());
        (run_dir, report)
    };
    let (local_dir, local) = run("local", "local");
    let (node_dir, node) = run("node", "node");
    let robot_node = RobotNode::start(&config);
    let (remote_dir, remote) = run("remote", "remote");
    drop(robot_node);

    let expected = recorded(&local_dir);
    assert!(expected.len() >= 7, "2 demos, at least 3 practice and 2 evaluation episodes: {}", expected.len());
    for (label, run_dir, report) in [("node", &node_dir, &node), ("remote", &remote_dir, &remote)] {
        assert_eq!(recorded(run_dir), expected, "{label}: the episodes differ from the in-process simulation's");
        assert_eq!(practice_rows(run_dir), practice_rows(&local_dir), "{label}");
        assert_eq!(report["eval"]["returns"], local["eval"]["returns"], "{label}");
        assert_eq!(report["total_steps"], 100, "{report}");
    }
    // The node of this process stepped every recorded step once: demos, practice, evaluation.
    let served = &node["robot_node"];
    let recorded_steps: usize = expected.iter().map(|(obs, _)| obs.len()).sum();
    assert_eq!(served["steps"].as_u64().unwrap() as usize, recorded_steps, "{node}");
    assert_eq!(served["refused"], 0, "{node}");
}

#[test]
fn a_missing_robot_is_named_and_a_restarted_one_refuses_the_old_episode_until_the_run_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("reach.ron");
    // Another namespace than the other test's, so the two never meet.
    std::fs::write(&config, LAUNCH.replace("namespace: \"panda\"", "namespace: \"panda_restart\"")).unwrap();
    let run_dir = dir.path().join("run");
    let (config_arg, run_arg) = (config.to_str().unwrap(), run_dir.to_str().unwrap());

    let absent = rrl(&["practice", "--config", config_arg, "--run-dir", run_arg, "--robot", "remote", "--robot-answer-s", "2"]).output().unwrap();
    assert!(!absent.status.success());
    let stderr = String::from_utf8_lossy(&absent.stderr);
    assert!(stderr.contains("/panda_restart/task/requests") && stderr.contains("did not answer") && stderr.contains("rrl sim --lockstep"), "{stderr}");

    let first = RobotNode::start(&config);
    let mut practice = rrl(&["practice", "--config", config_arg, "--run-dir", run_arg, "--robot", "remote", "--robot-answer-s", "30", "--steps", "3000"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let started = Instant::now();
    while recording::list_episodes(&run_dir.join("episodes")).map_or(0, |e| e.len()) < 4 {
        assert!(started.elapsed() < Duration::from_secs(180), "practice recorded no episodes");
        assert!(practice.try_wait().unwrap().is_none(), "practice exited early");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(first); // SIGKILL mid-episode: its simulation state is gone
    let _second = RobotNode::start(&config);
    let out = practice.wait_with_output().unwrap();
    assert!(!out.status.success(), "practice went on stepping an episode the new robot node never started");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no episode of this actor is running here") && stderr.contains("--resume"), "{stderr}");
    let before = recording::list_episodes(&run_dir.join("episodes")).unwrap().len();

    let resumed = json_of(&rrl(&["practice", "--config", config_arg, "--run-dir", run_arg, "--robot", "remote", "--resume", "--steps", "400"]).output().unwrap());
    assert!(resumed["resumed_episodes"].as_u64().unwrap() as usize >= before - 1, "{resumed}");
    assert_eq!(resumed["total_steps"], 400, "{resumed}");
    assert!(resumed["episodes"].as_u64().unwrap() > 0, "{resumed}");
}

/// A robot node that stops answering for a while (SIGSTOP, as a hung
/// process or a cut cable would) pauses practice with a message; when it
/// answers again practice goes on, and the requests resent meanwhile are
/// answered from the node's last reply without stepping again: the node
/// stepped exactly the steps that were recorded.
#[test]
fn practice_pauses_while_the_robot_node_is_silent_and_goes_on_without_stepping_twice() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("reach.ron");
    std::fs::write(&config, LAUNCH.replace("namespace: \"panda\"", "namespace: \"panda_pause\"")).unwrap();
    let run_dir = dir.path().join("run");
    let node = rrl(&["sim", "--lockstep", "--config", config.to_str().unwrap(), "--duration-s", "40"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut practice = rrl(&["practice", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap(), "--robot", "remote", "--steps", "200"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let started = Instant::now();
    while recording::list_episodes(&run_dir.join("episodes")).map_or(0, |e| e.len()) < 2 {
        assert!(started.elapsed() < Duration::from_secs(25), "practice recorded no episodes");
        assert!(practice.try_wait().unwrap().is_none(), "practice exited early");
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = node.id() as i32;
    // SAFETY: signals to a child this test started and still owns.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    std::thread::sleep(Duration::from_secs(6));
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let out = practice.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = json_of(&out);
    assert_eq!(report["total_steps"], 200, "{report}");
    assert!(stderr.contains("practice is paused: the simulated robot has not answered"), "{stderr}");

    let served = json_of(&node.wait_with_output().unwrap());
    let recorded_steps: usize = recorded(&run_dir).iter().map(|(obs, _)| obs.len()).sum();
    assert_eq!(served["steps"].as_u64().unwrap() as usize, recorded_steps, "{served}");
    assert!(served["repeated_replies"].as_u64().unwrap() > 0, "the requests resent during the pause reached the node: {served}");
}
