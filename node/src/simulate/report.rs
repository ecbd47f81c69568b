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
    let (w, h, pad) = (460.0, 300.0, 50.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" \
         font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" \
         fill=\"white\"/>\n",
        2.0 * w,
        h + 40.0
    );
    for (i, (title, value)) in panels.iter().enumerate() {
        let x0 = i as f64 * w;
        let points: Vec<(Policy, u32, f64)> = rows
            .iter()
            .filter_map(|r| value(r).map(|v| (r.policy, r.size, v)))
            .collect();
        let top = points.iter().map(|p| p.2).fold(1.0f64, f64::max) * 1.05;
        let bottom = points.iter().map(|p| p.2).fold(top, f64::min).min(1.0) * 0.95;
        let x = |size: u32| {
            let k = sizes.iter().position(|s| *s == size).unwrap_or(0) as f64;
            x0 + pad + k * (w - 2.0 * pad) / (sizes.len().max(2) - 1) as f64
        };
        let y = |v: f64| pad + (top - v) / (top - bottom).max(1e-9) * (h - 2.0 * pad);
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
            let v = bottom + (top - bottom) * f64::from(k) / 4.0;
            let _ = writeln!(
                svg,
                "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v:.2}</text>",
                x0 + pad - 4.0,
                y(v) + 4.0
            );
        }
        for &size in &sizes {
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{size}</text>",
                x(size),
                h - pad + 16.0
            );
        }
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">provers</text>",
            x0 + w / 2.0,
            h - pad + 32.0
        );
        for (p, policy) in Policy::ALL.iter().enumerate() {
            let line: Vec<String> = points
                .iter()
                .filter(|q| q.0 == *policy)
                .map(|q| format!("{:.1},{:.1}", x(q.1), y(q.2)))
                .collect();
            let _ = writeln!(
                svg,
                "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>",
                COLOURS[p],
                line.join(" ")
            );
        }
    }
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
    svg.push_str("</svg>\n");
    svg
}
