//! For `rrl bench gate --console`: an operator console fed as practice
//! feeds it, read for as long as the gate is measured beside it, either by
//! a plain HTTP reader at the page's rates (the console's own cost) or by
//! its page open in headless Chromium on the same machine (the console's
//! and the browser's).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use console::{Console, ConsoleSettings, ConsoleView};
use rrl_types::{EpisodeSummary, FrameLayout, LiveStatus, TickVerdict};
use serde_json::{json, Value};

/// Two 128x128 cameras, as `rrl bench learner --pixels` practises with.
const LAYOUT: FrameLayout = FrameLayout { cameras: 2, height: 128, width: 128 };

/// Who reads the console while the gate is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// GETs of the state and the newest frame every 200 ms, as the page
    /// makes them, without rendering anything.
    Http,
    /// The page, open in headless Chromium.
    Chromium,
}

enum Client {
    Http { thread: Option<std::thread::JoinHandle<()>>, reads: Arc<AtomicU64> },
    Chromium { browser: std::process::Child, _profile: tempfile::TempDir },
}

pub struct OpenPage {
    console: Console,
    live: Arc<LiveStatus>,
    client: Client,
    stop: Arc<AtomicBool>,
    feeder: Option<std::thread::JoinHandle<()>>,
}

impl OpenPage {
    /// Serves a console on loopback, feeds it from a thread at 10 Hz (the
    /// policy rate), and starts `reader`; returns once it reads.
    pub fn start(reader: Reader) -> anyhow::Result<OpenPage> {
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
                        episodes(EpisodeSummary { episode: step / 20, steps: 20, total_steps: step, episode_return: 2.0, success: Some(step % 40 == 0), interventions: 0 });
                        live.episode_started(step / 20 + 1);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })?
        };
        let client = match reader {
            Reader::Http => {
                let (url, stop, reads) = (console.url().to_string(), stop.clone(), Arc::new(AtomicU64::new(0)));
                let counted = reads.clone();
                let thread = std::thread::Builder::new().name("bench-reader".into()).spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let state = ureq::get(&format!("{url}api/state")).call().and_then(|r| r.into_body().read_to_vec());
                        let frame = ureq::get(&format!("{url}frame.png")).call().and_then(|r| r.into_body().read_to_vec());
                        if state.is_ok() && frame.is_ok() {
                            counted.fetch_add(1, Ordering::Relaxed);
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                })?;
                Client::Http { thread: Some(thread), reads }
            }
            Reader::Chromium => {
                let profile = tempfile::tempdir()?;
                let browser = std::process::Command::new("chromium")
                    .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000", "--remote-debugging-port=0"])
                    .arg(format!("--user-data-dir={}", profile.path().display()))
                    .arg(console.url())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .context("starting chromium (Debian's `chromium`; scripts/setup.sh installs it)")?;
                Client::Chromium { browser, _profile: profile }
            }
        };
        let mut page = OpenPage { console, live, client, stop, feeder: Some(feeder) };
        let started = Instant::now();
        while !page.reading() {
            if let Client::Chromium { browser, .. } = &mut page.client {
                if let Ok(Some(status)) = browser.try_wait() {
                    bail!("chromium exited ({status}) before the console's page connected");
                }
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("the console's reader did not connect within 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(page)
    }

    fn reading(&self) -> bool {
        match &self.client {
            Client::Http { reads, .. } => reads.load(Ordering::Relaxed) > 0,
            Client::Chromium { .. } => self.console.pages() > 0,
        }
    }

    /// Closes the reader and the console; what was served meanwhile.
    pub fn finish(mut self) -> anyhow::Result<Value> {
        let (pages, reads) = match &self.client {
            Client::Http { reads, .. } => (0, reads.load(Ordering::Relaxed)),
            Client::Chromium { .. } => (self.console.pages(), 0),
        };
        self.close();
        let feeder = self.feeder.take().expect("finished once");
        feeder.join().map_err(|_| anyhow::anyhow!("the bench's feeder panicked"))?;
        Ok(json!({"pages_open": pages, "http_reads": reads, "frames_offered": self.live.frames.offered(), "frames_encoded": self.console.frames_encoded()}))
    }

    fn close(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        match &mut self.client {
            Client::Http { thread, .. } => {
                if let Some(thread) = thread.take() {
                    let _ = thread.join();
                }
            }
            Client::Chromium { browser, .. } => {
                let _ = browser.kill();
                let _ = browser.wait();
            }
        }
    }
}

/// A bench that fails half-way leaves no browser, reader or feeder behind.
impl Drop for OpenPage {
    fn drop(&mut self) {
        self.close();
        if let Some(feeder) = self.feeder.take() {
            let _ = feeder.join();
        }
    }
}
