//! `rrl practice` with a `Vlm(..)` reward on the simulated Panda: the
//! reward camera is rendered on a camera thread and scored by the emulated
//! VLM endpoint; every recorded step carries the estimate of its frame
//! (as logged in learned_rewards.csv), or 0 when none came in time. A
//! model that answers after its deadline does not stop practice: its
//! rewards are counted as missing.

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

fn practise(config: &Path, run_dir: &Path, steps: u32) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_rrl"))
        .args(["practice", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap(), "--steps", &steps.to_string(), "--eval-episodes", "1"])
        .env("RRL_TEST_VLM_KEY", "test-key")
        .env("RRL_LOG", "warn")
        .env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        .env("ROS_DOMAIN_ID", (20 + (std::process::id() + 89) % 80).to_string())
        .output()
        .unwrap();
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

    // A model slower than its timeout: every reward is missing, practice still completes.
    let slow_dir = dir.path().join("slow");
    let report = practise(&launch_file(dir.path(), &emulator.url(), "slow reach", 150), &slow_dir, 12);
    assert_eq!(report["total_steps"], 12, "{report}");
    assert_eq!(report["learned_rewards"]["missing"], 12, "{report}");
    assert!(report["learned_rewards"]["vlm"]["failed"].as_u64().unwrap() > 0, "{report}");
    assert!(recorded_rewards(&slow_dir).iter().flatten().all(|r| *r == 0.0));
}
