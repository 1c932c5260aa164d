//! `--console`: the operator's browser console for a practice or teleop
//! session. Its commands take the keyboard's paths: labels, pause, resume
//! and stop reach the actor as the operator's commands (so a label reaches
//! the recorded episode and the learner exactly as a key press does), and
//! "reset done" presses the same `practice/reset_done` button as the space
//! bar.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use console::{Console, ConsoleCommand, ConsoleSettings, ConsoleView, TOKEN_VARIABLE};
use crossbeam::channel::Receiver;
use policies::practice::{EpisodeReport, Operator, OperatorCommand, OperatorInput};
use robot_drivers::worker::{stopping, Worker};
use rrl_types::config::LaunchFile;
use rrl_types::{EpisodeSummary, LiveStatus};

pub struct OperatorConsole {
    console: Console,
    live: Arc<LiveStatus>,
}

impl OperatorConsole {
    /// Serves the console at the launch file's `console.address`, showing
    /// `task_view` (the task's own live status) or a fresh one the actor
    /// fills.
    /// `run_dir`: a resumed run's `practice.csv` starts the curves.
    pub fn start(launch: &LaunchFile, title: &str, task_view: Option<Arc<LiveStatus>>, run_dir: Option<&Path>) -> anyhow::Result<OperatorConsole> {
        let address = launch.console.socket_address().with_context(|| format!("console.address {:?}", launch.console.address))?;
        // The token is read here and goes nowhere but the console.
        let token = std::env::var(TOKEN_VARIABLE).ok().filter(|t| !t.is_empty());
        let live = task_view.unwrap_or_default();
        let with_token = token.is_some();
        let console = Console::start(ConsoleSettings { address, token }, ConsoleView { title: title.into(), live: live.clone() })?;
        let ask = if with_token { format!("?token=<{TOKEN_VARIABLE}>") } else { String::new() };
        if let Some(csv) = run_dir.map(|d| d.join("practice.csv")).filter(|p| p.exists()) {
            let rows = crate::practice_output::read_practice_csv(&csv)?;
            console.preload(rows.into_iter().map(|r| r.episode));
        }
        eprintln!("console: {}{ask}", console.url());
        tracing::info!(address = %console.address(), token = with_token, "operator console serving");
        Ok(OperatorConsole { console, live })
    }

    /// The view the actor fills when the task keeps none of its own.
    pub fn live(&self) -> Arc<LiveStatus> {
        self.live.clone()
    }

    pub fn episode(&self, e: &EpisodeReport) {
        self.console.episode(EpisodeSummary { episode: e.episode, steps: e.steps, total_steps: e.total_steps, episode_return: e.episode_return, success: e.success, interventions: e.interventions });
    }

    /// `other`, joined by the console's buttons (the human's other devices
    /// first, when both give a command on one poll).
    pub fn operator(&self, other: Box<dyn Operator>, namespace: &str) -> anyhow::Result<Box<dyn Operator>> {
        let from_page = self.console.commands();
        // Bounded like the console's own queue: what is not taken waits there, refused when full.
        let (forward, commands) = crossbeam::channel::bounded(32);
        let reset_done = ros_edge::reset_window::ResetDoneButton::start(namespace)?;
        // Its own thread: the reset window is open while the robot resets and nobody polls the operator.
        let router = Worker::spawn("console-commands", move |stop| {
            while !stopping(stop) {
                let Ok(command) = from_page.recv_timeout(std::time::Duration::from_millis(50)) else { continue };
                let command = match command {
                    ConsoleCommand::ResetDone => {
                        reset_done.press();
                        continue;
                    }
                    ConsoleCommand::Success => OperatorCommand::Success,
                    ConsoleCommand::Failure => OperatorCommand::Failure,
                    ConsoleCommand::Pause => OperatorCommand::Pause,
                    ConsoleCommand::Resume => OperatorCommand::Resume,
                    ConsoleCommand::Stop => OperatorCommand::Stop,
                };
                match forward.try_send(command) {
                    Ok(()) => {}
                    // Never wait here: a reset-done press may come next while nobody polls.
                    Err(crossbeam::channel::TrySendError::Full(dropped)) => tracing::warn!(?dropped, "32 console commands wait for the actor already: this one is dropped"),
                    Err(crossbeam::channel::TrySendError::Disconnected(_)) => return,
                }
            }
        })?;
        Ok(Box::new(WithConsole { other, commands, _router: router }))
    }
}

struct WithConsole {
    other: Box<dyn Operator>,
    commands: Receiver<OperatorCommand>,
    _router: Worker,
}

impl Operator for WithConsole {
    fn labels(&self) -> bool {
        true
    }
    fn poll(&mut self, observation: &[f64]) -> OperatorInput {
        let mut input = self.other.poll(observation);
        // As the keyboard reads its keys: everything given since the last
        // poll, the newest winning (clicks repeated while a step was taken
        // are one command, not labels for the episodes after it).
        let newest = self.commands.try_iter().last();
        if input.command.is_none() {
            input.command = newest;
        }
        input
    }
}

