//! The scaling plot: payments/s against shard (or thread) count for the three designs, as
//! SVG (plotters' SVG backend; text is left to the SVG viewer's fonts).

use plotters::prelude::*;

use super::{Design, Error, Report};

/// The three designs' curves: (threads, median payments/s), by thread count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Curves {
    /// The shard engine (threads = shards).
    pub engine: Vec<(usize, f64)>,
    /// One global `Mutex<NodeCore>`.
    pub global_mutex: Vec<(usize, f64)>,
    /// Per-peer `Mutex<NodeCore>` under a `RwLock`'d map.
    pub per_peer_mutex: Vec<(usize, f64)>,
    /// The caption.
    pub title: String,
}

impl Curves {
    /// The curves of a report.
    pub fn from_report(report: &Report) -> Curves {
        let curve = |design: Design| {
            (1..=report.max_shards)
                .filter_map(|t| report.median(design, t).map(|r| (t, r)))
                .collect()
        };
        Curves {
            engine: curve(Design::Engine),
            global_mutex: curve(Design::GlobalMutex),
            per_peer_mutex: curve(Design::PerPeerMutex),
            title: title(report.cores, report.payments, report.runs),
        }
    }

    /// The curves of a report read back from its JSON (`lnshard bench scaling --json`):
    /// the fields `engine_N`, `global_mutex_N`, `per_peer_mutex_N`.
    pub fn from_json(json: &serde_json::Value) -> Result<Curves, Error> {
        let Some(object) = json.as_object() else {
            return Err(Error::Plot(
                "the scaling report is not a JSON object".into(),
            ));
        };
        let mut curves = Curves::default();
        for (key, value) in object {
            let Some(rate) = value.as_f64() else {
                continue;
            };
            let (curve, n) = if let Some(n) = key.strip_prefix("engine_") {
                (&mut curves.engine, n)
            } else if let Some(n) = key.strip_prefix("global_mutex_") {
                (&mut curves.global_mutex, n)
            } else if let Some(n) = key.strip_prefix("per_peer_mutex_") {
                (&mut curves.per_peer_mutex, n)
            } else {
                continue;
            };
            // `engine_2_within_shard` and the ratios are not points of a curve.
            if let Ok(n) = n.parse::<usize>() {
                curve.push((n, rate));
            }
        }
        for c in [
            &mut curves.engine,
            &mut curves.global_mutex,
            &mut curves.per_peer_mutex,
        ] {
            c.sort_by_key(|p| p.0);
        }
        if curves.engine.is_empty() {
            return Err(Error::Plot(
                "the scaling report has no engine_N field".into(),
            ));
        }
        let field = |k: &str| object.get(k).and_then(|v| v.as_u64()).unwrap_or(0) as usize;
        curves.title = title(field("cores"), field("payments"), field("runs"));
        Ok(curves)
    }
}

fn title(cores: usize, payments: usize, runs: usize) -> String {
    format!(
        "Routing node, forwarded payments/s ({cores} cores; {payments} payments per replay, median of {runs} runs)"
    )
}

/// The plot as an SVG document.
pub fn svg(curves: &Curves) -> Result<String, Error> {
    let plot_error = |e: &dyn std::fmt::Display| Error::Plot(e.to_string());
    let all = || {
        curves
            .engine
            .iter()
            .chain(&curves.global_mutex)
            .chain(&curves.per_peer_mutex)
    };
    let max_x = all().map(|p| p.0).max().unwrap_or(1).max(2) as i32;
    // Headroom above the highest point for the legend (upper left).
    let max_y = all().map(|p| p.1).fold(0.0, f64::max).max(1.0) * 1.3;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (900, 540)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&curves.title, ("sans-serif", 18))
            .margin(20)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(0..max_x + 1, 0.0..max_y)
            .map_err(|e| plot_error(&e))?;
        chart
            .configure_mesh()
            .x_desc("shards (engine) / threads (baselines)")
            .y_desc("payments/s")
            .y_label_formatter(&|y| format!("{y:.0}"))
            .x_labels(max_x as usize + 2)
            .x_label_formatter(&|x| {
                if *x >= 1 && *x <= max_x {
                    x.to_string()
                } else {
                    String::new()
                }
            })
            .draw()
            .map_err(|e| plot_error(&e))?;
        let series = [
            ("lnshard shard engine", &curves.engine, BLUE),
            (
                "per-peer Mutex + RwLock'd map (LDK after)",
                &curves.per_peer_mutex,
                RGBColor(0, 150, 0),
            ),
            ("one global Mutex (LDK before)", &curves.global_mutex, RED),
        ];
        for (name, points, color) in series {
            let points: Vec<(i32, f64)> = points.iter().map(|&(x, y)| (x as i32, y)).collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(|e| plot_error(&e))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(|e| plot_error(&e))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| plot_error(&e))?;
        root.present().map_err(|e| plot_error(&e))?;
    }
    Ok(out)
}
