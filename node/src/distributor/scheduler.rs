//! The scheduler core: the LRP state machine, the history kept beside it,
//! and the one way either changes — [`Scheduler::apply`], which applies an
//! event and queues it to the journal before its effect can leave the node.
//!
//! Single-threaded by design: the run loop owns it. Events that change
//! nothing but the clock are not logged ([`changes_nothing`]): polls with no
//! work or refused, heartbeats too soon after the last or for no live
//! hand-out, releases, proofs and strikes for unknown, another prover's or
//! finished hand-outs, batches with no new job, forgets of unfinished
//! batches. Event times are kept monotonic ([`Scheduler::now`]), so the next
//! logged event moves a replayed clock to the same place. A stranger's
//! traffic therefore writes nothing, and what is logged is compacted after a
//! proven batch and after every [`COMPACT_EVERY`] logged events, so disk and
//! restart time follow the open work, not the uptime or the traffic.
//!
//! Event times come from [`Clock`]: the wall clock is read once at start and
//! the monotonic clock advances it from there, so a wall-clock step while the
//! node runs (NTP, an operator's `date -s`) neither expires every lease at
//! once nor freezes them. Across a restart time resumes at the later of the
//! wall clock and the last logged event: never backwards, and the time the
//! node was down counts towards leases (their holders may still deliver).

use std::time::Instant;

use protocol::lrp::{
    Completion, Decision, ForgetOutcome, HeartbeatOutcome, JobView, Lrp, LrpConfig, LrpEvent,
    LrpOutcome, ReleaseOutcome, StrikeOutcome,
};
use protocol::{JobId, PublicKey, RequestId, Timestamp};

use super::courier::Durable;
use super::history::History;
use super::journal::Journal;
use super::store::{Change, JobStore, Snapshot};

/// Logged events after which the log is compacted even if no batch was
/// proven: an idle distributor's log (hand-outs, releases, heartbeats of a
/// crowd that never finishes a batch) stays this long at most.
pub const COMPACT_EVERY: u64 = 100_000;

/// What goes to the journal with an applied event.
#[derive(Default)]
pub struct Log {
    /// Records written with the event, atomically.
    pub records: Vec<Change>,
    /// Sent on once the event is durable; its presence makes the write
    /// synced.
    pub then: Option<Durable>,
}

impl Log {
    /// The event alone, unsynced.
    pub fn plain() -> Self {
        Self::default()
    }

    /// The event alone; `then` once it is durable.
    pub fn then(then: Durable) -> Self {
        Self {
            records: Vec::new(),
            then: Some(then),
        }
    }
}

/// The scheduler core.
pub struct Scheduler {
    lrp: Lrp,
    history: History,
    reward: u64,
    journal: Journal<Durable>,
    clock: Clock,
    /// Events logged since the last snapshot (or in the replayed log).
    logged: u64,
    /// Compact once `logged` reaches this.
    compact_every: u64,
}

/// The scheduler's time: `start` (the wall clock when the node started, or
/// the last logged event if that is later) plus the monotonic time since.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Timestamp,
    started: Instant,
}

impl Clock {
    /// A clock that starts now, at no earlier than `not_before`.
    pub fn resume(not_before: Timestamp) -> Self {
        Self {
            start: Timestamp::now().max(not_before),
            started: Instant::now(),
        }
    }

    /// The current time; never goes backwards, whatever the wall clock does.
    pub fn now(&self) -> Timestamp {
        let elapsed = self.started.elapsed().as_millis();
        self.start
            .plus_millis(u64::try_from(elapsed).unwrap_or(u64::MAX))
    }
}

impl Scheduler {
    /// Restores `snapshot` (if any) and replays the logged `events` after it.
    pub fn replay(
        config: LrpConfig,
        snapshot: Option<&Snapshot>,
        events: &[LrpEvent],
        reward: u64,
        journal: Journal<Durable>,
    ) -> anyhow::Result<Self> {
        let (mut lrp, mut history) = match snapshot {
            Some(s) => (
                Lrp::restore(config, &s.lrp)?,
                History::from_provers(s.provers.iter().cloned().collect()),
            ),
            None => (Lrp::new(config)?, History::default()),
        };
        history.trim(|key| is_pinned(&lrp, key));
        for event in events {
            let outcome = lrp.apply(event);
            history.record(event, &outcome, reward);
            history.trim(|key| is_pinned(&lrp, key));
        }
        Ok(Self {
            clock: Clock::resume(lrp.clock()),
            lrp,
            history,
            reward,
            journal,
            logged: events.len() as u64,
            compact_every: COMPACT_EVERY,
        })
    }

    /// Compacts after every `n` logged events (at least 1) instead of
    /// [`COMPACT_EVERY`]: for tests and benchmarks.
    pub fn compact_every(&mut self, n: u64) {
        self.compact_every = n.max(1);
    }

    /// Keeps at most `n` provers' counters (but for those holding work or
    /// struck) instead of [`super::history::MAX_PROVERS`]: for tests and
    /// benchmarks.
    pub fn cap_history(&mut self, n: usize) {
        self.history.set_cap(n);
    }

    /// Events logged since the last snapshot (counting the replayed ones).
    pub fn logged_since_snapshot(&self) -> u64 {
        self.logged
    }

    /// The time for the next event: never earlier than the last event's
    /// (see [`Clock`]).
    pub fn now(&self) -> Timestamp {
        self.clock.now().max(self.lrp.clock())
    }

    /// Applies `event`, records it in the history and queues it to the
    /// journal with what `log` asks for, given the outcome.
    pub fn apply(&mut self, event: LrpEvent, log: impl FnOnce(&LrpOutcome) -> Log) -> LrpOutcome {
        let outcome = self.lrp.apply(&event);
        self.history.record(&event, &outcome, self.reward);
        let lrp = &self.lrp;
        self.history.trim(|key| is_pinned(lrp, key));
        let Log { mut records, then } = log(&outcome);
        let logged = !changes_nothing(&outcome);
        if logged {
            records.push(Change::Event(event));
        }
        match then {
            Some(then) => self.journal.write_then(records, then),
            None if records.is_empty() => {}
            None => self.journal.write(records),
        }
        if logged {
            self.logged += 1;
            if self.logged >= self.compact_every {
                self.compact();
            }
        }
        outcome
    }

    /// Compacts the log: queues a snapshot of the state after every event so
    /// far; once it is written, the events before it are gone, so restart
    /// time and disk follow the open work, not the uptime.
    pub fn compact(&mut self) {
        let snapshot = Snapshot {
            lrp: self.lrp.snapshot(),
            provers: self
                .history
                .provers
                .iter()
                .map(|(k, s)| (*k, s.clone()))
                .collect(),
        };
        self.journal
            .write(vec![Change::Snapshot(Box::new(snapshot))]);
        self.logged = 0;
    }

    /// Whether `job` has its winning proof: the one definition. A finished
    /// batch is forgotten by the scheduler; the store remembers its winners
    /// (small records: a job's witness is never read here).
    pub fn is_done(&self, job: JobId, store: &JobStore) -> bool {
        self.winner(job, store).is_some()
    }

    /// The prover and hand-out whose proof won `job`, once it is done. For a
    /// job the scheduler does not know (its batch forgotten, or no such
    /// job) the store's [`WinnerRecord`](super::store::WinnerRecord) is read:
    /// one small lookup, whoever asks.
    pub fn winner(&self, job: JobId, store: &JobStore) -> Option<(PublicKey, RequestId)> {
        match self.lrp.job(job) {
            Some(JobView::Done {
                prover, request, ..
            }) => Some((prover, request)),
            Some(_) => None,
            None => match store.winner(job) {
                Ok(winner) => winner.map(|w| (w.prover, w.request)),
                Err(e) => {
                    tracing::error!(target: "distributor", %job, error = %e, "cannot read a job's winner");
                    None
                }
            },
        }
    }

    /// Whether `(job, request)` was handed out to `prover` and still stands.
    pub fn holds(&self, job: JobId, request: RequestId, prover: &PublicKey) -> bool {
        match self.lrp.job(job) {
            Some(JobView::Pending { holders }) => holders
                .iter()
                .any(|h| h.request == request && h.prover == *prover),
            _ => false,
        }
    }

    /// Whether `(job, request)` went to `prover` and lost to another
    /// proof: the scheduler's superseded hand-outs, or, for a job of a
    /// forgotten batch, the history's attempt record.
    pub fn was_superseded(&self, job: JobId, request: RequestId, prover: &PublicKey) -> bool {
        self.lrp.was_superseded(job, request, prover)
            || (self.lrp.job(job).is_none() && self.history.issued(job, request, prover))
    }

    /// A late proof (another prover's was first), for the history.
    pub fn late(&mut self, prover: PublicKey, request: RequestId, now: Timestamp) {
        self.history.late(prover, request, now);
        let lrp = &self.lrp;
        self.history.trim(|key| is_pinned(lrp, key));
    }

    /// A proof for a hand-out never issued to its sender, for the history.
    pub fn not_issued(&mut self, prover: PublicKey) {
        self.history.not_issued(prover);
    }

    /// The LRP state, read-only.
    pub fn lrp(&self) -> &Lrp {
        &self.lrp
    }

    /// The history, read-only.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Entries waiting in the journal.
    pub fn journal_depth(&self) -> usize {
        self.journal.depth()
    }

    /// Closes the journal handle (shutdown: the journal writes what it
    /// holds and stops).
    pub fn close_journal(&mut self) {
        self.journal.close();
    }

    /// The reward per job the history prices with.
    pub fn reward(&self) -> u64 {
        self.reward
    }
}

/// Whether `outcome` leaves the scheduler's state as it was, but for its
/// clock: such an event is not logged (replaying the log without it gives
/// the same state, as the next logged event moves the clock past it).
fn changes_nothing(outcome: &LrpOutcome) -> bool {
    match outcome {
        LrpOutcome::Decided(decision) => !matches!(decision, Decision::Assign(_)),
        LrpOutcome::Heard(heard) => !matches!(heard, HeartbeatOutcome::Noted),
        LrpOutcome::Released(released) => !matches!(released, ReleaseOutcome::Released { .. }),
        LrpOutcome::Completed(completion) => !matches!(completion, Completion::Accepted { .. }),
        LrpOutcome::Invalidated(strike) => !matches!(strike, StrikeOutcome::Struck { .. }),
        LrpOutcome::Submitted(submitted) => submitted.added == 0,
        LrpOutcome::Forgot(forgot) => !matches!(forgot, ForgetOutcome::Forgotten { .. }),
        LrpOutcome::Pardoned { .. } | LrpOutcome::Resumed => false,
    }
}

/// Whether the history must keep `prover`'s counters: it holds work or has
/// strikes, so `/status` must show it.
fn is_pinned(lrp: &Lrp, prover: &PublicKey) -> bool {
    lrp.prover(prover)
        .is_some_and(|v| !v.holdings.is_empty() || v.strikes > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::Space;
    use protocol::lrp::Handout;
    use protocol::{BatchId, SecretKey};
    use std::sync::Arc;

    /// A scheduler over `store` (its journal writing there) after
    /// `snapshot` and `events`, and the journal's thread.
    fn scheduler(
        store: &Arc<JobStore>,
        snapshot: Option<&Snapshot>,
        events: &[LrpEvent],
    ) -> (Scheduler, crate::distributor::queue::ServiceThread) {
        let (journal, thread) = Journal::start(
            store.clone(),
            Space::floor(store.path(), 0),
            |_: Durable| {},
            |e| panic!("{e}"),
        )
        .unwrap();
        let config = LrpConfig::default();
        let s = Scheduler::replay(config, snapshot, events, 100, journal).unwrap();
        (s, thread)
    }

    fn request(s: &mut Scheduler, prover: PublicKey) -> LrpOutcome {
        let now = s.now();
        s.apply(LrpEvent::Request { prover, now }, |_| Log::plain())
    }

    fn release(s: &mut Scheduler, job: JobId, request: RequestId, prover: PublicKey) -> LrpOutcome {
        let now = s.now();
        let event = LrpEvent::Release {
            job,
            request,
            prover,
            now,
        };
        s.apply(event, |_| Log::plain())
    }

    fn complete(
        s: &mut Scheduler,
        job: JobId,
        request: RequestId,
        prover: PublicKey,
    ) -> LrpOutcome {
        let now = s.now();
        let event = LrpEvent::Complete {
            job,
            request,
            prover,
            now,
        };
        s.apply(event, |_| Log::plain())
    }

    /// Every event that changes nothing about a held, then a done job:
    /// releases, proofs and strikes for another's, unknown or finished
    /// hand-outs, a duplicate batch, forgetting an unfinished batch.
    fn changes_nothing_about(s: &mut Scheduler, job: JobId, h: Handout, prover: PublicKey) {
        let stranger = SecretKey::from_seed([12; 32]).public();
        let unknown = JobId::new(BatchId(7), 0);
        let nothing = [
            release(s, job, h.request, stranger),
            release(s, unknown, h.request, prover),
            s.apply(LrpEvent::Forget { batch: job.batch }, |_| Log::plain()),
            s.apply(LrpEvent::Submit { jobs: vec![job] }, |_| Log::plain()),
        ];
        assert!(nothing.iter().all(changes_nothing), "{nothing:?}");
        let won = complete(s, job, h.request, prover);
        assert!(matches!(
            won,
            LrpOutcome::Completed(Completion::Accepted { .. })
        ));
        let now = s.now();
        let strike = LrpEvent::Invalid {
            job,
            request: h.request,
            prover: stranger,
            now,
        };
        let nothing = [
            release(s, job, h.request, prover),
            complete(s, job, h.request, prover),
            complete(s, job, h.request, stranger),
            s.apply(strike, |_| Log::plain()),
        ];
        assert!(nothing.iter().all(changes_nothing), "{nothing:?}");
    }

    #[test]
    fn polls_that_only_move_the_clock_are_not_logged_and_replay_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(JobStore::open(dir.path()).unwrap());
        let (mut s, thread) = scheduler(&store, None, &[]);
        let prover = SecretKey::from_seed([11; 32]).public();
        let (job, other) = (JobId::new(BatchId(1), 0), JobId::new(BatchId(1), 1));
        // Nothing to do yet: polls, not logged, and no counters.
        for who in [prover, SecretKey::from_seed([12; 32]).public()] {
            let idle = request(&mut s, who);
            assert!(matches!(idle, LrpOutcome::Decided(Decision::NoWork { .. })));
        }
        assert!(s.history().provers.is_empty());
        s.apply(
            LrpEvent::Submit {
                jobs: vec![job, other],
            },
            |_| Log::plain(),
        );
        let LrpOutcome::Decided(Decision::Assign(handout)) = request(&mut s, prover) else {
            panic!("no hand-out")
        };
        assert!(s.holds(job, handout.request, &prover));
        changes_nothing_about(&mut s, job, handout, prover);
        assert!(s.is_done(job, &store));
        // A last logged event: the replayed clock catches up with it.
        let last = request(&mut s, prover);
        assert!(matches!(last, LrpOutcome::Decided(Decision::Assign(_))));
        let live = (s.lrp().snapshot(), s.history().provers.clone());
        s.close_journal();
        thread.join();
        let events = store.events().unwrap();
        assert_eq!(events.len(), 4, "submit, two hand-outs, the completion");
        let (mut replayed, thread) = scheduler(&store, None, &events);
        assert_eq!(
            replayed.lrp().snapshot(),
            live.0,
            "the same state, clock and all"
        );
        assert_eq!(replayed.history().provers, live.1, "no stranger's counters");
        assert!(replayed.is_done(job, &store));
        // Compacted: the snapshot replaces the log, and replays the same.
        replayed.compact();
        replayed.close_journal();
        thread.join();
        let (from, snapshot) = store.snapshot().unwrap().expect("a snapshot");
        assert_eq!(from, 4);
        assert!(store.events_from(from).unwrap().is_empty());
        assert!(
            store.events().unwrap().is_empty(),
            "the compacted events are gone"
        );
        let (restored, thread) = scheduler(&store, Some(&snapshot), &[]);
        assert_eq!(restored.lrp().snapshot(), replayed.lrp().snapshot());
        assert_eq!(restored.history().provers, replayed.history().provers);
        drop(restored);
        thread.join();
    }

    #[test]
    fn the_log_is_compacted_after_so_many_events_with_no_batch_proven() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(JobStore::open(dir.path()).unwrap());
        let (mut s, thread) = scheduler(&store, None, &[]);
        s.compact_every(10);
        let jobs = (0..4).map(|i| JobId::new(BatchId(1), i)).collect();
        s.apply(LrpEvent::Submit { jobs }, |_| Log::plain());
        // New identities claim and give back, for ever: 1 + 2 × 20 events,
        // no batch proven.
        for i in 0..20u8 {
            let prover = SecretKey::from_seed([i; 32]).public();
            let LrpOutcome::Decided(Decision::Assign(h)) = request(&mut s, prover) else {
                panic!("no hand-out")
            };
            release(&mut s, h.job, h.request, prover);
            assert!(s.logged_since_snapshot() < 10);
        }
        let live = (s.lrp().snapshot(), s.history().provers.clone());
        s.close_journal();
        thread.join();
        let (from, snapshot) = store.snapshot().unwrap().expect("compacted by size");
        assert_eq!(from, 40, "the fourth compaction, after event 40");
        let events = store.events_from(from).unwrap();
        assert_eq!(events.len(), 1);
        let (restored, thread) = scheduler(&store, Some(&snapshot), &events);
        assert_eq!(restored.lrp().snapshot(), live.0);
        assert_eq!(restored.history().provers, live.1);
        drop(restored);
        thread.join();
    }

    #[test]
    fn the_clock_resumes_after_the_log_and_moves_on_the_monotonic_clock() {
        // The last logged event is an hour ahead of the wall clock (the wall
        // clock was stepped back while the node was down): time resumes there.
        let ahead = Timestamp::now().plus_millis(3_600_000);
        let clock = Clock::resume(ahead);
        let first = clock.now();
        assert!(first >= ahead);
        // It advances with the monotonic clock alone.
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        while clock.now() == first {
            assert!(Instant::now() < deadline, "the clock did not advance");
            std::hint::spin_loop();
        }
        assert!(clock.now() > first);
        // A log behind the wall clock resumes at the wall clock.
        let behind = Clock::resume(Timestamp(1));
        assert!(
            behind.now().0 > 1_000_000_000_000,
            "wall-clock time, not the log's"
        );
    }
}
