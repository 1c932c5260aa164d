//! `rrl bench gate`: the safety gate's per-tick latency and a paced 1 kHz
//! loop, beside the numpy peer.

use rrl_types::config::{Reflex, RobotPreset, SafetyConfig};
use rrl_types::{CommandMode, JointCommand, JointState, JointVec, Timestamp};
use safety::{Gate, RiskCritic};
use serde_json::{json, Value};

use super::console_page::{OpenPage, Reader};
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
    /// Measure again beside an operator console fed as practice feeds it
    /// (two 128x128 cameras at 10 Hz, an episode every 2 s): read over HTTP
    /// at the page's rates, then with its page open in headless Chromium
    /// (`chromium` on the PATH) on this machine.
    #[arg(long)]
    console: bool,
}

impl GateBenchArgs {
    /// Per-tick latency of the gate (rules + a 2x256 risk critic) on one core,
    /// a paced 1 kHz loop with the gate in it, and the numpy peer's latency.
    pub fn run(self) -> anyhow::Result<Value> {
        let GateBenchArgs { ticks, loop_seconds, console, .. } = self;
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
        let mut noise = rrl_types::rng::Rng::seed(1);
        let mut rig = Rig { gate: &mut gate, state: &mut state, out: &mut out, home, noise: &mut noise };
        let latencies = rig.latencies(0, ticks);
        // The same ticks with the gate's tick record taken and decimated into a
        // bounded queue, as a real arm's control thread does for the risk critic's data.
        let recorded = rig.latencies_with_record(ticks, ticks);
        let loop_1khz = rig.paced_loop(loop_seconds);
        // The console read over HTTP at the page's rates (its own cost), then
        // its page open in a browser on this machine (the console's and the browser's).
        let mut with_console = |reader: Reader, first: u64| -> anyhow::Result<Option<Value>> {
            if !console {
                return Ok(None);
            }
            let page = OpenPage::start(reader)?;
            let (latencies, loop_1khz) = (rig.latencies(first, ticks), rig.paced_loop(loop_seconds));
            let served = page.finish()?;
            Ok(Some(json!({"rrl": summary(&latencies), "loop_1khz": loop_1khz, "served": served})))
        };
        let (read_over_http, page_in_chromium) = (with_console(Reader::Http, 3 * ticks)?, with_console(Reader::Chromium, 4 * ticks)?);
        let peer = run_peer("safety/bench/gate_peer.py", &[(ticks.min(200_000)).to_string()])?;
        let ours_p999 = percentile(&latencies, 99.9);
        Ok(json!({
            "bench": "gate",
            "ticks": ticks,
            "rrl": summary(&latencies),
            "rrl_with_tick_record": summary(&recorded),
            "loop_1khz": loop_1khz,
            "with_console_read_over_http": read_over_http,
            "with_console_page_in_chromium": page_in_chromium,
            "numpy_peer": peer,
            "p999_ratio_peer_over_rrl": peer["p999_us"].as_f64().map(|p| p / ours_p999),
        }))
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}

fn summary(sorted: &[f64]) -> Value {
    json!({"p50_us": percentile(sorted, 50.0), "p99_us": percentile(sorted, 99.0), "p999_us": percentile(sorted, 99.9), "max_us": sorted.last()})
}

/// The gate under test and the state and commands it is fed.
struct Rig<'a> {
    gate: &'a mut Gate,
    state: &'a mut JointState,
    out: &'a mut JointCommand,
    home: [f64; 7],
    noise: &'a mut rrl_types::rng::Rng,
}

impl Rig<'_> {
    fn command(&mut self, now: Timestamp, jitter: bool) -> JointCommand {
        let values: [f64; 7] = std::array::from_fn(|j| self.home[j] + if jitter { self.noise.uniform(-0.01, 0.01) } else { 0.0 });
        JointCommand { stamp: now, mode: CommandMode::Position, values: JointVec::from_slice(&values).expect("7 joints") }
    }

    /// Sorted per-tick latencies (µs) of `ticks` checks, ticks numbered from `first` on.
    fn latencies(&mut self, first: u64, ticks: u64) -> Vec<f64> {
        let mut latencies = Vec::with_capacity(ticks as usize);
        for t in first..first + ticks {
            let now = Timestamp(1_000_000_000 + t * 1_000_000);
            self.state.stamp = now;
            let command = self.command(now, true);
            let started = std::time::Instant::now();
            std::hint::black_box(self.gate.check(now, self.state, &command, self.out));
            latencies.push(started.elapsed().as_nanos() as f64 / 1000.0);
        }
        latencies.sort_by(f64::total_cmp);
        latencies
    }

    /// As `latencies`, each tick also taking the gate's tick record.
    fn latencies_with_record(&mut self, first: u64, ticks: u64) -> Vec<f64> {
        let queue = crossbeam::queue::ArrayQueue::new(4096);
        let mut decimator = rrl_types::TickDecimator::for_rate(1000.0, rrl_types::QUIET_TICK_RECORD_HZ);
        let mut recorded = Vec::with_capacity(ticks as usize);
        for t in first..first + ticks {
            let now = Timestamp(1_000_000_000 + t * 1_000_000);
            self.state.stamp = now;
            let command = self.command(now, true);
            let started = std::time::Instant::now();
            let verdict = self.gate.check(now, self.state, &command, self.out);
            decimator.feed(self.gate.tick_record(now, self.state, &verdict, self.out), |tick| {
                let _ = queue.force_push(tick);
            });
            recorded.push(started.elapsed().as_nanos() as f64 / 1000.0);
        }
        recorded.sort_by(f64::total_cmp);
        recorded
    }

    /// A paced 1 kHz loop: sleep to each deadline, run the gate, count lateness.
    fn paced_loop(&mut self, seconds: f64) -> Value {
        let period = std::time::Duration::from_millis(1);
        let loop_ticks = (seconds * 1000.0) as u64;
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
            self.state.stamp = now;
            let command = self.command(now, false);
            self.gate.check(now, self.state, &command, self.out);
            if std::time::Instant::now() > deadline + period {
                missed += 1;
            }
        }
        jitter.sort_by(f64::total_cmp);
        json!({"ticks": loop_ticks, "missed_deadlines": missed, "wake_jitter_p50_us": percentile(&jitter, 50.0), "wake_jitter_p999_us": percentile(&jitter, 99.9)})
    }
}
