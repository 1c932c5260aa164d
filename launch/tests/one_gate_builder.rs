//! Every command that ticks a safety gate gets it from the one builder
//! (`safety::Gate::build`), so the learned risk critic a launch file
//! configures is in every gate: practice (in process and over the lockstep
//! robot node), eval, teleop, `rrl launch --run-dir`, `rrl sim` and
//! `rrl driver` (and, in practice_arm.rs, practice on a ros2_control arm). A critic that always
//! fires must show its reflex in what each of them records or publishes,
//! and the same files without the critic must show none.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

const PANDA: &str = r#"(
    name: "critic_panda",
    namespace: "critic_panda",
    robot: Sim((task: PandaReach, seed: 3)),
    safety: (preset: Some(FrankaPanda), risk_critic: Some((weights: "critic.safetensors", threshold: 0.5, reflex: Hold))),
    learner: (device: Cpu, hidden: [32, 32], critics: 2, batch_size: 16, utd: 1, warmup_steps: 1000),
    practice: (max_episode_steps: 10, demo_episodes: 1, total_steps: 20, eval_episodes: 1),
)"#;

fn rrl(args: &[&str], domain: u32) -> Output {
    common::rrl_command(args, &domain.to_string()).output().expect("run rrl")
}

fn succeeded(output: &Output, what: &str) {
    assert!(output.status.success(), "{what} failed: {}", String::from_utf8_lossy(&output.stderr));
}

fn domain(offset: u32) -> u32 {
    20 + (std::process::id() + offset) % 80
}

/// (steps, steps with the critic's reflex flag, steps with a safety event)
/// over every episode recorded in `folders`.
fn reflex_counts(folders: &[PathBuf]) -> (usize, usize, usize) {
    let mut counts = (0, 0, 0);
    for folder in folders {
        for path in recording::list_episodes(folder).unwrap() {
            for step in recording::read_episode(&path).unwrap().steps {
                counts.0 += 1;
                counts.1 += usize::from(step.flags.reflex);
                counts.2 += usize::from(step.flags.safety_event);
            }
        }
    }
    counts
}

/// A scratch folder holding the Panda launch file and an always-firing
/// critic file for `inputs` inputs beside it; the file's path.
fn panda_with_critic_of(inputs: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    common::write_always_firing_critic(&dir.path().join("critic.safetensors"), inputs);
    let config = dir.path().join("panda.ron");
    std::fs::write(&config, PANDA).unwrap();
    (dir, config)
}

fn recorded(run: &Path) -> Vec<PathBuf> {
    ["demos", "episodes", "eval/episodes"].iter().map(|f| run.join(f)).collect()
}

#[test]
fn practice_and_eval_on_the_simulated_panda_record_the_configured_critics_reflex() {
    let (dir, config) = panda_with_critic_of(21);
    let config_arg = config.to_str().unwrap();

    for (robot, offset) in [("local", 0), ("node", 1)] {
        let run = dir.path().join(format!("run_{robot}"));
        succeeded(&rrl(&["practice", "--config", config_arg, "--run-dir", run.to_str().unwrap(), "--robot", robot], domain(offset)), "rrl practice");
        let (steps, reflexes, events) = reflex_counts(&recorded(&run));
        assert!(steps >= 30, "demo, practice and eval steps: {steps}");
        assert_eq!((reflexes, events), (steps, steps), "--robot {robot}: every step ran the critic's reflex");
    }

    let out = dir.path().join("eval");
    let checkpoint = dir.path().join("run_local/learner.safetensors");
    succeeded(&rrl(&["eval", checkpoint.to_str().unwrap(), "--config", config_arg, "--episodes", "1", "--out", out.to_str().unwrap()], domain(2)), "rrl eval");
    let (steps, reflexes, _) = reflex_counts(&[out.join("episodes")]);
    assert!(steps > 0 && reflexes == steps, "rrl eval: {reflexes} of {steps} steps with the reflex");

    // Without the critic the same practice records no reflex: the flag is the critic's.
    std::fs::write(&config, PANDA.replace(r#", risk_critic: Some((weights: "critic.safetensors", threshold: 0.5, reflex: Hold))"#, "")).unwrap();
    let run = dir.path().join("run_rules_only");
    succeeded(&rrl(&["practice", "--config", config_arg, "--run-dir", run.to_str().unwrap()], domain(3)), "rrl practice without a critic");
    let (steps, reflexes, _) = reflex_counts(&recorded(&run));
    assert!(steps >= 30 && reflexes == 0, "rules only: {reflexes} of {steps} steps with a reflex");
}

#[test]
fn a_critic_that_cannot_be_loaded_refuses_to_start_rather_than_run_on_rules_alone() {
    // A critic for a two-joint arm in a seven-joint Panda's gate.
    let (dir, config) = panda_with_critic_of(6);
    for args in [vec!["practice", "--config", config.to_str().unwrap(), "--run-dir", dir.path().join("run").to_str().unwrap()], vec!["check-config", config.to_str().unwrap()]] {
        let output = rrl(&args, domain(4));
        assert!(!output.status.success(), "{args:?} started with a critic that does not fit");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("safety.risk_critic") && stderr.contains("takes 6 inputs, the gate gives 21"), "{args:?}: {stderr}");
    }
}

/// Runs a robot node (`rrl sim` or `rrl driver`) beside the rclpy probe
/// that commands the arm to stay put and watches `safety/verdicts`.
fn probe_robot_node(args: &[&str], namespace: &str, domain: u32) -> (bool, String) {
    let mut node = common::rrl_command(args, &domain.to_string()).stdout(std::process::Stdio::null()).spawn().expect("start the robot node");
    let probe = common::ros_peer("reflex_probe.py", &[namespace], &domain.to_string()).output().expect("run the probe");
    let _ = node.kill();
    let _ = node.wait();
    (probe.status.success(), format!("{}{}", String::from_utf8_lossy(&probe.stdout), String::from_utf8_lossy(&probe.stderr)))
}

#[test]
fn rrl_sim_and_rrl_driver_gate_every_command_with_the_configured_critic() {
    // `rrl sim` serves the pick robot with its gripper as an eighth joint:
    // 8 joints' positions, velocities and commands.
    let (dir, config) = panda_with_critic_of(24);
    std::fs::write(&config, PANDA.replace("PandaReach", "PandaPickCube")).unwrap();
    let (reflex, report) = probe_robot_node(&["sim", "--config", config.to_str().unwrap(), "--duration-s", "60"], "critic_panda", domain(5));
    assert!(reflex, "rrl sim published no reflex: {report}");

    // The SO-101 example on its emulated Feetech bus, with a critic for its six joints.
    let pair = robot_drivers::pty::PtyPair::spawn().unwrap();
    let _servos = robot_drivers::feetech::emulator::FeetechEmulator::spawn(pair.b(), 1_000_000, &[1, 2, 3, 4, 5, 6]).unwrap();
    common::write_always_firing_critic(&dir.path().join("so101_critic.safetensors"), 18);
    let example = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("files/so101_serial.ron")).unwrap();
    let pattern = common::write_colour_sequence(dir.path());
    let sequence = format!("ImageSequence(\"{pattern}\")");
    let mut so101 = example.replace("/dev/ttyACM0", pair.a()).replace("Device(0)", &sequence).replace("Device(2)", &sequence);
    let safety = so101.find("safety: (").expect("a safety section") + "safety: (".len();
    so101.insert_str(safety, r#"risk_critic: Some((weights: "so101_critic.safetensors", threshold: 0.5, reflex: Hold)), "#);
    let namespace = ron_string_field(&so101, "namespace");
    let config = dir.path().join("so101.ron");
    std::fs::write(&config, so101).unwrap();
    let (reflex, report) = probe_robot_node(&["driver", "--config", config.to_str().unwrap(), "--duration-s", "60"], &namespace, domain(6));
    assert!(reflex, "rrl driver published no reflex: {report}");
}

/// The value of a top-level string field of a launch file's text.
fn ron_string_field(text: &str, field: &str) -> String {
    let at = text.find(&format!("{field}: \"")).unwrap_or_else(|| panic!("no {field}")) + field.len() + 3;
    text[at..].split('"').next().unwrap().to_string()
}

#[test]
fn teleop_and_rrl_launch_record_the_configured_critics_reflex() {
    use std::io::Write;
    let (dir, config) = panda_with_critic_of(21);

    // Keyboard teleop, keys piped: a few moves along +y, then `y` labels the demo.
    let run = dir.path().join("teleop");
    let mut teleop = common::rrl_command(&["teleop", "--config", config.to_str().unwrap(), "--run-dir", run.to_str().unwrap(), "--episodes", "1", "--operator", "keyboard"], &domain(7).to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut keys = teleop.stdin.take().unwrap();
    // Keys typed before teleop listens would arrive at once: wait for its first demo file.
    let started = std::time::Instant::now();
    while recording::list_episodes(&run.join("demos")).map_or(true, |e| e.is_empty()) && started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for _ in 0..10 {
        keys.write_all(b"a").unwrap();
        keys.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    keys.write_all(b"y").unwrap();
    keys.flush().unwrap();
    succeeded(&teleop.wait_with_output().unwrap(), "rrl teleop");
    let (steps, reflexes, _) = reflex_counts(&[run.join("demos")]);
    assert!(steps > 0 && reflexes == steps, "rrl teleop: {reflexes} of {steps} steps with the reflex");

    // `rrl launch --run-dir`: the robot is its lockstep task node, stepped by its actor.
    let run = dir.path().join("launch");
    succeeded(&rrl(&["launch", config.to_str().unwrap(), "--run-dir", run.to_str().unwrap(), "--steps", "20", "--learner-idle-s", "2"], domain(8)), "rrl launch");
    let (steps, reflexes, _) = reflex_counts(&recorded(&run.join("critic_panda")));
    assert!(steps >= 30 && reflexes == steps, "rrl launch: {reflexes} of {steps} steps with the reflex");
}
