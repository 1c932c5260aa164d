//! Feetech STS/SCS servos (the SO-100/SO-101 arms) over a serial port: the
//! SCServo protocol (FF FF header, id, length, instruction, parameters,
//! inverted-sum checksum), ping/read/write/sync read/sync write, status
//! error bits as typed errors, timeouts with bounded retries; and a device
//! emulator of a chain of STS3215 servos for tests, checked against
//! Feetech's own Python SDK (feetech-servo-sdk). STS registers are
//! little-endian.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serialport::SerialPort;

pub const BROADCAST_ID: u8 = 0xFE;
pub const STS3215_MODEL: u16 = 777;

pub mod instruction {
    pub const PING: u8 = 0x01;
    pub const READ: u8 = 0x02;
    pub const WRITE: u8 = 0x03;
    pub const SYNC_READ: u8 = 0x82;
    pub const SYNC_WRITE: u8 = 0x83;
}

/// STS3215 control table addresses.
pub mod address {
    pub const MODEL_NUMBER: u8 = 3;
    pub const ID: u8 = 5;
    pub const TORQUE_ENABLE: u8 = 40;
    pub const GOAL_POSITION: u8 = 42;
    pub const PRESENT_POSITION: u8 = 56;
    pub const PRESENT_SPEED: u8 = 58;
    pub const PRESENT_LOAD: u8 = 60;
}

fn checksum(bytes: &[u8]) -> u8 {
    !bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b))
}

/// A complete packet: FF FF, id, length, instruction, parameters, checksum.
pub fn encode(id: u8, instruction: u8, params: &[u8]) -> Vec<u8> {
    let mut packet = vec![0xFF, 0xFF, id, (params.len() + 2) as u8, instruction];
    packet.extend_from_slice(params);
    packet.push(checksum(&packet[2..]));
    packet
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub id: u8,
    /// The instruction, or the error byte of a status packet.
    pub instruction: u8,
    pub params: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("need more bytes")]
    Incomplete,
    #[error("no packet header before byte offset {offset}")]
    NoHeader { offset: usize },
    #[error("checksum mismatch in the packet from id {id} at byte offset {offset}: received {received:#04x}, computed {computed:#04x}")]
    Checksum { id: u8, offset: usize, received: u8, computed: u8 },
    #[error("packet at byte offset {offset} declares length {length}, below the minimum of 2")]
    Length { offset: usize, length: u8 },
}

pub fn decode(buffer: &[u8]) -> Result<(Packet, usize), DecodeError> {
    let start = match buffer.windows(2).position(|w| w == [0xFF, 0xFF]) {
        Some(s) => s,
        None if buffer.len() < 2 => return Err(DecodeError::Incomplete),
        None => return Err(DecodeError::NoHeader { offset: buffer.len() - 1 }),
    };
    // FF FF FF ...: the id cannot be 0xFF, so skip a leading extra FF.
    let start = if buffer.get(start + 2) == Some(&0xFF) { start + 1 } else { start };
    let rest = &buffer[start..];
    if rest.len() < 4 {
        return Err(DecodeError::Incomplete);
    }
    let (id, length) = (rest[2], rest[3]);
    if length < 2 {
        return Err(DecodeError::Length { offset: start, length });
    }
    let total = 4 + length as usize;
    if rest.len() < total {
        return Err(DecodeError::Incomplete);
    }
    let computed = checksum(&rest[2..total - 1]);
    if rest[total - 1] != computed {
        return Err(DecodeError::Checksum { id, offset: start, received: rest[total - 1], computed });
    }
    Ok((Packet { id, instruction: rest[4], params: rest[5..total - 1].to_vec() }, start + total))
}

/// Status error bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServoFaults(pub u8);

impl ServoFaults {
    pub const VOLTAGE: u8 = 1;
    pub const ANGLE_SENSOR: u8 = 2;
    pub const OVERHEAT: u8 = 4;
    pub const OVERCURRENT: u8 = 8;
    pub const OVERLOAD: u8 = 32;

    pub fn names(self) -> Vec<&'static str> {
        [(Self::VOLTAGE, "input voltage"), (Self::ANGLE_SENSOR, "angle sensor"), (Self::OVERHEAT, "overheating"), (Self::OVERCURRENT, "overcurrent"), (Self::OVERLOAD, "overload")]
            .into_iter()
            .filter(|(bit, _)| self.0 & bit != 0)
            .map(|(_, name)| name)
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FeetechError {
    #[error("{port}: servo {id} did not answer within {timeout_ms} ms ({attempts} attempts)")]
    Timeout { port: String, id: u8, timeout_ms: u64, attempts: u32 },
    #[error("{port}: {source}")]
    Corrupt { port: String, source: DecodeError },
    #[error("{port}: servo {id} reports {}", faults.names().join(", "))]
    Faults { port: String, id: u8, faults: ServoFaults },
    #[error("{port}: servo {id} answered {got} bytes, {expected} were asked for")]
    ShortAnswer { port: String, id: u8, expected: usize, got: usize },
    #[error("{port}: {operation} failed: {source}")]
    Io { port: String, operation: &'static str, source: std::io::Error },
}

/// A Feetech bus on one serial port.
pub struct FeetechBus {
    port: Box<dyn SerialPort>,
    name: String,
    timeout: Duration,
    retries: u32,
    buffer: Vec<u8>,
}

impl FeetechBus {
    pub fn open(path: &str, baud: u32, timeout: Duration, retries: u32) -> Result<FeetechBus, crate::serial::SerialError> {
        Ok(FeetechBus { port: crate::serial::open(path, baud, timeout)?, name: path.to_string(), timeout, retries, buffer: Vec::new() })
    }

    fn send(&mut self, packet: &[u8]) -> Result<(), FeetechError> {
        let _ = self.port.clear(serialport::ClearBuffer::Input);
        self.buffer.clear();
        self.port.write_all(packet).map_err(|source| FeetechError::Io { port: self.name.clone(), operation: "write", source })
    }

    fn receive(&mut self, id: u8) -> Result<Packet, FeetechError> {
        let deadline = Instant::now() + self.timeout;
        let mut chunk = [0u8; 128];
        loop {
            match decode(&self.buffer) {
                Ok((packet, used)) => {
                    self.buffer.drain(..used);
                    return Ok(packet);
                }
                Err(DecodeError::Incomplete | DecodeError::NoHeader { .. }) => {}
                Err(source) => {
                    self.buffer.clear();
                    return Err(FeetechError::Corrupt { port: self.name.clone(), source });
                }
            }
            if Instant::now() >= deadline {
                return Err(FeetechError::Timeout { port: self.name.clone(), id, timeout_ms: self.timeout.as_millis() as u64, attempts: 1 });
            }
            match self.port.read(&mut chunk) {
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(source) => return Err(FeetechError::Io { port: self.name.clone(), operation: "read", source }),
            }
        }
    }

    fn transact(&mut self, id: u8, instruction: u8, params: &[u8]) -> Result<Packet, FeetechError> {
        let packet = encode(id, instruction, params);
        let mut attempts = 0;
        loop {
            attempts += 1;
            self.send(&packet)?;
            match self.receive(id) {
                Ok(status) if status.instruction != 0 => {
                    return Err(FeetechError::Faults { port: self.name.clone(), id, faults: ServoFaults(status.instruction) })
                }
                Ok(status) => return Ok(status),
                Err(FeetechError::Timeout { port, id, timeout_ms, .. }) if attempts > self.retries => {
                    return Err(FeetechError::Timeout { port, id, timeout_ms, attempts })
                }
                Err(e @ FeetechError::Corrupt { .. }) if attempts > self.retries => return Err(e),
                Err(FeetechError::Timeout { .. } | FeetechError::Corrupt { .. }) => continue,
                Err(other) => return Err(other),
            }
        }
    }

    /// The servo's model number (ping, then read of the model register, as the vendor SDK does).
    pub fn ping(&mut self, id: u8) -> Result<u16, FeetechError> {
        self.transact(id, instruction::PING, &[])?;
        let model = self.read(id, address::MODEL_NUMBER, 2)?;
        Ok(u16::from_le_bytes([model[0], model[1]]))
    }

    pub fn read(&mut self, id: u8, address: u8, length: u8) -> Result<Vec<u8>, FeetechError> {
        let status = self.transact(id, instruction::READ, &[address, length])?;
        if status.params.len() != length as usize {
            return Err(FeetechError::ShortAnswer { port: self.name.clone(), id, expected: length as usize, got: status.params.len() });
        }
        Ok(status.params)
    }

    pub fn write(&mut self, id: u8, address: u8, data: &[u8]) -> Result<(), FeetechError> {
        let mut params = vec![address];
        params.extend_from_slice(data);
        self.transact(id, instruction::WRITE, &params).map(|_| ())
    }

    pub fn sync_read(&mut self, ids: &[u8], address: u8, length: u8) -> Result<Vec<Vec<u8>>, FeetechError> {
        let mut params = vec![address, length];
        params.extend_from_slice(ids);
        self.send(&encode(BROADCAST_ID, instruction::SYNC_READ, &params))?;
        let mut answers = Vec::with_capacity(ids.len());
        for &id in ids {
            let status = self.receive(id)?;
            if status.instruction != 0 {
                return Err(FeetechError::Faults { port: self.name.clone(), id, faults: ServoFaults(status.instruction) });
            }
            if status.params.len() != length as usize {
                return Err(FeetechError::ShortAnswer { port: self.name.clone(), id, expected: length as usize, got: status.params.len() });
            }
            answers.push(status.params);
        }
        Ok(answers)
    }

    pub fn sync_write(&mut self, address: u8, length: u8, values: &[(u8, Vec<u8>)]) -> Result<(), FeetechError> {
        let mut params = vec![address, length];
        for (id, data) in values {
            params.push(*id);
            params.extend_from_slice(data);
        }
        self.send(&encode(BROADCAST_ID, instruction::SYNC_WRITE, &params))
    }
}

/// A device emulator: STS3215 servos on the far end of a serial port.
/// Feetech's signed registers: magnitude in the low bits, the sign in bit
/// `sign_bit` (speed: 15, load: 10).
pub fn from_sign_magnitude(raw: u16, sign_bit: u32) -> f64 {
    let magnitude = f64::from(raw & ((1 << sign_bit) - 1));
    if raw & (1 << sign_bit) != 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// The inverse of `from_sign_magnitude` (rounded, saturated).
pub fn sign_magnitude(value: f64, sign_bit: u32) -> u16 {
    let magnitude = value.abs().round().min(f64::from((1u32 << sign_bit) - 1)) as u16;
    if value < 0.0 && magnitude > 0 {
        magnitude | (1 << sign_bit)
    } else {
        magnitude
    }
}

pub mod emulator {
    use std::io::Read;
    use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
    use std::sync::Arc;
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    use super::{address, decode, encode, instruction, sign_magnitude, DecodeError, BROADCAST_ID, STS3215_MODEL};

    /// Faults to inject.
    #[derive(Debug, Default)]
    pub struct Faults {
        pub unplugged: AtomicBool,
        /// Status error bits reported by servo `fault_id`.
        pub fault_bits: AtomicU8,
        pub fault_id: AtomicU8,
        /// The next this-many answers are not sent.
        pub drop_answers: AtomicU32,
        /// The next this-many answers go out with a wrong checksum.
        pub corrupt_answers: AtomicU32,
        /// The next this-many answers are preceded by line noise.
        pub garbage_before: AtomicU32,
    }

    /// Writes an answer as the faults say: dropped, corrupted, after noise, or as is.
    fn send_answer(port: &mut dyn serialport::SerialPort, faults: &Faults, mut answer: Vec<u8>) {
        let take = |counter: &AtomicU32| counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok();
        if take(&faults.drop_answers) {
            return;
        }
        if take(&faults.corrupt_answers) {
            let last = answer.len() - 1;
            answer[last] ^= 0x5A;
        }
        if take(&faults.garbage_before) {
            let _ = port.write_all(&[0x00, 0x13, 0xFF, 0x42]);
        }
        let _ = port.write_all(&answer);
    }

    pub struct FeetechEmulator {
        faults: Arc<Faults>,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    impl FeetechEmulator {
        pub fn spawn(path: &str, baud: u32, ids: &[u8]) -> Result<FeetechEmulator, crate::serial::SerialError> {
            let mut port = crate::serial::open(path, baud, Duration::from_millis(2))?;
            let faults = Arc::new(Faults::default());
            let stop = Arc::new(AtomicBool::new(false));
            let mut servos: Vec<(u8, [u8; 256], f64)> = ids
                .iter()
                .map(|&id| {
                    let mut table = [0u8; 256];
                    table[address::MODEL_NUMBER as usize..][..2].copy_from_slice(&STS3215_MODEL.to_le_bytes());
                    table[address::ID as usize] = id;
                    table[address::GOAL_POSITION as usize..][..2].copy_from_slice(&2048u16.to_le_bytes());
                    table[address::PRESENT_POSITION as usize..][..2].copy_from_slice(&2048u16.to_le_bytes());
                    (id, table, 2048.0)
                })
                .collect();
            let (faults_t, stop_t) = (faults.clone(), stop.clone());
            let thread = std::thread::spawn(move || {
                let (mut buffer, mut chunk, mut last) = (Vec::new(), [0u8; 512], Instant::now());
                while !stop_t.load(Ordering::Relaxed) {
                    if let Ok(n) = port.read(&mut chunk) {
                        buffer.extend_from_slice(&chunk[..n]);
                    }
                    let ms = last.elapsed().as_secs_f64() * 1000.0;
                    last = Instant::now();
                    for (_, table, position) in &mut servos {
                        let (mut speed, mut load) = (0.0, 0.0);
                        if table[address::TORQUE_ENABLE as usize] == 1 {
                            let goal = f64::from(u16::from_le_bytes([table[42], table[43]]));
                            let step = crate::dynamixel_emulator::first_order_step(goal - *position, ms, 4.0);
                            *position += step;
                            speed = if ms > 0.0 { step / ms * 1000.0 } else { 0.0 };
                            load = ((goal - *position) * 0.5).clamp(-1000.0, 1000.0);
                        }
                        table[address::PRESENT_POSITION as usize..][..2].copy_from_slice(&(position.round() as u16).to_le_bytes());
                        table[address::PRESENT_SPEED as usize..][..2].copy_from_slice(&sign_magnitude(speed, 15).to_le_bytes());
                        table[address::PRESENT_LOAD as usize..][..2].copy_from_slice(&sign_magnitude(load, 10).to_le_bytes());
                    }
                    loop {
                        match decode(&buffer) {
                            Ok((packet, used)) => {
                                buffer.drain(..used);
                                if faults_t.unplugged.load(Ordering::Relaxed) {
                                    continue;
                                }
                                for answer in respond(&mut servos, &faults_t, &packet) {
                                    send_answer(port.as_mut(), &faults_t, answer);
                                }
                            }
                            Err(DecodeError::Checksum { offset, .. } | DecodeError::Length { offset, .. }) => {
                                buffer.drain(..offset + 2);
                            }
                            Err(DecodeError::NoHeader { offset }) => {
                                buffer.drain(..offset);
                                break;
                            }
                            Err(DecodeError::Incomplete) => break,
                        }
                    }
                }
            });
            Ok(FeetechEmulator { faults, stop, thread: Some(thread) })
        }

        pub fn faults(&self) -> &Faults {
            &self.faults
        }
    }

    impl Drop for FeetechEmulator {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    fn respond(servos: &mut [(u8, [u8; 256], f64)], faults: &Faults, packet: &super::Packet) -> Vec<Vec<u8>> {
        let error_of = |id: u8| if faults.fault_id.load(Ordering::Relaxed) == id { faults.fault_bits.load(Ordering::Relaxed) } else { 0 };
        let p = &packet.params;
        match packet.instruction {
            instruction::PING => servos.iter().filter(|s| s.0 == packet.id).map(|s| encode(s.0, error_of(s.0), &[])).collect(),
            instruction::READ if p.len() == 2 => {
                let (at, len) = (p[0] as usize, p[1] as usize);
                servos.iter().filter(|s| s.0 == packet.id && at + len <= 256).map(|s| encode(s.0, error_of(s.0), &s.1[at..at + len])).collect()
            }
            instruction::WRITE if p.len() > 1 => {
                let at = p[0] as usize;
                let mut answers = Vec::new();
                for s in servos.iter_mut().filter(|s| s.0 == packet.id) {
                    if at + p.len() - 1 <= 256 {
                        s.1[at..at + p.len() - 1].copy_from_slice(&p[1..]);
                    }
                    answers.push(encode(s.0, error_of(s.0), &[]));
                }
                answers
            }
            instruction::SYNC_READ if packet.id == BROADCAST_ID && p.len() >= 2 => {
                let (at, len) = (p[0] as usize, p[1] as usize);
                p[2..].iter().filter_map(|want| servos.iter().find(|s| s.0 == *want)).filter(|_| at + len <= 256).map(|s| encode(s.0, error_of(s.0), &s.1[at..at + len])).collect()
            }
            instruction::SYNC_WRITE if packet.id == BROADCAST_ID && p.len() >= 2 => {
                let (at, len) = (p[0] as usize, p[1] as usize);
                for entry in p[2..].chunks_exact(len + 1) {
                    if let Some(s) = servos.iter_mut().find(|s| s.0 == entry[0]) {
                        if at + len <= 256 {
                            s.1[at..at + len].copy_from_slice(&entry[1..]);
                        }
                    }
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::emulator::FeetechEmulator;
    use super::*;
    use crate::pty::PtyPair;
    use std::sync::atomic::Ordering;

    #[test]
    fn packets_round_trip_and_a_bad_checksum_names_the_offset() {
        // Ping of id 1 as the vendor documents it: FF FF 01 02 01 FB.
        assert_eq!(encode(1, instruction::PING, &[]), vec![0xFF, 0xFF, 0x01, 0x02, 0x01, 0xFB]);
        let mut bytes = vec![0x42];
        bytes.extend(encode(3, 0, &[0x00, 0x08]));
        let (packet, used) = decode(&bytes).unwrap();
        assert_eq!((packet.id, packet.params.clone(), used), (3, vec![0x00, 0x08], bytes.len()));
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(matches!(decode(&bytes), Err(DecodeError::Checksum { id: 3, offset: 1, .. })));
    }

    #[test]
    fn the_bus_drives_the_emulated_so101_chain() {
        let pair = PtyPair::spawn().unwrap();
        let emulator = FeetechEmulator::spawn(pair.b(), 1_000_000, &[1, 2, 3, 4, 5, 6]).unwrap();
        let mut bus = FeetechBus::open(pair.a(), 1_000_000, Duration::from_millis(30), 2).unwrap();
        assert_eq!(bus.ping(6).unwrap(), STS3215_MODEL);
        for id in 1..=6 {
            bus.write(id, address::TORQUE_ENABLE, &[1]).unwrap();
        }
        let goals: Vec<(u8, Vec<u8>)> = (1..=6u8).map(|id| (id, (2000 + 10 * u16::from(id)).to_le_bytes().to_vec())).collect();
        bus.sync_write(address::GOAL_POSITION, 2, &goals).unwrap();
        // The servos follow with a 30 ms lag: ten time constants.
        std::thread::sleep(Duration::from_millis(300));
        let present = bus.sync_read(&[1, 2, 3, 4, 5, 6], address::PRESENT_POSITION, 2).unwrap();
        let ticks: Vec<u16> = present.iter().map(|b| u16::from_le_bytes([b[0], b[1]])).collect();
        assert_eq!(ticks, (1..=6u16).map(|id| 2000 + 10 * id).collect::<Vec<_>>());
        emulator.faults().fault_id.store(4, Ordering::Relaxed);
        emulator.faults().fault_bits.store(ServoFaults::OVERLOAD, Ordering::Relaxed);
        let err = bus.read(4, address::PRESENT_LOAD, 2).unwrap_err();
        assert!(err.to_string().contains("servo 4 reports overload"), "{err}");
        emulator.faults().unplugged.store(true, Ordering::Relaxed);
        assert!(matches!(bus.ping(1), Err(FeetechError::Timeout { id: 1, attempts: 3, .. })));
    }

    /// Line noise before an answer is skipped; a dropped and a corrupted
    /// answer are retried; corruption past the retries is a checksum error
    /// naming the servo and the byte offset.
    #[test]
    fn noise_dropped_and_corrupted_answers_are_survived_or_named() {
        let pair = PtyPair::spawn().unwrap();
        let emulator = FeetechEmulator::spawn(pair.b(), 1_000_000, &[1, 2]).unwrap();
        let mut bus = FeetechBus::open(pair.a(), 1_000_000, Duration::from_millis(30), 2).unwrap();
        emulator.faults().garbage_before.store(1, Ordering::Relaxed);
        assert_eq!(bus.ping(2).unwrap(), STS3215_MODEL, "noise before the answer is skipped");
        emulator.faults().drop_answers.store(1, Ordering::Relaxed);
        emulator.faults().corrupt_answers.store(1, Ordering::Relaxed);
        assert_eq!(bus.ping(1).unwrap(), STS3215_MODEL, "two bad answers, two retries, then success");
        emulator.faults().corrupt_answers.store(5, Ordering::Relaxed);
        let err = bus.ping(1).unwrap_err();
        assert!(matches!(err, FeetechError::Corrupt { source: DecodeError::Checksum { id: 1, .. }, .. }), "{err:?}");
        assert!(err.to_string().contains(pair.a()) && err.to_string().contains("offset"), "{err}");
        emulator.faults().corrupt_answers.store(0, Ordering::Relaxed);
        assert_eq!(bus.ping(1).unwrap(), STS3215_MODEL, "the bus works again once the noise stops");
    }
}
