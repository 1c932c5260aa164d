//! The safety gate's ticks in an episode file: one record per batch (the
//! ticks of one environment step), deflate-compressed. Layout before
//! compression: `[count u32 LE]`, then per tick `[index u64][stamp u64]
//! [verdict u8][detail u16][flags u8: bit 0 protective, bit 1 violation]
//! [risk f32][width u8][input f32 × width]`, all little-endian. The same
//! bytes carry the ticks from an actor to its learner over ROS 2.

use rrl_types::{GateTick, TickVerdict, MAX_TICK_INPUTS};

/// Bytes of one tick before its input.
const TICK_HEAD: usize = 8 + 8 + 1 + 2 + 1 + 4 + 1;
/// Fast deflate: a robot's computer records while it controls.
const LEVEL: u8 = 1;

/// The record payload for `ticks`.
pub fn encode(ticks: &[GateTick]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(4 + ticks.iter().map(|t| TICK_HEAD + 4 * usize::from(t.width)).sum::<usize>());
    raw.extend_from_slice(&(ticks.len() as u32).to_le_bytes());
    for tick in ticks {
        raw.extend_from_slice(&tick.index.to_le_bytes());
        raw.extend_from_slice(&tick.stamp_ns.to_le_bytes());
        raw.push(tick.verdict as u8);
        raw.extend_from_slice(&tick.detail.to_le_bytes());
        raw.push(u8::from(tick.protective) | u8::from(tick.violation) << 1);
        raw.extend_from_slice(&tick.risk.to_le_bytes());
        raw.push(tick.width);
        for v in tick.input() {
            raw.extend_from_slice(&v.to_le_bytes());
        }
    }
    miniz_oxide::deflate::compress_to_vec(&raw, LEVEL)
}

/// The ticks of a record payload; `Err` says what is wrong and where in
/// the decompressed batch.
pub fn decode(payload: &[u8], limit: usize) -> Result<Vec<GateTick>, String> {
    let raw = miniz_oxide::inflate::decompress_to_vec_with_limit(payload, limit).map_err(|e| format!("gate ticks do not inflate within {limit} bytes: {e:?}"))?;
    let count = raw.get(..4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize).ok_or("gate ticks: no count")?;
    let mut ticks = Vec::with_capacity(count.min(raw.len() / TICK_HEAD));
    let mut at = 4;
    for k in 0..count {
        let head = raw.get(at..at + TICK_HEAD).ok_or_else(|| format!("gate tick {k} of {count} cut short at byte {at}"))?;
        let u64_at = |o: usize| u64::from_le_bytes(head[o..o + 8].try_into().expect("8 bytes"));
        let verdict = TickVerdict::from_byte(head[16]).ok_or_else(|| format!("gate tick {k}: unknown verdict {} at byte {}", head[16], at + 16))?;
        let width = usize::from(head[24]);
        if width > MAX_TICK_INPUTS {
            return Err(format!("gate tick {k}: {width} inputs at byte {}, at most {MAX_TICK_INPUTS}", at + 24));
        }
        let body = raw.get(at + TICK_HEAD..at + TICK_HEAD + 4 * width).ok_or_else(|| format!("gate tick {k} of {count}: input cut short at byte {}", at + TICK_HEAD))?;
        let mut tick = GateTick {
            index: u64_at(0),
            stamp_ns: u64_at(8),
            verdict,
            detail: u16::from_le_bytes([head[17], head[18]]),
            protective: head[19] & 1 != 0,
            violation: head[19] & 2 != 0,
            risk: f32::from_le_bytes(head[20..24].try_into().expect("4 bytes")),
            width: head[24],
            ..GateTick::default()
        };
        for (slot, bytes) in tick.input.iter_mut().zip(body.chunks_exact(4)) {
            *slot = f32::from_le_bytes(bytes.try_into().expect("4 bytes"));
        }
        ticks.push(tick);
        at += TICK_HEAD + 4 * width;
    }
    if at != raw.len() {
        return Err(format!("{} bytes after the last of {count} gate ticks", raw.len() - at));
    }
    Ok(ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_round_trip_and_damage_is_named() {
        let mut ticks = Vec::new();
        for i in 0..50u64 {
            let mut t = GateTick { index: i, stamp_ns: 1_000 * i, verdict: if i % 7 == 0 { TickVerdict::Held } else { TickVerdict::Pass }, detail: (i % 3) as u16, protective: i % 7 == 0, violation: i == 9, risk: if i % 2 == 0 { f32::NAN } else { 0.25 }, width: 21, ..GateTick::default() };
            for (k, v) in t.input[..21].iter_mut().enumerate() {
                *v = (i as f32) * 0.01 + k as f32;
            }
            ticks.push(t);
        }
        let payload = encode(&ticks);
        let back = decode(&payload, 1 << 20).unwrap();
        assert_eq!(back.len(), 50);
        for (a, b) in ticks.iter().zip(&back) {
            assert_eq!((a.index, a.stamp_ns, a.verdict, a.detail, a.protective, a.violation, a.width), (b.index, b.stamp_ns, b.verdict, b.detail, b.protective, b.violation, b.width));
            assert_eq!(a.input(), b.input());
            assert_eq!(a.risk.to_bits(), b.risk.to_bits());
        }
        assert!(decode(&payload, 100).unwrap_err().contains("within 100 bytes"));
        // A batch that promises more ticks than it holds.
        let mut raw = miniz_oxide::inflate::decompress_to_vec(&payload).unwrap();
        raw[..4].copy_from_slice(&51u32.to_le_bytes());
        let lying = miniz_oxide::deflate::compress_to_vec(&raw, 1);
        assert!(decode(&lying, 1 << 20).unwrap_err().contains("gate tick 50 of 51 cut short"), "{}", decode(&lying, 1 << 20).unwrap_err());
    }
}
