//! The learned risk critic on the robot side: Q_risk(state, command) ≈ the
//! chance of a constraint violation soon, an MLP evaluated in plain Rust
//! every tick (no libtorch on the robot). Weights come as a safetensors
//! file of `layer{i}.weight` [out, in] and `layer{i}.bias` [out] (f32, from
//! `rrl safety train-critic`), or as the same layers from a learner training
//! one during practice; ReLU between layers and a sigmoid at the end. New
//! weights swap in between ticks without a lock, and the old ones are
//! dropped off the control thread.

use std::path::{Path, PathBuf};

use crossbeam::channel::{bounded, Receiver, Sender};

#[derive(Debug, thiserror::Error)]
pub enum CriticError {
    #[error("risk critic {path}: cannot read: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("risk critic {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("risk critic offered to the gate: {0}")]
    Offered(String),
}

struct Dense {
    inputs: usize,
    outputs: usize,
    /// Row-major [outputs][inputs].
    weight: Vec<f32>,
    bias: Vec<f32>,
}

/// An MLP with preallocated activations: evaluating it never allocates.
pub struct RiskCritic {
    layers: Vec<Dense>,
    scratch: [Vec<f32>; 2],
}

impl std::fmt::Debug for RiskCritic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let widths: Vec<usize> = std::iter::once(self.input_size()).chain(self.layers.iter().map(|l| l.outputs)).collect();
        write!(f, "RiskCritic{widths:?}")
    }
}

impl RiskCritic {
    pub fn input_size(&self) -> usize {
        self.layers[0].inputs
    }

    /// From `(weight [out][in], bias [out])` pairs; the last layer has one output.
    pub fn from_layers(layers: Vec<(Vec<Vec<f32>>, Vec<f32>)>) -> Result<RiskCritic, String> {
        if layers.is_empty() {
            return Err("no layers".into());
        }
        let mut dense = Vec::new();
        for (i, (weight, bias)) in layers.into_iter().enumerate() {
            let outputs = weight.len();
            let inputs = weight.first().map_or(0, |r| r.len());
            if outputs == 0 || inputs == 0 || weight.iter().any(|r| r.len() != inputs) || bias.len() != outputs {
                return Err(format!("layer{i}: weight and bias shapes do not agree"));
            }
            if let Some(previous) = dense.last().map(|d: &Dense| d.outputs) {
                if previous != inputs {
                    return Err(format!("layer{i} takes {inputs} inputs, the layer before gives {previous}"));
                }
            }
            let flat: Vec<f32> = weight.into_iter().flatten().collect();
            if flat.iter().chain(&bias).any(|v| !v.is_finite()) {
                return Err(format!("layer{i} holds NaN or infinite weights"));
            }
            dense.push(Dense { inputs, outputs, weight: flat, bias });
        }
        if dense.last().map(|d| d.outputs) != Some(1) {
            return Err("the last layer must have exactly one output (the risk)".into());
        }
        let widest = dense.iter().map(|d| d.outputs.max(d.inputs)).max().unwrap_or(1);
        Ok(RiskCritic { layers: dense, scratch: [vec![0.0; widest], vec![0.0; widest]] })
    }

    /// Loads `layer0.weight`, `layer0.bias`, ... from a safetensors file and
    /// checks the input size the gate will feed it.
    pub fn load(path: &Path, expected_inputs: usize) -> Result<RiskCritic, CriticError> {
        let invalid = |reason: String| CriticError::Invalid { path: path.to_path_buf(), reason };
        let bytes = std::fs::read(path).map_err(|e| CriticError::Read { path: path.to_path_buf(), reason: e.to_string() })?;
        let tensors = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| invalid(format!("not a safetensors file: {e}")))?;
        let read = |name: &str| -> Result<(Vec<usize>, Vec<f32>), CriticError> {
            let view = tensors.tensor(name).map_err(|_| invalid(format!("tensor `{name}` missing")))?;
            if view.dtype() != safetensors::Dtype::F32 {
                return Err(invalid(format!("tensor `{name}` is {:?}, expected F32", view.dtype())));
            }
            let values = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            Ok((view.shape().to_vec(), values))
        };
        let mut layers = Vec::new();
        let mut i = 0;
        while tensors.names().iter().any(|n| *n == &format!("layer{i}.weight")) {
            let (shape, weight) = read(&format!("layer{i}.weight"))?;
            let (bias_shape, bias) = read(&format!("layer{i}.bias"))?;
            if shape.len() != 2 || bias_shape != [shape[0]] {
                return Err(invalid(format!("layer{i}: weight {shape:?} and bias {bias_shape:?} do not fit")));
            }
            layers.push((weight.chunks(shape[1]).map(|r| r.to_vec()).collect(), bias));
            i += 1;
        }
        let critic = RiskCritic::from_layers(layers).map_err(invalid)?;
        if critic.input_size() != expected_inputs {
            return Err(invalid(format!("takes {} inputs, the gate gives {expected_inputs} (positions, velocities and command of every joint)", critic.input_size())));
        }
        Ok(critic)
    }

    /// The risk in (0, 1) for `input`; no allocation.
    pub fn risk(&mut self, input: &[f32]) -> f32 {
        let [a, b] = &mut self.scratch;
        a[..input.len()].copy_from_slice(input);
        let (mut current, mut next) = (a, b);
        let last = self.layers.len() - 1;
        for (l, layer) in self.layers.iter().enumerate() {
            for o in 0..layer.outputs {
                let row = &layer.weight[o * layer.inputs..(o + 1) * layer.inputs];
                let z = dot(row, &current[..layer.inputs]) + layer.bias[o];
                next[o] = if l < last { z.max(0.0) } else { z };
            }
            std::mem::swap(&mut current, &mut next);
        }
        1.0 / (1.0 + (-current[0]).exp())
    }
}

/// A dot product with eight independent partial sums: a plain `sum()`
/// keeps float additions in order and cannot use SIMD lanes; this can.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let chunks = a.len() / 8;
    for (ca, cb) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for k in 0..8 {
            lanes[k] += ca[k] * cb[k];
        }
    }
    let mut total: f32 = lanes.iter().sum();
    for i in chunks * 8..a.len() {
        total += a[i] * b[i];
    }
    total
}

/// The control thread's end of a critic swap: new critics arrive (with
/// whether they act or only shadow), old ones leave to be dropped elsewhere.
pub struct CriticSlot {
    incoming: Receiver<(RiskCritic, bool)>,
    retired: Sender<RiskCritic>,
}

/// The loader's end: offers new critics and drops the retired ones.
pub struct CriticLoader {
    outgoing: Sender<(RiskCritic, bool)>,
    /// The loader's own view of the waiting slot: a newer offer takes the
    /// waiting one back (to be dropped here, off the control thread).
    waiting: Receiver<(RiskCritic, bool)>,
    retired: Receiver<RiskCritic>,
    inputs: usize,
}

/// A swap channel for a gate whose critics take `inputs` values.
pub fn critic_channel(inputs: usize) -> (CriticLoader, CriticSlot) {
    let (outgoing, incoming) = bounded(1);
    let (retire, retired) = bounded(4);
    (CriticLoader { outgoing, waiting: incoming.clone(), retired, inputs }, CriticSlot { incoming, retired: retire })
}

impl CriticLoader {
    /// Offers a new critic for the next tick, acting or in shadow mode; it
    /// replaces one offered before that the gate has not taken yet (the
    /// newest wins). Refused (and the gate keeps the critic it had) when it
    /// does not fit the gate.
    pub fn offer(&self, critic: RiskCritic, acting: bool) -> Result<(), CriticError> {
        while self.retired.try_recv().is_ok() {}
        if critic.input_size() != self.inputs {
            return Err(CriticError::Offered(format!("takes {} inputs, the gate gives {}: the gate keeps the critic it had", critic.input_size(), self.inputs)));
        }
        let mut offered = (critic, acting);
        loop {
            match self.outgoing.try_send(offered) {
                Ok(()) => return Ok(()),
                Err(crossbeam::channel::TrySendError::Full(back)) => {
                    let _ = self.waiting.try_recv();
                    offered = back;
                }
                Err(crossbeam::channel::TrySendError::Disconnected(_)) => return Err(CriticError::Offered("the gate is gone".into())),
            }
        }
    }

    /// Loads a critic file and offers it: a file that is missing,
    /// truncated, holds NaN weights or has the wrong input size is refused
    /// with the reason, and the gate keeps the critic it had.
    pub fn load_and_offer(&self, path: &Path, acting: bool) -> Result<(), CriticError> {
        self.offer(RiskCritic::load(path, self.inputs)?, acting)
    }
}

impl CriticSlot {
    /// Takes a waiting critic, if any, in place of `current`; whether it acts.
    pub fn swap_into(&self, current: &mut Option<RiskCritic>) -> Option<bool> {
        let (new, acting) = self.incoming.try_recv().ok()?;
        if let Some(old) = current.replace(new) {
            // Dropping frees memory: leave that to the loader's thread.
            let _ = self.retired.try_send(old);
        }
        Some(acting)
    }
}
