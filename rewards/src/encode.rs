//! What a vision-language endpoint needs from a frame: a PNG (deflate at
//! the fastest level: a remote endpoint's bandwidth matters more than the
//! last percent of size) as a base64 `data:` URL.

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(BASE64[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// CRC-32 (IEEE) lookup table, built at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
};

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// An 8-bit RGB PNG of `rgb` (row-major, tightly packed).
pub fn png_rgb(width: u32, height: u32, rgb: &[u8]) -> Vec<u8> {
    let row = width as usize * 3;
    let mut raw = Vec::with_capacity((row + 1) * height as usize);
    for line in rgb.chunks(row) {
        raw.push(0); // filter: none
        raw.extend_from_slice(line);
    }
    // Level 1: several times smaller than stored blocks for camera frames, at a fraction of a millisecond.
    let zlib = miniz_oxide::deflate::compress_to_vec_zlib(&raw, 1);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit, truecolour, deflate, no filter, no interlace
    chunk(&mut out, b"IHDR", &header);
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// `data:image/png;base64,...` for a frame.
pub fn png_data_url(width: u32, height: u32, rgb: &[u8]) -> String {
    format!("data:image/png;base64,{}", base64(&png_rgb(width, height, rgb)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")] {
            assert_eq!(super::base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn the_crc_matches_its_check_value() {
        assert_eq!(super::crc32(b"123456789"), 0xCBF4_3926);
    }

    /// The PNG's image data inflates back to the filtered rows of the frame.
    #[test]
    fn a_png_holds_the_frame_compressed() {
        let rgb: Vec<u8> = (0..16 * 8 * 3).map(|i| (i % 7) as u8).collect();
        let png = super::png_rgb(16, 8, &rgb);
        let idat_at = png.windows(4).position(|w| w == b"IDAT").unwrap();
        let length = u32::from_be_bytes(png[idat_at - 4..idat_at].try_into().unwrap()) as usize;
        let raw = miniz_oxide::inflate::decompress_to_vec_zlib(&png[idat_at + 4..idat_at + 4 + length]).unwrap();
        let rows: Vec<u8> = rgb.chunks(48).flat_map(|row| std::iter::once(0).chain(row.iter().copied())).collect();
        assert_eq!(raw, rows);
        assert!(length < rows.len(), "compressed: {length} of {}", rows.len());
    }
}
