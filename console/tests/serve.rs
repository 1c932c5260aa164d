//! The console over real HTTP and WebSocket connections on loopback: what
//! pages get, commands in, the token's refusal, and pages that come and go.

use std::sync::Arc;
use std::time::{Duration, Instant};

use console::{Console, ConsoleCommand, ConsoleSettings, ConsoleView};
use rrl_types::{EpisodeSummary, FrameLayout, LiveStatus, TickVerdict, Waiting};

fn start(address: &str, token: Option<&str>) -> (Console, Arc<LiveStatus>) {
    let live = Arc::new(LiveStatus::default());
    let settings = ConsoleSettings { address: address.parse().unwrap(), token: token.map(String::from) };
    let console = Console::start(settings, ConsoleView { title: "PandaReach".into(), live: live.clone() }).unwrap();
    (console, live)
}

fn episode(number: u64, success: bool) -> EpisodeSummary {
    EpisodeSummary { episode: number, steps: 20, total_steps: 20 * (number + 1), episode_return: number as f64 * 0.5, success: Some(success), interventions: 2 }
}

fn get_json(url: &str) -> serde_json::Value {
    serde_json::from_str(&ureq::get(url).call().unwrap().into_body().read_to_string().unwrap()).unwrap()
}

/// Waits (bounded) until `ready` holds of the state.
fn state_when(console: &Console, ready: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let state = get_json(&format!("{}api/state", console.url()));
        if ready(&state) {
            return state;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the state never got there: {state}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

type Socket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

fn open_page(console: &Console) -> Socket {
    tungstenite::connect(format!("ws://{}/ws", console.address())).unwrap().0
}

fn next_state(socket: &mut Socket) -> serde_json::Value {
    loop {
        if let tungstenite::Message::Text(text) = socket.read().unwrap() {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

#[test]
fn pages_see_the_session_and_its_frames_and_send_commands() {
    let (console, live) = start("127.0.0.1:0", None);
    live.episode_started(2);
    live.stepped(0.25, true);
    live.wait_for(Waiting::SceneReset);
    live.gate_ticked(TickVerdict::Held, safety::HoldReason::StaleState as u16, true);
    for i in 0..3 {
        console.episode(episode(i, i == 1));
    }
    // A red 2x2 camera beside a blue one.
    let mut pixels = [255u8, 0, 0].repeat(4);
    pixels.extend([0u8, 0, 255].repeat(4));
    live.frames.offer(FrameLayout { cameras: 2, height: 2, width: 2 }, &pixels, 41);
    let state = state_when(&console, |s| s["curve_points"] == 3 && !s["frame"].is_null());
    assert_eq!((state["episode"].as_u64(), state["step"].as_u64(), state["episode_return"].as_f64()), (Some(2), Some(1), Some(0.25)), "{state}");
    assert_eq!(state["gate"]["held"], 1);
    assert_eq!(state["gate"]["last"], "held (StaleState)");
    assert!(state["waiting_for"].as_str().unwrap().starts_with("the scene reset"), "{state}");
    assert_eq!(state["intervention_rate"].as_f64(), Some(0.1), "{state}");
    assert_eq!((state["frame"]["width"].as_u64(), state["frame"]["step"].as_u64()), (Some(4), Some(41)));
    // The frame as the page loads it: both cameras, side by side.
    let png = ureq::get(&format!("{}frame.png", console.url())).call().unwrap().into_body().read_to_vec().unwrap();
    let mut reader = png::Decoder::new(std::io::Cursor::new(png)).read_info().unwrap();
    let mut image = vec![0; reader.output_buffer_size()];
    reader.next_frame(&mut image).unwrap();
    assert_eq!(&image[..12], &[255, 0, 0, 255, 0, 0, 0, 0, 255, 0, 0, 255]);
    // The reward camera's frame, beside the policy's.
    assert!(matches!(ureq::get(&format!("{}reward_frame.png", console.url())).call(), Err(ureq::Error::StatusCode(404))), "no reward frame yet");
    live.reward_frames.offer(FrameLayout { cameras: 1, height: 3, width: 5 }, &[9; 45], 40);
    let state = state_when(&console, |s| !s["reward_frame"].is_null());
    assert_eq!((state["reward_frame"]["width"].as_u64(), state["reward_frame"]["step"].as_u64()), (Some(5), Some(40)), "{state}");
    let png = ureq::get(&format!("{}reward_frame.png", console.url())).call().unwrap().into_body().read_to_vec().unwrap();
    assert_eq!(png::Decoder::new(std::io::Cursor::new(png)).read_info().unwrap().info().height, 3);

    // Two pages at once; each gets the whole curve first.
    let (mut first, mut second) = (open_page(&console), open_page(&console));
    for page in [&mut first, &mut second] {
        let state = next_state(page);
        assert_eq!((state["points_from"].as_u64(), state["points"].as_array().unwrap().len()), (Some(0), 3), "{state}");
        assert_eq!(state["points"][2]["success_rate"].as_f64(), Some(1.0 / 3.0));
    }
    assert_eq!(state_when(&console, |s| s["pages"] == 2)["pages"], 2);
    // Later states carry only what is new.
    console.episode(episode(3, true));
    let newer = loop {
        let state = next_state(&mut first);
        if !state["points"].as_array().unwrap().is_empty() {
            break state;
        }
    };
    assert_eq!((newer["points_from"].as_u64(), newer["points"][0]["episode"].as_u64()), (Some(3), Some(3)), "{newer}");
    // A page that reconnects sees the current state: all four episodes.
    first.close(None).unwrap();
    drop(first);
    let mut again = open_page(&console);
    let reconnected = next_state(&mut again);
    assert_eq!((reconnected["points"].as_array().unwrap().len(), reconnected["points_from"].as_u64()), (4, Some(0)));
    drop(second);

    for name in ["success", "failure", "pause", "resume", "reset_done", "stop"] {
        ureq::post(&format!("{}api/command/{name}", console.url())).send_empty().unwrap();
    }
    let received: Vec<ConsoleCommand> = console.commands().try_iter().collect();
    use ConsoleCommand::*;
    assert_eq!(received, vec![Success, Failure, Pause, Resume, ResetDone, Stop]);
    let unknown = ureq::post(&format!("{}api/command/dance", console.url())).send_empty();
    assert!(matches!(unknown, Err(ureq::Error::StatusCode(400))), "{unknown:?}");
    // The page is served, whole, from here.
    let page = ureq::get(console.url()).call().unwrap().into_body().read_to_string().unwrap();
    assert!(page.contains("window.rrlConsole") && !page.contains("http://") && !page.contains("https://"), "the page fetches nothing elsewhere");

    // Another site's page in the operator's browser may neither command nor
    // read; nor may a rebound host name reach a console without a token.
    let url = format!("{}api/command/stop", console.url());
    let cross_site = ureq::post(&url).header("Origin", "http://evil.example").send_empty();
    assert!(matches!(cross_site, Err(ureq::Error::StatusCode(403))), "{cross_site:?}");
    let rebound = ureq::get(&format!("{}api/state", console.url())).header("Host", &format!("evil.example:{}", console.address().port())).call();
    assert!(matches!(rebound, Err(ureq::Error::StatusCode(403))), "{rebound:?}");
    let own_page = ureq::post(&url).header("Origin", &format!("http://{}", console.address())).send_empty();
    assert!(own_page.is_ok(), "the page's own requests carry its origin: {own_page:?}");
    assert_eq!(console.commands().try_iter().collect::<Vec<_>>(), vec![Stop], "only the page's own stop");
    // Commands nobody takes are bounded: the console refuses more, it does not grow.
    let answers: Vec<u16> = (0..40).map(|_| match ureq::post(&format!("{}api/command/pause", console.url())).send_empty() {
        Ok(r) => r.status().as_u16(),
        Err(ureq::Error::StatusCode(code)) => code,
        Err(e) => panic!("{e}"),
    }).collect();
    assert_eq!((answers.iter().filter(|&&c| c == 200).count(), answers.iter().filter(|&&c| c == 503).count()), (32, 8), "{answers:?}");

    // A console closes with a page still open, promptly.
    let (closed, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(console);
        let _ = closed.send(());
    });
    done.recv_timeout(Duration::from_secs(20)).expect("the console did not close with a page open");
    // What was sent before the close may still be read; then the feed ends.
    let ended = (0..10_000).find_map(|_| match again.read() {
        Ok(tungstenite::Message::Text(_)) => None,
        other => Some(other),
    });
    assert!(matches!(ended, Some(Err(_) | Ok(tungstenite::Message::Close(_)))), "the open page's feed ends: {ended:?}");
}

#[test]
fn a_console_beyond_loopback_refuses_requests_without_its_token() {
    // 127.0.0.2 stands for any address but 127.0.0.1 (tests stay on loopback).
    let refused = Console::start(ConsoleSettings { address: "127.0.0.2:0".parse().unwrap(), token: None }, ConsoleView { title: "t".into(), live: Arc::default() });
    assert!(matches!(refused, Err(console::ConsoleError::TokenRequired { .. })), "no token, no console");
    let short = Console::start(ConsoleSettings { address: "127.0.0.2:0".parse().unwrap(), token: Some("short".into()) }, ConsoleView { title: "t".into(), live: Arc::default() });
    assert!(matches!(short, Err(console::ConsoleError::BadToken { .. })));

    let token = "s3cret-token-of-the-test-0123";
    let (console, live) = start("127.0.0.2:0", Some(token));
    let base = format!("http://{}", console.address());
    for (what, attempt) in [
        ("no token", ureq::post(&format!("{base}/api/command/failure")).send_empty()),
        ("wrong token", ureq::post(&format!("{base}/api/command/failure?token=s3cret-token-of-the-test-0124")).send_empty()),
        ("wrong bearer", ureq::post(&format!("{base}/api/command/stop")).header("Authorization", "Bearer nope-nope-nope-nope").send_empty()),
        ("page without token", ureq::get(&format!("{base}/")).call().map(|_| unreachable!())),
        ("state without token", ureq::get(&format!("{base}/api/state")).call().map(|_| unreachable!())),
    ] {
        assert!(matches!(attempt, Err(ureq::Error::StatusCode(401))), "{what}: {attempt:?}");
    }
    let socket = tungstenite::connect(format!("ws://{}/ws", console.address()));
    assert!(matches!(socket, Err(tungstenite::Error::Http(ref answer)) if answer.status() == 401), "a page's feed without the token");
    // Nothing changed: no command reached practice.
    assert_eq!(console.commands().try_iter().count(), 0);
    assert_eq!(live.snapshot().episode, 0);
    // With the token, as a header or in the page's address.
    ureq::post(&format!("{base}/api/command/failure")).header("Authorization", &format!("Bearer {token}")).send_empty().unwrap();
    ureq::get(&format!("{base}/?token={token}")).call().unwrap();
    let (mut page, _) = tungstenite::connect(format!("ws://{}/ws?token={token}", console.address())).unwrap();
    assert!(page.read().unwrap().is_text());
    assert_eq!(console.commands().try_iter().collect::<Vec<_>>(), vec![ConsoleCommand::Failure]);
}
