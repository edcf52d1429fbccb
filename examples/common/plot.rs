//! Line charts as SVG or PNG (by the file's extension), with plotters.

use std::path::Path;

use anyhow::{Context, bail};
use plotters::coord::Shift;
use plotters::prelude::*;

/// One line.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// One chart of a figure; the panels of a figure share the x axis and stack vertically.
pub struct Panel {
    pub y_label: String,
    pub series: Vec<Series>,
    /// Vertical lines with a label each (a suggested bound, say).
    pub markers: Vec<(f64, String)>,
}

/// A figure: a title, an x axis (logarithmic or not) and its panels.
pub struct Figure {
    pub title: String,
    pub x_label: String,
    pub log_x: bool,
    pub panels: Vec<Panel>,
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Draws `figure` into `path`: `.svg` or `.png`.
pub fn draw(path: &Path, figure: &Figure) -> anyhow::Result<()> {
    let height = 60 + 300 * figure.panels.len().max(1) as u32;
    let size = (900, height);
    let result = match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => draw_on(SVGBackend::new(path, size).into_drawing_area(), figure),
        Some("png") => draw_on(BitMapBackend::new(path, size).into_drawing_area(), figure),
        _ => bail!("{}: the plot file must end in .svg or .png", path.display()),
    };
    result.with_context(|| format!("cannot draw {}", path.display()))
}

fn draw_on<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, figure: &Figure) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let root = root
        .titled(&figure.title, ("sans-serif", 22))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let areas = root.split_evenly((figure.panels.len().max(1), 1));
    for (area, panel) in areas.iter().zip(&figure.panels) {
        draw_panel(area, figure, panel).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if lo == hi {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.05 };
        return (lo - pad, hi + pad);
    }
    (lo, hi)
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    figure: &Figure,
    panel: &Panel,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let points = || panel.series.iter().flat_map(|s| s.points.iter());
    let (x0, x1) = bounds(
        points()
            .map(|p| p.0)
            .chain(panel.markers.iter().map(|m| m.0)),
    );
    let (y0, y1) = bounds(points().map(|p| p.1));
    let pad = (y1 - y0) * 0.05;
    let (y0, y1) = (y0 - pad, y1 + pad);
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70);
    if figure.log_x {
        let x0 = if x0 > 0.0 { x0 } else { f64::MIN_POSITIVE };
        let mut chart = builder.build_cartesian_2d((x0..x1).log_scale(), y0..y1)?;
        draw_lines!(chart, figure, panel, y0, y1);
    } else {
        let mut chart = builder.build_cartesian_2d(x0..x1, y0..y1)?;
        draw_lines!(chart, figure, panel, y0, y1);
    }
    Ok(())
}

/// The same drawing (mesh, lines, markers, legend) on a linear or a logarithmic x axis, which
/// are two chart types.
macro_rules! draw_lines {
    ($chart:ident, $figure:ident, $panel:ident, $y0:ident, $y1:ident) => {
        $chart
            .configure_mesh()
            .x_desc(&$figure.x_label)
            .y_desc(&$panel.y_label)
            .draw()?;
        for (i, series) in $panel.series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            $chart
                .draw_series(LineSeries::new(
                    series.points.iter().copied().filter(|p| p.1.is_finite()),
                    color.stroke_width(2),
                ))?
                .label(series.label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        // Markers are dashed, each in its own colour, so the legend tells them apart.
        for (j, (x, label)) in $panel.markers.iter().enumerate() {
            let color = COLORS[($panel.series.len() + j) % COLORS.len()];
            $chart
                .draw_series(DashedLineSeries::new(
                    vec![(*x, $y0), (*x, $y1)],
                    6,
                    4,
                    color.stroke_width(2),
                ))?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        $chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    };
}
use draw_lines;
