//! `rrl reward-eval`: how well a reward source tracks task progress on
//! recorded episodes (video files or folders of frames): Value-Order
//! Correlation forward and on the time-reversed episode, the rate of
//! negative deltas on successful episodes, success precision / recall /
//! F1 against labels, and, for frame folders that carry their true progress
//! (`progress.csv`, one value per frame, as `rrl record-sim` writes), the
//! rank and linear correlation of the predicted value with it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use opencv::core::Mat;
use rewards::metrics::{classification, negative_delta_rate, pearson, spearman, value_order_correlation};
use rewards::{ClipReward, Frame, RewardSource, VlmProgressCritic, VlmPrompts, VlmSettings};
use robot_drivers::camera::{bgr_to_rgb_bytes, read_image_rgb, OpenCvCamera};
use rrl_types::config::CameraSource;
use rrl_types::Timestamp;

#[derive(clap::Args)]
pub struct RewardEvalArgs {
    /// Folder of episodes: video files (.mp4, .avi, .mkv, .webm) or sub-folders of frames (.png, .jpg) in name order.
    pub episodes: PathBuf,
    /// The task description given to the reward source.
    #[arg(long)]
    pub task: String,
    /// `vlm` (progress critic on an OpenAI-compatible endpoint), `clip`, or
    /// `classifier` (a success classifier from `rrl classifier train`:
    /// --model names it, --size must be its frame size).
    #[arg(long, default_value = "vlm")]
    pub source: String,
    /// vlm: chat-completions URL, e.g. http://127.0.0.1:8000/v1/chat/completions.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// vlm: the model's name at the endpoint; classifier: the classifier file.
    #[arg(long, default_value = "default")]
    pub model: String,
    /// classifier: the frozen trunk it was trained on, if it was.
    #[arg(long)]
    pub trunk: Option<PathBuf>,
    /// vlm: name of the environment variable holding the API key (the key itself never goes on the command line).
    #[arg(long)]
    pub api_key_env: Option<String>,
    /// vlm: a PEM file of the root certificates an https endpoint is checked against instead of the system's (a private certificate authority).
    #[arg(long)]
    pub root_certificates: Option<PathBuf>,
    #[arg(long, default_value_t = 90.0)]
    pub done_threshold: f64,
    #[arg(long, default_value_t = 60.0)]
    pub timeout_s: f64,
    /// clip: TorchScript image encoder.
    #[arg(long)]
    pub image_encoder: Option<PathBuf>,
    /// clip: TorchScript text encoder.
    #[arg(long)]
    pub text_encoder: Option<PathBuf>,
    #[arg(long, default_value = "a robot arm on a table")]
    pub baseline: String,
    #[arg(long, default_value_t = 0.5)]
    pub alpha: f64,
    /// Frames are resized to SIZE x SIZE.
    #[arg(long, default_value_t = 224)]
    pub size: u32,
    /// Score every N-th frame.
    #[arg(long, default_value_t = 1)]
    pub every: usize,
    /// JSON object of success labels by episode name, e.g. {"ep1": true}. Default: labels.json in the episodes folder, if there.
    #[arg(long)]
    pub labels: Option<PathBuf>,
}

fn episode_inputs(folder: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(folder)
        .with_context(|| format!("reading {}", folder.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() || p.extension().and_then(|e| e.to_str()).is_some_and(|e| ["mp4", "avi", "mkv", "webm", "mov"].contains(&e.to_ascii_lowercase().as_str())))
        .collect();
    inputs.sort();
    if inputs.is_empty() {
        bail!("{}: no episodes (video files or folders of frames)", folder.display());
    }
    Ok(inputs)
}

/// The true progress of each frame of a frame folder, from its
/// `progress.csv`; `None` when there is none. Lines must match the frames.
fn read_true_progress(folder: &Path, frame_count: usize) -> anyhow::Result<Option<Vec<f64>>> {
    let file = folder.join("progress.csv");
    if !file.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let mut values = Vec::with_capacity(frame_count);
    for (line, row) in text.lines().enumerate() {
        let row = row.trim();
        if row.is_empty() || (line == 0 && row.parse::<f64>().is_err() && row.chars().all(|c| c.is_alphabetic() || c == '_')) {
            continue; // a header or a trailing blank line
        }
        values.push(row.parse::<f64>().map_err(|_| anyhow::anyhow!("{}:{}: `{row}` is not a number", file.display(), line + 1))?);
    }
    if values.len() != frame_count {
        bail!("{}: {} progress values for {} frames", file.display(), values.len(), frame_count);
    }
    Ok(Some(values))
}

/// The frames of an episode (every `every`-th), and their true progress
/// when the episode is a frame folder with a `progress.csv`.
fn read_frames(input: &Path, size: u32, every: usize) -> anyhow::Result<(Vec<Frame>, Option<Vec<f64>>)> {
    let every = every.max(1);
    let mut frames = Vec::new();
    let mut true_progress = None;
    if input.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(input)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().and_then(|e| e.to_str()).is_some_and(|e| ["png", "jpg", "jpeg"].contains(&e.to_ascii_lowercase().as_str())))
            .collect();
        files.sort();
        true_progress = read_true_progress(input, files.len())?.map(|all| all.into_iter().step_by(every).collect::<Vec<f64>>());
        for (i, file) in files.iter().enumerate().step_by(every) {
            let rgb = read_image_rgb(file, size, size)?;
            frames.push(Frame::new(Timestamp(i as u64), size, size, rgb)?);
        }
    } else {
        let mut camera = OpenCvCamera::open("episode", &CameraSource::Path(input.display().to_string()), size, size)?;
        let mut mat = Mat::default();
        let mut i = 0u64;
        while camera.read(&mut mat)?.is_some() {
            if i as usize % every == 0 {
                let (w, h, rgb) = bgr_to_rgb_bytes(&mat).with_context(|| format!("{}: frame {i}", input.display()))?;
                frames.push(Frame::new(Timestamp(i), w, h, rgb)?);
            }
            i += 1;
        }
    }
    if frames.len() < 2 {
        bail!("{}: {} frames; an episode needs at least 2", input.display(), frames.len());
    }
    Ok((frames, true_progress))
}

fn build_source(args: &RewardEvalArgs) -> anyhow::Result<Box<dyn RewardSource>> {
    Ok(match args.source.as_str() {
        "vlm" => {
            let endpoint = args.endpoint.clone().context("--source vlm needs --endpoint")?;
            let api_key = match &args.api_key_env {
                Some(var) => Some(std::env::var(var).with_context(|| format!("--api-key-env {var}: the variable is not set"))?),
                None => None,
            };
            Box::new(VlmProgressCritic::new(VlmSettings {
                endpoint,
                model: args.model.clone(),
                api_key,
                prompts: VlmPrompts::default(),
                done_threshold: args.done_threshold,
                timeout: Duration::from_secs_f64(args.timeout_s),
                reference_frames: Vec::new(),
                root_certificates: args.root_certificates.clone(),
            })?)
        }
        "clip" => {
            let image = args.image_encoder.as_ref().context("--source clip needs --image-encoder")?;
            let text = args.text_encoder.as_ref().context("--source clip needs --text-encoder")?;
            Box::new(ClipReward::load(image, args.size, args.size, text, &args.baseline, args.alpha)?)
        }
        "classifier" => Box::new(ClassifierSource::load(Path::new(&args.model), args.trunk.as_deref(), args.size)?),
        other => bail!("unknown reward source `{other}`: use vlm, clip or classifier"),
    })
}

/// A success classifier as a reward source: its probability is the
/// progress (x 100), a frame at or above its threshold is done.
struct ClassifierSource {
    classifier: policies::classifier::FrameClassifier,
}

impl ClassifierSource {
    fn load(model: &Path, trunk: Option<&Path>, size: u32) -> anyhow::Result<ClassifierSource> {
        let classifier = policies::classifier::FrameClassifier::load(model, trunk)?;
        let layout = classifier.pixels().layout();
        if layout.cameras != 1 || (layout.width, layout.height) != (size as usize, size as usize) {
            bail!("{}: takes {layout}; reward-eval gives it one camera's frames of {size}x{size} (pass --size {})", model.display(), layout.width);
        }
        Ok(ClassifierSource { classifier })
    }
}

impl RewardSource for ClassifierSource {
    fn name(&self) -> &str {
        "classifier"
    }
    fn reset(&mut self, _task: &str) -> Result<(), rewards::RewardError> {
        Ok(())
    }
    fn score(&mut self, frames: &[Frame]) -> Result<rewards::RewardEstimate, rewards::RewardError> {
        let frame = frames.first().ok_or_else(|| rewards::RewardError::Invalid("no frame to score".into()))?;
        let score = self.classifier.scores(&frame.rgb).map_err(|e| rewards::RewardError::Invalid(e.to_string()))?[0];
        let done = score >= self.classifier.threshold;
        Ok(rewards::RewardEstimate { stamp: frame.stamp, progress: Some(100.0 * score), reward: f64::from(u8::from(done)), done })
    }
}

/// Scores frames in order; progress where the source has it, else reward.
fn score_all(source: &mut dyn RewardSource, task: &str, frames: &[&Frame]) -> anyhow::Result<(Vec<f64>, bool)> {
    source.reset(task)?;
    let mut values = Vec::with_capacity(frames.len());
    let mut done = false;
    for frame in frames {
        let estimate = source.score(std::slice::from_ref(*frame))?;
        values.push(estimate.progress.unwrap_or(estimate.reward));
        done |= estimate.done;
    }
    Ok((values, done))
}

impl RewardEvalArgs {
    pub fn run(self) -> anyhow::Result<serde_json::Value> {
        // `rrl record-sim` leaves its labels beside the episodes.
        let beside = self.episodes.join("labels.json");
        let labels_file = self.labels.clone().or_else(|| beside.is_file().then_some(beside));
        let labels: serde_json::Map<String, serde_json::Value> = match &labels_file {
            Some(path) => serde_json::from_slice(&std::fs::read(path).with_context(|| format!("reading {}", path.display()))?).with_context(|| format!("{}: expected a JSON object of booleans", path.display()))?,
            None => serde_json::Map::new(),
        };
        let mut source = build_source(&self)?;
        let inputs = episode_inputs(&self.episodes)?;
        let progress = indicatif::ProgressBar::new(inputs.len() as u64);
        let mut per_episode = Vec::new();
        let (mut predicted, mut actual) = (Vec::new(), Vec::new());
        let mut negative_rates_on_successes = Vec::new();
        for input in &inputs {
            let name = input.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
            let (frames, true_progress) = read_frames(input, self.size, self.every)?;
            let forward: Vec<&Frame> = frames.iter().collect();
            let (values, done) = score_all(source.as_mut(), &self.task, &forward).with_context(|| format!("scoring {}", input.display()))?;
            let reversed_frames: Vec<&Frame> = frames.iter().rev().collect();
            let (reversed, _) = score_all(source.as_mut(), &self.task, &reversed_frames).with_context(|| format!("scoring {} reversed", input.display()))?;
            let label = match labels.get(&name) {
                Some(serde_json::Value::Bool(b)) => Some(*b),
                Some(other) => bail!("labels: `{name}` is {other}, expected true or false"),
                None => None,
            };
            if let Some(label) = label {
                predicted.push(done);
                actual.push(label);
                if label {
                    negative_rates_on_successes.push(negative_delta_rate(&values));
                }
            }
            per_episode.push(serde_json::json!({
                "episode": name,
                "frames": frames.len(),
                "voc": value_order_correlation(&values),
                "voc_reversed": value_order_correlation(&reversed),
                "negative_delta_rate": negative_delta_rate(&values),
                "predicted_success": done,
                "label": label,
                "progress_spearman": true_progress.as_ref().and_then(|truth| spearman(&values, truth)),
                "progress_pearson": true_progress.as_ref().and_then(|truth| pearson(&values, truth)),
                "values": values,
                "true_progress": true_progress,
            }));
            progress.inc(1);
        }
        progress.finish_and_clear();
        let mean = |key: &str| {
            let v: Vec<f64> = per_episode.iter().filter_map(|e| e[key].as_f64()).collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        };
        Ok(serde_json::json!({
            "source": self.source,
            "task": self.task,
            "episodes": per_episode.len(),
            "mean_voc": mean("voc"),
            "mean_voc_reversed": mean("voc_reversed"),
            "mean_progress_spearman": mean("progress_spearman"),
            "mean_progress_pearson": mean("progress_pearson"),
            "negative_delta_rate_on_successes": (!negative_rates_on_successes.is_empty()).then(|| negative_rates_on_successes.iter().sum::<f64>() / negative_rates_on_successes.len() as f64),
            "success": (!actual.is_empty()).then(|| classification(&predicted, &actual)),
            "per_episode": per_episode,
        }))
    }
}
