//! Two actors feed one learner over ROS 2; the learner is killed with
//! SIGKILL mid-run and restarted from its checkpoint. Every item of both
//! actors' streams reaches the restarted learner exactly once, in order.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const LAUNCH: &str = r#"(
    name: "sim_panda_reach",
    namespace: "fleet",
    robot: Sim((task: PandaReach, seed: 1)),
    safety: (preset: Some(FrankaPanda)),
    learner: (device: Cpu, hidden: [32, 32], critics: 2, batch_size: 32, utd: 1, warmup_steps: 50, initial_temperature: 0.01, publish_every_updates: 20),
    practice: (max_episode_steps: 20, demo_episodes: 1, total_steps: 100000, eval_episodes: 1),
)"#;

fn rrl(domain: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rrl"));
    cmd.args(args).env("RRL_LOG", "warn").env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST").env("ROS_DOMAIN_ID", domain).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

fn json_of(output: Output) -> serde_json::Value {
    assert!(output.status.success(), "rrl failed: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn wait_for(child: &mut Child, limit: Duration) {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < limit, "process did not finish in {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn actors_lose_and_duplicate_nothing_when_the_learner_is_killed_and_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fleet.ron");
    std::fs::write(&config, LAUNCH).unwrap();
    let c = config.to_str().unwrap();
    let learner_dir = dir.path().join("learner");
    let l = learner_dir.to_str().unwrap();
    let domain = (20 + (std::process::id() + 61) % 80).to_string();

    let mut first_learner = rrl(&domain, &["learner", "--config", c, "--run-dir", l]).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    // Paced at the robot's 10 Hz: 80 steps take about 8 s each.
    let actor_dirs: Vec<PathBuf> = (1..=2).map(|i| dir.path().join(format!("actor{i}"))).collect();
    let mut actors: Vec<Child> = actor_dirs
        .iter()
        .enumerate()
        .map(|(i, a)| rrl(&domain, &["practice", "--config", c, "--run-dir", a.to_str().unwrap(), "--learner", "remote", "--actor-id", &(i + 1).to_string(), "--realtime", "--steps", "80"]).spawn().unwrap())
        .collect();
    std::thread::sleep(Duration::from_secs(4));
    first_learner.kill().unwrap(); // SIGKILL mid-run
    first_learner.wait().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let mut second_learner = rrl(&domain, &["learner", "--config", c, "--run-dir", l, "--resume", "--until-idle-s", "6"]).spawn().unwrap();

    let mut streams = Vec::new();
    for actor in actors.iter_mut() {
        wait_for(actor, Duration::from_secs(120));
    }
    for actor in actors {
        let report = json_of(actor.wait_with_output().unwrap());
        assert_eq!(report["total_steps"], 80);
        assert_eq!(report["link"]["unconfirmed"], 0, "{report}");
        streams.push(report["link"]["stream_items"].as_u64().unwrap());
    }
    wait_for(&mut second_learner, Duration::from_secs(60));
    let learner = json_of(second_learner.wait_with_output().unwrap());
    for (i, items) in streams.iter().enumerate() {
        let got = &learner["actors"][(i + 1).to_string()];
        assert_eq!(got["received"].as_u64().unwrap(), *items, "actor {}: {learner}", i + 1);
        assert_eq!(got["malformed"], 0);
        assert_eq!(got["held_early"], 0);
    }
    // Each stream: one demo of up to 20 steps and 80 online steps, each with its items.
    assert!(streams.iter().all(|&n| n >= 80 + 80), "{streams:?}");
    assert!(learner["updates"].as_u64().unwrap() > 0, "{learner}");
    assert!(learner_dir.join("learner.safetensors").exists());
}
