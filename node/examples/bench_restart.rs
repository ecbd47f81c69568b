//! Restart time against uptime: the distributor's scheduler state rebuilt
//! from its job store after about a million logged scheduler events, with
//! the log compacted at each proven batch (as the distributor does) and
//! without (as it did before), in the same run. Run through
//! `scripts/bench-distributor`.
//!
//! Then restart time against state size: the rollup state of 10,000, 50,000
//! and 200,000 accounts (depth-18 circuit) decoded and its Merkle tree
//! rebuilt, as the distributor does at start, as a ratio to the smallest;
//! and the same state saved as version 1 (no root, so every key's subgroup
//! is checked), in the same run.
//!
//! Usage: bench_restart [EVENTS]

use std::sync::Arc;
use std::time::Instant;

use node::disk::Space;
use node::distributor::courier::Durable;
use node::distributor::journal::Journal;
use node::distributor::scheduler::{Log, Scheduler};
use node::distributor::store::JobStore;
use protocol::lrp::{Completion, Decision, LrpConfig, LrpEvent, LrpOutcome};
use protocol::{BatchId, JobId, SecretKey, Timestamp};

const JOBS_PER_BATCH: u32 = 100;
const PROVERS: u8 = 200;

/// Logs `events` scheduler events the way a busy distributor does: batches
/// of jobs, each handed out and completed, each batch then forgotten (and,
/// if `compact`, snapshotted). Returns the events logged.
fn fill(store: &Arc<JobStore>, events: usize, compact: bool) -> anyhow::Result<usize> {
    let (journal, thread) = Journal::start(
        store.clone(),
        Space::floor(store.path(), 0),
        |_: Durable| {},
        |e| panic!("{e}"),
    )?;
    let mut s = Scheduler::replay(LrpConfig::default(), None, &[], 100, journal)?;
    let provers: Vec<_> = (0..PROVERS)
        .map(|i| SecretKey::from_seed([i; 32]).public())
        .collect();
    let mut logged = 0;
    let mut batch = 0u64;
    while logged < events {
        batch += 1;
        let id = BatchId(batch);
        let jobs = (0..JOBS_PER_BATCH).map(|i| JobId::new(id, i)).collect();
        s.apply(LrpEvent::Submit { jobs }, |_| Log::plain());
        logged += 1;
        for i in 0..JOBS_PER_BATCH {
            let prover = provers[(i as usize + batch as usize) % provers.len()];
            let now = Timestamp(batch * 1_000 + u64::from(i));
            let LrpOutcome::Decided(Decision::Assign(h)) =
                s.apply(LrpEvent::Request { prover, now }, |_| Log::plain())
            else {
                anyhow::bail!("a fresh job was not handed out");
            };
            let done = LrpEvent::Complete {
                job: h.job,
                request: h.request,
                prover,
                now,
            };
            let outcome = s.apply(done, |_| Log::plain());
            anyhow::ensure!(
                matches!(outcome, LrpOutcome::Completed(Completion::Accepted { .. })),
                "{outcome:?}"
            );
            logged += 2;
        }
        s.apply(LrpEvent::Forget { batch: id }, |_| Log::plain());
        logged += 1;
        if compact {
            s.compact();
        }
    }
    s.close_journal();
    drop(s);
    thread.join();
    Ok(logged)
}

/// Opens the store and rebuilds the scheduler, as a restart does.
fn restart(path: &std::path::Path) -> anyhow::Result<(f64, usize)> {
    let started = Instant::now();
    let store = Arc::new(JobStore::open(path)?);
    let (first, snapshot) = match store.snapshot()? {
        Some((first, snapshot)) => (first, Some(snapshot)),
        None => (0, None),
    };
    let events = store.events_from(first)?;
    let (journal, thread) = Journal::start(
        store.clone(),
        Space::floor(store.path(), 0),
        |_: Durable| {},
        |e| panic!("{e}"),
    )?;
    let s = Scheduler::replay(
        LrpConfig::default(),
        snapshot.as_ref(),
        &events,
        100,
        journal,
    )?;
    let seconds = started.elapsed().as_secs_f64();
    drop(s);
    thread.join();
    Ok((seconds, events.len()))
}

fn disk_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn main() -> anyhow::Result<()> {
    let events: usize = std::env::args()
        .nth(1)
        .map_or(Ok(1_000_000), |a| a.parse())?;
    println!("| log | events logged | events replayed at restart | restart | store on disk |");
    println!("|---|---:|---:|---:|---:|");
    for compact in [false, true] {
        let dir = tempfile::tempdir()?;
        let store = Arc::new(JobStore::open(dir.path())?);
        eprintln!(
            "logging {events} events ({}) ...",
            if compact {
                "compacted"
            } else {
                "not compacted"
            }
        );
        let logged = fill(&store, events, compact)?;
        drop(store);
        let (seconds, replayed) = restart(dir.path())?;
        println!(
            "| {} | {logged} | {replayed} | {seconds:.2} s | {:.1} MB |",
            if compact {
                "compacted at each proven batch"
            } else {
                "never compacted"
            },
            disk_bytes(dir.path()) as f64 / 1e6
        );
    }
    println!();
    println!(
        "| rollup state | saved size | restore (decode + tree) | ratio to 10,000 accounts | \
         restore of version 1 (every key's subgroup checked) | version 2 against 1 |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    let config = prover_core::CircuitConfig::new(18, 1)?;
    let mut baseline = None;
    for accounts in [10_000u32, 50_000, 200_000] {
        eprintln!("building a {accounts}-account state ...");
        let state = prover_core::TxGenerator::new(1, accounts).genesis(config, 1_000_000)?;
        let bytes = state.to_bytes();
        let restore = |bytes: &[u8]| -> anyhow::Result<f64> {
            let started = Instant::now();
            let restored = prover_core::Rollup::from_bytes(bytes)?;
            let seconds = started.elapsed().as_secs_f64();
            assert_eq!(restored.to_bytes(), state.to_bytes());
            Ok(seconds)
        };
        let seconds = restore(&bytes)?;
        let v1 = restore(&state.to_v1_bytes())?;
        let base = *baseline.get_or_insert(seconds);
        println!(
            "| {accounts} accounts | {:.1} MB | {seconds:.2} s | {:.1} | {v1:.2} s | {:.2} |",
            bytes.len() as f64 / 1e6,
            seconds / base,
            seconds / v1
        );
    }
    Ok(())
}
