//! The learned risk critic in the gate: evaluation, refusal of bad weights,
//! reflexes, and swapping weights between ticks.

mod common;

use common::*;
use rrl_types::config::Reflex;
use rrl_types::{JointCommand, Timestamp};
use safety::{CriticError, RiskCritic, Verdict};

/// One linear layer over the 21 inputs: risk = sigmoid(scale · (command of joint 1 − edge)),
/// joints counted from 0 (the shoulder, which the tests drive).
fn edge_critic(edge: f32, scale: f32) -> RiskCritic {
    let mut weight = vec![0.0f32; 21];
    weight[14 + 1] = scale; // inputs: 7 positions, 7 velocities, 7 commands
    RiskCritic::from_layers(vec![(vec![weight], vec![-scale * edge])]).unwrap()
}

#[test]
fn a_two_layer_critic_computes_what_the_formula_says() {
    let mut critic = RiskCritic::from_layers(vec![(vec![vec![1.0, -1.0], vec![0.5, 0.5]], vec![0.0, -1.0]), (vec![vec![2.0, 1.0]], vec![0.25])]).unwrap();
    let x = [2.0f32, 0.5];
    let h = [(2.0f32 - 0.5).max(0.0), (1.0f32 + 0.25 - 1.0).max(0.0)];
    let expected = 1.0 / (1.0 + (-(2.0 * h[0] + h[1] + 0.25)).exp());
    assert!((critic.risk(&x) - expected).abs() < 1e-6);
}

#[test]
fn nan_weights_and_wrong_shapes_are_refused() {
    assert!(RiskCritic::from_layers(vec![(vec![vec![f32::NAN]], vec![0.0])]).unwrap_err().contains("NaN"));
    assert!(RiskCritic::from_layers(vec![(vec![vec![1.0, 2.0]], vec![0.0]), (vec![vec![1.0, 1.0]], vec![0.0])]).unwrap_err().contains("takes 2 inputs"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("critic.safetensors");
    std::fs::write(&path, b"not a safetensors file at all").unwrap();
    assert!(matches!(RiskCritic::load(&path, 21), Err(CriticError::Invalid { .. })));
}

#[test]
fn a_risky_command_triggers_the_hold_reflex_and_a_safe_one_passes() {
    let mut gate = panda_gate();
    gate.set_risk_critic(edge_critic(-0.7, 200.0), 0.5, Reflex::Hold).unwrap();
    let mut out = JointCommand::default();
    let mut target = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785];
    let mut last = Verdict::Pass;
    let mut reflexes = 0;
    for t in 0..400u64 {
        let now = 1_000_000_000 + t * TICK_NS;
        target[1] = -0.785 + 0.001 * t as f64; // creeps toward the risky edge at -0.7
        last = gate.check(Timestamp(now), &home_state(now), &position_command(&target, now), &mut out);
        if let Verdict::Reflex { risk, reflex } = last {
            assert!(risk > 0.5 && reflex == Reflex::Hold);
            reflexes += 1;
            assert!(out.values[1] < -0.7 + 0.01, "the held command stays on the safe side: {}", out.values[1]);
        }
    }
    assert!(reflexes > 100, "commands past the edge must trigger the reflex ({reflexes})");
    assert!(matches!(last, Verdict::Reflex { .. }));
}

/// Drives joint 1 at the risky edge, then pushes on past it for a while;
/// returns the last forwarded command of joint 1 and the reflex count.
fn push_past_the_edge(reflex: Reflex) -> (f64, usize) {
    let mut gate = panda_gate();
    gate.set_risk_critic(edge_critic(-0.7, 200.0), 0.5, reflex).unwrap();
    let mut out = JointCommand::default();
    let mut target = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785];
    let mut reflexes = 0;
    for t in 0..600u64 {
        let now = 1_000_000_000 + t * TICK_NS;
        // Creeps toward the edge at -0.7, then keeps asking for -0.6.
        target[1] = (-0.785 + 0.001 * t as f64).min(-0.6);
        if let Verdict::Reflex { reflex: r, .. } = gate.check(Timestamp(now), &home_state(now), &position_command(&target, now), &mut out) {
            assert_eq!(r, reflex);
            reflexes += 1;
        }
    }
    (out.values[1], reflexes)
}

/// Hold stops at the edge; Recover backs off to where the critic was
/// comfortable (risk below half the threshold: 5.5 mrad inside the edge for
/// this critic), within the joint limits.
#[test]
fn the_recover_reflex_backs_off_to_a_comfortably_safe_command() {
    let (held, held_reflexes) = push_past_the_edge(Reflex::Hold);
    let (recovered, recover_reflexes) = push_past_the_edge(Reflex::Recover);
    assert!(held_reflexes > 100 && recover_reflexes > 100, "{held_reflexes} {recover_reflexes}");
    let comfortable = -0.7 - (3.0f64).ln() / 200.0;
    assert!(held > comfortable, "Hold stays in the borderline band: {held}");
    assert!(recovered <= comfortable + 1e-9, "Recover backs off to a comfortable command: {recovered} vs {comfortable}");
    assert!(recovered > -0.75, "and not further than that: {recovered}");
}

/// Once the source asks for something safe again, Recover lets go and the
/// command is followed.
#[test]
fn recover_lets_go_when_the_source_asks_for_a_safe_command() {
    let mut gate = panda_gate();
    gate.set_risk_critic(edge_critic(-0.7, 200.0), 0.5, Reflex::Recover).unwrap();
    let mut out = JointCommand::default();
    let mut target = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785];
    let mut verdicts = Vec::new();
    for t in 0..1200u64 {
        let now = 1_000_000_000 + t * TICK_NS;
        target[1] = if t < 600 { (-0.785 + 0.001 * t as f64).min(-0.6) } else { -0.75 };
        verdicts.push(gate.check(Timestamp(now), &home_state(now), &position_command(&target, now), &mut out));
    }
    assert!(verdicts[..600].iter().any(|v| matches!(v, Verdict::Reflex { reflex: Reflex::Recover, .. })));
    assert!(verdicts[1000..].iter().all(|v| !matches!(v, Verdict::Reflex { .. })), "the latch must let go");
    assert!((out.values[1] + 0.75).abs() < 0.05, "follows the safe command again: {}", out.values[1]);
}

#[test]
fn new_weights_take_effect_on_the_next_tick() {
    let mut gate = panda_gate();
    gate.set_risk_critic(edge_critic(10.0, 1.0), 0.9, Reflex::Hold).unwrap();
    let loader = gate.critic_loader();
    let home = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785];
    let mut out = JointCommand::default();
    let now = 1_000_000_000;
    assert_eq!(gate.check(Timestamp(now), &home_state(now), &position_command(&home, now), &mut out), Verdict::Pass);
    loader.offer(edge_critic(-1.0, 50.0), true).expect("the slot was empty");
    let now = now + TICK_NS;
    assert!(matches!(gate.check(Timestamp(now), &home_state(now), &position_command(&home, now), &mut out), Verdict::Reflex { .. }));
}

#[test]
fn a_critic_of_the_wrong_input_size_is_refused_by_the_gate() {
    let mut gate = panda_gate();
    let small = RiskCritic::from_layers(vec![(vec![vec![1.0; 5]], vec![0.0])]).unwrap();
    let err = gate.set_risk_critic(small, 0.5, Reflex::Hold).unwrap_err();
    assert!(err.to_string().contains("takes 5 inputs, the gate gives 21"), "{err}");
}

/// `layers` as a safetensors file in the gate's format.
fn write_critic(path: &std::path::Path, layers: &[(Vec<f32>, [usize; 2], Vec<f32>)]) {
    let mut tensors = Vec::new();
    for (i, (weight, shape, bias)) in layers.iter().enumerate() {
        let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        tensors.push((format!("layer{i}.weight"), shape.to_vec(), bytes(weight)));
        tensors.push((format!("layer{i}.bias"), vec![shape[0]], bytes(bias)));
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors.iter().map(|(name, shape, data)| (name.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data).unwrap())).collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

/// The gate's verdict on the home pose's command, one tick later each call.
fn home_verdict(gate: &mut safety::Gate, tick: &mut u64) -> Verdict {
    let home = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785];
    *tick += 1;
    let now = 1_000_000_000 + *tick * TICK_NS;
    let mut out = JointCommand::default();
    gate.check(Timestamp(now), &home_state(now), &position_command(&home, now), &mut out)
}

/// Fault matrix: bad risk critic offered | a mis-sized, NaN or truncated critic offered to a running gate | refused; the gate keeps its critic | the reason named; the reflex goes on
#[test]
fn bad_critic_files_offered_at_run_time_are_refused_and_the_gate_keeps_its_critic() {
    let mut gate = panda_gate();
    // A critic that finds the home pose risky: every tick reflexes.
    gate.set_risk_critic(edge_critic(-1.0, 50.0), 0.5, Reflex::Hold).unwrap();
    let loader = gate.critic_loader();
    let mut tick = 0;
    assert!(matches!(home_verdict(&mut gate, &mut tick), Verdict::Reflex { .. }));
    let dir = tempfile::tempdir().unwrap();
    // Wrong input size (5 inputs), NaN weights, a file cut short.
    let small = dir.path().join("small.safetensors");
    write_critic(&small, &[(vec![0.0; 5], [1, 5], vec![-9.0])]);
    let nan = dir.path().join("nan.safetensors");
    let mut weights = vec![0.0; 21];
    weights[3] = f32::NAN;
    write_critic(&nan, &[(weights, [1, 21], vec![-9.0])]);
    let whole = dir.path().join("whole.safetensors");
    write_critic(&whole, &[(vec![0.0; 21], [1, 21], vec![-9.0])]);
    let truncated = dir.path().join("truncated.safetensors");
    let bytes = std::fs::read(&whole).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() - 7]).unwrap();
    for (path, reason) in [(&small, "takes 5 inputs, the gate gives 21"), (&nan, "NaN"), (&truncated, "not a safetensors file")] {
        let err = loader.load_and_offer(path, true).unwrap_err().to_string();
        assert!(err.contains(reason) && err.contains(path.file_name().unwrap().to_str().unwrap()), "{err}");
        assert!(matches!(home_verdict(&mut gate, &mut tick), Verdict::Reflex { .. }), "after {}: the gate keeps its critic", path.display());
    }
    // A good file (risk sigmoid(-9), never risky) takes over on the next tick.
    loader.load_and_offer(&whole, true).unwrap();
    assert_eq!(home_verdict(&mut gate, &mut tick), Verdict::Pass);
}

#[test]
fn a_critic_in_shadow_mode_is_scored_and_recorded_but_does_not_act() {
    // A launch file asking for a critic trained online: rules only until the learner's first one.
    let mut safety = panda_safety();
    safety.risk_critic = Some(rrl_types::config::RiskCriticConfig { weights: String::new(), online: Some(Default::default()), threshold: 0.5, reflex: Reflex::Hold });
    let names: Vec<String> = rrl_types::config::RobotPreset::FrankaPanda.joint_names().iter().map(|s| s.to_string()).collect();
    let mut gate = safety::Gate::build(&safety, &names, 1000.0).unwrap();
    let loader = gate.critic_loader();
    let mut tick = 0;
    loader.offer(edge_critic(-1.0, 50.0), false).unwrap();
    assert_eq!(home_verdict(&mut gate, &mut tick), Verdict::Pass, "in shadow mode the command goes on");
    assert!(!gate.risk_critic_acting());
    let state = home_state(1_000_000_000 + tick * TICK_NS);
    let record = gate.tick_record(Timestamp(state.stamp.0), &state, &Verdict::Pass, &JointCommand::default());
    assert!(record.risk > 0.99, "the shadow critic's risk is recorded: {}", record.risk);
    assert_eq!(record.index, tick);
    // Trusted: the same critic now acts (the gate's threshold and reflex stay the built ones).
    loader.offer(edge_critic(-1.0, 50.0), true).unwrap();
    assert!(matches!(home_verdict(&mut gate, &mut tick), Verdict::Reflex { .. }));
}
