//! The printed result: one row per measurement, ours beside the anchor.

use std::time::{Duration, Instant};

/// Whether smaller or larger figures are better for a ratio target.
#[derive(Clone, Copy)]
pub enum Better {
    Lower,
    Higher,
}

pub struct Row {
    pub scenario: String,
    pub ours: String,
    pub anchor: String,
    /// ours / anchor (or whatever the scenario defines), with its target.
    pub ratio: Option<f64>,
    pub target: Option<(Better, f64)>,
}

#[derive(Default)]
pub struct Report {
    rows: Vec<Row>,
}

impl Report {
    /// A comparison of two timings: ratio = ours / anchor, lower is better.
    /// `target` is None for reference rows that measure someone else's code.
    pub fn compare_times(
        &mut self,
        scenario: &str,
        ours: Duration,
        anchor_label: &str,
        anchor: Duration,
        target: Option<f64>,
    ) {
        self.rows.push(Row {
            scenario: scenario.to_string(),
            ours: format_duration(ours),
            anchor: format!("{} {anchor_label}", format_duration(anchor)),
            ratio: Some(ours.as_secs_f64() / anchor.as_secs_f64()),
            target: target.map(|t| (Better::Lower, t)),
        });
    }

    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    pub fn print(&self) {
        let headers = ["scenario", "ours", "anchor", "ratio", "target", "met"];
        let cells: Vec<[String; 6]> = self
            .rows
            .iter()
            .map(|row| {
                let ratio = row
                    .ratio
                    .map(|r| format!("{r:.3}"))
                    .unwrap_or_else(|| "-".into());
                let (target, met) = match (row.target, row.ratio) {
                    (Some((Better::Lower, t)), Some(r)) => (format!("<= {t}"), yes_no(r <= t)),
                    (Some((Better::Higher, t)), Some(r)) => (format!(">= {t}"), yes_no(r >= t)),
                    _ => ("-".into(), "-".into()),
                };
                [
                    row.scenario.clone(),
                    row.ours.clone(),
                    row.anchor.clone(),
                    ratio,
                    target,
                    met,
                ]
            })
            .collect();
        let mut widths = headers.map(str::len);
        for row in &cells {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |cols: &[String]| {
            cols.iter()
                .enumerate()
                .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
                .collect::<Vec<_>>()
                .join(" | ")
        };
        println!();
        println!("{}", line(&headers.map(String::from)));
        println!(
            "{}",
            widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("-+-")
        );
        for row in &cells {
            println!("{}", line(row));
        }
    }
}

fn yes_no(ok: bool) -> String {
    if ok {
        "yes".into()
    } else {
        "NO".into()
    }
}

pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 1.0 {
        format!("{secs:.2} s")
    } else if secs >= 0.001 {
        format!("{:.2} ms", secs * 1e3)
    } else {
        format!("{:.1} µs", secs * 1e6)
    }
}

fn time(work: &mut impl FnMut()) -> Duration {
    let start = Instant::now();
    work();
    start.elapsed()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Median wall times of `runs` calls each of `ours` and `anchor`, after
/// `warmup` unmeasured calls of each. The calls alternate, so drift in the
/// machine (caches, the other core's load) hits both sides alike.
pub fn median_times_interleaved(
    warmup: usize,
    runs: usize,
    mut ours: impl FnMut(),
    mut anchor: impl FnMut(),
) -> (Duration, Duration) {
    for _ in 0..warmup {
        ours();
        anchor();
    }
    let (mut ours_times, mut anchor_times) = (Vec::new(), Vec::new());
    for run in 0..runs {
        // Alternate which side goes first, too.
        if run % 2 == 0 {
            ours_times.push(time(&mut ours));
            anchor_times.push(time(&mut anchor));
        } else {
            anchor_times.push(time(&mut anchor));
            ours_times.push(time(&mut ours));
        }
    }
    (median(ours_times), median(anchor_times))
}

/// Paired rounds of throughput runs: each round runs every variant once,
/// the order rotating, so that a round's ratios compare runs seconds apart
/// (which cancels most of a VM's drift). Returns each variant's figures.
pub fn paired_rounds(
    rounds: usize,
    variants: usize,
    mut run: impl FnMut(usize) -> f64,
) -> Vec<Vec<f64>> {
    let mut figures: Vec<Vec<f64>> = vec![Vec::new(); variants];
    for round in 0..rounds {
        for k in 0..variants {
            let v = (round + k) % variants;
            figures[v].push(run(v));
        }
    }
    figures
}

/// The median round's ratio of `ours` to `base` (paired by round): the
/// ratio, the round it came from, and the lowest and highest ratios.
pub fn median_paired_ratio(ours: &[f64], base: &[f64]) -> (f64, usize, f64, f64) {
    let mut ratios: Vec<f64> = ours.iter().zip(base).map(|(a, b)| a / b).collect();
    ratios.sort_by(|a, b| a.total_cmp(b));
    let median = ratios[ratios.len() / 2];
    let round = ours
        .iter()
        .zip(base)
        .position(|(a, b)| a / b == median)
        .expect("the median is one of the rounds");
    (median, round, ratios[0], ratios[ratios.len() - 1])
}
