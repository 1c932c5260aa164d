//! Our side of the learner benchmark as a small binary that needs only
//! libtorch (no ROS, no MuJoCo), for GPU machines that lack the rest:
//! `learner_bench PRESET UTD UPDATES DEVICE` prints one JSON line.
//! `rrl bench learner` runs the same measurement beside the PyTorch peer.

use policies::{Sac, SacConfig};
use rrl_types::config::{DeviceChoice, LearnerConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: learner_bench cleanrl|rlpd UTD UPDATES cpu|cuda");
        std::process::exit(2);
    }
    let (preset, utd, updates) = (args[1].as_str(), args[2].parse::<u32>().expect("UTD"), args[3].parse::<u64>().expect("UPDATES"));
    let device = policies::select_device(if args[4] == "cuda" { DeviceChoice::Cuda } else { DeviceChoice::Cpu }).expect("device");
    let mut learner = LearnerConfig { utd, ..LearnerConfig::default() };
    if preset == "rlpd" {
        learner.critics = 10;
        learner.critic_layer_norm = true;
    }
    let mut sac = Sac::new(SacConfig::from_learner(&learner, 17, 6, 0), device);
    let mut replay = policies::bench::random_replay(17, 6, 100_000, device, 1);
    policies::bench::updates_per_second(&mut sac, &mut replay, (updates / 10).max(3));
    let best = (0..3).map(|_| policies::bench::updates_per_second(&mut sac, &mut replay, updates)).fold(0.0, f64::max);
    println!("{}", serde_json::json!({"impl": "rrl", "preset": preset, "utd": utd, "critics": learner.critics, "device": format!("{device:?}"), "updates_per_s": best}));
}
