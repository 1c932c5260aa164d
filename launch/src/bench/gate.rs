//! `rrl bench gate`: the safety gate's per-tick latency and a paced 1 kHz
//! loop, beside the numpy peer.

use rrl_types::config::{Reflex, RobotPreset, SafetyConfig};
use rrl_types::{CommandMode, JointCommand, JointState, JointVec, Timestamp};
use safety::{Gate, RiskCritic};
use serde_json::{json, Value};

use super::run_peer;

#[derive(clap::Args)]
pub struct GateBenchArgs {
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Ticks for the latency percentiles.
    #[arg(long, default_value_t = 1_000_000)]
    ticks: u64,
    /// Seconds of the paced 1 kHz loop.
    #[arg(long, default_value_t = 60.0)]
    loop_seconds: f64,
}

impl GateBenchArgs {
    /// Per-tick latency of the gate (rules + a 2x256 risk critic) on one core,
    /// a paced 1 kHz loop with the gate in it, and the numpy peer's latency.
    pub fn run(self) -> anyhow::Result<Value> {
        let GateBenchArgs { ticks, loop_seconds, .. } = self;
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
        // The same ticks with the gate's tick record taken and decimated into a
        // bounded queue, as a real arm's control thread does for the risk critic's data.
        let queue = crossbeam::queue::ArrayQueue::new(4096);
        let mut decimator = rrl_types::TickDecimator::for_rate(1000.0, rrl_types::QUIET_TICK_RECORD_HZ);
        let mut recorded = Vec::with_capacity(ticks as usize);
        for t in 0..ticks {
            let now = Timestamp(1_000_000_000 + (ticks + t) * 1_000_000);
            state.stamp = now;
            let values: [f64; 7] = std::array::from_fn(|j| home[j] + noise.uniform(-0.01, 0.01));
            let command = JointCommand { stamp: now, mode: CommandMode::Position, values: JointVec::from_slice(&values).expect("7 joints") };
            let started = std::time::Instant::now();
            let verdict = gate.check(now, &state, &command, &mut out);
            decimator.feed(gate.tick_record(now, &state, &verdict, &out), |tick| {
                let _ = queue.force_push(tick);
            });
            recorded.push(started.elapsed().as_nanos() as f64 / 1000.0);
        }
        recorded.sort_by(f64::total_cmp);
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
            "rrl_with_tick_record": {
                "p50_us": percentile(&recorded, 50.0),
                "p99_us": percentile(&recorded, 99.0),
                "p999_us": percentile(&recorded, 99.9),
                "max_us": recorded.last(),
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
}
