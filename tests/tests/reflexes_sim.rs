//! The risk critic's three reflexes on the simulated Panda (MuJoCo, the
//! inverse-kinematics controller, the gate at 100 Hz between it and the
//! joints). The policy keeps pushing the hand forward, which swings the
//! shoulder (joint 1) forward; a critic judges any shoulder command past an
//! edge risky. Without it the shoulder sweeps far past the edge; Hold stops
//! it at the edge, Decelerate lets it coast in and come to rest there, and
//! Recover backs it off to where the critic was comfortable and keeps it
//! there while the policy insists.

use rrl_types::config::{Reflex, SafetyConfig};
use rrl_types::{Environment, PracticeTask, TickDecimator, TickVerdict};
use safety::RiskCritic;
use sim_bridge::panda::{PandaTask, PandaVariant, RewardKind};

/// How far past its home angle the shoulder may be commanded, rad.
const PAST_HOME: f64 = 0.08;

/// risk = sigmoid(60 · (shoulder command − edge)); inputs: 7 positions, 7 velocities, 7 commands.
fn edge_critic(edge: f64) -> RiskCritic {
    let mut weight = vec![0.0f32; 21];
    weight[14 + 1] = 60.0;
    RiskCritic::from_layers(vec![(vec![weight], vec![-60.0 * edge as f32])]).unwrap()
}

/// 40 steps of pushing the hand forward; the shoulder's measured angle
/// after each, the reflex ticks, and the shoulder's home angle.
fn push_forward(reflex: Option<Reflex>) -> (Vec<f64>, u64, f64) {
    let mut task = PandaTask::new(PandaVariant::Reach, RewardKind::Dense).unwrap();
    task.set_max_episode_steps(1000);
    task.reset(3);
    let home = task.sim().joint_positions()[1];
    let names: Vec<String> = sim_bridge::arm::PANDA_JOINTS.iter().map(|s| s.to_string()).collect();
    let safety: SafetyConfig = ron::from_str("(preset: Some(FrankaPanda))").unwrap();
    let mut gate = safety::Gate::build(&safety, &names, task.control_rate_hz()).unwrap();
    if let Some(reflex) = reflex {
        gate.set_risk_critic(edge_critic(home + PAST_HOME), 0.5, reflex).unwrap();
    }
    task.set_gate(gate);
    task.record_gate_ticks(TickDecimator::new(1));
    let mut shoulder = Vec::new();
    let mut ticks = Vec::new();
    for _ in 0..40 {
        task.step(&[1.0, 0.0, 0.0, 0.0]).unwrap();
        shoulder.push(task.sim().joint_positions()[1]);
    }
    task.take_gate_ticks(&mut ticks);
    let reflexes = ticks.iter().filter(|t| t.verdict == TickVerdict::Reflex).count() as u64;
    (shoulder, reflexes, home)
}

#[test]
fn each_reflex_keeps_the_shoulder_off_the_risky_region_its_own_way() {
    let (free, none, home) = push_forward(None);
    let edge = home + PAST_HOME;
    assert_eq!(none, 0);
    let free_max = free.iter().copied().fold(f64::MIN, f64::max);
    assert!(free_max > edge + 0.1, "without a critic the shoulder goes to {free_max:.3}, the edge is at {edge:.3}");

    let (held, reflexes, _) = push_forward(Some(Reflex::Hold));
    let held_max = held.iter().copied().fold(f64::MIN, f64::max);
    assert!(reflexes > 100 && held_max < edge + 0.02, "Hold: the shoulder reached {held_max:.3} (edge {edge:.3}), {reflexes} reflexes");
    let last = &held[held.len() - 10..];
    assert!(last.iter().all(|q| (q - last[0]).abs() < 2e-3), "Hold: the shoulder still moves: {last:?}");

    let (coasted, reflexes, _) = push_forward(Some(Reflex::Decelerate));
    let coasted_max = coasted.iter().copied().fold(f64::MIN, f64::max);
    assert!(reflexes > 100 && coasted_max < edge + 0.02, "Decelerate: the shoulder reached {coasted_max:.3} (edge {edge:.3})");
    let last = &coasted[coasted.len() - 10..];
    assert!(last.iter().all(|q| (q - last[0]).abs() < 2e-3), "Decelerate: the shoulder comes to rest: {last:?}");

    let (recovered, reflexes, _) = push_forward(Some(Reflex::Recover));
    let recovered_max = recovered.iter().copied().fold(f64::MIN, f64::max);
    let end = *recovered.last().unwrap();
    // Comfortable: risk below 0.25, a command below edge − ln 3 / 60 ≈ edge − 0.018.
    assert!(reflexes > 100 && end < edge - 0.015, "Recover: the shoulder ends at {end:.3}, the edge is at {edge:.3}");
    assert!(recovered_max - end > 0.005, "Recover: the shoulder came back from {recovered_max:.3} to {end:.3}");
}
