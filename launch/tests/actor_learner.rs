//! Two actors feed one learner over ROS 2. The learner is killed with
//! SIGKILL once it has written a checkpoint, and restarted from it; the
//! restarted learner is killed again in the middle of a checkpoint write,
//! and a third resumes from the checkpoint that write left whole. Every
//! item of both actors' streams reaches the last learner exactly once, in
//! order, and each actor heard all three learners.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::Running;

const LAUNCH: &str = r#"(
    name: "sim_panda_reach",
    namespace: "fleet",
    robot: Sim((task: PandaReach, seed: 1)),
    safety: (preset: Some(FrankaPanda)),
    learner: (device: Cpu, hidden: [64, 64], critics: 2, batch_size: 32, utd: 1, warmup_steps: 50, initial_temperature: 0.01, publish_every_updates: 20),
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

/// The `meta.updates` of a whole, checksummed checkpoint.
fn checkpoint_updates(path: &Path) -> u64 {
    let tensors = policies::checkpoint::read_verified(path).unwrap_or_else(|e| panic!("{e}"));
    tensors.iter().find(|(n, _)| n == "meta.updates").map(|(_, t)| t.int64_value(&[0]) as u64).expect("meta.updates")
}

/// Fault matrix: learner killed | `rrl learner` SIGKILLed once it has checkpointed; the restarted one SIGKILLed inside a checkpoint write (a FIFO holds it) | actors resend what no learner holds; a third learner resumes from the whole checkpoint | checkpoint bytes unchanged by the killed write; resumed from its updates; every actor item received once; each actor heard 3 learners
#[test]
fn actors_lose_and_duplicate_nothing_when_the_learner_is_killed_after_a_checkpoint_and_during_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fleet.ron");
    std::fs::write(&config, LAUNCH).unwrap();
    let c = config.to_str().unwrap();
    let learner_dir = dir.path().join("learner");
    let l = learner_dir.to_str().unwrap();
    let checkpoint = learner_dir.join("learner.safetensors");
    let domain = (20 + (std::process::id() + 61) % 80).to_string();
    let learner = |resume: bool, until_idle: bool| {
        let mut args = vec!["learner", "--config", c, "--run-dir", l, "--checkpoint-every-updates", "40"];
        args.extend(resume.then_some("--resume"));
        args.extend(if until_idle { vec!["--until-idle-s", "6"] } else { vec![] });
        Running::spawn(&mut rrl(&domain, &args))
    };

    let mut first_learner = learner(false, false);
    // Paced at the robot's 10 Hz: 300 steps take about 30 s each.
    let actor_dirs: Vec<PathBuf> = (1..=2).map(|i| dir.path().join(format!("actor{i}"))).collect();
    let mut actors: Vec<Running> = actor_dirs
        .iter()
        .enumerate()
        .map(|(i, a)| Running::spawn(&mut rrl(&domain, &["practice", "--config", c, "--run-dir", a.to_str().unwrap(), "--learner", "remote", "--actor-id", &(i + 1).to_string(), "--realtime", "--steps", "300"])))
        .collect();

    // The first learner has learned and written a checkpoint: kill it then.
    let started = Instant::now();
    while !checkpoint.exists() {
        assert!(started.elapsed() < Duration::from_secs(120), "the first learner wrote no checkpoint in 120 s");
        assert!(first_learner.child().try_wait().unwrap().is_none(), "the first learner exited");
        std::thread::sleep(Duration::from_millis(20));
    }
    first_learner.child().kill().unwrap(); // SIGKILL
    first_learner.child().wait().unwrap();
    for actor in actors.iter_mut() {
        assert!(actor.child().try_wait().unwrap().is_none(), "an actor ended before the learner was killed");
    }
    let kept = std::fs::read(&checkpoint).unwrap();
    let checkpointed = checkpoint_updates(&checkpoint);
    assert!(checkpointed >= 40, "{checkpointed}");

    // The second learner is caught inside its first checkpoint write: its
    // temporary file is a FIFO this test reads a little of, then it is killed.
    let mut second_learner = learner(true, false);
    let temporary = learner_dir.join(format!(".learner.safetensors.tmp-{}", second_learner.child().id()));
    let temporary_path = temporary.clone();
    let fifo = std::ffi::CString::new(temporary.to_str().unwrap()).unwrap();
    // SAFETY: a C string this function owns.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0, "mkfifo {}", temporary.display());
    let (began, writing) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut file = std::fs::File::open(&temporary).unwrap(); // until the learner opens it to write
        let mut head = [0u8; 1024];
        file.read_exact(&mut head).unwrap();
        let _ = began.send(());
        // Read no more: the learner stays inside its write until killed.
        std::thread::park();
    });
    writing.recv_timeout(Duration::from_secs(120)).expect("the second learner began no checkpoint write in 120 s");
    second_learner.child().kill().unwrap(); // SIGKILL mid-write
    second_learner.child().wait().unwrap();
    // What a killed writer leaves behind; the learners to come write their own.
    std::fs::remove_file(&temporary_path).unwrap();
    assert_eq!(std::fs::read(&checkpoint).unwrap(), kept, "a write killed midway changed the checkpoint");

    let third_learner = learner(true, true);
    let mut streams = Vec::new();
    for actor in actors {
        let report = json_of(actor.wait_with_output_within(Duration::from_secs(180)));
        assert_eq!(report["total_steps"], 300);
        assert_eq!(report["link"]["unconfirmed"], 0, "{report}");
        assert_eq!(report["link"]["learners_heard"], 3, "each actor heard all three learners: {report}");
        streams.push(report["link"]["stream_items"].as_u64().unwrap());
    }
    let learner = json_of(third_learner.wait_with_output_within(Duration::from_secs(60)));
    assert_eq!(learner["resumed_from_updates"], checkpointed, "the third learner resumed from the first one's checkpoint: {learner}");
    for (i, items) in streams.iter().enumerate() {
        let got = &learner["actors"][(i + 1).to_string()];
        assert_eq!(got["received"].as_u64().unwrap(), *items, "actor {}: {learner}", i + 1);
        assert_eq!(got["malformed"], 0);
        assert_eq!(got["held_early"], 0);
    }
    // Each stream: one demo of up to 20 steps and 300 online steps, each with its items.
    assert!(streams.iter().all(|&n| n >= 300 + 300), "{streams:?}");
    assert!(learner["updates"].as_u64().unwrap() > checkpointed, "{learner}");
    assert!(checkpoint_updates(&checkpoint) > checkpointed, "the third learner's final checkpoint");
}
