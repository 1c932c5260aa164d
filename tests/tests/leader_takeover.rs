//! A leader arm as the takeover device of practice on a real arm's task
//! with tool actions: an SO-101 follower and an SO-101 leader, each on its
//! emulated Feetech bus (device emulators at the far ends of two
//! pseudo-terminals). The takeover begins when the human moves the
//! leader, its actions take the follower's tool to the leader's tool point,
//! and it ends once the follower has caught up and the leader is still;
//! the policy then acts, whatever the still leader says.

use std::f64::consts::TAU;
use std::time::{Duration, Instant};

use policies::practice::Operator;
use robot_drivers::feetech::emulator::FeetechEmulator;
use rrl_types::config::LaunchFile;
use rrl_types::Environment;
use wiring::leader::{LeaderOperator, Tracking};

const JOINTS: [&str; 6] = tests::SO101_JOINTS;

fn launch(dir: &std::path::Path, follower: &str, leader: &str) -> LaunchFile {
    let text = format!(
        r#"(
    name: "leader_takeover",
    {}
    reward: Human,
    task: (
        actions: Tool((step_m: Some([0.01]), orientation: Free, gripper: Continuous)),
        gripper: Some((joint: "gripper", open: 1.4, closed: 0.0)),
        observe: [Joints, Tool, Gripper],
        goal: None,
        reset: [Gripper(0.0), Home],
    ),
    leader: Some((bus: {}, gripper: Some((open: 0.6, closed: 0.0)))),
    practice: (policy_rate_hz: 10.0, max_episode_steps: 1000, home: Some([0.0, 0.0, 0.0, 0.0, 0.0, 0.0]), reset_noise_rad: 0.0),
)"#,
        tests::so101_on_emulated_bus(follower),
        tests::so101_bus(leader)
    );
    let path = dir.join("leader_takeover.ron");
    std::fs::write(&path, text).unwrap();
    LaunchFile::load(&path).unwrap()
}

fn distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt()
}

#[test]
fn moving_the_leader_takes_over_until_the_follower_has_caught_up_then_the_policy_acts() {
    let dir = tempfile::tempdir().unwrap();
    let (follower_wire, leader_wire) = (robot_drivers::pty::PtyPair::spawn().unwrap(), robot_drivers::pty::PtyPair::spawn().unwrap());
    let _follower = FeetechEmulator::spawn(follower_wire.b(), 1_000_000, &[1, 2, 3, 4, 5, 6]).unwrap();
    let leader_servos = FeetechEmulator::spawn(leader_wire.b(), 1_000_000, &[1, 2, 3, 4, 5, 6]).unwrap();
    let launch = launch(dir.path(), follower_wire.a(), leader_wire.a());
    let mut task = wiring::robot::start_arm(&launch, &dir.path().join("leader_takeover.ron"), 0).unwrap();
    let mut leader = LeaderOperator::for_task(&launch, &mut task, Tracking::WhileMoved).unwrap().expect("the launch file has a leader");
    let mut observation = task.reset(0).to_vec();
    let tool = 5..8;
    let (chain, _) = safety::so101::chain(&JOINTS.map(String::from)).unwrap();
    let hold = [0.0, 0.0, 0.0, -1.0];

    // A still leader never takes over, however far the follower is from it.
    for _ in 0..10 {
        assert_eq!(leader.poll(&observation).takeover, None, "a still leader took over");
        task.step(&hold).unwrap();
        observation = task.observation().to_vec();
    }

    // The human moves the leader (the handle half closed): it takes over.
    let pose = [0.3, 0.25, -0.2, 0.3, 0.0];
    for (k, rad) in pose.iter().enumerate() {
        leader_servos.move_by_hand(k as u8 + 1, 2048.0 + rad * 4096.0 / TAU);
    }
    leader_servos.move_by_hand(6, 2048.0 + 0.3 * 4096.0 / TAU);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut takeover = loop {
        if let Some(action) = leader.poll(&observation).takeover {
            break action;
        }
        assert!(Instant::now() < deadline, "moving the leader did not take over");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut human_steps = 0;
    loop {
        assert!(takeover.iter().all(|a| (-1.0..=1.0).contains(a)), "{takeover:?}");
        task.step(&takeover).unwrap();
        observation = task.observation().to_vec();
        human_steps += 1;
        assert!(human_steps < 300, "the takeover never ended; the tool is at {:?}", &observation[tool.clone()]);
        match leader.poll(&observation).takeover {
            Some(action) => takeover = action,
            None => break,
        }
    }
    let mut leader_q = pose.to_vec();
    leader_q.push(0.0);
    let leader_tool = chain.tool_position(&leader_q);
    let caught_up = distance(&observation[tool.clone()], &leader_tool);
    assert!(caught_up < 0.01, "the takeover ended with the follower's tool {caught_up} m from the leader's ({:?} vs {leader_tool:?})", &observation[tool.clone()]);
    assert!(distance(&observation[tool.clone()], &chain.tool_position(&[0.0; 6])) > 0.05, "the leader's pose is too near home to show the follower moving");
    assert!((observation[8] - 0.5).abs() < 0.1, "the gripper's closure is {}, the handle's half closed", observation[8]);

    // The policy acts again: its steps move the tool away and the still leader lets it.
    let before = observation[tool.clone()].to_vec();
    for _ in 0..10 {
        task.step(&[0.0, 1.0, 0.0, 0.0]).unwrap();
        observation = task.observation().to_vec();
        assert_eq!(leader.poll(&observation).takeover, None, "the still leader took the policy's control back");
    }
    assert!(observation[6] - before[1] > 0.03, "the policy's steps moved the tool from {before:?} to {:?}", &observation[tool.clone()]);
}
