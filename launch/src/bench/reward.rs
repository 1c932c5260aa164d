//! `rrl bench reward`: the VLM reward client against the emulated endpoint,
//! beside a standard-library Python client.

use std::io::BufRead;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use rewards::pipeline::ProgressPipeline;
use rewards::{Frame, VlmProgressCritic, VlmPrompts, VlmSettings};
use rrl_types::Timestamp;
use serde_json::{json, Value};

use super::{python, repo_file, run_peer};

#[derive(clap::Args)]
pub struct RewardBenchArgs {
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Frames scored one at a time for the latency.
    #[arg(long, default_value_t = 20)]
    frames: u64,
    /// Seconds of the throughput run.
    #[arg(long, default_value_t = 8.0)]
    seconds: f64,
    #[arg(long, default_value_t = 4)]
    concurrency: u32,
    /// Frame side in pixels.
    #[arg(long, default_value_t = 128)]
    side: u32,
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

impl RewardBenchArgs {
    /// The VLM reward client against the emulated endpoint, which takes 0.2 s
    /// per request (the model's time; two requests per frame): latency per
    /// frame one at a time (its excess over the model's time is the client's
    /// overhead plus the emulator's PNG decoding, the same for both sides), the
    /// client's own encoding work per frame without the network, and frames
    /// scored per second with `concurrency` requests in flight — beside the
    /// standard-library Python client doing the same.
    pub fn run(self) -> anyhow::Result<Value> {
        let RewardBenchArgs { frames, seconds, concurrency, side, .. } = self;
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
            root_certificates: None,
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
}
