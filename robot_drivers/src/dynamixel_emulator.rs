//! A device emulator: a chain of Dynamixel X-series servos (XM430-W350
//! control table) answering Protocol 2.0 on the far end of a serial port,
//! with simple dynamics (present position follows the goal with a first
//! order lag and a speed cap while torque is on) and injectable faults (dropped answers, corrupted CRCs,
//! hardware alerts, unplugging). Used by tests and benchmarks, and checked
//! against the manufacturer's Python SDK.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use std::sync::Arc;

use serialport::SerialPort;

use crate::dynamixel::{address, encode, instruction, DecodeError, Packet, Protocol2, BROADCAST_ID};
use crate::servo_emulation::{self, first_order_step, AnswerFaults, EmulatedChain, EmulatedServo, SLEW_TICKS_PER_MS};
use crate::worker::Worker;

pub const XM430_W350_MODEL: u16 = 1020;

/// Faults to inject, shared with the emulator thread.
#[derive(Debug, Default)]
pub struct Faults {
    /// The next this-many answers are not sent.
    pub drop_answers: AtomicU32,
    /// The next this-many answers go out with a wrong CRC.
    pub corrupt_answers: AtomicU32,
    /// While set, nothing answers (a cable pulled).
    pub unplugged: AtomicBool,
    /// Hardware Error Status bits raised on the servo with id `alert_id`.
    pub alert_bits: AtomicU8,
    pub alert_id: AtomicU8,
}

fn new_servo(id: u8) -> EmulatedServo {
    let mut table = [0u8; 256];
    table[address::MODEL_NUMBER as usize..][..2].copy_from_slice(&XM430_W350_MODEL.to_le_bytes());
    table[6] = 45; // firmware version
    table[7] = id;
    table[address::OPERATING_MODE as usize] = 3; // position control
    let start = 2048i32;
    table[address::GOAL_POSITION as usize..][..4].copy_from_slice(&start.to_le_bytes());
    table[address::PRESENT_POSITION as usize..][..4].copy_from_slice(&start.to_le_bytes());
    EmulatedServo { id, table, position: f64::from(start) }
}

fn read_i32(servo: &EmulatedServo, at: u16) -> i32 {
    i32::from_le_bytes(servo.table[at as usize..][..4].try_into().expect("4 bytes"))
}

fn advance(servo: &mut EmulatedServo, ms: f64) {
    let goal = f64::from(read_i32(servo, address::GOAL_POSITION));
    let velocity = if servo.table[address::TORQUE_ENABLE as usize] == 1 {
        let step = first_order_step(goal - servo.position, ms, SLEW_TICKS_PER_MS);
        servo.position += step;
        if ms > 0.0 { step / ms } else { 0.0 }
    } else {
        0.0
    };
    let present = servo.position.round() as i32;
    servo.table[address::PRESENT_POSITION as usize..][..4].copy_from_slice(&present.to_le_bytes());
    // Velocity in units of 0.229 rpm: ticks/ms -> rev/min.
    let rpm = velocity * 1000.0 * 60.0 / 4096.0;
    let units = (rpm / 0.229).round() as i32;
    servo.table[address::PRESENT_VELOCITY as usize..][..4].copy_from_slice(&units.to_le_bytes());
    // Current (units of 2.69 mA) as a proportional controller would draw: with the distance to the goal.
    let current = if servo.table[address::TORQUE_ENABLE as usize] == 1 { ((goal - servo.position) * 0.8).clamp(-1193.0, 1193.0).round() as i16 } else { 0 };
    servo.table[address::PRESENT_CURRENT as usize..][..2].copy_from_slice(&current.to_le_bytes());
}

/// The emulator thread; stops when dropped.
pub struct DynamixelEmulator {
    faults: Arc<Faults>,
    _thread: Worker,
}

impl DynamixelEmulator {
    /// Serves servos `ids` on the serial port at `path`.
    pub fn spawn(path: &str, baud: u32, ids: &[u8]) -> Result<DynamixelEmulator, crate::serial::SerialError> {
        let faults = Arc::new(Faults::default());
        let chain = Chain { servos: ids.iter().map(|&id| new_servo(id)).collect(), faults: faults.clone() };
        let thread = servo_emulation::serve("dynamixel-emulator", path, baud, chain)?;
        Ok(DynamixelEmulator { faults, _thread: thread })
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }
}

struct Chain {
    servos: Vec<EmulatedServo>,
    faults: Arc<Faults>,
}

impl EmulatedChain for Chain {
    type Framing = Protocol2;

    fn advance(&mut self, ms: f64) {
        for servo in &mut self.servos {
            advance(servo, ms);
        }
    }

    fn answer(&mut self, port: &mut dyn SerialPort, packet: Packet) {
        for answer in respond(&mut self.servos, &self.faults, packet.id, packet.instruction, &packet.params) {
            send(port, &self.faults, answer);
        }
    }

    /// A servo whose instruction arrived garbled says so (CRC error status).
    fn reject(&mut self, port: &mut dyn SerialPort, error: &DecodeError) {
        if let DecodeError::Crc { id, .. } = *error {
            if self.servos.iter().any(|s| s.id == id) {
                send(port, &self.faults, encode(id, instruction::STATUS, &[3]));
            }
        }
    }
}

fn send(port: &mut dyn SerialPort, faults: &Faults, packet: Vec<u8>) {
    if faults.unplugged.load(Ordering::Relaxed) {
        return;
    }
    servo_emulation::send_answer(port, AnswerFaults { drop: &faults.drop_answers, corrupt: &faults.corrupt_answers, noise_before: None }, packet);
}

fn status(servo: &EmulatedServo, faults: &Faults, data: &[u8]) -> Vec<u8> {
    let alert = faults.alert_id.load(Ordering::Relaxed) == servo.id && faults.alert_bits.load(Ordering::Relaxed) != 0;
    let mut params = vec![if alert { 0x80 } else { 0 }];
    params.extend_from_slice(data);
    encode(servo.id, instruction::STATUS, &params)
}

fn respond(servos: &mut [EmulatedServo], faults: &Faults, id: u8, op: u8, params: &[u8]) -> Vec<Vec<u8>> {
    let word = |i: usize| u16::from_le_bytes([params[i], params[i + 1]]);
    let alert_id = faults.alert_id.load(Ordering::Relaxed);
    let alert_bits = faults.alert_bits.load(Ordering::Relaxed);
    for servo in servos.iter_mut() {
        servo.table[address::HARDWARE_ERROR_STATUS as usize] = if servo.id == alert_id { alert_bits } else { 0 };
    }
    // Data Limit / Access errors: a range past the control table.
    let access_error = |s: &EmulatedServo| encode(s.id, instruction::STATUS, &[7]);
    match op {
        instruction::PING => servos
            .iter()
            .filter(|s| id == BROADCAST_ID || s.id == id)
            .map(|s| status(s, faults, &[s.table[0], s.table[1], s.table[6]]))
            .collect(),
        instruction::READ if params.len() == 4 => {
            let (at, len) = (word(0) as usize, word(2) as usize);
            servos
                .iter()
                .filter(|s| s.id == id)
                .map(|s| match s.registers(at, len) {
                    Some(data) => status(s, faults, data),
                    None => access_error(s),
                })
                .collect()
        }
        instruction::WRITE if params.len() > 2 => {
            let at = word(0) as usize;
            servos.iter_mut().filter(|s| s.id == id).map(|s| if s.set_registers(at, &params[2..]) { status(s, faults, &[]) } else { access_error(s) }).collect()
        }
        instruction::SYNC_READ if params.len() >= 4 => {
            servo_emulation::sync_read(servos, &params[4..], word(0) as usize, word(2) as usize).map(|(s, data)| status(s, faults, data)).collect()
        }
        instruction::BULK_READ if !params.is_empty() && params.len() % 5 == 0 => params
            .chunks_exact(5)
            .filter_map(|entry| {
                let (at, len) = (usize::from(u16::from_le_bytes([entry[1], entry[2]])), usize::from(u16::from_le_bytes([entry[3], entry[4]])));
                let servo = servos.iter().find(|s| s.id == entry[0])?;
                Some(status(servo, faults, servo.registers(at, len)?))
            })
            .collect(),
        instruction::SYNC_WRITE if params.len() >= 4 => {
            servo_emulation::sync_write(servos, word(0) as usize, word(2) as usize, &params[4..]);
            Vec::new()
        }
        _ => servos.iter().filter(|s| s.id == id).map(|s| encode(s.id, instruction::STATUS, &[2])).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamixel::{DynamixelBus, DynamixelError};
    use crate::pty::PtyPair;
    use std::time::Duration;

    fn bus_and_emulator(ids: &[u8]) -> (PtyPair, DynamixelEmulator, DynamixelBus) {
        let pair = PtyPair::spawn().unwrap();
        let emulator = DynamixelEmulator::spawn(pair.b(), 1_000_000, ids).unwrap();
        let bus = DynamixelBus::open(pair.a(), 1_000_000, Duration::from_millis(30), 2).unwrap();
        (pair, emulator, bus)
    }

    #[test]
    fn bulk_read_answers_each_servo_its_own_register_in_order() {
        let (_pair, _emulator, mut bus) = bus_and_emulator(&[1, 2, 3]);
        bus.write(2, address::GOAL_POSITION, &2222i32.to_le_bytes()).unwrap();
        let answers = bus.bulk_read(&[(3, address::MODEL_NUMBER, 2), (2, address::GOAL_POSITION, 4), (1, address::OPERATING_MODE, 1)]).unwrap();
        assert_eq!(answers, vec![XM430_W350_MODEL.to_le_bytes().to_vec(), 2222i32.to_le_bytes().to_vec(), vec![3]]);
        // A servo missing from the chain: the read names it after its retries.
        match bus.bulk_read(&[(1, address::OPERATING_MODE, 1), (9, address::OPERATING_MODE, 1)]) {
            Err(DynamixelError::Timeout { id, .. }) => assert_eq!(id, 9),
            other => panic!("expected a timeout naming servo 9, got {other:?}"),
        }
    }

    #[test]
    fn ping_read_write_sync_read_and_sync_write_against_the_emulator() {
        let (_pair, _emulator, mut bus) = bus_and_emulator(&[1, 2, 3]);
        assert_eq!(bus.ping(2).unwrap(), XM430_W350_MODEL);
        for id in [1, 2, 3] {
            bus.write(id, address::TORQUE_ENABLE, &[1]).unwrap();
        }
        bus.sync_write(address::GOAL_POSITION, 4, &[(1, 2100i32.to_le_bytes().to_vec()), (2, 2000i32.to_le_bytes().to_vec()), (3, 2048i32.to_le_bytes().to_vec())]).unwrap();
        // The servos follow with a 30 ms lag: ten time constants.
        std::thread::sleep(Duration::from_millis(300));
        let present = bus.sync_read(&[1, 2, 3], address::PRESENT_POSITION, 4).unwrap();
        let ticks: Vec<i32> = present.iter().map(|b| i32::from_le_bytes(b[..4].try_into().unwrap())).collect();
        assert_eq!(ticks, vec![2100, 2000, 2048], "servos slewed to their goals");
        assert_eq!(bus.read(3, address::OPERATING_MODE, 1).unwrap(), vec![3]);
    }

    #[test]
    fn a_missing_servo_times_out_naming_port_and_id() {
        let (pair, _emulator, mut bus) = bus_and_emulator(&[1]);
        let err = bus.ping(9).unwrap_err();
        match &err {
            DynamixelError::Timeout { id: 9, attempts: 3, .. } => {}
            other => panic!("{other}"),
        }
        assert!(err.to_string().contains(pair.a()), "{err}");
    }

    /// Fault matrix: garbage on the serial line | the Dynamixel emulator drops and corrupts (CRC) answers | retries | two bad answers then success; five are a Corrupt(Crc) error naming the servo
    #[test]
    fn dropped_and_corrupted_answers_are_retried() {
        let (_pair, emulator, mut bus) = bus_and_emulator(&[1]);
        emulator.faults().drop_answers.store(1, Ordering::Relaxed);
        emulator.faults().corrupt_answers.store(1, Ordering::Relaxed);
        assert_eq!(bus.ping(1).unwrap(), XM430_W350_MODEL, "two bad answers, two retries, then success");
        emulator.faults().corrupt_answers.store(5, Ordering::Relaxed);
        match bus.ping(1) {
            Err(DynamixelError::Corrupt { source: DecodeError::Crc { id: 1, .. }, .. }) => {}
            other => panic!("expected a CRC error after the retries, got {other:?}"),
        }
    }

    #[test]
    fn a_hardware_alert_is_a_typed_error_with_the_fault_names() {
        let (_pair, emulator, mut bus) = bus_and_emulator(&[1, 2]);
        emulator.faults().alert_id.store(2, Ordering::Relaxed);
        emulator.faults().alert_bits.store(super::super::dynamixel::HardwareFaults::OVERLOAD | super::super::dynamixel::HardwareFaults::OVERHEATING, Ordering::Relaxed);
        assert!(bus.ping(1).is_ok());
        assert!(matches!(bus.ping(2), Err(DynamixelError::Hardware { id: 2, .. })));
        let faults = bus.hardware_faults(2).unwrap();
        assert_eq!(faults.names(), vec!["overheating", "overload"]);
    }

    #[test]
    fn an_unplugged_bus_recovers_when_the_cable_returns() {
        let (_pair, emulator, mut bus) = bus_and_emulator(&[4]);
        emulator.faults().unplugged.store(true, Ordering::Relaxed);
        assert!(matches!(bus.ping(4), Err(DynamixelError::Timeout { .. })));
        emulator.faults().unplugged.store(false, Ordering::Relaxed);
        assert_eq!(bus.ping(4).unwrap(), XM430_W350_MODEL);
    }
}
