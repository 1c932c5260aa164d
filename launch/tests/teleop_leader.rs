//! `rrl teleop` with a leader arm: two emulated Feetech buses (device
//! emulators at the far ends of two pseudo-terminals), the follower being
//! the shipped SO-101 launch file's arm. The test's hand moves the limp
//! leader; the follower tracks it through the gate; a leader pose beyond
//! the follower's limits is clipped; an unplugged leader holds the
//! follower until it answers again; a key ends the demo as a success.

mod common;

use std::f64::consts::TAU;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use robot_drivers::feetech::emulator::FeetechEmulator;

/// The SO-101's arm joints on both buses (servo ids 1..5), and whether a
/// servo turns the other way (the shipped file's elbow).
const ARM: [(&str, u8, bool); 5] = [("shoulder_pan", 1, false), ("shoulder_lift", 2, false), ("elbow_flex", 3, true), ("wrist_flex", 4, false), ("wrist_roll", 5, false)];
/// The built-in URDF's wrist_roll limit, rad (a roll barely moves the jaw
/// tips, so the workspace box does not stop the follower first).
const ROLL_LIMIT: f64 = 2.79253;
const ROLL: usize = 4;

fn ticks(rad: f64, reversed: bool) -> f64 {
    2048.0 + if reversed { -rad } else { rad } * 4096.0 / TAU
}

fn radians(ticks: f64, reversed: bool) -> f64 {
    let rad = (ticks - 2048.0) * TAU / 4096.0;
    if reversed { -rad } else { rad }
}

/// The follower's arm joints, rad.
fn follower_pose(follower: &FeetechEmulator) -> [f64; 5] {
    std::array::from_fn(|k| radians(follower.position(ARM[k].1).expect("the follower's servo"), ARM[k].2))
}

fn hand_moves_leader(leader: &FeetechEmulator, pose: [f64; 5]) {
    for (k, (_, id, reversed)) in ARM.iter().enumerate() {
        leader.move_by_hand(*id, ticks(pose[k], *reversed));
    }
}

/// Watches the follower (every few ms) until `done` says so, at most
/// `within`; returns the largest wrist_roll it saw on the way.
fn watch_follower(follower: &FeetechEmulator, within: Duration, what: &str, mut done: impl FnMut(&[f64; 5]) -> bool) -> f64 {
    let deadline = Instant::now() + within;
    let mut max_roll = f64::NEG_INFINITY;
    loop {
        let pose = follower_pose(follower);
        max_roll = max_roll.max(pose[ROLL]);
        if done(&pose) {
            return max_roll;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}; the follower is at {pose:.3?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Fault matrix: serial bus silent | the leader arm's emulated bus stops answering | teleop pauses and holds the follower, resumes | the follower moves < 0.01 rad while the leader is silent; it tracks again after
#[test]
fn the_follower_tracks_a_leader_arm_through_the_gate_clipped_at_its_limits_and_held_when_the_leader_goes_silent() {
    let domain = (20 + (std::process::id() + 37) % 80).to_string();
    let dir = tempfile::tempdir().unwrap();
    let (follower_wire, leader_wire) = (robot_drivers::pty::PtyPair::spawn().unwrap(), robot_drivers::pty::PtyPair::spawn().unwrap());
    let follower = FeetechEmulator::spawn(follower_wire.b(), 1_000_000, &[1, 2, 3, 4, 5, 6]).unwrap();
    let leader = FeetechEmulator::spawn(leader_wire.b(), 1_000_000, &[1, 2, 3, 4, 5, 6]).unwrap();
    let shipped = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("files/so101_serial.ron")).unwrap();
    let sequence = format!("ImageSequence(\"{}\")", common::write_colour_sequence(dir.path()));
    let leader_section = format!(
        "leader: Some((bus: (port: \"{}\", protocol: Feetech, read_timeout_ms: 50, joints: [(name: \"shoulder_pan\", id: 1), (name: \"shoulder_lift\", id: 2), (name: \"elbow_flex\", id: 3, direction: Reversed), (name: \"wrist_flex\", id: 4), (name: \"wrist_roll\", id: 5), (name: \"gripper\", id: 6)]), gripper: Some((open: 0.6, closed: 0.0)))),\n    practice:",
        leader_wire.a()
    );
    let so101 = shipped
        .replace("/dev/ttyACM0", follower_wire.a())
        // The emulated buses answer from threads of this loaded test process.
        .replace("read_timeout_ms: 10,", "read_timeout_ms: 50,")
        .replace("Device(0)", &sequence)
        .replace("Device(2)", &sequence)
        // Joint steps: the follower's joints track the leader's one to one.
        .replace("actions: Tool((step_m: Some([0.01]), orientation: Free, gripper: Continuous))", "actions: Joints((step_rad: [0.1], gripper: Continuous))")
        // The reset window: the human closes it with the space bar.
        .replace("WaitForHuman(120.0)", "WaitForHuman(20.0)")
        .replace("max_episode_steps: 150", "max_episode_steps: 5000")
        .replacen("    practice:", &leader_section, 1);
    assert!(so101.contains("Joints((step_rad") && so101.contains("WaitForHuman(20.0)") && so101.contains("leader: Some"), "the shipped file's task changed");
    let config = dir.path().join("so101_leader.ron");
    std::fs::write(&config, &so101).unwrap();
    let check = common::rrl_command(&["check-config", config.to_str().unwrap()], &domain).output().unwrap();
    assert!(check.status.success(), "check-config: {}", String::from_utf8_lossy(&check.stderr));
    let run_dir = dir.path().join("run");

    let mut teleop = common::Running::spawn(
        common::rrl_command(&["teleop", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap(), "--episodes", "1", "--operator", "keyboard"], &domain)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    );
    // The human at the keyboard presses space (scene reset done) now and
    // then: the first reset's window waits for it.
    let keys = std::sync::Arc::new(std::sync::Mutex::new(teleop.child().stdin.take().unwrap()));
    let presser = keys.clone();
    std::thread::spawn(move || loop {
        let pressed = {
            let mut keyboard = presser.lock().unwrap();
            keyboard.write_all(b" ").and_then(|()| keyboard.flush())
        };
        if pressed.is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    });
    let mut said = common::LogLines::of(teleop.child().stderr.take().unwrap());
    let minute = Duration::from_secs(60);
    said.wait_for("`move the leader arm`", minute, |l| l.contains("move the leader arm"));

    // 1. The follower tracks the leader (and its gripper the handle, scaled onto the follower's jaw).
    let pose = [0.5, -0.3, 0.4, 0.2, -0.1];
    hand_moves_leader(&leader, pose);
    leader.move_by_hand(6, 2048.0 + 0.3 * 4096.0 / TAU);
    watch_follower(&follower, Duration::from_secs(30), "the follower reaching the leader's pose", |at| (0..5).all(|k| (at[k] - pose[k]).abs() < 0.03));
    // The follower's jaw servo reads zero at 2000 ticks; the task's gripper is open at 1.4 rad, closed at 0.
    let gripper_closure = || 1.0 - (follower.position(6).unwrap() - 2000.0) * TAU / 4096.0 / 1.4;
    let deadline = Instant::now() + Duration::from_secs(10);
    while (gripper_closure() - 0.5).abs() > 0.1 {
        assert!(Instant::now() < deadline, "the follower's gripper closure is {}, the handle's half closed", gripper_closure());
        std::thread::sleep(Duration::from_millis(5));
    }

    // 2. A leader beyond the follower's wrist_roll limit: the follower stops inside it.
    let beyond = [0.5, -0.3, 0.4, 0.2, 3.1];
    hand_moves_leader(&leader, beyond);
    let mut max_roll = watch_follower(&follower, Duration::from_secs(30), "the follower's wrist_roll reaching its limit", |at| at[ROLL] > ROLL_LIMIT - 0.1);
    let packets = follower.packets();
    // A second's worth of control ticks at the limit (the follower's bus clock).
    max_roll = max_roll.max(watch_follower(&follower, Duration::from_secs(30), "a second of control ticks", |_| follower.packets() > packets + 100));
    assert!(max_roll <= ROLL_LIMIT + 0.005, "the follower's wrist_roll reached {max_roll} rad, past its {ROLL_LIMIT} rad limit: the leader's 3.1 rad was forwarded");

    // 3. The leader goes silent while the follower is on its way back: the
    //    follower holds where it is, short of where the leader was last read.
    hand_moves_leader(&leader, pose);
    let start_roll = follower_pose(&follower)[ROLL];
    watch_follower(&follower, Duration::from_secs(30), "the follower starting back", |at| at[ROLL] < start_roll - 0.3);
    leader.faults().unplugged.store(true, Ordering::Relaxed);
    said.wait_for("`the session pauses`", minute, |l| l.contains("the session pauses"));
    // The step in flight finishes (ten control ticks) and the servos settle.
    let packets = follower.packets();
    watch_follower(&follower, Duration::from_secs(30), "the step in flight", |_| follower.packets() > packets + 30);
    let held = follower_pose(&follower);
    let packets = follower.packets();
    watch_follower(&follower, Duration::from_secs(30), "a second of control ticks", |at| {
        assert!((0..5).all(|k| (at[k] - held[k]).abs() < 0.01), "the follower moved from {held:.3?} to {at:.3?} while the leader was silent");
        follower.packets() > packets + 100
    });
    assert!(held[ROLL] - pose[ROLL] > 1.0, "the follower was already near the leader ({held:.3?}) when it went silent: the hold shows nothing");

    // 4. It answers again: the follower tracks it back.
    leader.faults().unplugged.store(false, Ordering::Relaxed);
    said.wait_for("`the session resumes`", minute, |l| l.contains("the session resumes"));
    watch_follower(&follower, Duration::from_secs(30), "the follower tracking the leader again", |at| (0..5).all(|k| (at[k] - pose[k]).abs() < 0.03));

    // 5. `y` labels the demo a success and ends it.
    keys.lock().unwrap().write_all(b"y").unwrap();
    let output = teleop.wait_with_output_within(Duration::from_secs(120));
    assert!(output.status.success(), "rrl teleop failed:\n{}", said.seen.join("\n"));
    let report: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&output.stdout).lines().last().unwrap()).unwrap();
    assert_eq!((report["episodes"].as_u64(), report["successes"].as_u64()), (Some(1), Some(1)), "{report}");
    let demos = recording::list_episodes(&run_dir.join("demos")).unwrap();
    let demo = recording::read_episode(&demos[0]).unwrap();
    assert_eq!(demo.header.action_size, 6, "five joint steps and the gripper");
    assert!(demo.steps.len() > 20 && demo.steps.iter().all(|s| s.flags.intervention), "{} steps, every one the leader's", demo.steps.len());
    assert!(demo.steps.iter().all(|s| s.action.iter().all(|a| (-1.0..=1.0).contains(a))));
    // The observation's first five values are the arm joints: never past the roll limit.
    assert!(demo.steps.iter().all(|s| f64::from(s.next_observation[ROLL]) <= ROLL_LIMIT + 0.005));
    let last = &demo.steps.last().unwrap().next_observation;
    assert!((0..5).all(|k| (f64::from(last[k]) - pose[k]).abs() < 0.05), "the demo ends at {:?}, the leader at {pose:?}", &last[..5]);

    // The demo trains a BC policy for the real arm, and `rrl bc eval` runs it
    // on the arm (the human, at the keyboard, labels its episode a failure).
    let (config_arg, run_arg) = (config.to_str().unwrap(), run_dir.to_str().unwrap());
    let trained = common::rrl_command(&["bc", "train", "--config", config_arg, "--run-dir", run_arg, "--steps", "50"], &domain).output().unwrap();
    assert!(trained.status.success(), "rrl bc train: {}", String::from_utf8_lossy(&trained.stderr));
    let mut eval = common::rrl_command(&["bc", "eval", "--config", config_arg, "--run-dir", run_arg, "--episodes", "1", "--operator", "keyboard"], &domain)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A label during the reset is not the episode's: the human closes the
    // reset window (space) and presses `n` until the evaluation is over.
    let mut keys = eval.stdin.take().unwrap();
    std::thread::spawn(move || while keys.write_all(b" n").and_then(|()| keys.flush()).is_ok() {
        std::thread::sleep(Duration::from_millis(100));
    });
    let evaluated = eval.wait_with_output().unwrap();
    assert!(evaluated.status.success(), "rrl bc eval: {}", String::from_utf8_lossy(&evaluated.stderr));
    let result: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&evaluated.stdout).lines().last().unwrap()).unwrap();
    assert_eq!((result["episodes"].as_u64(), result["success_rate"].as_f64()), (Some(1), Some(0.0)), "{result}");
    let evaluated_episode = recording::read_episode(&recording::list_episodes(&run_dir.join("bc_eval").join("episodes")).unwrap()[0]).unwrap();
    assert_eq!(evaluated_episode.outcome.unwrap().success, Some(false), "the keyboard's label judged the episode");
}
