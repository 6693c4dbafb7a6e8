//! The side-by-side table drawn as an SVG bar chart (plotters, SVG backend): for each scenario, each
//! client's median operations per second relative to libpq's (libpq = 1), with a whisker from the
//! slowest to the fastest of its runs.

use std::path::Path;

use plotters::prelude::*;

/// One bar: scenario, client, median ops/s, slowest and fastest run's ops/s.
pub struct Bar<'a> {
    pub scenario: &'a str,
    pub client: &'a str,
    pub median: f64,
    pub lo: f64,
    pub hi: f64,
}

const COLORS: [RGBColor; 7] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x98, 0xdf, 0x8a),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];

/// Writes the chart of `bars` to `path`, titled `title`.
pub fn write_svg(path: &Path, title: &str, bars: &[Bar<'_>]) -> Result<(), String> {
    let mut scenarios: Vec<&str> = Vec::new();
    let mut clients: Vec<&str> = Vec::new();
    for b in bars {
        if !scenarios.contains(&b.scenario) {
            scenarios.push(b.scenario);
        }
        if !clients.contains(&b.client) {
            clients.push(b.client);
        }
    }
    if scenarios.is_empty() {
        return Err("nothing to draw".into());
    }
    // Each scenario's reference: libpq's median, else the first client's.
    let reference = |scenario: &str| {
        bars.iter()
            .find(|b| b.scenario == scenario && b.client == "libpq")
            .or_else(|| bars.iter().find(|b| b.scenario == scenario))
            .map_or(1.0, |b| b.median)
    };
    let top = bars
        .iter()
        .map(|b| b.hi / reference(b.scenario))
        .fold(1.0f64, f64::max)
        * 1.1;
    let width = 150 * scenarios.len() as u32 + 140;
    let root = SVGBackend::new(path, (width.max(800), 520)).into_drawing_area();
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let n = scenarios.len();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(60)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..top)
        .map_err(e)?;
    let names = scenarios.clone();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&move |x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
                // The scenario's short name: `rows`, `copy in`, `fan-out, 50 connections`.
                names[i as usize]
                    .split(" (")
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            } else {
                String::new()
            }
        })
        .y_desc("ops/s relative to libpq (libpq = 1)")
        .draw()
        .map_err(e)?;
    let m = clients.len() as f64;
    let slot = 0.84 / m;
    for (k, client) in clients.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let mine: Vec<(usize, &Bar)> = bars
            .iter()
            .filter(|b| b.client == *client)
            .filter_map(|b| Some((scenarios.iter().position(|s| *s == b.scenario)?, b)))
            .collect();
        let x0 = |i: usize| i as f64 - 0.42 + k as f64 * slot;
        chart
            .draw_series(mine.iter().map(|&(i, b)| {
                let v = b.median / reference(b.scenario);
                Rectangle::new([(x0(i), 0.0), (x0(i) + slot * 0.9, v)], color.filled())
            }))
            .map_err(e)?
            .label(*client)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
        chart
            .draw_series(mine.iter().map(|&(i, b)| {
                let r = reference(b.scenario);
                let x = x0(i) + slot * 0.45;
                PathElement::new(vec![(x, b.lo / r), (x, b.hi / r)], BLACK.stroke_width(1))
            }))
            .map_err(e)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}
