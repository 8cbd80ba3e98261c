//! HTML renderer: one self-contained file (inline CSS, inline SVG charts drawn with plotters'
//! SVG backend; text is left to the browser's fonts, so no font files are needed).

use std::fmt::Write as _;

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::model::{Comparison, Figure, PHASES, RunResult, Unit, VariantResult, VariantStatus};
use crate::table::{
    cell, description, plan_line, precision_line, present, ratio_cell, runtime_line, status_line,
    table_figures, values_legend,
};
use crate::units::{fmt_bytes, fmt_ms, fmt_value};
use crate::{ReportError, Stat};

/// One colour per variant, in declaration order (colour-blind-friendly Tableau palette).
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;\
margin:24px auto;max-width:1180px;color:#222;line-height:1.4}\
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}\
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right;vertical-align:top;white-space:nowrap}\
table.kv th,table.kv td{text-align:left;white-space:normal}.scroll{overflow-x:auto}\
th:first-child,td:first-child,td.l{text-align:left}th{background:#f3f3f3}\
.warn{background:#fff4e5;border-left:4px solid #f0a030;padding:6px 10px;margin:4px 0}\
.partial{background:#fde8e8;border-left:4px solid #d33;padding:6px 10px}\
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{border:1px solid #eee}\
.muted{color:#666;font-size:.9em}code{background:#f5f5f5;padding:0 3px}";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The legend of a chart whose series carry labels, the same on every chart.
fn draw_legend<'a, 'b: 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, CT>,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(|e| e.to_string())
}

fn chart_err(chart: &'static str) -> impl Fn(String) -> ReportError {
    move |message| ReportError::Chart { chart, message }
}

fn color_of(c: &Comparison, v: &VariantResult) -> RGBColor {
    let i = c
        .variants
        .iter()
        .position(|x| x.name == v.name)
        .unwrap_or(0);
    PALETTE[i % PALETTE.len()]
}

/// A linear f64 axis whose labels sit exactly at the given points (bar centres, percentile
/// decades) instead of plotters' automatic "nice" steps.
#[derive(Debug, Clone)]
struct KeyAxis {
    range: Range<f64>,
    keys: Vec<f64>,
}

impl KeyAxis {
    fn new(range: Range<f64>, keys: Vec<f64>) -> Self {
        KeyAxis { range, keys }
    }
}

impl Ranged for KeyAxis {
    type ValueType = f64;
    type FormatOption = DefaultFormatting;

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.range.end - self.range.start;
        let t = if span > 0.0 {
            (value - self.range.start) / span
        } else {
            0.0
        };
        limit.0 + (t * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.keys.clone()
    }
}

/// Position on the percentile axis: 0 → 0, 90 → 1, 99 → 2, 99.9 → 3 (HdrHistogram style).
fn pct_to_x(p: f64) -> f64 {
    -(1.0 - p / 100.0).max(1e-7).log10()
}

fn x_to_pct_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    let decimals = (x.round() as i32 - 2).clamp(0, 6) as usize;
    format!("{p:.decimals$}%")
}

/// Latency percentile curves of `http_req_duration`, one line per variant (representative run).
fn latency_chart(c: &Comparison) -> Result<Option<String>, ReportError> {
    let curves: Vec<(&VariantResult, Vec<(f64, f64)>)> = c
        .variants
        .iter()
        .filter(|v| v.status == VariantStatus::Ok)
        .filter_map(|v| {
            let run = v.representative_run()?;
            let pts: Vec<(f64, f64)> = run
                .latency_curve
                .iter()
                .filter(|p| p.percentile < 100.0 && p.value_ms.is_finite())
                .map(|p| (pct_to_x(p.percentile), p.value_ms))
                .collect();
            (!pts.is_empty()).then_some((v, pts))
        })
        .collect();
    if curves.is_empty() {
        return Ok(None);
    }
    let max_x = curves
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .fold(1.0f64, f64::max)
        .ceil();
    let max_y = curves
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.1))
        .fold(0.0f64, f64::max)
        * 1.1;
    let max_y = if max_y > 0.0 { max_y } else { 1.0 };
    let key_points: Vec<f64> = (0..=max_x as usize).map(|i| i as f64).collect();
    let mut buf = String::new();
    {
        let err = chart_err("latency percentile");
        let root = SVGBackend::with_string(&mut buf, (1120, 460)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "http_req_duration by percentile (representative run)",
                ("sans-serif", 20),
            )
            .margin(14)
            .x_label_area_size(48)
            .y_label_area_size(76)
            .build_cartesian_2d(KeyAxis::new(0f64..max_x, key_points), 0f64..max_y)
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .x_label_formatter(&|x| x_to_pct_label(*x))
            .y_label_formatter(&|y| fmt_ms(*y))
            .x_desc("percentile")
            .y_desc("latency")
            .light_line_style(RGBColor(242, 242, 242))
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 14))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        for (v, pts) in &curves {
            let col = color_of(c, v);
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), col.stroke_width(2)))
                .map_err(|e| err(e.to_string()))?
                .label(v.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], col.stroke_width(3))
                });
        }
        draw_legend(&mut chart).map_err(&err)?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(Some(buf))
}

/// `http_req_duration` p99 per bucket of the run (100 ms unless the run was long) for the
/// baseline and the primary Wasm variant on one chart. In the block designs, every measured
/// block of each variant end to end, in round order (a duet's blocks of a round at the same
/// x); in the restart design, the first repeat that recorded its tail. Each line is real runs
/// rather than an average that hides the spikes.
fn tail_chart(c: &Comparison) -> Result<Option<String>, ReportError> {
    // (variant, its label, (seconds into the measured load, p99 ms) per bucket). A bucket in
    // which no request started has no p99: the line breaks there rather than slope across it,
    // and so it does between blocks.
    type Line<'a> = (&'a VariantResult, String, Vec<Option<(f64, f64)>>);
    let in_blocks = c.plan.design.is_some_and(crate::model::Design::in_blocks);
    let lines: Vec<Line<'_>> = [c.baseline_variant(), c.primary_wasm_variant()]
        .into_iter()
        .flatten()
        .filter(|v| v.status == VariantStatus::Ok)
        .filter_map(|v| {
            let mut runs: Vec<&RunResult> = v.runs.iter().filter(|r| r.tail.is_some()).collect();
            runs.sort_by_key(|r| r.repeat);
            let label = if in_blocks {
                format!("{} ({} blocks)", v.name, runs.len())
            } else {
                runs.truncate(1);
                format!("{} (repeat {})", v.name, runs.first()?.repeat + 1)
            };
            let mut pts: Vec<Option<(f64, f64)>> = Vec::new();
            let mut offset = 0.0;
            for r in runs {
                let t = r.tail.as_ref()?;
                pts.extend(t.buckets.iter().enumerate().map(|(i, b)| {
                    (b.requests > 0 && b.p99_ms.is_finite())
                        .then(|| (offset + t.start_s(i), b.p99_ms))
                }));
                pts.push(None);
                offset += r.duration_s.max(t.start_s(t.buckets.len()));
            }
            pts.iter().any(Option::is_some).then_some((v, label, pts))
        })
        .collect();
    if lines.is_empty() {
        return Ok(None);
    }
    let max_x = lines
        .iter()
        .flat_map(|(_, _, p)| p.iter().flatten().map(|q| q.0))
        .fold(0.1f64, f64::max)
        .ceil();
    let max_y = lines
        .iter()
        .flat_map(|(_, _, p)| p.iter().flatten().map(|q| q.1))
        .fold(0.0f64, f64::max)
        * 1.1;
    let max_y = if max_y > 0.0 { max_y } else { 1.0 };
    let mut buf = String::new();
    {
        let err = chart_err("latency over time");
        let root = SVGBackend::with_string(&mut buf, (1120, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                if in_blocks {
                    "http_req_duration p99 per 100 ms, every measured block end to end"
                } else {
                    "http_req_duration p99 per 100 ms of the run (first repeat)"
                },
                ("sans-serif", 20),
            )
            .margin(14)
            .x_label_area_size(48)
            .y_label_area_size(76)
            .build_cartesian_2d(0f64..max_x, 0f64..max_y)
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .x_label_formatter(&|x| format!("{x:.1} s"))
            .y_label_formatter(&|y| fmt_ms(*y))
            .x_desc(if in_blocks {
                "measured load, blocks end to end (by request start)"
            } else {
                "time into the run (by request start)"
            })
            .y_desc("p99")
            .light_line_style(RGBColor(242, 242, 242))
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 14))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        for (v, label, pts) in &lines {
            let col = color_of(c, v);
            let mut first = true;
            for seg in pts.split(Option::is_none).filter(|s| !s.is_empty()) {
                let drawn = chart
                    .draw_series(LineSeries::new(
                        seg.iter().flatten().copied(),
                        col.stroke_width(1),
                    ))
                    .map_err(|e| err(e.to_string()))?;
                if std::mem::take(&mut first) {
                    drawn.label(label.as_str()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], col.stroke_width(3))
                    });
                }
            }
        }
        draw_legend(&mut chart).map_err(&err)?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(Some(buf))
}

/// Latency against offered load from the capacity searches: `http_req_waiting` p50 (solid) and
/// p99 (faint) per step, one pair of lines per variant (its representative run's search).
fn capacity_chart(c: &Comparison) -> Result<Option<String>, ReportError> {
    type Points = Vec<(f64, f64)>;
    let curves: Vec<(&VariantResult, Points, Points)> = c
        .variants
        .iter()
        .filter(|v| v.status == VariantStatus::Ok)
        .filter_map(|v| {
            let search = v
                .representative_run()
                .and_then(|r| r.capacity.as_ref())
                .or_else(|| v.runs.iter().find_map(|r| r.capacity.as_ref()))?;
            let mut steps: Vec<_> = search
                .steps
                .iter()
                .filter(|s| s.waiting_p50_ms.is_finite() && s.waiting_p99_ms.is_finite())
                .collect();
            steps.sort_by(|a, b| a.offered_rps.total_cmp(&b.offered_rps));
            let p50 = steps
                .iter()
                .map(|s| (s.offered_rps, s.waiting_p50_ms))
                .collect();
            let p99 = steps
                .iter()
                .map(|s| (s.offered_rps, s.waiting_p99_ms))
                .collect();
            (!steps.is_empty()).then_some((v, p50, p99))
        })
        .collect();
    if curves.is_empty() {
        return Ok(None);
    }
    let max_x = curves
        .iter()
        .flat_map(|(_, p, _)| p.iter().map(|q| q.0))
        .fold(1.0f64, f64::max)
        * 1.05;
    let max_y = curves
        .iter()
        .flat_map(|(_, _, p)| p.iter().map(|q| q.1))
        .fold(0.0f64, f64::max)
        * 1.1;
    let max_y = if max_y > 0.0 { max_y } else { 1.0 };
    let mut buf = String::new();
    {
        let err = chart_err("capacity");
        let root = SVGBackend::with_string(&mut buf, (1120, 460)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "http_req_waiting p50 and p99 by offered rate (capacity search)",
                ("sans-serif", 20),
            )
            .margin(14)
            .x_label_area_size(48)
            .y_label_area_size(76)
            .build_cartesian_2d(0f64..max_x, 0f64..max_y)
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .x_label_formatter(&|x| fmt_value(*x, Unit::PerS))
            .y_label_formatter(&|y| fmt_ms(*y))
            .x_desc("offered rate")
            .y_desc("time to first byte")
            .light_line_style(RGBColor(242, 242, 242))
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 14))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        for (v, p50, p99) in &curves {
            let col = color_of(c, v);
            chart
                .draw_series(LineSeries::new(p50.iter().copied(), col.stroke_width(2)))
                .map_err(|e| err(e.to_string()))?
                .label(format!("{} p50", v.name))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], col.stroke_width(3))
                });
            chart
                .draw_series(LineSeries::new(
                    p99.iter().copied(),
                    col.mix(0.45).stroke_width(2),
                ))
                .map_err(|e| err(e.to_string()))?
                .label(format!("{} p99", v.name))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], col.mix(0.45).stroke_width(3))
                });
        }
        draw_legend(&mut chart).map_err(&err)?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(Some(buf))
}

/// Grouped bars: p95 of every phase, one bar per variant.
fn phase_chart(c: &Comparison) -> Result<Option<String>, ReportError> {
    let vars: Vec<&VariantResult> = c
        .variants
        .iter()
        .filter(|v| v.status == VariantStatus::Ok)
        .collect();
    let phases: Vec<(&str, Figure)> = PHASES
        .iter()
        .filter_map(|p| Figure::phase_p95(p).map(|f| (*p, f)))
        .filter(|(_, f)| vars.iter().any(|v| v.figure_value(*f).is_some()))
        .collect();
    if vars.is_empty() || phases.is_empty() {
        return Ok(None);
    }
    let max_y = phases
        .iter()
        .flat_map(|(_, f)| vars.iter().filter_map(|v| v.figure_value(*f)))
        .fold(0.0f64, f64::max)
        * 1.18;
    let max_y = if max_y > 0.0 { max_y } else { 1.0 };
    let n = phases.len();
    let names: Vec<String> = phases.iter().map(|(p, _)| p.to_string()).collect();
    let key_points: Vec<f64> = (0..n).map(|i| i as f64 + 0.5).collect();
    let mut buf = String::new();
    {
        let err = chart_err("phase breakdown");
        let root = SVGBackend::with_string(&mut buf, (1120, 440)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption("p95 per phase (median over repeats)", ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(76)
            .build_cartesian_2d(KeyAxis::new(0f64..n as f64, key_points), 0f64..max_y)
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                names.get(i).cloned().unwrap_or_default()
            })
            .y_label_formatter(&|y| fmt_ms(*y))
            .y_desc("p95")
            .light_line_style(RGBColor(242, 242, 242))
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 14))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        let w = 0.8 / vars.len() as f64;
        for (j, v) in vars.iter().enumerate() {
            let col = color_of(c, v);
            let bars: Vec<(f64, f64)> = phases
                .iter()
                .enumerate()
                .filter_map(|(i, (_, f))| {
                    v.figure_value(*f)
                        .map(|m| (i as f64 + 0.1 + j as f64 * w, m))
                })
                .collect();
            chart
                .draw_series(
                    bars.iter()
                        .map(|&(x, m)| Rectangle::new([(x, 0.0), (x + w * 0.92, m)], col.filled())),
                )
                .map_err(|e| err(e.to_string()))?
                .label(v.name.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], col.filled()));
            if vars.len() <= 4 {
                chart
                    .draw_series(bars.iter().map(|&(x, m)| {
                        Text::new(
                            fmt_ms(m),
                            (x + w * 0.46, m),
                            ("sans-serif", 11)
                                .into_font()
                                .color(&BLACK)
                                .pos(Pos::new(HPos::Center, VPos::Bottom)),
                        )
                    }))
                    .map_err(|e| err(e.to_string()))?;
            }
        }
        draw_legend(&mut chart).map_err(&err)?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(Some(buf))
}

/// One bar per variant at the median, with a whisker over the 95% confidence interval.
fn stat_bar_chart(
    c: &Comparison,
    chart_name: &'static str,
    title: &str,
    figure: Figure,
    size: (u32, u32),
) -> Result<Option<String>, ReportError> {
    let items: Vec<(&VariantResult, Stat)> = c
        .variants
        .iter()
        .filter(|v| v.status == VariantStatus::Ok)
        .filter_map(|v| v.aggregate.get(figure).map(|s| (v, s.clone())))
        .collect();
    if items.is_empty() {
        return Ok(None);
    }
    let unit = figure.unit();
    let max_y = items
        .iter()
        .map(|(_, s)| s.ci_high.max(s.median))
        .fold(0.0f64, f64::max)
        * 1.18;
    let max_y = if max_y > 0.0 { max_y } else { 1.0 };
    let n = items.len();
    let names: Vec<String> = items.iter().map(|(v, _)| v.name.clone()).collect();
    let key_points: Vec<f64> = (0..n).map(|i| i as f64 + 0.5).collect();
    let fmt_axis = move |y: &f64| match unit {
        Unit::Bytes => fmt_bytes(*y),
        _ => fmt_value(*y, unit),
    };
    let mut buf = String::new();
    {
        let err = chart_err(chart_name);
        let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(84)
            .build_cartesian_2d(KeyAxis::new(0f64..n as f64, key_points), 0f64..max_y)
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_label_formatter(&|x| names.get(x.floor() as usize).cloned().unwrap_or_default())
            .y_label_formatter(&fmt_axis)
            .light_line_style(RGBColor(242, 242, 242))
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        for (i, (v, s)) in items.iter().enumerate() {
            let col = color_of(c, v);
            let x0 = i as f64 + 0.2;
            let x1 = i as f64 + 0.8;
            let mid = i as f64 + 0.5;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x0, 0.0), (x1, s.median)],
                    col.mix(0.85).filled(),
                )))
                .map_err(|e| err(e.to_string()))?;
            if s.n > 1 {
                let lo = s.ci_low.max(0.0);
                let hi = s.ci_high;
                let whisker = [
                    vec![(mid, lo), (mid, hi)],
                    vec![(mid - 0.08, lo), (mid + 0.08, lo)],
                    vec![(mid - 0.08, hi), (mid + 0.08, hi)],
                ];
                chart
                    .draw_series(
                        whisker
                            .into_iter()
                            .map(|p| PathElement::new(p, BLACK.stroke_width(2))),
                    )
                    .map_err(|e| err(e.to_string()))?;
            }
            let top = s.ci_high.max(s.median);
            chart
                .draw_series(std::iter::once(Text::new(
                    fmt_value(s.median, unit),
                    (mid + 0.1, top),
                    ("sans-serif", 12)
                        .into_font()
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Left, VPos::Bottom)),
                )))
                .map_err(|e| err(e.to_string()))?;
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(Some(buf))
}

/// Stacked bars: each variant's server CPU per 1000 requests, the kernel part from its
/// measured CPU times and the user part split in the proportions of its callgrind
/// instructions (which assumes the same instructions per cycle everywhere: the caption says so).
fn cpu_split_chart(c: &Comparison) -> Result<Option<String>, ReportError> {
    let bars = crate::code_split::cpu_bars(c);
    if bars.is_empty() {
        return Ok(None);
    }
    let max_y = bars
        .iter()
        .map(|b| b.parts.iter().map(|p| p.1).sum::<f64>())
        .fold(0.0f64, f64::max)
        * 1.15;
    let max_y = if max_y > 0.0 { max_y } else { 1.0 };
    let n = bars.len();
    let names: Vec<String> = bars.iter().map(|b| b.variant.name.clone()).collect();
    let key_points: Vec<f64> = (0..n).map(|i| i as f64 + 0.5).collect();
    let mut labels: Vec<&'static str> = Vec::new();
    for b in &bars {
        for (l, _) in &b.parts {
            if !labels.contains(l) {
                labels.push(l);
            }
        }
    }
    let shade = |label: &str| -> RGBColor {
        let i = labels.iter().position(|l| *l == label).unwrap_or(0);
        PALETTE[(i + 3) % PALETTE.len()]
    };
    let mut buf = String::new();
    {
        let err = chart_err("CPU split");
        let root = SVGBackend::with_string(&mut buf, (1120, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "server CPU per 1000 requests by code (user part split by callgrind instructions)",
                ("sans-serif", 18),
            )
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(84)
            .build_cartesian_2d(KeyAxis::new(0f64..n as f64, key_points), 0f64..max_y)
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_label_formatter(&|x| names.get(x.floor() as usize).cloned().unwrap_or_default())
            .y_label_formatter(&|y| fmt_ms(*y))
            .light_line_style(RGBColor(242, 242, 242))
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        for (i, b) in bars.iter().enumerate() {
            let (x0, x1) = (i as f64 + 0.25, i as f64 + 0.75);
            let mut y = 0.0;
            for &(label, ms) in &b.parts {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x0, y), (x1, y + ms)],
                        shade(label).filled(),
                    )))
                    .map_err(|e| err(e.to_string()))?;
                y += ms;
            }
            chart
                .draw_series(std::iter::once(Text::new(
                    fmt_ms(y),
                    (i as f64 + 0.5, y),
                    ("sans-serif", 12)
                        .into_font()
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Center, VPos::Bottom)),
                )))
                .map_err(|e| err(e.to_string()))?;
        }
        for &label in &labels {
            let col = shade(label);
            chart
                .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
                .map_err(|e| err(e.to_string()))?
                .label(label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], col.filled()));
        }
        draw_legend(&mut chart).map_err(&err)?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(Some(buf))
}

/// A section: a title, a muted line under it, and `rows` as a table (the first row is the
/// header).
fn titled_table(out: &mut String, title: &str, heading: &str, rows: &[Vec<String>]) {
    let _ = writeln!(
        out,
        "<h2>{}</h2>\n<p class=\"muted\">{}</p>\n<div class=\"scroll\"><table>",
        esc(title),
        esc(heading)
    );
    for (i, r) in rows.iter().enumerate() {
        let tag = if i == 0 { "th" } else { "td" };
        out.push_str("<tr>");
        for x in r {
            let _ = write!(out, "<{tag}>{}</{tag}>", esc(x));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table></div>\n");
}

fn headline_table(c: &Comparison, out: &mut String) {
    out.push_str("<div class=\"scroll\"><table><tr><th>metric</th>");
    for v in &c.variants {
        let _ = write!(out, "<th>{}</th>", esc(&v.name));
        if v.name != c.baseline {
            let _ = write!(out, "<th>/{}</th>", esc(&c.baseline));
        }
    }
    out.push_str("</tr>\n");
    for f in table_figures().filter(|f| present(c, *f)) {
        let _ = write!(
            out,
            "<tr><td title=\"{}\">{}</td>",
            esc(&description(c, f)),
            esc(f.label())
        );
        for v in &c.variants {
            let _ = write!(out, "<td>{}</td>", esc(&cell(v, f)));
            if v.name != c.baseline {
                let _ = write!(out, "<td>{}</td>", esc(&ratio_cell(c, v, f)));
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table></div>\n");
}

pub(crate) fn render(c: &Comparison) -> Result<String, ReportError> {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>wasmbench comparison</title><style>{CSS}</style></head><body>\n"
    );
    let _ = writeln!(out, "<h1>wasmbench comparison</h1>");
    let _ = writeln!(out, "<p>{}</p>", esc(&plan_line(c)));
    let _ = writeln!(out, "<p class=\"muted\">{}.</p>", esc(&values_legend(c)));
    if let Some(p) = precision_line(c) {
        let _ = writeln!(out, "<p><strong>{}</strong></p>", esc(&p));
    }
    if c.meta.partial {
        out.push_str("<p class=\"partial\">Partial result: the run was interrupted.</p>\n");
    }
    for w in &c.warnings {
        let _ = writeln!(out, "<div class=\"warn\">⚠ {}</div>", esc(w));
    }

    out.push_str("<h2>Summary</h2>\n");
    headline_table(c, &mut out);
    let mix = crate::mix::mix_rows(c);
    if let Some((head, rows)) = mix.split_first() {
        out.push_str("<h2>Per request of the mix</h2>\n<p class=\"muted\">Median over repeats (ratio to the baseline).</p>\n<div class=\"scroll\"><table><tr>");
        for h in head {
            let _ = write!(out, "<th>{}</th>", esc(h));
        }
        out.push_str("</tr>\n");
        for r in rows {
            out.push_str("<tr>");
            for cell in r {
                let _ = write!(out, "<td>{}</td>", esc(cell));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table></div>\n");
    }

    out.push_str("<h2>Charts</h2>\n<div class=\"charts\">\n");
    let charts = [
        latency_chart(c)?,
        tail_chart(c)?,
        capacity_chart(c)?,
        cpu_split_chart(c)?,
        phase_chart(c)?,
        stat_bar_chart(
            c,
            "throughput",
            "throughput (req/s, 95% CI)",
            Figure::ThroughputRps,
            (552, 360),
        )?,
        stat_bar_chart(
            c,
            "cold start",
            "cold start (95% CI)",
            Figure::ColdStartMs,
            (552, 360),
        )?,
        stat_bar_chart(
            c,
            "server CPU",
            "server CPU per 1000 requests (95% CI)",
            Figure::ServerCpuMsPer1kReq,
            (552, 360),
        )?,
        stat_bar_chart(
            c,
            "server RSS",
            "server peak RSS (95% CI)",
            Figure::ServerRssPeakBytes,
            (552, 360),
        )?,
    ];
    for svg in charts.into_iter().flatten() {
        let _ = writeln!(out, "<div class=\"chart\">{svg}</div>");
    }
    out.push_str("</div>\n");

    if let Some((heading, rows)) = crate::code_split::rows(c) {
        titled_table(&mut out, "Where the instructions went", &heading, &rows);
    }
    if let Some((heading, rows)) = crate::table::saved_rows(c) {
        titled_table(&mut out, "Against the saved run", &heading, &rows);
    }

    if !c.explanation.is_empty() {
        out.push_str("<h2>Explanation</h2>\n<ul>\n");
        for e in &c.explanation {
            let _ = writeln!(out, "<li>{}</li>", esc(e));
        }
        out.push_str("</ul>\n");
    }

    out.push_str("<h2>Variants</h2>\n<table class=\"kv\"><tr><th>variant</th><th>runtime</th><th>artifact</th><th>status</th></tr>\n");
    for v in &c.variants {
        let artifact = v.artifact.as_ref().map_or_else(
            || "–".to_string(),
            |a| {
                format!(
                    "{} ({}, sha256 {}…)",
                    a.path,
                    fmt_bytes(a.size_bytes as f64),
                    a.sha256.get(..12).unwrap_or(&a.sha256)
                )
            },
        );
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
            esc(&v.name),
            esc(&runtime_line(v)),
            esc(&artifact),
            esc(&status_line(v))
        );
    }
    out.push_str("</table>\n");

    let env = &c.meta.environment;
    out.push_str("<h2>Environment and plan</h2>\n<table class=\"kv\">\n");
    let mut rows: Vec<(String, String)> = vec![
        (
            "CPU".into(),
            format!("{} ({} logical CPUs)", env.cpu_model, env.cpu_count),
        ),
        ("memory".into(), fmt_bytes(env.memory_bytes as f64)),
        ("OS / kernel".into(), format!("{} / {}", env.os, env.kernel)),
    ];
    rows.extend(
        c.built_with()
            .map(|rustc| ("rustc".to_string(), rustc.to_string())),
    );
    rows.extend([
        ("wasmbench".into(), c.meta.wasmbench_version.clone()),
        (
            "time".into(),
            format!("{} → {}", c.meta.started_at, c.meta.ended_at),
        ),
        ("command".into(), crate::table::command_text(c)),
        ("checks".into(), c.plan.checks.join(", ")),
        ("thresholds".into(), c.plan.thresholds.join(", ")),
        (
            "CPU pinning".into(),
            c.plan.cpu_pinning.as_ref().map_or_else(
                || "none".to_string(),
                |p| {
                    format!(
                        "server {:?}, load generator {:?}",
                        p.server_cpus, p.load_cpus
                    )
                },
            ),
        ),
    ]);
    rows.extend(
        c.plan
            .readiness
            .iter()
            .map(|r| ("ready when".to_string(), r.clone())),
    );
    rows.extend(
        c.plan
            .fairness
            .iter()
            .map(|f| ("fairness".to_string(), f.clone())),
    );
    rows.extend(env.details.iter().map(|(k, v)| (k.clone(), v.clone())));
    rows.extend(crate::table::kubernetes_rows(c));
    for (k, v) in rows {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"l\">{}</td></tr>",
            esc(&k),
            esc(&v)
        );
    }
    out.push_str("</table>\n</body></html>\n");
    Ok(out)
}
