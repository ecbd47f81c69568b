//! The scheduler core: the LRP state machine, the history kept beside it,
//! and the one way either changes — [`Scheduler::apply`], which applies an
//! event and queues it to the journal before its effect can leave the node.
//!
//! Single-threaded by design: the run loop owns it. Polls and heartbeats
//! that change nothing but the clock (no work, at capacity, cooling down,
//! banned; a heartbeat too soon after the last, or for no live hand-out) are
//! not logged one by one: event times are kept monotonic ([`Scheduler::now`]),
//! so the next logged event moves a replayed clock to the same place.
//!
//! Event times come from [`Clock`]: the wall clock is read once at start and
//! the monotonic clock advances it from there, so a wall-clock step while the
//! node runs (NTP, an operator's `date -s`) neither expires every lease at
//! once nor freezes them. Across a restart time resumes at the later of the
//! wall clock and the last logged event: never backwards, and the time the
//! node was down counts towards leases (their holders may still deliver).

use std::time::Instant;

use protocol::lrp::{Decision, HeartbeatOutcome, JobView, Lrp, LrpConfig, LrpEvent, LrpOutcome};
use protocol::{JobId, PublicKey, RequestId, Timestamp};

use super::courier::Durable;
use super::history::History;
use super::journal::Journal;
use super::store::{Change, JobStore, Snapshot};

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
        for event in events {
            let outcome = lrp.apply(event);
            history.record(event, &outcome, reward);
        }
        Ok(Self {
            clock: Clock::resume(lrp.clock()),
            lrp,
            history,
            reward,
            journal,
        })
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
        let Log { mut records, then } = log(&outcome);
        let clock_only = matches!(
            outcome,
            LrpOutcome::Decided(Decision::NoWork { .. } | Decision::Refused(_))
                | LrpOutcome::Heard(
                    HeartbeatOutcome::TooSoon
                        | HeartbeatOutcome::AlreadyDone
                        | HeartbeatOutcome::WrongProver
                        | HeartbeatOutcome::Unknown
                )
        );
        if !clock_only {
            records.push(Change::Event(event));
        }
        match then {
            Some(then) => self.journal.write_then(records, then),
            None if records.is_empty() => {}
            None => self.journal.write(records),
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

    /// A late proof (another prover's was first), for the history.
    pub fn late(&mut self, prover: PublicKey, request: RequestId, now: Timestamp) {
        self.history.late(prover, request, now);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::Space;
    use protocol::{BatchId, SecretKey};
    use std::sync::Arc;

    #[test]
    fn polls_that_only_move_the_clock_are_not_logged_and_replay_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(JobStore::open(dir.path()).unwrap());
        let (journal, thread) = Journal::start(
            store.clone(),
            Space::floor(dir.path(), 0),
            |_: Durable| {},
            |e| panic!("{e}"),
        )
        .unwrap();
        let config = LrpConfig::default();
        let mut s = Scheduler::replay(config.clone(), None, &[], 100, journal).unwrap();
        let prover = SecretKey::from_seed([11; 32]).public();
        let job = JobId::new(BatchId(1), 0);
        // Nothing to do yet: a poll, not logged.
        let now = s.now();
        let idle = s.apply(LrpEvent::Request { prover, now }, |_| Log::plain());
        assert!(matches!(idle, LrpOutcome::Decided(Decision::NoWork { .. })));
        s.apply(LrpEvent::Submit { jobs: vec![job] }, |_| Log::plain());
        let now = s.now();
        let given = s.apply(LrpEvent::Request { prover, now }, |_| Log::plain());
        let LrpOutcome::Decided(Decision::Assign(handout)) = given else {
            panic!("{given:?}")
        };
        assert!(s.holds(job, handout.request, &prover));
        assert!(!s.is_done(job, &store));
        let now = s.now();
        s.apply(
            LrpEvent::Complete {
                job,
                request: handout.request,
                prover,
                now,
            },
            |_| Log::plain(),
        );
        assert!(s.is_done(job, &store));
        let live = s.lrp().counts();
        s.close_journal();
        thread.join();
        let events = store.events().unwrap();
        assert_eq!(events.len(), 3, "submit, the hand-out, the completion");
        let (journal, thread) = Journal::start(
            store.clone(),
            Space::floor(dir.path(), 0),
            |_: Durable| {},
            |e| panic!("{e}"),
        )
        .unwrap();
        let mut replayed = Scheduler::replay(config.clone(), None, &events, 100, journal).unwrap();
        assert_eq!(replayed.lrp().counts(), live);
        assert!(replayed.is_done(job, &store));
        // Compacted: the snapshot replaces the log, and replays the same.
        replayed.compact();
        replayed.close_journal();
        thread.join();
        let (from, snapshot) = store.snapshot().unwrap().expect("a snapshot");
        assert_eq!(from, 3);
        assert!(store.events_from(from).unwrap().is_empty());
        assert!(
            store.events().unwrap().is_empty(),
            "the compacted events are gone"
        );
        let (journal, thread) = Journal::start(
            store.clone(),
            Space::floor(dir.path(), 0),
            |_: Durable| {},
            |e| panic!("{e}"),
        )
        .unwrap();
        let restored = Scheduler::replay(config, Some(&snapshot), &[], 100, journal).unwrap();
        assert_eq!(restored.lrp().snapshot(), replayed.lrp().snapshot());
        assert_eq!(restored.history().provers, replayed.history().provers);
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
