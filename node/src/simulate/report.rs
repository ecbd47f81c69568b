//! The simulation's results as Markdown tables and an SVG chart.

use std::fmt::Write;

use super::Policy;
use super::study::{MIXES, PaperRun, Row, ScaleRun};

/// The comparison grid as a Markdown table, one row per run.
pub fn grid_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| crowd | faults | policy | batch latency | × fault-free provers alone | useful work | \
         wasted prover-h | fairness (Jain) | prover-s per job | first paid job |\n\
         | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for row in rows {
        let o = &row.outcome;
        let latency = if o.finished {
            format!("{:.1} min", o.mean_latency_ms() / 60_000.0)
        } else {
            "did not finish".to_string()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.2} | {:.3} | {:.1} | {:.3} | {:.1} | {:.0} s |",
            row.size,
            row.mix.label(),
            row.policy.name(),
            latency,
            row.latency_ratio(),
            o.useful_work(),
            o.wasted_ms as f64 / 3_600_000.0,
            o.fairness,
            o.prover_secs_per_job(),
            o.first_paid_ms as f64 / 1000.0,
        );
    }
    out
}

/// The paper's runs beside their simulation.
pub fn paper_table(runs: &[PaperRun]) -> String {
    let mut out = String::from("| run | paper | model J·T/P |");
    for policy in Policy::ALL {
        let _ = write!(out, " {} |", policy.name());
    }
    out.push_str("\n| --- | ---: | ---: |");
    for _ in Policy::ALL {
        out.push_str(" ---: |");
    }
    out.push('\n');
    for run in runs {
        let _ = write!(
            out,
            "| {} | {:.2} min | {:.2} min |",
            run.label, run.paper_min, run.model_min
        );
        for minutes in &run.simulated_min {
            let _ = write!(out, " {minutes:.2} min |");
        }
        out.push('\n');
    }
    out
}

/// The scale run in one line.
pub fn scale_line(run: &ScaleRun) -> String {
    let o = &run.outcome;
    format!(
        "{} jobs on {} provers (10% hanging), adaptive: batch latency {:.1} min, useful work \
         {:.3}, {} decisions simulated in {:.1} s of wall time ({:.0} decisions/s)",
        run.jobs,
        run.provers,
        o.mean_latency_ms() / 60_000.0,
        o.useful_work(),
        o.decisions,
        run.wall_secs,
        o.decisions as f64 / run.wall_secs.max(1e-9),
    )
}

/// A chart panel: its title, and the value it plots for a row, if any.
type Panel<'a> = (&'a str, Box<dyn Fn(&Row) -> Option<f64>>);

/// Colours of the policies' lines, in [`Policy::ALL`] order.
const COLOURS: [&str; 5] = ["#1b7837", "#762a83", "#2166ac", "#b2182b", "#e08214"];

/// Two panels against crowd size, one line per policy: useful work in
/// fault-free runs, and batch latency over the fault-free provers' alone
/// with 25% of the crowd hanging.
pub fn chart(rows: &[Row]) -> String {
    let mut sizes: Vec<u32> = rows.iter().map(|r| r.size).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let hang = MIXES[2];
    let panels: [Panel; 2] = [
        (
            "useful work (jobs ÷ hand-outs), fault-free",
            Box::new(|r: &Row| (r.mix == MIXES[0]).then(|| r.outcome.useful_work())),
        ),
        (
            "batch latency ÷ fault-free provers alone, 25% hang",
            Box::new(move |r: &Row| (r.mix == hang).then(|| r.latency_ratio())),
        ),
    ];
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" \
         font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" \
         fill=\"white\"/>\n",
        2.0 * PANEL_W,
        PANEL_H + 40.0
    );
    for (i, (title, value)) in panels.iter().enumerate() {
        let points: Vec<(Policy, u32, f64)> = rows
            .iter()
            .filter_map(|r| value(r).map(|v| (r.policy, r.size, v)))
            .collect();
        let frame = Frame::new(i as f64 * PANEL_W, &sizes, &points);
        frame.axes(&mut svg, title);
        frame.lines(&mut svg, &points);
    }
    legend(&mut svg);
    svg.push_str("</svg>\n");
    svg
}

/// A chart panel's width.
const PANEL_W: f64 = 460.0;
/// A chart panel's height, legend excluded.
const PANEL_H: f64 = 300.0;
/// The margin inside a panel, around its plot.
const PANEL_PAD: f64 = 50.0;

/// Where a panel is and what it spans: the crowd sizes along x, the
/// plotted values' range (with a margin, 1.0 included) along y.
struct Frame<'a> {
    /// The panel's left edge.
    x0: f64,
    sizes: &'a [u32],
    top: f64,
    bottom: f64,
}

impl<'a> Frame<'a> {
    /// The panel at `x0` of `points` over `sizes`.
    fn new(x0: f64, sizes: &'a [u32], points: &[(Policy, u32, f64)]) -> Self {
        let top = points.iter().map(|p| p.2).fold(1.0f64, f64::max) * 1.05;
        let bottom = points.iter().map(|p| p.2).fold(top, f64::min).min(1.0) * 0.95;
        Self {
            x0,
            sizes,
            top,
            bottom,
        }
    }

    /// The x of crowd size `size`.
    fn x(&self, size: u32) -> f64 {
        let (w, pad) = (PANEL_W, PANEL_PAD);
        let k = self.sizes.iter().position(|s| *s == size).unwrap_or(0) as f64;
        self.x0 + pad + k * (w - 2.0 * pad) / (self.sizes.len().max(2) - 1) as f64
    }

    /// The y of value `v`.
    fn y(&self, v: f64) -> f64 {
        let (h, pad) = (PANEL_H, PANEL_PAD);
        pad + (self.top - v) / (self.top - self.bottom).max(1e-9) * (h - 2.0 * pad)
    }

    /// The panel's title, its axes and their labels.
    fn axes(&self, svg: &mut String, title: &str) {
        let (x0, w, h, pad) = (self.x0, PANEL_W, PANEL_H, PANEL_PAD);
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-weight=\"bold\">{title}</text>",
            x0 + w / 2.0
        );
        let _ = writeln!(
            svg,
            "<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"black\"/>\
             <line x1=\"{0}\" y1=\"{2}\" x2=\"{3}\" y2=\"{2}\" stroke=\"black\"/>",
            x0 + pad,
            pad,
            h - pad,
            x0 + w - pad
        );
        for k in 0..=4 {
            let v = self.bottom + (self.top - self.bottom) * f64::from(k) / 4.0;
            let _ = writeln!(
                svg,
                "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v:.2}</text>",
                x0 + pad - 4.0,
                self.y(v) + 4.0
            );
        }
        for &size in self.sizes {
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{size}</text>",
                self.x(size),
                h - pad + 16.0
            );
        }
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">provers</text>",
            x0 + w / 2.0,
            h - pad + 32.0
        );
    }

    /// One line per policy through its `points`.
    fn lines(&self, svg: &mut String, points: &[(Policy, u32, f64)]) {
        for (p, policy) in Policy::ALL.iter().enumerate() {
            let line: Vec<String> = points
                .iter()
                .filter(|q| q.0 == *policy)
                .map(|q| format!("{:.1},{:.1}", self.x(q.1), self.y(q.2)))
                .collect();
            let _ = writeln!(
                svg,
                "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>",
                COLOURS[p],
                line.join(" ")
            );
        }
    }
}

/// The policies' colours and names, under the panels.
fn legend(svg: &mut String) {
    let h = PANEL_H;
    for (p, policy) in Policy::ALL.iter().enumerate() {
        let lx = 40.0 + p as f64 * 175.0;
        let _ = writeln!(
            svg,
            "<rect x=\"{lx}\" y=\"{}\" width=\"14\" height=\"4\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            h + 18.0,
            COLOURS[p],
            lx + 20.0,
            h + 23.0,
            policy.name()
        );
    }
}
