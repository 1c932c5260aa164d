//! A minimal HTTP/1.1 client for JSON POSTs to an OpenAI-compatible server
//! (vLLM, SGLang, Ollama) on the robot's network: plain `http://` only, one
//! connection per request (`Connection: close`), a deadline for the whole
//! exchange, Content-Length or chunked bodies.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::source::RewardError;

/// The most an endpoint's answer may hold: a model's JSON answer is a few
/// kilobytes; a peer that sends more is cut off, not read without bound.
pub const MAX_ANSWER_BYTES: usize = 8 << 20;

#[derive(Debug)]
pub struct Endpoint {
    pub url: String,
    host: String,
    port: u16,
    path: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, RewardError> {
        let bad = |why: &str| RewardError::Invalid(format!("endpoint `{url}`: {why}"));
        let rest = url.strip_prefix("http://").ok_or_else(|| bad("only http:// is supported; put a TLS proxy in front for https"))?;
        let (authority, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad("the port is not a number"))?),
            None => (authority.to_string(), 80),
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(Endpoint { url: url.to_string(), host, port, path })
    }

    /// POSTs `body` (JSON) and returns the response body of a 2xx answer
    /// (at most `MAX_ANSWER_BYTES`, headers included: a peer cannot make us
    /// read without bound).
    pub fn post_json(&self, body: &[u8], bearer: Option<&str>, timeout: Duration) -> Result<Vec<u8>, RewardError> {
        let deadline = Instant::now() + timeout;
        let timed_out = || RewardError::Timeout { url: self.url.clone(), timeout_ms: timeout.as_millis() as u64 };
        let failed = |message: String| RewardError::Endpoint { url: self.url.clone(), message };
        let address = (self.host.as_str(), self.port).to_socket_addrs().map_err(|e| failed(format!("resolving {}: {e}", self.host)))?.next().ok_or_else(|| failed("no address".into()))?;
        let mut stream = TcpStream::connect_timeout(&address, timeout).map_err(|e| if e.kind() == std::io::ErrorKind::TimedOut { timed_out() } else { failed(format!("connecting: {e}")) })?;
        let mut request = format!("POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\nAccept: application/json\r\nConnection: close\r\nContent-Length: {}\r\n", self.path, self.host, self.port, body.len());
        if let Some(key) = bearer {
            request.push_str(&format!("Authorization: Bearer {key}\r\n"));
        }
        request.push_str("\r\n");
        let mut raw = Vec::new();
        let io = (|| -> std::io::Result<()> {
            stream.set_write_timeout(Some(timeout))?;
            stream.write_all(request.as_bytes())?;
            stream.write_all(body)?;
            let mut buffer = [0u8; 16 * 1024];
            loop {
                let left = deadline.checked_duration_since(Instant::now()).ok_or(std::io::ErrorKind::TimedOut)?;
                stream.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
                let n = stream.read(&mut buffer)?;
                if n == 0 {
                    return Ok(());
                }
                if raw.len() + n > MAX_ANSWER_BYTES {
                    return Err(std::io::Error::other(format!("the answer is larger than {} MiB; refused", MAX_ANSWER_BYTES >> 20)));
                }
                raw.extend_from_slice(&buffer[..n]);
            }
        })();
        match io {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => return Err(timed_out()),
            Err(e) => return Err(failed(format!("{e}"))),
        }
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| failed("the answer has no HTTP header".into()))?;
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let mut body = raw[split + 4..].to_vec();
        let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| failed(format!("bad status line: {}", head.lines().next().unwrap_or(""))))?;
        let header = |name: &str| head.lines().skip(1).find_map(|l| l.split_once(':').filter(|(k, _)| k.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_string()));
        if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            body = dechunk(&body).ok_or_else(|| failed("malformed chunked body".into()))?;
        } else if let Some(length) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
            if body.len() < length {
                return Err(failed(format!("body cut short: {} of {length} bytes", body.len())));
            }
            body.truncate(length);
        }
        if !(200..300).contains(&status) {
            let text = String::from_utf8_lossy(&body);
            return Err(failed(format!("HTTP {status}: {}", text.chars().take(300).collect::<String>())));
        }
        Ok(body)
    }
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_chunked_bodies_parse() {
        let e = super::Endpoint::parse("http://127.0.0.1:8000/v1/chat/completions").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.path.as_str()), ("127.0.0.1", 8000, "/v1/chat/completions"));
        assert!(super::Endpoint::parse("https://api.example.com/v1").unwrap_err().to_string().contains("only http://"));
        assert_eq!(super::dechunk(b"4\r\nWiki\r\n5;x=1\r\npedia\r\n0\r\n\r\n").unwrap(), b"Wikipedia");
        assert!(super::dechunk(b"9\r\nshort\r\n").is_none());
    }

    /// A peer that answers without end is cut off at the cap with a clear
    /// error, instead of filling memory.
    #[test]
    fn an_answer_larger_than_the_cap_is_refused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request);
            let _ = socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n");
            let chunk = vec![b'x'; 64 * 1024];
            // Twice the cap, then the server gives up (the client hung up).
            for _ in 0..(2 * MAX_ANSWER_BYTES / chunk.len()) {
                if socket.write_all(&chunk).is_err() {
                    break;
                }
            }
        });
        let endpoint = Endpoint::parse(&format!("http://127.0.0.1:{port}/v1/chat/completions")).unwrap();
        let err = endpoint.post_json(b"{}", None, Duration::from_secs(20)).unwrap_err().to_string();
        assert!(err.contains("larger than 8 MiB"), "{err}");
        server.join().unwrap();
    }
}
