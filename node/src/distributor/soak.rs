//! A soak of the scheduler under an open crowd: many distinct identities,
//! each new, each asking for work, heartbeating, releasing, sitting on a
//! job, and naming hand-outs that are not theirs, while a few honest
//! provers finish the jobs. In process and with no sockets: a
//! [`Scheduler`] over a real [`JobStore`] and [`Journal`], as the
//! distributor runs them, on a simulated clock (one identity every
//! [`ARRIVAL_MS`]). Then a restart: the store reopened and the scheduler
//! rebuilt from its snapshot and log.
//!
//! What it reports ([`SoakReport`]) must not grow with the number of
//! identities: the history's counters, the LRP's provers, the events since
//! the last snapshot, the store's size on disk, the snapshot's size and the
//! restart time. `cargo test` runs it at 200,000 identities and asserts
//! fixed bounds; `node/examples/soak.rs` runs it at 10⁴, 10⁵ and 10⁶ and
//! prints a table (`docs/benchmarks.md`).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use protocol::lrp::{Decision, LrpConfig, LrpEvent, LrpOutcome};
use protocol::{BatchId, JobId, PublicKey, RequestId, Timestamp, codec};

use super::courier::Durable;
use super::history::MAX_PROVERS;
use super::journal::Journal;
use super::queue::ServiceThread;
use super::scheduler::{COMPACT_EVERY, Log, Scheduler};
use super::store::JobStore;
use crate::disk::Space;

/// Simulated time between two identities' arrivals.
pub const ARRIVAL_MS: u64 = 10;

/// Jobs per batch; a finished batch is forgotten and the next submitted.
const JOBS_PER_BATCH: u32 = 1_000;

/// Honest provers, taking turns.
const HONEST: u8 = 8;

/// An honest prover finishes a job once per this many identities.
const HONEST_EVERY: u32 = 10;

/// Entries the driver lets wait in the journal before it waits too.
const JOURNAL_BACKLOG: usize = 10_000;

/// The reward per job.
const REWARD: u64 = 100;

/// A soak's size and the scheduler's bounds.
#[derive(Debug, Clone, Copy)]
pub struct Soak {
    /// Identities that come.
    pub identities: u32,
    /// Provers' counters kept (see [`super::history::MAX_PROVERS`]).
    pub history_cap: usize,
    /// Logged events between snapshots (see [`COMPACT_EVERY`]).
    pub compact_every: u64,
}

impl Soak {
    /// `identities`, with the distributor's own bounds.
    pub fn new(identities: u32) -> Self {
        Self {
            identities,
            history_cap: MAX_PROVERS,
            compact_every: COMPACT_EVERY,
        }
    }
}

/// What the soak left behind.
#[derive(Debug, Clone, Copy)]
pub struct SoakReport {
    /// Identities that came.
    pub identities: u32,
    /// Provers with counters in the history.
    pub history: usize,
    /// Provers with state in the LRP.
    pub lrp_provers: usize,
    /// Events logged since the last snapshot when it stopped.
    pub logged_since_snapshot: u64,
    /// Hand-outs made to the crowd (not the honest provers).
    pub handouts: u64,
    /// Batches proven (forgotten, as the distributor does).
    pub batches: u64,
    /// The job store's files, bytes.
    pub store_bytes: u64,
    /// The last snapshot, encoded, bytes.
    pub snapshot_bytes: usize,
    /// Events replayed after it on restart.
    pub replayed: usize,
    /// Opening the store and rebuilding the scheduler, seconds.
    pub restart_s: f64,
    /// The run itself, seconds.
    pub run_s: f64,
}

/// The `i`th identity of the crowd: a key no one else has.
pub fn stranger(i: u32) -> PublicKey {
    let mut key = [0xa5; 32];
    key[..4].copy_from_slice(&i.to_be_bytes());
    PublicKey(key)
}

fn honest(i: u8) -> PublicKey {
    PublicKey([i; 32])
}

/// Runs `soak`'s identities through a scheduler over a job store in `dir`
/// (which must be empty), then restarts it; see the module's docs.
pub fn run(dir: &Path, soak: Soak) -> anyhow::Result<SoakReport> {
    let started = Instant::now();
    let identities = soak.identities;
    let store = Arc::new(JobStore::open(dir)?);
    let (mut scheduler, thread) = start(&store, None, &[])?;
    scheduler.cap_history(soak.history_cap);
    scheduler.compact_every(soak.compact_every);
    let mut crowd = Crowd {
        s: scheduler,
        batch: 0,
        handouts: 0,
        batches: 0,
    };
    crowd.next_batch();
    for i in 0..identities {
        let now = Timestamp(1 + u64::from(i) * ARRIVAL_MS);
        crowd.stranger(i, now);
        if i % 1_024 == 0 {
            // The network's rate limits keep a distributor's inputs at
            // what its disk takes; this driver has none, so it waits for
            // the journal instead of queueing without end.
            while crowd.s.journal_depth() > JOURNAL_BACKLOG {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        if i % HONEST_EVERY == 0 {
            crowd.honest(honest((i / HONEST_EVERY % u32::from(HONEST)) as u8), now)?;
        }
    }
    let Crowd {
        mut s,
        handouts,
        batches,
        ..
    } = crowd;
    let (history, lrp_provers) = (s.history().provers.len(), s.lrp().prover_count());
    let logged_since_snapshot = s.logged_since_snapshot();
    s.close_journal();
    drop(s);
    thread.join();
    drop(store);
    let run_s = started.elapsed().as_secs_f64();
    let (restart_s, replayed, snapshot_bytes) = restart(dir)?;
    Ok(SoakReport {
        identities,
        history,
        lrp_provers,
        logged_since_snapshot,
        handouts,
        batches,
        store_bytes: disk_bytes(dir),
        snapshot_bytes,
        replayed,
        restart_s,
        run_s,
    })
}

/// The scheduler and what the crowd did to it.
struct Crowd {
    s: Scheduler,
    batch: u64,
    handouts: u64,
    batches: u64,
}

impl Crowd {
    fn apply(&mut self, event: LrpEvent) -> LrpOutcome {
        self.s.apply(event, |_| Log::plain())
    }

    /// Forgets the finished batch (compacting, as the distributor does
    /// once its batch proof checks) and submits the next.
    fn next_batch(&mut self) {
        if self.batch > 0 {
            self.apply(LrpEvent::Forget {
                batch: BatchId(self.batch),
            });
            self.s.compact();
            self.batches += 1;
        }
        self.batch += 1;
        let id = BatchId(self.batch);
        let jobs = (0..JOBS_PER_BATCH).map(|i| JobId::new(id, i)).collect();
        self.apply(LrpEvent::Submit { jobs });
    }

    /// One new identity: asks, and with a hand-out heartbeats (twice) and
    /// gives it back, or (one in four) sits on it; names a hand-out that
    /// is not its own; asks again.
    fn stranger(&mut self, i: u32, now: Timestamp) {
        let prover = stranger(i);
        let mut held = None;
        if let LrpOutcome::Decided(Decision::Assign(h)) =
            self.apply(LrpEvent::Request { prover, now })
        {
            self.handouts += 1;
            for _ in 0..2 {
                self.apply(LrpEvent::Heartbeat {
                    job: h.job,
                    request: h.request,
                    prover,
                    now,
                });
            }
            if !i.is_multiple_of(4) {
                self.apply(LrpEvent::Release {
                    job: h.job,
                    request: h.request,
                    prover,
                    now,
                });
            }
            held = Some(h);
        }
        // Another's hand-out (the one before), and one never made.
        let other = held.map_or(RequestId(1), |h| RequestId(h.request.0.saturating_sub(1)));
        let job = JobId::new(BatchId(self.batch), i % JOBS_PER_BATCH);
        for (job, request) in [
            (job, other),
            (JobId::new(BatchId(u64::MAX), i), RequestId(0)),
        ] {
            self.apply(LrpEvent::Release {
                job,
                request,
                prover,
                now,
            });
            self.apply(LrpEvent::Heartbeat {
                job,
                request,
                prover,
                now,
            });
        }
        self.apply(LrpEvent::Request { prover, now });
    }

    /// An honest prover takes a job and proves it at once.
    fn honest(&mut self, prover: PublicKey, now: Timestamp) -> anyhow::Result<()> {
        let LrpOutcome::Decided(Decision::Assign(h)) =
            self.apply(LrpEvent::Request { prover, now })
        else {
            return Ok(());
        };
        let outcome = self.apply(LrpEvent::Complete {
            job: h.job,
            request: h.request,
            prover,
            now,
        });
        anyhow::ensure!(matches!(outcome, LrpOutcome::Completed(_)), "{outcome:?}");
        if self.s.lrp().is_finished(BatchId(self.batch)) {
            self.next_batch();
        }
        Ok(())
    }
}

fn start(
    store: &Arc<JobStore>,
    snapshot: Option<&super::store::Snapshot>,
    events: &[LrpEvent],
) -> anyhow::Result<(Scheduler, ServiceThread)> {
    let (journal, thread) = Journal::start(
        store.clone(),
        Space::floor(store.path(), 0),
        |_: Durable| {},
        |e| panic!("{e}"),
    )?;
    let s = Scheduler::replay(LrpConfig::default(), snapshot, events, REWARD, journal)?;
    Ok((s, thread))
}

/// Reopens the store and rebuilds the scheduler, as a restart does: the
/// seconds it took, the events replayed, the snapshot's encoded size.
fn restart(dir: &Path) -> anyhow::Result<(f64, usize, usize)> {
    let started = Instant::now();
    let store = Arc::new(JobStore::open(dir)?);
    let (first, snapshot) = match store.snapshot()? {
        Some((first, snapshot)) => (first, Some(snapshot)),
        None => (0, None),
    };
    let events = store.events_from(first)?;
    let (mut s, thread) = start(&store, snapshot.as_ref(), &events)?;
    let seconds = started.elapsed().as_secs_f64();
    let bytes = snapshot
        .as_ref()
        .map_or(0, |s| codec::encode_stored(s).len());
    s.close_journal();
    drop(s);
    thread.join();
    Ok((seconds, events.len(), bytes))
}

/// The bytes of the files in `dir` and below.
fn disk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crowd_of_new_identities_leaves_bounded_state() {
        // Small bounds, so that each is reached many times over.
        let soak = Soak {
            identities: 200_000,
            history_cap: 5_000,
            compact_every: 10_000,
        };
        let dir = tempfile::tempdir().unwrap();
        let r = run(dir.path(), soak).unwrap();
        eprintln!("{r:?}");
        assert!(r.handouts > 20_000, "the crowd got work: {r:?}");
        assert!(r.batches >= 3, "batches went by: {r:?}");
        // The LRP keeps the holders of the open batch's jobs.
        assert!(r.lrp_provers <= 5 * JOBS_PER_BATCH as usize, "{r:?}");
        // Counters: the cap, a sixteenth over, and those holding work.
        let counters = soak.history_cap + soak.history_cap / 16 + r.lrp_provers;
        assert!(r.history <= counters, "{r:?}");
        assert!(r.logged_since_snapshot < soak.compact_every, "{r:?}");
        assert_eq!(r.replayed as u64, r.logged_since_snapshot, "{r:?}");
        assert!(r.snapshot_bytes < 2 << 20, "{r:?}");
        assert!(r.store_bytes < 16 << 20, "{r:?}");
        // Generous: a debug build on a shared machine.
        assert!(r.restart_s < 10.0, "{r:?}");
    }
}
