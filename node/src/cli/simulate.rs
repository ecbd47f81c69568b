//! `crowdprove simulate`: the scheduling policies compared in virtual time.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use node::simulate::{report, study};

/// `crowdprove simulate`.
#[derive(Debug, Args)]
pub(crate) struct SimulateArgs {
    /// Crowd sizes of the comparison (machines, faulty ones included).
    #[arg(long, value_delimiter = ',', default_values_t = [20, 100, 500, 2_000])]
    sizes: Vec<u32>,
    /// Jobs per batch per machine of the crowd.
    #[arg(long, default_value_t = 10)]
    jobs_per_prover: u32,
    /// Provers of the scale run (the paper's 17,188-job batch); 0 skips it.
    #[arg(long, default_value_t = 3_000)]
    scale_provers: u32,
    /// Skip the paper's runs.
    #[arg(long)]
    no_paper: bool,
    /// Seed of every run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Exit 1, naming each, if the adaptive policy misses a goal: useful
    /// work ≥ 0.97 and fairness ≥ 0.99 fault-free; latency ≤ 1.3× with 25%
    /// sitting or hanging, ≤ 1.2× with 10% liars or slow machines.
    #[arg(long)]
    check: bool,
    /// Also write simulation.md and simulation.svg here.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// `crowdprove simulate`: the comparison, the paper's runs and the scale
/// run, printed as Markdown (and written to --out).
pub(crate) fn simulate(args: &SimulateArgs) -> anyhow::Result<()> {
    if args.sizes.contains(&0) || args.jobs_per_prover == 0 {
        bail!("--sizes and --jobs-per-prover must be at least 1");
    }
    let setup = study::Study {
        sizes: args.sizes.clone(),
        jobs_per_prover: args.jobs_per_prover,
        seed: args.seed,
    };
    let mut md = heading(args);
    let rows = study::grid(&setup);
    md.push_str(&report::grid_table(&rows));
    if !args.no_paper {
        md.push_str("\n## The paper's runs\n\n");
        md.push_str(&report::paper_table(&study::paper(args.seed)));
    }
    if args.scale_provers > 0 {
        let scale = study::scale(args.scale_provers, args.seed);
        md.push_str("\n## Scale\n\n");
        md.push_str(&report::scale_line(&scale));
        md.push('\n');
    }
    print!("{md}");
    if let Some(dir) = &args.out {
        write_files(dir, &md, &rows)?;
    }
    if args.check {
        check(&rows)?;
    }
    Ok(())
}

/// The report's title and the conditions of its runs, with the command
/// line that made it.
fn heading(args: &SimulateArgs) -> String {
    let command = format!(
        "crowdprove simulate --sizes {} --jobs-per-prover {} --scale-provers {} --seed {}{}",
        args.sizes
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(","),
        args.jobs_per_prover,
        args.scale_provers,
        args.seed,
        if args.no_paper { " --no-paper" } else { "" },
    );
    format!(
        "# Scheduling policies in simulation\n\nMade by `{command}`: one batch of \
         {} jobs per machine, the paper's hardware mix (40% 8-core, 30% 16-core, 20% M3 Max, \
         10% L4), ±10% proving-time jitter, 50 ms latency; every policy on the same seeds. \
         Latency is against the crowd's fault-free provers alone (same policy and seed).\n\n",
        args.jobs_per_prover
    )
}

/// Writes the report `md` and the chart of `rows` into `dir`.
fn write_files(dir: &Path, md: &str, rows: &[study::Row]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let files = [
        ("simulation.md", md.to_string()),
        ("simulation.svg", report::chart(rows)),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!(
        "wrote {0}/simulation.md and {0}/simulation.svg",
        dir.display()
    );
    Ok(())
}

/// Fails, naming each, if the adaptive policy missed a goal in `rows`.
fn check(rows: &[study::Row]) -> anyhow::Result<()> {
    let failures = study::check(rows);
    if !failures.is_empty() {
        bail!(
            "the adaptive policy missed {} goal(s): {}",
            failures.len(),
            failures.join("; ")
        );
    }
    eprintln!("every goal met");
    Ok(())
}
