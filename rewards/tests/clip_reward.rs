//! CLIP-style reward and success classifier on TorchScript encoders that
//! the test setup exports with the venv's torch; expected rewards computed
//! independently with numpy by the same script.

use std::path::{Path, PathBuf};
use std::process::Command;

use rewards::{ClipReward, Frame, ImageEncoder, RewardSource, SuccessClassifier};
use rrl_types::Timestamp;

fn make_encoders(dir: &Path) -> serde_json::Value {
    let python = std::env::var_os("VIRTUAL_ENV").map(|v| PathBuf::from(v).join("bin/python")).unwrap_or_else(|| "python3".into());
    let out = Command::new(python).arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/make_encoders.py")).arg(dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn solid(rgb: [u8; 3], noise_seed: Option<u64>) -> Frame {
    let (w, h) = (20u32, 16u32);
    let mut state = noise_seed.unwrap_or(0).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let data: Vec<u8> = (0..w * h)
        .flat_map(|_| {
            rgb.map(|c| match noise_seed {
                None => c,
                Some(_) => {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (i32::from(c) + (state % 61) as i32 - 30).clamp(0, 255) as u8
                }
            })
        })
        .collect();
    Frame::new(Timestamp(1), w, h, data).unwrap()
}

#[test]
fn clip_reward_matches_the_vlm_rm_formula_computed_by_numpy() {
    let dir = tempfile::tempdir().unwrap();
    let spec = make_encoders(dir.path());
    let colours: Vec<[u8; 3]> = spec["colours"].as_array().unwrap().iter().map(|c| std::array::from_fn(|k| c[k].as_u64().unwrap() as u8)).collect();
    let frames: Vec<Frame> = colours.iter().map(|&c| solid(c, None)).collect();
    let refs: Vec<&Frame> = frames.iter().collect();
    for goal in ["a red cube", "a blue cube"] {
        for alpha in [0.0, 0.5, 1.0] {
            let mut reward = ClipReward::load(&dir.path().join("image_encoder.pt"), 8, 8, &dir.path().join("text_encoder.pt"), "a scene", alpha).unwrap();
            reward.reset(goal).unwrap();
            let got = reward.rewards(&refs).unwrap();
            // Python prints 0.0, 0.5, 1.0 as Rust's Debug does.
            let expected: Vec<f64> = spec["expected"][format!("{goal}|{alpha:?}")].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            for (g, e) in got.iter().zip(&expected) {
                assert!((g - e).abs() < 1e-5, "{goal} alpha {alpha}: {got:?} vs numpy {expected:?}");
            }
        }
    }
    // The goal's colour scores best.
    let mut reward = ClipReward::load(&dir.path().join("image_encoder.pt"), 8, 8, &dir.path().join("text_encoder.pt"), "a scene", 0.5).unwrap();
    reward.reset("a red cube").unwrap();
    let r = reward.rewards(&refs).unwrap();
    assert!(r[0] > r[2] && r[0] > r[4], "{r:?}");
    let estimate = reward.score(&[solid([255, 0, 0], None)]).unwrap();
    assert_eq!(estimate.stamp, Timestamp(1));
}

#[test]
fn mismatched_or_broken_encoders_are_refused_naming_the_file_and_shapes() {
    let dir = tempfile::tempdir().unwrap();
    make_encoders(dir.path());
    let err = ClipReward::load(&dir.path().join("image_encoder.pt"), 8, 8, &dir.path().join("text_encoder_5d.pt"), "a scene", 0.5).err().unwrap().to_string();
    assert!(err.contains("text_encoder_5d.pt") && err.contains("[5]") && err.contains("8 dimensions"), "{err}");
    let junk = dir.path().join("junk.pt");
    std::fs::write(&junk, b"not a model").unwrap();
    let err = ImageEncoder::load(&junk, 8, 8).err().unwrap().to_string();
    assert!(err.contains("junk.pt") && err.contains("TorchScript"), "{err}");
    let err = ClipReward::load(&dir.path().join("image_encoder.pt"), 8, 8, &dir.path().join("text_encoder.pt"), "a scene", 1.5).err().unwrap().to_string();
    assert!(err.contains("alpha"), "{err}");
}

#[test]
fn a_success_classifier_trained_on_labelled_frames_generalises_to_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    make_encoders(dir.path());
    let encoder = || ImageEncoder::load(&dir.path().join("image_encoder.pt"), 8, 8).unwrap();
    // Success: the red cube in view (reddish frames); failure: bluish or grey.
    let sample = |i: u64| -> (Frame, bool) {
        match i % 3 {
            0 => (solid([200, 60, 50], Some(i)), true),
            1 => (solid([60, 70, 190], Some(i)), false),
            _ => (solid([120, 120, 120], Some(i)), false),
        }
    };
    let train: Vec<(Frame, bool)> = (0..60).map(sample).collect();
    let test: Vec<(Frame, bool)> = (1000..1060).map(sample).collect();
    let frames: Vec<&Frame> = train.iter().map(|(f, _)| f).collect();
    let labels: Vec<bool> = train.iter().map(|(_, l)| *l).collect();
    let mut classifier = SuccessClassifier::train(encoder(), &frames, &labels, 400, 0.5).unwrap();
    let test_frames: Vec<&Frame> = test.iter().map(|(f, _)| f).collect();
    let predicted: Vec<bool> = classifier.probabilities(&test_frames).unwrap().iter().map(|&p| p >= 0.5).collect();
    let actual: Vec<bool> = test.iter().map(|(_, l)| *l).collect();
    let scores = rewards::metrics::classification(&predicted, &actual);
    assert!(scores.f1 >= 0.95, "{scores:?}");
    let estimate = classifier.score(&[solid([210, 50, 40], Some(7))]).unwrap();
    assert!(estimate.done && estimate.reward == 1.0);
    assert!(SuccessClassifier::train(encoder(), &frames[..2], &[true, true], 10, 0.5).is_err(), "one-class labels are refused");
}
