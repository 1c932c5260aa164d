//! CLIP-style rewards (VLM-RM) and a success classifier on a frozen image
//! encoder, both on encoders loaded from local TorchScript files.
//!
//! Conventions for the TorchScript files: the image encoder takes a float
//! tensor [N, 3, H, W] of RGB in [0, 1] (normalisation belongs inside the
//! exported module) and returns [N, D]; the text encoder takes one string
//! and returns [D] or [1, D] (tokenisation belongs inside it too).
//!
//! Reward: R = 1 − ½‖(x − g)P‖², x the normalised image embedding, g the
//! normalised goal-prompt embedding, b the baseline prompt's, and
//! P = α·ddᵀ/‖d‖² + (1 − α)·I with d = g − b: α = 1 scores only the
//! goal-minus-baseline direction, α = 0 the plain distance to the goal.

use std::path::{Path, PathBuf};

use tch::{CModule, Device, IValue, Kind, Tensor};

use crate::source::{Frame, RewardError, RewardEstimate, RewardSource};

fn model_error(path: &Path, message: impl std::fmt::Display) -> RewardError {
    RewardError::Model { path: path.display().to_string(), message: message.to_string() }
}

/// A frozen TorchScript image encoder with its input resolution.
pub struct ImageEncoder {
    module: CModule,
    path: PathBuf,
    width: u32,
    height: u32,
    dimension: i64,
}

impl ImageEncoder {
    /// Loads the encoder and checks it on a blank frame.
    pub fn load(path: &Path, width: u32, height: u32) -> Result<ImageEncoder, RewardError> {
        let mut module = CModule::load_on_device(path, Device::Cpu).map_err(|e| model_error(path, format!("not a loadable TorchScript module: {e}")))?;
        module.set_eval();
        let probe = Tensor::zeros([1, 3, i64::from(height), i64::from(width)], (Kind::Float, Device::Cpu));
        let out = tch::no_grad(|| module.forward_ts(&[probe])).map_err(|e| model_error(path, format!("fails on a [1, 3, {height}, {width}] input: {e}")))?;
        if out.dim() != 2 || out.size()[0] != 1 {
            return Err(model_error(path, format!("returns shape {:?} for one image; expected [1, D]", out.size())));
        }
        Ok(ImageEncoder { dimension: out.size()[1], module, path: path.to_path_buf(), width, height })
    }

    pub fn dimension(&self) -> i64 {
        self.dimension
    }

    /// Frames resized (nearest neighbour) to the encoder's input, as [N, 3, H, W] in [0, 1].
    pub fn batch(&self, frames: &[&Frame]) -> Tensor {
        let (w, h) = (self.width as usize, self.height as usize);
        let mut data = vec![0f32; frames.len() * 3 * w * h];
        for (n, frame) in frames.iter().enumerate() {
            let (fw, fh) = (frame.width as usize, frame.height as usize);
            for y in 0..h {
                let sy = y * fh / h;
                for x in 0..w {
                    let sx = x * fw / w;
                    for c in 0..3 {
                        data[((n * 3 + c) * h + y) * w + x] = f32::from(frame.rgb[(sy * fw + sx) * 3 + c]) / 255.0;
                    }
                }
            }
        }
        Tensor::from_slice(&data).reshape([frames.len() as i64, 3, h as i64, w as i64])
    }

    /// Embeddings [N, D] of frames.
    pub fn embed(&self, frames: &[&Frame]) -> Result<Tensor, RewardError> {
        tch::no_grad(|| self.module.forward_ts(&[self.batch(frames)])).map_err(|e| model_error(&self.path, e))
    }
}

fn text_embedding(module: &CModule, path: &Path, text: &str) -> Result<Tensor, RewardError> {
    let out = tch::no_grad(|| module.forward_is(&[IValue::String(text.to_string())])).map_err(|e| model_error(path, format!("fails on the text {text:?}: {e}")))?;
    let IValue::Tensor(t) = out else {
        return Err(model_error(path, "returns something other than a tensor for a string"));
    };
    Ok(t.to_kind(Kind::Float).reshape([-1]))
}

fn normalised(t: &Tensor) -> Tensor {
    t / t.norm().clamp_min(1e-12)
}

pub struct ClipReward {
    encoder: ImageEncoder,
    text_module: CModule,
    text_path: PathBuf,
    baseline_prompt: String,
    alpha: f64,
    goal: Tensor,
    projection: Tensor,
}

impl ClipReward {
    pub fn load(image_encoder: &Path, width: u32, height: u32, text_encoder: &Path, baseline_prompt: &str, alpha: f64) -> Result<ClipReward, RewardError> {
        if !(0.0..=1.0).contains(&alpha) {
            return Err(RewardError::Invalid(format!("alpha {alpha} is outside [0, 1]")));
        }
        let encoder = ImageEncoder::load(image_encoder, width, height)?;
        let mut text_module = CModule::load_on_device(text_encoder, Device::Cpu).map_err(|e| model_error(text_encoder, format!("not a loadable TorchScript module: {e}")))?;
        text_module.set_eval();
        let d = encoder.dimension();
        let mut reward = ClipReward { encoder, text_module, text_path: text_encoder.to_path_buf(), baseline_prompt: baseline_prompt.into(), alpha, goal: Tensor::zeros([d], (Kind::Float, Device::Cpu)), projection: Tensor::eye(d, (Kind::Float, Device::Cpu)) };
        // The baseline prompt must embed to the image space's dimension.
        reward.set_goal("a check of the text encoder")?;
        Ok(reward)
    }

    /// Sets the goal prompt and rebuilds the projection.
    pub fn set_goal(&mut self, goal_prompt: &str) -> Result<(), RewardError> {
        let goal = text_embedding(&self.text_module, &self.text_path, goal_prompt)?;
        let baseline = text_embedding(&self.text_module, &self.text_path, &self.baseline_prompt)?;
        let d = self.encoder.dimension();
        for (which, t) in [("goal", &goal), ("baseline", &baseline)] {
            if t.size() != [d] {
                return Err(model_error(&self.text_path, format!("{which} prompt embeds to {:?}; the image encoder gives {d} dimensions", t.size())));
            }
        }
        let (g, b) = (normalised(&goal), normalised(&baseline));
        let direction = &g - &b;
        let squared = direction.dot(&direction).double_value(&[]);
        let identity = Tensor::eye(d, (Kind::Float, Device::Cpu));
        self.projection = if squared > 1e-12 {
            direction.outer(&direction) / squared * self.alpha + identity * (1.0 - self.alpha)
        } else {
            identity
        };
        self.goal = g;
        Ok(())
    }

    /// Rewards of several frames at once.
    pub fn rewards(&self, frames: &[&Frame]) -> Result<Vec<f64>, RewardError> {
        let x = self.encoder.embed(frames)?;
        let x = &x / x.norm_scalaropt_dim(2, [1], true).clamp_min(1e-12);
        let residual = (x - self.goal.unsqueeze(0)).matmul(&self.projection);
        let r = residual.square().sum_dim_intlist(1, false, Kind::Float) * -0.5 + 1.0;
        Vec::<f32>::try_from(&r).map(|v| v.into_iter().map(f64::from).collect()).map_err(|e| model_error(&self.encoder.path, e))
    }
}

impl RewardSource for ClipReward {
    fn name(&self) -> &str {
        "clip"
    }

    fn reset(&mut self, task: &str) -> Result<(), RewardError> {
        self.set_goal(task)
    }

    fn score(&mut self, frames: &[Frame]) -> Result<RewardEstimate, RewardError> {
        let frame = frames.first().ok_or_else(|| RewardError::Invalid("no frame to score".into()))?;
        let reward = self.rewards(&[frame])?[0];
        Ok(RewardEstimate { stamp: frame.stamp, progress: None, reward, done: false })
    }
}

/// A success classifier (SERL style): logistic regression on the frozen
/// encoder's normalised embeddings, trained here on labelled frames.
pub struct SuccessClassifier {
    encoder: ImageEncoder,
    weight: Tensor,
    bias: Tensor,
    pub threshold: f64,
}

impl SuccessClassifier {
    /// Trains on `frames` with `labels` (true = success) by full-batch Adam.
    pub fn train(encoder: ImageEncoder, frames: &[&Frame], labels: &[bool], epochs: usize, threshold: f64) -> Result<SuccessClassifier, RewardError> {
        if frames.len() != labels.len() || frames.is_empty() {
            return Err(RewardError::Invalid(format!("{} frames and {} labels", frames.len(), labels.len())));
        }
        if labels.iter().all(|&l| l) || labels.iter().all(|&l| !l) {
            return Err(RewardError::Invalid("the labels need both successes and failures".into()));
        }
        let x = encoder.embed(frames)?;
        let x = &x / x.norm_scalaropt_dim(2, [1], true).clamp_min(1e-12);
        let y = Tensor::from_slice(&labels.iter().map(|&l| f32::from(u8::from(l))).collect::<Vec<_>>());
        let d = encoder.dimension();
        let weight = Tensor::zeros([d], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let bias = Tensor::zeros([1], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let mut optimizer = Adam::new(vec![weight.shallow_clone(), bias.shallow_clone()], 0.05);
        for _ in 0..epochs {
            let logits = x.matmul(&weight) + &bias;
            let loss = logits.binary_cross_entropy_with_logits::<Tensor>(&y, None, None, tch::Reduction::Mean);
            optimizer.step(&loss);
        }
        Ok(SuccessClassifier { encoder, weight: weight.detach(), bias: bias.detach(), threshold })
    }

    /// Success probabilities of frames.
    pub fn probabilities(&self, frames: &[&Frame]) -> Result<Vec<f64>, RewardError> {
        let x = self.encoder.embed(frames)?;
        let x = &x / x.norm_scalaropt_dim(2, [1], true).clamp_min(1e-12);
        let p = (x.matmul(&self.weight) + &self.bias).sigmoid();
        Vec::<f32>::try_from(&p).map(|v| v.into_iter().map(f64::from).collect()).map_err(|e| model_error(&self.encoder.path, e))
    }
}

impl RewardSource for SuccessClassifier {
    fn name(&self) -> &str {
        "success_classifier"
    }

    fn reset(&mut self, _task: &str) -> Result<(), RewardError> {
        Ok(())
    }

    /// Sparse: 1 and done when the classifier is confident of success.
    fn score(&mut self, frames: &[Frame]) -> Result<RewardEstimate, RewardError> {
        let frame = frames.first().ok_or_else(|| RewardError::Invalid("no frame to score".into()))?;
        let p = self.probabilities(&[frame])?[0];
        let success = p >= self.threshold;
        Ok(RewardEstimate { stamp: frame.stamp, progress: Some(100.0 * p), reward: f64::from(u8::from(success)), done: success })
    }
}

/// A small Adam for the classifier head (the learner's lives in `policies`,
/// which this crate must not depend on).
struct Adam {
    params: Vec<Tensor>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    lr: f64,
    t: i32,
}

impl Adam {
    fn new(params: Vec<Tensor>, lr: f64) -> Adam {
        let zeros = |p: &Tensor| p.zeros_like();
        Adam { m: params.iter().map(zeros).collect(), v: params.iter().map(zeros).collect(), params, lr, t: 0 }
    }

    fn step(&mut self, loss: &Tensor) {
        for p in &mut self.params {
            p.zero_grad();
        }
        loss.backward();
        self.t += 1;
        let (b1, b2) = (0.9f64, 0.999f64);
        tch::no_grad(|| {
            for ((p, m), v) in self.params.iter_mut().zip(&mut self.m).zip(&mut self.v) {
                let g = p.grad();
                *m = &*m * b1 + &g * (1.0 - b1);
                *v = &*v * b2 + g.square() * (1.0 - b2);
                let m_hat = &*m / (1.0 - b1.powi(self.t));
                let v_hat = &*v / (1.0 - b2.powi(self.t));
                let update = m_hat / (v_hat.sqrt() + 1e-8) * self.lr;
                let _ = p.g_sub_(&update);
            }
        });
    }
}
