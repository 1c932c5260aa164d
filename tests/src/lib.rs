//! End-to-end tests across crates and processes: ROS 2 nodes over DDS with
//! rclpy as an independent peer, serial devices over pseudo-terminals, the
//! simulated robot. Holds test support only, never product code.

use std::path::PathBuf;
use std::process::Command;

/// Gives this test process its own ROS 2 domain and keeps DDS on loopback.
/// Call before creating any ROS context. Returns the domain id.
pub fn isolate_ros_domain() -> u32 {
    // Domains 0..=101 are valid on Linux with Fast DDS' default ports; spread
    // processes over 20..=99 by pid so parallel test binaries do not meet.
    let domain = 20 + std::process::id() % 80;
    std::env::set_var("ROS_DOMAIN_ID", domain.to_string());
    std::env::set_var("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST");
    domain
}

/// The project venv's Python, which has rclpy and the vendors' SDKs.
pub fn venv_python() -> PathBuf {
    for var in ["RRL_VENV", "VIRTUAL_ENV"] {
        if let Some(venv) = std::env::var_os(var) {
            let python = PathBuf::from(venv).join("bin/python");
            if python.exists() {
                return python;
            }
        }
    }
    PathBuf::from("python3")
}

/// A Python script of this crate, run with the venv's interpreter and this
/// process' environment (ROS domain included).
pub fn python_script(name: &str) -> Command {
    let mut cmd = Command::new(venv_python());
    cmd.arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python").join(name));
    cmd
}

/// The SO-101's joints, in the shipped launch file's order (servo ids 1..6).
pub const SO101_JOINTS: [&str; 6] = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"];

/// An SO-101 on an emulated Feetech bus at `port` (the `robot` entry) and
/// its safety section (the built-in kinematics, the shipped file's box),
/// for launch files of tests. The read timeout allows for the emulator's
/// thread in a loaded test process.
pub fn so101_on_emulated_bus(port: &str) -> String {
    format!(
        r#"robot: SerialArm({}),
    safety: (
        preset: Some(So101),
        command_timeout_ms: 50,
        state_timeout_ms: 50,
        joints: [(name: "gripper", position: Some((min: -0.2, max: 1.6)))],
        workspace: Some((min: (-0.25, -0.42, 0.01), max: (0.25, -0.08, 0.3), max_step_m: 0.005, max_speed_mps: 0.2)),
    ),"#,
        so101_bus(port)
    )
}

/// The SO-101's bus entry alone (servos 1..6) at `port`, e.g. a leader's.
pub fn so101_bus(port: &str) -> String {
    let servos = SO101_JOINTS.iter().enumerate().map(|(i, n)| format!("(name: \"{n}\", id: {})", i + 1)).collect::<Vec<_>>().join(", ");
    format!("(port: \"{port}\", protocol: Feetech, read_timeout_ms: 50, joints: [{servos}])")
}

/// Runs the ignored test `child` of the calling test binary in a child
/// process, its run folder and sent-items log given in
/// `RRL_TEST_KILLED_RUN` and `RRL_TEST_SENT_LOG`; waits until it has
/// recorded `episodes` episodes under `run/episodes` (at most `within`),
/// then SIGKILLs it.
pub fn sigkill_after_episodes(child: &str, run: &std::path::Path, log: &std::path::Path, episodes: usize, within: std::time::Duration) {
    let mut process = Command::new(std::env::current_exe().unwrap())
        .args([child, "--exact", "--ignored", "--test-threads", "1"])
        .env("RRL_TEST_KILLED_RUN", run)
        .env("RRL_TEST_SENT_LOG", log)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + within;
    while recording::list_episodes(&run.join("episodes")).map_or(0, |e| e.len()) < episodes {
        assert!(std::time::Instant::now() < deadline, "the practice to be killed recorded too few episodes");
        assert!(process.try_wait().unwrap().is_none(), "the practice to be killed exited by itself");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    process.kill().unwrap(); // SIGKILL
    process.wait().unwrap();
}

/// A learner's end of the link that keeps everything it is sent, in order,
/// and never updates: what practice streams, for tests to read.
#[derive(Default)]
pub struct CapturedStream(pub Vec<policies::practice::ToLearner>);

impl policies::practice::LearnerLink for CapturedStream {
    fn send(&mut self, item: policies::practice::ToLearner) {
        self.0.push(item);
    }
    fn updates(&self) -> u64 {
        0
    }
    fn take_weights(&mut self) -> Option<policies::practice::ActorWeights> {
        None
    }
    fn failure(&self) -> Option<String> {
        None
    }
}

/// Practice settings of the simulated Panda reach for tests: a fresh run in
/// `run_dir` of `total_steps`, 40-step episodes, 100 warm-up steps, seed 5,
/// lockstep; tests override what they need.
pub fn reach_practice_settings(run_dir: &std::path::Path, total_steps: u64) -> policies::practice::PracticeSettings {
    policies::practice::PracticeSettings {
        task: "PandaReach".into(),
        total_steps,
        warmup_steps: 100,
        max_episode_steps: 40,
        stuck_steps: 0,
        stuck_tolerance: 1e-3,
        seed: 5,
        run_dir: run_dir.to_path_buf(),
        sync_every_step: false,
        lockstep: true,
        publish_every: 1,
        checkpoint_every: 100,
        replay_capacity: 10_000,
        max_backlog: 20_000,
        stop_at_success: None,
        confirm_episodes: 10,
        human_reward: false,
        labels_override: false,
        shaping: None,
        risk_critic: None,
        live: None,
    }
}

/// No human, a few milliseconds a poll: a kill lands anywhere in a step's work.
pub struct SlowNobody;

impl policies::practice::Operator for SlowNobody {
    fn poll(&mut self, _: &[f64]) -> policies::practice::OperatorInput {
        std::thread::sleep(std::time::Duration::from_millis(3));
        policies::practice::OperatorInput::default()
    }
}
