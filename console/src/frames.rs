//! The policy's newest frames as one PNG for the page: the cameras side by
//! side. Encoded on the console's thread, once per frame whatever the
//! number of pages.

use rrl_types::frame_tap::TappedFrames;

/// A frame ready to serve.
#[derive(Debug, Clone)]
pub struct EncodedFrame {
    /// Counts the frames encoded: pages reload the image when it changes.
    pub sequence: u64,
    pub step: u64,
    pub width: usize,
    pub height: usize,
    pub cameras: usize,
    pub png: axum::body::Bytes,
}

/// `None` when the frames do not match their layout.
pub fn encode(frames: &TappedFrames, sequence: u64) -> Option<EncodedFrame> {
    let layout = frames.layout?;
    if layout.bytes() != frames.pixels.len() || layout.bytes() == 0 {
        return None;
    }
    let (w, h, n) = (layout.width, layout.height, layout.cameras);
    // Cameras side by side: row r of the sheet is row r of every camera.
    let mut sheet = Vec::with_capacity(layout.bytes());
    for row in 0..h {
        for camera in 0..n {
            let start = (camera * h + row) * w * 3;
            sheet.extend_from_slice(&frames.pixels[start..start + w * 3]);
        }
    }
    let mut png = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png, (w * n) as u32, h as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        // A view for a person, several times a second: speed over size.
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder.write_header().ok()?;
        writer.write_image_data(&sheet).ok()?;
    }
    Some(EncodedFrame { sequence, step: frames.step, width: w * n, height: h, cameras: n, png: png.into() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rrl_types::FrameLayout;

    #[test]
    fn two_cameras_sit_side_by_side() {
        // Camera 0 all 10s, camera 1 all 200s, each 2x3.
        let mut pixels = vec![10u8; 2 * 3 * 3];
        pixels.extend(vec![200u8; 2 * 3 * 3]);
        let frames = TappedFrames { layout: Some(FrameLayout { cameras: 2, height: 2, width: 3 }), pixels, step: 7 };
        let encoded = encode(&frames, 1).unwrap();
        assert_eq!((encoded.width, encoded.height, encoded.step), (6, 2, 7));
        let decoder = png::Decoder::new(std::io::Cursor::new(encoded.png.to_vec()));
        let mut reader = decoder.read_info().unwrap();
        let mut out = vec![0; reader.output_buffer_size()];
        reader.next_frame(&mut out).unwrap();
        let row: Vec<u8> = out[..18].iter().step_by(3).copied().collect();
        assert_eq!(row, vec![10, 10, 10, 200, 200, 200]);
        assert!(encode(&TappedFrames { pixels: vec![0; 5], ..frames }, 2).is_none(), "a short frame is refused");
    }
}
