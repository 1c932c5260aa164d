//! JSON POSTs to an OpenAI-compatible server (vLLM, SGLang, Ollama, or a
//! hosted API over https) through `ureq`, a well-kept blocking HTTP client
//! with rustls: a deadline for the whole exchange, no redirects (the API
//! key must not follow one to another host), no proxies from the
//! environment, and an answer read to at most `MAX_ANSWER_BYTES`. An
//! https endpoint is checked against the system's root certificates
//! (`rustls-platform-verifier`), or against the roots of a PEM file the
//! launch file names (a private certificate authority).

use std::time::Duration;

use crate::source::RewardError;

/// The most an endpoint's answer may hold: a model's JSON answer is a few
/// kilobytes; a peer that sends more is cut off, not read without bound.
pub const MAX_ANSWER_BYTES: usize = 8 << 20;

#[derive(Debug)]
pub struct Endpoint {
    pub url: String,
    tls: ureq::tls::TlsConfig,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, RewardError> {
        let bad = |why: &str| RewardError::Invalid(format!("endpoint `{url}`: {why}"));
        let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")).ok_or_else(|| bad("must start with http:// or https://"))?;
        let authority = rest.split('/').next().unwrap_or_default();
        let host = authority.rsplit_once(':').map_or(authority, |(host, port)| if port.parse::<u16>().is_ok() { host } else { authority });
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let _: ureq::http::Uri = url.parse().map_err(|e| bad(&format!("{e}")))?;
        let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier).build();
        Ok(Endpoint { url: url.to_string(), tls })
    }

    /// Checks the endpoint's certificate against the roots in the PEM file
    /// `roots` instead of the system's (none: the system's).
    pub fn trusting(self, roots: Option<&std::path::Path>) -> Result<Endpoint, RewardError> {
        let Some(path) = roots else { return Ok(self) };
        let bad = |why: String| RewardError::Invalid(format!("root certificates {}: {why}", path.display()));
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let mut certificates = Vec::new();
        for item in ureq::tls::parse_pem(&pem) {
            if let ureq::tls::PemItem::Certificate(certificate) = item.map_err(|e| bad(e.to_string()))? {
                certificates.push(certificate);
            }
        }
        if certificates.is_empty() {
            return Err(bad("no PEM certificate in the file".into()));
        }
        let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::new_with_certs(&certificates)).build();
        Ok(Endpoint { tls, ..self })
    }

    /// POSTs `body` (JSON) and returns the body of a 2xx answer (at most
    /// `MAX_ANSWER_BYTES`: a peer cannot make us read without bound).
    /// `bearer` goes in the Authorization header and nowhere else.
    pub fn post_json(&self, body: &[u8], bearer: Option<&str>, timeout: Duration) -> Result<Vec<u8>, RewardError> {
        let timed_out = || RewardError::Timeout { url: self.url.clone(), timeout_ms: timeout.as_millis() as u64 };
        let failed = |message: String| RewardError::Endpoint { url: self.url.clone(), message };
        let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false).max_redirects(0).proxy(None).tls_config(self.tls.clone()).build().into();
        let mut request = agent.post(&self.url).header("Accept", "application/json").content_type("application/json");
        if let Some(key) = bearer {
            request = request.header("Authorization", &format!("Bearer {key}"));
        }
        let describe = |e: ureq::Error| match e {
            ureq::Error::Timeout(_) => timed_out(),
            ureq::Error::Io(io) if matches!(io.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => timed_out(),
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => failed(format!("connecting: {io}")),
            ureq::Error::BodyExceedsLimit(_) => failed(format!("the answer is larger than {} MiB; refused", MAX_ANSWER_BYTES >> 20)),
            other => failed(other.to_string()),
        };
        let mut response = request.send(body).map_err(describe)?;
        let status = response.status().as_u16();
        let answer = response.body_mut().with_config().limit(MAX_ANSWER_BYTES as u64).read_to_vec().map_err(describe)?;
        if !(200..300).contains(&status) {
            let text = String::from_utf8_lossy(&answer);
            return Err(failed(format!("HTTP {status}: {}", text.chars().take(300).collect::<String>())));
        }
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::{Read, Write};

    #[test]
    fn urls_parse() {
        assert!(Endpoint::parse("http://127.0.0.1:8000/v1/chat/completions").is_ok());
        assert!(Endpoint::parse("https://api.example.com/v1/chat/completions").is_ok());
        assert!(Endpoint::parse("ftp://example.com/v1").unwrap_err().to_string().contains("http:// or https://"));
        assert!(Endpoint::parse("http:///v1").unwrap_err().to_string().contains("no host"));
    }

    /// A chunked answer (as vLLM streams its JSON) is read whole.
    #[test]
    fn a_chunked_answer_is_read_whole() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request);
            let _ = socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n: 1\r\n1\r\n}\r\n0\r\n\r\n");
        });
        let endpoint = Endpoint::parse(&format!("http://127.0.0.1:{port}/v1/chat/completions")).unwrap();
        assert_eq!(endpoint.post_json(b"{}", None, Duration::from_secs(20)).unwrap(), b"{\"a\": 1}");
        server.join().unwrap();
    }

    /// A peer that answers without end is cut off at the cap with a clear
    /// error, instead of filling memory.
    /// Fault matrix: oversized HTTP body | a local server streams 16 MiB as the answer | the client stops reading at 8 MiB | an error naming the 8 MiB cap
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
