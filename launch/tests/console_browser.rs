//! The operator console in a real browser: headless Chromium (Debian's
//! `chromium`, driven over WebDriver by `chromedriver`) opens the console
//! of a short simulated practice from a camera, sees the frame and the
//! curve, and pauses, resumes, labels a failure and stops practice with
//! the page's buttons.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

/// Reach from a 64x64 front camera; only the human's labels give reward.
const LAUNCH: &str = r#"(
    name: "console_reach",
    namespace: "console_panda",
    robot: Sim((task: PandaReach, seed: 3, observe_cameras: ["front"])),
    cameras: [(name: "front", source: Sim("front"), width: 64, height: 64)],
    safety: (preset: Some(FrankaPanda)),
    reward: Human,
    learner: (device: Cpu, hidden: [32, 32], batch_size: 16, warmup_steps: 1000000, pixels: (features: 8, filters: 4)),
    practice: (max_episode_steps: 15, demo_episodes: 0, total_steps: 100000, eval_episodes: 0),
    console: (address: "127.0.0.1:0"),
)"#;

/// A WebDriver session on headless Chromium.
struct Browser {
    driver: Child,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new("chromedriver").arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("chromedriver (Debian's chromium-driver; scripts/setup.sh installs it)");
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while ureq::get(&format!("{base}/status")).call().is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "chromedriver did not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let capabilities = serde_json::json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000", "--force-device-scale-factor=1", format!("--user-data-dir={}", profile.path().display())],
        }}}});
        let mut browser = Browser { driver, session: String::new(), _profile: profile };
        let answer = browser.call("POST", &format!("{base}/session"), Some(capabilities));
        browser.session = format!("{base}/session/{}", answer["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {answer}")));
        browser
    }

    fn call(&self, method: &str, url: &str, body: Option<serde_json::Value>) -> serde_json::Value {
        let answer = match body {
            Some(body) => ureq::post(url).header("Content-Type", "application/json").send(body.to_string()),
            None if method == "DELETE" => ureq::delete(url).call(),
            None => ureq::get(url).call(),
        };
        let text = answer.unwrap_or_else(|e| panic!("WebDriver {method} {url}: {e}")).into_body().read_to_string().unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["value"].clone()
    }

    fn open(&self, url: &str) {
        self.call("POST", &format!("{}/url", self.session), Some(serde_json::json!({"url": url})));
    }

    /// The page's own `script` (a function body), run in the page.
    fn run(&self, script: &str) -> serde_json::Value {
        self.call("POST", &format!("{}/execute/sync", self.session), Some(serde_json::json!({"script": script, "args": []})))
    }

    /// Clicks the element `#id` as a person would (a WebDriver element click).
    fn click(&self, id: &str) {
        let found = self.call("POST", &format!("{}/element", self.session), Some(serde_json::json!({"using": "css selector", "value": format!("#{id}")})));
        let element = found.as_object().and_then(|o| o.values().next()).and_then(|v| v.as_str()).unwrap_or_else(|| panic!("no #{id}: {found}")).to_string();
        self.call("POST", &format!("{}/element/{element}/click", self.session), Some(serde_json::json!({})));
    }

    /// (width, channels, pixels) of a screenshot of the page.
    fn screenshot(&self) -> (usize, usize, Vec<u8>) {
        let encoded = self.call("GET", &format!("{}/screenshot", self.session), None);
        let png = base64::engine::general_purpose::STANDARD.decode(encoded.as_str().unwrap()).unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(png)).read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        (info.width as usize, info.color_type.samples(), pixels)
    }

    /// Waits (bounded) until `script` returns something other than null or false.
    fn until(&self, what: &str, script: &str) -> serde_json::Value {
        let started = Instant::now();
        loop {
            let value = self.run(script);
            if !value.is_null() && value != false {
                return value;
            }
            assert!(started.elapsed() < Duration::from_secs(90), "the page never showed {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = ureq::delete(&self.session).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// practice.csv's rows: (episode, total_steps, return, success, reason).
fn csv_rows(run_dir: &Path) -> Vec<(u64, u64, f64, String, String)> {
    let text = std::fs::read_to_string(run_dir.join("practice.csv")).unwrap_or_default();
    text.lines()
        .skip(1)
        // Whole rows only: a row being written has not reached its last column, the critic's role.
        .filter(|l| ["none", "shadow", "withheld", "acting"].iter().any(|role| l.ends_with(&format!(",{role}"))))
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].parse().unwrap(), f[2].parse().unwrap(), f[3].parse().unwrap(), f[4].to_string(), f[7].to_string())
        })
        .collect()
}

/// The page's rectangle of `#id` in screenshot pixels: (left, top, width, height).
fn rect(browser: &Browser, id: &str) -> (usize, usize, usize, usize) {
    let r = browser.run(&format!("const r = document.getElementById('{id}').getBoundingClientRect(); return [r.left, r.top, r.width, r.height];"));
    let v: Vec<usize> = r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap().round() as usize).collect();
    (v[0], v[1], v[2], v[3])
}

#[test]
fn the_console_in_a_real_browser_shows_the_camera_and_curve_and_pauses_labels_and_stops_practice() {
    let domain = ((std::process::id() + 5) % 80 + 1).to_string();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("console.ron");
    std::fs::write(&config, LAUNCH).unwrap();
    let run_dir = dir.path().join("run");
    let mut practice = common::Running::spawn(common::rrl_command(&["practice", "--config", config.to_str().unwrap(), "--run-dir", run_dir.to_str().unwrap(), "--steps", "100000", "--realtime", "--console", "--learner", "node", "--eval-episodes", "0"], &domain)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped()));
    // The console prints its address once it listens.
    let (urls, stderr_lines) = common::console_urls(practice.child(), 1);
    let url = urls[0].clone();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let browser = Browser::start();
    browser.open(&url);
    // A camera frame, and the curve of at least two finished episodes.
    browser.until("a frame and two curve points", "const c = window.rrlConsole; return c.state && c.state.frame && c.drawn && c.drawn.points >= 2 && document.getElementById('frame').complete;");
    // The curve's last point is practice.csv's last row (retried while an episode ends in between).
    let started = Instant::now();
    let (drawn, row) = loop {
        let drawn = browser.run("return window.rrlConsole.drawn;");
        let rows = csv_rows(&run_dir);
        if let Some(last) = rows.last().filter(|r| Some(r.0) == drawn["episode"].as_u64()) {
            break (drawn, last.clone());
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the curve ({drawn}) never matched practice.csv ({rows:?})");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(drawn["total_steps"].as_u64(), Some(row.1), "{drawn} vs {row:?}");
    assert!((drawn["return"].as_f64().unwrap() - row.2).abs() < 1e-3, "{drawn} vs {row:?}");

    // The screenshot: the frame is a picture (not blank), the curves are drawn.
    let (width, channels, pixels) = browser.screenshot();
    let at = |x: usize, y: usize| -> [u8; 3] {
        let i = channels * (y * width + x);
        [pixels[i], pixels[i + 1], pixels[i + 2]]
    };
    let (fx, fy, fw, fh) = rect(&browser, "frame");
    assert!(fw >= 300 && fh >= 300, "the frame is shown large: {fw}x{fh}");
    let frame: Vec<[u8; 3]> = (fy..fy + fh).step_by(4).flat_map(|y| (fx..fx + fw).step_by(4).map(move |x| (x, y))).map(|(x, y)| at(x, y)).collect();
    let luminance: Vec<f64> = frame.iter().map(|p| f64::from(p[0]) * 0.3 + f64::from(p[1]) * 0.59 + f64::from(p[2]) * 0.11).collect();
    let mean = luminance.iter().sum::<f64>() / luminance.len() as f64;
    let spread = (luminance.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / luminance.len() as f64).sqrt();
    let distinct: std::collections::HashSet<[u8; 3]> = frame.iter().copied().collect();
    assert!(spread > 10.0 && distinct.len() > 20, "the camera frame looks blank: mean {mean:.1}, spread {spread:.1}, {} colours", distinct.len());
    let (cx, cy, cw, ch) = rect(&browser, "curve");
    let curve: Vec<[u8; 3]> = (cy..cy + ch).flat_map(|y| (cx..cx + cw).map(move |x| (x, y))).map(|(x, y)| at(x, y)).collect();
    let near = |p: &[u8; 3], c: [u8; 3]| p.iter().zip(c).all(|(a, b)| (i32::from(*a) - i32::from(b)).abs() < 40);
    let (green, blue) = (curve.iter().filter(|p| near(p, [0x1a, 0x8f, 0x1a])).count(), curve.iter().filter(|p| near(p, [0x1f, 0x5f, 0xbf])).count());
    assert!(green > 50 && blue > 50, "the success-rate ({green} px) and return ({blue} px) curves are drawn");

    // Pause: steps stop until resume. Ten more states reach the page while paused.
    browser.click("pause");
    browser.until("the pause", "return window.rrlConsole.state.paused;");
    let held = browser.run("const s = window.rrlConsole.state; return [s.episode, s.step, window.rrlConsole.received];");
    let (episode, step, received) = (held[0].as_u64().unwrap(), held[1].as_u64().unwrap(), held[2].as_u64().unwrap());
    browser.until("ten more states", &format!("return window.rrlConsole.received >= {};", received + 10));
    let still = browser.run("const s = window.rrlConsole.state; return [s.episode, s.step, s.paused];");
    assert_eq!(still, serde_json::json!([episode, step, true]), "no step while paused");
    assert!(browser.run("return document.getElementById('banner').textContent;").as_str().unwrap().starts_with("Paused"));
    browser.click("resume");
    browser.until("steps again", &format!("const s = window.rrlConsole.state; return !s.paused && (s.episode > {episode} || s.step > {step});"));

    // Failure: the episode in hand ends, labelled, with reward 0 and a terminal flag.
    let labelled = browser.until("a step of an episode to label", "const s = window.rrlConsole.state; return s.step >= 2 ? s.episode : null;").as_u64().unwrap();
    browser.click("failure");
    let started = Instant::now();
    let failed = loop {
        if let Some(row) = csv_rows(&run_dir).into_iter().find(|r| r.4 == "failure") {
            break row;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no episode ended with the failure label: {:?}", csv_rows(&run_dir));
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(failed.0 == labelled || failed.0 == labelled + 1, "the episode in hand ({labelled}) took the label, not {}", failed.0);
    assert_eq!(failed.3, "0", "a failure: {failed:?}");
    browser.click("stop");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = practice.child().try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            panic!("practice did not stop on the console's stop");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut practice.child().stdout.take().unwrap(), &mut stdout).unwrap();
    let log = stderr_lines.join().unwrap();
    assert!(status.success(), "{log}");
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(report["stopped_by_operator"], true, "{report}");

    // On disk: the labelled episode's last step is terminal with reward 0.
    let file = run_dir.join("episodes").join(recording::episode::episode_file_name(failed.0));
    let episode = recording::read_episode(&file).unwrap();
    assert_eq!(episode.outcome.as_ref().unwrap().success, Some(false));
    let last = episode.steps.iter().rfind(|s| !s.flags.recovery).unwrap();
    assert_eq!((last.reward, last.flags.terminated, last.flags.label), (0.0, true, Some(false)));
    let terminal_on_disk: usize = recording::list_episodes(&run_dir.join("episodes")).unwrap().iter().map(|p| recording::read_episode(p).unwrap().steps.iter().filter(|s| s.flags.terminated).count()).sum();
    assert_eq!(terminal_on_disk, 1, "with reward: Human only the label makes a step terminal");
    // At the learner: the one terminal transition it got is the label's, with reward 0.
    let node = &report["link"]["learner_node"];
    assert_eq!((node["terminal_transitions"].as_u64(), node["rewarded_terminal_transitions"].as_u64()), (Some(1), Some(0)), "{report}");
}
