//! Checkpoints: resuming is bit-identical to never stopping (CPU), and bad
//! files are refused with a clear error, leaving the learner untouched.

use std::path::Path;

use policies::checkpoint::{self, CheckpointError};
use policies::{Sac, SacConfig};
use rrl_types::config::LearnerConfig;
use tch::Device;

fn sac(seed: u64, hidden: u32) -> Sac {
    let learner = LearnerConfig { hidden: vec![hidden, hidden], critics: 4, target_critics: 2, critic_layer_norm: true, batch_size: 32, utd: 2, ..LearnerConfig::default() };
    Sac::new(SacConfig::from_learner(&learner, 5, 2, seed), Device::Cpu)
}

fn assert_same_state(a: &Sac, b: &Sac) {
    let (sa, sb) = (checkpoint::state_tensors(a), checkpoint::state_tensors(b));
    assert_eq!(sa.len(), sb.len());
    for ((na, ta), (nb, tb)) in sa.iter().zip(&sb) {
        assert_eq!(na, nb);
        assert!(ta.equal(tb), "{na} differs after resume");
    }
}

#[test]
fn resume_from_a_checkpoint_is_identical_to_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut uninterrupted = sac(7, 32);
    let mut replay = policies::bench::random_replay(5, 2, 500, Device::Cpu, 3);
    for _ in 0..30 {
        uninterrupted.update(&mut replay, None);
    }

    let mut first_half = sac(7, 32);
    let mut replay_first = policies::bench::random_replay(5, 2, 500, Device::Cpu, 3);
    for _ in 0..15 {
        first_half.update(&mut replay_first, None);
    }
    checkpoint::save(&first_half, &dir.path().join("learner.safetensors"), &[("env_step", 15)]).unwrap();
    checkpoint::save_replay(&mut replay_first, &dir.path().join("replay.safetensors")).unwrap();
    drop(first_half);

    // A fresh process would build the learner from another seed before loading.
    let mut resumed = sac(99, 32);
    let mut replay_resumed = policies::replay::ReplayBuffer::new(5, 2, 500, Device::Cpu);
    checkpoint::load(&mut resumed, &dir.path().join("learner.safetensors")).unwrap();
    checkpoint::load_replay(&mut replay_resumed, &dir.path().join("replay.safetensors")).unwrap();
    assert_eq!(checkpoint::read_extra(&dir.path().join("learner.safetensors"), "env_step").unwrap(), 15);
    for _ in 0..15 {
        resumed.update(&mut replay_resumed, None);
    }
    assert_eq!(resumed.updates, 30);
    assert_same_state(&uninterrupted, &resumed);
}

fn saved(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("learner.safetensors");
    checkpoint::save(&sac(1, 32), &path, &[]).unwrap();
    path
}

/// Fault matrix: corrupt checkpoint | one byte in the middle of a checkpoint flipped | loading refuses it | a Checksum error; the learner is unchanged
#[test]
fn a_damaged_checkpoint_is_refused_by_its_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let mut target = sac(2, 32);
    let before = checkpoint::state_tensors(&target);
    match checkpoint::load(&mut target, &path) {
        Err(CheckpointError::Checksum { .. }) => {}
        other => panic!("expected a checksum error, got {other:?}"),
    }
    for ((_, a), (_, b)) in before.iter().zip(checkpoint::state_tensors(&target).iter()) {
        assert!(a.equal(b), "a refused checkpoint must not change the learner");
    }
}

#[test]
fn a_truncated_checkpoint_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let err = checkpoint::load(&mut sac(2, 32), &path).unwrap_err();
    assert!(matches!(err, CheckpointError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("learner.safetensors"), "{err}");
}

#[test]
fn a_checkpoint_of_another_shape_is_refused_with_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path());
    let err = checkpoint::load(&mut sac(2, 64), &path).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, CheckpointError::Shape { .. }), "{text}");
    assert!(text.contains("[1, 5, 64]") && text.contains("[1, 5, 32]"), "{text}");
}

#[test]
fn no_temporary_file_is_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    saved(dir.path());
    let names: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, vec!["learner.safetensors".to_string()]);
}
