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

    let emulator = common::VlmEmulator::start();
    let out = Command::new(env!("CARGO_BIN_EXE_rrl"))
        .args(["reward-eval", episodes.to_str().unwrap(), "--task", "make the scene red", "--source", "vlm", "--model", "emulated-vlm", "--api-key-env", "RRL_TEST_VLM_KEY", "--size", "16"])
        .args(["--endpoint", &emulator.url(), "--labels", labels.to_str().unwrap()])
        .env("RRL_TEST_VLM_KEY", "test-key")
        .env("RRL_LOG", "warn")
        .output()
        .unwrap();
    drop(emulator);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_name = |name: &str| report["per_episode"].as_array().unwrap().iter().find(|e| e["episode"] == name).unwrap().clone();
    assert!(by_name("ep1_success")["voc"].as_f64().unwrap() > 0.99);
    assert!(by_name("ep1_success")["voc_reversed"].as_f64().unwrap() < -0.99);
    assert!(by_name("ep3_setback")["negative_delta_rate"].as_f64().unwrap() > 0.1, "the setback shows as a negative delta");
    assert_eq!(report["success"]["f1"].as_f64().unwrap(), 1.0, "{}", report["success"]);
    assert!(report["mean_voc_reversed"].as_f64().unwrap() < 0.0);
}
