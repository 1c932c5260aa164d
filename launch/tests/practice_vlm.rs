//! `rrl practice` with a `Vlm(..)` reward on the simulated Panda: the
//! reward camera is rendered on a camera thread and scored by the emulated
//! VLM endpoint; every recorded step carries the estimate of its frame
//! (as logged in learned_rewards.csv), or 0 when none came in time. An
//! endpoint that stops answering (killed, or slower than its timeout)
//! pauses practice with a clear message; it resumes when answers return.

mod common;

use std::path::Path;
use std::process::Command;

fn launch_file(dir: &Path, url: &str, task: &str, timeout_ms: u64) -> std::path::PathBuf {
    let path = dir.join("vlm_reach.ron");
    std::fs::write(
        &path,
        format!(
            r#"(
    name: "vlm_reach",
    namespace: "panda",
    robot: Sim((task: PandaReach, seed: 1)),
    cameras: [(name: "front", source: Sim("front"), width: 32, height: 32)],
    safety: (preset: Some(FrankaPanda)),
    learner: (device: Cpu, hidden: [32, 32], critics: 2, batch_size: 32, utd: 1, warmup_steps: 20, initial_temperature: 0.01),
    reward: Vlm((endpoint: "{url}", model: "emulated-vlm", task: "{task}", cameras: ["front"], api_key_env: Some("RRL_TEST_VLM_KEY"), timeout_ms: {timeout_ms}, max_concurrent: 2)),
    practice: (max_episode_steps: 12, demo_episodes: 1, total_steps: 100000, eval_episodes: 1),
)"#
        ),
    )
    .unwrap();
    path
}

fn practice_command(config: &Path, run_dir: &Path, steps: u32) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rrl"));
    command
        .args(["practice", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap(), "--steps", &steps.to_string(), "--eval-episodes", "1"])
        .env("RRL_TEST_VLM_KEY", "test-key")
        .env("RRL_LOG", "warn")
        .env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        .env("ROS_DOMAIN_ID", (20 + (std::process::id() + 89) % 80).to_string());
    command
}

fn practise(config: &Path, run_dir: &Path, steps: u32) -> serde_json::Value {
    let out = practice_command(config, run_dir, steps).output().unwrap();
    assert!(out.status.success(), "rrl practice failed: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// Rewards of the practice episodes' steps, in order, per episode.
fn recorded_rewards(run_dir: &Path) -> Vec<Vec<f32>> {
    recording::list_episodes(&run_dir.join("episodes")).unwrap().iter().map(|p| recording::read_episode(p).unwrap().steps.iter().map(|s| s.reward).collect()).collect()
}

#[test]
fn practice_learns_from_vlm_progress_joined_to_its_steps_and_counts_rewards_too_late_as_missing() {
    let emulator = common::VlmEmulator::start();
    let dir = tempfile::tempdir().unwrap();

    // A prompt model: most steps get their frame's estimate.
    let run_dir = dir.path().join("prompt");
    let report = practise(&launch_file(dir.path(), &emulator.url(), "reach the red target", 4000), &run_dir, 36);
    let learned = &report["learned_rewards"];
    let (joined, missing) = (learned["joined"].as_u64().unwrap(), learned["missing"].as_u64().unwrap());
    assert_eq!(joined + missing, 36, "every online step is joined or counted missing: {report}");
    assert!(joined >= 18, "most steps should get their reward from a prompt model: {report}");
    assert!(learned["vlm"]["scored"].as_u64().unwrap() > 0, "{report}");
    // Env episode 1 is the demo, then practice.
    let (matched, zero, varied) = common::check_learned_rewards(&run_dir, 2);
    assert_eq!((matched, zero), (joined, missing), "the recorded rewards are the joined ones");
    assert!(varied, "the emulated VLM saw the scene change");

}

/// Waits until practice has begun (its first practice episode file exists).
fn wait_for_practice(run_dir: &Path) {
    let begun = std::time::Instant::now();
    while recording::list_episodes(&run_dir.join("episodes")).map_or(true, |e| e.is_empty()) {
        assert!(begun.elapsed().as_secs() < 120, "practice did not begin");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A running `rrl practice` whose log is read line by line as it comes,
/// so a test can wait for a message (an event) rather than for a time.
struct Streamed {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    log: String,
    stdout: std::thread::JoinHandle<String>,
}

impl Streamed {
    fn spawn(mut command: Command) -> Streamed {
        let mut child = command.stderr(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
            text
        });
        Streamed { child, lines, log: String::new(), stdout }
    }

    /// Whether a log line containing `text` came within `limit` of the
    /// previous one (false once the log ends or stays quiet that long).
    fn wait_for(&mut self, text: &str, limit: std::time::Duration) -> bool {
        while let Ok(line) = self.lines.recv_timeout(limit) {
            self.log.push_str(&line);
            self.log.push('\n');
            if line.contains(text) {
                return true;
            }
        }
        false
    }

    /// Waits for the process; its success, whole log and stdout.
    fn finish(mut self) -> (bool, String, String) {
        let status = self.child.wait().unwrap();
        self.log.extend(self.lines.iter().map(|l| l + "\n"));
        (status.success(), self.log, self.stdout.join().unwrap())
    }
}

/// The reward endpoint dies mid-practice and comes back where it was once
/// practice has said it paused: practice pauses with a clear message
/// instead of spending steps on rewards that cannot come, resumes when
/// answers return, and completes with every step recorded and joined to
/// its estimate or counted missing.
/// Fault matrix: reward endpoint dead | the VLM endpoint process killed mid-practice, restarted on its port | practice pauses, resumes when it answers | pause and resume said; joined + missing rewards == 60 steps, >= 30 joined
#[test]
fn practice_pauses_while_the_reward_endpoint_is_down_and_resumes_when_it_answers() {
    let emulator = common::VlmEmulator::start();
    let port = emulator.port;
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let config = launch_file(dir.path(), &emulator.url(), "reach the red target", 2000);
    let mut practice = Streamed::spawn(practice_command(&config, &run_dir, 60));
    wait_for_practice(&run_dir);
    drop(emulator);
    // Down until practice says it paused, however slowly steps come.
    let paused = practice.wait_for("the reward endpoint does not answer", std::time::Duration::from_secs(120));
    let _restarted = common::VlmEmulator::start_on(port);
    let resumed = paused && practice.wait_for("the reward endpoint answers again: practice resumes", std::time::Duration::from_secs(120));
    let (succeeded, log, stdout) = practice.finish();
    assert!(paused, "no pause message: {log}");
    assert!(resumed, "practice did not say it resumed: {log}");
    assert!(succeeded, "rrl practice failed: {log}");
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let learned = &report["learned_rewards"];
    let (joined, missing) = (learned["joined"].as_u64().unwrap(), learned["missing"].as_u64().unwrap());
    assert_eq!(joined + missing, 60, "every online step is joined or counted missing: {report}");
    // Only the few steps taken before the failures added up lost their rewards.
    assert!(joined >= 30, "{report}");
    let (matched, zero, _) = common::check_learned_rewards(&run_dir, 2);
    assert_eq!((matched, zero), (joined, missing), "the recorded rewards are the joined ones");
    assert_eq!(recorded_rewards(&run_dir).iter().map(Vec::len).sum::<usize>(), 60, "every practice step is recorded");
}

/// A model slower than its timeout answers nothing in time: its failures
/// pause practice (rather than train on missing rewards) with the same
/// message, and the steps recorded before it carry no reward.
#[test]
fn a_model_slower_than_its_timeout_pauses_practice() {
    let emulator = common::VlmEmulator::start();
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("slow");
    let mut practice = Streamed::spawn(practice_command(&launch_file(dir.path(), &emulator.url(), "slow reach", 150), &run_dir, 200));
    let paused = practice.wait_for("the reward endpoint does not answer", std::time::Duration::from_secs(60));
    // Paused for good while the model stays slow: a user stops it.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let running = practice.child.try_wait().unwrap().is_none();
    practice.child.kill().unwrap();
    let (_, log, _) = practice.finish();
    assert!(paused, "no pause message: {log}");
    assert!(running, "practice should wait, not end: {log}");
    let rewards: Vec<f32> = recorded_rewards(&run_dir).into_iter().flatten().collect();
    assert!(rewards.len() < 200, "practice went on through the outage: {} steps", rewards.len());
    assert!(rewards.iter().all(|r| *r == 0.0), "no estimate came in time: {rewards:?}");
}

/// `reward: Classifier((.., progress: Some(Vlm critic)))`: a classifier on
/// the policy's camera gives the sparse success and a VLM's progress adds
/// dense shaping — every recorded step's reward is the classifier's verdict
/// on its frames plus the VLM's estimate logged for that frame (the verdict
/// alone where none came in time), and the VLM's `done` ends nothing.
#[test]
fn a_classifier_with_vlm_progress_learns_its_verdict_plus_the_progress_shaping() {
    let emulator = common::VlmEmulator::start();
    let dir = tempfile::tempdir().unwrap();
    // A classifier of the policy's 32x32 camera, from a few labelled frames
    // of noise: its scores of this scene lie around 0.49, and a threshold
    // amid them makes both verdicts occur (checked below).
    let labelled = dir.path().join("labelled");
    common::synthetic_run(&labelled, 6, 32, |e, t| e % 2 == 0 && t > 14);
    let model = dir.path().join("success.safetensors");
    let trained = common::rrl_command(&["classifier", "train", labelled.to_str().unwrap(), "--out", model.to_str().unwrap(), "--steps", "20", "--min-per-class", "2"], "0").output().unwrap();
    assert!(trained.status.success(), "{}", String::from_utf8_lossy(&trained.stderr));
    let config = dir.path().join("classifier_vlm.ron");
    std::fs::write(
        &config,
        format!(
            r#"(
    name: "classifier_vlm",
    namespace: "panda",
    robot: Sim((task: PandaReach, seed: 1, observe_cameras: ["front"])),
    cameras: [(name: "front", source: Sim("front"), width: 32, height: 32)],
    safety: (preset: Some(FrankaPanda)),
    learner: (device: Cpu, hidden: [32, 32], critics: 2, batch_size: 32, utd: 1, warmup_steps: 20, pixels: (features: 16, filters: 8)),
    reward: Classifier((model: "{}", threshold: Some(0.4895), progress: Some((endpoint: "{}", model: "emulated-vlm", task: "reach the red target", cameras: ["front"], api_key_env: Some("RRL_TEST_VLM_KEY"), timeout_ms: 4000, max_concurrent: 2)))),
    practice: (max_episode_steps: 12, demo_episodes: 1, total_steps: 100000, eval_episodes: 1),
)"#,
            model.display(),
            emulator.url()
        ),
    )
    .unwrap();
    let run_dir = dir.path().join("run");
    let report = practise(&config, &run_dir, 36);
    let learned = &report["learned_rewards"];
    assert_eq!(learned["joined"].as_u64().unwrap() + learned["missing"].as_u64().unwrap(), 36, "{report}");
    assert!(learned["classifier"]["scored"].as_u64().unwrap() >= 36, "{report}");
    assert!(learned["vlm"]["scored"].as_u64().unwrap() > 0, "{report}");
    let scorer = policies::classifier::FrameClassifier::load(&model, None).unwrap();
    let verdict = |step: &recording::EpisodeStep| -> f32 {
        let rgb = recording::frames::decode(step.next_frames.as_ref().unwrap()).unwrap().1;
        f32::from(u8::from(scorer.scores(&rgb).unwrap()[0] >= 0.4895))
    };
    let (shaped, unshaped, varied) = common::check_learned_rewards_over(&run_dir, 2, &verdict);
    assert_eq!(shaped + unshaped, 36);
    assert_eq!(unshaped, learned["vlm"]["shaping_missing"].as_u64().unwrap(), "{report}");
    assert!(shaped >= 18 && varied, "most steps carry the VLM's progress: {report}");
    // Only the classifier ends episodes: none ends early without its success.
    let mut verdicts = [0, 0];
    for path in recording::list_episodes(&run_dir.join("episodes")).unwrap() {
        let episode = recording::read_episode(&path).unwrap();
        for (i, step) in episode.steps.iter().enumerate() {
            let success = verdict(step) == 1.0;
            verdicts[usize::from(success)] += 1;
            assert_eq!(step.flags.terminated, success && i + 1 == episode.steps.len(), "{} step {i}", path.display());
        }
    }
    assert!(verdicts[0] > 0 && verdicts[1] > 0, "both verdicts occur (failures, successes): {verdicts:?}");
}
