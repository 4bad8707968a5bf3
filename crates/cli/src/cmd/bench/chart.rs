//! `market.png`: utilisation (with the offered load) and misses per interval, both policies.
//!
//! Drawn with plotters' bitmap backend and no system libraries: text goes through ab_glyph
//! with DejaVu Sans embedded from the `dejavu` crate (free licence), so no fontconfig is needed.

use std::path::Path;

use anyhow::anyhow;
use plotters::{
    prelude::*,
    style::{FontStyle, register_font},
};

use super::report::Interval;

/// The chart's size in pixels.
const SIZE: (u32, u32) = (900, 640);

/// Writes the chart of `series` to `path`.
///
/// # Errors
/// The file cannot be written, or the font cannot be loaded.
pub fn draw(path: &Path, series: &[Interval]) -> anyhow::Result<()> {
    register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
        .map_err(|_| anyhow!("cannot load the embedded DejaVu Sans font"))?;
    let err = |e: DrawingAreaErrorKind<_>| anyhow!("cannot draw {}: {e}", path.display());
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (upper, lower) = root.split_vertically(SIZE.1 / 2);
    let hours = |i: &Interval| i.start_secs as f64 / 3600.0;
    let x_max = series.last().map_or(1.0, |i| hours(i) + 0.01).max(0.01);
    let colours = [("ours (default)", BLUE), ("baseline (reference-style)", RED)];

    let y_max = series
        .iter()
        .map(|i| i.offered_load.max(i.utilisation[0]).max(i.utilisation[1]))
        .fold(1.0_f64, f64::max)
        * 1.05;
    let mut chart = ChartBuilder::on(&upper)
        .caption(
            "Utilisation per interval (proving time / wall) and offered load",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("hours")
        .y_desc("share of node time")
        .light_line_style(WHITE)
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(err)?;
    let grey = RGBColor(150, 150, 150);
    chart
        .draw_series(LineSeries::new(series.iter().map(|i| (hours(i), i.offered_load)), grey))
        .map_err(err)?
        .label("offered load")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey));
    for (p, (name, colour)) in colours.iter().enumerate() {
        let colour = *colour;
        chart
            .draw_series(LineSeries::new(
                series.iter().map(|i| (hours(i), i.utilisation[p])),
                colour.stroke_width(2),
            ))
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)?;

    let m_max = series.iter().map(|i| i.misses[0].max(i.misses[1])).max().unwrap_or(0).max(1);
    let mut chart = ChartBuilder::on(&lower)
        .caption("Deadline misses per interval (late or untaken)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(0.0..x_max, 0.0..(m_max as f64 * 1.1))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("hours")
        .y_desc("requests")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .light_line_style(WHITE)
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(err)?;
    for (p, (name, colour)) in colours.iter().enumerate() {
        let colour = *colour;
        chart
            .draw_series(LineSeries::new(
                series.iter().map(|i| (hours(i), i.misses[p] as f64)),
                colour.stroke_width(2),
            ))
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}
