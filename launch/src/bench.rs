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
    let path = repo_file(script);
    let out = Command::new(python()).arg(&path).args(args).output().with_context(|| format!("running the peer {}", path.display()))?;
    if !out.status.success() {
        bail!("peer {} failed: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).with_context(|| format!("peer {} printed no JSON", path.display()))?;
    Ok(serde_json::from_str(last)?)
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
    progress.finish_and_clear();
    Ok(json!({ "bench": "sim", "threads": 1, "results": rows }))
}
