//! `rrl check-config FILE...`: each launch file loaded and its gate built,
//! as a command starting on it would, every problem reported.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct CheckConfigArgs {
    /// RON launch files to check.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

impl CheckConfigArgs {
    /// Exit code 2 when any file is invalid.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let files = &self.files;
        let mut failed = 0;
        for file in files {
            // The gate is built too: it reads the files the safety section names (a URDF).
            let checked = rrl_types::config::LaunchFile::load(file).map_err(anyhow::Error::from).and_then(|launch| {
                safety::Gate::build(&launch.safety, &launch.robot.joint_names(), launch.robot.control_rate_hz())
                    .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
                Ok(launch)
            });
            match checked {
                Ok(launch) => println!("{}: ok ({} robot `{}`)", file.display(), launch.robot.kind_name(), launch.name),
                Err(err) => {
                    failed += 1;
                    eprintln!("{err}");
                }
            }
        }
        if failed > 0 {
            eprintln!("{failed} of {} launch files invalid", files.len());
            return Ok(ExitCode::from(2));
        }
        Ok(ExitCode::SUCCESS)
    }
}
