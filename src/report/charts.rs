//! Charts as SVG text, drawn with plotters' SVG backend for inlining into report.html.
//!
//! Every function returns `Err(reason)` instead of panicking: a chart that cannot be
//! drawn (no data, a degenerate range, a drawing error) becomes a note in the report,
//! never a failed run. No `unwrap` here.

use hdrhistogram::Histogram;
use plotters::coord::combinators::{BindKeyPoints, IntoLogRange};
use plotters::prelude::*;

use crate::results::IntervalResult;

pub const WIDTH: u32 = 760;
pub const HEIGHT: u32 = 380;

/// Colours for engines, in engine order (colour-blind-friendly, Okabe-Ito).
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
];

pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn err<E: std::fmt::Display>(e: E) -> String {
    format!("drawing failed: {e}")
}

/// "50%", "99.9%": the percentile at x = 1/(1-p).
fn percentile_label(x: f64) -> String {
    if x <= 1.0 {
        return "0%".into();
    }
    let p = 100.0 * (1.0 - 1.0 / x);
    let s = format!("{p:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

fn nice_max(v: f64) -> f64 {
    if v.is_finite() && v > 0.0 {
        v * 1.1
    } else {
        1.0
    }
}

/// One point of a recall frontier: x (throughput, or a latency), recall, the setting
/// it ran with, and whether no other point of the chart beats it on both axes.
pub struct SweepPoint {
    pub x: f64,
    pub recall: f64,
    pub label: String,
    pub pareto: bool,
}

/// One engine's points of a sweep: (name, colour index, points).
pub type SweepSeries = (String, usize, Vec<SweepPoint>);

/// Marks the Pareto-optimal points of all series: higher recall and, on x, higher
/// (`x_higher_better`, throughput) or lower (latency) at once; ties are optimal.
pub fn mark_pareto(series: &mut [SweepSeries], x_higher_better: bool) {
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.2.iter().map(|p| (p.x, p.recall))).collect();
    let better_x = |a: f64, b: f64| if x_higher_better { a > b } else { a < b };
    for s in series.iter_mut() {
        for p in &mut s.2 {
            p.pareto = !all
                .iter()
                .any(|&(x, r)| (better_x(x, p.x) || x == p.x) && r >= p.recall && (better_x(x, p.x) || r > p.recall));
        }
    }
}

/// One line of a chart: a name (engine), its colour index and points.
#[derive(Debug, Clone)]
pub struct Line {
    pub name: String,
    pub color: usize,
    pub points: Vec<(f64, f64)>,
}

/// Latency by percentile, as HdrHistogram plots it: x is 1/(1-p) on a log scale,
/// labelled 50%, 90%, 99%, 99.9%...; each line ends at the percentile its count
/// supports (1/(1-p) <= count).
pub fn spectrum(title: &str, series: &[(String, usize, Histogram<u64>)]) -> Result<String, String> {
    let mut lines = Vec::new();
    for (name, color, h) in series {
        let n = h.len();
        if n == 0 {
            continue;
        }
        let top = (n as f64).max(2.0);
        let steps = 120;
        let points: Vec<(f64, f64)> = (0..=steps)
            .map(|i| {
                let x = 10f64.powf(top.log10() * i as f64 / steps as f64);
                let q = 1.0 - 1.0 / x;
                (x, h.value_at_quantile(q) as f64 / 1e6)
            })
            .collect();
        lines.push(Line { name: name.clone(), color: *color, points });
    }
    if lines.is_empty() {
        return Err("no successful requests to plot".into());
    }
    let xmax = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)).fold(10.0f64, f64::max);
    let ymax = nice_max(lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)).fold(0.0, f64::max));
    let mut keys = vec![1.0, 2.0];
    let mut k = 10.0;
    while k <= xmax * 1.0001 {
        keys.push(k);
        k *= 10.0;
    }
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = titled(&root, title)
            .build_cartesian_2d((1f64..xmax).log_scale().with_key_points(keys), 0f64..ymax)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("percentile (log scale on 1/(1-p))")
            .y_desc("latency (ms)")
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|y| crate::format::ms(Some(*y)))
            .draw()
            .map_err(err)?;
        draw_lines(&mut chart, &lines, SeriesLabelPosition::UpperLeft)?;
        root.present().map_err(err)?;
    }
    Ok(buf)
}

/// A chart's frame as every single-panel chart here has it: the title above, room for
/// the axes' labels.
fn titled<'a, 'b, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, plotters::coord::Shift>,
    title: &'b str,
) -> ChartBuilder<'a, 'b, DB> {
    let mut b = ChartBuilder::on(root);
    b.caption(title, ("sans-serif", 17)).margin(12).x_label_area_size(42).y_label_area_size(62);
    b
}

fn draw_lines<'a, DB: DrawingBackend + 'a, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    lines: &[Line],
    legend: SeriesLabelPosition,
) -> Result<(), String>
where
    X: plotters::coord::ranged1d::Ranged<ValueType = f64>,
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>,
{
    for l in lines {
        let c = color(l.color);
        chart
            .draw_series(LineSeries::new(l.points.iter().copied(), c.stroke_width(2)))
            .map_err(err)?
            .label(l.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .position(legend)
        .draw()
        .map_err(err)
}

/// One panel of a two-panel time chart: its lines, the y axis and what to say when no
/// line has a point.
struct Panel<'a> {
    lines: Vec<Line>,
    y_desc: &'a str,
    y_fmt: fn(&f64) -> String,
    empty: &'a str,
}

fn plain(y: &f64) -> String {
    crate::format::trim_zeros(format!("{y:.2}"))
}

/// Panels stacked over one x axis (time), one line per engine in each.
fn stacked(title: &str, x_desc: &str, panels: &[Panel]) -> Result<String, String> {
    let xmax = panels.iter().flat_map(|p| &p.lines).flat_map(|l| l.points.iter().map(|p| p.0)).fold(1.0f64, f64::max);
    let panel_height = (HEIGHT + 100) / 2;
    let mut buf = String::new();
    {
        let height = panel_height * panels.len() as u32 + 40;
        let root = SVGBackend::with_string(&mut buf, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let root = root.titled(title, ("sans-serif", 17)).map_err(err)?;
        let areas = root.split_evenly((panels.len(), 1));
        for (area, panel) in areas.iter().zip(panels) {
            if panel.lines.iter().all(|l| l.points.is_empty()) {
                area.draw(&Text::new(panel.empty, (80, 60), ("sans-serif", 14))).map_err(err)?;
                continue;
            }
            let ymax = nice_max(panel.lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)).fold(0.0, f64::max));
            let mut chart = ChartBuilder::on(area)
                .margin(10)
                .x_label_area_size(36)
                .y_label_area_size(62)
                .build_cartesian_2d(0f64..xmax, 0f64..ymax)
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .y_desc(panel.y_desc)
                .y_label_formatter(&panel.y_fmt)
                .draw()
                .map_err(err)?;
            draw_lines(&mut chart, &panel.lines, SeriesLabelPosition::UpperLeft)?;
        }
        root.present().map_err(err)?;
    }
    Ok(buf)
}

/// A stream phase's figures by checkpoint, one panel each (title, lines), over the
/// seconds of the phase.
pub fn checkpoints(title: &str, panels: &[(&str, Vec<Line>)]) -> Result<String, String> {
    let panels: Vec<Panel> = panels
        .iter()
        .map(|(y_desc, lines)| Panel { lines: lines.clone(), y_desc, y_fmt: plain, empty: "not measured" })
        .collect();
    stacked(title, "seconds into the phase (end of each checkpoint)", &panels)
}

/// One engine's memory during a phase: (seconds from the phase's start, bytes).
pub type MemorySeries = (String, usize, Vec<(f64, u64)>);

/// Throughput, p99 latency and (where sampled) the engine's memory per second of a
/// phase, one line per engine in each panel.
pub fn timeline(
    title: &str,
    series: &[(String, usize, &[IntervalResult])],
    memory: &[MemorySeries],
) -> Result<String, String> {
    let usable: Vec<&(String, usize, &[IntervalResult])> = series.iter().filter(|s| !s.2.is_empty()).collect();
    if usable.is_empty() {
        return Err("no per-second intervals were recorded".into());
    }
    let lines = |point: fn(&IntervalResult) -> Option<f64>| -> Vec<Line> {
        usable
            .iter()
            .map(|(n, c, iv)| Line {
                name: n.clone(),
                color: *c,
                points: iv.iter().filter_map(|i| point(i).map(|y| (i.t_s as f64, y))).collect(),
            })
            .collect()
    };
    let mut panels = vec![
        Panel { lines: lines(|i| Some(i.ok as f64)), y_desc: "throughput (ops/s)", y_fmt: plain, empty: "" },
        Panel {
            lines: lines(|i| i.p99_ms),
            y_desc: "p99 latency (ms)",
            y_fmt: |y| crate::format::ms(Some(*y)),
            empty: "p99 per second: no successful requests",
        },
    ];
    if memory.iter().any(|m| !m.2.is_empty()) {
        let lines = memory
            .iter()
            .map(|(n, c, pts)| Line {
                name: n.clone(),
                color: *c,
                points: pts.iter().map(|&(t, b)| (t, crate::format::to_mib(b))).collect(),
            })
            .collect();
        panels.push(Panel { lines, y_desc: "engine memory (MiB)", y_fmt: |y| format!("{y:.0}"), empty: "" });
    }
    stacked(title, "seconds from phase start", &panels)
}

/// Memory (top) and CPU cores busy (bottom) of each engine's processes, per second from
/// the start of its load to the end of its last phase, one line per engine.
pub fn resource_timeline(
    title: &str,
    series: &[(String, usize, &[crate::resources::Point])],
) -> Result<String, String> {
    let usable: Vec<_> = series.iter().filter(|s| !s.2.is_empty()).collect();
    if usable.is_empty() {
        return Err("no engine's resources were sampled".into());
    }
    let lines = |point: fn(&crate::resources::Point) -> f64| -> Vec<Line> {
        usable
            .iter()
            .map(|(n, c, pts)| Line {
                name: n.clone(),
                color: *c,
                points: pts.iter().map(|p| (p.t_s, point(p))).collect(),
            })
            .collect()
    };
    stacked(
        title,
        "seconds from the engine's load start",
        &[
            Panel {
                lines: lines(|p| crate::format::to_mib(p.memory_bytes)),
                y_desc: "memory (MiB)",
                y_fmt: |y| format!("{y:.0}"),
                empty: "",
            },
            Panel { lines: lines(|p| p.cpu_cores), y_desc: "CPU cores busy", y_fmt: plain, empty: "" },
        ],
    )
}

/// Recall against x (throughput, or p99 latency) for a sweep of search effort: one
/// line per engine, each point labelled with its setting; Pareto points (see
/// [`mark_pareto`]) ringed.
pub fn recall_frontier(title: &str, x_desc: &str, series: &[SweepSeries]) -> Result<String, String> {
    let usable: Vec<&SweepSeries> = series.iter().filter(|s| !s.2.is_empty()).collect();
    if usable.is_empty() {
        return Err("no step of the sweep has both recall and this figure".into());
    }
    let xmax = nice_max(usable.iter().flat_map(|s| s.2.iter().map(|p| p.x)).fold(0.0, f64::max));
    let ymin = usable.iter().flat_map(|s| s.2.iter().map(|p| p.recall)).fold(1.0f64, f64::min);
    let ymin = (ymin - 0.05).clamp(0.0, 0.95);
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = titled(&root, title).build_cartesian_2d(0f64..xmax, ymin..1.02f64).map_err(err)?;
        chart.configure_mesh().x_desc(x_desc).y_desc("recall@k").draw().map_err(err)?;
        let lines: Vec<Line> = usable
            .iter()
            .map(|(n, c, pts)| {
                let mut points: Vec<(f64, f64)> = pts.iter().map(|p| (p.x, p.recall)).collect();
                points.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal));
                Line { name: n.clone(), color: *c, points }
            })
            .collect();
        // Recall near 1 sits at the top: the legend goes below, where frontiers rarely reach.
        draw_lines(&mut chart, &lines, SeriesLabelPosition::LowerRight)?;
        for (n, (_, c, pts)) in usable.iter().enumerate() {
            let col = color(*c);
            // Alternate engines' labels above and below their points, so that engines
            // with equal results do not print over each other.
            let dy = if n % 2 == 0 { -16 } else { 6 };
            chart
                .draw_series(pts.iter().map(|p| {
                    EmptyElement::at((p.x, p.recall))
                        + Circle::new((0, 0), 4, col.filled())
                        + Circle::new((0, 0), if p.pareto { 8 } else { 0 }, BLACK.stroke_width(2))
                        + Text::new(p.label.clone(), (6, dy), ("sans-serif", 12))
                }))
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(buf)
}

/// Load and index-build seconds per engine, as grouped bars.
pub fn load_bars(title: &str, engines: &[(String, Option<f64>, Option<f64>)]) -> Result<String, String> {
    let usable: Vec<&(String, Option<f64>, Option<f64>)> =
        engines.iter().filter(|e| e.1.is_some() || e.2.is_some()).collect();
    if usable.is_empty() {
        return Err("no engine recorded a load".into());
    }
    let n = usable.len() as f64;
    let ymax = nice_max(usable.iter().flat_map(|e| [e.1.unwrap_or(0.0), e.2.unwrap_or(0.0)]).fold(0.0, f64::max));
    let names: Vec<String> = usable.iter().map(|e| e.0.clone()).collect();
    let load_color = RGBColor(0, 114, 178);
    let index_color = RGBColor(230, 159, 0);
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = titled(&root, title).build_cartesian_2d(0f64..n, 0f64..ymax).map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("engine")
            .y_desc("seconds")
            // 2n + 1 labels over 0..n fall on the half units; the centre of each group
            // (i + 0.5) names its engine and the others stay blank.
            .x_labels(2 * usable.len() + 1)
            .x_label_formatter(&|x| {
                let i = x.floor();
                if i >= 0.0 && (x - i - 0.5).abs() < 1e-6 {
                    names.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .draw()
            .map_err(err)?;
        let bar = |i: usize, left: f64, v: Option<f64>, c: RGBColor| {
            v.map(|v| Rectangle::new([(i as f64 + left, 0.0), (i as f64 + left + 0.36, v)], c.filled()))
        };
        chart
            .draw_series(usable.iter().enumerate().filter_map(|(i, e)| bar(i, 0.12, e.1, load_color)))
            .map_err(err)?
            .label("load (s)")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], load_color.filled()));
        chart
            .draw_series(usable.iter().enumerate().filter_map(|(i, e)| bar(i, 0.52, e.2, index_color)))
            .map_err(err)?
            .label("index build (s)")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], index_color.filled()));
        chart
            .draw_series(usable.iter().enumerate().flat_map(|(i, e)| {
                [(0.12, e.1), (0.52, e.2)].into_iter().filter_map(move |(left, v)| {
                    v.map(|v| {
                        Text::new(format!("{v:.2}"), (i as f64 + left + 0.02, v + ymax * 0.02), ("sans-serif", 12))
                    })
                })
            }))
            .map_err(err)?;
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(buf)
}

/// A figure against dataset size, both axes on log scales (a straight line of slope 1
/// grows in proportion to the data, a flat one not at all): one line per engine, a dot
/// at each size it was measured at. Values that are not positive cannot sit on a log
/// axis and are left out.
pub fn growth(title: &str, y_desc: &str, lines: &[Line]) -> Result<String, String> {
    let lines: Vec<Line> = lines
        .iter()
        .map(|l| Line {
            name: l.name.clone(),
            color: l.color,
            points: l.points.iter().copied().filter(|&(x, y)| x > 0.0 && y > 0.0 && y.is_finite()).collect(),
        })
        .filter(|l| !l.points.is_empty())
        .collect();
    let all = || lines.iter().flat_map(|l| l.points.iter().copied());
    let (Some(xmin), Some(ymin)) =
        (all().map(|p| p.0).min_by(f64::total_cmp), all().map(|p| p.1).min_by(f64::total_cmp))
    else {
        return Err("no engine has this figure at any size".into());
    };
    let xmax = all().map(|p| p.0).fold(xmin, f64::max);
    let ymax = all().map(|p| p.1).fold(ymin, f64::max);
    // Room either side, so that a single size or equal values still draw.
    let (x0, x1) = (xmin / 1.6, xmax * 1.6);
    let (y0, y1) = (ymin / 2.0, ymax * 2.0);
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart =
            titled(&root, title).build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale()).map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("documents loaded (log scale)")
            .y_desc(y_desc)
            .x_label_formatter(&|x| crate::format::compact(*x))
            .y_label_formatter(&|y| crate::format::significant(Some(*y)))
            .draw()
            .map_err(err)?;
        draw_lines(&mut chart, &lines, SeriesLabelPosition::UpperLeft)?;
        for l in &lines {
            let c = color(l.color);
            chart.draw_series(l.points.iter().map(|&p| Circle::new(p, 4, c.filled()))).map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(buf)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;
    use crate::metrics::{new_histogram, record, SIGFIG};

    #[test]
    fn percentile_labels_read_like_hdrhistogram() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(2.0), "50%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(1000.0), "99.9%");
    }

    #[test]
    fn empty_data_is_a_reason_not_a_panic() {
        assert!(spectrum("t", &[("a".into(), 0, new_histogram(SIGFIG))]).is_err());
        assert!(timeline("t", &[("a".into(), 0, &[])], &[]).is_err());
        assert!(resource_timeline("t", &[("a".into(), 0, &[])]).is_err());
        assert!(recall_frontier("t", "throughput (ops/s)", &[]).is_err());
        assert!(load_bars("t", &[("a".into(), None, None)]).is_err());
    }

    #[test]
    fn pareto_points_are_those_no_other_point_beats_on_both_axes() {
        let pt = |x: f64, recall: f64| SweepPoint { x, recall, label: String::new(), pareto: false };
        let mut series: Vec<SweepSeries> = vec![
            ("a".into(), 0, vec![pt(100.0, 0.90), pt(50.0, 0.99), pt(40.0, 0.95)]),
            ("b".into(), 1, vec![pt(200.0, 0.80), pt(100.0, 0.85)]),
        ];
        mark_pareto(&mut series, true);
        let marked = |s: &SweepSeries| s.2.iter().map(|p| p.pareto).collect::<Vec<_>>();
        // (40, 0.95) is beaten by (50, 0.99); (100, 0.85) by (100, 0.90).
        assert_eq!(marked(&series[0]), [true, true, false]);
        assert_eq!(marked(&series[1]), [true, false]);
        // On latency lower is better: the same points read as p99 flip the x order.
        mark_pareto(&mut series, false);
        assert_eq!(marked(&series[0]), [false, true, true]);
        assert_eq!(marked(&series[1]), [false, false]);
        let svg = recall_frontier("knn frontier", "p99 (ms)", &series).unwrap();
        assert!(svg.contains("knn frontier") && svg.contains("p99 (ms)"));
    }

    #[test]
    fn a_spectrum_is_svg_with_its_axis_labels() {
        let mut h = new_histogram(SIGFIG);
        for v in 1..=2000u64 {
            record(&mut h, v * 1000);
        }
        let svg = spectrum("knn latency", &[("sqlite".into(), 0, h)]).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..50.min(svg.len())]);
        for text in ["knn latency", "latency (ms)", "99.9%", "50%", "sqlite"] {
            assert!(svg.contains(text), "missing {text}");
        }
    }
}
