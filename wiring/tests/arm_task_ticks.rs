//! The actor's thread of a real-arm task: each policy step runs its control
//! ticks there (an inverse-kinematics step toward the action's target and a
//! command offered to the control thread, every tick), so it must not touch
//! the heap. Counted with the per-thread allocator over `ArmTask::step`, the
//! call the practice loop makes, on the simulated Panda on the wall clock.

use rrl_types::config::{ArmActions, JointActions, LaunchFile, Observe, Orientation, ToolActions};
use rrl_types::Environment;
use sim_bridge::arm::{SimArm, WallClockArm};
use wiring::arm_task::ArmTask;

#[global_allocator]
static GLOBAL: heap_count::PerThreadCount = heap_count::PerThreadCount;

/// The shipped real-arm reach of the simulated Panda, at 5 policy steps a
/// second: 20 control ticks per step.
fn launch_with(actions: Option<ArmActions>, observe_tool_velocity: bool) -> LaunchFile {
    let mut launch = LaunchFile::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../launch/files/sim_panda_over_ros.ron")).expect("the shipped launch file loads");
    launch.practice.policy_rate_hz = 5.0;
    // A state late on a loaded machine pauses the step and says so (a
    // formatted message): not what this test counts.
    launch.safety.state_timeout_ms = 5_000;
    if let Some(actions) = actions {
        launch.task.actions = actions;
    }
    if observe_tool_velocity {
        // Its Jacobian is built once per policy step, on the same thread.
        launch.task.observe.push(Observe::ToolVelocity);
    }
    launch
}

#[test]
fn a_policy_step_and_its_control_ticks_make_no_heap_call_on_the_actors_thread() {
    let variants = [
        ("tool translation (the shipped file)", None, false),
        ("tool translation and rotation", Some(ArmActions::Tool(ToolActions { orientation: Orientation::Rotate(0.05), ..Default::default() })), false),
        ("joint steps", Some(ArmActions::Joints(JointActions::default())), false),
        ("tool translation, the tool's velocity observed", None, true),
    ];
    for (name, actions, observe_tool_velocity) in variants {
        let launch = launch_with(actions, observe_tool_velocity);
        let mut task = ArmTask::start(WallClockArm::new(SimArm::panda().unwrap()), &launch, 0).unwrap();
        task.reset(0);
        // Small moves back and forth, so the tool stays well inside the box.
        let push: Vec<f64> = (0..task.action_size()).map(|k| if k % 2 == 0 { 0.3 } else { -0.3 }).collect();
        let pull: Vec<f64> = push.iter().map(|a| -a).collect();
        // The first steps may size what is reused afterwards.
        for _ in 0..2 {
            task.step(&push).unwrap();
            task.step(&pull).unwrap();
        }
        let before = heap_count::heap_calls();
        for _ in 0..5 {
            task.step(&push).unwrap();
            task.step(&pull).unwrap();
        }
        let calls = heap_count::heap_calls() - before;
        // 10 steps of 20 ticks: a single heap call per tick would count 200.
        assert_eq!(calls, 0, "{name}: 10 policy steps (200 control ticks) made {calls} heap calls on the actor's thread");
    }
}
