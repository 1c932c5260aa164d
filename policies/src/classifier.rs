//! A success classifier on camera frames: the user's own labelled frames in,
//! the probability that a frame shows the task done out. Its encoder is the
//! learner's (`ConvEncoder`): DrQ convolutions trained from scratch, or a
//! frozen pretrained trunk whose features are computed once per frame, with
//! a small MLP head giving one logit.
//!
//! Training balances the classes (each batch is half successes) and, for
//! the trained convolutions, augments every batch with random shifts and a
//! brightness jitter. The decision threshold is chosen afterwards on frames
//! held out of training, for precision: a false success teaches a policy
//! to fake the task, a missed one only slows it.

use std::path::{Path, PathBuf};

use tch::{Device, Kind, Reduction, Tensor};

use rrl_types::rng::Rng;

use crate::adam::Adam;
use crate::checkpoint::{CheckpointError, ParamMismatch};
use crate::nets::EnsembleMlp;
use crate::pixels::{frames_tensor, in_batches, random_shift, ConvEncoder, EncoderError, PixelConfig};

/// Hidden units of the head.
const HEAD_HIDDEN: i64 = 64;
/// Frames scored per forward pass.
const SCORE_BATCH: i64 = 64;

#[derive(Debug, thiserror::Error)]
pub enum ClassifierError {
    #[error("{0}")]
    Data(String),
    #[error(transparent)]
    Encoder(#[from] EncoderError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("success classifier {path}: {message}")]
    Load { path: PathBuf, message: String },
}

/// How to train.
#[derive(Debug, Clone)]
pub struct ClassifierTraining {
    pub steps: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub seed: u64,
    /// Fewer frames than this of either class is refused.
    pub min_per_class: usize,
}

impl Default for ClassifierTraining {
    fn default() -> Self {
        ClassifierTraining { steps: 600, batch_size: 64, learning_rate: 3e-4, seed: 0, min_per_class: 10 }
    }
}

/// Frames and their labels: `frames` holds one observation's frames after
/// another (the layout of the classifier's `PixelConfig`: per camera,
/// height x width x RGB).
pub struct LabelledFrames<'a> {
    pub frames: &'a [u8],
    pub labels: &'a [bool],
}

impl LabelledFrames<'_> {
    fn check(&self, pixels: &PixelConfig) -> Result<(), ClassifierError> {
        if self.frames.len() != self.labels.len() * pixels.frame_bytes() {
            return Err(ClassifierError::Data(format!("{} bytes of frames for {} labels of {} ({} bytes each)", self.frames.len(), self.labels.len(), pixels.layout(), pixels.frame_bytes())));
        }
        Ok(())
    }
}

/// Counts of a binary classifier's verdicts against the labels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Confusion {
    pub true_positives: u64,
    pub false_positives: u64,
    pub true_negatives: u64,
    pub false_negatives: u64,
}

impl Confusion {
    /// Verdicts `score >= threshold` against `labels`.
    pub fn of(scores: &[f64], labels: &[bool], threshold: f64) -> Confusion {
        let mut c = Confusion::default();
        for (&score, &label) in scores.iter().zip(labels) {
            match (score >= threshold, label) {
                (true, true) => c.true_positives += 1,
                (true, false) => c.false_positives += 1,
                (false, false) => c.true_negatives += 1,
                (false, true) => c.false_negatives += 1,
            }
        }
        c
    }

    /// Of the frames called successes, the share that are (1 when none are called).
    pub fn precision(&self) -> f64 {
        let called = self.true_positives + self.false_positives;
        if called == 0 {
            1.0
        } else {
            self.true_positives as f64 / called as f64
        }
    }

    /// Of the successes, the share called so (0 when there are none).
    pub fn recall(&self) -> f64 {
        let positives = self.true_positives + self.false_negatives;
        if positives == 0 {
            0.0
        } else {
            self.true_positives as f64 / positives as f64
        }
    }

    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }

    pub fn accuracy(&self) -> f64 {
        let all = self.true_positives + self.false_positives + self.true_negatives + self.false_negatives;
        (self.true_positives + self.true_negatives) as f64 / all.max(1) as f64
    }

    /// The mean of the recalls of both classes: 0.5 for always answering
    /// one class, whatever the classes' shares.
    pub fn balanced_accuracy(&self) -> f64 {
        let failures = self.true_negatives + self.false_positives;
        let specificity = self.true_negatives as f64 / failures.max(1) as f64;
        0.5 * (self.recall() + specificity)
    }

    /// Of the failures, the share called successes.
    pub fn false_positive_rate(&self) -> f64 {
        let negatives = self.false_positives + self.true_negatives;
        self.false_positives as f64 / negatives.max(1) as f64
    }
}

/// The threshold chosen on held-out frames.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThresholdChoice {
    pub threshold: f64,
    pub confusion: Confusion,
    /// Whether it reaches the precision asked for.
    pub met: bool,
}

/// The threshold with the best recall among those whose precision on
/// `scores` / `labels` is at least `min_precision`; when none reaches it,
/// the one with the best precision (ties: better recall), `met` false. It
/// lies halfway between the lowest score called a success and the next
/// lower score.
/// A threshold above every score (nothing called a success) counts only
/// when no other does.
pub fn choose_threshold(scores: &[f64], labels: &[bool], min_precision: f64) -> ThresholdChoice {
    let mut candidates: Vec<f64> = scores.iter().copied().filter(|s| s.is_finite()).collect();
    candidates.sort_by(f64::total_cmp);
    candidates.dedup();
    let mut best: Option<ThresholdChoice> = None;
    for threshold in candidates {
        let confusion = Confusion::of(scores, labels, threshold);
        if confusion.true_positives == 0 {
            continue;
        }
        let choice = ThresholdChoice { threshold, confusion, met: confusion.precision() >= min_precision };
        let better = match &best {
            None => true,
            Some(b) if choice.met != b.met => choice.met,
            // Equal recall: the more precise (fewer false successes).
            Some(b) if choice.met => (choice.confusion.recall(), choice.confusion.precision()) > (b.confusion.recall(), b.confusion.precision()),
            Some(b) => (choice.confusion.precision(), choice.confusion.recall()) > (b.confusion.precision(), b.confusion.recall()),
        };
        if better {
            best = Some(choice);
        }
    }
    let Some(mut best) = best else {
        let threshold = 1.0 + f64::EPSILON;
        return ThresholdChoice { threshold, confusion: Confusion::of(scores, labels, threshold), met: false };
    };
    // Halfway down to the next lower score: the same verdicts here, with a
    // margin for frames that score a little under the lowest success called.
    if let Some(below) = scores.iter().copied().filter(|&s| s < best.threshold).max_by(f64::total_cmp) {
        best.threshold = 0.5 * (best.threshold + below);
    }
    best
}

/// Frames as [N, cameras*3, H, W] u8.
fn images_of(frames: &[u8], pixels: &PixelConfig) -> Tensor {
    frames_tensor(frames, pixels.layout(), Device::Cpu)
}

/// Success probability of camera frames.
pub struct FrameClassifier {
    encoder: ConvEncoder,
    head: EnsembleMlp,
    /// Frames scoring at least this are successes.
    pub threshold: f64,
}

impl FrameClassifier {
    fn build(rng: &mut Rng, pixels: &PixelConfig) -> Result<FrameClassifier, ClassifierError> {
        let encoder = ConvEncoder::try_new(rng, pixels, Device::Cpu)?;
        let head = EnsembleMlp::new(rng, 1, pixels.feature_size, &[HEAD_HIDDEN], 1, false, Device::Cpu);
        Ok(FrameClassifier { encoder, head, threshold: 0.5 })
    }

    /// Trains on `data` (both classes at least `settings.min_per_class`
    /// frames); `progress(step, loss)` after every step. The threshold
    /// stays 0.5 until `choose_threshold` sets it.
    pub fn train(data: &LabelledFrames, pixels: &PixelConfig, settings: &ClassifierTraining, mut progress: impl FnMut(usize, f64)) -> Result<FrameClassifier, ClassifierError> {
        data.check(pixels)?;
        let positives: Vec<i64> = (0..data.labels.len()).filter(|&i| data.labels[i]).map(|i| i as i64).collect();
        let negatives: Vec<i64> = (0..data.labels.len()).filter(|&i| !data.labels[i]).map(|i| i as i64).collect();
        if positives.len() < settings.min_per_class || negatives.len() < settings.min_per_class {
            return Err(ClassifierError::Data(format!(
                "{} success and {} failure frames: each class needs at least {} to train on; label more frames of the class that is short",
                positives.len(),
                negatives.len(),
                settings.min_per_class
            )));
        }
        let mut rng = Rng::seed(settings.seed);
        tch::manual_seed(settings.seed as i64);
        let classifier = Self::build(&mut rng, pixels)?;
        let images = images_of(data.frames, pixels);
        // A frozen trunk without shifts sees each frame the same way every
        // time: its features are computed once.
        let features = match pixels.precomputes() {
            true => Some(in_batches(&images, SCORE_BATCH, |batch| classifier.encoder.trunk_features(batch).expect("precomputes: a frozen trunk"))),
            false => None,
        };
        let mut params: Vec<Tensor> = classifier.head.params("cls_head").into_iter().map(|p| p.tensor).collect();
        params.extend(classifier.encoder.params("cls_encoder").into_iter().map(|p| p.tensor));
        let mut optimizer = Adam::new(params, settings.learning_rate, None);
        let half = (settings.batch_size / 2).max(1);
        let mut targets = vec![1.0f32; half];
        targets.extend(vec![0.0f32; half]);
        let targets = Tensor::from_slice(&targets);
        for step in 0..settings.steps {
            // Balanced: half successes, half failures, whatever the shares.
            let mut rows: Vec<i64> = (0..half).map(|_| positives[rng.below(positives.len() as u64) as usize]).collect();
            rows.extend((0..half).map(|_| negatives[rng.below(negatives.len() as u64) as usize]));
            let index = Tensor::from_slice(&rows);
            let input = match &features {
                Some(features) => features.index_select(0, &index),
                None => Self::augment(&images.index_select(0, &index), pixels.shift_pad),
            };
            let logits = classifier.logits(&input);
            let loss = logits.binary_cross_entropy_with_logits::<Tensor>(&targets, None, None, Reduction::Mean);
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
            progress(step, loss.double_value(&[]));
        }
        Ok(classifier)
    }

    /// Random shifts and a per-frame brightness jitter (x 0.8 .. 1.2).
    fn augment(images: &Tensor, shift_pad: i64) -> Tensor {
        let shifted = random_shift(images, shift_pad).to_kind(Kind::Float);
        let gain = Tensor::rand([images.size()[0], 1, 1, 1], (Kind::Float, Device::Cpu)) * 0.4 + 0.8;
        (shifted * gain).clamp(0.0, 255.0)
    }

    fn logits(&self, input: &Tensor) -> Tensor {
        self.head.forward(&self.encoder.forward(input)).squeeze_dim(0).squeeze_dim(-1)
    }

    /// The frames it takes.
    pub fn pixels(&self) -> &PixelConfig {
        &self.encoder.config
    }

    /// Success probabilities of one observation's frames after another.
    pub fn scores(&self, frames: &[u8]) -> Result<Vec<f64>, ClassifierError> {
        let pixels = self.pixels();
        if frames.len() % pixels.frame_bytes() != 0 {
            return Err(ClassifierError::Data(format!("{} bytes of frames are not whole observations of {} ({} bytes each)", frames.len(), pixels.layout(), pixels.frame_bytes())));
        }
        if frames.is_empty() {
            return Ok(Vec::new());
        }
        let probabilities = in_batches(&images_of(frames, pixels), SCORE_BATCH, |batch| self.logits(batch).sigmoid());
        Ok(Vec::<f64>::try_from(probabilities.to_kind(Kind::Double)).expect("a 1-d tensor"))
    }

    /// Saves the weights, the frames it takes and its threshold, atomically
    /// (checksummed safetensors).
    pub fn save(&self, path: &Path) -> Result<(), ClassifierError> {
        let p = self.pixels();
        let mut tensors: Vec<(String, Tensor)> = self.head.params("cls_head").into_iter().chain(self.encoder.params("cls_encoder")).map(|p| (p.name, p.tensor.detach().copy())).collect();
        let trunk = self.encoder.trunk_fingerprint().map_or(0, |h| h as i64);
        tensors.push(("meta.classifier".into(), Tensor::from_slice(&[p.cameras, p.height, p.width, p.feature_size, p.filters, p.shift_pad, trunk])));
        tensors.push(("meta.threshold".into(), Tensor::from_slice(&[self.threshold])));
        Ok(crate::checkpoint::write_atomically(path, tensors)?)
    }

    /// Loads a classifier written by `save` (checksum verified). One made
    /// on a frozen trunk needs that trunk's file (`trunk`), checked by
    /// fingerprint.
    pub fn load(path: &Path, trunk: Option<&Path>) -> Result<FrameClassifier, ClassifierError> {
        let bad = |message: String| ClassifierError::Load { path: path.into(), message };
        let stored = crate::checkpoint::read_verified(path)?;
        let missing = |name: &str| bad(format!("no `{name}`: not a success classifier (written by `rrl classifier train`?)"));
        let find = |name: &str| stored.iter().find(|(n, _)| n == name).map(|(_, t)| t).ok_or_else(|| missing(name));
        let meta = Vec::<i64>::try_from(find("meta.classifier")?).map_err(|e| bad(e.to_string()))?;
        let [cameras, height, width, feature_size, filters, shift_pad, fingerprint] = meta[..] else { return Err(bad(format!("meta.classifier has {} values, not 7", meta.len()))) };
        let threshold = Vec::<f64>::try_from(find("meta.threshold")?).map_err(|e| bad(e.to_string()))?;
        let [threshold] = threshold[..] else { return Err(bad("meta.threshold is not one value".into())) };
        if cameras < 1 || height < 1 || width < 1 || feature_size < 1 || filters < 1 || !(0.0..=1.0 + 1e-9).contains(&threshold) {
            return Err(bad(format!("meta.classifier {meta:?} or threshold {threshold} is out of range")));
        }
        let pretrained = match (fingerprint, trunk) {
            (0, _) => None,
            (_, None) => return Err(bad(format!("made on a frozen trunk (fingerprint {fingerprint:#018x}); name that trunk's file"))),
            (_, Some(trunk)) => Some(trunk.to_path_buf()),
        };
        let pixels = PixelConfig { cameras, height, width, feature_size, shift_pad, filters, pretrained };
        let mut classifier = Self::build(&mut Rng::seed(0), &pixels)?;
        let ours = classifier.encoder.trunk_fingerprint().map_or(0, |h| h as i64);
        if ours != fingerprint {
            return Err(bad(format!("made on the frozen trunk of fingerprint {fingerprint:#018x}; {} has {ours:#018x}", trunk.map_or(String::new(), |t| t.display().to_string()))));
        }
        let params = classifier.head.params("cls_head").into_iter().chain(classifier.encoder.params("cls_encoder"));
        crate::checkpoint::copy_params(params, &stored).map_err(|mismatch| match mismatch {
            ParamMismatch::Missing(name) => missing(&name),
            ParamMismatch::Shape { name, stored, needed } => bad(format!("{name} has shape {stored:?}, the classifier needs {needed:?}")),
        })?;
        classifier.threshold = threshold;
        Ok(classifier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_is_the_best_recall_at_the_precision_asked_for() {
        // Scores of 4 successes and 4 failures; one failure scores high.
        let scores = [0.95, 0.9, 0.7, 0.4, 0.92, 0.3, 0.2, 0.1];
        let labels = [true, true, true, true, false, false, false, false];
        let choice = choose_threshold(&scores, &labels, 0.95);
        // From 0.95 only one success is called, and it is right (precision
        // 1); the threshold lies halfway to the next score, 0.92.
        assert!(choice.met);
        assert!((choice.threshold - 0.935).abs() < 1e-12, "{choice:?}");
        assert_eq!(choice.confusion, Confusion { true_positives: 1, false_positives: 0, true_negatives: 4, false_negatives: 3 });
        // Asking for less precision buys recall: 0.4 calls all four successes and the false one.
        let loose = choose_threshold(&scores, &labels, 0.8);
        assert_eq!((loose.confusion.recall(), loose.confusion.precision()), (1.0, 0.8));
        assert!((loose.threshold - 0.35).abs() < 1e-12, "{loose:?}");
        // Equal recall: the threshold that calls no failure a success wins
        // over a looser one that also meets the precision asked for.
        let mut scores = vec![0.9; 200];
        scores.push(0.5);
        let mut labels = vec![true; 200];
        labels.push(false);
        let tight = choose_threshold(&scores, &labels, 0.99);
        assert_eq!(tight.confusion.false_positives, 0, "{tight:?}");
        assert!((tight.threshold - 0.7).abs() < 1e-12, "{tight:?}");
        // No threshold reaches precision 0.99 when the top score is a
        // failure: the best precision that calls a success is taken.
        let unmet = choose_threshold(&[0.9, 0.8, 0.1], &[false, true, false], 0.99);
        assert!(!unmet.met);
        assert_eq!(unmet.confusion.precision(), 0.5);
        assert!((unmet.threshold - 0.45).abs() < 1e-12, "{unmet:?}");
    }

    #[test]
    fn confusion_rates() {
        let c = Confusion::of(&[0.9, 0.8, 0.2, 0.6], &[true, false, true, false], 0.5);
        assert_eq!(c, Confusion { true_positives: 1, false_positives: 2, true_negatives: 0, false_negatives: 1 });
        assert!((c.precision() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(c.recall(), 0.5);
        assert_eq!(c.false_positive_rate(), 1.0);
    }
}
