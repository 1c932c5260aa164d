//! The VLM progress critic against an emulated OpenAI-compatible endpoint
//! (a Python HTTP server on 127.0.0.1 that decodes our PNGs independently).

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rewards::{Frame, RewardError, RewardSource, VlmProgressCritic, VlmPrompts, VlmSettings};
use rrl_types::Timestamp;

struct Emulator {
    child: Child,
    port: u16,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_emulator() -> Emulator {
    start_emulator_with(&[])
}

fn start_emulator_with(args: &[&str]) -> Emulator {
    let python = std::env::var_os("VIRTUAL_ENV").map(|v| PathBuf::from(v).join("bin/python")).unwrap_or_else(|| "python3".into());
    let mut child = Command::new(python)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/vlm_endpoint_emulator.py"))
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the endpoint emulator");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    Emulator { port: line.trim().parse().expect("port"), child }
}

fn frame(t: u64, red: u8) -> Frame {
    let (w, h) = (32, 24);
    let rgb: Vec<u8> = (0..w * h).flat_map(|i| [red, (i % 251) as u8, 40]).collect();
    Frame::new(Timestamp(t), w, h, rgb).unwrap()
}

fn critic(port: u16, timeout_ms: u64) -> VlmProgressCritic {
    VlmProgressCritic::new(VlmSettings {
        endpoint: format!("http://127.0.0.1:{port}/v1/chat/completions"),
        model: "emulated-vlm".into(),
        api_key: Some("test-key".into()),
        prompts: VlmPrompts::default(),
        done_threshold: 90.0,
        timeout: Duration::from_millis(timeout_ms),
        reference_frames: vec![frame(0, 255)],
        root_certificates: None,
    })
    .unwrap()
}

#[test]
fn progress_accumulates_from_the_models_deltas_and_done_follows_its_answer() {
    let emulator = start_emulator();
    let mut critic = critic(emulator.port, 5000);
    critic.reset("put the red cube in the bowl").unwrap();
    // Red level 0 -> 255 in steps: deltas of 0, +20, +30, +50 percentage points of 255.
    let reds = [0u8, 51, 127, 255];
    let mut values = Vec::new();
    let mut done = Vec::new();
    for (i, &red) in reds.iter().enumerate() {
        let estimate = critic.score(&[frame(100 + i as u64, red)]).unwrap();
        assert_eq!(estimate.stamp, Timestamp(100 + i as u64), "the estimate carries its frame's stamp");
        values.push(estimate.progress.unwrap());
        done.push(estimate.done);
    }
    // Expected: each delta closes its share of the remaining gap.
    let mut expected = vec![0.0];
    for pair in reds.windows(2) {
        let delta = 100.0 * (f64::from(pair[1]) - f64::from(pair[0])) / 255.0;
        expected.push(rewards::vlm::accumulate(*expected.last().unwrap(), (delta * 10.0).round() / 10.0));
    }
    for (v, e) in values.iter().zip(&expected) {
        assert!((v - e).abs() < 1e-9, "{values:?} vs {expected:?}");
    }
    assert_eq!(done, [false, false, false, true]);
    // Going backwards gives back achieved progress.
    let back = critic.score(&[frame(200, 0)]).unwrap();
    assert!(back.progress.unwrap() < values[3] && back.reward < 0.0);
    let voc = rewards::metrics::value_order_correlation(&values).unwrap();
    assert!(voc > 0.99, "VOC {voc}");
}

/// Fault matrix: reward endpoint dead | garbled answer, a model stalled 120 s, HTTP 400, a killed endpoint | each is a typed error; the deadline ends the wait | Unparseable / Timeout(300 ms) well before 120 s / the server's reason / connecting; the API key never in errors
#[test]
fn bad_answers_slow_models_and_dead_endpoints_are_named_errors() {
    let emulator = start_emulator();
    let mut garbled = critic(emulator.port, 5000);
    garbled.reset("garble the answer").unwrap();
    let err = garbled.score(&[frame(1, 10)]).unwrap_err();
    assert!(matches!(err, RewardError::Unparseable { .. }), "{err}");
    assert!(err.to_string().contains("I cannot tell"), "{err}");

    // A model that answers after 120 s: the 300 ms deadline ends the wait
    // (asserted far from both: a wait that ignored it would take 120 s).
    let mut slow = critic(emulator.port, 300);
    slow.reset("stalled model").unwrap();
    let started = std::time::Instant::now();
    let err = slow.score(&[frame(1, 10)]).unwrap_err();
    assert!(matches!(err, RewardError::Timeout { timeout_ms: 300, .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60), "the deadline held");

    // A refused request is the server's answer, passed on with its reason.
    let mut no_key = critic(emulator.port, 5000);
    no_key.reset("no key").unwrap();
    let mut settings_without_key = VlmSettings {
        endpoint: format!("http://127.0.0.1:{}/v1/chat/completions", emulator.port),
        model: "emulated-vlm".into(),
        api_key: None,
        prompts: VlmPrompts::default(),
        done_threshold: 90.0,
        timeout: Duration::from_secs(5),
        reference_frames: Vec::new(),
        root_certificates: None,
    };
    let mut refused = VlmProgressCritic::new(settings_without_key.clone()).unwrap();
    refused.reset("anything").unwrap();
    let err = refused.score(&[frame(1, 10)]).unwrap_err().to_string();
    assert!(err.contains("HTTP 400") && err.contains("missing bearer token"), "{err}");

    settings_without_key.endpoint = "ftp://example.com/v1".into();
    assert!(VlmProgressCritic::new(settings_without_key).err().unwrap().to_string().contains("must start with http:// or https://"));

    drop(emulator);
    let err = no_key.score(&[frame(1, 10)]).unwrap_err().to_string();
    assert!(err.contains("127.0.0.1") && err.contains("connecting"), "{err}");
    assert!(!err.contains("test-key"), "the API key never appears in errors");
}

/// Frames offered faster than the model answers: the actor's side never
/// waits, waiting frames are replaced by newer ones (counted), the newest
/// frame is always scored, and progress still chains in frame order.
#[test]
fn the_pipeline_keeps_the_newest_frames_and_applies_answers_in_order() {
    let emulator = start_emulator();
    let mut pipeline = rewards::pipeline::ProgressPipeline::new(critic(emulator.port, 5000), 2);
    // The emulated model takes 3 s an answer.
    pipeline.reset("a slow model watching the scene turn red");
    for i in 0..12u64 {
        pipeline.offer(frame(1000 + i, (i * 20) as u8));
    }
    let c = pipeline.counts();
    let answered = c.scored.load(std::sync::atomic::Ordering::Relaxed) + c.failed.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(answered, 0, "all twelve frames were offered before the model's first answer: offering never waits for it");
    let mut estimates = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        estimates.extend(pipeline.poll());
        let c = pipeline.counts();
        let settled = c.scored.load(std::sync::atomic::Ordering::Relaxed) + c.dropped.load(std::sync::atomic::Ordering::Relaxed) + c.failed.load(std::sync::atomic::Ordering::Relaxed);
        if settled == 12 && estimates.last().is_some_and(|e| e.stamp == Timestamp(1011)) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "pipeline stalled: {estimates:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let dropped = pipeline.counts().dropped.load(std::sync::atomic::Ordering::Relaxed);
    assert!(dropped >= 5, "only {dropped} frames were replaced");
    assert_eq!(estimates.len() as u64, 12 - dropped);
    assert!(estimates.windows(2).all(|w| w[0].stamp < w[1].stamp), "applied in frame order");
    assert!(estimates.windows(2).all(|w| w[1].progress.unwrap() >= w[0].progress.unwrap()), "monotone scene, monotone progress: {estimates:?}");
    assert!(estimates.last().unwrap().progress.unwrap() > 50.0);

    let mut joiner = rewards::pipeline::RewardJoiner::new(50);
    for e in &estimates {
        joiner.push(*e);
    }
    assert_eq!(joiner.reward_at(Timestamp(1011)).unwrap().stamp, Timestamp(1011));
    assert_eq!(joiner.reward_at(Timestamp(1040)).unwrap().stamp, Timestamp(1011));
    assert!(joiner.reward_at(Timestamp(1200)).is_none(), "too old to join");
    assert!(joiner.reward_at(Timestamp(5)).is_none(), "no frame before it");
    assert_eq!((joiner.joined, joiner.missing), (2, 2));
}

/// A root certificate authority made for this test (self-signed) and a
/// server certificate for 127.0.0.1 it issued, by the openssl command:
/// `(root.pem, server.pem, server.key)` in `dir`.
fn make_certificates(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl (Debian's openssl; scripts/setup.sh installs it)");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    openssl(&[&["req", "-x509"][..], &ec, &["-keyout", "root.key", "-out", "root.pem", "-subj", "/CN=rrl test root", "-days", "2"]].concat());
    openssl(&[&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]].concat());
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n").unwrap();
    openssl(&["x509", "-req", "-in", "server.csr", "-CA", "root.pem", "-CAkey", "root.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext"]);
    (dir.join("root.pem"), dir.join("server.pem"), dir.join("server.key"))
}

/// An https endpoint (the emulator behind TLS, its certificate issued by a
/// root made for this test): trusted through that root when the settings
/// pass it in, refused against the system's roots (an unknown issuer),
/// and a roots file without a certificate is refused by name.
/// Fault matrix: untrusted TLS certificate | an https endpoint whose certificate a test-made root issued | trusted only through that root | scores with the root; refused against the system's roots
#[test]
fn an_https_endpoint_is_trusted_through_the_root_passed_in_and_refused_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let (root, server, key) = make_certificates(dir.path());
    let emulator = start_emulator_with(&[&format!("--tls={}:{}", server.display(), key.display())]);
    let https = |roots: Option<PathBuf>| {
        VlmProgressCritic::new(VlmSettings {
            endpoint: format!("https://127.0.0.1:{}/v1/chat/completions", emulator.port),
            model: "emulated-vlm".into(),
            api_key: Some("test-key".into()),
            prompts: VlmPrompts::default(),
            done_threshold: 90.0,
            timeout: Duration::from_secs(5),
            reference_frames: Vec::new(),
            root_certificates: roots,
        })
    };

    let mut trusted = https(Some(root)).unwrap();
    trusted.reset("put the red cube in the bowl").unwrap();
    trusted.score(&[frame(1, 0)]).unwrap();
    let estimate = trusted.score(&[frame(2, 128)]).unwrap();
    assert!(estimate.progress.unwrap() > 0.0, "a redder scene over https: {estimate:?}");

    let mut untrusted = https(None).unwrap();
    untrusted.reset("put the red cube in the bowl").unwrap();
    let err = untrusted.score(&[frame(1, 0)]).unwrap_err().to_string();
    assert!(err.contains("UnknownIssuer"), "refused for its unknown issuer: {err}");
    assert!(!err.contains("test-key"), "the API key never appears in errors");

    let Err(err) = https(Some(key)) else { panic!("a key file taken for root certificates") };
    let err = err.to_string();
    assert!(err.contains("server.key") && err.contains("no PEM certificate"), "{err}");
}
