//! Feetech STS/SCS servos (the SO-100/SO-101 arms) over a serial port: the
//! SCServo protocol (FF FF header, id, length, instruction, parameters,
//! inverted-sum checksum), ping/read/write/sync read/sync write, status
//! error bits as typed errors, and the servo-bus operations of an arm.
//! Timeouts and retries are the shared serial link's (`servo_wire`); the
//! device emulator of an STS3215 chain is `emulator`. STS registers are
//! little-endian.

use std::time::Duration;

use crate::servo_bus::{ServoBus, ServoBusError, ServoSample, ServoVelocity};
use crate::servo_wire::{retrying, sync_write_params, Framing, Link, Resync, Transient, WireError};

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
    /// A late answer of an earlier exchange, or another servo's.
    #[error("{port}: servo {got} answered where servo {expected} was expected")]
    WrongServo { port: String, expected: u8, got: u8 },
    #[error("{port}: {operation} failed: {source}")]
    Io { port: String, operation: &'static str, source: std::io::Error },
}

/// SCServo framing, for the shared serial link and the emulator.
pub(crate) struct Scs;

impl Framing for Scs {
    type Packet = Packet;
    type DecodeError = DecodeError;

    fn decode(buffer: &[u8]) -> Result<(Packet, usize), DecodeError> {
        decode(buffer)
    }

    fn resync(error: &DecodeError) -> Resync {
        match *error {
            DecodeError::Incomplete => Resync::NeedMore,
            DecodeError::NoHeader { offset } => Resync::Noise { offset },
            DecodeError::Checksum { offset, .. } | DecodeError::Length { offset, .. } => Resync::Corrupt { skip: offset + 2 },
        }
    }
}

impl Transient for FeetechError {
    fn is_transient(&self) -> bool {
        matches!(self, FeetechError::Timeout { .. } | FeetechError::Corrupt { .. } | FeetechError::WrongServo { .. })
    }

    fn after_attempts(self, attempts: u32) -> FeetechError {
        match self {
            FeetechError::Timeout { port, id, timeout_ms, .. } => FeetechError::Timeout { port, id, timeout_ms, attempts },
            other => other,
        }
    }
}

/// A Feetech bus on one serial port.
pub struct FeetechBus {
    link: Link,
}

impl FeetechBus {
    pub fn open(path: &str, baud: u32, timeout: Duration, retries: u32) -> Result<FeetechBus, crate::serial::SerialError> {
        Ok(FeetechBus { link: Link::open(path, baud, timeout, retries)? })
    }

    /// A link failure as this protocol reports it, for servo `id`.
    fn wire_error(&self, id: u8, error: WireError<DecodeError>) -> FeetechError {
        let port = self.link.name().to_string();
        match error {
            WireError::Timeout { .. } => FeetechError::Timeout { port, id, timeout_ms: self.link.timeout_ms(), attempts: 1 },
            WireError::Corrupt(source) => FeetechError::Corrupt { port, source },
            WireError::Io { operation, source } => FeetechError::Io { port, operation, source },
        }
    }

    fn send(&mut self, packet: &[u8]) -> Result<(), FeetechError> {
        self.link.send(packet).map_err(|e| self.wire_error(BROADCAST_ID, e))
    }

    /// Reads servo `id`'s status packet: its data, or the faults it reports.
    fn receive(&mut self, id: u8) -> Result<Vec<u8>, FeetechError> {
        let status = self.link.receive::<Scs>().map_err(|e| self.wire_error(id, e))?;
        if status.id != id && id != BROADCAST_ID {
            return Err(FeetechError::WrongServo { port: self.link.name().to_string(), expected: id, got: status.id });
        }
        if status.instruction != 0 {
            return Err(FeetechError::Faults { port: self.link.name().to_string(), id, faults: ServoFaults(status.instruction) });
        }
        Ok(status.params)
    }

    /// Data of exactly `length` bytes, or the short answer it is.
    fn expect_length(&self, id: u8, length: u8, data: Vec<u8>) -> Result<Vec<u8>, FeetechError> {
        if data.len() != length as usize {
            return Err(FeetechError::ShortAnswer { port: self.link.name().to_string(), id, expected: length as usize, got: data.len() });
        }
        Ok(data)
    }

    /// One instruction and its status answer, retried on timeouts and corrupt answers.
    fn transact(&mut self, id: u8, instruction: u8, params: &[u8]) -> Result<Vec<u8>, FeetechError> {
        let packet = encode(id, instruction, params);
        retrying(self.link.retries(), || {
            self.send(&packet)?;
            self.receive(id)
        })
    }

    /// The servo's model number (ping, then read of the model register, as the vendor SDK does).
    pub fn ping(&mut self, id: u8) -> Result<u16, FeetechError> {
        self.transact(id, instruction::PING, &[])?;
        let model = self.read(id, address::MODEL_NUMBER, 2)?;
        Ok(u16::from_le_bytes([model[0], model[1]]))
    }

    pub fn read(&mut self, id: u8, address: u8, length: u8) -> Result<Vec<u8>, FeetechError> {
        let data = self.transact(id, instruction::READ, &[address, length])?;
        self.expect_length(id, length, data)
    }

    pub fn write(&mut self, id: u8, address: u8, data: &[u8]) -> Result<(), FeetechError> {
        let mut params = vec![address];
        params.extend_from_slice(data);
        self.transact(id, instruction::WRITE, &params).map(|_| ())
    }

    /// The same register from several servos in one round trip; answers
    /// come in the order of `ids`. The whole exchange is retried on a lost,
    /// corrupt or misplaced answer (the next request clears what is left
    /// of the last on the wire).
    pub fn sync_read(&mut self, ids: &[u8], address: u8, length: u8) -> Result<Vec<Vec<u8>>, FeetechError> {
        let mut params = vec![address, length];
        params.extend_from_slice(ids);
        let packet = encode(BROADCAST_ID, instruction::SYNC_READ, &params);
        retrying(self.link.retries(), || {
            self.send(&packet)?;
            let mut answers = Vec::with_capacity(ids.len());
            for &id in ids {
                let data = self.receive(id)?;
                answers.push(self.expect_length(id, length, data)?);
            }
            Ok(answers)
        })
    }

    /// The same register written on several servos, no answer expected.
    pub fn sync_write(&mut self, address: u8, length: u8, values: &[(u8, Vec<u8>)]) -> Result<(), FeetechError> {
        self.send(&encode(BROADCAST_ID, instruction::SYNC_WRITE, &sync_write_params(&[address, length], values)))
    }
}

/// What the arm needs of an STS chain: torque, positions in 2-byte ticks
/// (0..4095), and present position, speed and load in one sync read.
impl ServoBus for FeetechBus {
    fn ping(&mut self, id: u8) -> Result<u16, ServoBusError> {
        Ok(FeetechBus::ping(self, id)?)
    }

    fn set_torque(&mut self, ids: &[u8], on: bool) -> Result<(), ServoBusError> {
        let values: Vec<(u8, Vec<u8>)> = ids.iter().map(|&id| (id, vec![u8::from(on)])).collect();
        Ok(self.sync_write(address::TORQUE_ENABLE, 1, &values)?)
    }

    fn hold_present_position(&mut self, ids: &[u8]) -> Result<(), ServoBusError> {
        let positions = self.sync_read(ids, address::PRESENT_POSITION, 2)?;
        let goals: Vec<(u8, Vec<u8>)> = ids.iter().copied().zip(positions).collect();
        Ok(self.sync_write(address::GOAL_POSITION, 2, &goals)?)
    }

    fn read_present(&mut self, ids: &[u8]) -> Result<Vec<ServoSample>, ServoBusError> {
        // Present position (2 bytes), speed (2, ticks/s, sign bit 15), load (2, 0.1 %, sign bit 10), contiguous from 56.
        let answers = self.sync_read(ids, address::PRESENT_POSITION, 6)?;
        Ok(answers
            .iter()
            .map(|b| {
                let speed_ticks = from_sign_magnitude(u16::from_le_bytes([b[2], b[3]]), 15);
                let load = from_sign_magnitude(u16::from_le_bytes([b[4], b[5]]), 10) * 1e-3;
                ServoSample { ticks: i32::from(u16::from_le_bytes([b[0], b[1]])), velocity: ServoVelocity::TicksPerSecond(speed_ticks), effort: load }
            })
            .collect())
    }

    fn write_goal_positions(&mut self, goals: &[(u8, i32)]) -> Result<(), ServoBusError> {
        let values: Vec<(u8, Vec<u8>)> = goals.iter().map(|(id, ticks)| (*id, (*ticks).clamp(0, 4095).to_le_bytes()[..2].to_vec())).collect();
        Ok(self.sync_write(address::GOAL_POSITION, 2, &values)?)
    }
}

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

pub use crate::feetech_emulator as emulator;

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
    /// Fault matrix: garbage on the serial line | bytes before answers, a dropped and a corrupted answer, then five corrupted, on a pseudo-terminal | skips the noise, retries bad answers | the ping gets through noise and two bad answers; five name the port and byte offset; works again after
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

    /// A sync read whose first servo's answer is lost is asked again whole:
    /// the second servo's answer to the first request, left on the wire,
    /// is not taken for the first servo's answer to the second.
    #[test]
    fn a_sync_read_with_a_lost_answer_is_retried_whole() {
        let pair = PtyPair::spawn().unwrap();
        let emulator = FeetechEmulator::spawn(pair.b(), 1_000_000, &[1, 2]).unwrap();
        let mut bus = FeetechBus::open(pair.a(), 1_000_000, Duration::from_millis(30), 2).unwrap();
        emulator.faults().drop_answers.store(1, Ordering::Relaxed);
        let answers = bus.sync_read(&[1, 2], address::ID, 1).expect("retried after the lost answer");
        assert_eq!(answers, vec![vec![1], vec![2]]);
        emulator.faults().drop_answers.store(10, Ordering::Relaxed);
        let err = bus.sync_read(&[1, 2], address::ID, 1).unwrap_err();
        assert!(matches!(err, FeetechError::Timeout { id: 1, attempts: 3, .. }), "{err:?}");
    }
}
