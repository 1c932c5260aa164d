//! A car's practice in laps, from its `practice.csv`: each episode is a lap
//! attempt (`rrl_types::course`), so a successful episode's length is a lap
//! time and an episode that ended in the recovery manoeuvre is a collision
//! or a stuck car. Written as `lap_times.png` and the report's `laps`.

use std::path::Path;


/// One row of practice.csv, as much as laps need.
struct Attempt {
    steps: u64,
    total_steps: u64,
    success: bool,
    recovered: bool,
}

fn read_attempts(csv: &Path) -> anyhow::Result<Vec<Attempt>> {
    let rows = crate::practice_output::read_practice_csv(csv)?;
    Ok(rows.into_iter().map(|r| Attempt { steps: r.episode.steps, total_steps: r.episode.total_steps, success: r.episode.success == Some(true), recovered: r.reason == "stuck" }).collect())
}

fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    (n > 0).then(|| if n % 2 == 1 { values[n / 2] } else { 0.5 * (values[n / 2 - 1] + values[n / 2]) })
}

/// The laps of the practice in `run_dir` (steps of `step_s` seconds), by
/// fifths of the practice: median lap time and recoveries per lap. Draws
/// lap time over practice time to `run_dir/lap_times.png`.
pub fn summarise(run_dir: &Path, step_s: f64) -> anyhow::Result<serde_json::Value> {
    let attempts = read_attempts(&run_dir.join("practice.csv"))?;
    let total = attempts.last().map_or(0, |a| a.total_steps).max(1);
    let laps: Vec<(u64, f64)> = attempts.iter().filter(|a| a.success).map(|a| ((a.total_steps as f64 * step_s) as u64, a.steps as f64 * step_s)).collect();
    let mut fifths = Vec::new();
    for k in 0..5u64 {
        let within = |a: &&Attempt| a.total_steps * 5 > k * total && a.total_steps * 5 <= (k + 1) * total;
        let mut times: Vec<f64> = attempts.iter().filter(within).filter(|a| a.success).map(|a| a.steps as f64 * step_s).collect();
        let recoveries = attempts.iter().filter(within).filter(|a| a.recovered).count();
        let lap_count = times.len();
        fifths.push(serde_json::json!({
            "until_practice_s": (((k + 1) * total) as f64 * step_s / 5.0).round(),
            "laps": lap_count,
            "median_lap_s": median(&mut times),
            "recoveries": recoveries,
            "recoveries_per_lap": (lap_count > 0).then(|| recoveries as f64 / lap_count as f64),
        }));
    }
    let png = run_dir.join("lap_times.png");
    if !laps.is_empty() {
        crate::metrics::learning_curve_png(&png, "lap time over practice", "practice time, s", "lap time, s", &laps)?;
    }
    let mut times: Vec<f64> = laps.iter().map(|l| l.1).collect();
    Ok(serde_json::json!({
        "laps": laps.len(),
        "first_lap_at_practice_s": laps.first().map(|l| l.0),
        "best_lap_s": times.iter().copied().reduce(f64::min),
        "median_lap_s": median(&mut times),
        "recoveries": attempts.iter().filter(|a| a.recovered).count(),
        "by_fifth": fifths,
        "png": (!laps.is_empty()).then(|| png.display().to_string()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laps_are_successful_episodes_and_recoveries_are_counted_per_fifth() {
        let dir = tempfile::tempdir().unwrap();
        let csv = "episode,steps,total_steps,return,success,interventions,safety_events,reason,learner_updates,seconds\n\
                   0,100,100,-1,0,0,0,stuck,0,0.1\n1,150,250,5,1,0,0,success,0,0.2\n2,50,300,-1,0,0,0,stuck,0,0.3\n\
                   3,120,420,6,1,0,0,success,0,0.4\n4,80,500,7,1,0,0,success,0,0.5\n";
        std::fs::write(dir.path().join("practice.csv"), csv).unwrap();
        let laps = summarise(dir.path(), 0.1).unwrap();
        assert_eq!(laps["laps"], 3);
        assert_eq!(laps["best_lap_s"], 8.0);
        assert_eq!(laps["first_lap_at_practice_s"], 25);
        assert_eq!(laps["recoveries"], 2);
        // Fifths of 500 steps: (0,100] (100,200] (200,300] (300,400] (400,500].
        assert_eq!(laps["by_fifth"][2]["laps"], 1);
        assert_eq!(laps["by_fifth"][2]["recoveries_per_lap"], 1.0);
        // The fifth's laps took 12 s and 8 s: the median is between them.
        assert_eq!(laps["by_fifth"][4]["median_lap_s"], 10.0);
        assert!(dir.path().join("lap_times.png").is_file());
        std::fs::write(dir.path().join("practice.csv"), "header\n0,1,x\n").unwrap();
        let err = summarise(dir.path(), 0.1).unwrap_err().to_string();
        assert!(err.contains("practice.csv:2"), "{err}");
    }
}
