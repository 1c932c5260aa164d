//! For `rrl bench gate --console`: an operator console fed as practice
//! feeds it, with its page open in headless Chromium, for as long as the
//! gate is measured beside it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use console::{Console, ConsoleSettings, ConsoleView, FinishedEpisode};
use rrl_types::{FrameLayout, LiveStatus, TickVerdict};
use serde_json::{json, Value};

/// Two 128x128 cameras, as `rrl bench learner --pixels` practises with.
const LAYOUT: FrameLayout = FrameLayout { cameras: 2, height: 128, width: 128 };

pub struct OpenPage {
    console: Console,
    live: Arc<LiveStatus>,
    browser: std::process::Child,
    stop: Arc<AtomicBool>,
    feeder: Option<std::thread::JoinHandle<()>>,
    _profile: tempfile::TempDir,
}

impl OpenPage {
    /// Serves a console on loopback, feeds it from a thread at 10 Hz (the
    /// policy rate), and opens its page; returns once the page is connected.
    pub fn start() -> anyhow::Result<OpenPage> {
        let live = Arc::new(LiveStatus::default());
        let console = Console::start(ConsoleSettings { address: "127.0.0.1:0".parse()?, token: None }, ConsoleView { title: "bench gate".into(), live: live.clone() })?;
        let stop = Arc::new(AtomicBool::new(false));
        let feeder = {
            let (live, stop, episodes) = (live.clone(), stop.clone(), console.episode_sender());
            std::thread::Builder::new().name("bench-actor".into()).spawn(move || {
                let mut frames = vec![0u8; LAYOUT.bytes()];
                let mut step = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    step += 1;
                    // A moving gradient: every frame differs, as a camera's do.
                    for (i, p) in frames.iter_mut().enumerate() {
                        *p = (i as u64 / 3 + step * 7) as u8;
                    }
                    live.stepped(0.1, false);
                    live.frames.offer(LAYOUT, &frames, step);
                    if step % 50 == 0 {
                        live.gate_ticked(TickVerdict::Clipped, 32, true);
                    }
                    if step % 20 == 0 {
                        live.episode_ended(Some(step % 40 == 0));
                        episodes(FinishedEpisode { episode: step / 20, steps: 20, total_steps: step, episode_return: 2.0, success: Some(step % 40 == 0), interventions: 0 });
                        live.episode_started(step / 20 + 1);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })?
        };
        let profile = tempfile::tempdir()?;
        let browser = std::process::Command::new("chromium")
            .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000", "--remote-debugging-port=0"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(console.url())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting chromium (Debian's `chromium`; scripts/setup.sh installs it)")?;
        let mut page = OpenPage { console, live, browser, stop, feeder: Some(feeder), _profile: profile };
        let started = Instant::now();
        while page.console.pages() == 0 {
            if let Ok(Some(status)) = page.browser.try_wait() {
                bail!("chromium exited ({status}) before the console's page connected");
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("the console's page did not connect within 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(page)
    }

    /// Closes the page and the console; what was served meanwhile.
    pub fn finish(mut self) -> anyhow::Result<Value> {
        let pages = self.console.pages();
        self.close();
        let feeder = self.feeder.take().expect("finished once");
        feeder.join().map_err(|_| anyhow::anyhow!("the bench's feeder panicked"))?;
        Ok(json!({"pages_open": pages, "frames_offered": self.live.frames.offered(), "frames_encoded": self.console.frames_encoded()}))
    }

    fn close(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.browser.kill();
        let _ = self.browser.wait();
    }
}

/// A bench that fails half-way leaves no browser or feeder behind.
impl Drop for OpenPage {
    fn drop(&mut self) {
        self.close();
        if let Some(feeder) = self.feeder.take() {
            let _ = feeder.join();
        }
    }
}
