//! A serial arm behind the I/O thread: the control loop's ticks follow the
//! emulated arm as before, and on the control thread they neither allocate,
//! free nor touch the bus (counted per thread: the I/O thread's serial reads
//! do allocate, on their own thread).

use std::time::Duration;

use robot_drivers::dynamixel_emulator::DynamixelEmulator;
use robot_drivers::io_thread::IoThread;
use robot_drivers::pty::PtyPair;
use robot_drivers::servo_arm::ServoArm;
use robot_drivers::{CommandSlot, ControlLoop, HardwareInterface};
use rrl_types::config::SerialArmConfig;
use rrl_types::{Clock, CommandMode, JointCommand, JointVec, SystemClock};
use safety::Gate;

#[global_allocator]
static GLOBAL: heap_count::PerThreadCount = heap_count::PerThreadCount;

#[test]
fn control_ticks_on_a_threaded_serial_arm_follow_it_without_allocating() {
    let pair = PtyPair::spawn().unwrap();
    let _emulator = DynamixelEmulator::spawn(pair.b(), 1_000_000, &[1, 2, 3]).unwrap();
    let config: SerialArmConfig = ron::from_str(&format!(
        "(port: \"{}\", protocol: Dynamixel, read_timeout_ms: 30, joints: [(name: \"a\", id: 1), (name: \"b\", id: 2, direction: Reversed), (name: \"c\", id: 3)])",
        pair.a()
    ))
    .unwrap();
    let mut arm = IoThread::spawn(ServoArm::new(config), 100.0);
    arm.configure().unwrap();
    arm.activate().unwrap();
    let names = arm.joint_names().to_vec();
    let safety: rrl_types::config::SafetyConfig = ron::from_str("(joints: [(name: \"a\", velocity: Some(2.0))], command_timeout_ms: 200, state_timeout_ms: 200)").unwrap();
    let gate = Gate::build(&safety, &names, 100.0).unwrap();
    let slot = CommandSlot::new();
    let mut control = ControlLoop::new(arm, gate, slot.clone());
    let goal = JointVec::from_slice(&[0.3, -0.2, 0.1]).unwrap();
    // Warm up: the first state arrives, the gate's memory starts.
    for _ in 0..30 {
        let now = SystemClock.now();
        slot.offer(JointCommand { stamp: now, mode: CommandMode::Position, values: goal });
        control.tick(now).unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    let before = heap_count::heap_calls();
    for _ in 0..150 {
        let now = SystemClock.now();
        slot.offer(JointCommand { stamp: now, mode: CommandMode::Position, values: goal });
        control.tick(now).unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    let allocated = heap_count::heap_calls() - before;
    let state = *control.state();
    assert_eq!(allocated, 0, "control ticks allocated {allocated} times on the control thread");
    for j in 0..3 {
        assert!((state.position[j] - goal[j]).abs() < 0.01, "joint {j}: {} vs {}", state.position[j], goal[j]);
    }
}

/// The pacer the I/O thread runs on: its ticks, on time or overrun, neither
/// allocate nor (on a manual clock) wait for real.
#[test]
fn paced_ticks_do_not_allocate() {
    let clock = rrl_types::ManualClock::new(rrl_types::Timestamp(0));
    let mut manual = robot_drivers::pacing::Pacer::new(Duration::from_millis(10), &clock);
    let mut system = robot_drivers::pacing::Pacer::new(Duration::from_micros(200), SystemClock);
    let before = heap_count::heap_calls();
    for k in 0..1000u64 {
        if k % 7 == 0 {
            clock.advance_nanos(25_000_000);
        }
        manual.wait();
    }
    for _ in 0..20 {
        system.wait();
    }
    let allocated = heap_count::heap_calls() - before;
    assert_eq!(allocated, 0, "paced ticks allocated {allocated} times");
}
