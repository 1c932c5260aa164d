//! `rrl trunk train`: a frozen pixel trunk from the frames of a user's
//! recorded runs (teleoperated demos, practice episodes, `rrl record-sim`
//! episodes): it learns from the cameras what the robot's state cannot
//! tell (`policies::trunk`). Whole episodes are held out to judge it, and
//! the report sets its held-out loss beside a state-only head's.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use policies::trunk::{TrunkEpisode, TrunkTraining};
use rrl_types::rng::Rng;
use rrl_types::FrameLayout;

#[derive(clap::Args)]
pub struct TrunkArgs {
    #[command(subcommand)]
    which: TrunkCommand,
}

#[derive(clap::Subcommand)]
enum TrunkCommand {
    /// Train on the episodes with camera frames of RUN folders (their demos/, episodes/ and labelled/) and write the trunk.
    Train(TrainArgs),
}

#[derive(clap::Args)]
struct TrainArgs {
    /// Run folders whose episodes carry the policy's camera frames.
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Where the trunk goes (safetensors, written atomically): `learner.pixels.encoder: Frozen("FILE")`.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 1500)]
    steps: usize,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Features the trunk gives.
    #[arg(long, default_value_t = 50)]
    features: i64,
    /// Channels of its convolutions.
    #[arg(long, default_value_t = 32)]
    filters: i64,
    /// Random shift while training, in pixels. Default: 1/16 of the frame's shorter side.
    #[arg(long)]
    shift_pixels: Option<i64>,
    /// Share of the episodes held out of training, to judge the trunk on.
    #[arg(long, default_value_t = 0.2)]
    holdout: f64,
    /// auto, cpu or cuda.
    #[arg(long, default_value = "auto")]
    device: String,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// One recorded episode's rows, its frames decoded.
struct Recorded {
    /// Its file, as errors name it.
    name: String,
    observations: Vec<Vec<f32>>,
    actions: Vec<Vec<f32>>,
    frames: Vec<Vec<u8>>,
}

/// Every episode with camera frames in `runs`, all of one layout; and how
/// many episodes had none.
fn read_recorded(runs: &[PathBuf]) -> anyhow::Result<(Vec<Recorded>, FrameLayout, usize)> {
    let (mut episodes, mut layout, mut without_frames) = (Vec::<Recorded>::new(), None::<FrameLayout>, 0);
    for path in crate::run_folders::episode_files(runs, &["demos", "episodes", "labelled"])? {
        let episode = recording::read_episode(&path)?;
        let Some(first) = &episode.reset_frames else {
            without_frames += 1;
            continue;
        };
        if episode.steps.is_empty() {
            continue;
        }
        let (this, _) = recording::frames::decode(first).with_context(|| format!("{}: the first observation's frames", path.display()))?;
        let sizes = (episode.header.observation_size, episode.header.action_size);
        if let (Some(l), Some(earlier)) = (layout, episodes.first()) {
            if l != this {
                bail!("{}: its frames are {this}; {} has {l}: a trunk takes one layout of cameras", path.display(), earlier.name);
            }
            let (o, a) = (earlier.observations[0].len(), earlier.actions[0].len());
            if sizes != (o, a) {
                // E.g. a residual run's episodes (the task's observation and the base's action) beside a plain run's.
                bail!("{}: {}/{} observation/action values; {} has {o}/{a}: a trunk learns from episodes of one task", path.display(), sizes.0, sizes.1, earlier.name);
            }
        }
        layout = Some(this);
        let frames = crate::bc::observation_frames(&episode, this)?;
        let last = episode.steps.last().map(|s| s.next_observation.clone());
        let observations = episode.steps.iter().map(|s| s.observation.clone()).chain(last).collect();
        let actions = episode.steps.iter().map(|s| s.action.clone()).collect();
        episodes.push(Recorded { name: path.display().to_string(), observations, actions, frames });
    }
    let Some(layout) = layout else {
        bail!(
            "no episodes with camera frames in {} ({without_frames} without): record with the policy's cameras on (`observe_cameras`), e.g. `rrl teleop`, `rrl practice` or `rrl record-sim --run-dir`",
            runs.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    };
    Ok((episodes, layout, without_frames))
}

impl TrunkArgs {
    pub fn run(self) -> anyhow::Result<serde_json::Value> {
        match self.which {
            TrunkCommand::Train(args) => args.run(),
        }
    }
}

impl TrainArgs {
    fn run(self) -> anyhow::Result<serde_json::Value> {
        if !(self.holdout > 0.0 && self.holdout < 1.0) {
            bail!("--holdout {} must lie in (0, 1): the trunk is judged on held-out episodes", self.holdout);
        }
        for (flag, value, least) in [("--features", self.features, 1), ("--filters", self.filters, 1), ("--shift-pixels", self.shift_pixels.unwrap_or(0), 0), ("--steps", self.steps as i64, 1), ("--batch-size", self.batch_size as i64, 1)] {
            if value < least {
                bail!("{flag} {value}: at least {least}");
            }
        }
        let began = Instant::now();
        let device = policies::select_device(crate::train::parse_device(&self.device)?)?;
        let (episodes, layout, without_frames) = read_recorded(&self.runs)?;
        if episodes.len() < 2 {
            bail!("{} episode(s) with camera frames: training and judging the trunk needs at least two", episodes.len());
        }
        // Whole episodes held out, drawn with the seed.
        let mut order: Vec<usize> = (0..episodes.len()).collect();
        Rng::seed(self.seed ^ 0x7c0c).shuffle(&mut order);
        let held = ((episodes.len() as f64 * self.holdout).round() as usize).clamp(1, episodes.len() - 1);
        let view = |i: &usize| TrunkEpisode { name: &episodes[*i].name, observations: &episodes[*i].observations, actions: &episodes[*i].actions, frames: &episodes[*i].frames };
        let held_out: Vec<TrunkEpisode> = order[..held].iter().map(view).collect();
        let train: Vec<TrunkEpisode> = order[held..].iter().map(view).collect();
        let settings = TrunkTraining {
            steps: self.steps,
            batch_size: self.batch_size,
            features: self.features,
            filters: self.filters,
            shift_pad: self.shift_pixels.unwrap_or((layout.width.min(layout.height) as i64 / 16).max(1)),
            seed: self.seed,
            ..TrunkTraining::default()
        };
        let bar = indicatif::ProgressBar::new(self.steps as u64).with_style(indicatif::ProgressStyle::with_template("training the trunk {bar:30} {pos}/{len} {msg}").expect("a valid template"));
        let (encoder, report) = policies::trunk::train(&train, &held_out, layout, &settings, device, |step, loss| {
            bar.set_position(step as u64 + 1);
            bar.set_message(format!("loss {loss:.3}"));
        })?;
        bar.finish_and_clear();
        policies::trunk::save(&encoder, &self.out)?;
        let fingerprint = policies::pixels::file_fingerprint(&self.out).with_context(|| format!("reading back {}", self.out.display()))?;
        Ok(serde_json::json!({
            "trunk": self.out.display().to_string(),
            "fingerprint": format!("{fingerprint:#018x}"),
            "layout": layout.to_string(),
            "episodes": {"train": train.len(), "held_out": held_out.len(), "without_frames": without_frames},
            "losses": report,
            "seconds": began.elapsed().as_secs_f64(),
        }))
    }
}
