//! One observation's camera frames, encoded losslessly for episode files
//! and the actor → learner wire: one PNG per camera, so a frame read back
//! (or received) is the frame the policy saw, byte for byte, at a fraction
//! of its raw size, and an exporter can hand each camera's PNG to Foxglove
//! as it is.
//!
//! Layout: `[b"RF"][version u8][cameras u8][height u16 LE][width u16 LE]`,
//! then per camera `[length u32 LE][PNG]`. Decoding is bounded: the layout
//! is checked against limits before anything is allocated, and each PNG
//! must decode to exactly its camera's RGB8 image.

use rrl_types::FrameLayout;

const MAGIC: &[u8; 2] = b"RF";
const VERSION: u8 = 1;
const HEADER: usize = 2 + 1 + 1 + 2 + 2;
/// The most cameras and the largest side one observation may have.
pub const MAX_CAMERAS: usize = rrl_types::MAX_POLICY_CAMERAS;
pub const MAX_SIDE: usize = rrl_types::MAX_POLICY_CAMERA_SIDE;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FramesError {
    #[error("camera frames at byte {offset}: {problem}")]
    Damaged { offset: usize, problem: String },
    #[error("camera frames of {got} bytes; {layout_cameras} camera(s) of {width}x{height} RGB need {expected}")]
    Size { got: usize, expected: usize, layout_cameras: usize, width: usize, height: usize },
    #[error("frames of {got}, where {expected} are seen")]
    Layout { got: FrameLayout, expected: FrameLayout },
}

/// Encodes `rgb` (the cameras one after another, each `layout.height` rows
/// of `layout.width` RGB pixels).
pub fn encode(rgb: &[u8], layout: FrameLayout) -> Result<Vec<u8>, FramesError> {
    if rgb.len() != layout.bytes() {
        return Err(FramesError::Size { got: rgb.len(), expected: layout.bytes(), layout_cameras: layout.cameras, width: layout.width, height: layout.height });
    }
    if layout.cameras == 0 || layout.cameras > MAX_CAMERAS || layout.width == 0 || layout.height == 0 || layout.width > MAX_SIDE || layout.height > MAX_SIDE {
        return Err(FramesError::Damaged { offset: 0, problem: format!("a layout of {} camera(s) of {}x{} is outside 1..={MAX_CAMERAS} cameras of 1..={MAX_SIDE} pixels a side", layout.cameras, layout.width, layout.height) });
    }
    let mut out = Vec::with_capacity(HEADER + rgb.len() / 2);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(layout.cameras as u8);
    out.extend_from_slice(&(layout.height as u16).to_le_bytes());
    out.extend_from_slice(&(layout.width as u16).to_le_bytes());
    let camera_bytes = layout.height * layout.width * 3;
    for camera in rgb.chunks_exact(camera_bytes) {
        let length_at = out.len();
        out.extend_from_slice(&[0; 4]);
        encode_png(camera, layout.width as u32, layout.height as u32, &mut out);
        let length = (out.len() - length_at - 4) as u32;
        out[length_at..length_at + 4].copy_from_slice(&length.to_le_bytes());
    }
    Ok(out)
}

fn encode_png(rgb: &[u8], width: u32, height: u32, out: &mut Vec<u8>) {
    let mut encoder = png::Encoder::new(out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // Fast: a robot's 10 Hz leaves little time per frame on the actor.
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().expect("writing to memory");
    writer.write_image_data(rgb).expect("the buffer holds exactly one image");
}

/// The layout of encoded frames, read from their header only.
pub fn layout(bytes: &[u8]) -> Result<FrameLayout, FramesError> {
    let damaged = |offset: usize, problem: String| FramesError::Damaged { offset, problem };
    if bytes.len() < HEADER {
        return Err(damaged(0, format!("{} bytes, shorter than the {HEADER}-byte header", bytes.len())));
    }
    if &bytes[..2] != MAGIC {
        return Err(damaged(0, "not encoded camera frames (bad magic)".into()));
    }
    if bytes[2] != VERSION {
        return Err(damaged(2, format!("version {}, this build reads version {VERSION}", bytes[2])));
    }
    let cameras = usize::from(bytes[3]);
    let height = usize::from(u16::from_le_bytes([bytes[4], bytes[5]]));
    let width = usize::from(u16::from_le_bytes([bytes[6], bytes[7]]));
    if cameras == 0 || cameras > MAX_CAMERAS || height == 0 || width == 0 || height > MAX_SIDE || width > MAX_SIDE {
        return Err(damaged(3, format!("{cameras} camera(s) of {width}x{height}, outside 1..={MAX_CAMERAS} cameras of 1..={MAX_SIDE} pixels a side")));
    }
    Ok(FrameLayout { cameras, height, width })
}

/// Each camera's PNG, in camera order (for exporters that keep them encoded).
pub fn camera_pngs(bytes: &[u8]) -> Result<(FrameLayout, Vec<&[u8]>), FramesError> {
    let layout = layout(bytes)?;
    let mut offset = HEADER;
    let mut pngs = Vec::with_capacity(layout.cameras);
    for camera in 0..layout.cameras {
        let length = bytes.get(offset..offset + 4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize);
        let Some(length) = length.filter(|&l| l <= bytes.len() - offset - 4) else {
            return Err(FramesError::Damaged { offset, problem: format!("camera {camera}'s image runs past the end of the {} bytes", bytes.len()) });
        };
        pngs.push(&bytes[offset + 4..offset + 4 + length]);
        offset += 4 + length;
    }
    if offset != bytes.len() {
        return Err(FramesError::Damaged { offset, problem: format!("{} bytes after the last camera's image", bytes.len() - offset) });
    }
    Ok((layout, pngs))
}

/// Decodes frames into `out` (resized to the layout's bytes); their layout.
/// Every camera's PNG header is read and checked against the layout before
/// the frames' memory is allocated: a short message claiming huge frames
/// allocates nothing.
pub fn decode_into(bytes: &[u8], out: &mut Vec<u8>) -> Result<FrameLayout, FramesError> {
    let (layout, pngs) = camera_pngs(bytes)?;
    let camera_bytes = layout.height * layout.width * 3;
    let mut readers = Vec::with_capacity(pngs.len());
    for (camera, png_bytes) in pngs.into_iter().enumerate() {
        let bad = |problem: String| FramesError::Damaged { offset: HEADER, problem: format!("camera {camera}: {problem}") };
        let mut decoder = png::Decoder::new_with_limits(png_bytes, png::Limits { bytes: camera_bytes + 1024 });
        decoder.set_transformations(png::Transformations::IDENTITY);
        let reader = decoder.read_info().map_err(|e| bad(e.to_string()))?;
        let info = reader.info();
        if (info.width as usize, info.height as usize, info.color_type, info.bit_depth) != (layout.width, layout.height, png::ColorType::Rgb, png::BitDepth::Eight) {
            return Err(bad(format!("an image of {}x{} {:?} {:?}, the header promises {}x{} RGB8", info.width, info.height, info.color_type, info.bit_depth, layout.width, layout.height)));
        }
        readers.push(reader);
    }
    out.clear();
    out.resize(layout.bytes(), 0);
    for (camera, (mut reader, target)) in readers.into_iter().zip(out.chunks_exact_mut(camera_bytes)).enumerate() {
        reader.next_frame(target).map_err(|e| FramesError::Damaged { offset: HEADER, problem: format!("camera {camera}: {e}") })?;
    }
    Ok(layout)
}

/// Decodes frames that must be laid out as `expected`; their RGB bytes.
pub fn decode_as(bytes: &[u8], expected: FrameLayout) -> Result<Vec<u8>, FramesError> {
    let (got, rgb) = decode(bytes)?;
    match got == expected {
        true => Ok(rgb),
        false => Err(FramesError::Layout { got, expected }),
    }
}

/// Decodes frames; their layout and RGB bytes.
pub fn decode(bytes: &[u8]) -> Result<(FrameLayout, Vec<u8>), FramesError> {
    let mut out = Vec::new();
    let layout = decode_into(bytes, &mut out)?;
    Ok((layout, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(layout: FrameLayout, seed: u8) -> Vec<u8> {
        (0..layout.bytes()).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i / 97) as u8).collect()
    }

    #[test]
    fn frames_round_trip_byte_for_byte_and_each_camera_is_a_png() {
        let layout = FrameLayout { cameras: 2, height: 12, width: 20 };
        let rgb = frames(layout, 3);
        let encoded = encode(&rgb, layout).unwrap();
        assert_eq!(decode(&encoded).unwrap(), (layout, rgb));
        let (_, pngs) = camera_pngs(&encoded).unwrap();
        assert_eq!(pngs.len(), 2);
        assert!(pngs.iter().all(|p| p.starts_with(b"\x89PNG")));
        // A flat image compresses: the wire and the disk carry far less than raw.
        let flat = vec![90u8; FrameLayout { cameras: 2, height: 64, width: 64 }.bytes()];
        let encoded = encode(&flat, FrameLayout { cameras: 2, height: 64, width: 64 }).unwrap();
        assert!(encoded.len() * 20 < flat.len(), "{} bytes for {}", encoded.len(), flat.len());
    }

    #[test]
    fn damaged_or_oversized_frames_are_refused_where_they_go_wrong() {
        let layout = FrameLayout { cameras: 1, height: 4, width: 4 };
        let encoded = encode(&frames(layout, 0), layout).unwrap();
        assert!(decode(&encoded[..5]).unwrap_err().to_string().contains("shorter than the 8-byte header"));
        let mut bad_version = encoded.clone();
        bad_version[2] = 9;
        assert!(decode(&bad_version).unwrap_err().to_string().contains("version 9"));
        let mut huge = encoded.clone();
        huge[4..6].copy_from_slice(&60_000u16.to_le_bytes());
        assert!(decode(&huge).unwrap_err().to_string().contains("outside"), "a claimed 60000-row image is refused before any allocation");
        let cut = &encoded[..encoded.len() - 3];
        assert!(decode(cut).unwrap_err().to_string().contains("runs past the end"));
        let mut lying = encoded.clone();
        lying[6] = 5; // the header says 5 wide, the PNG is 4 wide
        assert!(decode(&lying).unwrap_err().to_string().contains("header promises 5x4"));
        assert!(encode(&[0; 5], layout).unwrap_err().to_string().contains("need 48"));
    }
}
