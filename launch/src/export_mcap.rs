//! `rrl export-mcap RUN_DIR --out FILE.mcap|BAG_DIR`: a run's demos,
//! practice and eval episodes, as one MCAP file or as a rosbag2 folder.

use std::path::PathBuf;

use anyhow::bail;

#[derive(clap::Args)]
pub struct ExportMcapArgs {
    /// Run folder (holds demos/, episodes/, eval/).
    run_dir: PathBuf,
    #[arg(long)]
    out: PathBuf,
}

impl ExportMcapArgs {
    pub fn run(self) -> anyhow::Result<serde_json::Value> {
        let (run_dir, out) = (&self.run_dir, &self.out);
        let mut episodes = Vec::new();
        for folder in ["demos", "episodes", "eval/episodes"] {
            for path in recording::list_episodes(&run_dir.join(folder))? {
                episodes.push(recording::read_episode(&path)?);
            }
        }
        if episodes.is_empty() {
            bail!("{}: no recorded episodes (looked in demos/, episodes/, eval/episodes/)", run_dir.display());
        }
        // A path ending in .mcap is one file (Foxglove); anything else a rosbag2 folder (ros2 bag).
        let summary = match out.extension().is_some_and(|e| e == "mcap") {
            true => recording::mcap::export(&episodes, out)?,
            false => recording::mcap::export_bag(&episodes, out)?,
        };
        let topics: serde_json::Map<String, serde_json::Value> = summary.per_topic.iter().map(|(topic, kind, count)| (topic.clone(), serde_json::json!({"type": kind, "messages": count}))).collect();
        Ok(serde_json::json!({ "out": out.display().to_string(), "episodes": summary.episodes, "messages": summary.messages, "bytes": summary.bytes, "topics": topics }))
    }
}
