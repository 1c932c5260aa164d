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

/// Every recorded episode of a run (demos, practice, evaluation), whole:
/// each step (observation, action, reward, next observation, flags; its
/// wall-clock time aside) and the outcome.
fn recorded_whole(run: &Path) -> Vec<(Vec<recording::EpisodeStep>, Option<recording::EpisodeOutcome>)> {
    let mut files = recording::list_episodes(&run.join("demos")).unwrap();
    files.extend(recording::list_episodes(&run.join("episodes")).unwrap());
    files.extend(recording::list_episodes(&run.join("eval/episodes")).unwrap());
    files
        .iter()
        .map(|p| {
            let e = recording::read_episode(p).unwrap();
            (e.steps.into_iter().map(|s| recording::EpisodeStep { time_ns: 0, ..s }).collect(), e.outcome)
        })
        .collect()
}

/// Waits until the running `practice` has recorded `episodes` practice episodes in `run_dir`.
fn wait_for_practice_episodes(practice: &mut Child, run_dir: &Path, episodes: usize, within: Duration) {
    let started = Instant::now();
    while recording::list_episodes(&run_dir.join("episodes")).map_or(0, |e| e.len()) < episodes {
        assert!(started.elapsed() < within, "practice recorded fewer than {episodes} episodes in {within:?}");
        assert!(practice.try_wait().unwrap().is_none(), "practice exited early");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// practice.csv without its wall-clock column (`seconds`, the tenth).
fn practice_rows(run: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(run.join("practice.csv")).unwrap();
    text.lines().map(|l| l.split(',').enumerate().filter(|(i, _)| *i != 9).map(|(_, f)| f).collect::<Vec<_>>().join(",")).collect()
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

    let expected = recorded_whole(&local_dir);
    assert!(expected.len() >= 7, "2 demos, at least 3 practice and 2 evaluation episodes: {}", expected.len());
    for (label, run_dir, report) in [("node", &node_dir, &node), ("remote", &remote_dir, &remote)] {
        assert_eq!(recorded_whole(run_dir), expected, "{label}: the episodes differ from the in-process simulation's");
        assert_eq!(practice_rows(run_dir), practice_rows(&local_dir), "{label}");
        assert_eq!(report["eval"]["returns"], local["eval"]["returns"], "{label}");
        assert_eq!(report["total_steps"], 100, "{report}");
    }
    // The node of this process stepped every recorded step once: demos, practice, evaluation.
    let served = &node["robot_node"];
    let recorded_steps: usize = expected.iter().map(|(steps, _)| steps.len()).sum();
    assert_eq!(served["steps"].as_u64().unwrap() as usize, recorded_steps, "{node}");
    assert_eq!(served["refused"], 0, "{node}");
}

/// Fault matrix: robot node restarted | no robot node; then it is SIGKILLed mid-episode and a fresh one started | names the missing topic; the new node refuses the old episode | `did not answer` with `rrl sim --lockstep`; `no episode of this actor is running here`; `--resume` carries on
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
    wait_for_practice_episodes(&mut practice, &run_dir, 4, Duration::from_secs(180));
    // Freeze the node until the actor is seen waiting inside an episode
    // (its newest episode has steps and no end: a step is pending, not a
    // reset, which a fresh node would serve as it should), then SIGKILL it:
    // that episode's simulation state is gone.
    let pid = first.0.id() as i32;
    let started = Instant::now();
    loop {
        // SAFETY: signals to a child this test started and still owns.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        std::thread::sleep(Duration::from_millis(300));
        let newest = recording::list_episodes(&run_dir.join("episodes")).unwrap().pop().unwrap();
        let episode = recording::read_episode(&newest).unwrap();
        if !episode.steps.is_empty() && episode.outcome.is_none() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "never caught the actor inside an episode");
        unsafe { libc::kill(pid, libc::SIGCONT) };
        std::thread::sleep(Duration::from_millis(37));
    }
    drop(first);
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
/// Fault matrix: robot silent | the `rrl sim --lockstep` robot process SIGSTOPped for 6 s | practice pauses and resends; the node answers repeats from its last reply | all 200 steps done; steps served == steps recorded; repeated replies > 0
#[test]
fn practice_pauses_while_the_robot_node_is_silent_and_goes_on_without_stepping_twice() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("reach.ron");
    std::fs::write(&config, LAUNCH.replace("namespace: \"panda\"", "namespace: \"panda_pause\"")).unwrap();
    let run_dir = dir.path().join("run");
    let node = rrl(&["sim", "--lockstep", "--config", config.to_str().unwrap(), "--duration-s", "60"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut practice = rrl(&["practice", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap(), "--robot", "remote", "--steps", "200"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_for_practice_episodes(&mut practice, &run_dir, 2, Duration::from_secs(25));
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
    let recorded_steps: usize = recorded_whole(&run_dir).iter().map(|(steps, _)| steps.len()).sum();
    assert_eq!(served["steps"].as_u64().unwrap() as usize, recorded_steps, "{served}");
    assert!(served["repeated_replies"].as_u64().unwrap() > 0, "the requests resent during the pause reached the node: {served}");
}

/// Practice learns over ROS 2, as the README's command A runs it (robot
/// task node and learner node of the practising process, everything over
/// DDS): on reach, the episodes after warm-up succeed where the warm-up's
/// random ones did not.
#[test]
fn practice_over_ros2_learns_to_reach_and_success_rises() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("reach.ron");
    // The reach launch file's learner, smaller: n-step 3 and the critic at 1e-3, as `rrl train` sets it.
    std::fs::write(
        &config,
        r#"(
    name: "reach_learns",
    namespace: "panda_learns",
    robot: Sim((task: PandaReach, seed: 1)),
    safety: (preset: Some(FrankaPanda), soft_margin_rad: 0.05),
    learner: (device: Cpu, hidden: [128, 128], critics: 2, batch_size: 128, utd: 1, critic_lr: 0.001, n_step: 3, demo_ratio: 0.5, warmup_steps: 500, initial_temperature: 0.01),
    practice: (max_episode_steps: 100, demo_episodes: 10, total_steps: 100000, eval_episodes: 10),
)"#,
    )
    .unwrap();
    let run_dir = dir.path().join("run");
    let report = json_of(&rrl(&["practice", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap(), "--steps", "3000", "--robot", "node", "--learner", "node"]).output().unwrap());
    assert_eq!(report["robot_node"]["refused"], 0, "{report}");
    assert_eq!(report["link"]["unconfirmed"], 0, "{report}");
    // practice.csv: episode,steps,total_steps,return,success,...
    let rows: Vec<(u64, bool)> = std::fs::read_to_string(run_dir.join("practice.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            (fields[2].parse().unwrap(), fields[4] == "1")
        })
        .collect();
    let warm_up: Vec<bool> = rows.iter().filter(|(total, _)| *total <= 500).map(|r| r.1).collect();
    let last_20: Vec<bool> = rows.iter().rev().take(20).map(|r| r.1).collect();
    let rate = |episodes: &[bool]| episodes.iter().filter(|s| **s).count() as f64 / episodes.len().max(1) as f64;
    assert!(warm_up.len() >= 4 && rows.len() >= 30, "{rows:?}");
    assert!(rate(&last_20) >= 0.25 && rate(&last_20) > rate(&warm_up) + 0.2, "success did not rise: warm-up {:.2}, last 20 {:.2}: {rows:?}", rate(&warm_up), rate(&last_20));
}
