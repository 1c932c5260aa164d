//! A real-arm task's reset starting where practice may leave the arm: the
//! tool against the workspace's far wall, the arm stretched. The shipped
//! pick's reset (let go, lift, home) must bring it home from there. Seen
//! in a CI run of the pick over ROS 2: the tool at the box's far x wall,
//! `Lift(0.1)` clipped by the gate for its whole timeout, and practice
//! stopped. On the simulated Panda on the wall clock, in process.

use rrl_types::config::{LaunchFile, Observe, ResetMove};
use rrl_types::Environment;
use sim_bridge::arm::{SimArm, WallClockArm};
use wiring::arm_task::ArmTask;

/// Where a policy pressing out and up left the Panda in one run: the tool
/// at the far x wall (0.750, -0.108, 0.256), the gripper pointing down, the
/// elbow nearly straight. From here a joint step bent by the gate's
/// per-joint limits points out of the box.
const AT_THE_FAR_WALL: [f64; 7] = [-0.1325, 1.0480, -0.0246, -0.4763, 0.0114, 1.4267, 0.6609];

/// The shipped real-arm pick, its reset without the human's window and
/// its observation without the cube's topic (no ROS 2 here).
fn pick_launch() -> LaunchFile {
    let mut launch = LaunchFile::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../launch/files/sim_panda_pick_over_ros.ron")).expect("the shipped launch file loads");
    assert_eq!(launch.task.reset, [ResetMove::Gripper(0.0), ResetMove::Lift(0.1), ResetMove::Home, ResetMove::WaitForHuman(120.0)], "the shipped pick's reset changed");
    launch.task.reset.pop();
    launch.task.observe = vec![Observe::Joints, Observe::Tool, Observe::Gripper];
    launch.task.shaping = None;
    // A state late on a loaded machine pauses the move, which is not what this test is about.
    launch.safety.state_timeout_ms = 5_000;
    launch
}

#[test]
fn the_picks_reset_brings_the_arm_home_from_the_far_wall_where_it_is_stretched() {
    let launch = pick_launch();
    let mut arm = SimArm::panda_with_gripper().unwrap();
    arm.reset_to(&AT_THE_FAR_WALL);
    let mut task = ArmTask::start(WallClockArm::new(arm), &launch, 0).unwrap();
    // The first reset starts from where the arm stands.
    task.reset(0);
    let after = task.step(&[0.0, 0.0, 0.0, -1.0]);
    assert!(after.is_ok(), "the reset from the far wall failed: {}", after.unwrap_err());
    let home = launch.practice.home.as_ref().expect("the pick's home");
    let joints = task.layout().range_of(&Observe::Joints).expect("the joints are observed");
    let q = &task.observation()[joints];
    // Home has ±0.02 rad of noise per joint, a move ends within 0.02 rad,
    // and one small policy step followed.
    let worst = (0..7).map(|j| (q[j] - home[j]).abs()).fold(0.0, f64::max);
    assert!(worst < 0.045, "the reset from the wall left the arm at {q:.3?}, {worst:.3} rad from home {home:.3?}");
}
