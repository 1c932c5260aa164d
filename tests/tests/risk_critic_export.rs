//! The learner exports a risk critic in the plain format and the gate's
//! pure-Rust evaluator computes the same risk as libtorch does.

use safety::RiskCritic;
use tch::{Device, Kind, Tensor};

#[test]
fn the_gate_evaluates_an_exported_critic_as_libtorch_does() {
    tch::manual_seed(3);
    let dims = [21i64, 64, 64, 1];
    let layers: Vec<(Tensor, Tensor)> = dims
        .windows(2)
        .map(|w| (Tensor::randn([w[0], w[1]], (Kind::Float, Device::Cpu)) * 0.2, Tensor::randn([w[1]], (Kind::Float, Device::Cpu)) * 0.1))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("risk.safetensors");
    policies::checkpoint::export_risk_critic(&layers, &path).unwrap();
    let mut critic = RiskCritic::load(&path, 21).unwrap();
    for _ in 0..50 {
        let x = Tensor::randn([1, 21], (Kind::Float, Device::Cpu));
        let mut h = x.shallow_clone();
        for (i, (w, b)) in layers.iter().enumerate() {
            h = h.matmul(w) + b;
            if i + 1 < layers.len() {
                h = h.relu();
            }
        }
        let expected = h.sigmoid().double_value(&[0, 0]) as f32;
        let input: Vec<f32> = Vec::try_from(&x.reshape([-1])).unwrap();
        let ours = critic.risk(&input);
        assert!((ours - expected).abs() < 1e-5, "rust {ours} vs libtorch {expected}");
    }
    assert!(RiskCritic::load(&path, 14).unwrap_err().to_string().contains("takes 21 inputs"));
}
