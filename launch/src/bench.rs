//! `rrl bench ...`: benchmarks that run the peer a user would otherwise pick
//! in the same run, on the same machine, and print JSON with the ratios.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use sim_bridge::GymTask;

/// A file of the repository, found from the env file's RRL_ROOT or from
/// where this binary was built.
pub fn repo_file(relative: &str) -> PathBuf {
    let root = std::env::var_os("RRL_ROOT").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")));
    root.join(relative)
}

pub fn python() -> PathBuf {
    std::env::var_os("VIRTUAL_ENV").map(|v| PathBuf::from(v).join("bin/python")).unwrap_or_else(|| "python3".into())
}

/// Runs a Python peer and returns its last JSON line.
pub fn run_peer(script: &str, args: &[String]) -> anyhow::Result<Value> {
    run_peer_lines(script, args)?.pop().with_context(|| format!("peer {} printed no JSON", repo_file(script).display()))
}

pub fn sim(steps: u64, tasks: &[String]) -> anyhow::Result<Value> {
    let selected: Vec<GymTask> = if tasks.is_empty() {
        GymTask::ALL.to_vec()
    } else {
        tasks.iter().map(|t| GymTask::from_name(t).with_context(|| format!("unknown task `{t}`; tasks: {}", GymTask::ALL.map(|t| t.gym_id()).join(", ")))).collect::<anyhow::Result<_>>()?
    };
    let progress = indicatif::ProgressBar::new(selected.len() as u64 * 2);
    progress.set_style(indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}").expect("valid template"));
    let mut rows = Vec::new();
    for task in selected {
        progress.set_message(format!("{} (rrl)", task.gym_id()));
        let ours = sim_bridge::bench::gym_steps_per_second(task, steps, 0)?;
        progress.inc(1);
        progress.set_message(format!("{} (gymnasium)", task.gym_id()));
        let peer = run_peer("sim_bridge/bench/gym_steps.py", &[task.gym_id().to_string(), steps.to_string(), "0".to_string()])?;
        progress.inc(1);
        let theirs = peer["steps_per_s"].as_f64().context("peer JSON lacks steps_per_s")?;
        rows.push(json!({
            "task": task.gym_id(),
            "steps": steps,
            "rrl_steps_per_s": ours,
            "gymnasium_steps_per_s": theirs,
            "ratio": ours / theirs,
        }));
    }
    progress.set_message("Panda cameras (rrl)");
    let frames = 4000;
    let ours = sim_bridge::bench::panda_frames_per_second(frames, 128)?;
    progress.set_message("Panda cameras (MuJoCo Python renderer)");
    let scene = sim_bridge::assets::AssetPackage::GymHil.path("scene.xml")?;
    let peer = run_peer("sim_bridge/bench/panda_render.py", &[scene.display().to_string(), frames.to_string(), "128".to_string(), sim_bridge::arm::SHADOW_MAP_SIZE.to_string()])?;
    let theirs = peer["frames_per_s"].as_f64().context("peer JSON lacks frames_per_s")?;
    let rendering = json!({
        "cameras": ["front", "handcam_rgb"],
        "size": 128,
        "frames": frames,
        "rrl_frames_per_s": ours,
        "mujoco_python_frames_per_s": theirs,
        "ratio": ours / theirs,
    });
    progress.finish_and_clear();
    Ok(json!({ "bench": "sim", "threads": 1, "results": rows, "rendering": rendering }))
}

/// One learner configuration of `rrl bench learner`.
pub struct LearnerCase {
    pub preset: &'static str,
    pub utd: u32,
}

pub const LEARNER_CASES: [LearnerCase; 3] =
    [LearnerCase { preset: "cleanrl", utd: 1 }, LearnerCase { preset: "rlpd", utd: 4 }, LearnerCase { preset: "rlpd", utd: 20 }];

/// SAC updates/s of our learner and of the PyTorch peer, same shapes
/// (HalfCheetah-sized: 17 observations, 6 actions), same device.
pub fn learner(updates: u64, rounds: u32, device_name: &str, threads: usize) -> anyhow::Result<Value> {
    use policies::{Sac, SacConfig};
    if threads > 0 {
        policies::set_cpu_threads(threads);
    }
    let device = policies::select_device(crate::train::parse_device(device_name)?)?;
    let (obs, act, buffer) = (17usize, 6usize, 100_000usize);
    let mut rows = Vec::new();
    for case in LEARNER_CASES {
        let learner = crate::train::learner_preset(case.preset, Some(case.utd))?;
        let mut sac = Sac::new(SacConfig::from_learner(&learner, obs, act, 0), device);
        let mut replay = policies::bench::random_replay(obs, act, buffer, device, 1);
        let warmup = (updates / 10).max(3);
        policies::bench::updates_per_second(&mut sac, &mut replay, warmup);
        let peer_device = if device == tch::Device::Cpu { "cpu" } else { "cuda" };
        let mut peer_args = vec![
            "--preset".to_string(),
            case.preset.to_string(),
            "--utd".to_string(),
            case.utd.to_string(),
            "--updates".to_string(),
            updates.to_string(),
            "--warmup".to_string(),
            warmup.to_string(),
            "--device".to_string(),
            peer_device.to_string(),
        ];
        if threads > 0 {
            peer_args.extend(["--threads".to_string(), threads.to_string()]);
        }
        // Interleaved rounds, best of each: a shared machine's noise hits both alike.
        let (mut ours, mut theirs, mut peer) = (0.0f64, 0.0f64, Value::Null);
        for _ in 0..rounds.max(1) {
            ours = ours.max(policies::bench::updates_per_second(&mut sac, &mut replay, updates));
            let run = run_peer(&peer_script(), &peer_args)?;
            let rate = run["updates_per_s"].as_f64().context("peer JSON lacks updates_per_s")?;
            if rate > theirs {
                theirs = rate;
                peer = run;
            }
        }
        rows.push(json!({
            "preset": case.preset,
            "critics": learner.critics,
            "layer_norm": learner.critic_layer_norm,
            "utd": case.utd,
            "batch": learner.batch_size,
            "rrl_updates_per_s": ours,
            "pytorch_updates_per_s": theirs,
            "ratio": ours / theirs,
            "peer": peer,
        }));
    }
    Ok(json!({ "bench": "learner", "device": format!("{device:?}"), "threads": tch::get_num_threads(), "rounds": rounds, "results": rows }))
}

/// A PyTorch reference program beside the repository (`../shared/peers`),
/// or where RRL_PEERS points.
fn peer_file(name: &str) -> String {
    std::env::var("RRL_PEERS").map(|dir| format!("{dir}/{name}")).unwrap_or_else(|_| format!("../shared/peers/{name}"))
}

fn peer_script() -> String {
    peer_file("torch_sac_update.py")
}

/// Interquartile mean (the mean of the middle half, as scipy's
/// `trim_mean(x, 0.25)`: ⌊n/4⌋ dropped at each end) and a 95 % percentile
/// bootstrap interval of it over the seeds.
pub fn iqm_with_interval(values: &[f64], resamples: usize, seed: u64) -> (f64, f64, f64) {
    let iqm = |xs: &mut Vec<f64>| {
        xs.sort_by(|a, b| a.total_cmp(b));
        let cut = xs.len() / 4;
        let middle = &xs[cut..xs.len() - cut];
        middle.iter().sum::<f64>() / middle.len().max(1) as f64
    };
    let point = iqm(&mut values.to_vec());
    let mut rng = rrl_types::rng::Rng::seed(seed);
    let mut draws: Vec<f64> = (0..resamples)
        .map(|_| {
            let mut sample: Vec<f64> = (0..values.len()).map(|_| values[rng.below(values.len() as u64) as usize]).collect();
            iqm(&mut sample)
        })
        .collect();
    draws.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| draws[((q * (draws.len() - 1) as f64).round() as usize).min(draws.len() - 1)];
    if draws.is_empty() {
        return (point, point, point);
    }
    (point, at(0.025), at(0.975))
}

/// `rrl train` against the PyTorch peer trainer (`gym_sac.py`) on a
/// Gymnasium task, same steps, warm-up, evaluation and seeds, one after the
/// other on the same machine: environment steps/s end to end, and the
/// evaluation returns with their IQM and 95 % interval over the seeds.
pub fn train(task: &str, steps: u64, warmup: u64, eval_every: u64, eval_episodes: u32, seeds: &[u64], threads: usize) -> anyhow::Result<Value> {
    GymTask::from_name(task).with_context(|| format!("unknown task `{task}`; tasks: {}", GymTask::ALL.map(|t| t.gym_id()).join(", ")))?;
    if threads > 0 {
        policies::set_cpu_threads(threads);
    }
    let scratch = tempfile::tempdir().context("a scratch folder for the runs")?;
    let mut runs = Vec::new();
    for &seed in seeds {
        let args = crate::train::TrainArgs {
            task: task.to_string(),
            demo_episodes: 0,
            reward: "dense".into(),
            steps,
            seed,
            warmup,
            eval_every,
            eval_episodes,
            preset: "cleanrl".into(),
            utd: None,
            device: "cpu".into(),
            out: Some(scratch.path().join(format!("seed{seed}"))),
            resume: false,
            cameras: Vec::new(),
            image_size: 64,
            pretrained_encoder: None,
            replay_capacity: None,
        };
        let ours = crate::train::run(args)?;
        let mut peer_args = vec!["--env", task].into_iter().map(String::from).collect::<Vec<_>>();
        for (flag, value) in [("--steps", steps), ("--seed", seed), ("--learning-starts", warmup), ("--eval-every", eval_every), ("--eval-episodes", u64::from(eval_episodes)), ("--threads", threads as u64)] {
            peer_args.extend([flag.to_string(), value.to_string()]);
        }
        let peer_lines = run_peer_lines(&peer_file("gym_sac.py"), &peer_args)?;
        let peer_final = peer_lines.iter().rev().find(|l| l["final"].as_bool() == Some(true)).context("gym_sac.py printed no final line")?;
        let peer_evals: Vec<Value> = peer_lines.iter().filter(|l| l.get("step").is_some()).map(|l| json!({ "step": l["step"], "mean_return": l["eval_return"] })).collect();
        let our_evals: Vec<Value> = ours["evals"].as_array().cloned().unwrap_or_default().iter().map(|e| json!({ "step": e["step"], "mean_return": e["mean_return"] })).collect();
        let run = json!({
            "seed": seed,
            "rrl_sps": ours["sps"],
            "pytorch_sps": peer_final["sps"],
            "rrl_evals": our_evals,
            "pytorch_evals": peer_evals,
        });
        // Each seed's result as it lands (a long comparison cut short keeps what it measured).
        eprintln!("{run}");
        runs.push(run);
    }
    let column = |key: &str| -> Vec<f64> { runs.iter().filter_map(|r| r[key].as_f64()).collect() };
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    let (ours_sps, theirs_sps) = (mean(&column("rrl_sps")), mean(&column("pytorch_sps")));
    // Returns per evaluation step over the seeds.
    let mut by_step = Vec::new();
    let mut step = eval_every.max(1);
    while step <= steps {
        let at = |key: &str| -> Vec<f64> { runs.iter().filter_map(|r| r[key].as_array()?.iter().find(|e| e["step"].as_u64() == Some(step))?["mean_return"].as_f64()).collect() };
        let (ours, theirs) = (at("rrl_evals"), at("pytorch_evals"));
        let summary = |xs: &[f64]| {
            let (iqm, low, high) = iqm_with_interval(xs, 2000, step);
            json!({ "iqm": iqm, "ci95": [low, high], "returns": xs })
        };
        by_step.push(json!({ "step": step, "rrl": summary(&ours), "pytorch": summary(&theirs) }));
        step += eval_every.max(1);
    }
    Ok(json!({
        "bench": "train",
        "task": task,
        "steps": steps,
        "warmup": warmup,
        "seeds": seeds,
        "threads": tch::get_num_threads(),
        "rrl_sps": ours_sps,
        "pytorch_sps": theirs_sps,
        "sps_ratio": ours_sps / theirs_sps,
        "returns": by_step,
        "runs": runs,
    }))
}

/// Runs a Python peer and returns every JSON line it printed.
pub fn run_peer_lines(script: &str, args: &[String]) -> anyhow::Result<Vec<Value>> {
    let path = repo_file(script);
    let out = Command::new(python()).arg(&path).args(args).output().with_context(|| format!("running the peer {}", path.display()))?;
    if !out.status.success() {
        bail!("peer {} failed: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout.lines().filter(|l| l.trim_start().starts_with('{')).map(|l| serde_json::from_str(l).with_context(|| format!("peer {} printed malformed JSON: {l}", path.display()))).collect()
}

/// Per-tick latency of the gate (rules + a 2x256 risk critic) on one core,
/// a paced 1 kHz loop with the gate in it, and the numpy peer's latency.
pub fn gate(ticks: u64, loop_seconds: f64) -> anyhow::Result<Value> {
    use rrl_types::config::{Reflex, RobotPreset, SafetyConfig};
    use rrl_types::{CommandMode, JointCommand, JointState, JointVec, Timestamp};
    use safety::{Gate, RiskCritic};
    let names: Vec<String> = RobotPreset::FrankaPanda.joint_names().iter().map(|s| s.to_string()).collect();
    // Every rule: joint limits, staleness, NaN, external force, and the Cartesian box on the fingertips (forward kinematics each tick).
    let safety: SafetyConfig = ron::from_str(
        "(preset: Some(FrankaPanda), command_timeout_ms: 50, state_timeout_ms: 50, max_force_n: Some(30.0),
          workspace: Some((min: (0.2, -0.5, 0.0), max: (0.8, 0.5, 0.8), max_step_m: 0.01, max_speed_mps: 1.0, tool_offset_m: (0.0, 0.0, 0.1034))))",
    )?;
    let mut gate = Gate::build(&safety, &names, 1000.0)?;
    let mut rng = rrl_types::rng::Rng::seed(0);
    let mut layer = |inputs: usize, outputs: usize, scale: f64| -> (Vec<Vec<f32>>, Vec<f32>) {
        ((0..outputs).map(|_| (0..inputs).map(|_| (rng.normal() * scale) as f32).collect()).collect(), vec![0.0; outputs])
    };
    let critic = RiskCritic::from_layers(vec![layer(21, 256, 0.1), layer(256, 256, 0.05), layer(256, 1, 0.05)]).map_err(anyhow::Error::msg)?;
    gate.set_risk_critic(critic, 0.99, Reflex::Hold)?;
    let home = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785];
    let mut state = JointState::zeros(7);
    state.position = JointVec::from_slice(&home).expect("7 joints");
    state.wrench = Some([1.0, -2.0, 3.0, 0.1, 0.0, 0.0]);
    let mut out = JointCommand::default();
    let mut latencies = Vec::with_capacity(ticks as usize);
    let mut noise = rrl_types::rng::Rng::seed(1);
    for t in 0..ticks {
        let now = Timestamp(1_000_000_000 + t * 1_000_000);
        state.stamp = now;
        let values: [f64; 7] = std::array::from_fn(|j| home[j] + noise.uniform(-0.01, 0.01));
        let command = JointCommand { stamp: now, mode: CommandMode::Position, values: JointVec::from_slice(&values).expect("7 joints") };
        let started = std::time::Instant::now();
        std::hint::black_box(gate.check(now, &state, &command, &mut out));
        latencies.push(started.elapsed().as_nanos() as f64 / 1000.0);
    }
    let percentile = |sorted: &[f64], p: f64| sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize];
    latencies.sort_by(f64::total_cmp);
    // A paced 1 kHz loop: sleep to each deadline, run the gate, count lateness.
    let period = std::time::Duration::from_millis(1);
    let loop_ticks = (loop_seconds * 1000.0) as u64;
    let start = std::time::Instant::now();
    let (mut missed, mut jitter) = (0u64, Vec::with_capacity(loop_ticks as usize));
    for k in 1..=loop_ticks {
        let deadline = start + period * k as u32;
        while std::time::Instant::now() + std::time::Duration::from_micros(100) < deadline {
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
        while std::time::Instant::now() < deadline {
            std::hint::spin_loop();
        }
        let woke = std::time::Instant::now();
        jitter.push((woke - deadline).as_nanos() as f64 / 1000.0);
        let now = Timestamp(1_000_000_000 + k * 1_000_000);
        state.stamp = now;
        let command = JointCommand { stamp: now, mode: CommandMode::Position, values: JointVec::from_slice(&home).expect("7 joints") };
        gate.check(now, &state, &command, &mut out);
        if std::time::Instant::now() > deadline + period {
            missed += 1;
        }
    }
    jitter.sort_by(f64::total_cmp);
    let peer = run_peer("safety/bench/gate_peer.py", &[(ticks.min(200_000)).to_string()])?;
    let ours_p999 = percentile(&latencies, 99.9);
    Ok(json!({
        "bench": "gate",
        "ticks": ticks,
        "rrl": {
            "p50_us": percentile(&latencies, 50.0),
            "p99_us": percentile(&latencies, 99.0),
            "p999_us": ours_p999,
            "max_us": latencies.last(),
        },
        "loop_1khz": {
            "ticks": loop_ticks,
            "missed_deadlines": missed,
            "wake_jitter_p50_us": if jitter.is_empty() { 0.0 } else { percentile(&jitter, 50.0) },
            "wake_jitter_p999_us": if jitter.is_empty() { 0.0 } else { percentile(&jitter, 99.9) },
        },
        "numpy_peer": peer,
        "p999_ratio_peer_over_rrl": peer["p999_us"].as_f64().map(|p| p / ours_p999),
    }))
}

/// Sync-read round trips of `servos` Dynamixel servos on the emulator, ours
/// and ROBOTIS' Python SDK against the same emulated chain.
pub fn serial(servos: u8, rounds: u32) -> anyhow::Result<Value> {
    use robot_drivers::dynamixel::{address, DynamixelBus};
    use robot_drivers::dynamixel_emulator::DynamixelEmulator;
    use robot_drivers::pty::PtyPair;
    let pair = PtyPair::spawn()?;
    let ids: Vec<u8> = (1..=servos).collect();
    let _emulator = DynamixelEmulator::spawn(pair.b(), 1_000_000, &ids)?;
    let (mut times, mut failures) = (Vec::with_capacity(rounds as usize), 0u32);
    {
        let mut bus = DynamixelBus::open(pair.a(), 1_000_000, std::time::Duration::from_millis(20), 0)?;
        for _ in 0..rounds {
            let started = std::time::Instant::now();
            if bus.sync_read(&ids, address::PRESENT_POSITION, 4).is_err() {
                failures += 1;
            }
            times.push(started.elapsed().as_secs_f64() * 1e6);
        }
    }
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len().max(1) as f64;
    let peer = run_peer("robot_drivers/bench/dynamixel_sdk_sync_read.py", &[pair.a().to_string(), servos.to_string(), rounds.to_string()])?;
    Ok(json!({
        "bench": "serial",
        "servos": servos,
        "baud": 1_000_000,
        "wire": "pseudo-terminal to the device emulator (no baud-rate delay: measures software latency)",
        "rrl": { "rounds": rounds, "failures": failures, "mean_us": mean, "p99_us": times[((times.len() - 1) as f64 * 0.99) as usize], "loop_hz": 1e6 / mean },
        "dynamixel_sdk": peer,
        "mean_ratio_sdk_over_rrl": peer["mean_us"].as_f64().map(|p| p / mean),
    }))
}

/// A synthetic camera frame, the same as the Python peer's: gradients and a
/// product term, so that it compresses like a camera frame rather than a
/// solid colour. `k` picks one of eight.
fn reward_frame(side: u32, k: u64) -> Vec<u8> {
    let k = k % 8;
    let mut rgb = Vec::with_capacity((side * side * 3) as usize);
    for y in 0..u64::from(side) {
        for x in 0..u64::from(side) {
            rgb.extend_from_slice(&[((2 * x + 37 * k) & 255) as u8, ((2 * y) & 255) as u8, ((x * y + k) & 255) as u8]);
        }
    }
    rgb
}

/// The VLM reward client against the emulated endpoint, which takes 0.2 s
/// per request (the model's time; two requests per frame): latency per
/// frame one at a time (its excess over the model's time is the client's
/// overhead plus the emulator's PNG decoding, the same for both sides), the
/// client's own encoding work per frame without the network, and frames
/// scored per second with `concurrency` requests in flight — beside the
/// standard-library Python client doing the same.
pub fn reward(frames: u64, seconds: f64, concurrency: u32, side: u32) -> anyhow::Result<Value> {
    use std::io::BufRead;
    use std::time::{Duration, Instant};
    use rewards::pipeline::ProgressPipeline;
    use rewards::{Frame, VlmProgressCritic, VlmPrompts, VlmSettings};
    use rrl_types::Timestamp;

    let script = repo_file("rewards/tests/python/vlm_endpoint_emulator.py");
    let mut emulator = Command::new(python()).arg(&script).stdout(std::process::Stdio::piped()).spawn().with_context(|| format!("starting {}", script.display()))?;
    let mut port = String::new();
    std::io::BufReader::new(emulator.stdout.take().context("emulator stdout")?).read_line(&mut port)?;
    let url = format!("http://127.0.0.1:{}/v1/chat/completions", port.trim());
    // "leisurely" makes the emulator take 0.2 s per request.
    let task = "leisurely reach the red target";
    let model_seconds_per_frame = 0.4;
    let settings = VlmSettings {
        endpoint: url.clone(),
        model: "emulated-vlm".into(),
        api_key: Some("test-key".into()),
        prompts: VlmPrompts::default(),
        done_threshold: 90.0,
        timeout: Duration::from_secs(10),
        reference_frames: Vec::new(),
    };
    let pictures: Vec<Vec<u8>> = (0..8).map(|k| reward_frame(side, k)).collect();
    let frame = |k: u64| Frame::new(Timestamp(k), side, side, pictures[(k % 8) as usize].clone()).expect("a square RGB frame");
    let result = (|| -> anyhow::Result<Value> {
        // One frame at a time: offer, wait for its estimate.
        let mut pipeline = ProgressPipeline::new(VlmProgressCritic::new(settings.clone())?, 1);
        pipeline.reset(task);
        let mut latencies = Vec::new();
        for k in 0..=frames {
            let started = Instant::now();
            pipeline.offer(frame(k));
            while !pipeline.poll().iter().any(|e| e.stamp == Timestamp(k)) {
                std::thread::sleep(Duration::from_micros(200));
                anyhow::ensure!(started.elapsed() < Duration::from_secs(30), "no estimate for frame {k}");
            }
            // Frame 0 starts the episode (one request, no delta): not a typical frame.
            if k > 0 {
                latencies.push(started.elapsed().as_secs_f64());
            }
        }
        latencies.sort_by(f64::total_cmp);
        let median = latencies[latencies.len() / 2];
        // Throughput: frames offered every 5 ms (newest wins), `concurrency` requests in flight.
        let mut pipeline = ProgressPipeline::new(VlmProgressCritic::new(settings.clone())?, concurrency as usize);
        pipeline.reset(task);
        let started = Instant::now();
        let mut k = 0;
        while started.elapsed().as_secs_f64() < seconds {
            pipeline.offer(frame(k));
            let _ = pipeline.poll();
            k += 1;
            std::thread::sleep(Duration::from_millis(5));
        }
        let scored = pipeline.counts().scored.load(std::sync::atomic::Ordering::Relaxed);
        let ours_fps = scored as f64 / seconds;
        let peer_latency = run_peer("rewards/bench/vlm_client_peer.py", &[url.clone(), task.into(), side.to_string(), "sequential".into(), frames.to_string()])?;
        let peer_throughput = run_peer("rewards/bench/vlm_client_peer.py", &[url.clone(), task.into(), side.to_string(), "throughput".into(), seconds.to_string(), concurrency.to_string()])?;
        let theirs_latency = peer_latency["median_latency_s"].as_f64().context("peer JSON lacks median_latency_s")?;
        let theirs_fps = peer_throughput["frames_per_s"].as_f64().context("peer JSON lacks frames_per_s")?;
        let (ours_overhead, theirs_overhead) = (1e3 * (median - model_seconds_per_frame), 1e3 * (theirs_latency - model_seconds_per_frame));
        // The client's own work per frame, no network: three images to PNG data URLs, two request bodies.
        let encode_rounds = 50;
        let pictures: Vec<Vec<u8>> = (0..8).map(|k| reward_frame(side, k)).collect();
        let started = Instant::now();
        for k in 0..encode_rounds {
            let (previous, current) = (&pictures[k as usize % 8], &pictures[(k as usize + 1) % 8]);
            let urls = [rewards::encode::png_data_url(side, side, previous), rewards::encode::png_data_url(side, side, current), rewards::encode::png_data_url(side, side, current)];
            for images in [&urls[..2], &urls[2..]] {
                let mut content: Vec<Value> = images.iter().map(|u| json!({"type": "image_url", "image_url": {"url": u}})).collect();
                content.push(json!({"type": "text", "text": task}));
                std::hint::black_box(json!({"model": "emulated-vlm", "messages": [{"role": "user", "content": content}]}).to_string());
            }
        }
        let ours_encode_ms = 1e3 * started.elapsed().as_secs_f64() / encode_rounds as f64;
        let peer_encode = run_peer("rewards/bench/vlm_client_peer.py", &[url.clone(), task.into(), side.to_string(), "encode".into(), encode_rounds.to_string()])?;
        let theirs_encode_ms = peer_encode["encode_ms_per_frame"].as_f64().context("peer JSON lacks encode_ms_per_frame")?;
        Ok(json!({
            "bench": "reward",
            "frame": format!("{side}x{side} RGB"),
            "model_seconds_per_frame": model_seconds_per_frame,
            "concurrency": concurrency,
            "ideal_frames_per_s": f64::from(concurrency) / model_seconds_per_frame,
            "rrl": {"median_latency_s": median, "overhead_ms_per_frame": ours_overhead, "frames_per_s": ours_fps},
            "python": {"median_latency_s": theirs_latency, "overhead_ms_per_frame": theirs_overhead, "frames_per_s": theirs_fps},
            "encode_ms_per_frame": {"rrl": ours_encode_ms, "python": theirs_encode_ms, "ratio_python_over_rrl": theirs_encode_ms / ours_encode_ms},
            "overhead_ratio_python_over_rrl": theirs_overhead / ours_overhead,
            "throughput_ratio_rrl_over_python": ours_fps / theirs_fps,
        }))
    })();
    let _ = emulator.kill();
    let _ = emulator.wait();
    result
}
