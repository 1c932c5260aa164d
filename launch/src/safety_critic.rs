//! `rrl safety train-critic|eval|report`: the gate's learned risk critic
//! from the user's own runs. Every practice, teleop and evaluation episode
//! records the gate's ticks beside its steps (`recording`); `train-critic`
//! fits the Recovery RL target on them (whole episodes held out), `eval`
//! says how early and how precisely a critic anticipates the violations of
//! runs it never saw, scoring them with the gate's own evaluator
//! (`safety::RiskCritic`), and `report` counts a run's violations and
//! interventions per 1000 gate ticks.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use policies::risk::{Anticipation, CostLabel, RiskCriticTrainer, RiskDataset, RiskTrainerConfig};
use rrl_types::rng::Rng;
use rrl_types::{GateTick, TickVerdict};

#[derive(clap::Args)]
pub struct SafetyArgs {
    #[command(subcommand)]
    which: SafetyCommand,
}

#[derive(clap::Subcommand)]
enum SafetyCommand {
    /// Train the gate's risk critic on the gate ticks recorded in RUN folders (whole episodes held out) and export it for `safety.risk_critic`.
    TrainCritic(TrainArgs),
    /// How early and how precisely a critic flags the violations of RUN folders it never saw: precision, recall, lead time in gate ticks.
    Eval(EvalArgs),
    /// A run's safety record: violations, protective ticks and reflexes per 1000 gate ticks.
    Report(ReportArgs),
}

/// What the critic learns to anticipate, on the command line.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Label {
    /// The measured state broke a limit (a joint past its range, the tool outside its box).
    Violation,
    /// The gate protected: a hard limit reached, a hold, a reflex.
    Protective,
}

impl From<Label> for CostLabel {
    fn from(label: Label) -> CostLabel {
        match label {
            Label::Violation => CostLabel::Violation,
            Label::Protective => CostLabel::Protective,
        }
    }
}

#[derive(clap::Args)]
struct TrainArgs {
    /// Run folders (their episodes/, demos/ and other episode folders).
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Where the critic goes (safetensors in the gate's format, written atomically).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value = "violation")]
    label: Label,
    /// Gradient steps.
    #[arg(long, default_value_t = 3000)]
    updates: usize,
    /// Hidden layer widths, e.g. 64,64.
    #[arg(long, value_delimiter = ',', default_value = "64,64")]
    hidden: Vec<i64>,
    /// Discount of the Recovery RL target per gate tick (how far ahead "soon" reaches: about 1/(1-γ) ticks).
    #[arg(long, default_value_t = 0.5)]
    gamma_risk: f64,
    /// Share of the episodes held out of training, to report on.
    #[arg(long, default_value_t = 0.2)]
    holdout: f64,
    /// The risk above which the held-out report counts a tick as flagged (use the launch file's `risk_critic.threshold`).
    #[arg(long, default_value_t = 0.5)]
    threshold: f32,
    /// A flagged tick counts as right when a labelled tick follows within this many gate ticks.
    #[arg(long, default_value_t = 10)]
    horizon: u64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(clap::Args)]
struct EvalArgs {
    /// Run folders the critic was not trained on.
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// The critic (from `rrl safety train-critic`, or the learner).
    #[arg(long)]
    critic: PathBuf,
    #[arg(long, value_enum, default_value = "violation")]
    label: Label,
    #[arg(long, default_value_t = 0.5)]
    threshold: f32,
    #[arg(long, default_value_t = 10)]
    horizon: u64,
}

#[derive(clap::Args)]
struct ReportArgs {
    #[arg(required = true)]
    runs: Vec<PathBuf>,
}

impl SafetyArgs {
    pub fn run(self) -> anyhow::Result<serde_json::Value> {
        match self.which {
            SafetyCommand::TrainCritic(args) => args.run(),
            SafetyCommand::Eval(args) => args.run(),
            SafetyCommand::Report(args) => {
                let episodes = read_ticks(&args.runs)?;
                let mut all = report(&episodes.iter().collect::<Vec<_>>())?;
                all["by_critic_role"] = by_critic_role(&args.runs, &episodes)?;
                Ok(all)
            }
        }
    }
}

/// One recorded episode's gate ticks.
struct TickEpisode {
    path: PathBuf,
    /// The run folder, its subfolder (`episodes`, `demos`, `eval`) and the episode's number.
    run: PathBuf,
    folder: String,
    number: u64,
    ticks: Vec<GateTick>,
}

/// The gate ticks of every episode of `runs` (every episode folder in
/// them), all of one input width.
fn read_ticks(runs: &[PathBuf]) -> anyhow::Result<Vec<TickEpisode>> {
    let mut episodes: Vec<TickEpisode> = Vec::new();
    for run in runs {
        if !run.is_dir() {
            bail!("{}: no such run folder", run.display());
        }
        let mut folders: Vec<PathBuf> = std::fs::read_dir(run).with_context(|| format!("reading {}", run.display()))?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
        folders.sort();
        for folder in folders {
            for path in recording::list_episodes(&folder)? {
                let episode = recording::read_episode(&path)?;
                let ticks: Vec<GateTick> = episode.gate_ticks.into_iter().filter(|t| t.width > 0).collect();
                if ticks.is_empty() {
                    continue;
                }
                if let (Some(first), Some(tick)) = (episodes.first(), ticks.first()) {
                    if first.ticks[0].width != tick.width {
                        bail!("{}: gate ticks of {} inputs, {} has {}: one robot's runs at a time", path.display(), tick.width, first.path.display(), first.ticks[0].width);
                    }
                }
                let name = folder.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                episodes.push(TickEpisode { path, run: run.clone(), folder: name, number: episode.header.episode, ticks });
            }
        }
    }
    if episodes.is_empty() {
        bail!("no recorded gate ticks in {}: runs recorded before gate ticks were, or a robot whose gate runs in another process", runs.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", "));
    }
    Ok(episodes)
}

/// Gate ticks an episode spans (recorded or decimated).
fn spanned(ticks: &[GateTick]) -> u64 {
    match (ticks.first(), ticks.last()) {
        (Some(a), Some(b)) if b.index >= a.index => b.index - a.index + 1,
        _ => ticks.len() as u64,
    }
}

/// Violations, protective ticks and reflexes per 1000 gate ticks.
fn report(episodes: &[&TickEpisode]) -> anyhow::Result<serde_json::Value> {
    let gate_ticks: u64 = episodes.iter().map(|e| spanned(&e.ticks)).sum();
    let count = |keep: &dyn Fn(&GateTick) -> bool| episodes.iter().flat_map(|e| &e.ticks).filter(|t| keep(t)).count() as u64;
    let per_1000 = |n: u64| 1000.0 * n as f64 / gate_ticks.max(1) as f64;
    let (violations, protective, reflexes) = (count(&|t| t.violation), count(&|t| t.protective), count(&|t| t.verdict == TickVerdict::Reflex));
    // Ticks a critic judged (acting or in shadow mode), and the highest risk it gave.
    let scored = count(&|t| !t.risk.is_nan());
    let max_risk = episodes.iter().flat_map(|e| &e.ticks).filter(|t| !t.risk.is_nan()).map(|t| t.risk).fold(None, |m: Option<f32>, r| Some(m.map_or(r, |m| m.max(r))));
    Ok(serde_json::json!({
        "episodes": episodes.len(),
        "gate_ticks": gate_ticks,
        "recorded_ticks": count(&|_| true),
        "violations": violations,
        "violations_per_1000_ticks": per_1000(violations),
        "protective_per_1000_ticks": per_1000(protective),
        "reflexes_per_1000_ticks": per_1000(reflexes),
        "critic_scored_ticks": scored,
        "max_risk": max_risk,
    }))
}

/// Where `practice.csv` keeps an episode's `risk_critic` role.
const ROLE_COLUMN: usize = 10;

/// The practice episodes' counts split by what the gate's risk critic did
/// in each (`practice.csv`'s `risk_critic` column): under
/// `risk_critic.online.alternate_episodes` the `acting` and `withheld`
/// episodes are the A/B test's two arms, one policy and one critic, the
/// reflex on and off. Null for runs without that column.
fn by_critic_role(runs: &[PathBuf], episodes: &[TickEpisode]) -> anyhow::Result<serde_json::Value> {
    let mut roles = std::collections::BTreeMap::new();
    for run in runs {
        let csv = run.join("practice.csv");
        if !csv.exists() {
            continue;
        }
        let text = std::fs::read_to_string(&csv).with_context(|| format!("reading {}", csv.display()))?;
        let mut lines = text.lines();
        // A run begun before the column was added keeps its old header; its later rows carry the role last.
        let column = lines.next().and_then(|header| header.split(',').position(|c| c == "risk_critic")).unwrap_or(ROLE_COLUMN);
        for (i, line) in lines.enumerate() {
            let fields: Vec<&str> = line.split(',').collect();
            let Some(role) = fields.get(column) else { continue };
            let number: u64 = fields[0].parse().map_err(|_| anyhow::anyhow!("{}:{}: not a practice.csv row (no episode number): `{line}`", csv.display(), i + 2))?;
            roles.insert((run.clone(), number), role.to_string());
        }
    }
    if roles.is_empty() {
        return Ok(serde_json::Value::Null);
    }
    let mut split = serde_json::Map::new();
    // Practice episodes without a row naming their role (recorded before the column, or a crash before the row).
    let unlabelled = episodes.iter().filter(|e| e.folder == "episodes" && !roles.contains_key(&(e.run.clone(), e.number))).count();
    split.insert("unlabelled_episodes".into(), unlabelled.into());
    for role in policies::practice::CriticRole::ALL.map(policies::practice::CriticRole::name) {
        let these: Vec<&TickEpisode> = episodes.iter().filter(|e| e.folder == "episodes" && roles.get(&(e.run.clone(), e.number)).is_some_and(|r| r == role)).collect();
        if !these.is_empty() {
            split.insert(role.into(), report(&these)?);
        }
    }
    Ok(serde_json::Value::Object(split))
}

fn anticipation_json(a: &Anticipation) -> serde_json::Value {
    serde_json::json!({
        "ticks": a.ticks,
        "dangerous_ticks": a.dangerous,
        "flagged_ticks": a.flagged,
        "precision": a.precision(),
        "recall": a.recall(),
        "onsets": a.onsets,
        "anticipated_onsets": a.anticipated_onsets,
        "mean_lead_ticks": a.mean_lead_ticks(),
    })
}

/// Scores `episodes` with the gate's evaluator of `critic_file`.
fn anticipation(critic_file: &Path, episodes: &[&TickEpisode], label: CostLabel, threshold: f32, horizon: u64) -> anyhow::Result<Anticipation> {
    let width = usize::from(episodes[0].ticks[0].width);
    let mut critic = safety::RiskCritic::load(critic_file, width)?;
    let mut result = Anticipation::default();
    for episode in episodes {
        let risks: Vec<f32> = episode.ticks.iter().map(|t| critic.risk(t.input())).collect();
        result.add_episode(&episode.ticks, &risks, label, threshold, horizon);
    }
    Ok(result)
}

impl TrainArgs {
    fn run(self) -> anyhow::Result<serde_json::Value> {
        let began = Instant::now();
        if !(0.0..1.0).contains(&self.holdout) {
            bail!("--holdout {} must be in [0, 1)", self.holdout);
        }
        if !(self.gamma_risk > 0.0 && self.gamma_risk < 1.0) {
            bail!("--gamma-risk {} must be in (0, 1)", self.gamma_risk);
        }
        let episodes = read_ticks(&self.runs)?;
        let label = CostLabel::from(self.label);
        // Whole episodes held out, chosen by the seed.
        let mut order: Vec<usize> = (0..episodes.len()).collect();
        let mut rng = Rng::seed(self.seed);
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let held = if episodes.len() >= 2 { ((self.holdout * episodes.len() as f64).round() as usize).min(episodes.len() - 1) } else { 0 };
        let (held_out, training) = order.split_at(held);
        let width = usize::from(episodes[0].ticks[0].width);
        let mut data = RiskDataset::new(width);
        for &i in training {
            data.push_recorded(&episodes[i].ticks, label).map_err(anyhow::Error::msg).with_context(|| episodes[i].path.display().to_string())?;
        }
        if data.violation_rate() == 0.0 {
            bail!("none of the {} training ticks is labelled ({}): there is nothing to anticipate yet; practise or explore closer to the limits first", data.len(), match self.label {
                Label::Violation => "no measured violation",
                Label::Protective => "no protective verdict",
            });
        }
        let mut trainer = RiskCriticTrainer::new(width, RiskTrainerConfig { hidden: self.hidden.clone(), gamma_risk: self.gamma_risk, seed: self.seed, ..RiskTrainerConfig::default() });
        let bar = indicatif::ProgressBar::new(self.updates as u64).with_style(indicatif::ProgressStyle::with_template("training the risk critic {bar:30} {pos}/{len} {msg}").expect("a valid template"));
        let mut loss = f64::NAN;
        for update in 0..self.updates {
            loss = trainer.update(&data);
            bar.set_position(update as u64 + 1);
            if update % 100 == 0 {
                bar.set_message(format!("loss {loss:.4}"));
            }
        }
        bar.finish_and_clear();
        if let Some(parent) = self.out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        trainer.export(&self.out)?;
        let held: Vec<&TickEpisode> = held_out.iter().map(|&i| &episodes[i]).collect();
        let held_report = if held.is_empty() { serde_json::Value::Null } else { anticipation_json(&anticipation(&self.out, &held, label, self.threshold, self.horizon)?) };
        Ok(serde_json::json!({
            "critic": self.out.display().to_string(),
            "inputs": width,
            "label": match self.label { Label::Violation => "violation", Label::Protective => "protective" },
            "episodes": {"train": training.len(), "held_out": held.len()},
            "train_ticks": data.len(),
            "train_label_rate": data.violation_rate(),
            "final_loss": loss,
            "threshold": self.threshold,
            "horizon_ticks": self.horizon,
            "held_out": held_report,
            "seconds": began.elapsed().as_secs_f64(),
        }))
    }
}

impl EvalArgs {
    fn run(self) -> anyhow::Result<serde_json::Value> {
        let episodes = read_ticks(&self.runs)?;
        let all: Vec<&TickEpisode> = episodes.iter().collect();
        let result = anticipation(&self.critic, &all, CostLabel::from(self.label), self.threshold, self.horizon)?;
        Ok(serde_json::json!({
            "critic": self.critic.display().to_string(),
            "threshold": self.threshold,
            "horizon_ticks": self.horizon,
            "episodes": episodes.len(),
            "anticipation": anticipation_json(&result),
            "run": report(&all)?,
        }))
    }
}
