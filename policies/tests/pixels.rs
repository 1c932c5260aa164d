//! Learning from pixels: a shared conv encoder trained by the critic, with
//! random shifts, fed from the frame-store replay. A contextual bandit
//! whose only cue is the camera image (red: push right, blue: push left)
//! is learned from pixels alone; a pixel learner's checkpoint round-trips
//! and is refused by a learner without pixels.

use policies::checkpoint::{self, CheckpointError};
use policies::pixels::{PixelConfig, PixelReplay, PixelTransition};
use policies::replay::Transition;
use policies::{Sac, SacConfig};
use rrl_types::config::LearnerConfig;
use rrl_types::rng::Rng;
use tch::Device;

const SIDE: i64 = 16;

fn pixel_config() -> PixelConfig {
    PixelConfig { cameras: 1, height: SIDE, width: SIDE, feature_size: 16, shift_pad: 1, filters: 8, pretrained: None }
}

fn learner(seed: u64) -> Sac {
    let learner = LearnerConfig { hidden: vec![32, 32], batch_size: 64, initial_temperature: 0.05, actor_lr: 1e-3, critic_lr: 1e-3, ..LearnerConfig::default() };
    let mut config = SacConfig::from_learner(&learner, 1, 1, seed);
    config.pixels = Some(pixel_config());
    Sac::new(config, Device::Cpu)
}

/// A solid red or blue image with a little noise, as RGB bytes.
fn image(red: bool, rng: &mut Rng) -> Vec<u8> {
    (0..SIDE * SIDE)
        .flat_map(|_| {
            let noise = rng.uniform(0.0, 30.0) as u8;
            if red { [225 + noise, noise, noise] } else { [noise, noise, 225 + noise] }
        })
        .collect()
}

/// Trains `sac` on the bandit (300 random steps, then 600 steps each with an
/// update) and checks the deterministic action pushes the right way for
/// fresh red and blue images.
fn learns_the_bandit(mut sac: Sac) -> PixelReplay {
    tch::manual_seed(0);
    let mut replay = PixelReplay::new(1, 1, sac.config.pixels.as_ref().unwrap(), 5_000, Device::Cpu).unwrap();
    let mut rng = Rng::seed(11);
    let step = |sac: &mut Sac, replay: &mut PixelReplay, rng: &mut Rng, explore: bool| {
        let red = rng.uniform(0.0, 1.0) < 0.5;
        let pixels = image(red, rng);
        let frame = replay.add_frame(&pixels);
        let action = if explore { rng.uniform(-1.0, 1.0) } else { sac.act_pixels(&[0.0], &pixels, false)[0] };
        let reward = if red { action } else { -action };
        // One-step episodes: the next observation is a fresh image, and terminal.
        let next = replay.add_frame(&image(rng.uniform(0.0, 1.0) < 0.5, rng));
        let state = Transition { observation: vec![0.0], action: vec![action as f32], reward: reward as f32, next_observation: vec![0.0], terminal: true, discount: 0.99 };
        replay.push(&PixelTransition { state, frame, next_frame: next });
    };
    for _ in 0..300 {
        step(&mut sac, &mut replay, &mut rng, true);
    }
    for _ in 0..600 {
        step(&mut sac, &mut replay, &mut rng, false);
        sac.update_pixels(&mut replay, None);
    }
    let mut test_rng = Rng::seed(99);
    for red in [true, false] {
        for _ in 0..5 {
            let action = sac.act_pixels(&[0.0], &image(red, &mut test_rng), true)[0];
            if red {
                assert!(action > 0.5, "red image: action {action}, should push right");
            } else {
                assert!(action < -0.5, "blue image: action {action}, should push left");
            }
        }
    }
    replay
}

#[test]
fn a_bandit_whose_only_cue_is_the_image_is_learned_from_pixels() {
    learns_the_bandit(learner(3));
}

/// The small stand-in for a pretrained trunk, exported with the venv's torch.
fn frozen_trunk(dir: &std::path::Path) -> std::path::PathBuf {
    frozen_trunk_seeded(dir, 0)
}

/// A stand-in trunk of its own weights (`seed`), same shape as every other.
fn frozen_trunk_seeded(dir: &std::path::Path, seed: u64) -> std::path::PathBuf {
    let path = dir.join(format!("trunk{seed}.pt"));
    let python = std::env::var_os("VIRTUAL_ENV").map(|v| std::path::PathBuf::from(v).join("bin/python")).unwrap_or_else(|| "python3".into());
    let out = std::process::Command::new(python).arg(std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/make_frozen_encoder.py")).arg(&path).arg(seed.to_string()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    path
}

/// A frozen trunk without random shift: the replay keeps the trunk's 8
/// features of each frame (32 bytes, not the frame's 768), batches hand
/// the head those features, and the bandit is learned as from frames.
#[test]
fn a_frozen_trunk_without_shift_keeps_features_not_frames_and_still_learns() {
    let dir = tempfile::tempdir().unwrap();
    let learner_config = LearnerConfig { hidden: vec![32, 32], batch_size: 64, initial_temperature: 0.05, actor_lr: 1e-3, critic_lr: 1e-3, ..LearnerConfig::default() };
    let mut config = SacConfig::from_learner(&learner_config, 1, 1, 3);
    let pixels = PixelConfig { pretrained: Some(frozen_trunk(dir.path())), shift_pad: 0, ..pixel_config() };
    assert!(pixels.precomputes());
    config.pixels = Some(pixels.clone());
    let mut replay = learns_the_bandit(Sac::try_new(config, Device::Cpu).unwrap());
    let stored = replay.stored_frame(replay.frames_added() - 1).unwrap();
    assert_eq!(replay.frame(stored).unwrap().len(), 4 * 8, "a frame is kept as its 8 features");
    let batch = replay.sample(4);
    assert_eq!(batch.images.unwrap().size(), [4, 8], "batches carry features for the head");
    // With a shift the features would change every time: frames are kept.
    let mut shifted = PixelReplay::new(1, 1, &PixelConfig { shift_pad: 1, ..pixels }, 10, Device::Cpu).unwrap();
    let id = shifted.add_frame(&image(true, &mut Rng::seed(1)));
    assert_eq!(shifted.frame(id).unwrap().len(), (SIDE * SIDE * 3) as usize);
}

/// The same bandit on a frozen pretrained trunk (TorchScript exported here
/// with the venv's torch): only the head trains; a file that does not load
/// is refused naming it.
#[test]
fn a_frozen_pretrained_trunk_is_used_and_only_its_head_trains() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trunk.pt");
    let python = std::env::var_os("VIRTUAL_ENV").map(|v| std::path::PathBuf::from(v).join("bin/python")).unwrap_or_else(|| "python3".into());
    let out = std::process::Command::new(python).arg(std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/make_frozen_encoder.py")).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let learner_config = LearnerConfig { hidden: vec![32, 32], batch_size: 64, initial_temperature: 0.05, actor_lr: 1e-3, critic_lr: 1e-3, ..LearnerConfig::default() };
    let mut config = SacConfig::from_learner(&learner_config, 1, 1, 3);
    config.pixels = Some(PixelConfig { pretrained: Some(path.clone()), ..pixel_config() });
    let sac = Sac::try_new(config.clone(), Device::Cpu).unwrap();
    let head: Vec<String> = sac.encoder.as_ref().unwrap().params("encoder").into_iter().map(|p| p.name).collect();
    assert_eq!(head, ["encoder.linear.weight", "encoder.linear.bias", "encoder.norm.gain", "encoder.norm.offset"], "only the head is trained");
    learns_the_bandit(sac);

    std::fs::write(dir.path().join("broken.pt"), b"not a module").unwrap();
    config.pixels = Some(PixelConfig { pretrained: Some(dir.path().join("broken.pt")), ..pixel_config() });
    match Sac::try_new(config, Device::Cpu) {
        Err(e) => assert!(e.to_string().contains("broken.pt"), "{e}"),
        Ok(_) => panic!("a file that is no TorchScript module must be refused"),
    }
}

#[test]
fn a_pixel_learner_checkpoint_round_trips_and_a_state_learner_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pixels.safetensors");
    let mut trained = learner(5);
    let mut replay = PixelReplay::new(1, 1, &pixel_config(), 500, Device::Cpu).unwrap();
    let mut rng = Rng::seed(1);
    for _ in 0..100 {
        let frame = replay.add_frame(&image(true, &mut rng));
        let next = replay.add_frame(&image(false, &mut rng));
        let state = Transition { observation: vec![0.0], action: vec![0.3], reward: 0.3, next_observation: vec![0.0], terminal: true, discount: 0.99 };
        replay.push(&PixelTransition { state, frame, next_frame: next });
    }
    for _ in 0..5 {
        trained.update_pixels(&mut replay, None);
    }
    checkpoint::save(&trained, &path, &[]).unwrap();
    let mut restored = learner(77);
    let probe = image(true, &mut rng);
    assert_ne!(restored.act_pixels(&[0.0], &probe, true), trained.act_pixels(&[0.0], &probe, true), "different seeds, different networks");
    checkpoint::load(&mut restored, &path).unwrap();
    assert_eq!(restored.act_pixels(&[0.0], &probe, true), trained.act_pixels(&[0.0], &probe, true));

    let learner_config = LearnerConfig { hidden: vec![32, 32], batch_size: 64, ..LearnerConfig::default() };
    let mut state_only = Sac::new(SacConfig::from_learner(&learner_config, 1 + 16, 1, 1), Device::Cpu);
    match checkpoint::load(&mut state_only, &path) {
        Err(CheckpointError::Unexpected { name, .. }) => assert!(name.starts_with("encoder.") || name.starts_with("adam.critic"), "{name}"),
        other => panic!("a state-only learner must refuse a pixel checkpoint, got {other:?}"),
    }
}

/// Behaviour cloning from pixel demos: the demonstrator pushes right on a
/// red image and left on a blue one, and the state is the same in both;
/// the clone, trained on the frames, does the same for fresh images; saved
/// and loaded with the same cameras it acts alike, and a task with other
/// cameras is refused naming both.
#[test]
fn behaviour_cloning_learns_from_the_frames_of_pixel_demos() {
    use policies::residual::{BasePolicy, BcPolicy, Demos};
    let mut rng = Rng::seed(4);
    let (mut observations, mut actions, mut frames) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..8 {
        let (mut o, mut a, mut f) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..20 {
            let red = rng.uniform(0.0, 1.0) < 0.5;
            o.push(vec![0.0f32]);
            a.push(vec![if red { 0.8f32 } else { -0.8 }]);
            f.push(image(red, &mut rng));
        }
        observations.push(o);
        actions.push(a);
        frames.push(f);
    }
    let demos = Demos { episodes: observations.iter().zip(&actions).map(|(o, a)| (o.as_slice(), a.as_slice())).collect(), frames: Some(frames.iter().map(Vec::as_slice).collect()) };
    let pixels = pixel_config();
    let (mut policy, loss) = BcPolicy::train(&demos, 1, 1, 1, 1, &[32, 32], 300, 0, Some(&pixels)).unwrap();
    assert!(loss < 0.05, "final loss {loss}");
    let mut test_rng = Rng::seed(99);
    let probes: Vec<(bool, Vec<u8>)> = (0..6).map(|k| (k % 2 == 0, image(k % 2 == 0, &mut test_rng))).collect();
    for (red, frame) in &probes {
        let action = policy.act(&[0.0], Some(frame)).unwrap()[0];
        assert!(if *red { action > 0.5 } else { action < -0.5 }, "red {red}: action {action}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bc.safetensors");
    policy.save(&path).unwrap();
    let mut loaded = BcPolicy::load(&path, &[32, 32], Some(&pixels)).unwrap();
    for (_, frame) in &probes {
        policy.reset();
        assert_eq!(loaded.act(&[0.0], Some(frame)).unwrap(), policy.act(&[0.0], Some(frame)).unwrap());
    }
    let other = PixelConfig { cameras: 2, ..pixels };
    let err = BcPolicy::load(&path, &[32, 32], Some(&other)).err().unwrap().to_string();
    assert!(err.contains("cloned from 1 camera(s) of 16x16") && err.contains("sees 2 of 16x16"), "{err}");
    assert!(BcPolicy::load(&path, &[32, 32], None).err().unwrap().to_string().contains("no cameras"));
}

/// A head trained on one trunk's features is refused with another trunk of
/// the same shape — in a learner checkpoint, a saved replay of precomputed
/// features and a cloned base — naming both (by their files' fingerprints).
#[test]
fn a_frozen_trunks_head_features_and_base_refuse_another_trunk() {
    use policies::residual::{BcPolicy, Demos};
    let dir = tempfile::tempdir().unwrap();
    let learner_config = LearnerConfig { hidden: vec![16], batch_size: 8, ..LearnerConfig::default() };
    let pixels_of = |trunk: std::path::PathBuf| PixelConfig { pretrained: Some(trunk), shift_pad: 0, ..pixel_config() };
    let (first, second) = (pixels_of(frozen_trunk_seeded(dir.path(), 1)), pixels_of(frozen_trunk_seeded(dir.path(), 2)));
    let sac_with = |pixels: &PixelConfig| {
        let mut config = SacConfig::from_learner(&learner_config, 1, 1, 3);
        config.pixels = Some(pixels.clone());
        Sac::try_new(config, Device::Cpu).unwrap()
    };
    // The learner checkpoint.
    let path = dir.path().join("learner.safetensors");
    checkpoint::save(&sac_with(&first), &path, &[]).unwrap();
    checkpoint::load(&mut sac_with(&first), &path).unwrap();
    let err = checkpoint::load(&mut sac_with(&second), &path).unwrap_err().to_string();
    assert!(err.contains("written with the frozen trunk of fingerprint") && err.contains("this learner has the frozen trunk of fingerprint"), "{err}");
    // A replay of precomputed features.
    let mut replay = PixelReplay::new(1, 1, &first, 20, Device::Cpu).unwrap();
    let mut rng = Rng::seed(1);
    let (a, b) = (replay.add_frame(&image(true, &mut rng)), replay.add_frame(&image(false, &mut rng)));
    replay.push(&PixelTransition { state: Transition { observation: vec![0.0], action: vec![0.0], reward: 0.0, next_observation: vec![0.0], terminal: true, discount: 0.99 }, frame: a, next_frame: b });
    let saved = replay.export();
    PixelReplay::new(1, 1, &first, 20, Device::Cpu).unwrap().import(&saved).unwrap();
    let err = PixelReplay::new(1, 1, &second, 20, Device::Cpu).unwrap().import(&saved).unwrap_err();
    assert!(err.contains("saved features of the trunk of fingerprint") && err.contains("this learner keeps features of the trunk"), "{err}");
    // A base cloned on the first trunk.
    let (observations, actions, frames) = (vec![vec![vec![0.0f32]; 4]], vec![vec![vec![0.5f32]; 4]], vec![(0..4).map(|_| image(true, &mut rng)).collect::<Vec<_>>()]);
    let demos = Demos { episodes: vec![(observations[0].as_slice(), actions[0].as_slice())], frames: Some(frames.iter().map(Vec::as_slice).collect()) };
    let (base, _) = BcPolicy::train(&demos, 1, 1, 1, 1, &[8], 5, 0, Some(&first)).unwrap();
    let base_path = dir.path().join("bc.safetensors");
    base.save(&base_path).unwrap();
    BcPolicy::load(&base_path, &[8], Some(&first)).unwrap();
    let err = BcPolicy::load(&base_path, &[8], Some(&second)).err().unwrap().to_string();
    assert!(err.contains("cloned with the frozen trunk of fingerprint") && err.contains("learner.pixels gives the frozen trunk"), "{err}");
}
