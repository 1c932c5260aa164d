//! `rrl bench safety`, small: the ablation runs every condition and phase,
//! and its counts mean what they say — without a gate random exploration
//! leaves the safety box far more often than with the gate's rules, the
//! gate never acts when absent, the critic learns from every tick the
//! rules-only run recorded, and with it in the gate its reflex runs (and
//! only there) and the box is left less often than with the rules alone.

use std::process::Command;

#[test]
fn the_safety_ablation_counts_fewer_violations_with_the_rules() {
    let output = Command::new(env!("CARGO_BIN_EXE_rrl"))
        .args(["bench", "safety", "--random-steps", "1000", "--sac-steps", "120", "--expert-episodes", "2", "--critic-updates", "2000", "--json"])
        .env("RRL_LOG", "warn")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let random = &report["random_exploration"];
    let violations = |phase: &serde_json::Value, condition: &str| phase[condition]["violations_per_1000_steps"].as_f64().unwrap();
    assert!(violations(random, "no_gate") > 2.0 * violations(random, "rules"), "{random}");
    // The critic trained on the rules-only run anticipates what the rules
    // leave: the same seeded exploration leaves the box clearly less often
    // (about half as often at this size; recorded in docs/benchmarks.md at full size).
    assert!(violations(random, "rules_and_critic") < 0.8 * violations(random, "rules"), "{random}");
    for phase in ["random_exploration", "scripted_expert", "sac_training"] {
        for condition in ["no_gate", "rules", "rules_and_critic"] {
            let entry = &report[phase][condition];
            assert!(entry["steps"].as_u64().unwrap() > 0, "{phase}/{condition}: {entry}");
            let share = entry["protective_gate_ticks"].as_f64().unwrap();
            if condition == "no_gate" {
                assert_eq!(share, 0.0, "{phase}: no gate, no interventions");
            }
            // Reflexes run only where the critic is in the gate.
            if let Some(reflexes) = entry["reflex_gate_ticks"].as_f64() {
                if condition != "rules_and_critic" {
                    assert_eq!(reflexes, 0.0, "{phase}/{condition}: a reflex without a critic");
                }
                assert!(reflexes <= share, "{phase}/{condition}: reflex ticks are protective ticks: {entry}");
            }
        }
    }
    assert!(report["random_exploration"]["rules"]["protective_gate_ticks"].as_f64().unwrap() > 0.0);
    // Random exploration drives the arm toward the box's walls: the trained critic's reflex fires there.
    assert!(report["random_exploration"]["rules_and_critic"]["reflex_gate_ticks"].as_f64().unwrap() > 0.0, "{}", report["random_exploration"]);
    // The expert with no gate in its way picks the cube.
    assert!(report["scripted_expert"]["no_gate"]["success_rate"].as_f64().unwrap() >= 0.5, "{}", report["scripted_expert"]);
    let critic = &report["risk_critic"];
    assert_eq!(critic["training_ticks"], 10_000, "ten gate ticks per step of the rules-only run: {critic}");
    let rate = critic["label_rate"].as_f64().unwrap();
    assert!(rate > 0.0 && rate < 1.0, "{critic}");
}
