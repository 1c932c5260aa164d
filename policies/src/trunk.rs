//! A frozen trunk trained on the user's own demos (`rrl trunk train`).
//!
//! The robot's state says where the arm is, not where the object is; the
//! cameras do. This trains the learner's encoder shape (`ConvEncoder`, DrQ
//! convolutions with random shifts) on recorded episodes to predict, from
//! the state and the frames, what the state cannot tell alone: the next
//! few actions and how the state changes over several horizons. Beside it a
//! head that sees the state only learns the same targets, so the two
//! held-out losses say what the cameras added. The targets come from the
//! robot's own records, so a real arm's teleoperated demos serve as well
//! as the simulator's.
//!
//! Saved as safetensors, it is a `Frozen(..)` trunk for the learner, the
//! behaviour-cloning base and the classifier. With no random shift at
//! practice its features are computed once per frame, which keeps a CPU
//! learner at a state learner's speed.
//!
//! Owns the trunk file's format and the training; never reads episodes
//! from disk (the caller hands it their rows).

use std::path::Path;

use tch::{Device, Kind, Tensor};

use rrl_types::rng::Rng;
use rrl_types::FrameLayout;

use crate::adam::Adam;
use crate::checkpoint::CheckpointError;
use crate::nets::EnsembleMlp;
use crate::pixels::{frames_tensor, random_shift, ConvEncoder, EncoderError, PixelConfig};

/// Actions predicted from each step.
pub const ACTION_CHUNK: usize = 4;
/// Hidden units of the two prediction heads.
const HEAD_HIDDEN: [i64; 2] = [256, 256];
/// Rows scored per pass when judging the held-out episodes.
const SCORE_BATCH: i64 = 256;

#[derive(Debug, thiserror::Error)]
pub enum TrunkError {
    #[error("{0}")]
    Data(String),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// One recorded episode: per step, the observation, the action taken and
/// the observation's frames (the layout's cameras one after another, each
/// H x W x RGB); `name` says which in errors (its file).
pub struct TrunkEpisode<'a> {
    pub name: &'a str,
    /// One per step, then the last step's next observation: where the
    /// episode ended (a cube lifted is seen there, not before the last action).
    pub observations: &'a [Vec<f32>],
    pub actions: &'a [Vec<f32>],
    pub frames: &'a [Vec<u8>],
}

/// How to train.
#[derive(Debug, Clone)]
pub struct TrunkTraining {
    pub steps: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Features the trunk gives.
    pub features: i64,
    /// Channels of its convolutions.
    pub filters: i64,
    /// Random shift while training, so the frozen features tolerate a camera nudged by a few pixels.
    pub shift_pad: i64,
    /// Steps ahead at which the state's change is predicted (cut at the
    /// episode's end; `usize::MAX`: the state the episode ended in, where
    /// the demonstrator was heading all along).
    pub horizons: Vec<usize>,
    pub seed: u64,
}

impl Default for TrunkTraining {
    fn default() -> Self {
        TrunkTraining { steps: 1500, batch_size: 64, learning_rate: 3e-4, features: 50, filters: 32, shift_pad: 4, horizons: vec![5, 10, 20, 40, usize::MAX], seed: 0 }
    }
}

/// Mean squared errors of the normalised targets (each target scaled to
/// unit variance on the training rows; one that never varies counts 0).
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrunkReport {
    /// The last training batch's loss.
    pub train_loss: f64,
    /// Held-out episodes, state and frames.
    pub held_out_loss: f64,
    /// Held-out episodes, the state alone.
    pub held_out_state_only_loss: f64,
    /// Held-out episodes, always the training mean.
    pub held_out_mean_loss: f64,
    pub train_rows: usize,
    pub held_out_rows: usize,
}

/// Inputs and targets of every step of `episodes`, row by row, and their frames.
struct Rows {
    states: Vec<f32>,
    targets: Vec<f32>,
    frames: Vec<u8>,
    count: usize,
}

fn rows(episodes: &[TrunkEpisode], layout: FrameLayout, horizons: &[usize]) -> Result<Rows, TrunkError> {
    let frame_bytes = layout.cameras * layout.height * layout.width * 3;
    let mut out = Rows { states: Vec::new(), targets: Vec::new(), frames: Vec::new(), count: 0 };
    let (o, a) = match episodes.first().and_then(|e| Some((e.observations.first()?.len(), e.actions.first()?.len()))) {
        Some(sizes) => sizes,
        None => return Err(TrunkError::Data("no recorded steps".into())),
    };
    for episode in episodes {
        let (n, name) = (episode.actions.len(), episode.name);
        if episode.observations.len() != n + 1 || episode.frames.len() != n {
            return Err(TrunkError::Data(format!(
                "{name}: {} observations, {n} actions and {} frames; each step needs all three, and the last its next observation",
                episode.observations.len(),
                episode.frames.len()
            )));
        }
        if episode.observations[n].len() != o {
            return Err(TrunkError::Data(format!("{name}: the last step's next observation has {} values; the first episode's first step had {o}", episode.observations[n].len())));
        }
        for t in 0..n {
            let (observation, action, frame) = (&episode.observations[t], &episode.actions[t], &episode.frames[t]);
            if observation.len() != o || action.len() != a || frame.len() != frame_bytes {
                return Err(TrunkError::Data(format!(
                    "{name}, step {t}: {} observation values, {} action values and {} frame bytes; the first episode's first step had {o}, {a} and frames of {layout} ({frame_bytes} bytes)",
                    observation.len(),
                    action.len(),
                    frame.len()
                )));
            }
            out.states.extend_from_slice(observation);
            for k in 0..ACTION_CHUNK {
                out.targets.extend_from_slice(&episode.actions[(t + k).min(n - 1)]);
            }
            for &h in horizons {
                let later = &episode.observations[t.saturating_add(h).min(n)];
                out.targets.extend(later.iter().zip(observation).map(|(l, now)| l - now));
            }
            out.frames.extend_from_slice(frame);
            out.count += 1;
        }
    }
    Ok(out)
}

/// Per column of a [N, D] tensor: mean and standard deviation (1 where a
/// column never varies, so it stays 0 after normalising).
fn moments(x: &Tensor) -> (Tensor, Tensor) {
    let mean = x.mean_dim(0, true, Kind::Float);
    let std = x.std_dim(0, false, true);
    let std = std.where_self(&std.gt(1e-6), &std.ones_like());
    (mean, std)
}

/// Trains a trunk on `train`'s episodes and judges it on `held_out`'s; the
/// trunk (its convolutions and features head) and the losses.
/// `progress(step, loss)` every 20 steps and after the last.
pub fn train(train: &[TrunkEpisode], held_out: &[TrunkEpisode], layout: FrameLayout, settings: &TrunkTraining, device: Device, mut progress: impl FnMut(usize, f64)) -> Result<(ConvEncoder, TrunkReport), TrunkError> {
    if held_out.is_empty() {
        return Err(TrunkError::Data("no held-out episodes: the trunk is judged on episodes it never saw".into()));
    }
    if layout.height < 15 || layout.width < 15 {
        return Err(TrunkError::Data(format!("frames of {layout} are too small for the encoder (at least 15x15)")));
    }
    let fit = rows(train, layout, &settings.horizons)?;
    let judge = rows(held_out, layout, &settings.horizons)?;
    let o = fit.states.len() / fit.count;
    let t = fit.targets.len() / fit.count;
    if judge.states.len() / judge.count != o || judge.targets.len() / judge.count != t {
        return Err(TrunkError::Data(format!("{}: its steps differ in size from {}'s (observation or action values)", held_out[0].name, train[0].name)));
    }
    let table = |values: &[f32], count: usize| Tensor::from_slice(values).view([count as i64, -1]).to_device(device);
    let (states, targets) = (table(&fit.states, fit.count), table(&fit.targets, fit.count));
    let (state_mean, state_std) = moments(&states);
    let (target_mean, target_std) = moments(&targets);
    let normal_states = |x: &Tensor| (x - &state_mean) / &state_std;
    let normal_targets = |y: &Tensor| (y - &target_mean) / &target_std;
    let (states, targets) = (normal_states(&states), normal_targets(&targets));
    let frames = frames_tensor(&fit.frames, layout, device);

    let mut rng = Rng::seed(settings.seed);
    tch::manual_seed(settings.seed as i64);
    let config = PixelConfig { cameras: layout.cameras as i64, height: layout.height as i64, width: layout.width as i64, feature_size: settings.features, shift_pad: settings.shift_pad, filters: settings.filters, pretrained: None };
    let encoder = ConvEncoder::new(&mut rng, &config, device);
    let head = EnsembleMlp::new(&mut rng, 1, o as i64 + settings.features, &HEAD_HIDDEN, t as i64, false, device);
    let state_head = EnsembleMlp::new(&mut rng, 1, o as i64, &HEAD_HIDDEN, t as i64, false, device);
    let params = encoder.params("trunk").into_iter().chain(head.params("head")).chain(state_head.params("state_head")).map(|p| p.tensor).collect();
    let mut optimizer = Adam::new(params, settings.learning_rate, None);
    let mut loss_value = f64::NAN;
    for step in 0..settings.steps {
        let rows: Vec<i64> = (0..settings.batch_size.max(1)).map(|_| rng.below(fit.count as u64) as i64).collect();
        let index = Tensor::from_slice(&rows).to_device(device);
        let (x, y) = (states.index_select(0, &index), targets.index_select(0, &index));
        let features = encoder.forward(&random_shift(&frames.index_select(0, &index), settings.shift_pad));
        let seen = head.forward(&Tensor::cat(&[&x, &features], -1)).squeeze_dim(0);
        let blind = state_head.forward(&x).squeeze_dim(0);
        let loss = (seen - &y).square().mean(Kind::Float);
        let blind_loss = (blind - &y).square().mean(Kind::Float);
        optimizer.zero_grad();
        (&loss + blind_loss).backward();
        optimizer.step();
        // Read back every 20 steps only: on a GPU each read waits for the device.
        if step % 20 == 0 || step + 1 == settings.steps {
            loss_value = loss.double_value(&[]);
            progress(step, loss_value);
        }
    }

    // Judged on the held-out episodes, without shifts, in batches.
    let (states, targets) = (normal_states(&table(&judge.states, judge.count)), normal_targets(&table(&judge.targets, judge.count)));
    let frames = frames_tensor(&judge.frames, layout, device);
    let (mut seen_sum, mut blind_sum) = (0.0, 0.0);
    tch::no_grad(|| {
        for start in (0..judge.count as i64).step_by(SCORE_BATCH as usize) {
            let n = (judge.count as i64 - start).min(SCORE_BATCH);
            let (x, y) = (states.narrow(0, start, n), targets.narrow(0, start, n));
            let features = encoder.forward(&frames.narrow(0, start, n));
            let seen = head.forward(&Tensor::cat(&[&x, &features], -1)).squeeze_dim(0);
            seen_sum += (seen - &y).square().sum(Kind::Float).double_value(&[]);
            blind_sum += (state_head.forward(&x).squeeze_dim(0) - &y).square().sum(Kind::Float).double_value(&[]);
        }
    });
    let cells = (judge.count * t) as f64;
    let report = TrunkReport {
        train_loss: loss_value,
        held_out_loss: seen_sum / cells,
        held_out_state_only_loss: blind_sum / cells,
        held_out_mean_loss: targets.square().mean(Kind::Float).double_value(&[]),
        train_rows: fit.count,
        held_out_rows: judge.count,
    };
    Ok((encoder, report))
}

/// The tensor naming the frames a trunk was trained on and its shape:
/// [cameras, height, width, filters, features].
const META: &str = "meta.trunk";

/// Writes `encoder` as a trunk file (atomically, with a checksum).
pub fn save(encoder: &ConvEncoder, path: &Path) -> Result<(), CheckpointError> {
    let c = &encoder.config;
    let mut tensors: Vec<(String, Tensor)> = encoder.params("trunk").into_iter().map(|p| (p.name, p.tensor.detach().to_device(Device::Cpu).copy())).collect();
    tensors.push((META.into(), Tensor::from_slice(&[c.cameras, c.height, c.width, c.filters, c.feature_size])));
    crate::checkpoint::write_atomically(path, tensors)
}

/// Loads a trunk file written by `save` for frames of `layout`: a file
/// trained on other frames, damaged, or of another shape is refused,
/// naming it and what is wrong.
pub fn load(path: &Path, layout: FrameLayout, device: Device) -> Result<ConvEncoder, EncoderError> {
    let bad = |reason: String| EncoderError::Load { path: path.to_path_buf(), reason };
    let stored = crate::checkpoint::read_verified(path).map_err(|e| bad(e.to_string()))?;
    let meta = stored.iter().find(|(n, _)| n == META).ok_or_else(|| bad(format!("no {META}: not a trunk from `rrl trunk train`")))?;
    let meta = Vec::<i64>::try_from(&meta.1).map_err(|e| bad(format!("{META}: {e}")))?;
    let [cameras, height, width, filters, features] = meta[..] else { return Err(bad(format!("{META} has {} values, not 5", meta.len()))) };
    if [cameras, height, width, filters, features].iter().any(|&v| v < 1) {
        return Err(bad(format!("{META} is {meta:?}: every value must be positive")));
    }
    let trained = FrameLayout { cameras: cameras as usize, height: height as usize, width: width as usize };
    if trained != layout {
        return Err(EncoderError::Layout { path: path.to_path_buf(), trained, given: layout });
    }
    let config = PixelConfig { cameras, height, width, feature_size: features, shift_pad: 0, filters, pretrained: None };
    let encoder = ConvEncoder::new(&mut Rng::seed(0), &config, device);
    crate::checkpoint::copy_params(encoder.params("trunk"), &stored).map_err(|mismatch| match mismatch {
        crate::checkpoint::ParamMismatch::Missing(name) => bad(format!("missing {name}")),
        crate::checkpoint::ParamMismatch::Shape { name, stored, needed } => bad(format!("{name} has shape {stored:?}; {META} {meta:?} makes it {needed:?}")),
    })?;
    Ok(encoder)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Episodes whose frames show a bright square at a spot drawn per
    /// episode; the state never tells where, and the arm heads there: the
    /// state's change is the spot's offset.
    fn square_episodes(count: usize, seed: u64) -> Vec<(Vec<Vec<f32>>, Vec<Vec<f32>>, Vec<Vec<u8>>)> {
        let mut rng = Rng::seed(seed);
        let side = 20usize;
        (0..count)
            .map(|_| {
                let (sx, sy) = (rng.below(14) as usize, rng.below(14) as usize);
                let mut frame = vec![20u8; side * side * 3];
                for y in sy..sy + 6 {
                    for x in sx..sx + 6 {
                        frame[(y * side + x) * 3..(y * side + x) * 3 + 3].copy_from_slice(&[230, 60, 60]);
                    }
                }
                let target = [sx as f32 / 14.0, sy as f32 / 14.0];
                let steps = 12;
                let observations: Vec<Vec<f32>> = (0..=steps).map(|t| vec![target[0] * t as f32 / steps as f32, target[1] * t as f32 / steps as f32, 0.5]).collect();
                let actions: Vec<Vec<f32>> = (0..steps).map(|_| vec![target[0], target[1]]).collect();
                (observations, actions, vec![frame; steps])
            })
            .collect()
    }

    fn borrowed(episodes: &[(Vec<Vec<f32>>, Vec<Vec<f32>>, Vec<Vec<u8>>)]) -> Vec<TrunkEpisode<'_>> {
        episodes.iter().map(|(o, a, f)| TrunkEpisode { name: "square", observations: o, actions: a, frames: f }).collect()
    }

    const LAYOUT: FrameLayout = FrameLayout { cameras: 1, height: 20, width: 20 };

    fn settings() -> TrunkTraining {
        TrunkTraining { steps: 300, batch_size: 32, learning_rate: 1e-3, features: 8, filters: 8, shift_pad: 1, horizons: vec![4], seed: 3 }
    }

    #[test]
    fn the_trunk_learns_from_the_frames_what_the_state_cannot_tell() {
        let (train_set, held_set) = (square_episodes(40, 1), square_episodes(10, 2));
        let (_, report) = train(&borrowed(&train_set), &borrowed(&held_set), LAYOUT, &settings(), Device::Cpu, |_, _| {}).unwrap();
        // The state alone cannot place the square: it scores near the mean's loss;
        // with the frames the held-out loss must fall well below both.
        assert!(report.held_out_loss < 0.5 * report.held_out_state_only_loss, "{report:?}");
        assert!(report.held_out_loss < 0.5 * report.held_out_mean_loss, "{report:?}");
    }

    #[test]
    fn a_saved_trunk_gives_the_same_features_and_refuses_other_frames() {
        let (train_set, held_set) = (square_episodes(4, 1), square_episodes(2, 2));
        let few = TrunkTraining { steps: 5, ..settings() };
        let (encoder, _) = train(&borrowed(&train_set), &borrowed(&held_set), LAYOUT, &few, Device::Cpu, |_, _| {}).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trunk.safetensors");
        save(&encoder, &path).unwrap();
        let loaded = load(&path, LAYOUT, Device::Cpu).unwrap();
        let frames = frames_tensor(&train_set[0].2[0], LAYOUT, Device::Cpu);
        let difference = (encoder.forward(&frames) - loaded.forward(&frames)).abs().max().double_value(&[]);
        assert_eq!(difference, 0.0);

        let other = FrameLayout { cameras: 2, height: 20, width: 20 };
        let err = load(&path, other, Device::Cpu).err().unwrap().to_string();
        assert!(err.contains("trunk.safetensors") && err.contains(&LAYOUT.to_string()) && err.contains(&other.to_string()), "{err}");
        std::fs::write(&path, b"not a trunk").unwrap();
        let err = load(&path, LAYOUT, Device::Cpu).err().unwrap().to_string();
        assert!(err.contains("trunk.safetensors") && err.contains("cannot load"), "{err}");
    }

    /// The episode's end is the state after its last action: the last
    /// step's next observation, one past the steps.
    #[test]
    fn the_episodes_end_is_the_state_after_its_last_action() {
        let observations: Vec<Vec<f32>> = (0..=3).map(|t| vec![t as f32 * 10.0]).collect();
        let actions = vec![vec![0.0f32]; 3];
        let frames = vec![vec![0u8; LAYOUT.bytes()]; 3];
        let episode = TrunkEpisode { name: "e", observations: &observations, actions: &actions, frames: &frames };
        let out = rows(std::slice::from_ref(&episode), LAYOUT, &[2, usize::MAX]).unwrap();
        assert_eq!(out.count, 3);
        // Per row: ACTION_CHUNK actions, then the change 2 steps on and at the end.
        let changes: Vec<(f32, f32)> = out.targets.chunks(ACTION_CHUNK + 2).map(|row| (row[ACTION_CHUNK], row[ACTION_CHUNK + 1])).collect();
        assert_eq!(changes, vec![(20.0, 30.0), (20.0, 20.0), (10.0, 10.0)], "cut at the state after the last action");
        // Without that state the episode is refused, naming it.
        let short = TrunkEpisode { observations: &observations[..3], ..episode };
        let err = rows(&[short], LAYOUT, &[2]).err().unwrap().to_string();
        assert!(err.contains("e: 3 observations, 3 actions") && err.contains("next observation"), "{err}");
    }

    #[test]
    fn steps_without_frames_are_refused_naming_the_episode_and_step() {
        let mut episodes = square_episodes(2, 1);
        episodes[1].2[3] = vec![0; 5];
        let mut named = borrowed(&episodes);
        named[1].name = "runs/a/demos/episode_000001.rrlep";
        let err = train(&named[..1], &named[1..], LAYOUT, &settings(), Device::Cpu, |_, _| {}).err().unwrap().to_string();
        assert!(err.contains("runs/a/demos/episode_000001.rrlep, step 3") && err.contains("5 frame bytes"), "{err}");
    }
}
