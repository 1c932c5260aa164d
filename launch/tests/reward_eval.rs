//! `rrl reward-eval` on recorded episodes (folders of PNG frames) scored by
//! the VLM progress critic through an emulated OpenAI-compatible endpoint.

mod common;

use std::path::Path;
use std::process::Command;

fn write_episode(folder: &Path, reds: &[u8]) {
    std::fs::create_dir_all(folder).unwrap();
    for (i, &red) in reds.iter().enumerate() {
        let rgb: Vec<u8> = (0..32 * 32).flat_map(|p| [red, (p % 200) as u8, 30]).collect();
        std::fs::write(folder.join(format!("{i:04}.png")), rewards::encode::png_rgb(32, 32, &rgb)).unwrap();
    }
}

/// `rrl reward-eval` of the frame folders in `episodes` by the VLM source
/// against the emulated endpoint; its report.
fn score_with_the_emulated_vlm(episodes: &Path, task: &str, size: &str, extra: &[&str]) -> serde_json::Value {
    let emulator = common::VlmEmulator::start();
    let url = emulator.url();
    let mut args = vec!["reward-eval", episodes.to_str().unwrap(), "--task", task, "--source", "vlm", "--model", "emulated-vlm", "--api-key-env", "RRL_TEST_VLM_KEY", "--size", size, "--endpoint", &url];
    args.extend_from_slice(extra);
    let out = common::rrl_command(&args, &(20 + std::process::id() % 80).to_string()).output().unwrap();
    drop(emulator);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn reward_eval_reports_voc_reversed_voc_and_success_f1() {
    let dir = tempfile::tempdir().unwrap();
    let episodes = dir.path().join("episodes");
    // A success (steady progress to full red), a failure (stalls low), and a success with one setback.
    write_episode(&episodes.join("ep1_success"), &[0, 40, 80, 120, 160, 200, 255]);
    write_episode(&episodes.join("ep2_failure"), &[0, 30, 50, 40, 60, 50, 60]);
    write_episode(&episodes.join("ep3_setback"), &[0, 60, 40, 120, 180, 255, 255]);
    let labels = dir.path().join("labels.json");
    std::fs::write(&labels, r#"{"ep1_success": true, "ep2_failure": false, "ep3_setback": true}"#).unwrap();

    let report = score_with_the_emulated_vlm(&episodes, "make the scene red", "16", &["--labels", labels.to_str().unwrap()]);
    let by_name = |name: &str| report["per_episode"].as_array().unwrap().iter().find(|e| e["episode"] == name).unwrap().clone();
    assert!(by_name("ep1_success")["voc"].as_f64().unwrap() > 0.99);
    assert!(by_name("ep1_success")["voc_reversed"].as_f64().unwrap() < -0.99);
    assert!(by_name("ep3_setback")["negative_delta_rate"].as_f64().unwrap() > 0.1, "the setback shows as a negative delta");
    assert_eq!(report["success"]["f1"].as_f64().unwrap(), 1.0, "{}", report["success"]);
    assert!(report["mean_voc_reversed"].as_f64().unwrap() < 0.0);
}

const SIM_REACH: &str = r#"(
    name: "reach_recording",
    robot: Sim((task: PandaReach, seed: 2)),
    cameras: [(name: "front", source: Sim("front"), width: 64, height: 64)],
    safety: (preset: Some(FrankaPanda)),
    practice: (max_episode_steps: 25),
)"#;

/// Spearman's rank correlation with averaged ranks for ties, computed by
/// numpy in the venv: an independent check of what `rrl reward-eval` says.
fn numpy_spearman(x: &[f64], y: &[f64]) -> f64 {
    let script = r#"
import json, sys
import numpy as np
x, y = json.loads(sys.argv[1]), json.loads(sys.argv[2])
def ranks(v):
    v = np.asarray(v, dtype=float)
    order = np.argsort(v, kind="mergesort")
    r = np.empty(len(v))
    i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and v[order[j + 1]] == v[order[i]]:
            j += 1
        r[order[i:j + 1]] = (i + j) / 2.0
        i = j + 1
    return r
print(np.corrcoef(ranks(x), ranks(y))[0, 1])
"#;
    let out = Command::new(common::venv_python()).args(["-c", script, &serde_json::to_string(x).unwrap(), &serde_json::to_string(y).unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn rendered_sim_episodes_carry_true_progress_that_reward_eval_correlates_with() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("reach.ron");
    std::fs::write(&config, SIM_REACH).unwrap();
    let episodes = dir.path().join("episodes");
    let recorded = Command::new(env!("CARGO_BIN_EXE_rrl"))
        .args(["record-sim", "--config", config.to_str().unwrap(), "--out", episodes.to_str().unwrap(), "--episodes", "2", "--random-episodes", "1", "--seed", "3"])
        .env("RRL_LOG", "warn")
        .output()
        .unwrap();
    assert!(recorded.status.success(), "{}", String::from_utf8_lossy(&recorded.stderr));
    let labels: serde_json::Value = serde_json::from_slice(&std::fs::read(episodes.join("labels.json")).unwrap()).unwrap();
    assert_eq!(labels["episode_000"], true, "the scripted expert reaches its goal");
    let truth = |name: &str| -> Vec<f64> { std::fs::read_to_string(episodes.join(name).join("progress.csv")).unwrap().lines().map(|l| l.parse().unwrap()).collect() };
    let expert = truth("episode_000");
    let frames = std::fs::read_dir(episodes.join("episode_000")).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "png")).count();
    assert_eq!(expert.len(), frames, "one progress value per frame");
    assert_eq!(expert[0], 0.0);
    assert!(*expert.last().unwrap() > 0.85, "the expert's episode ends near its goal: {expert:?}");

    let report = score_with_the_emulated_vlm(&episodes, "reach the point", "32", &[]);
    let per_episode = report["per_episode"].as_array().unwrap();
    assert_eq!(per_episode.len(), 2);
    for episode in per_episode {
        let values: Vec<f64> = serde_json::from_value(episode["values"].clone()).unwrap();
        let true_progress: Vec<f64> = serde_json::from_value(episode["true_progress"].clone()).unwrap();
        assert_eq!(true_progress, truth(episode["episode"].as_str().unwrap()));
        match episode["progress_spearman"].as_f64() {
            Some(reported) => assert!((reported - numpy_spearman(&values, &true_progress)).abs() < 1e-9, "{}: {reported}", episode["episode"]),
            // Undefined only when one side is constant.
            None => assert!(values.windows(2).all(|w| w[0] == w[1]) || true_progress.windows(2).all(|w| w[0] == w[1])),
        }
    }
    // The labels beside the episodes were found and used.
    let positives = labels.as_object().unwrap().values().filter(|v| **v == true).count() as u64;
    let success = &report["success"];
    assert_eq!(success["true_positives"].as_u64().unwrap() + success["false_negatives"].as_u64().unwrap(), positives, "{success}");
}
