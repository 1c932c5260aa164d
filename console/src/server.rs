//! The console's server: routes, the WebSocket feed, and the thread that
//! runs them.
//!
//! - `GET /`: the page;
//! - `GET /ws`: the feed, a JSON state every `FEED_EVERY` with the curve
//!   points the page has not had yet (all of them on connecting: a page
//!   that reconnects sees the current state);
//! - `GET /api/state`, `GET /api/curve?from=N`: the same as plain JSON;
//! - `GET /frame.png`: the policy's newest frames; `GET /reward_frame.png`:
//!   the reward camera's;
//! - `POST /api/command/{name}`: success, failure, pause, resume,
//!   reset_done, stop.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use std::future::IntoFuture;

use axum::{Json, Router};
use crossbeam::channel::{Receiver, Sender};
use rrl_types::{EpisodeSummary, Waiting};

use crate::curve::Curve;
use crate::frames::{encode, EncodedFrame};
use crate::{auth, ConsoleCommand, ConsoleError, ConsoleSettings, ConsoleView, TOKEN_VARIABLE};

/// How often pages get the state.
const FEED_EVERY: Duration = Duration::from_millis(200);
/// How often a new frame is taken from the actor and encoded (5 Hz: a
/// view for a person, not a video).
const FRAME_EVERY: Duration = Duration::from_millis(200);
/// Finished episodes waiting for the console's thread; beyond, the newest are dropped.
const EPISODE_QUEUE: usize = 4096;
/// Commands the caller has not taken yet; beyond, a command is refused
/// (503): a stuck caller must not make the console grow.
const COMMAND_QUEUE: usize = 32;

const PAGE: &str = include_str!("page.html");

struct Shared {
    view: ConsoleView,
    commands: Sender<ConsoleCommand>,
    episodes: Receiver<EpisodeSummary>,
    curve: Mutex<Curve>,
    /// The policy's frames, then the reward camera's.
    frames: [Mutex<Option<EncodedFrame>>; 2],
    pages: AtomicUsize,
}

const POLICY: usize = 0;
const REWARD: usize = 1;

impl Shared {
    /// Episodes finished since the last look go onto the curve.
    fn take_episodes(&self) {
        let mut curve = self.curve.lock().unwrap_or_else(PoisonError::into_inner);
        while let Ok(episode) = self.episodes.try_recv() {
            curve.push(episode);
        }
    }

    fn take_frames(&self) {
        for (which, tap) in [(POLICY, &self.view.live.frames), (REWARD, &self.view.live.reward_frames)] {
            if let Some(frames) = tap.take() {
                let sequence = self.frames[which].lock().unwrap_or_else(PoisonError::into_inner).as_ref().map_or(1, |f| f.sequence + 1);
                let encoded = encode(&frames, sequence);
                tap.give_back(frames);
                if let Some(encoded) = encoded {
                    *self.frames[which].lock().unwrap_or_else(PoisonError::into_inner) = Some(encoded);
                }
            }
        }
    }

    fn frame_state(&self, which: usize) -> serde_json::Value {
        let frame = self.frames[which].lock().unwrap_or_else(PoisonError::into_inner);
        frame.as_ref().map_or(serde_json::Value::Null, |f| serde_json::json!({"sequence": f.sequence, "step": f.step, "width": f.width, "height": f.height, "cameras": f.cameras}))
    }

    fn state(&self) -> serde_json::Value {
        let seen = self.view.live.snapshot();
        let curve = self.curve.lock().unwrap_or_else(PoisonError::into_inner);
        let (_, points) = curve.since(usize::MAX);
        serde_json::json!({
            "title": self.view.title,
            "episode": seen.episode,
            "step": seen.step,
            "episode_return": seen.episode_return,
            "human_steps": seen.human_steps,
            "episodes": seen.episodes,
            "successes": seen.successes,
            "intervention_rate": curve.intervention_rate(),
            "paused": seen.paused,
            "waiting_for": (seen.waiting != Waiting::Nothing).then(|| seen.waiting.describe()),
            "gate": {
                "clipped": seen.gate.clipped,
                "held": seen.gate.held,
                "reflexes": seen.gate.reflexes,
                "last": seen.gate.last.map(|(verdict, detail)| safety::describe_tick(verdict, detail)),
            },
            "frame": self.frame_state(POLICY),
            "reward_frame": self.frame_state(REWARD),
            "curve_points": points,
            "pages": self.pages.load(Ordering::Relaxed),
        })
    }

    /// The state, and the curve points numbered `from` on.
    fn feed(&self, from: usize) -> (serde_json::Value, usize) {
        let mut state = self.state();
        let curve = self.curve.lock().unwrap_or_else(PoisonError::into_inner);
        let (points, next) = curve.since(from);
        state["points"] = serde_json::json!(points);
        state["points_from"] = serde_json::json!(next - points.len());
        (state, next)
    }
}

/// A running console; stops (and closes its pages) when dropped.
pub struct Console {
    url: String,
    address: SocketAddr,
    shared: Arc<Shared>,
    commands: Receiver<ConsoleCommand>,
    episodes: Sender<EpisodeSummary>,
    shutdown: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Console {
    /// Listens on `settings.address` (port 0: any free port) and serves
    /// `view` from a thread of its own.
    pub fn start(settings: ConsoleSettings, view: ConsoleView) -> Result<Console, ConsoleError> {
        if settings.token.is_none() && !auth::serves_without_token(&settings.address) {
            return Err(ConsoleError::TokenRequired { address: settings.address, token_variable: TOKEN_VARIABLE });
        }
        if let Some(token) = &settings.token {
            if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b)) {
                return Err(ConsoleError::BadToken { token_variable: TOKEN_VARIABLE });
            }
        }
        let listener = std::net::TcpListener::bind(settings.address).map_err(|source| ConsoleError::Bind { address: settings.address, source })?;
        let address = listener.local_addr().map_err(|source| ConsoleError::Bind { address: settings.address, source })?;
        listener.set_nonblocking(true).map_err(|source| ConsoleError::Bind { address, source })?;
        let (command_tx, commands) = crossbeam::channel::bounded(COMMAND_QUEUE);
        let (episodes, episode_rx) = crossbeam::channel::bounded(EPISODE_QUEUE);
        view.live.frames.watch();
        view.live.reward_frames.watch();
        let shared = Arc::new(Shared { view, commands: command_tx, episodes: episode_rx, curve: Mutex::default(), frames: Default::default(), pages: AtomicUsize::new(0) });
        let (shutdown, stopping) = tokio::sync::watch::channel(false);
        let token: Option<Arc<str>> = settings.token.map(Arc::from);
        let app = Router::new()
            .route("/", get(|| async { Html(PAGE) }))
            .route("/ws", get(feed_socket))
            .route("/api/state", get(|State(s): State<Arc<Shared>>| async move { Json(s.state()) }))
            .route("/api/curve", get(curve_points))
            .route("/frame.png", get(|State(s): State<Arc<Shared>>| async move { frame_png(&s, POLICY) }))
            .route("/reward_frame.png", get(|State(s): State<Arc<Shared>>| async move { frame_png(&s, REWARD) }))
            .route("/api/command/{name}", post(command))
            .with_state(shared.clone())
            .layer(axum::middleware::from_fn_with_state(token, auth::guard));
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("console".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(e) => return tracing::error!("the console's runtime did not start: {e}"),
                };
                runtime.block_on(serve(listener, app, worker, stopping));
            })
            .map_err(ConsoleError::Thread)?;
        let url = format!("http://{address}/");
        Ok(Console { url, address, shared, commands, episodes, shutdown: Some(shutdown), thread: Some(thread) })
    }

    /// The page's address (without the token).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The operator's commands, in the order given.
    pub fn commands(&self) -> Receiver<ConsoleCommand> {
        self.commands.clone()
    }

    /// An episode finished: onto the curves. Never blocks.
    pub fn episode(&self, episode: EpisodeSummary) {
        if self.episodes.try_send(episode).is_err() {
            tracing::debug!("the console is behind: an episode is left off its curve");
        }
    }

    /// Earlier episodes (a resumed run's) onto the curves, before any page opens.
    pub fn preload(&self, episodes: impl IntoIterator<Item = EpisodeSummary>) {
        let mut curve = self.shared.curve.lock().unwrap_or_else(PoisonError::into_inner);
        for episode in episodes {
            curve.push(episode);
        }
    }

    /// A sender of finished episodes for another thread (as `episode`).
    pub fn episode_sender(&self) -> impl Fn(EpisodeSummary) + Send + 'static {
        let episodes = self.episodes.clone();
        move |episode| {
            let _ = episodes.try_send(episode);
        }
    }

    /// Frames encoded for the page so far.
    pub fn frames_encoded(&self) -> u64 {
        self.shared.frames[POLICY].lock().unwrap_or_else(PoisonError::into_inner).as_ref().map_or(0, |f| f.sequence)
    }

    /// Pages open now.
    pub fn pages(&self) -> usize {
        self.shared.pages.load(Ordering::Relaxed)
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(true);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(listener: std::net::TcpListener, app: Router, shared: Arc<Shared>, stopping: tokio::sync::watch::Receiver<bool>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => return tracing::error!("the console cannot listen: {e}"),
    };
    let mut until_stop = stopping.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = until_stop.wait_for(|stop| *stop).await;
    });
    // Frames and episodes are taken in whether or not a page is open, so
    // that the actor's tap never fills for nobody.
    tokio::spawn(async move {
        let mut frames = tokio::time::interval(FRAME_EVERY);
        loop {
            frames.tick().await;
            shared.take_episodes();
            // PNG encoding off the runtime's one thread: pages and commands never wait for it.
            let encoder = shared.clone();
            let _ = tokio::task::spawn_blocking(move || encoder.take_frames()).await;
        }
    });
    // A connection that lingers after the stop gets a short grace, then the
    // runtime (and every page's feed with it) is dropped.
    let mut stop = stopping;
    let grace = async move {
        let _ = stop.wait_for(|stop| *stop).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    tokio::select! {
        served = server.into_future() => if let Err(e) = served {
            tracing::warn!("the console stopped serving: {e}");
        },
        () = grace => {}
    }
}

#[derive(serde::Deserialize)]
struct From {
    from: Option<usize>,
}

async fn curve_points(State(shared): State<Arc<Shared>>, Query(query): Query<From>) -> Json<serde_json::Value> {
    shared.take_episodes();
    let curve = shared.curve.lock().unwrap_or_else(PoisonError::into_inner);
    let (points, next) = curve.since(query.from.unwrap_or(0));
    Json(serde_json::json!({"points": points, "next": next}))
}

fn frame_png(shared: &Shared, which: usize) -> Response {
    match shared.frames[which].lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
        Some(frame) => ([(header::CONTENT_TYPE, "image/png"), (header::CACHE_CONTROL, "no-store")], frame.png.clone()).into_response(),
        None if which == POLICY => (StatusCode::NOT_FOUND, "no frame yet: the policy sees no camera, or none has come\n").into_response(),
        None => (StatusCode::NOT_FOUND, "no reward camera frame yet: the reward scores no camera, or none has come\n").into_response(),
    }
}

async fn command(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    match ConsoleCommand::from_name(&name) {
        Some(command) => {
            if shared.commands.try_send(command).is_err() {
                return (StatusCode::SERVICE_UNAVAILABLE, "practice is not taking commands now; try again\n").into_response();
            }
            tracing::info!(?command, "the console's operator");
            Json(serde_json::json!({"command": name})).into_response()
        }
        None => (StatusCode::BAD_REQUEST, "unknown command: use success, failure, pause, resume, reset_done or stop\n").into_response(),
    }
}

async fn feed_socket(State(shared): State<Arc<Shared>>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| feed(socket, shared))
}

/// One page's feed: the whole curve first, then what is new, until the
/// page goes (or the console stops, which drops the runtime and this task).
async fn feed(mut socket: WebSocket, shared: Arc<Shared>) {
    shared.pages.fetch_add(1, Ordering::Relaxed);
    let mut next = 0;
    let mut ticks = tokio::time::interval(FEED_EVERY);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                shared.take_episodes();
                let (state, after) = shared.feed(next);
                next = after;
                if socket.send(Message::Text(state.to_string().into())).await.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    shared.pages.fetch_sub(1, Ordering::Relaxed);
}
