//! `rrl doctor`: what this machine offers the stack, reported truthfully.

use std::process::ExitCode;

use serde_json::json;

#[derive(clap::Args)]
pub struct DoctorArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

impl DoctorArgs {
    /// Failure when MuJoCo's assets are missing.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let cuda = policies::CudaReport::probe();
        let mujoco_version = sim_bridge::mujoco_version();
        let assets = [
            ("gymnasium", sim_bridge::AssetPackage::Gymnasium.path("inverted_pendulum.xml")),
            ("gym_hil", sim_bridge::AssetPackage::GymHil.path("scene.xml")),
        ];
        let env = |name: &str| std::env::var(name).unwrap_or_default();
        let discovery = crate::discovery::in_force();
        let report = json!({
            "torch": {
                "cuda_available": cuda.cuda_available,
                "cudnn_available": cuda.cudnn_available,
                "cuda_device_count": cuda.device_count,
            },
            "mujoco": {
                "version": mujoco_version,
                "assets": assets.iter().map(|(name, found)| (name.to_string(), json!(found.as_ref().map(|p| p.display().to_string()).map_err(|e| e.to_string())))).collect::<serde_json::Map<_, _>>(),
            },
            "opencv": robot_drivers::camera::opencv_version(),
            "ros": {
                "distro": env("ROS_DISTRO"),
                "rmw": env("RMW_IMPLEMENTATION"),
                "domain_id": env("ROS_DOMAIN_ID"),
                "discovery_range": discovery.range,
                "discovery_range_from": discovery.from,
                "security_enabled": env("ROS_SECURITY_ENABLE") == "true",
                "security_strategy": env("ROS_SECURITY_STRATEGY"),
                "security_keystore": env("ROS_SECURITY_KEYSTORE"),
            },
        });
        crate::print_report(&report, self.json);
        let assets_ok = assets.iter().all(|(_, found)| found.is_ok());
        Ok(if assets_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    }
}
