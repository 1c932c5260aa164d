//! Who may use the console.
//!
//! - The token: a console on any address but loopback's own (127.0.0.1,
//!   ::1) serves only requests that carry its token, as `Authorization:
//!   Bearer <token>` or, for the page's own links and its WebSocket (which
//!   a browser cannot give headers), `?token=<token>`.
//! - Other web pages: a page from elsewhere, open in the operator's
//!   browser, must not send commands (a cross-site POST needs no
//!   permission) nor read the state. A request whose `Origin` is not this
//!   console's own host is refused, and a console without a token answers
//!   only to a loopback host name (no DNS rebinding onto it).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Whether `address` may serve without a token: 127.0.0.1 or ::1 only (a
/// wider loopback address, like any other, may be reached by a
/// forwarded port, so it needs one too).
pub fn serves_without_token(address: &SocketAddr) -> bool {
    match address.ip() {
        IpAddr::V4(ip) => ip == std::net::Ipv4Addr::LOCALHOST,
        IpAddr::V6(ip) => ip == std::net::Ipv6Addr::LOCALHOST,
    }
}

/// Compares without stopping at the first differing byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn offered_token(request: &Request) -> Option<&str> {
    if let Some(value) = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return value.strip_prefix("Bearer ");
    }
    request.uri().query()?.split('&').find_map(|pair| pair.strip_prefix("token="))
}

/// Whether `host` (a `Host` header: name or address, and port) names this
/// machine's loopback.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    matches!(name, "localhost" | "127.0.0.1" | "[::1]")
}

/// A request from another site's page: its `Origin` names another host.
fn from_another_site(request: &Request) -> bool {
    let Some(origin) = request.headers().get(header::ORIGIN) else { return false };
    let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let origin = origin.to_str().unwrap_or("");
    let origin_host = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")).unwrap_or("");
    origin_host != host
}

/// Refuses a request without the right token (401) and one from another
/// site or, without a token, to a non-loopback host name (403); nothing
/// refused reaches the console.
pub async fn guard(State(token): State<Option<std::sync::Arc<str>>>, request: Request, next: Next) -> Response {
    if from_another_site(&request) {
        return (StatusCode::FORBIDDEN, "the console answers its own page only\n").into_response();
    }
    match token {
        Some(token) => {
            if !offered_token(&request).is_some_and(|offered| same(offered.as_bytes(), token.as_bytes())) {
                return (StatusCode::UNAUTHORIZED, "the console's token is missing or wrong\n").into_response();
            }
        }
        None => {
            let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
            if !is_loopback_host(host) {
                return (StatusCode::FORBIDDEN, "a console without a token answers to 127.0.0.1, [::1] or localhost only\n").into_response();
            }
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopbacks_own_address_serves_without_a_token() {
        assert!(serves_without_token(&"127.0.0.1:8765".parse().unwrap()));
        assert!(serves_without_token(&"[::1]:8765".parse().unwrap()));
        for other in ["127.0.0.2:8765", "0.0.0.0:8765", "192.168.1.5:80", "[::]:8765"] {
            assert!(!serves_without_token(&other.parse().unwrap()), "{other}");
        }
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"abc", b"ab"));
        for host in ["localhost:8765", "127.0.0.1:8765", "[::1]:8765", "localhost"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["evil.example:8765", "127.0.0.1.evil.example", "", "robot-pc:8765"] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
