//! `rrl bench safety`: the safety gate's ablation on the simulated Panda
//! pick-cube task. Constraint violations are counted from the measured
//! simulation state, independently of any gate: a step violates when the
//! fingertips leave a safety box around the table (by more than 2 mm) or a
//! joint passes its published position limit. Three conditions, each under
//! random exploration, with the scripted expert (does the gate leave a
//! competent policy its success?) and during SAC training from scripted
//! demos: no gate,
//! the gate's rules (Panda limits plus the safety box as its workspace), and
//! rules plus a risk critic trained here on the labels the rules-only gate
//! produced while exploring (Recovery RL target: the label is the gate's
//! own observation that the measured state broke a limit), with a reflex
//! (Decelerate by default: Hold freezes an arm whose critic rates its own
//! resting pose risky).

use std::path::Path;

use anyhow::Context;
use policies::practice::{EpisodeReport, NoOperator, OnlineRiskSettings, PracticeSettings};
use policies::risk::{RiskCriticTrainer, RiskDataset, RiskTick, RiskTrainerConfig};
use policies::SacConfig;
use rrl_types::config::{LearnerConfig, OnlineRiskCriticConfig, Reflex, RiskCriticConfig, RobotPreset, SafetyConfig};
use rrl_types::rng::Rng;
use rrl_types::Environment;
use safety::Gate;
use sim_bridge::panda::{PandaTask, PandaVariant, RewardKind, ScriptedExpert};

/// Where the fingertips may go: above the table, around the cube's area.
const SAFE_MIN: [f64; 3] = [0.25, -0.25, 0.0];
const SAFE_MAX: [f64; 3] = [0.55, 0.25, 0.45];

#[derive(clap::Args)]
pub struct SafetyBenchArgs {
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Random-exploration steps per condition.
    #[arg(long, default_value_t = 5_000)]
    random_steps: u64,
    /// SAC training steps per condition.
    #[arg(long, default_value_t = 5_000)]
    sac_steps: u64,
    /// Scripted-expert episodes per condition.
    #[arg(long, default_value_t = 20)]
    expert_episodes: u64,
    /// Gradient steps of the risk critic.
    #[arg(long, default_value_t = 3_000)]
    critic_updates: usize,
    /// Risk above this triggers the critic's Recover reflex.
    #[arg(long, default_value_t = 0.5)]
    risk_threshold: f32,
    /// Discount of the Recovery RL target (how far ahead "soon" reaches: 1/(1-γ) ticks).
    #[arg(long, default_value_t = 0.5)]
    gamma_risk: f64,
    /// The critic's reflex: hold, decelerate or recover.
    #[arg(long, default_value = "decelerate")]
    reflex: String,
    /// Seeds of the online comparison: SAC practice on pick-cube and reach with the rules only, and with a critic the learner trains during practice (0: skip it).
    #[arg(long, default_value_t = 0)]
    online_seeds: u64,
    /// Practice steps per run of the online comparison (default: 3 000 for
    /// the plain SAC runs, the launch file's schedule for --online-config).
    #[arg(long)]
    online_steps: Option<u64>,
    /// The online comparison as an A/B test inside each run
    /// (`risk_critic.online.alternate_episodes`): one run per seed, whose
    /// critic, once it passes its check, acts in the even episodes and is
    /// withheld (shadows) in the odd ones. The arms share the policy and the
    /// critic, so their difference is the reflex's, not practice's variation
    /// between runs.
    #[arg(long)]
    online_alternate: bool,
    /// The online comparison's first robot seed (more seeds in a later call).
    #[arg(long, default_value_t = 0)]
    online_first_seed: u64,
    /// The held-out precision at which the online critic acts (`risk_critic.online.min_precision`).
    #[arg(long, default_value_t = OnlineRiskCriticConfig::default().min_precision)]
    online_min_precision: f64,
    /// The held-out recall at which the online critic acts (`risk_critic.online.min_recall`).
    #[arg(long, default_value_t = OnlineRiskCriticConfig::default().min_recall)]
    online_min_recall: f64,
    /// Only these variants in the online comparison (pick, reach; default both).
    #[arg(long, value_delimiter = ',', default_value = "pick,reach")]
    online_variants: Vec<String>,
    /// Run the online comparison as `rrl practice` runs these launch files
    /// (simulated Panda tasks, e.g. the residual pick of
    /// launch/files/sim_panda_pick.ron, which learns): each in the ablation's
    /// box and home noise, with its own schedule and success target, so
    /// success and steps to the target can be compared as well
    /// (replaces the plain SAC runs of --online-variants).
    #[arg(long, value_delimiter = ',')]
    online_config: Vec<std::path::PathBuf>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn rules() -> anyhow::Result<SafetyConfig> {
    let text = format!(
        "(preset: Some(FrankaPanda), workspace: Some((min: ({}, {}, {}), max: ({}, {}, {}), max_step_m: 0.017, max_speed_mps: 1.7, tool_offset_m: (0.0, 0.0, 0.1488))))",
        SAFE_MIN[0], SAFE_MIN[1], SAFE_MIN[2], SAFE_MAX[0], SAFE_MAX[1], SAFE_MAX[2]
    );
    Ok(ron::from_str(&text)?)
}

#[derive(Clone, Copy, PartialEq)]
enum Condition {
    NoGate,
    Rules,
    RulesAndCritic,
    /// Rules, and a critic the learner trains during practice (Bresa style).
    RulesAndOnlineCritic,
}

impl Condition {
    fn name(self) -> &'static str {
        match self {
            Condition::NoGate => "no_gate",
            Condition::Rules => "rules",
            Condition::RulesAndCritic => "rules_and_critic",
            Condition::RulesAndOnlineCritic => "rules_and_online_critic",
        }
    }
}

fn task(condition: Condition, critic: &Path, threshold: f32, reflex: Reflex) -> anyhow::Result<PandaTask> {
    task_of(PandaVariant::PickCube, condition, critic, threshold, reflex)
}

fn task_of(variant: PandaVariant, condition: Condition, critic: &Path, threshold: f32, reflex: Reflex) -> anyhow::Result<PandaTask> {
    let mut task = PandaTask::new(variant, RewardKind::Dense)?;
    task.set_home_noise(0.05);
    task.monitor_violations(SAFE_MIN, SAFE_MAX);
    if condition != Condition::NoGate {
        let names: Vec<String> = RobotPreset::FrankaPanda.joint_names().iter().map(|s| s.to_string()).collect();
        let mut safety = rules()?;
        if condition == Condition::RulesAndCritic {
            safety.risk_critic = Some(RiskCriticConfig { weights: critic.display().to_string(), online: None, threshold: f64::from(threshold), reflex });
        }
        if condition == Condition::RulesAndOnlineCritic {
            safety.risk_critic = Some(RiskCriticConfig { weights: String::new(), online: Some(OnlineRiskCriticConfig::default()), threshold: f64::from(threshold), reflex });
        }
        task.set_gate(Gate::build(&safety, &names, task.control_rate_hz())?);
        task.record_gate_ticks(rrl_types::TickDecimator::for_rate(task.control_rate_hz(), rrl_types::QUIET_TICK_RECORD_HZ));
    }
    Ok(task)
}

struct Tally {
    steps: u64,
    violations: u64,
    safety_events: u64,
    /// Of the protective ticks, those on which the risk critic's reflex
    /// ran (counted where the gate is stepped here; practice's episode
    /// reports carry protective ticks only).
    reflexes: Option<u64>,
    episodes: u64,
    successes: u64,
}

impl Tally {
    fn count(&mut self, events: rrl_types::SafetyEvents) {
        self.safety_events += events.protective;
        if let Some(reflexes) = &mut self.reflexes {
            *reflexes += events.reflexes;
        }
    }

    fn report(&self) -> serde_json::Value {
        serde_json::json!({
            "steps": self.steps,
            "violations_per_1000_steps": 1000.0 * self.violations as f64 / self.steps.max(1) as f64,
            // The gate runs 10 ticks per step: the share of its ticks that protected.
            "protective_gate_ticks": self.safety_events as f64 / (10 * self.steps.max(1)) as f64,
            "reflex_gate_ticks": self.reflexes.map(|r| r as f64 / (10 * self.steps.max(1)) as f64),
            "episodes": self.episodes,
            "success_rate": self.successes as f64 / self.episodes.max(1) as f64,
        })
    }
}

/// Uniformly random actions for `steps` steps; each finished episode's gate
/// ticks go to `data` when given.
fn explore(task: &mut PandaTask, steps: u64, seed: u64, mut data: Option<&mut RiskDataset>) -> anyhow::Result<Tally> {
    let mut rng = Rng::seed(seed);
    let mut tally = Tally { steps, violations: 0, safety_events: 0, reflexes: Some(0), episodes: 0, successes: 0 };
    task.reset(seed);
    task.take_violation_steps();
    for t in 0..steps {
        let action: Vec<f64> = (0..4).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let step = task.step(&action)?;
        tally.violations += task.take_violation_steps();
        tally.count(rrl_types::PracticeTask::take_safety_events(task));
        if step.done() || t + 1 == steps {
            tally.episodes += 1;
            tally.successes += u64::from(task.is_success());
            if let Some(data) = data.as_deref_mut() {
                let mut ticks = Vec::new();
                rrl_types::PracticeTask::take_gate_ticks(task, &mut ticks);
                for tick in ticks.iter().filter(|t| t.width > 0) {
                    data.push(RiskTick { input: tick.input().to_vec(), cost: f32::from(u8::from(tick.violation)) }).map_err(anyhow::Error::msg)?;
                }
                data.end_recording();
            }
            task.reset_next();
        }
    }
    Ok(tally)
}

/// The scripted expert for `episodes` episodes: does the gate leave a
/// competent policy its success?
fn expert_episodes(task: &mut PandaTask, episodes: u64, seed: u64) -> anyhow::Result<Tally> {
    let mut expert = ScriptedExpert::default();
    let mut tally = Tally { steps: 0, violations: 0, safety_events: 0, reflexes: Some(0), episodes, successes: 0 };
    task.take_violation_steps();
    for e in 0..episodes {
        let mut observation = task.reset(seed + 20_000 + e).to_vec();
        expert.reset();
        loop {
            let step = task.step(&expert.act(PandaVariant::PickCube, &observation))?;
            observation = task.observation().to_vec();
            tally.steps += 1;
            tally.count(rrl_types::PracticeTask::take_safety_events(task));
            if step.done() {
                tally.successes += u64::from(task.is_success());
                break;
            }
        }
    }
    tally.violations = task.take_violation_steps();
    Ok(tally)
}

/// SAC from scripted demos for `steps` steps, as `rrl practice` runs it.
fn train(task: &mut PandaTask, steps: u64, seed: u64, run_dir: &Path, device: tch::Device) -> anyhow::Result<Tally> {
    Ok(train_with(task, steps, seed, run_dir, device, None)?.0)
}

/// `train`, with the learner training the gate's critic when `risk_critic`
/// is given; and practice's episode reports.
fn train_with(task: &mut PandaTask, steps: u64, seed: u64, run_dir: &Path, device: tch::Device, risk_critic: Option<OnlineRiskSettings>) -> anyhow::Result<(Tally, Vec<EpisodeReport>)> {
    let mut expert = ScriptedExpert::default();
    let variant = task.variant();
    let name = format!("{variant:?}");
    policies::practice::record_demo_episodes(task, run_dir, &name, 5, seed + 10_000, |obs, start| {
        if start {
            expert.reset();
        }
        expert.act(variant, obs).to_vec()
    }, &mut policies::practice::Judge::Task)?;
    task.take_violation_steps();
    let learner = LearnerConfig { hidden: vec![256, 256], critics: 2, batch_size: 256, utd: 1, demo_ratio: 0.5, warmup_steps: 500, ..LearnerConfig::default() };
    let config = SacConfig::from_learner(&learner, task.observation_size(), task.action_size(), seed + 1);
    let settings = PracticeSettings {
        task: name,
        total_steps: steps,
        warmup_steps: learner.warmup_steps,
        max_episode_steps: 100,
        stuck_steps: 50,
        stuck_tolerance: 1e-3,
        seed,
        run_dir: run_dir.to_path_buf(),
        sync_every_step: false,
        lockstep: true,
        publish_every: 1,
        checkpoint_every: steps.max(1),
        replay_capacity: 100_000,
        max_backlog: 20_000,
        stop_at_success: None,
        confirm_episodes: 10,
        human_reward: false,
        labels_override: false,
        shaping: None,
        risk_critic,
        live: None,
    };
    let report = policies::practice::practice(task, config, device, &mut NoOperator, &settings, |_: &EpisodeReport| {})?;
    let episodes = report.episodes;
    // Each episode took its own count at its end.
    let violations = task.take_violation_steps() + policies::practice::episodes_measured_violations(&episodes);
    let successes = episodes.iter().filter(|e| e.success == Some(true)).count() as u64;
    let safety_events = episodes.iter().map(|e| e.safety_events).sum();
    Ok((Tally { steps, violations, safety_events, reflexes: None, episodes: episodes.len() as u64, successes }, episodes))
}

impl SafetyBenchArgs {
    pub fn run(self) -> anyhow::Result<serde_json::Value> {
        let SafetyBenchArgs { random_steps, sac_steps, expert_episodes: expert_episodes_per_condition, critic_updates, risk_threshold: threshold, gamma_risk, reflex, seed, online_seeds, online_first_seed, online_steps, online_alternate, online_min_precision, online_min_recall, online_variants, online_config, .. } = self;
        let reflex = parse_reflex(&reflex)?;
        let work = tempfile::tempdir().context("creating a scratch folder")?;
        let critic_file = work.path().join("risk_critic.safetensors");
        let device = tch::Device::Cpu;

        // Random exploration without a gate, then with the rules, recording the
        // rules' verdicts as the critic's labels.
        let none = explore(&mut task(Condition::NoGate, &critic_file, threshold, reflex)?, random_steps, seed, None)?;
        let mut data = RiskDataset::new(21);
        let mut with_rules = task(Condition::Rules, &critic_file, threshold, reflex)?;
        with_rules.record_gate_ticks(rrl_types::TickDecimator::new(1));
        let rules = explore(&mut with_rules, random_steps, seed, Some(&mut data))?;
        tracing::info!(ticks = data.len(), violation_rate = data.violation_rate(), "risk-critic data from the rules-only gate");

        let mut trainer = RiskCriticTrainer::new(21, RiskTrainerConfig { seed, gamma_risk, ..RiskTrainerConfig::default() });
        let progress = indicatif::ProgressBar::new(critic_updates as u64);
        let mut loss = 0.0;
        for _ in 0..critic_updates {
            loss = trainer.update(&data);
            progress.inc(1);
        }
        progress.finish_and_clear();
        trainer.export(&critic_file)?;
        let critic = explore(&mut task(Condition::RulesAndCritic, &critic_file, threshold, reflex)?, random_steps, seed, None)?;

        let mut expert = serde_json::Map::new();
        for condition in [Condition::NoGate, Condition::Rules, Condition::RulesAndCritic] {
            let tally = expert_episodes(&mut task(condition, &critic_file, threshold, reflex)?, expert_episodes_per_condition, seed)?;
            expert.insert(condition.name().into(), tally.report());
        }
        let mut training = serde_json::Map::new();
        for condition in [Condition::NoGate, Condition::Rules, Condition::RulesAndCritic] {
            let run_dir = work.path().join(condition.name());
            let tally = train(&mut task(condition, &critic_file, threshold, reflex)?, sac_steps, seed, &run_dir, device)?;
            training.insert(condition.name().into(), tally.report());
        }
        let variants = online_variants.iter().map(|v| match v.as_str() {
            "pick" => Ok(PandaVariant::PickCube),
            "reach" => Ok(PandaVariant::Reach),
            other => anyhow::bail!("--online-variants: unknown `{other}`, use pick and reach"),
        }).collect::<anyhow::Result<Vec<_>>>()?;
        let online_settings = OnlineRiskCriticConfig { min_precision: online_min_precision, min_recall: online_min_recall, alternate_episodes: online_alternate, ..OnlineRiskCriticConfig::default() };
        let online_seeds = online_first_seed..online_first_seed + online_seeds;
        let online = match online_config.is_empty() {
            true => online_comparison(work.path(), &variants, online_seeds, online_steps.unwrap_or(3_000), &online_settings, threshold, reflex, device)?,
            false => online_practice_comparison(work.path(), &online_config, online_seeds, online_steps, &online_settings, threshold, reflex)?,
        };
        Ok(serde_json::json!({
            "online_practice": online,
            "task": "PandaPickCube",
            "safety_box": {"min": SAFE_MIN, "max": SAFE_MAX},
            "risk_critic": {"training_ticks": data.len(), "label_rate": data.violation_rate(), "updates": critic_updates, "final_loss": loss, "threshold": threshold, "gamma_risk": gamma_risk, "reflex": format!("{reflex:?}")},
            "random_exploration": {"no_gate": none.report(), "rules": rules.report(), "rules_and_critic": critic.report()},
            "scripted_expert": expert,
            "sac_training": training,
        }))
    }
}

/// The conditions each seed runs: rules only against rules plus the online
/// critic; or, for the A/B test inside one run, the critic's run alone.
fn conditions(config: &OnlineRiskCriticConfig) -> &'static [Condition] {
    match config.alternate_episodes {
        true => &[Condition::RulesAndOnlineCritic],
        false => &[Condition::Rules, Condition::RulesAndOnlineCritic],
    }
}

/// The A/B test's arms, summed over the seeds of one task.
#[derive(Default)]
struct AbSums {
    /// Per arm (acting, withheld): violations per 1000 steps and the sampled
    /// episodes' success rate, summed over the seeds that had both arms.
    per_1000: [f64; 2],
    success: [f64; 2],
    seeds: u64,
    /// Seeds whose acting arm had fewer violations per 1000 steps, and
    /// per episode (a reflex that only slowed the arm would win the first).
    fewer_acting: u64,
    fewer_per_episode_acting: u64,
}

impl AbSums {
    /// One run's arms from its `by_critic_role` (practice's report): the
    /// seed's entry; the run counts when both arms had episodes.
    fn add(&mut self, by_role: &serde_json::Value) -> serde_json::Value {
        let arm = |role: &str| {
            let tally = &by_role[role];
            let per_1000 = tally["violations_per_1000_steps"].as_f64()?;
            let sampled = tally["sampled_episodes"].as_f64().filter(|&n| n > 0.0)?;
            Some((per_1000, tally["sampled_successes"].as_f64().unwrap_or(0.0) / sampled, tally["violations_per_episode"].as_f64()?))
        };
        let (acting, withheld) = (arm("acting"), arm("withheld"));
        if let (Some(a), Some(w)) = (acting, withheld) {
            self.per_1000[0] += a.0;
            self.per_1000[1] += w.0;
            self.success[0] += a.1;
            self.success[1] += w.1;
            self.seeds += 1;
            self.fewer_acting += u64::from(a.0 < w.0);
            self.fewer_per_episode_acting += u64::from(a.2 < w.2);
        }
        serde_json::json!({
            "acting": by_role["acting"],
            "withheld": by_role["withheld"],
            "before_the_critic_passed": {"none": by_role["none"], "shadow": by_role["shadow"]},
            // None where the withheld arm had no violation to cut.
            "violations_cut": acting.zip(withheld).filter(|(_, w)| w.0 > 0.0).map(|(a, w)| 1.0 - a.0 / w.0),
        })
    }

    fn mean(&self) -> serde_json::Value {
        let n = self.seeds.max(1) as f64;
        serde_json::json!({
            "seeds_with_both_arms": self.seeds,
            "seeds_fewer_violations_acting": self.fewer_acting,
            "seeds_fewer_violations_per_episode_acting": self.fewer_per_episode_acting,
            "acting": {"violations_per_1000_steps": self.per_1000[0] / n, "sampled_success_rate": self.success[0] / n},
            "withheld": {"violations_per_1000_steps": self.per_1000[1] / n, "sampled_success_rate": self.success[1] / n},
            // None where no seed had both arms, or the withheld arms no violation.
            "violations_cut": (self.seeds > 0 && self.per_1000[1] > 0.0).then(|| 1.0 - self.per_1000[0] / self.per_1000[1]),
        })
    }
}

/// SAC practice on pick-cube and reach, rules only against rules plus a
/// critic trained during practice (or its A/B arms inside one run), over
/// `seeds` seeds: violations per 1000 steps (from the simulation state) and
/// practice success, per seed and their mean.
#[allow(clippy::too_many_arguments)]
fn online_comparison(work: &Path, variants: &[PandaVariant], seeds: std::ops::Range<u64>, steps: u64, config: &OnlineRiskCriticConfig, threshold: f32, reflex: Reflex, device: tch::Device) -> anyhow::Result<serde_json::Value> {
    if seeds.is_empty() {
        return Ok(serde_json::Value::Null);
    }
    let n = (seeds.end - seeds.start) as f64;
    let mut report = serde_json::Map::new();
    for &variant in variants {
        let mut per_seed = Vec::new();
        let mut means = [(0.0, 0.0); 2];
        let mut ab = AbSums::default();
        for seed in seeds.clone() {
            let mut entry = serde_json::Map::new();
            entry.insert("seed".into(), seed.into());
            for &condition in conditions(config) {
                let k = usize::from(condition == Condition::RulesAndOnlineCritic);
                let run_dir = work.join(format!("online_{variant:?}_{seed}_{}", condition.name()));
                let online = (condition == Condition::RulesAndOnlineCritic).then(|| OnlineRiskSettings { config: config.clone(), threshold, seed });
                let mut task = task_of(variant, condition, Path::new(""), threshold, reflex)?;
                let (tally, episodes) = train_with(&mut task, steps, seed, &run_dir, device, online)?;
                let report = tally.report();
                means[k].0 += report["violations_per_1000_steps"].as_f64().unwrap_or(0.0) / n;
                means[k].1 += report["success_rate"].as_f64().unwrap_or(0.0) / n;
                if config.alternate_episodes {
                    entry.insert("ab".into(), ab.add(&serde_json::to_value(policies::practice::by_critic_role(&episodes))?));
                }
                entry.insert(condition.name().into(), report);
            }
            per_seed.push(serde_json::Value::Object(entry));
        }
        let mean = match config.alternate_episodes {
            true => serde_json::json!({"ab": ab.mean()}),
            false => serde_json::json!({
                "rules": {"violations_per_1000_steps": means[0].0, "success_rate": means[0].1},
                "rules_and_online_critic": {"violations_per_1000_steps": means[1].0, "success_rate": means[1].1},
                "violations_cut": 1.0 - means[1].0 / means[0].0.max(1e-9),
            }),
        };
        report.insert(format!("{variant:?}"), serde_json::json!({"per_seed": per_seed, "mean": mean}));
    }
    Ok(serde_json::json!({"steps": steps, "seeds": [seeds.start, seeds.end], "min_precision": config.min_precision, "min_recall": config.min_recall, "alternate_episodes": config.alternate_episodes, "variants": report}))
}

/// `rrl practice` on each launch file, rules only against rules plus the
/// online critic (or its A/B arms inside one run), over `seeds` robot
/// seeds: the file as shipped but for the ablation's box as the gate's
/// workspace (and as the measured violations' box) and its home noise. Per
/// run: violations per 1000 practice steps and in the evaluation, practice
/// success, steps to the success target, and the evaluation's success.
fn online_practice_comparison(work: &Path, files: &[std::path::PathBuf], seeds: std::ops::Range<u64>, steps: Option<u64>, config: &OnlineRiskCriticConfig, threshold: f32, reflex: Reflex) -> anyhow::Result<serde_json::Value> {
    if seeds.is_empty() {
        anyhow::bail!("--online-config needs --online-seeds of at least 1");
    }
    let n = (seeds.end - seeds.start) as f64;
    let mut report = serde_json::Map::new();
    for file in files {
        let shipped = rrl_types::config::LaunchFile::load(file)?;
        let mut per_seed = Vec::new();
        let mut sums = [[0.0; 3]; 2];
        let mut ab = AbSums::default();
        for seed in seeds.clone() {
            let mut entry = serde_json::Map::new();
            entry.insert("seed".into(), seed.into());
            for &condition in conditions(config) {
                let k = usize::from(condition == Condition::RulesAndOnlineCritic);
                let mut launch = shipped.clone();
                let rrl_types::config::RobotConfig::Sim(sim) = &mut launch.robot else { anyhow::bail!("{}: --online-config takes simulated Panda tasks", file.display()) };
                sim.seed = seed;
                launch.safety.workspace = rules()?.workspace;
                launch.practice.reset_noise_rad = 0.05;
                launch.safety.risk_critic = (condition == Condition::RulesAndOnlineCritic).then(|| RiskCriticConfig { weights: String::new(), online: Some(config.clone()), threshold: f64::from(threshold), reflex });
                let name = format!("online_{}_{seed}_{}", launch.name, condition.name());
                let path = work.join(format!("{name}.ron"));
                std::fs::write(&path, ron::ser::to_string_pretty(&launch, ron::ser::PrettyConfig::default())?).with_context(|| format!("writing {}", path.display()))?;
                let practice = crate::practice::PracticeArgs {
                    run_dir: Some(work.join(&name)),
                    steps,
                    // As the rest of the bench: comparable on every machine.
                    device: "cpu".into(),
                    violation_box: Some((SAFE_MIN, SAFE_MAX)),
                    ..crate::practice::PracticeArgs::with_defaults(path)
                }
                .run()
                .with_context(|| format!("practice on {} (seed {seed}, {})", file.display(), condition.name()))?;
                let measured = &practice["measured_violations"];
                let per_1000 = 1000.0 * measured["practice"].as_f64().unwrap_or(0.0) / measured["practice_steps"].as_f64().unwrap_or(1.0).max(1.0);
                // The step at which the deterministic policy confirmed the target, if it did.
                let to_target = practice["reached_success_target"].as_bool().unwrap_or(false).then(|| practice["success_confirmations"].as_array().and_then(|c| c.last()).map(|c| c["total_steps"].clone())).flatten();
                let eval_success = practice["eval"]["success_rate"].as_f64().unwrap_or(0.0);
                tracing::info!(file = %file.display(), seed, condition = condition.name(), violations_per_1000_steps = per_1000, eval_success, "online comparison run done");
                sums[k][0] += per_1000 / n;
                sums[k][1] += eval_success / n;
                sums[k][2] += measured["practice_steps"].as_f64().unwrap_or(0.0) / n;
                if config.alternate_episodes {
                    entry.insert("ab".into(), ab.add(&practice["by_critic_role"]));
                }
                entry.insert(condition.name().into(), serde_json::json!({
                    "violations_per_1000_steps": per_1000,
                    "practice_steps": measured["practice_steps"],
                    "practice_violations": measured["practice"],
                    "eval_violations": measured["eval"],
                    "steps_to_success_target": to_target,
                    "success_rate_last_20": practice["success_rate_last_20"],
                    "eval_success_rate": eval_success,
                    "base_eval_success_rate": practice["base"]["eval"]["success_rate"],
                    "safety_events": practice["safety_events"],
                    "risk_critics": practice["risk_critics"],
                }));
            }
            per_seed.push(serde_json::Value::Object(entry));
        }
        let mean = |k: usize| serde_json::json!({"violations_per_1000_steps": sums[k][0], "eval_success_rate": sums[k][1], "practice_steps": sums[k][2]});
        let means = match config.alternate_episodes {
            true => serde_json::json!({"ab": ab.mean(), "rules_and_online_critic": mean(1)}),
            false => serde_json::json!({"rules": mean(0), "rules_and_online_critic": mean(1), "violations_cut": 1.0 - sums[1][0] / sums[0][0].max(1e-9)}),
        };
        report.insert(file.display().to_string(), serde_json::json!({"per_seed": per_seed, "mean": means}));
    }
    Ok(serde_json::json!({"seeds": [seeds.start, seeds.end], "min_precision": config.min_precision, "min_recall": config.min_recall, "alternate_episodes": config.alternate_episodes, "launch_files": report}))
}

fn parse_reflex(name: &str) -> anyhow::Result<Reflex> {
    Ok(match name {
        "hold" => Reflex::Hold,
        "decelerate" => Reflex::Decelerate,
        "recover" => Reflex::Recover,
        other => anyhow::bail!("unknown reflex `{other}`: use hold, decelerate or recover"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The A/B sums count a seed only when it has both arms, and average
    /// the arms' rates over those seeds.
    #[test]
    fn the_ab_test_averages_the_seeds_that_had_both_arms() {
        let arm = |episodes: u64, steps: u64, violations: u64, sampled: u64, successes: u64| {
            let per_1000 = Some(1000.0 * violations as f64 / steps as f64);
            serde_json::to_value(policies::practice::RoleTally { episodes, steps, measured_violations: Some(violations), violations_per_1000_steps: per_1000, violations_per_episode: Some(violations as f64 / episodes as f64), sampled_episodes: sampled, sampled_successes: successes }).unwrap()
        };
        let mut sums = AbSums::default();
        let seed = sums.add(&serde_json::json!({"acting": arm(10, 1000, 20, 10, 5), "withheld": arm(10, 1000, 40, 10, 8), "shadow": arm(3, 300, 9, 3, 0)}));
        assert_eq!(seed["violations_cut"].as_f64(), Some(0.5));
        sums.add(&serde_json::json!({"acting": arm(4, 500, 5, 4, 1), "withheld": arm(4, 500, 5, 4, 2)}));
        // A seed whose critic never passed its check: in neither arm.
        let idle = sums.add(&serde_json::json!({"shadow": arm(30, 3000, 90, 30, 0)}));
        assert!(idle["violations_cut"].is_null(), "{idle}");
        // Neither arm violated: nothing was cut.
        let quiet = sums.add(&serde_json::json!({"acting": arm(2, 200, 0, 2, 0), "withheld": arm(1, 100, 0, 1, 0)}));
        assert!(quiet["violations_cut"].is_null(), "{quiet}");
        let mean = sums.mean();
        assert_eq!((mean["seeds_with_both_arms"].as_u64(), mean["seeds_fewer_violations_acting"].as_u64(), mean["seeds_fewer_violations_per_episode_acting"].as_u64()), (Some(3), Some(1), Some(1)), "{mean}");
        assert_eq!(mean["acting"]["violations_per_1000_steps"].as_f64(), Some(10.0), "(20 + 10 + 0) / 3: {mean}");
        assert_eq!(mean["withheld"]["violations_per_1000_steps"].as_f64(), Some(50.0 / 3.0), "(40 + 10 + 0) / 3: {mean}");
        assert_eq!(mean["withheld"]["sampled_success_rate"].as_f64(), Some(1.3 / 3.0), "(0.8 + 0.5 + 0) / 3: {mean}");
        assert!(AbSums::default().mean()["violations_cut"].is_null(), "no seed, no cut");
    }
}
