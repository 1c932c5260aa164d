//! Dynamixel Protocol 2.0 over a serial port: packet framing (header,
//! length, byte stuffing, CRC-16), the instructions an arm needs (ping,
//! read, write, sync read, sync write), status errors as typed errors, and
//! the servo-bus operations of an arm. Timeouts and retries are the shared
//! serial link's (`servo_wire`). Register addresses are the X series'.

use std::f64::consts::TAU;
use std::time::Duration;

use serialport::SerialPort;

use crate::servo_bus::{ServoBus, ServoBusError, ServoSample, ServoVelocity};
use crate::servo_wire::{retrying, sync_write_params, Framing, Link, Resync, Transient, WireError};

pub const HEADER: [u8; 4] = [0xFF, 0xFF, 0xFD, 0x00];
pub const BROADCAST_ID: u8 = 0xFE;

pub mod instruction {
    pub const PING: u8 = 0x01;
    pub const READ: u8 = 0x02;
    pub const WRITE: u8 = 0x03;
    pub const SYNC_READ: u8 = 0x82;
    pub const SYNC_WRITE: u8 = 0x83;
    pub const BULK_READ: u8 = 0x92;
    pub const STATUS: u8 = 0x55;
}

/// X-series control table addresses.
pub mod address {
    pub const MODEL_NUMBER: u16 = 0;
    pub const OPERATING_MODE: u16 = 11;
    pub const TORQUE_ENABLE: u16 = 64;
    pub const HARDWARE_ERROR_STATUS: u16 = 70;
    pub const GOAL_CURRENT: u16 = 102;
    pub const GOAL_VELOCITY: u16 = 104;
    pub const GOAL_POSITION: u16 = 116;
    pub const PRESENT_CURRENT: u16 = 126;
    pub const PRESENT_VELOCITY: u16 = 128;
    pub const PRESENT_POSITION: u16 = 132;
}

/// CRC-16 as the protocol defines it (polynomial 0x8005, initial 0, not reflected).
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x8005 } else { crc << 1 };
        }
    }
    crc
}

/// Inserts 0xFD after every FF FF FD in the instruction/parameter bytes, so
/// that the header pattern never appears inside a packet.
pub fn stuff(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 4);
    for &b in bytes {
        out.push(b);
        let n = out.len();
        if n >= 3 && out[n - 3..] == [0xFF, 0xFF, 0xFD] {
            out.push(0xFD);
        }
    }
    out
}

/// Removes the stuffing `stuff` added.
pub fn unstuff(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        out.push(bytes[i]);
        let n = out.len();
        if n >= 3 && out[n - 3..] == [0xFF, 0xFF, 0xFD] && bytes.get(i + 1) == Some(&0xFD) {
            i += 1;
        }
        i += 1;
    }
    out
}

/// A complete packet: header, id, length, stuffed instruction and
/// parameters, CRC.
pub fn encode(id: u8, instruction: u8, params: &[u8]) -> Vec<u8> {
    let mut body = vec![instruction];
    body.extend_from_slice(params);
    let body = stuff(&body);
    let length = (body.len() + 2) as u16;
    let mut packet = HEADER.to_vec();
    packet.push(id);
    packet.extend_from_slice(&length.to_le_bytes());
    packet.extend_from_slice(&body);
    let crc = crc16(&packet);
    packet.extend_from_slice(&crc.to_le_bytes());
    packet
}

/// A decoded packet (instruction or status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub id: u8,
    pub instruction: u8,
    /// Unstuffed parameters (for a status packet: error byte first).
    pub params: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("need more bytes")]
    Incomplete,
    #[error("no packet header at byte offset {offset}")]
    NoHeader { offset: usize },
    #[error("CRC mismatch in the packet from id {id} at byte offset {offset}: received {received:#06x}, computed {computed:#06x}")]
    Crc { id: u8, offset: usize, received: u16, computed: u16 },
    #[error("packet at byte offset {offset} declares length {length}, too short for an instruction and a CRC")]
    Length { offset: usize, length: u16 },
}

/// Finds and decodes the first packet in `buffer`; returns it and how many
/// bytes it (and any garbage before it) used.
pub fn decode(buffer: &[u8]) -> Result<(Packet, usize), DecodeError> {
    let start = buffer.windows(4).position(|w| w == HEADER).ok_or(if buffer.len() < 4 { DecodeError::Incomplete } else { DecodeError::NoHeader { offset: buffer.len().saturating_sub(3) } })?;
    let rest = &buffer[start..];
    if rest.len() < 7 {
        return Err(DecodeError::Incomplete);
    }
    let id = rest[4];
    let length = u16::from_le_bytes([rest[5], rest[6]]);
    if length < 3 {
        return Err(DecodeError::Length { offset: start, length });
    }
    let total = 7 + length as usize;
    if rest.len() < total {
        return Err(DecodeError::Incomplete);
    }
    let received = u16::from_le_bytes([rest[total - 2], rest[total - 1]]);
    let computed = crc16(&rest[..total - 2]);
    if received != computed {
        return Err(DecodeError::Crc { id, offset: start, received, computed });
    }
    let body = unstuff(&rest[7..total - 2]);
    Ok((Packet { id, instruction: body[0], params: body[1..].to_vec() }, start + total))
}

/// The error byte of a status packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusError {
    ResultFail,
    InstructionError,
    CrcError,
    DataRange,
    DataLength,
    DataLimit,
    Access,
    Unknown(u8),
}

impl StatusError {
    fn from_code(code: u8) -> Option<StatusError> {
        Some(match code & 0x7F {
            0 => return None,
            1 => StatusError::ResultFail,
            2 => StatusError::InstructionError,
            3 => StatusError::CrcError,
            4 => StatusError::DataRange,
            5 => StatusError::DataLength,
            6 => StatusError::DataLimit,
            7 => StatusError::Access,
            other => StatusError::Unknown(other),
        })
    }
}

/// Bits of the Hardware Error Status register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HardwareFaults(pub u8);

impl HardwareFaults {
    pub const INPUT_VOLTAGE: u8 = 1 << 0;
    pub const OVERHEATING: u8 = 1 << 2;
    pub const ENCODER: u8 = 1 << 3;
    pub const ELECTRICAL_SHOCK: u8 = 1 << 4;
    pub const OVERLOAD: u8 = 1 << 5;

    pub fn names(self) -> Vec<&'static str> {
        [(Self::INPUT_VOLTAGE, "input voltage"), (Self::OVERHEATING, "overheating"), (Self::ENCODER, "encoder"), (Self::ELECTRICAL_SHOCK, "electrical shock"), (Self::OVERLOAD, "overload")]
            .into_iter()
            .filter(|(bit, _)| self.0 & bit != 0)
            .map(|(_, name)| name)
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DynamixelError {
    #[error("{port}: servo {id} did not answer within {timeout_ms} ms ({attempts} attempts); {received} bytes received")]
    Timeout { port: String, id: u8, timeout_ms: u64, attempts: u32, received: usize },
    #[error("{port}: {source}")]
    Corrupt { port: String, source: DecodeError },
    #[error("{port}: servo {id} reported {error:?}")]
    Status { port: String, id: u8, error: StatusError },
    #[error("{port}: servo {id} raised a hardware alert: {}", faults.names().join(", "))]
    Hardware { port: String, id: u8, faults: HardwareFaults },
    #[error("{port}: answer from servo {got} where servo {expected} was asked")]
    WrongId { port: String, expected: u8, got: u8 },
    #[error("{port}: servo {id} answered {got} bytes, {expected} were asked for")]
    ShortAnswer { port: String, id: u8, expected: usize, got: usize },
    #[error("{port}: {operation} failed: {source}")]
    Io { port: String, operation: &'static str, source: std::io::Error },
}

/// Protocol 2.0 framing, for the shared serial link and the emulator.
pub(crate) struct Protocol2;

impl Framing for Protocol2 {
    type Packet = Packet;
    type DecodeError = DecodeError;

    fn decode(buffer: &[u8]) -> Result<(Packet, usize), DecodeError> {
        decode(buffer)
    }

    fn resync(error: &DecodeError) -> Resync {
        match *error {
            DecodeError::Incomplete => Resync::NeedMore,
            DecodeError::NoHeader { offset } => Resync::Noise { offset },
            DecodeError::Crc { offset, .. } | DecodeError::Length { offset, .. } => Resync::Corrupt { skip: offset + HEADER.len() },
        }
    }
}

impl Transient for DynamixelError {
    fn is_transient(&self) -> bool {
        matches!(self, DynamixelError::Timeout { .. } | DynamixelError::Corrupt { .. })
    }

    fn after_attempts(self, attempts: u32) -> DynamixelError {
        match self {
            DynamixelError::Timeout { port, id, timeout_ms, received, .. } => DynamixelError::Timeout { port, id, timeout_ms, attempts, received },
            other => other,
        }
    }
}

/// A Dynamixel bus on one serial port.
pub struct DynamixelBus {
    link: Link,
}

impl DynamixelBus {
    pub fn new(port: Box<dyn SerialPort>, name: &str, timeout: Duration, retries: u32) -> DynamixelBus {
        DynamixelBus { link: Link::new(port, name, timeout, retries) }
    }

    pub fn open(path: &str, baud: u32, timeout: Duration, retries: u32) -> Result<DynamixelBus, crate::serial::SerialError> {
        Ok(DynamixelBus { link: Link::open(path, baud, timeout, retries)? })
    }

    /// A link failure as this protocol reports it, for servo `id`.
    fn wire_error(&self, id: u8, error: WireError<DecodeError>) -> DynamixelError {
        let port = self.link.name().to_string();
        match error {
            WireError::Timeout { received } => DynamixelError::Timeout { port, id, timeout_ms: self.link.timeout_ms(), attempts: 1, received },
            WireError::Corrupt(source) => DynamixelError::Corrupt { port, source },
            WireError::Io { operation, source } => DynamixelError::Io { port, operation, source },
        }
    }

    fn send(&mut self, packet: &[u8]) -> Result<(), DynamixelError> {
        self.link.send(packet).map_err(|e| self.wire_error(BROADCAST_ID, e))
    }

    /// Reads one status packet, waiting up to the timeout.
    fn receive(&mut self, id: u8) -> Result<Packet, DynamixelError> {
        self.link.receive::<Protocol2>().map_err(|e| self.wire_error(id, e))
    }

    fn check_status(&self, expected: u8, packet: &Packet) -> Result<(), DynamixelError> {
        let port = || self.link.name().to_string();
        if packet.id != expected {
            return Err(DynamixelError::WrongId { port: port(), expected, got: packet.id });
        }
        let error = packet.params.first().copied().unwrap_or(0);
        if let Some(error) = StatusError::from_code(error) {
            return Err(DynamixelError::Status { port: port(), id: expected, error });
        }
        if error & 0x80 != 0 {
            // The alert bit: the servo's Hardware Error Status says what.
            return Err(DynamixelError::Hardware { port: port(), id: expected, faults: HardwareFaults(0) });
        }
        Ok(())
    }

    fn short_answer(&self, id: u8, expected: usize, got: usize) -> DynamixelError {
        DynamixelError::ShortAnswer { port: self.link.name().to_string(), id, expected, got }
    }

    /// One instruction and its status answer, retried on timeouts and corrupt answers.
    fn transact(&mut self, id: u8, instruction: u8, params: &[u8]) -> Result<Packet, DynamixelError> {
        let packet = encode(id, instruction, params);
        retrying(self.link.retries(), || {
            self.send(&packet)?;
            let status = self.receive(id)?;
            self.check_status(id, &status)?;
            Ok(status)
        })
    }

    /// The servo's model number.
    pub fn ping(&mut self, id: u8) -> Result<u16, DynamixelError> {
        let status = self.transact(id, instruction::PING, &[])?;
        match status.params.get(1..3) {
            Some(model) => Ok(u16::from_le_bytes([model[0], model[1]])),
            None => Err(self.short_answer(id, 3, status.params.len().saturating_sub(1))),
        }
    }

    pub fn read(&mut self, id: u8, address: u16, length: u16) -> Result<Vec<u8>, DynamixelError> {
        let mut params = address.to_le_bytes().to_vec();
        params.extend_from_slice(&length.to_le_bytes());
        let status = self.transact(id, instruction::READ, &params)?;
        let data = status.params.get(1..).unwrap_or_default().to_vec();
        if data.len() != length as usize {
            return Err(self.short_answer(id, length as usize, data.len()));
        }
        Ok(data)
    }

    pub fn write(&mut self, id: u8, address: u16, data: &[u8]) -> Result<(), DynamixelError> {
        let mut params = address.to_le_bytes().to_vec();
        params.extend_from_slice(data);
        self.transact(id, instruction::WRITE, &params).map(|_| ())
    }

    /// The same register from several servos in one round trip; answers come
    /// in the order of `ids`.
    pub fn sync_read(&mut self, ids: &[u8], address: u16, length: u16) -> Result<Vec<Vec<u8>>, DynamixelError> {
        let mut params = address.to_le_bytes().to_vec();
        params.extend_from_slice(&length.to_le_bytes());
        params.extend_from_slice(ids);
        let expected: Vec<(u8, usize)> = ids.iter().map(|&id| (id, length as usize)).collect();
        self.collect_answers(&encode(BROADCAST_ID, instruction::SYNC_READ, &params), &expected)
    }

    /// Different registers from different servos in one round trip:
    /// `requests` are (id, address, length); answers come in their order.
    pub fn bulk_read(&mut self, requests: &[(u8, u16, u16)]) -> Result<Vec<Vec<u8>>, DynamixelError> {
        let mut params = Vec::with_capacity(5 * requests.len());
        for (id, address, length) in requests {
            params.push(*id);
            params.extend_from_slice(&address.to_le_bytes());
            params.extend_from_slice(&length.to_le_bytes());
        }
        let expected: Vec<(u8, usize)> = requests.iter().map(|&(id, _, length)| (id, length as usize)).collect();
        self.collect_answers(&encode(BROADCAST_ID, instruction::BULK_READ, &params), &expected)
    }

    /// Sends a broadcast read and collects one status packet per expected
    /// (id, data length), in order; the whole exchange is retried on a
    /// timeout or a corrupt answer.
    fn collect_answers(&mut self, packet: &[u8], expected: &[(u8, usize)]) -> Result<Vec<Vec<u8>>, DynamixelError> {
        retrying(self.link.retries(), || {
            self.send(packet)?;
            let mut answers = Vec::with_capacity(expected.len());
            for &(id, length) in expected {
                let status = self.receive(id)?;
                self.check_status(id, &status)?;
                let data = status.params.get(1..).unwrap_or_default().to_vec();
                if data.len() != length {
                    return Err(self.short_answer(id, length, data.len()));
                }
                answers.push(data);
            }
            Ok(answers)
        })
    }

    /// The same register written on several servos, no answer expected.
    pub fn sync_write(&mut self, address: u16, length: u16, values: &[(u8, Vec<u8>)]) -> Result<(), DynamixelError> {
        let [a0, a1] = address.to_le_bytes();
        let [l0, l1] = length.to_le_bytes();
        self.send(&encode(BROADCAST_ID, instruction::SYNC_WRITE, &sync_write_params(&[a0, a1, l0, l1], values)))
    }

    /// Reads a servo's Hardware Error Status (after an alert).
    pub fn hardware_faults(&mut self, id: u8) -> Result<HardwareFaults, DynamixelError> {
        let packet = encode(id, instruction::READ, &[address::HARDWARE_ERROR_STATUS as u8, 0, 1, 0]);
        self.send(&packet)?;
        let status = self.receive(id)?;
        Ok(HardwareFaults(status.params.get(1).copied().unwrap_or(0)))
    }
}

/// What the arm needs of an X-series chain: torque, positions in 4-byte
/// ticks, and present current, velocity and position in one sync read.
impl ServoBus for DynamixelBus {
    fn ping(&mut self, id: u8) -> Result<u16, ServoBusError> {
        Ok(DynamixelBus::ping(self, id)?)
    }

    fn set_torque(&mut self, ids: &[u8], on: bool) -> Result<(), ServoBusError> {
        let values: Vec<(u8, Vec<u8>)> = ids.iter().map(|&id| (id, vec![u8::from(on)])).collect();
        Ok(self.sync_write(address::TORQUE_ENABLE, 1, &values)?)
    }

    fn hold_present_position(&mut self, ids: &[u8]) -> Result<(), ServoBusError> {
        let positions = self.sync_read(ids, address::PRESENT_POSITION, 4)?;
        let goals: Vec<(u8, Vec<u8>)> = ids.iter().copied().zip(positions).collect();
        Ok(self.sync_write(address::GOAL_POSITION, 4, &goals)?)
    }

    fn read_present(&mut self, ids: &[u8]) -> Result<Vec<ServoSample>, ServoBusError> {
        // Present current (2 bytes, 2.69 mA), velocity (4, 0.229 rpm), position (4), contiguous from 126.
        let answers = self.sync_read(ids, address::PRESENT_CURRENT, 10)?;
        Ok(answers
            .iter()
            .map(|b| {
                let current = f64::from(i16::from_le_bytes([b[0], b[1]])) * 2.69e-3;
                let velocity = f64::from(i32::from_le_bytes([b[2], b[3], b[4], b[5]])) * 0.229 * TAU / 60.0;
                ServoSample { ticks: i32::from_le_bytes([b[6], b[7], b[8], b[9]]), velocity: ServoVelocity::RadiansPerSecond(velocity), effort: current }
            })
            .collect())
    }

    fn write_goal_positions(&mut self, goals: &[(u8, i32)]) -> Result<(), ServoBusError> {
        let values: Vec<(u8, Vec<u8>)> = goals.iter().map(|(id, ticks)| (*id, ticks.to_le_bytes().to_vec())).collect();
        Ok(self.sync_write(address::GOAL_POSITION, 4, &values)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_protocol_check_value_and_the_manual_example() {
        assert_eq!(crc16(b"123456789"), 0xFEE8);
        // Ping to id 1, from the protocol manual: FF FF FD 00 01 03 00 01 19 4E.
        assert_eq!(encode(1, instruction::PING, &[]), vec![0xFF, 0xFF, 0xFD, 0x00, 0x01, 0x03, 0x00, 0x01, 0x19, 0x4E]);
    }

    #[test]
    fn stuffing_round_trips_and_hides_the_header_pattern() {
        let raw = vec![0x03, 0xFF, 0xFF, 0xFD, 0x10, 0xFF, 0xFF, 0xFD];
        let stuffed = stuff(&raw);
        assert_eq!(stuffed, vec![0x03, 0xFF, 0xFF, 0xFD, 0xFD, 0x10, 0xFF, 0xFF, 0xFD, 0xFD]);
        assert_eq!(unstuff(&stuffed), raw);
        let packet = encode(7, instruction::WRITE, &[116, 0, 0xFF, 0xFF, 0xFD, 0x00]);
        let (decoded, used) = decode(&packet).unwrap();
        assert_eq!(used, packet.len());
        assert_eq!(decoded.params, vec![116, 0, 0xFF, 0xFF, 0xFD, 0x00]);
    }

    #[test]
    fn garbage_before_a_packet_is_skipped_and_a_bad_crc_names_the_offset() {
        let mut bytes = vec![0x00, 0x13, 0x37];
        bytes.extend(encode(2, instruction::STATUS, &[0, 1, 2]));
        let (packet, used) = decode(&bytes).unwrap();
        assert_eq!((packet.id, used), (2, bytes.len()));
        let last = bytes.len() - 1;
        bytes[last] ^= 0xFF;
        match decode(&bytes) {
            Err(DecodeError::Crc { id: 2, offset: 3, .. }) => {}
            other => panic!("{other:?}"),
        }
    }
}
