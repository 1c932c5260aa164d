//! Support shared by the `rrl` command-line tests.

// Each test binary uses part of it.
#![allow(dead_code)]

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The project venv's Python (rclpy, torch, the emulators' dependencies).
pub fn venv_python() -> PathBuf {
    std::env::var_os("VIRTUAL_ENV").map(|v| PathBuf::from(v).join("bin/python")).unwrap_or_else(|| "python3".into())
}

/// The emulated OpenAI-compatible VLM endpoint (rewards' device emulator)
/// on 127.0.0.1, stopped when dropped.
pub struct VlmEmulator {
    child: Child,
    pub port: u16,
}

impl VlmEmulator {
    pub fn start() -> VlmEmulator {
        VlmEmulator::start_on(0)
    }

    /// On `port` (0: a free one), e.g. again where a killed one served.
    pub fn start_on(port: u16) -> VlmEmulator {
        let mut child = Command::new(venv_python())
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../rewards/tests/python/vlm_endpoint_emulator.py"))
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the VLM endpoint emulator");
        let mut port = String::new();
        std::io::BufReader::new(child.stdout.take().expect("piped")).read_line(&mut port).expect("the emulator prints its port");
        VlmEmulator { port: port.trim().parse().expect("a port number"), child }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/chat/completions", self.port)
    }
}

impl Drop for VlmEmulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Three solid 40x30 PNG images in `dir` — red, green, blue (RGB) — as an
/// image sequence a launch file's camera can replay; returns its pattern.
pub fn write_colour_sequence(dir: &std::path::Path) -> String {
    for (i, rgb) in [[255u8, 0, 0], [0, 255, 0], [0, 0, 255]].iter().enumerate() {
        let pixels: Vec<u8> = rgb.iter().copied().cycle().take(40 * 30 * 3).collect();
        std::fs::write(dir.join(format!("{i:04}.png")), rewards::encode::png_rgb(40, 30, &pixels)).unwrap();
    }
    dir.join("%04d.png").display().to_string()
}

/// Checks that every recorded practice step's reward is the VLM estimate
/// logged for its frame in `learned_rewards.csv`, or 0 where none came in
/// time. Practice episodes are the environment's episodes from
/// `first_env_episode` on (demos come first). Returns (joined, missing)
/// and whether any estimate was non-zero.
pub fn check_learned_rewards(run_dir: &std::path::Path, first_env_episode: u64) -> (u64, u64, bool) {
    check_learned_rewards_over(run_dir, first_env_episode, &|_| 0.0)
}

/// As `check_learned_rewards`, each recorded reward being `base` of its
/// step (a classifier's verdict) plus the VLM's estimate (or nothing).
pub fn check_learned_rewards_over(run_dir: &std::path::Path, first_env_episode: u64, base: &dyn Fn(&recording::EpisodeStep) -> f32) -> (u64, u64, bool) {
    let log = std::fs::read_to_string(run_dir.join("learned_rewards.csv")).unwrap();
    let mut estimates = std::collections::HashMap::new();
    for line in log.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        estimates.insert((f[0].parse::<u64>().unwrap(), f[1].parse::<u64>().unwrap()), f[3].parse::<f32>().unwrap());
    }
    let episodes: Vec<Vec<(f32, f32)>> = recording::list_episodes(&run_dir.join("episodes")).unwrap().iter().map(|p| recording::read_episode(p).unwrap().steps.iter().map(|s| (s.reward, base(s))).collect()).collect();
    let (mut joined, mut missing) = (0, 0);
    for (i, rewards) in episodes.iter().enumerate() {
        for (k, &(reward, base)) in rewards.iter().enumerate() {
            match estimates.get(&(first_env_episode + i as u64, 1 + k as u64)) {
                Some(&estimate) => {
                    assert!((reward - base - estimate).abs() < 1e-5, "episode {i} step {}: recorded {reward}, the base {base} plus the VLM's {estimate}", k + 1);
                    joined += 1;
                }
                None => {
                    assert_eq!(reward, base, "episode {i} step {}: no estimate, so the base alone", k + 1);
                    missing += 1;
                }
            }
        }
    }
    (joined, missing, estimates.values().any(|r| *r != 0.0))
}

/// A risk critic file for the gate whose risk is ~1 for every input (one
/// layer: zero weights, bias 8, so sigmoid(8) = 0.9997): any threshold
/// below that makes its reflex fire on every tick that has a command.
pub fn write_always_firing_critic(path: &std::path::Path, inputs: usize) {
    use safetensors::tensor::TensorView;
    let weight = vec![0u8; 4 * inputs];
    let bias = 8.0f32.to_le_bytes();
    let tensors = [
        ("layer0.weight", TensorView::new(safetensors::Dtype::F32, vec![1, inputs], &weight).unwrap()),
        ("layer0.bias", TensorView::new(safetensors::Dtype::F32, vec![1], &bias).unwrap()),
    ];
    std::fs::write(path, safetensors::serialize(tensors, None).unwrap()).unwrap();
}

/// `rrl args` as the tests run it: DDS on the loopback on `domain`, warnings
/// only, and the key the emulated VLM endpoint expects.
pub fn rrl_command(args: &[&str], domain: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rrl"));
    command.args(args).env("ROS_DOMAIN_ID", domain).env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST").env("RRL_TEST_VLM_KEY", "test-key").env("RRL_LOG", "warn");
    command
}

/// Runs `rrl args` on `domain`; its JSON report (the last line it prints),
/// or its stderr as the error.
pub fn rrl_json(args: &[&str], domain: &str) -> Result<serde_json::Value, String> {
    let out = rrl_command(args, domain).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    if !out.status.success() {
        return Err(stderr);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    Ok(serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{stderr}")))
}

/// A Python ROS 2 peer of tests/python on `domain`, on the loopback.
pub fn ros_peer(script: &str, args: &[&str], domain: &str) -> Command {
    let mut command = Command::new(venv_python());
    command.arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python").join(script)).args(args).env("ROS_DOMAIN_ID", domain).env("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST");
    command
}

/// A run of `episodes` demo episodes of random `side` x `side` frames,
/// 20 steps each, labelled by `label(episode, step)`.
pub fn synthetic_run(run: &Path, episodes: u64, side: usize, label: impl Fn(u64, u64) -> bool) {
    let layout = rrl_types::FrameLayout { cameras: 1, height: side, width: side };
    let mut rng = rrl_types::rng::Rng::seed(3);
    for e in 0..episodes {
        let header = recording::EpisodeHeader { task: "synthetic".into(), episode: e, observation_size: 1, action_size: 1, source: "demo".into(), seed: e, started_unix_ns: 0 };
        let mut writer = recording::EpisodeWriter::create(&run.join("demos"), &header, false).unwrap();
        for t in 0..20 {
            let rgb: Vec<u8> = (0..layout.bytes()).map(|_| rng.below(256) as u8).collect();
            let step = recording::EpisodeStep {
                time_ns: t,
                observation: vec![0.0],
                action: vec![0.0],
                reward: 0.0,
                next_observation: vec![0.0],
                flags: recording::StepFlags { label: Some(label(e, t)), ..Default::default() },
                next_frames: Some(recording::frames::encode(&rgb, layout).unwrap()),
            };
            writer.step(&step).unwrap();
        }
        writer.finish(&recording::EpisodeOutcome { steps: 20, episode_return: 0.0, success: None, interventions: 0, safety_events: 0, reason: "stopped".into() }).unwrap();
    }
}

/// A run of 6 demo episodes of 21 solid `side` x `side` frames cycling red,
/// green, blue (as `write_colour_sequence` replays them), red labelled a
/// success.
pub fn colour_run(run: &Path, side: usize) {
    let layout = rrl_types::FrameLayout { cameras: 1, height: side, width: side };
    let colours = [[255u8, 0, 0], [0, 255, 0], [0, 0, 255]];
    for e in 0..6u64 {
        let header = recording::EpisodeHeader { task: "colours".into(), episode: e, observation_size: 1, action_size: 1, source: "demo".into(), seed: e, started_unix_ns: 0 };
        let mut writer = recording::EpisodeWriter::create(&run.join("demos"), &header, false).unwrap();
        for t in 0..21u64 {
            let colour = colours[((t + e) % 3) as usize];
            let rgb: Vec<u8> = colour.iter().copied().cycle().take(layout.bytes()).collect();
            let flags = recording::StepFlags { label: Some(colour[0] == 255), ..Default::default() };
            let step = recording::EpisodeStep { time_ns: t, observation: vec![0.0], action: vec![0.0], reward: 0.0, next_observation: vec![0.0], flags, next_frames: Some(recording::frames::encode(&rgb, layout).unwrap()) };
            writer.step(&step).unwrap();
        }
        writer.finish(&recording::EpisodeOutcome { steps: 21, episode_return: 0.0, success: None, interventions: 0, safety_events: 0, reason: "stopped".into() }).unwrap();
    }
}

/// The console addresses `child` prints on stderr (`console: http://...`),
/// `count` of them, and the thread gathering the rest of its stderr.
pub fn console_urls(child: &mut Child, count: usize) -> (Vec<String>, std::thread::JoinHandle<String>) {
    let (found, urls) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().expect("stderr piped");
    let lines = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("console: ") {
                let _ = found.send(url.to_string());
            }
            seen.push(line);
        }
        seen.join("\n")
    });
    let urls = (0..count).map(|_| urls.recv_timeout(std::time::Duration::from_secs(120)).expect("no console address printed")).collect();
    (urls, lines)
}

/// A long-running `rrl` (or peer) process that is killed when the test
/// ends, passing or failing: a failed assertion must not leave practice
/// running on the machine.
pub struct Running(Option<Child>);

impl Running {
    pub fn spawn(command: &mut Command) -> Running {
        Running(Some(command.spawn().expect("spawn")))
    }

    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("running")
    }

    /// The process, no longer killed on drop (to wait for its output).
    pub fn into_inner(mut self) -> Child {
        self.0.take().expect("running")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Running {
    /// Waits for the process's exit and output, at most `within`: a
    /// process that does not end is killed and the test fails, instead of
    /// hanging CI.
    pub fn wait_with_output_within(mut self, within: std::time::Duration) -> std::process::Output {
        let child = self.child();
        let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut bytes);
                }
                bytes
            })
        };
        let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
        let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
        let deadline = std::time::Instant::now() + within;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            assert!(std::time::Instant::now() < deadline, "the process did not end within {within:?}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        self.0 = None;
        std::process::Output { status, stdout: stdout.join().unwrap_or_default(), stderr: stderr.join().unwrap_or_default() }
    }
}

/// The lines a process writes on a pipe (its stderr), read on a thread of
/// their own so a test can wait on one.
pub struct LogLines {
    lines: std::sync::mpsc::Receiver<String>,
    /// Every line received so far.
    pub seen: Vec<String>,
}

impl LogLines {
    pub fn of(pipe: impl std::io::Read + Send + 'static) -> LogLines {
        let (said, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || std::io::BufReader::new(pipe).lines().map_while(Result::ok).try_for_each(|line| said.send(line)));
        LogLines { lines, seen: Vec::new() }
    }

    /// Every line, once the process has closed its pipe (at most 10 s more).
    pub fn all(&mut self) -> String {
        while let Ok(line) = self.lines.recv_timeout(std::time::Duration::from_secs(10)) {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }

    /// The first line from now on for which `has` is true, within
    /// `within`; the test fails naming `what` (and what was said) if none
    /// comes or the pipe closes first.
    pub fn wait_for(&mut self, what: &str, within: std::time::Duration, has: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if has(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("never said {what} within {within:?} (or the process ended); it said:\n{}", self.seen.join("\n")),
            }
        }
    }
}
