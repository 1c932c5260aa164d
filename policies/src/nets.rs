//! Networks as plain tensors: an ensemble of MLPs computed as batched matrix
//! products (one `baddbmm` per layer for all members), optional LayerNorm,
//! and the tanh-Gaussian actor head. Parameters are named tensors so that
//! checkpoints, target copies and the optimizer see the same list.

use tch::{Device, Kind, Tensor};

use rrl_types::rng::Rng;

/// A parameter with its checkpoint name.
pub struct Param {
    pub name: String,
    pub tensor: Tensor,
}

struct Layer {
    weight: Tensor,
    bias: Tensor,
    /// LayerNorm gain and offset, on hidden layers only.
    norm: Option<(Tensor, Tensor)>,
}

/// `members` MLPs of identical shape evaluated together: input [B, in] (the
/// same for all members) or [members, B, in]; output [members, B, out].
pub struct EnsembleMlp {
    members: i64,
    layers: Vec<Layer>,
}

/// Uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) from our generator: PyTorch's
/// default Linear initialization, reproducible for a seed.
fn uniform(rng: &mut Rng, shape: &[i64], bound: f64, device: Device) -> Tensor {
    let count: i64 = shape.iter().product();
    let values: Vec<f32> = (0..count).map(|_| rng.uniform(-bound, bound) as f32).collect();
    Tensor::from_slice(&values).reshape(shape).to_device(device).set_requires_grad(true)
}

impl EnsembleMlp {
    pub fn new(rng: &mut Rng, members: i64, input: i64, hidden: &[i64], output: i64, layer_norm: bool, device: Device) -> EnsembleMlp {
        let mut layers = Vec::new();
        let mut fan_in = input;
        let widths: Vec<i64> = hidden.iter().copied().chain(std::iter::once(output)).collect();
        for (i, &width) in widths.iter().enumerate() {
            let bound = 1.0 / (fan_in as f64).sqrt();
            let weight = uniform(rng, &[members, fan_in, width], bound, device);
            let bias = uniform(rng, &[members, 1, width], bound, device);
            let is_hidden = i + 1 < widths.len();
            let norm = (layer_norm && is_hidden).then(|| {
                (
                    Tensor::ones([members, 1, width], (Kind::Float, device)).set_requires_grad(true),
                    Tensor::zeros([members, 1, width], (Kind::Float, device)).set_requires_grad(true),
                )
            });
            layers.push(Layer { weight, bias, norm });
            fan_in = width;
        }
        EnsembleMlp { members, layers }
    }

    pub fn members(&self) -> i64 {
        self.members
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_with(x, self.members, |t| t.shallow_clone())
    }

    /// Only the members listed in `subset` (an i64 index tensor): their
    /// parameters are gathered first, so the others cost nothing.
    pub fn forward_members(&self, x: &Tensor, subset: &Tensor) -> Tensor {
        self.forward_with(x, subset.size()[0], |t| t.index_select(0, subset))
    }

    fn forward_with(&self, x: &Tensor, members: i64, select: impl Fn(&Tensor) -> Tensor) -> Tensor {
        let mut h = if x.dim() == 2 {
            let size = x.size();
            x.unsqueeze(0).expand([members, size[0], size[1]], false)
        } else {
            x.shallow_clone()
        };
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            h = select(&layer.bias).baddbmm(&h, &select(&layer.weight), 1.0, 1.0);
            if i < last {
                if let Some((gain, offset)) = &layer.norm {
                    let width = h.size()[2];
                    h = h.layer_norm([width], None::<Tensor>, None::<Tensor>, 1e-5, false) * select(gain) + select(offset);
                }
                h = h.relu();
            }
        }
        h
    }

    /// Parameters in a fixed order, named `prefix.layer{i}.{weight,bias,gain,offset}`.
    pub fn params(&self, prefix: &str) -> Vec<Param> {
        let mut out = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            out.push(Param { name: format!("{prefix}.layer{i}.weight"), tensor: layer.weight.shallow_clone() });
            out.push(Param { name: format!("{prefix}.layer{i}.bias"), tensor: layer.bias.shallow_clone() });
            if let Some((gain, offset)) = &layer.norm {
                out.push(Param { name: format!("{prefix}.layer{i}.gain"), tensor: gain.shallow_clone() });
                out.push(Param { name: format!("{prefix}.layer{i}.offset"), tensor: offset.shallow_clone() });
            }
        }
        out
    }

    /// A copy with its own storage and no gradient (for targets).
    pub fn detached_copy(&self) -> EnsembleMlp {
        let copy = |t: &Tensor| t.detach().copy().set_requires_grad(false);
        EnsembleMlp {
            members: self.members,
            layers: self
                .layers
                .iter()
                .map(|l| Layer { weight: copy(&l.weight), bias: copy(&l.bias), norm: l.norm.as_ref().map(|(g, o)| (copy(g), copy(o))) })
                .collect(),
        }
    }
}

/// Log-std range of the actor, as in the common SAC implementations.
const LOG_STD_MIN: f64 = -5.0;
const LOG_STD_MAX: f64 = 2.0;

/// A tanh-squashed Gaussian policy on an MLP trunk; actions in [-1, 1].
pub struct GaussianActor {
    pub trunk: EnsembleMlp,
    action_size: i64,
}

impl GaussianActor {
    pub fn new(rng: &mut Rng, observation: i64, action: i64, hidden: &[i64], layer_norm: bool, device: Device) -> GaussianActor {
        GaussianActor { trunk: EnsembleMlp::new(rng, 1, observation, hidden, 2 * action, layer_norm, device), action_size: action }
    }

    fn mean_and_log_std(&self, observation: &Tensor) -> (Tensor, Tensor) {
        let out = self.trunk.forward(observation).squeeze_dim(0);
        let parts = out.split(self.action_size, -1);
        let log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (parts[1].tanh() + 1.0);
        (parts[0].shallow_clone(), log_std)
    }

    /// A sampled action and its log-probability, with `noise` ~ N(0, 1) of
    /// shape [B, action] supplied by the caller (reproducible randomness).
    pub fn sample(&self, observation: &Tensor, noise: &Tensor) -> (Tensor, Tensor) {
        let (mean, log_std) = self.mean_and_log_std(observation);
        let pre_tanh = &mean + log_std.exp() * noise;
        let action = pre_tanh.tanh();
        let gaussian = (noise.square() * -0.5 - &log_std - 0.5 * (2.0 * std::f64::consts::PI).ln()).sum_dim_intlist(-1, false, Kind::Float);
        let squash = (action.square().neg() + (1.0 + 1e-6)).log().sum_dim_intlist(-1, false, Kind::Float);
        (action, gaussian - squash)
    }

    /// Zeroes the output layer, so the mean action starts at exactly 0 (a
    /// residual policy then starts as its base policy), with the standard
    /// deviation `std` before the squash (`None`: the middle of the log-std
    /// range, e^-1.5 ≈ 0.22).
    pub fn zero_output(&mut self, std: Option<f64>) {
        let action_size = self.action_size;
        tch::no_grad(|| {
            let last = self.trunk.layers.last_mut().expect("at least one layer");
            let _ = last.weight.zero_();
            let _ = last.bias.zero_();
            if let Some(std) = std {
                // The inverse of `mean_and_log_std`'s map from the layer's output to the log-std.
                let unit = 2.0 * (std.ln().clamp(LOG_STD_MIN, LOG_STD_MAX) - LOG_STD_MIN) / (LOG_STD_MAX - LOG_STD_MIN) - 1.0;
                let _ = last.bias.narrow(-1, action_size, action_size).fill_(unit.clamp(-0.999_999, 0.999_999).atanh());
            }
        });
    }

    /// The standard deviation before the squash, per action, at `observation` [B, O].
    pub fn std(&self, observation: &Tensor) -> Tensor {
        self.mean_and_log_std(observation).1.exp()
    }

    /// The deterministic action: tanh of the mean.
    pub fn mean_action(&self, observation: &Tensor) -> Tensor {
        self.mean_and_log_std(observation).0.tanh()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensemble_members_are_independent_networks_computed_together() {
        let mut rng = Rng::seed(1);
        let net = EnsembleMlp::new(&mut rng, 3, 4, &[8, 8], 1, true, Device::Cpu);
        let x = Tensor::randn([5, 4], (Kind::Float, Device::Cpu));
        let all = net.forward(&x);
        assert_eq!(all.size(), [3, 5, 1]);
        // Member 1 computed alone, by hand, must equal its slice of the batch.
        let params = net.params("q");
        let w: Vec<Tensor> = params.iter().filter(|p| p.name.ends_with("weight")).map(|p| p.tensor.get(1)).collect();
        let b: Vec<Tensor> = params.iter().filter(|p| p.name.ends_with("bias")).map(|p| p.tensor.get(1)).collect();
        let mut h = x.matmul(&w[0]) + &b[0];
        h = h.layer_norm([8], None::<Tensor>, None::<Tensor>, 1e-5, false).relu();
        h = h.matmul(&w[1]) + &b[1];
        h = h.layer_norm([8], None::<Tensor>, None::<Tensor>, 1e-5, false).relu();
        let alone = h.matmul(&w[2]) + &b[2];
        let diff = (all.get(1) - alone).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "member 1 differs by {diff}");
        assert!((all.get(0) - all.get(1)).abs().max().double_value(&[]) > 1e-3, "members must differ");
    }

    #[test]
    fn a_member_subset_equals_the_same_members_of_the_full_ensemble() {
        let mut rng = Rng::seed(3);
        let net = EnsembleMlp::new(&mut rng, 5, 4, &[8], 2, true, Device::Cpu);
        let x = Tensor::randn([6, 4], (Kind::Float, Device::Cpu));
        let subset = Tensor::from_slice(&[3i64, 1]);
        let picked = net.forward_members(&x, &subset);
        let full = net.forward(&x).index_select(0, &subset);
        assert!((picked - full).abs().max().double_value(&[]) < 1e-6);
    }

    #[test]
    fn actor_log_prob_matches_the_change_of_variables() {
        let mut rng = Rng::seed(2);
        let actor = GaussianActor::new(&mut rng, 3, 2, &[16], false, Device::Cpu);
        let obs = Tensor::randn([4, 3], (Kind::Float, Device::Cpu));
        let noise = Tensor::randn([4, 2], (Kind::Float, Device::Cpu));
        let (action, log_prob) = actor.sample(&obs, &noise);
        assert!(action.abs().max().double_value(&[]) < 1.0);
        let (mean, log_std) = actor.mean_and_log_std(&obs);
        let pre = &mean + log_std.exp() * &noise;
        let std = log_std.exp();
        let normal: Tensor = (-(&pre - &mean).square() / (std.square() * 2.0) - std.log() - 0.5 * (2.0 * std::f64::consts::PI).ln()).sum_dim_intlist(-1, false, Kind::Float);
        let expected = normal - (pre.tanh().square().neg() + (1.0 + 1e-6)).log().sum_dim_intlist(-1, false, Kind::Float);
        assert!((log_prob - expected).abs().max().double_value(&[]) < 1e-4);
    }
}
