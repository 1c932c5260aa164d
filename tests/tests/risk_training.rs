//! The risk critic learned from the gate's own labels: a joint wanders by
//! random commands through a real `safety::Gate` with position limits; the
//! gate's clipping is the cost. Trained with the Recovery RL target, the
//! critic rates commands near the limit risky before any violation, is
//! exported in the plain format, and the gate's pure-Rust evaluator then
//! holds a risky command and passes a safe one.

use policies::risk::{RiskCriticTrainer, RiskDataset, RiskTick, RiskTrainerConfig};
use rrl_types::config::{Reflex, SafetyConfig};
use rrl_types::rng::Rng;
use rrl_types::{CommandMode, JointCommand, JointState, JointVec, Timestamp};
use safety::{ClipFlags, Gate, RiskCritic, Verdict};
use tch::Tensor;

const DT: f64 = 0.01;

fn gate() -> Gate {
    let safety: SafetyConfig = ron::from_str("(soft_margin_rad: 0.05, joints: [(name: \"j\", position: Some((min: -1.0, max: 1.0)), velocity: Some(50.0))])").unwrap();
    Gate::build(&safety, &["j".to_string()], 1.0 / DT).unwrap()
}

fn state(t: u64, p: f64, v: f64) -> JointState {
    JointState { stamp: Timestamp(t), position: JointVec::from_slice(&[p]).unwrap(), velocity: JointVec::from_slice(&[v]).unwrap(), effort: JointVec::zeros(1), wrench: None }
}

fn command(t: u64, c: f64) -> JointCommand {
    JointCommand { stamp: Timestamp(t), mode: CommandMode::Position, values: JointVec::from_slice(&[c]).unwrap() }
}

#[test]
fn a_critic_trained_on_gate_labels_anticipates_violations_and_the_gate_acts_on_it() {
    let mut rng = Rng::seed(11);
    let mut data = RiskDataset::new(3);
    for episode in 0..40 {
        let mut gate = gate();
        let (mut p, mut v) = (rng.uniform(-0.5, 0.5), 0.0);
        let mut drift = if episode % 2 == 0 { 0.04 } else { -0.04 };
        for tick in 0..150u64 {
            let t = (tick + 1) * 10_000_000;
            if rng.unit() < 0.05 {
                drift = -drift;
            }
            let c = p + drift + rng.uniform(-0.05, 0.05);
            let mut out = command(t, c);
            let verdict = gate.check(Timestamp(t), &state(t, p, v), &command(t, c), &mut out);
            let cost = match verdict {
                Verdict::Clipped(flags) => f32::from(u8::from(flags.contains(ClipFlags::POSITION))),
                Verdict::Pass => 0.0,
                other => panic!("unexpected verdict {other:?}"),
            };
            data.push(RiskTick { input: vec![p as f32, v as f32, c as f32], cost }).unwrap();
            let next = out.values[0];
            v = (next - p) / DT;
            p = next;
        }
        data.end_recording();
    }
    let rate = data.violation_rate();
    assert!(rate > 0.05 && rate < 0.6, "the walk should hit the limits sometimes: {rate}");

    let mut trainer = RiskCriticTrainer::new(3, RiskTrainerConfig { hidden: vec![32, 32], gamma_risk: 0.7, lr: 3e-3, batch_size: 128, ..RiskTrainerConfig::default() });
    for _ in 0..1500 {
        let loss = trainer.update(&data);
        assert!(loss.is_finite());
    }
    let risk = |p: f32, v: f32, c: f32| trainer.risk(&Tensor::from_slice(&[p, v, c]).reshape([1, 3])).double_value(&[0]);
    let violating = risk(0.94, 4.0, 1.0);
    let approaching = risk(0.85, 4.0, 0.89);
    let safe = risk(0.0, 4.0, 0.04);
    let retreating = risk(0.85, -4.0, 0.81);
    assert!(violating > 0.8, "a command past the soft limit: {violating}");
    assert!(approaching > 2.0 * safe && approaching > 0.2, "near the limit, heading out, no violation yet: {approaching} vs safe {safe}");
    assert!(safe < 0.1, "{safe}");
    assert!(retreating < approaching, "heading back in is safer: {retreating} vs {approaching}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("risk.safetensors");
    trainer.export(&path).unwrap();
    let mut exported = RiskCritic::load(&path, 3).unwrap();
    assert!((f64::from(exported.risk(&[0.85, 4.0, 0.89])) - approaching).abs() < 1e-4, "the gate computes what the learner computed");

    let mut gate = gate();
    let threshold = ((approaching + safe) / 2.0) as f32;
    gate.set_risk_critic(exported, threshold, Reflex::Hold).unwrap();
    let mut out = command(0, 0.0);
    // Settle the limiter on a safe course, then test one safe and one risky command.
    for (t, p, c) in [(10_000_000u64, 0.0, 0.04), (20_000_000, 0.04, 0.08)] {
        assert_eq!(gate.check(Timestamp(t), &state(t, p, 4.0), &command(t, c), &mut out), Verdict::Pass);
    }
    let mut risky_gate = self::gate();
    risky_gate.set_risk_critic(RiskCritic::load(&path, 3).unwrap(), threshold, Reflex::Hold).unwrap();
    let mut verdict = Verdict::Pass;
    for (i, p) in [0.77f64, 0.81, 0.85].iter().enumerate() {
        let t = (i as u64 + 1) * 10_000_000;
        verdict = risky_gate.check(Timestamp(t), &state(t, *p, 4.0), &command(t, p + 0.04), &mut out);
    }
    assert!(matches!(verdict, Verdict::Reflex { reflex: Reflex::Hold, .. }), "{verdict:?}");
}

/// The layers the learner publishes to a gate during practice are the
/// weights it exports: the gate's evaluator gives the same risk from either,
/// and both agree with the trainer's own.
#[test]
fn published_layers_and_the_exported_file_are_the_same_critic() {
    let mut trainer = RiskCriticTrainer::new(3, RiskTrainerConfig { hidden: vec![8, 5], ..RiskTrainerConfig::default() });
    let mut data = RiskDataset::new(3);
    let mut rng = Rng::seed(4);
    for i in 0..200 {
        let input: Vec<f32> = (0..3).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
        data.push(RiskTick { cost: f32::from(u8::from(input[0] > 0.5)), input }).unwrap();
        if i % 50 == 49 {
            data.end_recording();
        }
    }
    for _ in 0..20 {
        trainer.update(&data);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("critic.safetensors");
    trainer.export(&path).unwrap();
    let mut exported = RiskCritic::load(&path, 3).unwrap();
    let mut published = RiskCritic::from_layers(trainer.layers()).unwrap();
    for x in [[0.9f32, -0.2, 0.4], [-0.7, 0.1, 0.0], [0.2, 0.8, -0.9]] {
        let own = trainer.risk(&Tensor::from_slice(&x).reshape([1, 3])).double_value(&[0]) as f32;
        let (a, b) = (exported.risk(&x), published.risk(&x));
        assert!((a - b).abs() < 1e-6 && (a - own).abs() < 1e-5, "exported {a}, published {b}, trainer {own}");
    }
}
