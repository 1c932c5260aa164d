//! `rrl trunk train` on the user's own recorded frames: the simulated
//! Panda's pick-cube recorded with `rrl record-sim --run-dir` (its wrist
//! camera), a trunk trained on some episodes and judged on the others
//! beside a head that sees the state alone; then practice through that
//! frozen trunk (a base cloned from pixel demos, a residual), whose
//! scripted demos see the cube the policy does not; and the refusals of
//! bad input.

mod common;

use std::path::{Path, PathBuf};

fn domain() -> String {
    (20 + (std::process::id() + 29) % 80).to_string()
}

fn rrl(args: &[&str]) -> Result<serde_json::Value, String> {
    common::rrl_json(args, &domain())
}

/// Pick-cube seen by the wrist camera at `side` pixels; with `trunk`, the
/// policy's features come from that frozen trunk, computed once per frame.
fn pick_launch_file(dir: &Path, side: u32, trunk: Option<&Path>) -> PathBuf {
    let pixels = match trunk {
        Some(trunk) => format!("(encoder: Frozen(\"{}\"), shift_pixels: Some(0), features: 16)", trunk.display()),
        None => "(features: 16, filters: 8)".into(),
    };
    let path = dir.join(format!("pick_wrist_{side}_{}.ron", trunk.is_some()));
    std::fs::write(
        &path,
        format!(
            r#"(
    name: "trunk_pick",
    namespace: "panda",
    robot: Sim((task: PandaPickCube, seed: 0, observe_cameras: ["wrist"])),
    cameras: [(name: "wrist", source: Sim("handcam_rgb"), width: {side}, height: {side})],
    safety: (preset: Some(FrankaPanda)),
    learner: (device: Cpu, hidden: [32, 32], critics: 2, batch_size: 32, warmup_steps: 40, pixels: {pixels}),
    reward: Task,
    practice: (max_episode_steps: 80, demo_episodes: 2, eval_episodes: 1,
        base: BehaviourCloning((steps: 100, horizon: 4, execute: 2, residual_scale: 2.0))),
)"#
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_trunk_of_recorded_frames_sees_what_the_state_cannot_and_serves_pixel_practice() {
    let dir = tempfile::tempdir().unwrap();
    let recording = pick_launch_file(dir.path(), 32, None);
    let run = dir.path().join("recorded");
    let recorded = rrl(&["record-sim", "--config", recording.to_str().unwrap(), "--run-dir", run.to_str().unwrap(), "--episodes", "6", "--noisy-episodes", "2", "--seed", "100"]).unwrap();
    assert_eq!(recorded["episodes"], 6, "{recorded}");

    let trunk = dir.path().join("trunks/wrist.safetensors");
    let trained = rrl(&["trunk", "train", run.to_str().unwrap(), "--out", trunk.to_str().unwrap(), "--steps", "100", "--features", "16", "--filters", "8", "--device", "cpu"]).unwrap();
    assert_eq!(trained["layout"], "1 camera(s) of 32x32", "{trained}");
    let episodes = &trained["episodes"];
    assert_eq!((episodes["train"].as_u64(), episodes["held_out"].as_u64()), (Some(5), Some(1)), "whole episodes held out: {trained}");
    // Every recorded step is a row, trained on or judged. (That the frames
    // add what the state lacks is the unit tests' and the benchmark's: a
    // few CI-sized episodes cannot show it reliably.)
    let losses = &trained["losses"];
    let rows = losses["train_rows"].as_u64().unwrap() + losses["held_out_rows"].as_u64().unwrap();
    assert_eq!(rows, recorded["frames"].as_u64().unwrap(), "{trained}");
    for name in ["held_out_loss", "held_out_state_only_loss", "held_out_mean_loss"] {
        assert!(losses[name].as_f64().unwrap() > 0.0, "{name}: {trained}");
    }
    let fingerprint = policies::pixels::file_fingerprint(&trunk).unwrap();
    assert_eq!(trained["fingerprint"], format!("{fingerprint:#018x}"), "{trained}");

    // A success classifier on the same frozen trunk: its features are the
    // trunk's, and the classifier remembers which trunk it was made on.
    let classifier = dir.path().join("classifier.safetensors");
    let (trunk_arg, classifier_arg) = (trunk.to_str().unwrap(), classifier.to_str().unwrap());
    let trained = rrl(&["classifier", "train", run.to_str().unwrap(), "--out", classifier_arg, "--trunk", trunk_arg, "--steps", "20", "--min-per-class", "2"]).unwrap();
    assert_eq!(trained["encoder"], "frozen trunk", "{trained}");
    let judged = rrl(&["classifier", "eval", run.to_str().unwrap(), "--model", classifier_arg, "--trunk", trunk_arg]).unwrap();
    assert!(judged["frames"].as_u64().unwrap() > 0, "{judged}");
    let err = rrl(&["classifier", "eval", run.to_str().unwrap(), "--model", classifier_arg]).unwrap_err();
    assert!(err.contains("made on a frozen trunk") && err.contains("name that trunk's file"), "{err}");

    // Practice through the frozen trunk: the base is cloned from pixel demos
    // and a residual practises on it. The scripted demonstrator acts on the
    // simulator's full state, the cube's place included, though the policy
    // sees only the camera.
    let config = pick_launch_file(dir.path(), 32, Some(&trunk));
    let practice = dir.path().join("practice");
    let report = rrl(&["practice", "--config", config.to_str().unwrap(), "--run-dir", practice.to_str().unwrap(), "--steps", "60"]).unwrap();
    assert_eq!(report["total_steps"], 60, "{report}");
    assert_eq!(report["base"]["demo_successes"], 2, "the demonstrator sees the cube: {report}");
    // A residual of scale 2 can play any action, so the residual's demos are the demonstrator's too.
    for folder in ["base/demos", "demos"] {
        let demos = recording::list_episodes(&practice.join(folder)).unwrap();
        assert_eq!(demos.len(), 2, "{folder}");
        let picked = demos.iter().filter(|path| recording::read_episode(path).unwrap().outcome.unwrap().success == Some(true)).count();
        assert!(picked >= 1, "{folder}: the scripted demos pick the cube ({picked} of 2)");
    }

    // The same trunk for a camera of another size is refused at start-up, naming both.
    let other = pick_launch_file(dir.path(), 24, Some(&trunk));
    let other_run = dir.path().join("other");
    let err = rrl(&["practice", "--config", other.to_str().unwrap(), "--run-dir", other_run.to_str().unwrap(), "--steps", "10"]).unwrap_err();
    assert!(err.contains("wrist.safetensors") && err.contains("trained on frames of 1 camera(s) of 32x32; the policy sees 1 camera(s) of 24x24"), "{err}");
    assert!(err.contains("pick_wrist_24_true.ron"), "names the launch file: {err}");
    assert!(recording::list_episodes(&other_run.join("base/demos")).unwrap().is_empty(), "refused before any demo is recorded");
}

#[test]
fn runs_without_frames_are_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let err = rrl(&["trunk", "train", &path("missing"), "--out", &path("t.safetensors")]).unwrap_err();
    assert!(err.contains("missing: no such run folder"), "{err}");
    std::fs::create_dir_all(dir.path().join("empty")).unwrap();
    let err = rrl(&["trunk", "train", &path("empty"), "--out", &path("t.safetensors")]).unwrap_err();
    assert!(err.contains("no episodes with camera frames in") && err.contains("observe_cameras"), "{err}");
    // Labelled frames without the first observation's frames are not a policy's observations.
    common::synthetic_run(&dir.path().join("labelled_only"), 2, 16, |_, _| false);
    let err = rrl(&["trunk", "train", &path("labelled_only"), "--out", &path("t.safetensors")]).unwrap_err();
    assert!(err.contains("(2 without)"), "{err}");
    assert!(!dir.path().join("t.safetensors").exists(), "nothing written");
}
