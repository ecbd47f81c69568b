//! The open-crowd soak at growing sizes: 10⁴, 10⁵ and 10⁶ new identities
//! (or the sizes given) through the scheduler with the distributor's own
//! bounds (`node::distributor::soak`), each in a process of its own so its
//! peak memory is its own. Prints a table: what the distributor keeps must
//! not grow with the crowd (docs/benchmarks.md).
//!
//! Usage: soak [IDENTITIES...]

use std::process::Command;

use node::distributor::soak::{self, Soak, SoakReport};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, n] = args.as_slice()
        && flag == "--one"
    {
        return one(n.parse()?);
    }
    let sizes: Vec<u32> = if args.is_empty() {
        vec![10_000, 100_000, 1_000_000]
    } else {
        args.iter().map(|a| a.parse()).collect::<Result<_, _>>()?
    };
    println!(
        "| identities | hand-outs | batches | history | LRP provers | events since snapshot \
         | store (MiB) | snapshot (MiB) | restart (ms) | peak RSS (MiB) | run (s) |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for n in sizes {
        let out = Command::new(std::env::current_exe()?)
            .args(["--one", &n.to_string()])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "the {n} run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
    Ok(())
}

/// One size, in this process: its table row.
fn one(identities: u32) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let r: SoakReport = soak::run(&dir, Soak::new(identities))?;
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    println!(
        "| {} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.0} | {:.0} | {:.1} |",
        r.identities,
        r.handouts,
        r.batches,
        r.history,
        r.lrp_provers,
        r.logged_since_snapshot,
        mib(r.store_bytes),
        mib(r.snapshot_bytes as u64),
        r.restart_s * 1e3,
        mib(peak_rss()),
        r.run_s,
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// A fresh directory under the system's temporary one.
fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("crowdprove-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// This process's peak resident memory (Linux), bytes; 0 if unknown.
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
