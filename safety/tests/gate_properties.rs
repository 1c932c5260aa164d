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

proptest! {
    #![proptest_config(ProptestConfig { cases: 50, ..ProptestConfig::default() })]

    /// With a workspace box, every forwarded command puts the tool point
    /// (by the Panda's kinematics) at most one step limit from where the
    /// previous one did, and inside the box or no farther out than before.
    #[test]
    fn forwarded_commands_keep_the_tool_in_its_box_and_step(targets in prop::collection::vec(prop::array::uniform7(-1.2f64..1.2), 1..40)) {
        let mut gate = panda_workspace_gate();
        let limits = gate.config().workspace.clone().unwrap();
        let mut previous = limits.chain.tool_position(&HOME);
        let mut out = JointCommand::default();
        for (t, offset) in targets.iter().enumerate() {
            // Each target is held for 50 ticks, so the tool travels far enough to meet the box.
            let target: [f64; 7] = std::array::from_fn(|j| HOME[j] + offset[j]);
            for k in 0..50u64 {
                let now = 1_000_000_000 + (t as u64 * 50 + k) * TICK_NS;
                let verdict = gate.check(Timestamp(now), &home_state(now), &position_command(&target, now), &mut out);
                prop_assert!(!matches!(verdict, Verdict::Held(_)), "{verdict:?}");
                let tool = limits.chain.tool_position(out.values.as_slice());
                let step = (0..3).map(|a| (tool[a] - previous[a]).powi(2)).sum::<f64>().sqrt();
                prop_assert!(step <= limits.max_step + 1e-9, "the tool moved {step} m in one tick");
                let (outside, was_outside) = (limits.outside(&tool), limits.outside(&previous));
                prop_assert!(outside <= was_outside.max(1e-9), "the tool left the box: {tool:?} is {outside} m out (was {was_outside})");
                previous = tool;
            }
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

/// Fault matrix: NaN action | an infinite command; a NaN in the measured state | the gate holds | Held(NonFiniteCommand), Held(NonFiniteState)
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
    let mut gate = safety::Gate::build(&safety, &names, 50.0).unwrap();
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

#[test]
fn the_tool_stops_at_the_workspace_floor() {
    let mut gate = panda_workspace_gate();
    let limits = gate.config().workspace.clone().unwrap();
    let start = limits.chain.tool_position(&HOME);
    assert!(limits.outside(&start) == 0.0 && start[2] > 0.35, "home must start inside the box, above its floor: {start:?}");
    // Stretching the shoulder forward drives the hand down through the floor at z = 0.3.
    let mut target = HOME;
    target[1] += 1.2;
    let mut lowest = f64::MAX;
    let mut clipped = false;
    for t in 0..3000 {
        let (verdict, out) = fresh_tick(&mut gate, t, &target);
        clipped |= matches!(verdict, Verdict::Clipped(f) if f.contains(ClipFlags::WORKSPACE));
        lowest = lowest.min(limits.chain.tool_position(out.values.as_slice())[2]);
    }
    assert!(clipped, "the workspace was never reported");
    assert!(lowest >= 0.3 - 1e-9, "the tool went down to z = {lowest}");
    assert!(lowest < 0.31, "the tool should come close to the floor, lowest {lowest}");
    // Without the box the same command goes through the floor.
    let mut free = panda_gate();
    let mut lowest_free = f64::MAX;
    for t in 0..3000 {
        let (_, out) = fresh_tick(&mut free, t, &target);
        lowest_free = lowest_free.min(limits.chain.tool_position(out.values.as_slice())[2]);
    }
    assert!(lowest_free < 0.25, "the unboxed arm should pass the floor, lowest {lowest_free}");
}

#[test]
fn an_external_force_above_the_threshold_holds() {
    let mut gate = panda_workspace_gate();
    let mut out = JointCommand::default();
    let now = 1_000_000_000;
    let mut state = home_state(now);
    let command = position_command(&HOME, now);
    state.wrench = Some([10.0, 5.0, -20.0, 1.0, 0.0, 0.0]);
    assert!(!matches!(gate.check(Timestamp(now), &state, &command, &mut out), Verdict::Held(_)));
    state.wrench = Some([10.0, 5.0, -35.0, 0.0, 0.0, 0.0]);
    assert_eq!(gate.check(Timestamp(now + TICK_NS), &state, &command, &mut out), Verdict::Held(HoldReason::ForceExceeded));
    // A force sensor gone silent reads as unknown: held too.
    state.wrench = Some([f64::NAN, 0.0, 0.0, 0.0, 0.0, 0.0]);
    assert_eq!(gate.check(Timestamp(now + 2 * TICK_NS), &state, &command, &mut out), Verdict::Held(HoldReason::NonFiniteState));
    // A robot that reports no wrench is not held for it.
    state.wrench = None;
    assert!(!matches!(gate.check(Timestamp(now + 3 * TICK_NS), &state, &command, &mut out), Verdict::Held(_)));
}

const TWO_LINK_URDF: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/two_link.urdf"));

#[test]
fn a_urdf_gives_the_gate_joint_limits_and_the_workspace_chain() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("arm.urdf"), TWO_LINK_URDF).unwrap();
    let text = format!(
        "(command_timeout_ms: 20, state_timeout_ms: 20, urdf: Some((file: {:?}, base_link: \"base\", tip_link: \"tool\")),
          workspace: Some((min: (-1.0, -1.0, -1.0), max: (0.45, 1.0, 1.0), max_step_m: 0.01)))",
        dir.path().join("arm.urdf")
    );
    let safety: rrl_types::config::SafetyConfig = ron::from_str(&text).unwrap();
    let names = vec!["shoulder".to_string(), "elbow".to_string()];
    let mut gate = safety::Gate::build(&safety, &names, 1000.0).unwrap();
    assert_eq!(gate.config().limits[1].position, Some((-2.0, 2.0)), "the elbow's range comes from the URDF");
    let mut out = JointCommand::default();
    let mut state = rrl_types::JointState::zeros(2);
    // Start folded (elbow at 1.5 rad: the tool 0.33 m from the base) and unfold: a stretched arm reaches 0.5 m in x, past the box's 0.45.
    state.position = JointVec::from_slice(&[0.0, 1.5]).unwrap();
    let mut reach: f64 = 0.0;
    let mut workspace_clipped = false;
    for t in 0..4000u64 {
        let now = 1_000_000_000 + t * TICK_NS;
        state.stamp = Timestamp(now);
        let command = JointCommand { stamp: Timestamp(now), mode: CommandMode::Position, values: JointVec::from_slice(&[0.0, 0.0]).unwrap() };
        let verdict = gate.check(Timestamp(now), &state, &command, &mut out);
        workspace_clipped |= matches!(verdict, Verdict::Clipped(f) if f.contains(ClipFlags::WORKSPACE));
        let (a, b) = (out.values[0], out.values[1]);
        reach = reach.max(0.3 * a.cos() + 0.2 * (a + b).cos());
    }
    assert!(workspace_clipped);
    assert!(reach <= 0.45 + 1e-9 && reach > 0.44, "the tool reached x = {reach}");
    // The elbow past the URDF's limit is clipped to it, less the soft margin.
    let mut gate = safety::Gate::build(&safety, &names, 1000.0).unwrap();
    state.position = JointVec::from_slice(&[0.0, 1.9]).unwrap();
    let now = 1_000_000_000;
    state.stamp = Timestamp(now);
    let command = JointCommand { stamp: Timestamp(now), mode: CommandMode::Position, values: JointVec::from_slice(&[0.0, 2.5]).unwrap() };
    gate.check(Timestamp(now), &state, &command, &mut out);
    assert!(out.values[1] <= 2.0 - 0.05 + 1e-12, "elbow commanded to {}", out.values[1]);
}

#[test]
fn a_workspace_without_kinematics_is_refused() {
    let safety: rrl_types::config::SafetyConfig = ron::from_str("(preset: Some(Koch), workspace: Some((min: (0.0, 0.0, 0.0), max: (1.0, 1.0, 1.0))))").unwrap();
    let names: Vec<String> = rrl_types::config::RobotPreset::Koch.joint_names().iter().map(|s| s.to_string()).collect();
    let err = safety::GateConfig::from_launch(&safety, &names, 100.0).unwrap_err().to_string();
    assert!(err.contains("safety.workspace") && err.contains("URDF"), "{err}");
    let missing: rrl_types::config::SafetyConfig = ron::from_str("(urdf: Some((file: \"/nonexistent/arm.urdf\", base_link: \"base\", tip_link: \"tool\")))").unwrap();
    let err = safety::GateConfig::from_launch(&missing, &names, 100.0).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/arm.urdf") && err.contains("cannot read"), "{err}");
}

#[test]
fn the_gate_reports_a_measured_state_outside_the_box_or_the_joint_range() {
    let mut gate = panda_workspace_gate();
    let limits = gate.config().workspace.clone().unwrap();
    let mut out = JointCommand::default();
    let now = 1_000_000_000;
    let command = position_command(&HOME, now);
    gate.check(Timestamp(now), &home_state(now), &command, &mut out);
    assert!(!gate.measured_violation(), "home is inside the box");
    // The arm measured with its shoulder stretched forward: the hand below the box's floor.
    let mut low = home_state(now + TICK_NS);
    low.position[1] += 1.2;
    assert!(limits.chain.tool_position(low.position.as_slice())[2] < 0.3);
    gate.check(Timestamp(now + TICK_NS), &low, &command, &mut out);
    assert!(gate.measured_violation(), "the measured hand is below the floor");
    // A joint measured past its range is one too.
    let mut past = home_state(now + 2 * TICK_NS);
    past.position[3] = -0.05;
    gate.check(Timestamp(now + 2 * TICK_NS), &past, &command, &mut out);
    assert!(gate.measured_violation(), "joint 4 past its upper limit of -0.0698");
}

/// A pose found over ROS 2 with the simulated Panda (`sim_panda_over_ros.ron`)
/// as the end of an episode near the box's far corner.
const NEAR_FAR_CORNER: [f64; 7] = [0.1521, 0.5289, 0.1278, -1.7969, 0.0552, 2.3584, 0.7734];

/// From a tool resting on the box's floor, a command whose joint step
/// lifts the tool is taken, whatever the joints' acceleration limits do to
/// each joint's share of it: the gate must not leave the arm on the floor
/// for good. (The per-joint limiter used to bend such a step's first
/// millimetres down into the floor, the box refused all of it, every tick,
/// and a reset found over ROS 2 waited there until it timed out.)
#[test]
fn a_tool_resting_on_the_workspace_floor_can_be_lifted() {
    let safety = ron::from_str::<rrl_types::config::SafetyConfig>(
        "(preset: Some(FrankaPanda), command_timeout_ms: 100, state_timeout_ms: 100,
          workspace: Some((min: (0.3, -0.3, 0.1), max: (0.7, 0.3, 0.55), max_step_m: 0.01, max_speed_mps: 0.5, tool_offset_m: (0.0, 0.0, 0.1488))))",
    )
    .unwrap();
    let names: Vec<String> = rrl_types::config::RobotPreset::FrankaPanda.joint_names().iter().map(|s| s.to_string()).collect();
    let mut gate = safety::Gate::build(&safety, &names, 100.0).unwrap();
    let limits = gate.config().workspace.clone().unwrap();
    let tool = |q: &[f64]| limits.chain.tool_position(q);
    // The shoulder leans forward until the tool touches the floor.
    let mut q = NEAR_FAR_CORNER;
    let (mut above, mut below) = (q[1], q[1] + 0.5);
    assert!(tool(&q)[2] > 0.1 && { q[1] = below; tool(&q)[2] < 0.1 });
    for _ in 0..60 {
        q[1] = 0.5 * (above + below);
        if tool(&q)[2] > 0.1 { above = q[1] } else { below = q[1] }
    }
    q[1] = above;
    assert!((tool(&q)[2] - 0.1).abs() < 1e-6, "{:?}", tool(&q));
    // The arm follows every forwarded command exactly; each tick asks for a
    // damped least-squares joint step toward a point 3 cm above the tool.
    let tick_ns = 10_000_000;
    let mut out = JointCommand::default();
    let mut lowest = f64::MAX;
    for t in 0..300u64 {
        let now = 1_000_000_000 + t * tick_ns;
        let mut state = rrl_types::JointState::zeros(7);
        state.position = JointVec::from_slice(&q).unwrap();
        state.stamp = Timestamp(now);
        let here = tool(&q);
        let mut jacobian = nalgebra::SMatrix::<f64, 3, 7>::zeros();
        for j in 0..7 {
            let mut shifted = q;
            shifted[j] += 1e-6;
            let moved = tool(&shifted);
            for k in 0..3 {
                jacobian[(k, j)] = (moved[k] - here[k]) / 1e-6;
            }
        }
        let up = nalgebra::Vector3::new(0.0, 0.0, 0.03);
        let dq = jacobian.transpose() * (jacobian * jacobian.transpose() + nalgebra::Matrix3::identity() * 1e-4).try_inverse().unwrap() * up;
        let scale = (0.01 / dq.amax()).min(1.0);
        let asked: Vec<f64> = (0..7).map(|j| q[j] + scale * dq[j]).collect();
        gate.check(Timestamp(now), &state, &position_command(&asked, now), &mut out);
        q.copy_from_slice(out.values.as_slice());
        lowest = lowest.min(tool(&q)[2]);
    }
    assert!(lowest >= 0.1 - 1e-9, "the tool went below the floor: {lowest}");
    assert!(tool(&q)[2] > 0.2, "3 s of asking to lift left the tool at {:?}", tool(&q));
}

#[test]
fn a_verdict_reads_as_words_in_logs_and_errors() {
    assert_eq!(Verdict::Pass.to_string(), "passed");
    let mut flags = ClipFlags::POSITION;
    flags |= ClipFlags::WORKSPACE;
    assert_eq!(Verdict::Clipped(flags).to_string(), "clipped (position, workspace)");
    assert_eq!(Verdict::Held(HoldReason::StaleState).to_string(), "held (StaleState)");
    assert_eq!(Verdict::Reflex { risk: 0.934, reflex: rrl_types::config::Reflex::Hold }.to_string(), "reflex Hold (risk 0.93)");
}
