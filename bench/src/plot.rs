//! `--plot FILE.svg`: the closing table as one picture. Each scenario is a row with two bars,
//! our ratio to etcd and to ZooKeeper (above 1 ours is better), on a logarithmic axis with the
//! lines at 1 (even) and 2 (the target) drawn, so a reader sees at once where we stand.

use super::report::Report;
use plotters::prelude::*;
use std::path::Path;

const ETCD: RGBColor = RGBColor(66, 133, 244);
const ZOOKEEPER: RGBColor = RGBColor(219, 68, 55);

/// Writes the plot of `report` to `path` (SVG).
pub fn write(report: &Report, path: &Path) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // Every scenario measured on both sides has its row, even when no ratio can be drawn (a
    // memory delta that read zero): a missing row would look like a scenario not run.
    let rows: Vec<(&str, Option<f64>, Option<f64>)> = report
        .lines
        .iter()
        .filter(|l| l.ours.is_some() && (l.etcd.is_some() || l.zookeeper.is_some()))
        .map(|l| (l.name.as_str(), l.ratio(), l.ratio_zookeeper()))
        .collect();
    let n = rows.len().max(1);
    let height = 80 + 28 * n as u32;
    let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (lo, hi) = (0.05f64, 200f64);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "registry bench: our ratio to each peer (above 1: ours is better)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(300)
        .build_cartesian_2d((lo..hi).log_scale(), 0f64..n as f64)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n * 2 + 1)
        .y_label_formatter(&|y| {
            // A label sits in the middle of its row.
            let i = y.floor() as usize;
            if (y - y.floor() - 0.5).abs() < 0.01 {
                rows.get(n - 1 - i)
                    .map_or(String::new(), |r| r.0.to_string())
            } else {
                String::new()
            }
        })
        .x_desc("ratio (log scale)")
        .draw()
        .map_err(|e| e.to_string())?;
    for x in [1.0, 2.0] {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x, 0.0), (x, n as f64)],
                BLACK.stroke_width(if x == 1.0 { 1 } else { 2 }),
            )))
            .map_err(|e| e.to_string())?;
    }
    for (i, (_, etcd, zk)) in rows.iter().enumerate() {
        let y = (n - 1 - i) as f64;
        for (ratio, color, (top, bottom)) in
            [(etcd, ETCD, (0.85, 0.52)), (zk, ZOOKEEPER, (0.48, 0.15))]
        {
            if let Some(r) = ratio {
                let r = r.clamp(lo, hi);
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(lo, y + bottom), (r, y + top)],
                        color.filled(),
                    )))
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    for (label, color, at) in [("vs etcd", ETCD, 0.0), ("vs ZooKeeper", ZOOKEEPER, 1.0)] {
        root.draw(&Text::new(
            label,
            (320 + (at * 140.0) as i32, height as i32 - 18),
            ("sans-serif", 14).into_font().color(&color),
        ))
        .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}
