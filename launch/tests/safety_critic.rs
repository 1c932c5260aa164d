//! The learned risk critic from a user's own run, through the commands a
//! user types: `rrl practice` records the gate's ticks beside its episodes
//! (random exploration of the simulated Panda's pick-cube in a tight safety
//! box, rules only), `rrl safety train-critic` learns from them, and a
//! second practice run with that critic in its launch file's gate leaves
//! the box (or a joint range) far less often, counted by `rrl safety
//! report` from the measured states both runs recorded. A critic trained
//! during practice (`safety.risk_critic.online`, over a learner thread or a
//! learner node over ROS 2) shadows until trusted, then acts. Bad critic
//! files are refused with the reason.

mod common;

use std::path::{Path, PathBuf};

fn domain() -> String {
    (20 + (std::process::id() + 17) % 80).to_string()
}

/// Runs `rrl args`; its JSON report, or its stderr as the error.
fn rrl(args: &[&str]) -> Result<serde_json::Value, String> {
    common::rrl_json(args, &domain())
}

/// Random exploration (the warm-up never ends) of pick-cube in the
/// safety ablation's box, robot seed 0, with `critic` in the gate when given.
fn launch_file(dir: &Path, name: &str, critic: Option<&str>) -> PathBuf {
    seeded_launch_file(dir, name, critic, 0)
}

fn seeded_launch_file(dir: &Path, name: &str, critic: Option<&str>, seed: u64) -> PathBuf {
    let critic = critic.map_or(String::new(), |weights| format!("risk_critic: Some((weights: \"{weights}\", threshold: 0.5, reflex: Decelerate)),"));
    let path = dir.join(format!("{name}.ron"));
    std::fs::write(
        &path,
        format!(
            r#"(
    name: "{name}",
    namespace: "panda",
    robot: Sim((task: PandaPickCube, control_rate_hz: 100.0, seed: {seed})),
    safety: (
        preset: Some(FrankaPanda),
        workspace: Some((min: (0.25, -0.25, 0.0), max: (0.55, 0.25, 0.45), max_step_m: 0.017, max_speed_mps: 1.7, tool_offset_m: (0.0, 0.0, 0.1488))),
        {critic}
    ),
    learner: (device: Cpu, hidden: [32, 32], batch_size: 32, warmup_steps: 1000000),
    reward: Task,
    practice: (max_episode_steps: 100, demo_episodes: 0, eval_episodes: 0, reset_noise_rad: 0.05),
)"#
        ),
    )
    .unwrap();
    path
}

fn practise(config: &Path, run: &Path, steps: &str) -> serde_json::Value {
    practise_with(config, run, steps, "local")
}

/// With the learner as a thread (`local`) or as a ROS 2 node reached over DDS (`node`).
fn practise_with(config: &Path, run: &Path, steps: &str, learner: &str) -> serde_json::Value {
    rrl(&["practice", "--config", config.to_str().unwrap(), "--run-dir", run.to_str().unwrap(), "--steps", steps, "--device", "cpu", "--learner", learner]).unwrap()
}

fn violations_per_1000_ticks(run: &Path) -> f64 {
    let report = rrl(&["safety", "report", run.to_str().unwrap()]).unwrap();
    assert!(report["gate_ticks"].as_u64().unwrap() >= 9_900, "1000 steps of 10 gate ticks each (less a decimated first tick per episode): {report}");
    report["violations_per_1000_ticks"].as_f64().unwrap()
}

/// Trained on one run (20 episodes, robot seed 0), the critic cuts the
/// violations of runs it never saw (robot seeds 1 and 2, each against the
/// same seed on rules only). Measured, the two seeds' violations per 1000
/// gate ticks summed: 279 -> 11, and 326 -> 63 with the IK's rounding
/// changed. A critic from 9 episodes, judged on its own seed, hung on such
/// rounding (131 -> 35, then 114 -> 102).
#[test]
fn a_critic_trained_on_one_run_cuts_the_violations_of_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let training = dir.path().join("training");
    practise(&launch_file(dir.path(), "training", None), &training, "2000");
    let critic = dir.path().join("critic.safetensors");
    let trained = rrl(&["safety", "train-critic", training.to_str().unwrap(), "--out", critic.to_str().unwrap(), "--updates", "2000"]).unwrap();
    let held_out = &trained["held_out"];
    assert!(trained["train_label_rate"].as_f64().unwrap() > 0.02, "the rules-only run has violations to learn from: {trained}");
    // On episodes it never saw, the ticks it flags come before a violation
    // far more often than ticks do at all, and it sees a third of the
    // onsets coming.
    let base_rate = held_out["dangerous_ticks"].as_f64().unwrap() / held_out["ticks"].as_f64().unwrap();
    assert!(held_out["precision"].as_f64().unwrap() > 2.0 * base_rate && held_out["recall"].as_f64().unwrap() > 0.3, "held-out base rate {base_rate:.3}: {trained}");
    assert!(held_out["anticipated_onsets"].as_f64().unwrap() >= 0.3 * held_out["onsets"].as_f64().unwrap() && held_out["mean_lead_ticks"].as_f64().unwrap() >= 1.0, "{trained}");

    let (mut rules, mut with_critic) = (0.0, 0.0);
    for seed in [1, 2] {
        let (plain, guarded) = (dir.path().join(format!("rules_{seed}")), dir.path().join(format!("critic_{seed}")));
        practise(&seeded_launch_file(dir.path(), &format!("rules_{seed}"), None, seed), &plain, "1000");
        practise(&seeded_launch_file(dir.path(), &format!("critic_{seed}"), Some("critic.safetensors"), seed), &guarded, "1000");
        rules += violations_per_1000_ticks(&plain);
        with_critic += violations_per_1000_ticks(&guarded);
    }
    assert!(with_critic < 0.5 * rules, "rules only: {rules:.1} violations per 1000 gate ticks (two seeds summed); with the critic: {with_critic:.1}");
    let guarded = dir.path().join("critic_1");
    let evaluated = rrl(&["safety", "eval", guarded.to_str().unwrap(), "--critic", critic.to_str().unwrap()]).unwrap();
    assert!(evaluated["run"]["reflexes_per_1000_ticks"].as_f64().unwrap() > 0.0, "the critic's reflex ran: {evaluated}");
}

/// Random exploration with `safety.risk_critic.online`: the learner trains
/// the gate's critic from the streamed ticks and publishes it every 100
/// critic updates, acting once its held-out precision and recall reach
/// `min_precision` and `min_recall`.
/// With `alternate`, the A/B test inside the run: a passing critic acts in
/// even episodes only.
fn online_launch_file(dir: &Path, name: &str, min_precision: f64, min_recall: f64, alternate: bool) -> PathBuf {
    let path = launch_file(dir, name, None);
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "preset: Some(FrankaPanda),",
        &format!("preset: Some(FrankaPanda),\n        risk_critic: Some((online: Some((publish_every: 100, min_precision: {min_precision}, min_recall: {min_recall}, alternate_episodes: {alternate})), threshold: 0.5, reflex: Decelerate)),"),
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_critic_trained_during_practice_shadows_until_trusted_then_acts() {
    let dir = tempfile::tempdir().unwrap();
    // Perfect precision and recall on held-out ticks are out of reach: the critic stays in shadow mode.
    let shadow = dir.path().join("shadow");
    let practised = practise(&online_launch_file(dir.path(), "shadow", 1.0, 1.0, false), &shadow, "800");
    let taken = &practised["risk_critics"];
    assert!(taken["taken"].as_u64().unwrap() >= 2 && taken["acting"].as_u64() == Some(0), "practice's report counts the critics the gate took, none acting: {taken}");
    let report = rrl(&["safety", "report", shadow.to_str().unwrap()]).unwrap();
    assert!(report["critic_scored_ticks"].as_u64().unwrap() > 1000, "the published critic scored the ticks after it arrived: {report}");
    assert!(report["max_risk"].as_f64().unwrap() > 0.5, "and found some risky: {report}");
    assert_eq!(report["reflexes_per_1000_ticks"].as_f64().unwrap(), 0.0, "in shadow mode it never acts: {report}");
    // Any precision will do: the critic acts from its first publication on,
    // in even episodes; the odd ones withhold it (the A/B test's other arm).
    // This time the learner is a ROS 2 node: the ticks and the critic travel over DDS.
    let acting = dir.path().join("acting");
    let practised = practise_with(&online_launch_file(dir.path(), "acting", 0.0, 0.0, true), &acting, "1200", "node");
    let taken = &practised["risk_critics"];
    // (Publications before the held-out episodes have any ticks cannot be judged: those shadow.)
    assert!(taken["acting"].as_u64().unwrap() >= 1, "the gate took acting critics: {taken}");
    let report = rrl(&["safety", "report", acting.to_str().unwrap()]).unwrap();
    assert!(report["reflexes_per_1000_ticks"].as_f64().unwrap() > 1.0, "the trusted critic's reflex runs: {report}");
    // The arms, as practice.csv lists them: acting in even episodes, withheld in odd ones.
    let csv = std::fs::read_to_string(acting.join("practice.csv")).unwrap();
    let roles: Vec<(u64, String)> = csv.lines().skip(1).map(|l| (l.split(',').next().unwrap().parse().unwrap(), l.rsplit(',').next().unwrap().to_string())).collect();
    let arm = |role: &str| roles.iter().filter(|(_, r)| r == role).map(|(n, _)| *n).collect::<Vec<u64>>();
    let (acted, withheld) = (arm("acting"), arm("withheld"));
    assert!(acted.len() >= 2 && withheld.len() >= 2 && acted.iter().all(|n| n % 2 == 0) && withheld.iter().all(|n| n % 2 == 1), "acting in {acted:?}, withheld in {withheld:?}: {csv}");
    assert_eq!(practised["by_critic_role"]["acting"]["episodes"].as_u64(), Some(acted.len() as u64), "{practised}");
    // The reflex runs in the acting arm only; the withheld arm is the rules alone.
    let split = &report["by_critic_role"];
    assert!(split["acting"]["reflexes_per_1000_ticks"].as_f64().unwrap() > 1.0 && split["withheld"]["reflexes_per_1000_ticks"].as_f64() == Some(0.0), "{split}");
    assert!(split["withheld"]["critic_scored_ticks"].as_u64().unwrap() > 100, "a withheld critic still scores every tick: {split}");
    assert_eq!(split["unlabelled_episodes"].as_u64(), Some(0), "every practice episode has its row: {split}");
    // The learner kept its critic in the run folder, in the gate's format: ready for `risk_critic.weights`.
    let kept = acting.join("risk_critic.safetensors");
    let evaluated = rrl(&["safety", "eval", shadow.to_str().unwrap(), "--critic", kept.to_str().unwrap()]).unwrap();
    assert!(evaluated["anticipation"]["ticks"].as_u64().unwrap() > 1000, "{evaluated}");
}

#[test]
fn bad_critic_files_and_runs_without_ticks_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty_run");
    std::fs::create_dir_all(empty.join("episodes")).unwrap();
    let out = dir.path().join("critic.safetensors");
    let refused = rrl(&["safety", "train-critic", empty.to_str().unwrap(), "--out", out.to_str().unwrap()]).unwrap_err();
    assert!(refused.contains("no recorded gate ticks"), "{refused}");
    assert!(!out.exists());
    // A launch file naming a truncated critic: practice does not start on rules alone.
    std::fs::write(dir.path().join("truncated.safetensors"), b"\x10\x00\x00\x00\x00\x00\x00\x00{\"layer0.weig").unwrap();
    let config = launch_file(dir.path(), "truncated", Some("truncated.safetensors"));
    let refused = rrl(&["practice", "--config", config.to_str().unwrap(), "--run-dir", dir.path().join("run").to_str().unwrap(), "--steps", "5"]).unwrap_err();
    assert!(refused.contains("risk_critic") && refused.contains("truncated.safetensors") && refused.contains("not a safetensors file"), "{refused}");
}
