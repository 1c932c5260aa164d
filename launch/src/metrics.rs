//! Run metrics for people and their tools: TensorBoard event files (scalars,
//! written directly in TensorBoard's record format) and a PNG learning curve.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// CRC-32C (Castagnoli), as TFRecord framing requires.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c(bytes);
    (crc.rotate_right(15)).wrapping_add(0xA282_EAD8)
}

fn varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn length_delimited(field: u8, bytes: &[u8], out: &mut Vec<u8>) {
    out.push((field << 3) | 2);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// Appends scalars to a TensorBoard event file; each record is flushed, so
/// a crash loses at most the value being written.
pub struct TensorBoardWriter {
    file: BufWriter<File>,
    path: PathBuf,
}

impl TensorBoardWriter {
    pub fn create(dir: &Path) -> std::io::Result<TensorBoardWriter> {
        std::fs::create_dir_all(dir)?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "rrl".into());
        // The pid keeps two runs started in the same second (a resume) apart.
        let path = dir.join(format!("events.out.tfevents.{}.{host}.{}", now.as_secs(), std::process::id()));
        let mut writer = TensorBoardWriter { file: BufWriter::new(File::create(&path)?), path };
        let mut event = Vec::new();
        event.push(0x09);
        event.extend_from_slice(&now.as_secs_f64().to_le_bytes());
        length_delimited(3, b"brain.Event:2", &mut event);
        writer.record(&event)?;
        Ok(writer)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn record(&mut self, data: &[u8]) -> std::io::Result<()> {
        let length = (data.len() as u64).to_le_bytes();
        self.file.write_all(&length)?;
        self.file.write_all(&masked_crc(&length).to_le_bytes())?;
        self.file.write_all(data)?;
        self.file.write_all(&masked_crc(data).to_le_bytes())?;
        self.file.flush()
    }

    pub fn scalar(&mut self, tag: &str, step: u64, value: f64) -> std::io::Result<()> {
        let mut summary_value = Vec::new();
        length_delimited(1, tag.as_bytes(), &mut summary_value);
        summary_value.push(0x15);
        summary_value.extend_from_slice(&(value as f32).to_le_bytes());
        let mut summary = Vec::new();
        length_delimited(1, &summary_value, &mut summary);
        let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs_f64();
        let mut event = Vec::new();
        event.push(0x09);
        event.extend_from_slice(&wall.to_le_bytes());
        event.push(0x10);
        varint(step, &mut event);
        length_delimited(5, &summary, &mut event);
        self.record(&event)
    }
}

/// Draws `points` (x, value) as a line chart PNG with labelled axes.
pub fn learning_curve_png(path: &Path, title: &str, x_label: &str, y_label: &str, points: &[(u64, f64)]) -> anyhow::Result<()> {
    use plotters::prelude::*;
    register_font()?;
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let x_max = points.iter().map(|p| p.0).max().unwrap_or(1).max(1) as f64;
    let (y_min, y_max) = points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    let (y_min, y_max) = if y_min.is_finite() && y_max > y_min { (y_min, y_max) } else { (y_min.min(0.0) - 1.0, y_max.max(0.0) + 1.0) };
    let pad = 0.05 * (y_max - y_min);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, (y_min - pad)..(y_max + pad))?;
    chart.configure_mesh().x_label_formatter(&|x| format!("{x:.0}")).x_desc(x_label).y_desc(y_label).label_style(("sans-serif", 16)).draw()?;
    chart.draw_series(LineSeries::new(points.iter().map(|&(x, y)| (x as f64, y)), BLUE.stroke_width(2)))?;
    chart.draw_series(points.iter().map(|&(x, y)| Circle::new((x as f64, y), 4, BLUE.filled())))?;
    root.present()?;
    Ok(())
}

/// plotters draws text with a font we hand it: DejaVu Sans from Debian's
/// fonts-dejavu-core (installed by scripts/setup.sh).
fn register_font() -> anyhow::Result<()> {
    use std::sync::OnceLock;
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let path = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
            let bytes = std::fs::read(path).map_err(|e| format!("font {path}: {e} (apt-get install fonts-dejavu-core)"))?;
            let leaked: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, leaked).map_err(|_| format!("font {path} is not a usable TrueType font"))
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }
}
