//! The operator console's commands under each command that serves one:
//! `rrl teleop --console` labels a demo, `rrl launch --run-dir --console`
//! stops its robot's practice, and a console beyond 127.0.0.1 refuses to
//! start without its token and refuses requests without it.

mod common;

use std::io::Write;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn launch_file(name: &str, address: &str) -> String {
    format!(
        r#"(
    name: "{name}",
    namespace: "{name}",
    robot: Sim((task: PandaReach, seed: 2)),
    safety: (preset: Some(FrankaPanda)),
    learner: (device: Cpu, hidden: [32, 32], batch_size: 16, warmup_steps: 1000000),
    practice: (max_episode_steps: 20, demo_episodes: 0, total_steps: 100000, eval_episodes: 0),
    console: (address: "{address}"),
)"#
    )
}

fn post(url: &str) -> Result<u16, ureq::Error> {
    ureq::post(url).send_empty().map(|r| r.status().as_u16())
}

fn state(url: &str) -> serde_json::Value {
    serde_json::from_str(&ureq::get(url).call().unwrap().into_body().read_to_string().unwrap()).unwrap()
}

/// The JSON report `child` ends with, and its log.
fn report_of(child: Child, stderr: std::thread::JoinHandle<String>) -> (serde_json::Value, String) {
    let out = child.wait_with_output().unwrap();
    let log = stderr.join().unwrap();
    assert!(out.status.success(), "{log}");
    (serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap_or_else(|e| panic!("{e}: {log}")), log)
}

#[test]
fn teleops_console_labels_the_demo_in_hand() {
    let domain = ((std::process::id() + 2) % 80 + 1).to_string();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("teleop.ron");
    std::fs::write(&config, launch_file("console_teleop", "127.0.0.1:0")).unwrap();
    let run_dir = dir.path().join("run");
    let mut teleop = common::Running::spawn(common::rrl_command(&["teleop", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap(), "--episodes", "1", "--operator", "keyboard", "--console"], &domain)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped()));
    let (urls, stderr) = common::console_urls(teleop.child(), 1);
    let mut keys = teleop.child().stdin.take().unwrap();
    // The demo starts at the first move; the page then shows its steps.
    let started = Instant::now();
    while state(&format!("{}api/state", urls[0]))["step"].as_u64() < Some(3) {
        keys.write_all(b"a").unwrap();
        keys.flush().unwrap();
        assert!(started.elapsed() < Duration::from_secs(60), "the demo never stepped");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(post(&format!("{}api/command/success", urls[0])).unwrap(), 200);
    let (report, _) = report_of(teleop.into_inner(), stderr);
    assert_eq!((report["episodes"].as_u64(), report["successes"].as_u64()), (Some(1), Some(1)), "{report}");
    let demo = recording::read_episode(&recording::list_episodes(&run_dir.join("demos")).unwrap()[0]).unwrap();
    assert_eq!(demo.steps.last().unwrap().flags.label, Some(true), "the console's success labels the demo's last step");
}

#[test]
fn launchs_console_stops_its_robots_practice_and_shared_addresses_are_refused() {
    let domain = ((std::process::id() + 4) % 80 + 1).to_string();
    let dir = tempfile::tempdir().unwrap();
    // Two robots may not share one fixed console address.
    let (a, b) = (dir.path().join("a.ron"), dir.path().join("b.ron"));
    std::fs::write(&a, launch_file("console_a", "127.0.0.1:8765")).unwrap();
    std::fs::write(&b, launch_file("console_b", "0.0.0.0:8765")).unwrap();
    let refused = common::rrl_command(&["launch", a.to_str().unwrap(), b.to_str().unwrap(), "--run-dir", dir.path().join("no").to_str().unwrap(), "--console"], &domain).output().unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("both serve their console on port 8765"), "{stderr}");

    let config = dir.path().join("launch.ron");
    std::fs::write(&config, launch_file("console_launch", "127.0.0.1:0")).unwrap();
    let run_dir = dir.path().join("run");
    let mut launched = common::Running::spawn(common::rrl_command(&["launch", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap(), "--steps", "100000", "--learner-idle-s", "1", "--console"], &domain)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped()));
    let (urls, stderr) = common::console_urls(launched.child(), 1);
    let started = Instant::now();
    loop {
        let seen = state(&format!("{}api/state", urls[0]));
        assert!(seen["title"].as_str().unwrap().starts_with("console_launch"), "{seen}");
        if seen["episodes"].as_u64() >= Some(1) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the robot's practice never finished an episode: {seen}");
        std::thread::sleep(Duration::from_millis(50));
    }
    post(&format!("{}api/command/stop", urls[0])).unwrap();
    let (report, _) = report_of(launched.into_inner(), stderr);
    let actor = &report["actor"];
    assert_eq!(actor["stopped_by_operator"], true, "{report:#}");
    // Every step it took before the stop is on disk.
    let episodes = recording::list_episodes(&run_dir.join("console_launch/episodes")).unwrap();
    let on_disk: usize = episodes.iter().map(|p| recording::read_episode(p).unwrap().steps.iter().filter(|s| !s.flags.recovery).count()).sum();
    assert_eq!(actor["total_steps"].as_u64(), Some(on_disk as u64), "{report}");
    assert!(recording::read_episode(episodes.last().unwrap()).unwrap().outcome.is_some_and(|o| o.reason == "stopped"), "the last episode ends as the console's stop");
}

/// Fault matrix: console without its token | a console on 127.0.0.2; requests without or with a wrong token | refuses to start without a token; answers 401 | nothing reaches practice; the token is never logged
#[test]
fn a_console_beyond_loopbacks_own_address_needs_its_token() {
    let domain = ((std::process::id() + 6) % 80 + 1).to_string();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("wide.ron");
    // 127.0.0.2 stands for any address but 127.0.0.1 (tests stay on loopback).
    std::fs::write(&config, launch_file("console_wide", "127.0.0.2:0")).unwrap();
    let args = |run: &str| -> Vec<String> {
        ["practice", "--config", config.to_str().unwrap(), "--run-dir", dir.path().join(run).to_str().unwrap(), "--steps", "100000", "--realtime", "--console", "--eval-episodes", "0"].map(String::from).to_vec()
    };
    let no_token: Vec<String> = args("no_token");
    let refused = common::rrl_command(&no_token.iter().map(String::as_str).collect::<Vec<_>>(), &domain).env_remove("RRL_CONSOLE_TOKEN").output().unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("needs a token (set RRL_CONSOLE_TOKEN)"), "{stderr}");

    let token = "console-test-token-5b1e9";
    let with_token = args("run");
    let mut practice = common::Running::spawn(common::rrl_command(&with_token.iter().map(String::as_str).collect::<Vec<_>>(), &domain).env("RRL_CONSOLE_TOKEN", token).stdout(Stdio::piped()).stderr(Stdio::piped()));
    let (urls, stderr) = common::console_urls(practice.child(), 1);
    assert!(urls[0].ends_with("?token=<RRL_CONSOLE_TOKEN>"), "the address names the token's variable, never the token: {}", urls[0]);
    let base = urls[0].trim_end_matches("?token=<RRL_CONSOLE_TOKEN>").to_string();
    let with = |path: &str| format!("{base}{path}?token={token}");
    // A count that only grows while practice steps (episodes hold at most 20 steps), from one snapshot.
    let step_now = || {
        let seen = state(&with("api/state"));
        1000 * seen["episode"].as_u64().unwrap() + seen["step"].as_u64().unwrap()
    };
    // Without the token: 401, and practice goes on as if nothing was asked.
    for command in ["stop", "failure", "pause"] {
        let refused = post(&format!("{base}api/command/{command}"));
        assert!(matches!(refused, Err(ureq::Error::StatusCode(401))), "{command}: {refused:?}");
    }
    let before = step_now();
    let started = Instant::now();
    while step_now() < before + 5 {
        assert!(started.elapsed() < Duration::from_secs(60), "practice stopped stepping after refused requests");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(practice.child().try_wait().unwrap().is_none(), "practice ended on a refused stop");
    assert_eq!(state(&with("api/state"))["paused"], false);
    post(&with("api/command/stop")).unwrap();
    let (report, log) = report_of(practice.into_inner(), stderr);
    assert_eq!(report["stopped_by_operator"], true, "{report}");
    assert!(!report.to_string().contains(token), "the token reached the report");
    let csv = std::fs::read_to_string(dir.path().join("run/practice.csv")).unwrap();
    assert!(!csv.contains(",failure,"), "a refused failure label reached an episode: {csv}");
    assert!(!log.contains(token), "the token reached the log");
}

/// A `Vlm(..)` reward's camera reaches the console beside the policy's
/// view: the frames the emulated VLM endpoint scores, as the page loads them.
#[test]
fn the_reward_camera_the_vlm_scores_is_on_the_console() {
    let domain = ((std::process::id() + 8) % 80 + 1).to_string();
    let emulator = common::VlmEmulator::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vlm.ron");
    let launch = launch_file("console_vlm", "127.0.0.1:0").replace(
        "    console:",
        &format!("    cameras: [(name: \"side\", source: Sim(\"front\"), width: 40, height: 30)],\n    reward: Vlm((endpoint: \"{}\", model: \"emulated-vlm\", task: \"reach the target\", cameras: [\"side\"], api_key_env: Some(\"RRL_TEST_VLM_KEY\"), timeout_ms: 2000, max_concurrent: 2)),\n    console:", emulator.url()),
    );
    std::fs::write(&config, launch).unwrap();
    let run_dir = dir.path().join("run");
    let mut practice = common::Running::spawn(
        common::rrl_command(&["practice", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap(), "--steps", "100000", "--realtime", "--console", "--eval-episodes", "0"], &domain).stdout(Stdio::piped()).stderr(Stdio::piped()),
    );
    let (urls, stderr) = common::console_urls(practice.child(), 1);
    let started = Instant::now();
    let seen = loop {
        let seen = state(&format!("{}api/state", urls[0]));
        if !seen["reward_frame"].is_null() && seen["step"].as_u64() > Some(2) {
            break seen;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "no reward camera frame reached the console: {seen}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!((seen["reward_frame"]["width"].as_u64(), seen["reward_frame"]["height"].as_u64()), (Some(40), Some(30)), "{seen}");
    let png = ureq::get(&format!("{}reward_frame.png", urls[0])).call().unwrap().into_body().read_to_vec().unwrap();
    let mut reader = png::Decoder::new(std::io::Cursor::new(png)).read_info().unwrap();
    let mut image = vec![0; reader.output_buffer_size()];
    reader.next_frame(&mut image).unwrap();
    let distinct: std::collections::HashSet<&[u8]> = image.chunks(3).collect();
    assert!(distinct.len() > 10, "the reward camera's frame is a picture of the scene, not blank");
    post(&format!("{}api/command/stop", urls[0])).unwrap();
    let (report, _) = report_of(practice.into_inner(), stderr);
    assert_eq!(report["stopped_by_operator"], true, "{report}");
    assert!(report["learned_rewards"]["vlm"]["scored"].as_u64() > Some(0), "{report}");
}
