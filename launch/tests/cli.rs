//! The `rrl` binary as a user runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn rrl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rrl")).args(args).env("RRL_LOG", "warn").output().expect("run rrl")
}

fn ron_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_launch_file_passes_check_config() {
    let files = ron_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("files"));
    assert!(files.len() >= 4);
    let args: Vec<&str> = std::iter::once("check-config").chain(files.iter().map(|f| f.to_str().unwrap())).collect();
    let out = rrl(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.lines().filter(|l| l.ends_with(')') && l.contains(": ok (")).count(), files.len(), "{stdout}");
}

#[test]
fn broken_launch_files_fail_with_a_location_and_never_a_panic() {
    let files = ron_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../rrl_types/tests/bad_launch_files"));
    assert!(files.len() >= 10);
    for file in files {
        let out = rrl(&["check-config", file.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", file.display());
        let expected_location = std::fs::read_to_string(&file).unwrap().lines().next().unwrap().split_whitespace().nth(2).unwrap().to_string();
        assert!(stderr.contains(&format!("{}:{expected_location}: ", file.display())), "{}: {stderr}", file.display());
        assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "{stderr}");
    }
}

#[test]
fn a_missing_launch_file_is_a_clear_error() {
    let out = rrl(&["check-config", "/nonexistent/launch.ron"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("cannot read launch file /nonexistent/launch.ron"), "{stderr}");
}

/// `rrl bench residual --learner-from FILE`: both learners take that launch
/// file's learner section (reported back), and a broken file is refused
/// with its location before any training.
#[test]
fn the_residual_bench_takes_its_learner_from_a_launch_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("learner.ron");
    std::fs::write(&file, "(name: \"b\", namespace: \"b\", robot: Sim((task: PandaPickCube)), safety: (preset: Some(FrankaPanda)),\n learner: (hidden: [32], critics: 3, utd: 2, batch_size: 32, target_entropy_per_action: -3.0))").unwrap();
    let small = ["bench", "residual", "--json", "--seeds", "1", "--demo-episodes", "1", "--bc-steps", "20", "--steps", "400", "--warmup", "300", "--eval-every", "400", "--eval-episodes", "1"];
    let out = rrl(&[&small[..], &["--learner-from", file.to_str().unwrap()]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!((report["learner"]["critics"].as_u64(), report["learner"]["utd"].as_u64()), (Some(3), Some(2)), "{report}");
    assert_eq!(report["learner"]["target_entropy_per_action"].as_f64(), Some(-3.0));
    assert_eq!(report["runs"][0]["residual"]["curve"].as_array().map(Vec::len), Some(1), "{report}");
    assert_eq!(report["runs"][0]["rlpd_from_scratch"]["curve"].as_array().map(Vec::len), Some(1), "{report}");

    // --no-scratch: the residual alone, the from-scratch entries null; --n-step overrides the file's.
    let out = rrl(&[&small[..], &["--learner-from", file.to_str().unwrap(), "--no-scratch", "--n-step", "3"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(report["runs"][0]["residual"]["curve"].as_array().map(Vec::len), Some(1), "{report}");
    assert!(report["runs"][0]["rlpd_from_scratch"].is_null() && report["seeds_reaching_target"]["rlpd_from_scratch"] == 0, "{report}");
    assert_eq!((report["learner"]["n_step"].as_u64(), report["learner"]["critics"].as_u64()), (Some(3), Some(3)), "{report}");

    std::fs::write(&file, "(name: \"b\",\n learner: (utd: \"two\"))").unwrap();
    let out = rrl(&[&small[..], &["--learner-from", file.to_str().unwrap()]].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains(&format!("{}:2:", file.display())), "{stderr}");
}

#[test]
fn every_subcommand_has_help() {
    let top = rrl(&["--help"]);
    assert!(top.status.success());
    let text = String::from_utf8_lossy(&top.stdout).to_string();
    let commands: Vec<String> = text
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .filter(|c| c != "help")
        .collect();
    assert!(commands.contains(&"check-config".to_string()), "{text}");
    for command in commands {
        let out = rrl(&[&command, "--help"]);
        assert!(out.status.success(), "{command} --help failed");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: rrl"), "{command}");
    }
}

/// `rrl doctor` must agree with PyTorch itself, run as an independent
/// process, on whether CUDA is usable: true on a GPU machine, false here.
#[test]
fn doctor_reports_cuda_as_pytorch_does() {
    let out = rrl(&["doctor", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ours = report["torch"]["cuda_available"].as_bool().unwrap();
    let python = std::env::var_os("VIRTUAL_ENV").map(|v| PathBuf::from(v).join("bin/python")).unwrap_or_else(|| "python3".into());
    let torch = Command::new(python).args(["-c", "import torch; print(torch.cuda.is_available(), torch.cuda.device_count())"]).output().unwrap();
    // A PyTorch that cannot be imported must fail the test, not read as "no CUDA".
    assert!(torch.status.success(), "PyTorch did not answer: {}", String::from_utf8_lossy(&torch.stderr));
    let answer = String::from_utf8_lossy(&torch.stdout).to_string();
    let (theirs, devices) = answer.trim().split_once(' ').unwrap_or_else(|| panic!("PyTorch said {answer:?}"));
    assert!(theirs == "True" || theirs == "False", "PyTorch said {answer:?}");
    assert_eq!(ours, theirs == "True", "rrl says cuda_available = {ours}, PyTorch says {theirs}");
    assert_eq!(report["torch"]["cuda_device_count"].to_string(), devices, "CUDA devices: rrl {report}, PyTorch {devices}");
    assert!(report["mujoco"]["version"].as_str().unwrap().starts_with("3.17"), "{report}");
    assert!(report["opencv"].as_str().unwrap().starts_with('4'), "{report}");
}

/// The URDF a launch file names is read by `check-config` too: a broken one
/// is reported with its own file, line and column, next to the launch file.
#[test]
fn check_config_reads_the_urdf_and_locates_its_errors() {
    let dir = tempfile::tempdir().unwrap();
    let urdf = "<?xml version=\"1.0\"?>\n<robot name=\"arm\">\n  <link name=\"base\"/><link name=\"tool\"/>\n  <joint name=\"a\" type=\"revolute\">\n    <parent link=\"base\"/><child link=\"tool\"/>\n    <origin xyz=\"0 0 one\"/>\n  </joint>\n</robot>\n";
    std::fs::write(dir.path().join("arm.urdf"), urdf).unwrap();
    let launch = r#"(
    name: "urdf_arm",
    robot: TopicArm((joint_names: ["a"], command: ForwardPosition(topic: "/commands"))),
    safety: (
        urdf: Some((file: "arm.urdf", base_link: "base", tip_link: "tool")),
        workspace: Some((min: (-1.0, -1.0, -1.0), max: (1.0, 1.0, 1.0))),
    ),
)"#;
    let config = dir.path().join("arm.ron");
    std::fs::write(&config, launch).unwrap();
    let out = rrl(&["check-config", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let located = format!("{}:6:5: joint `a`: xyz=\"0 0 one\" is not three numbers", dir.path().join("arm.urdf").display());
    assert!(stderr.contains(&located) && stderr.contains("arm.ron"), "{stderr}");

    // Fixed, the same launch file passes.
    std::fs::write(dir.path().join("arm.urdf"), urdf.replace("0 0 one", "0 0 0.1")).unwrap();
    let out = rrl(&["check-config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// DDS stays on this machine unless the user opts in: with the variable
/// unset, rrl puts LOCALHOST in force itself (and says so); the
/// environment may widen it; a value rcl would not know is refused, naming
/// the variable.
#[test]
fn discovery_stays_on_localhost_unless_the_environment_opts_in() {
    let doctor = |range: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rrl"));
        command.args(["doctor", "--json"]).env("RRL_LOG", "warn").env_remove("ROS_AUTOMATIC_DISCOVERY_RANGE");
        if let Some(range) = range {
            command.env("ROS_AUTOMATIC_DISCOVERY_RANGE", range);
        }
        command.output().unwrap()
    };
    let report = |out: &Output| -> serde_json::Value {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["ros"].clone()
    };
    let unset = report(&doctor(None));
    assert_eq!((unset["discovery_range"].as_str(), unset["discovery_range_from"].as_str()), (Some("LOCALHOST"), Some("rrl")), "{unset}");
    let subnet = doctor(Some("SUBNET"));
    let opted_in = report(&subnet);
    assert_eq!((opted_in["discovery_range"].as_str(), opted_in["discovery_range_from"].as_str()), (Some("SUBNET"), Some("environment")), "{opted_in}");
    assert!(String::from_utf8_lossy(&subnet.stderr).contains("beyond this machine"), "a wider range is warned about");
    let bad = doctor(Some("EVERYWHERE"));
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("ROS_AUTOMATIC_DISCOVERY_RANGE=\"EVERYWHERE\"") && stderr.contains("LOCALHOST"), "{stderr}");
}
