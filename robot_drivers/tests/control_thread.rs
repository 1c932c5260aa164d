//! The control thread a practising process runs for a real arm
//! (`ControlThread::tick`: read → gate with its risk critic → write, then
//! the newest state, the interventions and the gate's tick records into
//! bounded queues) neither allocates nor frees on its thread, counted per
//! thread over every tick of a serial arm behind its I/O thread (a device
//! emulator on a pseudo-terminal), with risky commands that trigger the
//! reflex, and a new critic swapped in mid-run; and the records it queues
//! are the ticks the gate took.

use std::time::Duration;

use robot_drivers::control_thread::ControlThread;
use robot_drivers::dynamixel_emulator::DynamixelEmulator;
use robot_drivers::io_thread::IoThread;
use robot_drivers::pty::PtyPair;
use robot_drivers::servo_arm::ServoArm;
use robot_drivers::{CommandSlot, ControlLoop, HardwareInterface};
use rrl_types::config::{Reflex, SerialArmConfig};
use rrl_types::{Clock, CommandMode, JointCommand, JointVec, SystemClock, TickDecimator, TickVerdict};
use safety::{Gate, RiskCritic};

#[global_allocator]
static GLOBAL: heap_count::PerThreadCount = heap_count::PerThreadCount;

/// risk = sigmoid(scale · (command of joint a − edge)); 3 joints: 9 inputs.
fn edge_critic(edge: f32, scale: f32) -> RiskCritic {
    let mut weight = vec![0.0; 9];
    weight[6] = scale;
    RiskCritic::from_layers(vec![(vec![weight], vec![-scale * edge])]).unwrap()
}

#[test]
fn control_thread_ticks_neither_allocate_nor_free_and_queue_the_gates_ticks() {
    let pair = PtyPair::spawn().unwrap();
    let _emulator = DynamixelEmulator::spawn(pair.b(), 1_000_000, &[1, 2, 3]).unwrap();
    let config: SerialArmConfig = ron::from_str(&format!("(port: \"{}\", protocol: Dynamixel, read_timeout_ms: 30, joints: [(name: \"a\", id: 1), (name: \"b\", id: 2), (name: \"c\", id: 3)])", pair.a())).unwrap();
    let mut arm = IoThread::spawn(ServoArm::new(config), 100.0);
    arm.configure().unwrap();
    arm.activate().unwrap();
    let names = arm.joint_names().to_vec();
    let safety: rrl_types::config::SafetyConfig = ron::from_str("(joints: [(name: \"a\", position: Some((min: -1.0, max: 1.0)), velocity: Some(2.0))], command_timeout_ms: 200, state_timeout_ms: 200)").unwrap();
    let mut gate = Gate::build(&safety, &names, 100.0).unwrap();
    gate.set_risk_critic(edge_critic(0.25, 40.0), 0.5, Reflex::Hold).unwrap();
    let loader = gate.critic_loader();
    let slot = CommandSlot::new();
    let (mut thread, reports) = ControlThread::new(ControlLoop::new(arm, gate, slot.clone()), TickDecimator::new(2));
    // Alternating goals: one safe, one the critic flags (joint a past 0.25).
    let goals = [JointVec::from_slice(&[0.1, -0.2, 0.1]).unwrap(), JointVec::from_slice(&[0.4, 0.2, -0.1]).unwrap()];
    let mut tick = |k: usize| {
        let now = SystemClock.now();
        slot.offer(JointCommand { stamp: now, mode: CommandMode::Position, values: goals[k / 40 % 2] });
        thread.tick(now).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    };
    // Warm up: the first state arrives, the gate's memory starts.
    for k in 0..30 {
        tick(k);
    }
    let mut taken = Vec::with_capacity(10_000);
    reports.take_ticks(&mut taken);
    taken.clear();
    let replacement = edge_critic(0.3, 40.0);
    let mut replacement = Some(replacement);
    let mut heap_calls = 0;
    for k in 30..630 {
        if k == 300 {
            // From this (the loader's) thread: the old critic is dropped here, not on the control thread.
            loader.offer(replacement.take().unwrap(), true).unwrap();
        }
        let before = heap_count::heap_calls();
        tick(k);
        heap_calls += heap_count::heap_calls() - before;
        if k % 100 == 0 {
            // Another thread's work (the actor's), outside the counted ticks.
            reports.take_ticks(&mut taken);
        }
    }
    assert_eq!(heap_calls, 0, "600 control ticks made {heap_calls} heap calls on the control thread");
    reports.take_ticks(&mut taken);
    let reflexes = taken.iter().filter(|t| t.verdict == TickVerdict::Reflex).count();
    assert!(reflexes > 20, "the critic's reflex ran and was recorded: {reflexes}");
    assert!(taken.windows(2).all(|w| w[1].index > w[0].index && w[1].index - w[0].index <= 2), "every other quiet tick and every eventful one, in order");
    assert!(taken.iter().all(|t| t.width == 9 && !t.risk.is_nan()), "each record holds the critic's 9 inputs and its risk");
}
