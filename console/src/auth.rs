//! The token check: a console on any address but loopback's own
//! (127.0.0.1, ::1) serves only requests that carry its token, as
//! `Authorization: Bearer <token>` or, for the page's own links and its
//! WebSocket (which a browser cannot give headers), `?token=<token>`.

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

/// Refuses (401, nothing done) a request without the right token.
pub async fn require_token(State(token): State<Option<std::sync::Arc<str>>>, request: Request, next: Next) -> Response {
    if let Some(token) = token {
        if !offered_token(&request).is_some_and(|offered| same(offered.as_bytes(), token.as_bytes())) {
            return (StatusCode::UNAUTHORIZED, "the console's token is missing or wrong\n").into_response();
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
    }
}
