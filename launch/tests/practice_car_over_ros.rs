//! The car through the real-car path: `rrl sim` serves the car twin as a
//! small car's driver would (Twist in; odometry and IMU out, on the wall
//! clock), and `rrl practice` races the shipped `sim_car_over_ros.ron`
//! course over those topics with the gate in its own process: a scripted
//! lap, then practice. Mid-practice the car's driver freezes (SIGSTOP):
//! practice pauses while its odometry is stale and resumes by itself when
//! it comes back, and nothing is lost. A second practice sees the twin's
//! camera through its image topic, as a real car's policy would. All in a
//! private ROS domain on loopback.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn files() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("files")
}

/// Waits until `file` holds `text` past its first `from` bytes, polling
/// (the writer is another process).
fn wait_for_text(file: &Path, from: usize, text: &str, within: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < within {
        if std::fs::read(file).is_ok_and(|s| s.len() > from && String::from_utf8_lossy(&s[from..]).contains(text)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn signal(pid: u32, which: &str) {
    let status = Command::new("kill").args([which, &pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill {which} {pid}");
}

#[test]
fn the_car_practises_its_course_over_ros_and_pauses_while_its_odometry_is_stale() {
    let domain = (20 + (std::process::id() + 73) % 80).to_string();
    let dir = tempfile::tempdir().unwrap();
    // The shipped file, shortened: one scripted lap and a short practice
    // that gets past its warm-up; no evaluation.
    let shipped = std::fs::read_to_string(files().join("sim_car_over_ros.ron")).unwrap();
    let short = shipped.replace("demo_episodes: 3,", "demo_episodes: 1,").replace("total_steps: 20000,", "total_steps: 150,").replace("eval_episodes: 10,", "eval_episodes: 0,").replace("warmup_steps: 500,", "warmup_steps: 60,").replace("batch_size: 256,", "batch_size: 32,");
    for wanted in ["demo_episodes: 1,", "total_steps: 150,", "eval_episodes: 0,", "warmup_steps: 60,", "batch_size: 32,"] {
        assert!(short.contains(wanted), "the shipped file's sections changed: `{wanted}` not set");
    }
    let config = dir.path().join("car.ron");
    std::fs::write(&config, &short).unwrap();
    let run_dir = dir.path().join("run");
    let log = dir.path().join("practice.log");

    let mut sim = common::rrl_command(&["sim", "--config", files().join("sim_car_course.ron").to_str().unwrap(), "--duration-s", "400"], &domain).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start rrl sim");
    let mut practice = common::rrl_command(&["practice", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap()], &domain)
        .env("RRL_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start rrl practice");
    // Freeze the car's driver once practice is under way, then thaw it once practice has noticed.
    assert!(wait_for_text(&log, 0, "demo episodes ready", Duration::from_secs(180)), "the scripted lap did not finish:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    let started = Instant::now();
    while recording::list_episodes(&run_dir.join("episodes")).map_or(true, |e| e.is_empty()) {
        assert!(started.elapsed() < Duration::from_secs(60), "practice did not begin");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Only what practice says after the freeze counts.
    let before = std::fs::metadata(&log).unwrap().len() as usize;
    signal(sim.id(), "-STOP");
    let paused = wait_for_text(&log, before, "no odometry or IMU from the car", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(500));
    signal(sim.id(), "-CONT");
    let resumed = wait_for_text(&log, before, "the car's state comes again", Duration::from_secs(20));
    let mut stdout = String::new();
    practice.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    let status = practice.wait().unwrap();
    let _ = sim.kill();
    let _ = sim.wait();
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "rrl practice failed:\n{said}");
    assert!(paused && resumed, "practice must pause on stale odometry and resume by itself (paused {paused}, resumed {resumed}):\n{said}");
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(report["task"], "CarCourse");
    assert_eq!(report["total_steps"], 150);
    assert!(report["learner_updates"].as_u64().unwrap() > 0, "past its warm-up the learner trained: {report}");

    // The scripted lap went round the course over the topics.
    let demos: Vec<_> = recording::list_episodes(&run_dir.join("demos")).unwrap().iter().map(|p| recording::read_episode(p).unwrap()).collect();
    assert_eq!(demos.len(), 1);
    assert_eq!(demos[0].outcome.as_ref().and_then(|o| o.success), Some(true), "the scripted driver lapped the twin over ROS 2");
    // Nothing lost across the pause: every episode practice.csv reports is
    // on disk, closed, with as many steps; the gate's ticks beside them.
    let episodes: Vec<_> = recording::list_episodes(&run_dir.join("episodes")).unwrap().iter().map(|p| recording::read_episode(p).unwrap()).collect();
    let csv = std::fs::read_to_string(run_dir.join("practice.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), episodes.len(), "practice.csv and the episode files agree on the episodes");
    for (row, episode) in rows.iter().zip(&episodes) {
        let outcome = episode.outcome.as_ref().unwrap_or_else(|| panic!("episode {} was not closed", episode.header.episode));
        assert_eq!(outcome.steps.to_string(), row[1], "episode {}", episode.header.episode);
    }
    assert_eq!(episodes.iter().map(|e| e.steps.iter().filter(|s| !s.flags.recovery).count()).sum::<usize>(), 150);
    let ticks: usize = episodes.iter().map(|e| e.gate_ticks.len()).sum();
    assert!(ticks > 150, "the control thread's gate ticks are recorded with the steps: {ticks}");
}

/// `rrl sim` serves the car twin as a car's driver, its front camera
/// included: an rclpy peer drives it with Twist and sees the odometry, the
/// IMU and rendered frames that change as it drives.
#[test]
fn rrl_sim_serves_the_car_twin_with_odometry_imu_and_its_camera() {
    let domain = (20 + (std::process::id() + 11) % 80).to_string();
    let mut sim = common::rrl_command(&["sim", "--config", files().join("sim_car_course.ron").to_str().unwrap(), "--duration-s", "60"], &domain).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start rrl sim");
    let peer = common::ros_peer("watch_car_twin.py", &["car", "128", "96"], &domain).output().unwrap();
    let _ = sim.kill();
    let sim_output = sim.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&peer.stdout);
    assert!(peer.status.success(), "the peer's checks failed: {said}\n{}\nrrl sim said: {}", String::from_utf8_lossy(&peer.stderr), String::from_utf8_lossy(&sim_output.stderr));
}

/// A car's policy sees its camera through the image topic its driver
/// publishes (resized as it arrives): every step keeps its frame, and the
/// frames follow the car.
#[test]
fn a_car_practises_seeing_its_camera_over_its_image_topic() {
    let domain = (20 + (std::process::id() + 21) % 80).to_string();
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(files().join("sim_car_over_ros.ron")).unwrap();
    let short = shipped
        .replace("demo_episodes: 3,", "demo_episodes: 0,")
        .replace("total_steps: 20000,", "total_steps: 60,")
        .replace("eval_episodes: 10,", "eval_episodes: 0,")
        .replace("warmup_steps: 500,", "warmup_steps: 30,")
        .replace("batch_size: 256,", "batch_size: 16, pixels: (features: 8, filters: 4),")
        .replace("max_angular_rps: 3.5,", "max_angular_rps: 3.5,\n        observe_cameras: [\"front\"],")
        .replace("    safety: (", "    cameras: [(name: \"front\", source: Topic(\"front/image_raw\"), width: 24, height: 24)],\n    safety: (");
    for wanted in ["demo_episodes: 0,", "total_steps: 60,", "eval_episodes: 0,", "warmup_steps: 30,", "batch_size: 16, pixels", "observe_cameras: [\"front\"]", "Topic(\"front/image_raw\")"] {
        assert!(short.contains(wanted), "the shipped file's sections changed: `{wanted}` not set");
    }
    let config = dir.path().join("car_camera.ron");
    std::fs::write(&config, &short).unwrap();
    let run_dir = dir.path().join("run");
    let mut sim = common::rrl_command(&["sim", "--config", files().join("sim_car_course.ron").to_str().unwrap(), "--duration-s", "300"], &domain).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start rrl sim");
    let report = common::rrl_json(&["practice", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap()], &domain);
    let _ = sim.kill();
    let _ = sim.wait();
    let report = report.unwrap_or_else(|stderr| panic!("rrl practice failed: {stderr}"));
    assert_eq!(report["total_steps"], 60, "{report}");
    assert!(report["learner_updates"].as_u64().unwrap() > 0, "a pixel learner trained: {report}");
    let episodes: Vec<_> = recording::list_episodes(&run_dir.join("episodes")).unwrap().iter().map(|p| recording::read_episode(p).unwrap()).collect();
    let mut views = std::collections::HashSet::new();
    for step in episodes.iter().flat_map(|e| e.steps.iter().filter(|s| !s.flags.recovery)) {
        let (layout, rgb) = recording::frames::decode(step.next_frames.as_ref().expect("the camera's frame")).unwrap();
        assert_eq!((layout.cameras, layout.width, layout.height), (1, 24, 24));
        views.insert(rgb);
    }
    assert!(views.len() > 20, "the frames follow the car: {} different views in 60 steps", views.len());
}
