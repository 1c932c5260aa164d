//! `rrl classifier train|eval` on the user's own labelled frames: the
//! simulated Panda's pick-cube recorded with `rrl record-sim --run-dir`
//! (every step's wrist-camera frame labelled by the simulator's success),
//! a classifier trained on some episodes and judged on episodes of seeds
//! of their own, then practice on its reward (`reward: Classifier(..)`);
//! and the refusals of bad input.

mod common;

use std::path::Path;

fn domain() -> String {
    (20 + (std::process::id() + 13) % 80).to_string()
}

/// Pick-cube seen by the wrist camera at `side` pixels, with `reward`.
fn pick_launch_file(dir: &Path, side: u32, reward: &str) -> std::path::PathBuf {
    let path = dir.join(format!("pick_wrist_{side}.ron"));
    std::fs::write(
        &path,
        format!(
            r#"(
    name: "classifier_pick",
    namespace: "panda",
    robot: Sim((task: PandaPickCube, seed: 0, observe_cameras: ["wrist"])),
    cameras: [(name: "wrist", source: Sim("handcam_rgb"), width: {side}, height: {side})],
    safety: (preset: Some(FrankaPanda)),
    learner: (device: Cpu, hidden: [32, 32], critics: 2, batch_size: 32, warmup_steps: 40, pixels: (features: 16, filters: 8)),
    reward: {reward},
    practice: (max_episode_steps: 80, demo_episodes: 3, eval_episodes: 1),
)"#
        ),
    )
    .unwrap();
    path
}

/// Runs `rrl args`; its JSON report, or its stderr as the error.
fn rrl(args: &[&str]) -> Result<serde_json::Value, String> {
    common::rrl_json(args, &domain())
}

fn record(config: &Path, run: &Path, episodes: &str, noisy: &str, random: &str, seed: &str) -> serde_json::Value {
    rrl(&["record-sim", "--config", config.to_str().unwrap(), "--run-dir", run.to_str().unwrap(), "--episodes", episodes, "--noisy-episodes", noisy, "--random-episodes", random, "--seed", seed]).unwrap()
}

#[test]
fn a_classifier_of_labelled_sim_frames_beats_the_majority_class_on_episodes_it_never_saw() {
    let dir = tempfile::tempdir().unwrap();
    let config = pick_launch_file(dir.path(), 32, "Task");
    let (train_run, test_run) = (dir.path().join("train"), dir.path().join("test"));
    let recorded = record(&config, &train_run, "10", "2", "2", "100");
    assert!(recorded["success_frames"].as_u64().unwrap() >= 20, "the expert succeeds and holds: {recorded}");
    let tested = record(&config, &test_run, "5", "1", "1", "2000");

    // Every step's frames carry the simulator's verdict, and only success steps say success.
    for path in recording::list_episodes(&train_run.join("labelled")).unwrap() {
        let episode = recording::read_episode(&path).unwrap();
        assert!(episode.steps.iter().all(|s| s.flags.label.is_some() && s.next_frames.is_some()), "{}", path.display());
        let labelled_success = episode.steps.iter().any(|s| s.flags.label == Some(true));
        assert_eq!(labelled_success, episode.outcome.unwrap().success.unwrap(), "{}", path.display());
    }

    let model = dir.path().join("models/success.safetensors");
    // Ten episodes are few: a threshold for 0.95 precision on them keeps some recall.
    let trained = rrl(&["classifier", "train", train_run.to_str().unwrap(), "--out", model.to_str().unwrap(), "--steps", "400", "--min-precision", "0.95"]).unwrap();
    assert_eq!(trained["layout"], "1 camera(s) of 32x32", "{trained}");
    assert!(trained["episodes"]["held_out"].as_u64().unwrap() >= 2, "whole episodes are held out: {trained}");
    let threshold = trained["threshold"].as_f64().unwrap();
    assert!(threshold > 0.0 && threshold < 1.0, "{trained}");

    let sheet = dir.path().join("wrong.png");
    let judged = rrl(&["classifier", "eval", test_run.to_str().unwrap(), "--model", model.to_str().unwrap(), "--sheet", sheet.to_str().unwrap()]).unwrap();
    assert_eq!(judged["frames"], tested["frames"], "every test frame is judged: {judged}");
    assert_eq!(judged["success_frames"], tested["success_frames"], "{judged}");
    // Always answering the majority class (failure) has balanced accuracy
    // 0.5, F1 0 and no precision to speak of.
    let metric = |name: &str| judged[name].as_f64().unwrap();
    assert!(metric("balanced_accuracy") >= 0.75, "against 0.5 for the majority class: {judged}");
    assert!(metric("f1") >= 0.6, "against 0 for the majority class: {judged}");
    assert!(metric("precision") >= 0.8, "the threshold is chosen for precision: {judged}");

    // The sheet shows exactly the frames it got wrong (up to 64), 8 to a row.
    let confusion = &judged["confusion"];
    let wrong = (confusion["false_positives"].as_u64().unwrap() + confusion["false_negatives"].as_u64().unwrap()).min(64) as u32;
    assert_eq!(judged["sheet_frames"].as_u64().unwrap() as u32, wrong);
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&sheet).unwrap()));
    let info = decoder.read_info().unwrap().info().clone();
    let tile = 32 + 4;
    assert_eq!((info.width, info.height), (wrong.clamp(1, 8) * tile, wrong.div_ceil(8).max(1) * tile));

    // `rrl reward-eval` takes it as a reward source: its probability rises
    // with the true progress of recorded frame folders, and its verdicts
    // judge whole episodes against their labels.
    let folders = dir.path().join("frames");
    rrl(&["record-sim", "--config", config.to_str().unwrap(), "--out", folders.to_str().unwrap(), "--episodes", "4", "--random-episodes", "1", "--seed", "3000"]).unwrap();
    let scored = rrl(&["reward-eval", folders.to_str().unwrap(), "--task", "pick up the cube", "--source", "classifier", "--model", model.to_str().unwrap(), "--size", "32"]).unwrap();
    assert_eq!(scored["source"], "classifier", "{scored}");
    let success = &scored["success"];
    let judged: u64 = ["true_positives", "false_positives", "false_negatives"].iter().map(|k| success[*k].as_u64().unwrap()).sum();
    assert!(judged >= 3, "the episodes are judged: {scored}");
    assert!(scored["mean_progress_spearman"].as_f64().unwrap() > 0.3, "{scored}");
    let err = rrl(&["reward-eval", folders.to_str().unwrap(), "--task", "pick", "--source", "classifier", "--model", model.to_str().unwrap(), "--size", "64"]).unwrap_err();
    assert!(err.contains("takes 1 camera(s) of 32x32") && err.contains("--size 32"), "{err}");

    // Practice on its reward: every step's reward is the classifier's
    // verdict on the frames recorded with it, and a success ends the episode.
    let practice_config = pick_launch_file(dir.path(), 32, &format!("Classifier((model: \"{}\"))", model.display()));
    let run = dir.path().join("practice");
    let report = rrl(&["practice", "--config", practice_config.to_str().unwrap(), "--run-dir", run.to_str().unwrap(), "--steps", "120"]).unwrap();
    let learned = &report["learned_rewards"];
    assert_eq!((learned["joined"].as_u64(), learned["missing"].as_u64()), (Some(120), Some(0)), "every step waited for its verdict: {report}");
    let classifier = &learned["classifier"];
    assert!(classifier["scored"].as_u64().unwrap() >= 120, "{report}");
    let truth = &classifier["against_truth"];
    let judged: u64 = ["true_positives", "false_positives", "true_negatives", "false_negatives"].iter().map(|k| truth[*k].as_u64().unwrap()).sum();
    assert_eq!(judged, classifier["scored"].as_u64().unwrap(), "every verdict is counted against the simulator's truth: {report}");
    let negatives = truth["false_positives"].as_u64().unwrap() + truth["true_negatives"].as_u64().unwrap();
    assert_eq!(truth["false_positive_rate"].as_f64().unwrap(), truth["false_positives"].as_u64().unwrap() as f64 / negatives as f64, "{report}");
    let scorer = policies::classifier::FrameClassifier::load(&model, None).unwrap();
    // Demos (the scripted expert, which picks the cube) and practice alike.
    let (mut practice_steps, mut successes) = (0, 0);
    for folder in ["demos", "episodes"] {
        for path in recording::list_episodes(&run.join(folder)).unwrap() {
            let episode = recording::read_episode(&path).unwrap();
            // The simulator's success ends nothing (as on a real arm, the classifier does).
            assert!(episode.steps.len() <= 80, "{}: {} steps, past the time limit", path.display(), episode.steps.len());
            let cut_short = folder == "demos" && episode.steps.len() < 80 && !episode.steps.last().unwrap().flags.terminated;
            let outcome = episode.outcome.as_ref().unwrap();
            assert!(!(cut_short && outcome.success == Some(true)), "{}: the simulator's success ended the episode at step {}: {outcome:?}", path.display(), episode.steps.len());
            for (i, step) in episode.steps.iter().enumerate() {
                let rgb = recording::frames::decode(step.next_frames.as_ref().unwrap()).unwrap().1;
                let success = scorer.scores(&rgb).unwrap()[0] >= scorer.threshold;
                assert_eq!(step.reward, if success { 1.0 } else { 0.0 }, "{} step {i}: the reward is the classifier's verdict", path.display());
                // The first success ends the episode; no other step is terminal.
                assert_eq!(step.flags.terminated, success, "{} step {i}", path.display());
                assert!(!success || i + 1 == episode.steps.len(), "{} step {i}: a success ends the episode", path.display());
                practice_steps += usize::from(folder == "episodes");
                successes += u64::from(success);
            }
        }
    }
    assert_eq!(practice_steps, 120);
    assert!(successes >= 1, "the expert's demos succeed in the classifier's eyes: {report}");
    assert_eq!(successes, truth["true_positives"].as_u64().unwrap() + truth["false_positives"].as_u64().unwrap(), "{report}");

    // With `terminate: false` only the time limit ends an episode, also
    // one whose cube the scripted expert holds up (the task's own success).
    let held = pick_launch_file(dir.path(), 32, &format!("Classifier((model: \"{}\", terminate: false))", model.display()));
    let run = dir.path().join("practice_no_terminate");
    rrl(&["practice", "--config", held.to_str().unwrap(), "--run-dir", run.to_str().unwrap(), "--steps", "1"]).unwrap();
    let demos = recording::list_episodes(&run.join("demos")).unwrap();
    assert_eq!(demos.len(), 3, "the three demos were recorded");
    for path in demos {
        let steps = recording::read_episode(&path).unwrap().steps;
        assert_eq!(steps.len(), 80, "{}: a demo runs to its time limit", path.display());
        assert!(steps.iter().all(|s| !s.flags.terminated) && steps.last().unwrap().flags.truncated, "{}: truncated at the limit, never terminal", path.display());
    }
}

/// Fault matrix: corrupt checkpoint | a byte of the classifier file flipped | `rrl classifier eval` and `rrl practice` refuse at start-up | `checksum mismatch` naming the file and the launch file
#[test]
fn bad_input_is_refused_naming_what_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();

    // No labels at all.
    std::fs::create_dir_all(dir.path().join("empty")).unwrap();
    let err = rrl(&["classifier", "train", &path("empty"), "--out", &path("c.safetensors")]).unwrap_err();
    assert!(err.contains("no labelled frames in") && err.contains("rrl record-sim --run-dir"), "{err}");

    // One episode with successes: nothing of that class to hold out.
    common::synthetic_run(&dir.path().join("one"), 6, 16, |e, t| e == 0 && t > 15);
    let err = rrl(&["classifier", "train", &path("one"), "--out", &path("c.safetensors")]).unwrap_err();
    assert!(err.contains("6 labelled episodes, 1 with success frames"), "{err}");

    // Too few frames of a class to train on.
    common::synthetic_run(&dir.path().join("few"), 6, 16, |_, t| t == 19);
    let err = rrl(&["classifier", "train", &path("few"), "--out", &path("c.safetensors"), "--min-per-class", "10"]).unwrap_err();
    assert!(err.contains("4 success and 76 failure frames: each class needs at least 10"), "{err}");
    assert!(!dir.path().join("c.safetensors").exists(), "nothing written");

    // A classifier of 16x16 frames trains (the class balance makes one success per episode enough to run)...
    let trained = rrl(&["classifier", "train", &path("few"), "--out", &path("c.safetensors"), "--min-per-class", "2", "--steps", "5"]).unwrap();
    assert_eq!(trained["layout"], "1 camera(s) of 16x16", "{trained}");
    // ... and is refused on frames of another size, naming both.
    common::synthetic_run(&dir.path().join("bigger"), 2, 20, |_, t| t == 19);
    let err = rrl(&["classifier", "eval", &path("bigger"), "--model", &path("c.safetensors")]).unwrap_err();
    assert!(err.contains("c.safetensors: takes 1 camera(s) of 16x16; the runs' frames are 1 camera(s) of 20x20"), "{err}");
    // Runs of two layouts cannot make one classifier.
    let err = rrl(&["classifier", "train", &path("few"), &path("bigger"), "--out", &path("d.safetensors")]).unwrap_err();
    assert!(err.contains("its frames are 1 camera(s) of 20x20") && err.contains("has 1 camera(s) of 16x16"), "{err}");

    // A damaged file is named, with what is wrong.
    let mut bytes = std::fs::read(path("c.safetensors")).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(path("damaged.safetensors"), &bytes).unwrap();
    let err = rrl(&["classifier", "eval", &path("few"), "--model", &path("damaged.safetensors")]).unwrap_err();
    assert!(err.contains("damaged.safetensors") && err.contains("checksum mismatch"), "{err}");
    // Practice refuses, at start-up, a classifier of other frames than the
    // cameras it is to score, and a damaged one.
    for (model, says) in [("c.safetensors", "c.safetensors takes 1 camera(s) of 16x16; the cameras it is to score give 1 camera(s) of 20x20"), ("damaged.safetensors", "checksum mismatch")] {
        let config = pick_launch_file(dir.path(), 20, &format!("Classifier((model: \"{model}\"))"));
        let err = rrl(&["practice", "--config", config.to_str().unwrap(), "--run-dir", &path(&format!("practice_{model}")), "--steps", "10"]).unwrap_err();
        assert!(err.contains(says) && err.contains(model), "{err}");
        assert!(err.contains("pick_wrist_20.ron"), "names the launch file: {err}");
    }
    // Another checkpoint (a behaviour-cloning policy's shape) is not a classifier.
    common::write_always_firing_critic(&dir.path().join("critic.safetensors"), 3);
    let err = rrl(&["classifier", "eval", &path("few"), "--model", &path("critic.safetensors")]).unwrap_err();
    assert!(err.contains("critic.safetensors"), "{err}");
}
