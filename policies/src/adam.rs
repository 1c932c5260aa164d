//! Adam whose moments are ordinary tensors we own, so that a checkpoint can
//! save and restore them (libtorch's optimizer state is not reachable from
//! tch), with optional global gradient-norm clipping.

use tch::{Kind, Tensor};

pub struct Adam {
    pub params: Vec<Tensor>,
    pub first_moments: Vec<Tensor>,
    pub second_moments: Vec<Tensor>,
    pub steps: i64,
    pub lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    max_grad_norm: Option<f64>,
}

impl Adam {
    pub fn new(params: Vec<Tensor>, lr: f64, max_grad_norm: Option<f64>) -> Adam {
        let zeros = |p: &Tensor| p.zeros_like().set_requires_grad(false);
        let first_moments = params.iter().map(zeros).collect();
        let second_moments = params.iter().map(zeros).collect();
        Adam { params, first_moments, second_moments, steps: 0, lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, max_grad_norm }
    }

    /// Clears gradients before a backward pass.
    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.zero_grad();
        }
    }

    /// One update from the gradients of the last backward pass. A parameter
    /// without a gradient (unused in the loss) is left as it is.
    pub fn step(&mut self) {
        tch::no_grad(|| {
            self.steps += 1;
            let grads: Vec<Option<Tensor>> = self.params.iter().map(|p| Some(p.grad()).filter(|g| g.defined())).collect();
            // Global norm clipping without a device sync: the scale stays a tensor.
            let scale = self.max_grad_norm.map(|max| {
                let total = grads.iter().flatten().map(|g| g.square().sum(Kind::Float)).fold(Tensor::from(0.0f32).to_device(self.params[0].device()), |a, b| a + b).sqrt();
                (max / (total + 1e-6)).clamp_max(1.0)
            });
            let bias1 = 1.0 - self.beta1.powi(self.steps as i32);
            let bias2 = 1.0 - self.beta2.powi(self.steps as i32);
            // p -= lr/b1 · m / (sqrt(v)/sqrt(b2) + eps), rearranged so that
            // every scalar folds into one pass: p += m / ((sqrt(v) + eps·sqrt(b2)) / (−lr·sqrt(b2)/b1)).
            let step_scale = -self.lr * bias2.sqrt() / bias1;
            let eps = self.eps * bias2.sqrt();
            for (i, grad) in grads.into_iter().enumerate() {
                let Some(mut grad) = grad else { continue };
                if let Some(scale) = &scale {
                    grad = grad * scale;
                }
                let _ = self.first_moments[i].lerp_(&grad, 1.0 - self.beta1);
                let _ = self.second_moments[i].lerp_(&grad.square(), 1.0 - self.beta2);
                let mut denom = self.second_moments[i].sqrt();
                let _ = denom.g_add_scalar_(eps);
                let _ = denom.g_div_scalar_(step_scale);
                let _ = self.params[i].addcdiv_(&self.first_moments[i], &denom);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// Same trajectory as PyTorch's Adam on f(x) = sum((x - 3)^2), computed
    /// by the textbook update in f64.
    #[test]
    fn matches_the_textbook_update() {
        let x = Tensor::from_slice(&[0.0f32, 1.0, -2.0]).set_requires_grad(true);
        let mut adam = Adam::new(vec![x.shallow_clone()], 0.1, None);
        let mut reference = [0.0f64, 1.0, -2.0];
        let (mut m, mut v) = ([0.0f64; 3], [0.0f64; 3]);
        for t in 1..=20 {
            adam.zero_grad();
            (&x - 3.0).square().sum(Kind::Float).backward();
            adam.step();
            for i in 0..3 {
                let g = 2.0 * (reference[i] - 3.0);
                m[i] = 0.9 * m[i] + 0.1 * g;
                v[i] = 0.999 * v[i] + 0.001 * g * g;
                let mh = m[i] / (1.0 - 0.9f64.powi(t));
                let vh = v[i] / (1.0 - 0.999f64.powi(t));
                reference[i] -= 0.1 * mh / (vh.sqrt() + 1e-8);
            }
        }
        let got: Vec<f32> = Vec::<f32>::try_from(&x.to_device(Device::Cpu)).unwrap();
        for i in 0..3 {
            assert!((got[i] as f64 - reference[i]).abs() < 1e-4, "{got:?} vs {reference:?}");
        }
    }

    #[test]
    fn clipping_bounds_the_step_of_a_huge_gradient() {
        let x = Tensor::from_slice(&[0.0f32]).set_requires_grad(true);
        let mut adam = Adam::new(vec![x.shallow_clone()], 1.0, Some(1.0));
        (&x * 1e6).sum(Kind::Float).backward();
        adam.step();
        // Adam's first step moves by lr whatever the scale; the moments see the clipped gradient.
        let m = adam.first_moments[0].double_value(&[0]);
        assert!((m - 0.1).abs() < 1e-4, "first moment of a gradient clipped to norm 1: {m}");
    }
}
