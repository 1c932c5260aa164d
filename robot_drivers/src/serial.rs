//! Opening serial ports with errors that name the port.

use std::time::Duration;

use serialport::SerialPort;

#[derive(Debug, thiserror::Error)]
pub enum SerialError {
    #[error("serial port {port}: cannot open at {baud} baud: {reason}")]
    Open { port: String, baud: u32, reason: String },
    #[error("serial port {port}: {operation} failed: {source}")]
    Io { port: String, operation: &'static str, source: std::io::Error },
    #[error("serial port {port}: timed out after {waited_ms} ms waiting for {wanted} bytes, got {got}")]
    Timeout { port: String, waited_ms: u64, wanted: usize, got: usize },
}

/// Opens `port` raw (8N1, no flow control) with a read timeout.
pub fn open(port: &str, baud: u32, timeout: Duration) -> Result<Box<dyn SerialPort>, SerialError> {
    serialport::new(port, baud)
        .timeout(timeout)
        .data_bits(serialport::DataBits::Eight)
        .parity(serialport::Parity::None)
        .stop_bits(serialport::StopBits::One)
        .flow_control(serialport::FlowControl::None)
        .open()
        .map_err(|e| SerialError::Open { port: port.to_string(), baud, reason: e.to_string() })
}

/// Reads exactly `buf.len()` bytes or fails with how many arrived.
pub fn read_exact(port: &mut dyn SerialPort, name: &str, buf: &mut [u8]) -> Result<(), SerialError> {
    let mut got = 0;
    let started = std::time::Instant::now();
    while got < buf.len() {
        match port.read(&mut buf[got..]) {
            Ok(0) => {}
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(SerialError::Timeout {
                    port: name.to_string(),
                    waited_ms: started.elapsed().as_millis() as u64,
                    wanted: buf.len(),
                    got,
                })
            }
            Err(source) => return Err(SerialError::Io { port: name.to_string(), operation: "read", source }),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pty::PtyPair;
    use std::io::Write;

    #[test]
    fn bytes_cross_a_pseudo_terminal_pair_both_ways() {
        let pair = PtyPair::spawn().unwrap();
        let mut a = open(pair.a(), 1_000_000, Duration::from_millis(500)).unwrap();
        let mut b = open(pair.b(), 1_000_000, Duration::from_millis(500)).unwrap();
        let sent: Vec<u8> = (0..=255u8).collect();
        a.write_all(&sent).unwrap();
        let mut got = vec![0u8; sent.len()];
        read_exact(b.as_mut(), pair.b(), &mut got).unwrap();
        assert_eq!(got, sent, "raw mode must pass every byte value unchanged");
        b.write_all(b"\xff\xff\xfd\x00").unwrap();
        let mut back = [0u8; 4];
        read_exact(a.as_mut(), pair.a(), &mut back).unwrap();
        assert_eq!(&back, b"\xff\xff\xfd\x00");
    }

    #[test]
    fn a_silent_peer_times_out_with_the_count_received() {
        let pair = PtyPair::spawn().unwrap();
        let mut a = open(pair.a(), 57_600, Duration::from_millis(50)).unwrap();
        let mut b = open(pair.b(), 57_600, Duration::from_millis(50)).unwrap();
        b.write_all(&[1, 2]).unwrap();
        let mut buf = [0u8; 5];
        match read_exact(a.as_mut(), pair.a(), &mut buf) {
            Err(SerialError::Timeout { wanted: 5, got: 2, port, .. }) => assert_eq!(port, pair.a()),
            other => panic!("expected a timeout after 2 of 5 bytes, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_port_is_named_in_the_error() {
        let err = open("/dev/rrl-no-such-port", 1_000_000, Duration::from_millis(10)).err().expect("opening a missing port must fail");
        let text = err.to_string();
        assert!(text.contains("/dev/rrl-no-such-port") && text.contains("1000000"), "{text}");
    }
}
