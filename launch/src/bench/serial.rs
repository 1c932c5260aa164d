//! `rrl bench serial`: Dynamixel sync-read round trips on the device
//! emulator, beside ROBOTIS' Python SDK on the same emulated chain.

use robot_drivers::dynamixel::{address, DynamixelBus};
use robot_drivers::dynamixel_emulator::DynamixelEmulator;
use robot_drivers::pty::PtyPair;
use serde_json::{json, Value};

use super::run_peer;

#[derive(clap::Args)]
pub struct SerialBenchArgs {
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    #[arg(long, default_value_t = 6)]
    servos: u8,
    #[arg(long, default_value_t = 2000)]
    rounds: u32,
}

impl SerialBenchArgs {
    /// Sync-read round trips of `servos` Dynamixel servos on the emulator, ours
    /// and ROBOTIS' Python SDK against the same emulated chain.
    pub fn run(self) -> anyhow::Result<Value> {
        let SerialBenchArgs { servos, rounds, .. } = self;
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
}
