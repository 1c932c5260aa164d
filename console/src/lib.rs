//! The operator's console: one page in a browser beside the robot that
//! shows what practice sees and does (the policy's camera frames, the
//! episode, step, return, successes, interventions, the safety gate's
//! verdicts, the success-rate and return curves, and what practice waits
//! for) and sends the operator's commands (success, failure, pause,
//! resume, reset done, stop).
//!
//! Owns: the HTTP and WebSocket server (axum, on a tokio runtime of its
//! own thread), the page (one file, no build step, nothing fetched from
//! elsewhere) and the token check.
//!
//! Must never: touch the robot or the control loop, or make the actor
//! wait. It reads the session's lock-free `LiveStatus` and frame tap, and
//! hands commands over a channel that the caller routes along the same
//! paths as the keyboard's.

mod auth;
mod curve;
mod frames;
mod server;

use std::net::SocketAddr;
use std::sync::Arc;

pub use curve::CurvePoint;
pub use server::Console;

/// What the operator asks for from the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleCommand {
    Success,
    Failure,
    Pause,
    Resume,
    /// The scene is put back: the human reset window may close.
    ResetDone,
    Stop,
}

impl ConsoleCommand {
    /// As the page (and `POST /api/command/{name}`) names it.
    pub fn from_name(name: &str) -> Option<ConsoleCommand> {
        Some(match name {
            "success" => ConsoleCommand::Success,
            "failure" => ConsoleCommand::Failure,
            "pause" => ConsoleCommand::Pause,
            "resume" => ConsoleCommand::Resume,
            "reset_done" => ConsoleCommand::ResetDone,
            "stop" => ConsoleCommand::Stop,
            _ => return None,
        })
    }
}

/// Where the console listens and who may use it.
#[derive(Clone)]
pub struct ConsoleSettings {
    pub address: SocketAddr,
    /// Required of every request when set; a console on any address but
    /// 127.0.0.1 or ::1 refuses to start without one.
    pub token: Option<String>,
}

/// The token never reaches a log: it is shown as set or not.
impl std::fmt::Debug for ConsoleSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleSettings").field("address", &self.address).field("token", &self.token.as_ref().map(|_| "<set>")).finish()
    }
}

/// What the console shows: the session's live status (with its frame
/// tap) and a title (the task, the robot).
#[derive(Debug, Clone)]
pub struct ConsoleView {
    pub title: String,
    pub live: Arc<rrl_types::LiveStatus>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("the console on {address} needs a token (set {token_variable}): only 127.0.0.1 and ::1 may serve without one")]
    TokenRequired { address: SocketAddr, token_variable: &'static str },
    #[error("the console's token ({token_variable}) must be at least 16 characters of letters, digits, '-', '_', '.' or '~'")]
    BadToken { token_variable: &'static str },
    #[error("the console cannot listen on {address}: {source}")]
    Bind { address: SocketAddr, source: std::io::Error },
    #[error("starting the console's thread: {0}")]
    Thread(std::io::Error),
}

/// The environment variable that holds a console's token.
pub const TOKEN_VARIABLE: &str = "RRL_CONSOLE_TOKEN";
