//! The per-tick path allocates nothing: a per-thread counting global
//! allocator sees no heap call (allocation, reallocation or free) over
//! 100 000 ticks of mixed good, clipped, stale and NaN input.

mod common;

use common::*;
use rrl_types::{JointCommand, Timestamp};

#[global_allocator]
static GLOBAL: heap_count::PerThreadCount = heap_count::PerThreadCount;

#[test]
fn gate_ticks_do_not_allocate() {
    let mut gate = panda_gate();
    // With a two-layer risk critic in the loop, and a new one swapped in mid-run.
    let critic = |scale: f32| safety::RiskCritic::from_layers(vec![(vec![vec![scale; 21]; 32], vec![0.0; 32]), (vec![vec![0.01; 32]], vec![-3.0])]).unwrap();
    gate.set_risk_critic(critic(0.1), 0.9, rrl_types::config::Reflex::Hold).unwrap();
    let loader = gate.critic_loader();
    let replacement = critic(0.2);
    let mut replacement = Some(replacement);
    let estop = gate.estop();
    let mut out = JointCommand::default();
    let mut targets = [[0.0f64; 7]; 4];
    targets[1] = [3.0; 7];
    targets[2] = [-3.0, 0.0, 0.0, -1.0, 0.0, 2.0, 0.0];
    targets[3][2] = f64::NAN;
    let before = heap_count::heap_calls();
    let mut held = 0;
    for t in 0..100_000u64 {
        let now = 1_000_000_000 + t * TICK_NS;
        let state_stamp = if t % 997 == 0 { now - 50_000_000 } else { now };
        let command = position_command(&targets[(t / 100 % 4) as usize], now);
        if t == 50_000 {
            estop.trip();
        }
        if t == 50_100 {
            gate.reset_estop();
        }
        if t == 70_000 {
            loader.offer(replacement.take().unwrap(), true).unwrap();
        }
        let verdict = gate.check(Timestamp(now), &home_state(state_stamp), &command, &mut out);
        held += matches!(verdict, safety::Verdict::Held(_)) as usize;
    }
    let after = heap_count::heap_calls();
    assert!(held > 100, "the run must exercise the hold paths too, held {held}");
    assert_eq!(after - before, 0, "the gate allocated {} times", after - before);

    // The Recover reflex, latched and released.
    let mut gate = panda_gate();
    let mut edge = vec![0.0f32; 21];
    edge[15] = 200.0; // risk rises as joint 1's command passes -0.7
    gate.set_risk_critic(safety::RiskCritic::from_layers(vec![(vec![edge], vec![200.0 * 0.7])]).unwrap(), 0.5, rrl_types::config::Reflex::Recover).unwrap();
    let mut target = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785];
    let before = heap_count::heap_calls();
    let mut reflexes = 0;
    for t in 0..20_000u64 {
        let now = 1_000_000_000 + t * TICK_NS;
        target[1] = if t % 2000 < 1200 { (-0.785 + 0.001 * (t % 2000) as f64).min(-0.6) } else { -0.75 };
        let verdict = gate.check(Timestamp(now), &home_state(now), &position_command(&target, now), &mut out);
        reflexes += matches!(verdict, safety::Verdict::Reflex { .. }) as usize;
    }
    let after = heap_count::heap_calls();
    assert!(reflexes > 1000, "the run must exercise the Recover reflex, {reflexes}");
    assert_eq!(after - before, 0, "the gate allocated {} times while recovering", after - before);

    // The Cartesian box (forward kinematics and bisection every tick) and
    // the external-force check.
    let mut gate = panda_workspace_gate();
    let mut target = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785];
    let before = heap_count::heap_calls();
    let (mut boxed, mut forced) = (0, 0);
    for t in 0..20_000u64 {
        let now = 1_000_000_000 + t * TICK_NS;
        target[1] = if t % 4000 < 2000 { 0.4 } else { -0.785 };
        let mut state = home_state(now);
        state.wrench = Some([0.0, 0.0, if t % 1000 == 0 { -50.0 } else { -5.0 }, 0.0, 0.0, 0.0]);
        let verdict = gate.check(Timestamp(now), &state, &position_command(&target, now), &mut out);
        boxed += matches!(verdict, safety::Verdict::Clipped(f) if f.contains(safety::ClipFlags::WORKSPACE) || f.contains(safety::ClipFlags::TOOL_SPEED)) as usize;
        forced += matches!(verdict, safety::Verdict::Held(safety::HoldReason::ForceExceeded)) as usize;
    }
    let after = heap_count::heap_calls();
    assert!(boxed > 20 && forced >= 20, "the run must exercise the box ({boxed}) and the force check ({forced})");
    assert_eq!(after - before, 0, "the gate allocated {} times with a workspace box", after - before);
}
