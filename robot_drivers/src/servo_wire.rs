//! The serial side both servo protocols share: a framing (how a protocol
//! finds packets in a byte stream), a link that sends an instruction and
//! reads answers until a timeout, and the retry policy for lost or garbled
//! answers. The protocol modules own their packet layouts and their errors;
//! the device emulators use the same framing to read what a bus sends.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serialport::SerialPort;

/// What a decode error means for the bytes received so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resync {
    /// The packet has not all arrived yet.
    NeedMore,
    /// No header anywhere: the bytes before `offset` are noise.
    Noise { offset: usize },
    /// A whole packet failed its check or declared an impossible length;
    /// `skip` bytes drop its header, so the search goes on past it.
    Corrupt { skip: usize },
}

/// A protocol's packet framing.
pub(crate) trait Framing {
    type Packet;
    type DecodeError;
    /// The first packet in `buffer` and how many bytes it (and any noise
    /// before it) used.
    fn decode(buffer: &[u8]) -> Result<(Self::Packet, usize), Self::DecodeError>;
    fn resync(error: &Self::DecodeError) -> Resync;
}

/// A failure on the link, before the protocol looks at what came back.
#[derive(Debug)]
pub(crate) enum WireError<D> {
    /// Nothing decodable within the timeout; `received` bytes came.
    Timeout { received: usize },
    Corrupt(D),
    Io { operation: &'static str, source: std::io::Error },
}

/// One serial port to a chain of servos.
pub(crate) struct Link {
    port: Box<dyn SerialPort>,
    name: String,
    timeout: Duration,
    retries: u32,
    buffer: Vec<u8>,
}

impl Link {
    pub(crate) fn new(port: Box<dyn SerialPort>, name: &str, timeout: Duration, retries: u32) -> Link {
        Link { port, name: name.to_string(), timeout, retries, buffer: Vec::with_capacity(256) }
    }

    pub(crate) fn open(path: &str, baud: u32, timeout: Duration, retries: u32) -> Result<Link, crate::serial::SerialError> {
        Ok(Link::new(crate::serial::open(path, baud, timeout)?, path, timeout, retries))
    }

    /// The port, as errors name it.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn timeout_ms(&self) -> u64 {
        self.timeout.as_millis() as u64
    }

    /// How many times a lost or garbled exchange is asked again.
    pub(crate) fn retries(&self) -> u32 {
        self.retries
    }

    pub(crate) fn send<D>(&mut self, packet: &[u8]) -> Result<(), WireError<D>> {
        // Stale bytes from an earlier, timed-out exchange must not be taken for this answer.
        let _ = self.port.clear(serialport::ClearBuffer::Input);
        self.buffer.clear();
        self.port.write_all(packet).map_err(|source| WireError::Io { operation: "write", source })
    }

    /// Reads one packet, waiting up to the timeout; noise before it is skipped.
    pub(crate) fn receive<F: Framing>(&mut self) -> Result<F::Packet, WireError<F::DecodeError>> {
        let deadline = Instant::now() + self.timeout;
        let mut chunk = [0u8; 128];
        loop {
            match F::decode(&self.buffer) {
                Ok((packet, used)) => {
                    self.buffer.drain(..used);
                    return Ok(packet);
                }
                Err(error) => match F::resync(&error) {
                    Resync::NeedMore | Resync::Noise { .. } => {}
                    Resync::Corrupt { .. } => {
                        self.buffer.clear();
                        return Err(WireError::Corrupt(error));
                    }
                },
            }
            if Instant::now() >= deadline {
                return Err(WireError::Timeout { received: self.buffer.len() });
            }
            match self.port.read(&mut chunk) {
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(source) => return Err(WireError::Io { operation: "read", source }),
            }
        }
    }
}

/// A protocol error as the retry policy sees it.
pub(crate) trait Transient {
    /// A lost (timed out) or garbled answer: worth asking again.
    fn is_transient(&self) -> bool;
    /// The error to report after `attempts` tries (a timeout counts them).
    fn after_attempts(self, attempts: u32) -> Self;
}

/// Runs `exchange` again while it fails transiently, `retries` times at
/// most; any other failure ends it at once.
pub(crate) fn retrying<T, E: Transient>(retries: u32, mut exchange: impl FnMut() -> Result<T, E>) -> Result<T, E> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        match exchange() {
            Err(e) if e.is_transient() && attempts <= retries => continue,
            Err(e) => return Err(e.after_attempts(attempts)),
            ok => return ok,
        }
    }
}

/// The parameters of a sync write: `head` (address and length), then each
/// servo's id and data.
pub(crate) fn sync_write_params(head: &[u8], values: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut params = Vec::with_capacity(head.len() + values.iter().map(|(_, data)| 1 + data.len()).sum::<usize>());
    params.extend_from_slice(head);
    for (id, data) in values {
        params.push(*id);
        params.extend_from_slice(data);
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Failure {
        Lost(u32),
        Refused,
    }

    impl Transient for Failure {
        fn is_transient(&self) -> bool {
            matches!(self, Failure::Lost(_))
        }
        fn after_attempts(self, attempts: u32) -> Failure {
            match self {
                Failure::Lost(_) => Failure::Lost(attempts),
                other => other,
            }
        }
    }

    #[test]
    fn transient_failures_are_retried_and_counted_others_end_at_once() {
        let mut calls = 0;
        assert_eq!(retrying(2, || { calls += 1; if calls < 3 { Err(Failure::Lost(1)) } else { Ok(calls) } }), Ok(3));
        let mut calls = 0;
        assert_eq!(retrying::<(), _>(2, || { calls += 1; Err(Failure::Lost(1)) }), Err(Failure::Lost(3)));
        assert_eq!(calls, 3);
        let mut calls = 0;
        assert_eq!(retrying::<(), _>(2, || { calls += 1; Err(Failure::Refused) }), Err(Failure::Refused));
        assert_eq!(calls, 1);
    }

    #[test]
    fn sync_write_params_list_each_servo_after_the_head() {
        assert_eq!(sync_write_params(&[42, 2], &[(1, vec![0x10, 0x20]), (7, vec![0x30, 0x40])]), vec![42, 2, 1, 0x10, 0x20, 7, 0x30, 0x40]);
    }
}
