//! Property tests of the gate's invariants over arbitrary command and state
//! sequences, and one fault-injection test per check.

mod common;

use common::*;
use proptest::prelude::*;
use rrl_types::{CommandMode, JointCommand, JointVec, Timestamp};
use safety::{preset_limits, ClipFlags, HoldReason, Verdict};

#[derive(Debug, Clone)]
struct Tick {
    target: [f64; 7],
    nan_joint: Option<usize>,
    command_age_ms: u64,
    state_age_ms: u64,
}

fn tick() -> impl Strategy<Value = Tick> {
    (
        prop::array::uniform7(-4.0f64..4.0),
        prop::option::weighted(0.05, 0usize..7),
        prop_oneof![9 => 0u64..10, 1 => 21u64..500],
        prop_oneof![9 => 0u64..10, 1 => 21u64..500],
    )
        .prop_map(|(target, nan_joint, command_age_ms, state_age_ms)| Tick { target, nan_joint, command_age_ms, state_age_ms })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Every forwarded command is inside the soft position limits and
    /// respects velocity and acceleration limits relative to the previous
    /// forwarded command; stale or NaN input holds on that very tick.
    #[test]
    fn forwarded_commands_satisfy_every_limit(ticks in prop::collection::vec(tick(), 1..300)) {
        let limits = preset_limits(rrl_types::config::RobotPreset::FrankaPanda);
        let margin = panda_safety().soft_margin_rad;
        let dt = 0.001;
        let mut gate = panda_gate();
        let mut out = JointCommand::default();
        // Positions and velocities of the last command sent; the gate starts at rest at the measured (home) position.
        let mut previous: Option<([f64; 7], [f64; 7])> = Some((HOME, [0.0; 7]));
        for (t, tick) in ticks.iter().enumerate() {
            let now = 1_000_000_000 + t as u64 * TICK_NS;
            let state = home_state(now - tick.state_age_ms * 1_000_000);
            let mut target = tick.target;
            if let Some(j) = tick.nan_joint { target[j] = f64::NAN; }
            let command = position_command(&target, now - tick.command_age_ms * 1_000_000);
            let verdict = gate.check(Timestamp(now), &state, &command, &mut out);
            let bad_input = tick.nan_joint.is_some() || tick.command_age_ms > 20 || tick.state_age_ms > 20;
            if bad_input {
                prop_assert!(matches!(verdict, Verdict::Held(_)), "tick {t}: bad input forwarded: {verdict:?}");
                // A hold is a stop at the held position: motion restarts from rest there.
                // Before any fresh state nothing is sent and the arm rests where it is.
                previous = Some(if out.values.is_empty() { (HOME, [0.0; 7]) } else { (std::array::from_fn(|j| out.values[j]), [0.0; 7]) });
                continue;
            }
            prop_assert!(!matches!(verdict, Verdict::Held(_)), "tick {t}: good input held: {verdict:?}");
            let mut velocities = [0.0; 7];
            for j in 0..7 {
                let p = out.values[j];
                let l = limits[j].1;
                let (lo, hi) = l.position.unwrap();
                prop_assert!(p >= lo + margin - 1e-12 && p <= hi - margin + 1e-12, "joint {j} at {p} outside [{lo}, {hi}] less margin");
                if let Some((prev_p, prev_v)) = previous {
                    let v = (p - prev_p[j]) / dt;
                    prop_assert!(v.abs() <= l.velocity.unwrap() + 1e-6, "joint {j}: velocity {v}");
                    prop_assert!((v - prev_v[j]).abs() / dt <= l.acceleration.unwrap() + 1e-3, "joint {j}: acceleration {}", (v - prev_v[j]) / dt);
                    velocities[j] = v;
                }
            }
            let positions: [f64; 7] = std::array::from_fn(|j| out.values[j]);
            previous = Some((positions, velocities));
        }
    }
}

fn fresh_tick(gate: &mut safety::Gate, t: u64, target: &[f64]) -> (Verdict, JointCommand) {
    let now = 1_000_000_000 + t * TICK_NS;
    let mut out = JointCommand::default();
    let v = gate.check(Timestamp(now), &home_state(now), &position_command(target, now), &mut out);
    (v, out)
}

const HOME: [f64; 7] = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785];

#[test]
fn nothing_is_sent_before_a_fresh_state() {
    let mut gate = panda_gate();
    let now = 1_000_000_000;
    let mut out = JointCommand::default();
    let verdict = gate.check(Timestamp(now), &home_state(now - 500_000_000), &position_command(&HOME, now), &mut out);
    assert_eq!(verdict, Verdict::Held(HoldReason::StaleState));
    assert!(out.values.is_empty(), "no safe command exists yet: {out:?}");
}

#[test]
fn estop_latches_until_an_explicit_reset() {
    let mut gate = panda_gate();
    assert_eq!(fresh_tick(&mut gate, 0, &HOME).0, Verdict::Pass);
    gate.estop().trip();
    for t in 1..50 {
        assert_eq!(fresh_tick(&mut gate, t, &HOME).0, Verdict::Held(HoldReason::EStop));
    }
    gate.reset_estop();
    assert_eq!(fresh_tick(&mut gate, 50, &HOME).0, Verdict::Pass);
}

#[test]
fn a_stale_command_holds_at_the_last_forwarded_position() {
    let mut gate = panda_gate();
    let (_, first) = fresh_tick(&mut gate, 0, &HOME);
    let now = 1_000_000_000 + 100 * TICK_NS;
    let mut out = JointCommand::default();
    let old_command = position_command(&[0.5; 7], now - 21_000_000);
    let verdict = gate.check(Timestamp(now), &home_state(now), &old_command, &mut out);
    assert_eq!(verdict, Verdict::Held(HoldReason::StaleCommand));
    assert_eq!(out.values, first.values);
}

#[test]
fn a_frozen_state_stamp_holds_once_it_is_older_than_the_timeout() {
    let mut gate = panda_gate();
    let frozen = home_state(1_000_000_000);
    let mut out = JointCommand::default();
    let mut verdicts = Vec::new();
    for t in 0..30u64 {
        let now = 1_000_000_000 + t * TICK_NS;
        verdicts.push(gate.check(Timestamp(now), &frozen, &position_command(&HOME, now), &mut out));
    }
    assert!(verdicts[..=20].iter().all(|v| *v == Verdict::Pass), "{verdicts:?}");
    assert!(verdicts[21..].iter().all(|v| *v == Verdict::Held(HoldReason::StaleState)), "{verdicts:?}");
}

#[test]
fn nan_in_command_or_state_holds() {
    let mut gate = panda_gate();
    fresh_tick(&mut gate, 0, &HOME);
    let mut bad = HOME;
    bad[3] = f64::INFINITY;
    assert_eq!(fresh_tick(&mut gate, 1, &bad).0, Verdict::Held(HoldReason::NonFiniteCommand));
    let now = 1_000_000_000 + 2 * TICK_NS;
    let mut state = home_state(now);
    state.velocity[0] = f64::NAN;
    let mut out = JointCommand::default();
    assert_eq!(gate.check(Timestamp(now), &state, &position_command(&HOME, now), &mut out), Verdict::Held(HoldReason::NonFiniteState));
}

#[test]
fn wrong_sizes_hold() {
    let mut gate = panda_gate();
    fresh_tick(&mut gate, 0, &HOME);
    assert_eq!(fresh_tick(&mut gate, 1, &HOME[..6]).0, Verdict::Held(HoldReason::CommandSize));
    let now = 1_000_000_000 + 2 * TICK_NS;
    let mut state = home_state(now);
    state.position = JointVec::zeros(6);
    let mut out = JointCommand::default();
    assert_eq!(gate.check(Timestamp(now), &state, &position_command(&HOME, now), &mut out), Verdict::Held(HoldReason::StateSize));
}

#[test]
fn a_position_beyond_the_limit_is_clipped_and_reported() {
    let mut gate = panda_gate();
    fresh_tick(&mut gate, 0, &HOME);
    let mut far = HOME;
    far[0] = 10.0;
    let mut last = Verdict::Pass;
    let mut out = JointCommand::default();
    for t in 1..4000 {
        let (v, o) = fresh_tick(&mut gate, t, &far);
        last = v;
        out = o;
    }
    match last {
        Verdict::Clipped(flags) => assert!(flags.contains(ClipFlags::POSITION), "{flags:?}"),
        other => panic!("expected a position clip, got {other:?}"),
    }
    assert!((out.values[0] - (2.8973 - 0.05)).abs() < 1e-9, "settles at the soft limit: {}", out.values[0]);
}

#[test]
fn a_fast_jump_is_velocity_and_acceleration_limited() {
    let mut gate = panda_gate();
    fresh_tick(&mut gate, 0, &HOME);
    let mut jump = HOME;
    jump[1] += 0.5;
    let (verdict, out) = fresh_tick(&mut gate, 1, &jump);
    match verdict {
        Verdict::Clipped(flags) => assert!(flags.contains(ClipFlags::VELOCITY) && flags.contains(ClipFlags::ACCELERATION), "{flags:?}"),
        other => panic!("{other:?}"),
    }
    assert!((out.values[1] - HOME[1]).abs() <= 7.5 * 0.001 * 0.001 + 1e-12);
}

#[test]
fn excessive_joint_torque_holds() {
    let mut gate = panda_gate();
    fresh_tick(&mut gate, 0, &HOME);
    let now = 1_000_000_000 + TICK_NS;
    let mut state = home_state(now);
    state.effort = JointVec::from_slice(&[0.0, 0.0, 0.0, 85.0, 0.0, 0.0, 0.0]).unwrap();
    let mut out = JointCommand::default();
    assert_eq!(gate.check(Timestamp(now), &state, &position_command(&HOME, now), &mut out), Verdict::Held(HoldReason::TorqueExceeded));
}

#[test]
fn velocity_commands_are_limited_too() {
    let names = vec!["linear_x".to_string(), "angular_z".to_string()];
    let safety: rrl_types::config::SafetyConfig =
        ron::from_str("(joints: [(name: \"linear_x\", velocity: Some(2.0), acceleration: Some(3.0))])").unwrap();
    let mut gate = safety::Gate::new(safety::GateConfig::from_launch(&safety, &names, 50.0).unwrap());
    let mut out = JointCommand::default();
    let mut state = rrl_types::JointState::zeros(2);
    let mut last = 0.0;
    for t in 0..200u64 {
        let now = 1_000_000_000 + t * 20_000_000;
        state.stamp = Timestamp(now);
        let cmd = JointCommand { stamp: Timestamp(now), mode: CommandMode::Velocity, values: JointVec::from_slice(&[5.0, 1.0]).unwrap() };
        gate.check(Timestamp(now), &state, &cmd, &mut out);
        assert!(out.values[0] <= 2.0 && out.values[0] - last <= 3.0 * 0.02 + 1e-12);
        last = out.values[0];
    }
    assert_eq!(out.values[0], 2.0);
    assert_eq!(out.values[1], 1.0, "an unlimited joint passes unchanged");
}

#[test]
fn an_unknown_joint_in_the_limits_is_refused_by_name() {
    let safety: rrl_types::config::SafetyConfig = ron::from_str("(joints: [(name: \"elbow\", velocity: Some(1.0))])").unwrap();
    let err = safety::GateConfig::from_launch(&safety, &["shoulder".to_string()], 100.0).unwrap_err();
    assert!(err.to_string().contains("unknown joint `elbow`"), "{err}");
}
