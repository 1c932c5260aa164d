//! Where `rrl practice` reports to, one sink for all of it: the progress
//! bar and its status line, with the live view under it (or the log, for
//! several actors in one process),
//! `practice.csv`, the TensorBoard events and, at the end, the success-rate
//! plot.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use policies::practice::EpisodeReport;

use crate::metrics::TensorBoardWriter;

pub struct PracticeOutput {
    progress: indicatif::ProgressBar,
    /// The live view's line under the bar (episode, step, what it waits for).
    live: indicatif::ProgressBar,
    _bars: indicatif::MultiProgress,
    /// The robot named in the log's status lines; `None`: a progress bar shows them.
    log_as: Option<String>,
    status: StatusLine,
    csv: std::fs::File,
    /// `None` after a failed write: the curves are a diagnostic, not the run's data.
    board: Option<TensorBoardWriter>,
    /// The first failed `practice.csv` write: practice goes on, the command fails at the end.
    write_error: Option<anyhow::Error>,
    run_dir: PathBuf,
}

impl PracticeOutput {
    /// Opens the outputs in `run_dir` (appending to a resumed run's);
    /// `log_as` sends the status lines to the log under that robot's name.
    pub fn create(run_dir: &Path, total_steps: u64, log_as: Option<String>) -> anyhow::Result<PracticeOutput> {
        let bars = indicatif::MultiProgress::new();
        let (progress, live) = match log_as.is_some() {
            true => (indicatif::ProgressBar::hidden(), indicatif::ProgressBar::hidden()),
            false => (bars.add(indicatif::ProgressBar::new(total_steps)), bars.add(indicatif::ProgressBar::new_spinner())),
        };
        progress.set_style(indicatif::ProgressStyle::with_template("{bar:25} {pos}/{len} steps eta {eta} {msg}").expect("valid template"));
        let csv_path = run_dir.join("practice.csv");
        let mut csv = std::fs::OpenOptions::new().create(true).append(true).open(&csv_path).with_context(|| format!("opening {}", csv_path.display()))?;
        if csv.metadata()?.len() == 0 {
            writeln!(csv, "episode,steps,total_steps,return,success,interventions,safety_events,reason,learner_updates,seconds,risk_critic")?;
        }
        let board = Some(TensorBoardWriter::create(&run_dir.join("tensorboard")).context("creating the TensorBoard event file")?);
        Ok(PracticeOutput { progress, live, _bars: bars, log_as, status: StatusLine::default(), csv, board, write_error: None, run_dir: run_dir.to_path_buf() })
    }

    /// Where the live view's line goes (under the bar; nowhere when logging).
    pub fn live_line(&self) -> impl FnMut(&str) + Send + 'static {
        let bar = self.live.clone();
        move |line: &str| bar.set_message(line.to_string())
    }

    pub fn episode(&mut self, episode: &EpisodeReport) {
        let status = &mut self.status;
        status.push(episode);
        self.progress.set_position(episode.total_steps);
        self.progress.set_message(status.line());
        if let Some(robot) = &self.log_as {
            tracing::info!(robot = %robot, total_steps = episode.total_steps, "{}", status.line());
        }
        let success = episode.success.map(|s| u8::from(s).to_string()).unwrap_or_default();
        let row = format!(
            "{},{},{},{:.4},{},{},{},{},{},{:.3},{}\n",
            episode.episode,
            episode.steps,
            episode.total_steps,
            episode.episode_return,
            success,
            episode.interventions,
            episode.safety_events,
            episode.reason,
            episode.learner_updates,
            episode.seconds,
            episode.risk_critic.name()
        );
        // Like the episodes, the row waits out a full disk (the actor, and so the robot, holds meanwhile).
        let csv = &mut self.csv;
        let appended = recording::retry_while_storage_full(
            || append_whole_line(csv, &row),
            recording::is_storage_full,
            std::time::Duration::from_secs(1),
            |e| tracing::warn!("the disk is full ({e}) writing practice.csv: practice is paused and retries every second; free some space to go on"),
            |waited| tracing::warn!(paused_s = waited, "practice.csv is written again: practice resumes"),
        );
        if let Err(e) = appended {
            self.write_error.get_or_insert(anyhow::Error::from(e).context("writing practice.csv"));
        }
        let mut scalars = vec![("practice/return", episode.episode_return), ("practice/success_rate_20", status.success_rate()), ("practice/intervention_rate", status.intervention_rate()), ("practice/safety_events", episode.safety_events as f64)];
        scalars.push(("learner/updates", episode.learner_updates as f64));
        if let Some(writer) = self.board.as_mut() {
            for (tag, value) in scalars {
                if let Err(e) = writer.scalar(tag, episode.total_steps, value) {
                    tracing::warn!("TensorBoard events are no longer written: {e}");
                    self.board = None;
                    break;
                }
            }
        }
    }

    /// Clears the progress bar and draws the success-rate curve; the totals
    /// of the report. Fails when `practice.csv` could not be written.
    pub fn finish(self, task_name: &str) -> anyhow::Result<StatusLine> {
        self.live.finish_and_clear();
        self.progress.finish_and_clear();
        if let Some(e) = self.write_error {
            return Err(e);
        }
        let curve = &self.status.curve;
        if !curve.is_empty() {
            crate::metrics::learning_curve_png(&self.run_dir.join("success_rate.png"), &format!("{task_name} practice"), "environment steps", "success rate, last 20 episodes", curve)?;
        }
        Ok(self.status)
    }
}

/// Appends `line` to `file` (opened for appending) whole or not at all: a
/// failed write is cut back, so a retry leaves no torn row.
/// A row of `practice.csv`, read back (a car's laps, a console's curves on resume).
#[derive(Debug, Clone, PartialEq)]
pub struct PracticeRow {
    pub episode: rrl_types::EpisodeSummary,
    /// Why it ended: success, failure, time limit, stuck, stopped, budget.
    pub reason: String,
}

/// The rows of a run's `practice.csv`; a row that is not one is refused at file:line.
pub fn read_practice_csv(path: &Path) -> anyhow::Result<Vec<PracticeRow>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let bad = || anyhow::anyhow!("{}:{}: not a practice.csv row: `{line}`", path.display(), i + 1);
        if f.len() < 8 {
            return Err(bad());
        }
        let success = match f[4] {
            "1" => Some(true),
            "0" => Some(false),
            "" => None,
            _ => return Err(bad()),
        };
        let number = |k: usize| f[k].parse::<u64>().map_err(|_| bad());
        let episode = rrl_types::EpisodeSummary { episode: number(0)?, steps: number(1)?, total_steps: number(2)?, episode_return: f[3].parse().map_err(|_| bad())?, success, interventions: number(5)? };
        rows.push(PracticeRow { episode, reason: f[7].to_string() });
    }
    Ok(rows)
}

fn append_whole_line(file: &mut std::fs::File, line: &str) -> std::io::Result<()> {
    let before = file.metadata()?.len();
    file.write_all(line.as_bytes()).inspect_err(|_| {
        let _ = file.set_len(before);
    })
}

/// Running numbers for the live status line and the report.
#[derive(Default)]
pub struct StatusLine {
    recent: std::collections::VecDeque<bool>,
    episodes: u64,
    steps: u64,
    interventions: u64,
    pub safety_events: u64,
    last_return: f64,
    updates: u64,
    started: Option<std::time::Instant>,
    curve: Vec<(u64, f64)>,
}

impl StatusLine {
    fn push(&mut self, e: &EpisodeReport) {
        self.started.get_or_insert_with(std::time::Instant::now);
        self.recent.push_back(e.success == Some(true));
        if self.recent.len() > 20 {
            self.recent.pop_front();
        }
        self.episodes += 1;
        self.steps += e.steps;
        self.interventions += e.interventions;
        self.safety_events += e.safety_events;
        self.last_return = e.episode_return;
        self.updates = e.learner_updates;
        self.curve.push((e.total_steps, self.success_rate()));
    }

    pub fn success_rate(&self) -> f64 {
        self.recent.iter().filter(|&&s| s).count() as f64 / self.recent.len().max(1) as f64
    }

    pub fn intervention_rate(&self) -> f64 {
        self.interventions as f64 / self.steps.max(1) as f64
    }

    fn line(&self) -> String {
        let seconds = self.started.map_or(0.0, |t| t.elapsed().as_secs_f64()).max(1e-3);
        format!(
            "ep {} | success(20) {:.0}% | takeover {:.1}% | safety {} | return {:.1} | {} updates ({:.0}/s)",
            self.episodes,
            100.0 * self.success_rate(),
            100.0 * self.intervention_rate(),
            self.safety_events,
            self.last_return,
            self.updates,
            self.updates as f64 / seconds
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn practice_csv_rows_read_back_and_a_broken_row_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("practice.csv");
        std::fs::write(&path, "episode,steps,total_steps,return,success,interventions,safety_events,reason,learner_updates,seconds\n4,20,100,1.5000,1,3,0,success,80,2.000\n5,20,120,0.0000,,0,0,budget,90,2.000\n").unwrap();
        let rows = super::read_practice_csv(&path).unwrap();
        let first = rows[0].episode;
        assert_eq!((first.episode, first.steps, first.total_steps, first.episode_return, first.success, first.interventions), (4, 20, 100, 1.5, Some(true), 3));
        assert_eq!((rows[1].episode.success, rows[1].reason.as_str()), (None, "budget"));
        std::fs::write(&path, "header\n6,20,14\n").unwrap();
        let err = super::read_practice_csv(&path).unwrap_err().to_string();
        assert!(err.ends_with(":2: not a practice.csv row: `6,20,14`"), "{err}");
    }
}
