//! A device emulator: a chain of Feetech STS3215 servos answering the
//! SCServo protocol on the far end of a serial port, with the same simple
//! dynamics as the Dynamixel emulator and injectable faults (dropped,
//! corrupted or noisy answers, status error bits, unplugging). Used by
//! tests, and checked against Feetech's own Python SDK
//! (feetech-servo-sdk). A test's hand can move servos whose torque is off
//! (a leader arm) and watch where each servo is. Reached as
//! `feetech::emulator`.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use serialport::SerialPort;

use crate::feetech::{address, encode, instruction, sign_magnitude, DecodeError, Packet, Scs, BROADCAST_ID, STS3215_MODEL};
use crate::servo_emulation::{self, first_order_step, AnswerFaults, EmulatedChain, EmulatedServo, SLEW_TICKS_PER_MS};
use crate::worker::Worker;

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

/// What a test sees of the servos and does to them by hand (test-side
/// state; the locks are the emulator's, never a driver's).
#[derive(Debug, Default)]
struct Hand {
    /// Where a hand holds each servo, in ticks: servos with torque off follow it.
    holds: Mutex<Vec<(u8, f64)>>,
    /// Where each servo is, in ticks, as of the last advance.
    positions: Mutex<Vec<(u8, f64)>>,
    /// Well-formed packets heard while plugged in.
    packets: AtomicU64,
}

/// The emulator thread; stops when dropped.
pub struct FeetechEmulator {
    faults: Arc<Faults>,
    hand: Arc<Hand>,
    _thread: Worker,
}

impl FeetechEmulator {
    pub fn spawn(path: &str, baud: u32, ids: &[u8]) -> Result<FeetechEmulator, crate::serial::SerialError> {
        let (faults, hand) = (Arc::new(Faults::default()), Arc::new(Hand::default()));
        let chain = Chain { servos: ids.iter().map(|&id| new_servo(id)).collect(), faults: faults.clone(), hand: hand.clone() };
        let thread = servo_emulation::serve("feetech-emulator", path, baud, chain)?;
        Ok(FeetechEmulator { faults, hand, _thread: thread })
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// A hand moves servo `id` to `ticks` (it gets there as a person's hand
    /// would, in a few tenths of a second) and holds it there. Only a servo
    /// with its torque off gives way, as a leader arm's do.
    pub fn move_by_hand(&self, id: u8, ticks: f64) {
        let mut holds = self.hand.holds.lock().expect("the emulator's hand");
        holds.retain(|(held, _)| *held != id);
        holds.push((id, ticks));
    }

    /// Where servo `id` is, in ticks.
    pub fn position(&self, id: u8) -> Option<f64> {
        self.hand.positions.lock().expect("the emulator's hand").iter().find(|(s, _)| *s == id).map(|(_, ticks)| *ticks)
    }

    /// Well-formed packets the chain has heard while plugged in (each
    /// control tick of a driver sends at least one).
    pub fn packets(&self) -> u64 {
        self.hand.packets.load(Ordering::Relaxed)
    }
}

fn new_servo(id: u8) -> EmulatedServo {
    let mut table = [0u8; 256];
    table[address::MODEL_NUMBER as usize..][..2].copy_from_slice(&STS3215_MODEL.to_le_bytes());
    table[address::ID as usize] = id;
    table[address::GOAL_POSITION as usize..][..2].copy_from_slice(&2048u16.to_le_bytes());
    table[address::PRESENT_POSITION as usize..][..2].copy_from_slice(&2048u16.to_le_bytes());
    EmulatedServo { id, table, position: 2048.0 }
}

/// A person's hand moves a limp servo: quickly, but not at once.
const HAND_TICKS_PER_MS: f64 = 8.0;

fn advance(servo: &mut EmulatedServo, ms: f64, held_at: Option<f64>) {
    let (mut speed, mut load) = (0.0, 0.0);
    let torque = servo.table[address::TORQUE_ENABLE as usize] == 1;
    if let (false, Some(target)) = (torque, held_at) {
        let step = first_order_step(target - servo.position, ms, HAND_TICKS_PER_MS);
        servo.position += step;
        speed = if ms > 0.0 { step / ms * 1000.0 } else { 0.0 };
    }
    if torque {
        let at = address::GOAL_POSITION as usize;
        let goal = f64::from(u16::from_le_bytes([servo.table[at], servo.table[at + 1]]));
        let step = first_order_step(goal - servo.position, ms, SLEW_TICKS_PER_MS);
        servo.position += step;
        // Speed in ticks per second, load in 0.1 % of rated torque.
        speed = if ms > 0.0 { step / ms * 1000.0 } else { 0.0 };
        load = ((goal - servo.position) * 0.5).clamp(-1000.0, 1000.0);
    }
    servo.table[address::PRESENT_POSITION as usize..][..2].copy_from_slice(&(servo.position.round() as u16).to_le_bytes());
    servo.table[address::PRESENT_SPEED as usize..][..2].copy_from_slice(&sign_magnitude(speed, 15).to_le_bytes());
    servo.table[address::PRESENT_LOAD as usize..][..2].copy_from_slice(&sign_magnitude(load, 10).to_le_bytes());
}

struct Chain {
    servos: Vec<EmulatedServo>,
    faults: Arc<Faults>,
    hand: Arc<Hand>,
}

impl EmulatedChain for Chain {
    type Framing = Scs;

    fn advance(&mut self, ms: f64) {
        let holds = self.hand.holds.lock().expect("the emulator's hand").clone();
        for servo in &mut self.servos {
            advance(servo, ms, holds.iter().find(|(id, _)| *id == servo.id).map(|(_, ticks)| *ticks));
        }
        *self.hand.positions.lock().expect("the emulator's hand") = self.servos.iter().map(|s| (s.id, s.position)).collect();
    }

    fn answer(&mut self, port: &mut dyn SerialPort, packet: Packet) {
        // Unplugged: the servos neither hear nor answer.
        if self.faults.unplugged.load(Ordering::Relaxed) {
            return;
        }
        self.hand.packets.fetch_add(1, Ordering::Relaxed);
        let faults = &self.faults;
        for answer in respond(&mut self.servos, faults, &packet) {
            let wire = AnswerFaults { drop: &faults.drop_answers, corrupt: &faults.corrupt_answers, noise_before: Some(&faults.garbage_before) };
            servo_emulation::send_answer(port, wire, answer);
        }
    }

    /// A garbled instruction goes unanswered, as on the real bus.
    fn reject(&mut self, _port: &mut dyn SerialPort, _error: &DecodeError) {}
}

fn respond(servos: &mut [EmulatedServo], faults: &Faults, packet: &Packet) -> Vec<Vec<u8>> {
    let error_of = |id: u8| if faults.fault_id.load(Ordering::Relaxed) == id { faults.fault_bits.load(Ordering::Relaxed) } else { 0 };
    let p = &packet.params;
    match packet.instruction {
        instruction::PING => servos.iter().filter(|s| s.id == packet.id).map(|s| encode(s.id, error_of(s.id), &[])).collect(),
        instruction::READ if p.len() == 2 => {
            let (at, len) = (p[0] as usize, p[1] as usize);
            servos.iter().filter(|s| s.id == packet.id).filter_map(|s| Some(encode(s.id, error_of(s.id), s.registers(at, len)?))).collect()
        }
        instruction::WRITE if p.len() > 1 => servos
            .iter_mut()
            .filter(|s| s.id == packet.id)
            .map(|s| {
                // Past the table: nothing written, but the servo still answers.
                s.set_registers(p[0] as usize, &p[1..]);
                encode(s.id, error_of(s.id), &[])
            })
            .collect(),
        instruction::SYNC_READ if packet.id == BROADCAST_ID && p.len() >= 2 => {
            servo_emulation::sync_read(servos, &p[2..], p[0] as usize, p[1] as usize).map(|(s, data)| encode(s.id, error_of(s.id), data)).collect()
        }
        instruction::SYNC_WRITE if packet.id == BROADCAST_ID && p.len() >= 2 => {
            servo_emulation::sync_write(servos, p[0] as usize, p[1] as usize, &p[2..]);
            Vec::new()
        }
        _ => Vec::new(),
    }
}
