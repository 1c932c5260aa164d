//! `rrl classifier train|eval`: a success classifier from the labelled
//! frames of a user's runs (every recorded step whose frames carry a
//! success or failure label: a human's key or button in `rrl teleop` and
//! `rrl practice`, or the simulator's truth from `rrl record-sim
//! --run-dir`). Training holds whole episodes out and chooses the
//! threshold on them for precision; evaluation reports precision, recall,
//! F1 and the confusion on runs of its own, with a sheet of the frames it
//! got wrong.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use policies::classifier::{choose_threshold, ClassifierTraining, Confusion, FrameClassifier, LabelledFrames};
use policies::pixels::PixelConfig;
use rrl_types::rng::Rng;
use rrl_types::FrameLayout;

#[derive(clap::Args)]
pub struct ClassifierArgs {
    #[command(subcommand)]
    which: ClassifierCommand,
}

#[derive(clap::Subcommand)]
enum ClassifierCommand {
    /// Train on the labelled frames of RUN folders (their labelled/, demos/ and episodes/) and write the classifier.
    Train(TrainArgs),
    /// Precision, recall, F1 and confusion of a classifier on the labelled frames of RUN folders, and a sheet of the frames it got wrong.
    Eval(EvalArgs),
}

#[derive(clap::Args)]
struct TrainArgs {
    /// Run folders with labelled frames.
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Where the classifier goes (safetensors, written atomically).
    #[arg(long)]
    out: PathBuf,
    /// A frozen trunk: a pretrained TorchScript file (e.g. from scripts/make_resnet10_trunk.py) or one made by `rrl trunk train` (.safetensors); default: small convolutions trained from scratch.
    #[arg(long)]
    trunk: Option<PathBuf>,
    #[arg(long, default_value_t = 600)]
    steps: usize,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Share of the episodes held out of training, to choose the threshold on and report.
    #[arg(long, default_value_t = 0.25)]
    holdout: f64,
    /// The precision the threshold is chosen for on the held-out frames.
    #[arg(long, default_value_t = 0.99)]
    min_precision: f64,
    /// Each class needs at least this many training frames.
    #[arg(long, default_value_t = 10)]
    min_per_class: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(clap::Args)]
struct EvalArgs {
    /// Run folders with labelled frames (not those it was trained on).
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// The classifier (from `rrl classifier train`).
    #[arg(long)]
    model: PathBuf,
    /// The frozen trunk it was trained on, if it was.
    #[arg(long)]
    trunk: Option<PathBuf>,
    /// Overrides the classifier's own threshold.
    #[arg(long)]
    threshold: Option<f64>,
    /// A PNG sheet of the misclassified frames (false successes framed red, missed ones blue).
    #[arg(long)]
    sheet: Option<PathBuf>,
}

/// One recorded episode's labelled frames.
struct LabelledEpisode {
    path: PathBuf,
    layout: FrameLayout,
    /// One observation's frames after another.
    frames: Vec<u8>,
    labels: Vec<bool>,
}

impl LabelledEpisode {
    fn has(&self, label: bool) -> bool {
        self.labels.contains(&label)
    }
}

/// The labelled frames of every episode of `runs`, all of one layout.
fn read_labelled(runs: &[PathBuf]) -> anyhow::Result<Vec<LabelledEpisode>> {
    let mut episodes: Vec<LabelledEpisode> = Vec::new();
    for path in crate::run_folders::episode_files(runs, &["labelled", "demos", "episodes"])? {
        let episode = recording::read_episode(&path)?;
        let (mut frames, mut labels, mut layout) = (Vec::new(), Vec::new(), None);
        for (i, step) in episode.steps.iter().enumerate() {
            let (Some(label), Some(encoded)) = (step.flags.label, &step.next_frames) else { continue };
            let (this, rgb) = recording::frames::decode(encoded).with_context(|| format!("{}: step {i}'s frames", path.display()))?;
            frames.extend_from_slice(&rgb);
            if layout.is_some_and(|l| l != this) {
                bail!("{}: step {i}'s frames are {this}, the episode's earlier ones {}", path.display(), layout.unwrap());
            }
            layout = Some(this);
            labels.push(label);
        }
        let Some(layout) = layout else { continue };
        if let Some(first) = episodes.first().filter(|e| e.layout != layout) {
            bail!("{}: its frames are {layout}; {} has {}: a classifier takes one layout of cameras", path.display(), first.path.display(), first.layout);
        }
        episodes.push(LabelledEpisode { path, layout, frames, labels });
    }
    if episodes.is_empty() {
        bail!("no labelled frames in {}: label frames with y/n in `rrl teleop` or `rrl practice`, or record a simulated task with `rrl record-sim --run-dir`", runs.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", "));
    }
    Ok(episodes)
}

/// Episodes and their frames concatenated.
fn joined<'a>(episodes: impl Iterator<Item = &'a LabelledEpisode>) -> (Vec<u8>, Vec<bool>) {
    let (mut frames, mut labels) = (Vec::new(), Vec::new());
    for e in episodes {
        frames.extend_from_slice(&e.frames);
        labels.extend_from_slice(&e.labels);
    }
    (frames, labels)
}

/// Indices of the held-out episodes: `share` of those with a success frame
/// and `share` of the others (at least one of each kind that has two),
/// drawn with `seed`, so both classes are held out.
fn held_out(episodes: &[LabelledEpisode], share: f64, seed: u64) -> Vec<usize> {
    let mut rng = Rng::seed(seed ^ 0x401d);
    let mut out = Vec::new();
    for with_success in [true, false] {
        let mut group: Vec<usize> = (0..episodes.len()).filter(|&i| episodes[i].has(true) == with_success).collect();
        rng.shuffle(&mut group);
        let take = ((group.len() as f64 * share).round() as usize).max(usize::from(group.len() >= 2)).min(group.len().saturating_sub(1));
        out.extend_from_slice(&group[..take]);
    }
    out.sort_unstable();
    out
}

/// Precision, recall, F1, accuracy, balanced accuracy (0.5 for always
/// answering one class) and the confusion as JSON, with the accuracy of
/// always answering the majority class beside it.
fn metrics_json(confusion: &Confusion, labels: &[bool]) -> serde_json::Value {
    let successes = labels.iter().filter(|&&l| l).count();
    let majority = successes.max(labels.len() - successes) as f64 / labels.len().max(1) as f64;
    serde_json::json!({
        "frames": labels.len(),
        "success_frames": successes,
        "precision": confusion.precision(),
        "recall": confusion.recall(),
        "f1": confusion.f1(),
        "accuracy": confusion.accuracy(),
        "balanced_accuracy": confusion.balanced_accuracy(),
        "false_positive_rate": confusion.false_positive_rate(),
        "majority_class_accuracy": majority,
        "confusion": confusion,
    })
}

impl ClassifierArgs {
    pub fn run(self) -> anyhow::Result<serde_json::Value> {
        match self.which {
            ClassifierCommand::Train(args) => args.run(),
            ClassifierCommand::Eval(args) => args.run(),
        }
    }
}

impl TrainArgs {
    fn run(self) -> anyhow::Result<serde_json::Value> {
        if !(self.holdout > 0.0 && self.holdout < 1.0) {
            bail!("--holdout {} must lie in (0, 1): the threshold is chosen on held-out episodes", self.holdout);
        }
        let began = Instant::now();
        let episodes = read_labelled(&self.runs)?;
        let layout = episodes[0].layout;
        let holdout = held_out(&episodes, self.holdout, self.seed);
        if holdout.is_empty() || !holdout.iter().any(|&i| episodes[i].has(true)) || !holdout.iter().any(|&i| episodes[i].has(false)) {
            bail!(
                "{} labelled episodes, {} with success frames: holding out both classes needs at least two episodes with success frames and two with failure frames",
                episodes.len(),
                episodes.iter().filter(|e| e.has(true)).count()
            );
        }
        let (train_frames, train_labels) = joined(episodes.iter().enumerate().filter(|(i, _)| !holdout.contains(i)).map(|(_, e)| e));
        let (held_frames, held_labels) = joined(holdout.iter().map(|&i| &episodes[i]));
        // Random shifts of about 1/16 of the side (DrQ: 4 at 84 px), none on a frozen trunk (its features are then computed once).
        let shift_pad = if self.trunk.is_some() { 0 } else { (layout.width.min(layout.height) as i64 / 16).max(1) };
        let pixels = PixelConfig { cameras: layout.cameras as i64, height: layout.height as i64, width: layout.width as i64, feature_size: 50, shift_pad, filters: 32, pretrained: self.trunk.clone() };
        let settings = ClassifierTraining { steps: self.steps, batch_size: self.batch_size, seed: self.seed, min_per_class: self.min_per_class, ..ClassifierTraining::default() };
        let bar = indicatif::ProgressBar::new(self.steps as u64).with_style(indicatif::ProgressStyle::with_template("training the classifier {bar:30} {pos}/{len} {msg}").expect("a valid template"));
        let mut classifier = FrameClassifier::train(&LabelledFrames { frames: &train_frames, labels: &train_labels }, &pixels, &settings, |step, loss| {
            bar.set_position(step as u64 + 1);
            if step % 20 == 0 {
                bar.set_message(format!("loss {loss:.3}"));
            }
        })?;
        bar.finish_and_clear();
        let scores = classifier.scores(&held_frames)?;
        let choice = choose_threshold(&scores, &held_labels, self.min_precision);
        if !choice.met {
            tracing::warn!(precision = choice.confusion.precision(), wanted = self.min_precision, "no threshold reaches the precision asked for on the held-out frames; the most precise one is kept: label more frames (or more varied ones) and train again");
        }
        classifier.threshold = choice.threshold;
        if let Some(parent) = self.out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        classifier.save(&self.out)?;
        Ok(serde_json::json!({
            "model": self.out.display().to_string(),
            "layout": layout.to_string(),
            "encoder": if self.trunk.is_some() { "frozen trunk" } else { "convolutions" },
            "episodes": {"train": episodes.len() - holdout.len(), "held_out": holdout.len()},
            "train_frames": {"success": train_labels.iter().filter(|&&l| l).count(), "failure": train_labels.iter().filter(|&&l| !l).count()},
            "threshold": choice.threshold,
            "precision_met": choice.met,
            "held_out": metrics_json(&choice.confusion, &held_labels),
            "seconds": began.elapsed().as_secs_f64(),
        }))
    }
}

impl EvalArgs {
    fn run(self) -> anyhow::Result<serde_json::Value> {
        let mut classifier = FrameClassifier::load(&self.model, self.trunk.as_deref())?;
        if let Some(threshold) = self.threshold {
            classifier.threshold = threshold;
        }
        let episodes = read_labelled(&self.runs)?;
        let wanted = classifier.pixels().layout();
        if episodes[0].layout != wanted {
            bail!("{}: takes {wanted}; the runs' frames are {} ({})", self.model.display(), episodes[0].layout, episodes[0].path.display());
        }
        let (frames, labels) = joined(episodes.iter());
        let scores = classifier.scores(&frames)?;
        let confusion = Confusion::of(&scores, &labels, classifier.threshold);
        let mut report = metrics_json(&confusion, &labels);
        report["model"] = self.model.display().to_string().into();
        report["threshold"] = classifier.threshold.into();
        report["episodes"] = episodes.len().into();
        if let Some(sheet) = &self.sheet {
            let wrong: Vec<(usize, bool)> = (0..labels.len()).filter(|&i| (scores[i] >= classifier.threshold) != labels[i]).map(|i| (i, labels[i])).collect();
            write_sheet(sheet, &frames, wanted, &wrong)?;
            report["sheet"] = sheet.display().to_string().into();
            report["sheet_frames"] = wrong.len().min(SHEET_MAX).into();
        }
        Ok(report)
    }
}

/// Frames on a sheet at most; columns of it.
const SHEET_MAX: usize = 64;
const SHEET_COLUMNS: usize = 8;
/// Border around each tile, in pixels.
const BORDER: usize = 2;

/// A PNG of the first `SHEET_MAX` `wrong` frames (index, true label), each
/// observation's cameras side by side, framed red where the classifier
/// called a failure a success and blue where it missed a success; written
/// atomically.
fn write_sheet(path: &Path, frames: &[u8], layout: FrameLayout, wrong: &[(usize, bool)]) -> anyhow::Result<()> {
    let (tile_w, tile_h) = (layout.cameras * layout.width + 2 * BORDER, layout.height + 2 * BORDER);
    let shown = &wrong[..wrong.len().min(SHEET_MAX)];
    let rows = shown.len().div_ceil(SHEET_COLUMNS).max(1);
    let columns = shown.len().clamp(1, SHEET_COLUMNS);
    let (width, height) = (columns * tile_w, rows * tile_h);
    let mut rgb = vec![255u8; width * height * 3];
    let observation = layout.bytes();
    let camera = layout.height * layout.width * 3;
    for (n, &(index, success)) in shown.iter().enumerate() {
        let (x0, y0) = ((n % SHEET_COLUMNS) * tile_w, (n / SHEET_COLUMNS) * tile_h);
        let colour: [u8; 3] = if success { [40, 80, 230] } else { [230, 40, 40] };
        for y in 0..tile_h {
            for x in 0..tile_w {
                let at = ((y0 + y) * width + x0 + x) * 3;
                let inside = (BORDER..tile_h - BORDER).contains(&y) && (BORDER..tile_w - BORDER).contains(&x);
                let pixel = if inside {
                    let (fx, fy) = (x - BORDER, y - BORDER);
                    let (c, cx) = (fx / layout.width, fx % layout.width);
                    let from = index * observation + c * camera + (fy * layout.width + cx) * 3;
                    [frames[from], frames[from + 1], frames[from + 2]]
                } else {
                    colour
                };
                rgb[at..at + 3].copy_from_slice(&pixel);
            }
        }
    }
    let png = rewards::encode::png_rgb(width as u32, height as u32, &rgb);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    recording::atomic::write_file(path, &png)?;
    Ok(())
}
