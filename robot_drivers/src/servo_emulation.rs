//! What the two servo-chain emulators share: the thread that serves a
//! chain on the far end of a serial port (read, move the servos on, answer
//! each packet), the servos' control tables and dynamics, and faults
//! injected into answers on the wire.

use std::io::Read;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serialport::SerialPort;

use crate::servo_wire::{Framing, Resync};
use crate::worker::{stopping, Worker};

/// Position ticks a servo moves per millisecond toward its goal.
pub(crate) const SLEW_TICKS_PER_MS: f64 = 4.0;

/// Time constant of the emulated servos' response.
const LAG_MS: f64 = 30.0;

/// How far a servo moves in `ms` toward a goal `error` ticks away: a first
/// order lag (time constant `LAG_MS`, as a position loop gives) capped at
/// `max_ticks_per_ms`.
pub(crate) fn first_order_step(error: f64, ms: f64, max_ticks_per_ms: f64) -> f64 {
    (error * (1.0 - (-ms / LAG_MS).exp())).clamp(-max_ticks_per_ms * ms, max_ticks_per_ms * ms)
}

/// One emulated servo: its id, its control table, and where it really is
/// (finer than the table's whole ticks).
pub(crate) struct EmulatedServo {
    pub id: u8,
    pub table: [u8; 256],
    pub position: f64,
}

impl EmulatedServo {
    /// `len` registers from `at`, if the table has them.
    pub fn registers(&self, at: usize, len: usize) -> Option<&[u8]> {
        self.table.get(at..at.checked_add(len)?)
    }

    /// Writes `data` from `at`; false (and nothing written) past the table.
    pub fn set_registers(&mut self, at: usize, data: &[u8]) -> bool {
        match self.table.get_mut(at..at + data.len()) {
            Some(registers) => {
                registers.copy_from_slice(data);
                true
            }
            None => false,
        }
    }
}

/// The servos a sync read asks for, in its order, with their `len`
/// registers from `at`; ids not on the chain (and registers past the
/// table) get no answer.
pub(crate) fn sync_read<'a>(servos: &'a [EmulatedServo], ids: &'a [u8], at: usize, len: usize) -> impl Iterator<Item = (&'a EmulatedServo, &'a [u8])> + 'a {
    ids.iter().filter_map(|want| servos.iter().find(|s| s.id == *want)).filter_map(move |s| Some((s, s.registers(at, len)?)))
}

/// A sync write's entries (id, then `len` bytes) written from `at` on the
/// servos that are on the chain.
pub(crate) fn sync_write(servos: &mut [EmulatedServo], at: usize, len: usize, entries: &[u8]) {
    for entry in entries.chunks_exact(len + 1) {
        if let Some(servo) = servos.iter_mut().find(|s| s.id == entry[0]) {
            servo.set_registers(at, &entry[1..]);
        }
    }
}

/// Uses up one of a fault counter's answers; false once it is at zero.
pub(crate) fn take_one(counter: &AtomicU32) -> bool {
    counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok()
}

/// The fault counters that act on answers as they go out.
pub(crate) struct AnswerFaults<'a> {
    /// Answers not sent.
    pub drop: &'a AtomicU32,
    /// Answers sent with their last (check) byte flipped.
    pub corrupt: &'a AtomicU32,
    /// Answers preceded by line noise.
    pub noise_before: Option<&'a AtomicU32>,
}

/// Writes `answer` as the faults say: dropped, corrupted, after noise, or as is.
pub(crate) fn send_answer(port: &mut dyn SerialPort, faults: AnswerFaults<'_>, mut answer: Vec<u8>) {
    if take_one(faults.drop) {
        return;
    }
    if take_one(faults.corrupt) {
        let last = answer.len() - 1;
        answer[last] ^= 0x5A;
    }
    if faults.noise_before.is_some_and(take_one) {
        let _ = port.write_all(&[0x00, 0x13, 0xFF, 0x42]);
    }
    let _ = port.write_all(&answer);
}

/// A chain of servos as its emulator thread drives it.
pub(crate) trait EmulatedChain: Send + 'static {
    type Framing: Framing;
    /// Moves the servos on by `ms` milliseconds.
    fn advance(&mut self, ms: f64);
    /// Answers one well-formed packet.
    fn answer(&mut self, port: &mut dyn SerialPort, packet: <Self::Framing as Framing>::Packet);
    /// A packet that failed its check, already skipped.
    fn reject(&mut self, port: &mut dyn SerialPort, error: &<Self::Framing as Framing>::DecodeError);
}

/// Serves `chain` on the serial port at `path` from a thread named `name`,
/// until the returned worker is dropped.
pub(crate) fn serve<C: EmulatedChain>(name: &str, path: &str, baud: u32, mut chain: C) -> Result<Worker, crate::serial::SerialError> {
    // A short read timeout: the servos move on between packets.
    let mut port = crate::serial::open(path, baud, Duration::from_millis(2))?;
    let worker = Worker::spawn(name, move |stop| {
        let (mut buffer, mut chunk, mut last) = (Vec::new(), [0u8; 512], Instant::now());
        while !stopping(stop) {
            if let Ok(n) = port.read(&mut chunk) {
                buffer.extend_from_slice(&chunk[..n]);
            }
            let ms = last.elapsed().as_secs_f64() * 1000.0;
            last = Instant::now();
            chain.advance(ms);
            loop {
                match C::Framing::decode(&buffer) {
                    Ok((packet, used)) => {
                        buffer.drain(..used);
                        chain.answer(port.as_mut(), packet);
                    }
                    Err(error) => match C::Framing::resync(&error) {
                        Resync::Corrupt { skip } => {
                            buffer.drain(..skip);
                            chain.reject(port.as_mut(), &error);
                        }
                        Resync::Noise { offset } => {
                            buffer.drain(..offset);
                            break;
                        }
                        Resync::NeedMore => break,
                    },
                }
            }
        }
    })
    // As `std::thread::spawn` would: no thread is not a state a test can go on from.
    .expect("spawn the servo emulator thread");
    Ok(worker)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_past_the_table_are_neither_read_nor_written() {
        let mut servo = EmulatedServo { id: 1, table: [0; 256], position: 0.0 };
        assert!(servo.set_registers(254, &[7, 8]));
        assert_eq!(servo.registers(254, 2), Some(&[7u8, 8][..]));
        assert!(!servo.set_registers(255, &[1, 2]));
        assert_eq!(servo.registers(255, 2), None);
        assert_eq!(servo.table[255], 8);
    }

    #[test]
    fn sync_reads_and_writes_reach_only_the_servos_on_the_chain_in_order() {
        let mut servos: Vec<EmulatedServo> = [1u8, 2, 3].iter().map(|&id| EmulatedServo { id, table: [id; 256], position: 0.0 }).collect();
        sync_write(&mut servos, 10, 2, &[3, 0xA, 0xB, 9, 0xC, 0xD, 1, 0xE, 0xF]);
        let answered: Vec<(u8, Vec<u8>)> = sync_read(&servos, &[3, 9, 1, 2], 10, 2).map(|(s, r)| (s.id, r.to_vec())).collect();
        assert_eq!(answered, vec![(3, vec![0xA, 0xB]), (1, vec![0xE, 0xF]), (2, vec![2, 2])]);
    }

    #[test]
    fn fault_counters_are_used_up_one_answer_at_a_time() {
        let counter = AtomicU32::new(2);
        assert!(take_one(&counter) && take_one(&counter) && !take_one(&counter));
        assert_eq!(counter.load(Ordering::Relaxed), 0);
    }
}
