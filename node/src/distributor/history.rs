//! What each prover did: per-prover counters for `/status` and the timeline
//! of every hand-out ("attempt") for `/attempts`. Folded from the scheduler's
//! events, so a restart rebuilds it by replaying the log; late proofs, which
//! change no scheduler state, are added as they arrive.
//!
//! Bounded: identities are free, so a counter is made only by a hand-out, a
//! proof or a strike (a refused or idle poll, a release or submission for
//! nothing it was given leaves none), and past [`MAX_PROVERS`] the least
//! recently seen identities that hold no work and have no strike are
//! forgotten ([`History::trim`]). Their balances stay in the ledger.

use std::collections::{BTreeMap, HashMap, VecDeque};

use protocol::lrp::{Completion, Decision, LrpEvent, LrpOutcome, StrikeOutcome};
use protocol::{JobId, PublicKey, RequestId, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Most attempts remembered; the oldest go first.
const MAX_ATTEMPTS: usize = 200_000;

/// Most provers whose counters are kept, but for those that hold work or
/// have strikes; the least recently seen go first.
pub const MAX_PROVERS: usize = 100_000;

/// One prover's counters.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProverStats {
    /// Hand-outs received.
    pub assigned: u64,
    /// Of which re-serves of a job someone else held.
    pub reserved: u64,
    /// First valid proofs (paid).
    pub accepted: u64,
    /// Valid proofs after another prover's.
    pub late: u64,
    /// Proofs that did not verify.
    pub invalid: u64,
    /// Submissions for hand-outs never issued to it.
    pub not_issued: u64,
    /// Hand-outs given back.
    pub released: u64,
    /// Rewards earned.
    pub earned: u64,
    /// Milliseconds from hand-out to valid proof, summed over the valid
    /// proofs (first or late) whose hand-out is still remembered.
    pub valid_ms: u64,
    /// How many valid proofs `valid_ms` sums over.
    pub valid_timed: u64,
    /// The scheduler time of the prover's last request or submission.
    pub last_seen: Option<Timestamp>,
}

impl ProverStats {
    /// Mean milliseconds from hand-out to valid proof: the prover's speed as
    /// the distributor sees it (network and queueing included).
    pub fn mean_prove_ms(&self) -> Option<f64> {
        (self.valid_timed > 0).then(|| self.valid_ms as f64 / self.valid_timed as f64)
    }

    fn seen(&mut self, now: Timestamp) {
        self.last_seen = Some(self.last_seen.map_or(now, |t| t.max(now)));
    }

    fn timed(&mut self, assigned: Option<Timestamp>, now: Timestamp) {
        if let Some(assigned) = assigned {
            self.valid_ms += now.millis_since(assigned);
            self.valid_timed += 1;
        }
    }
}

/// How an attempt ended, so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptOutcome {
    /// Still held, or abandoned if its job is done.
    Open,
    /// The first valid proof.
    Won,
    /// A valid proof after another prover's.
    Late,
    /// A proof that did not verify.
    Invalid,
    /// Given back.
    Released,
}

/// One hand-out.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    /// The job.
    pub job: JobId,
    /// Its request id.
    pub request: RequestId,
    /// Who got it.
    pub prover: PublicKey,
    /// When it was handed out.
    pub assigned: Timestamp,
    /// When it ended, if it did.
    pub ended: Option<Timestamp>,
    /// How.
    pub outcome: AttemptOutcome,
}

/// Per-prover counters and the attempt timeline.
#[derive(Debug, Default)]
pub struct History {
    /// Counters by prover.
    pub provers: BTreeMap<PublicKey, ProverStats>,
    /// Oldest first; a ring, so dropping the oldest costs nothing.
    attempts: VecDeque<Attempt>,
    by_request: HashMap<RequestId, usize>,
    first: usize,
    /// The map's size at which [`History::trim`] next runs (0: a sixteenth
    /// past the cap).
    trim_at: usize,
    /// Counters kept at most (but for pinned provers); [`MAX_PROVERS`]
    /// unless a test sets it.
    cap: Option<usize>,
}

impl History {
    /// A history that starts from `provers`' counters (a restored snapshot),
    /// with no attempts.
    pub fn from_provers(provers: BTreeMap<PublicKey, ProverStats>) -> Self {
        Self {
            provers,
            ..Self::default()
        }
    }

    /// Folds one scheduler event and its outcome in.
    pub fn record(&mut self, event: &LrpEvent, outcome: &LrpOutcome, reward: u64) {
        match (event, outcome) {
            (LrpEvent::Request { prover, now }, LrpOutcome::Decided(Decision::Assign(h))) => {
                let s = self.provers.entry(*prover).or_default();
                s.seen(*now);
                s.assigned += 1;
                s.reserved += u64::from(h.reserve);
                self.push(Attempt {
                    job: h.job,
                    request: h.request,
                    prover: *prover,
                    assigned: *now,
                    ended: None,
                    outcome: AttemptOutcome::Open,
                });
            }
            (
                LrpEvent::Complete {
                    prover,
                    request,
                    now,
                    ..
                },
                LrpOutcome::Completed(Completion::Accepted { .. }),
            ) => {
                let assigned = self.assigned_at(*request, *prover);
                let s = self.provers.entry(*prover).or_default();
                s.seen(*now);
                s.timed(assigned, *now);
                s.accepted += 1;
                s.earned += reward;
                self.end(*request, *now, AttemptOutcome::Won);
            }
            (
                LrpEvent::Invalid {
                    prover,
                    request,
                    now,
                    ..
                },
                LrpOutcome::Invalidated(StrikeOutcome::Struck { .. }),
            ) => {
                let s = self.provers.entry(*prover).or_default();
                s.seen(*now);
                s.invalid += 1;
                self.end(*request, *now, AttemptOutcome::Invalid);
            }
            (
                LrpEvent::Release {
                    prover,
                    request,
                    now,
                    ..
                },
                LrpOutcome::Released(protocol::lrp::ReleaseOutcome::Released { .. }),
            ) => {
                let s = self.provers.entry(*prover).or_default();
                s.seen(*now);
                s.released += 1;
                self.end(*request, *now, AttemptOutcome::Released);
            }
            // A poll that got nothing makes no counter; a known prover's
            // is marked seen.
            (LrpEvent::Request { prover, now }, _) => {
                if let Some(s) = self.provers.get_mut(prover) {
                    s.seen(*now);
                }
            }
            _ => {}
        }
    }

    /// Caps the counters: once the map is a sixteenth past its cap (so a
    /// trim, one pass over the map, runs once per that many new provers), the
    /// least recently seen provers that are not `pinned` (holding work,
    /// struck) are dropped until it is back at the cap. Pinned provers are
    /// always kept; if they alone fill the map, the next trim waits until
    /// it has grown by the slack again, so its cost stays amortised.
    pub fn trim(&mut self, pinned: impl Fn(&PublicKey) -> bool) {
        let cap = self.cap.unwrap_or(MAX_PROVERS);
        let slack = (cap / 16).max(1);
        let at = if self.trim_at == 0 {
            cap + slack
        } else {
            self.trim_at
        };
        if self.provers.len() < at {
            return;
        }
        let mut evictable: Vec<(Option<Timestamp>, PublicKey)> = self
            .provers
            .iter()
            .filter(|(key, _)| !pinned(key))
            .map(|(key, s)| (s.last_seen, *key))
            .collect();
        let excess = self.provers.len().saturating_sub(cap).min(evictable.len());
        if excess > 0 && excess < evictable.len() {
            evictable.select_nth_unstable(excess - 1);
        }
        for (_, key) in &evictable[..excess] {
            self.provers.remove(key);
        }
        self.trim_at = self.provers.len().max(cap) + slack;
    }

    /// Keeps at most `cap` provers' counters (but for pinned ones) instead
    /// of [`MAX_PROVERS`]: for tests.
    pub fn set_cap(&mut self, cap: usize) {
        self.cap = Some(cap.max(1));
        self.trim_at = 0;
    }

    /// A valid proof that came after another prover's.
    pub fn late(&mut self, prover: PublicKey, request: RequestId, now: Timestamp) {
        let assigned = self.assigned_at(request, prover);
        let s = self.provers.entry(prover).or_default();
        s.seen(now);
        s.timed(assigned, now);
        s.late += 1;
        if self
            .attempt(request)
            .is_some_and(|a| a.prover == prover && a.outcome == AttemptOutcome::Open)
        {
            self.end(request, now, AttemptOutcome::Late);
        }
    }

    /// A submission for a hand-out never issued to its sender: counted for
    /// a prover already known, never the reason one is remembered.
    pub fn not_issued(&mut self, prover: PublicKey) {
        if let Some(s) = self.provers.get_mut(&prover) {
            s.not_issued += 1;
        }
    }

    /// Whether the attempts remembered show `request` of `job` handed to
    /// `prover`.
    pub fn issued(&self, job: JobId, request: RequestId, prover: &PublicKey) -> bool {
        self.attempt(request)
            .is_some_and(|a| a.job == job && a.prover == *prover)
    }

    fn attempt(&self, request: RequestId) -> Option<&Attempt> {
        let i = *self.by_request.get(&request)?;
        self.attempts.get(i - self.first)
    }

    /// When `request` was handed out to `prover`, if remembered.
    fn assigned_at(&self, request: RequestId, prover: PublicKey) -> Option<Timestamp> {
        self.attempt(request)
            .filter(|a| a.prover == prover)
            .map(|a| a.assigned)
    }

    fn push(&mut self, attempt: Attempt) {
        if self.attempts.len() >= MAX_ATTEMPTS {
            if let Some(gone) = self.attempts.pop_front() {
                self.by_request.remove(&gone.request);
            }
            self.first += 1;
        }
        self.by_request
            .insert(attempt.request, self.first + self.attempts.len());
        self.attempts.push_back(attempt);
    }

    fn end(&mut self, request: RequestId, now: Timestamp, outcome: AttemptOutcome) {
        if let Some(&i) = self.by_request.get(&request)
            && let Some(a) = self.attempts.get_mut(i - self.first)
        {
            a.ended = Some(now);
            a.outcome = outcome;
        }
    }

    /// The timeline as JSON, oldest first; with `last`, only that many of
    /// the newest. An open attempt whose job is done (per `is_done`) is
    /// reported as `abandoned`.
    pub fn attempts_json(&self, last: Option<usize>, is_done: impl Fn(JobId) -> bool) -> Value {
        let skip = last.map_or(0, |n| self.attempts.len().saturating_sub(n));
        let rows: Vec<Value> = self
            .attempts
            .iter()
            .skip(skip)
            .map(|a| {
                let outcome = match a.outcome {
                    AttemptOutcome::Open if is_done(a.job) => "abandoned",
                    AttemptOutcome::Open => "open",
                    AttemptOutcome::Won => "won",
                    AttemptOutcome::Late => "late",
                    AttemptOutcome::Invalid => "invalid",
                    AttemptOutcome::Released => "released",
                };
                json!({
                    "job": a.job.to_string(),
                    "batch": a.job.batch.0,
                    "request": a.request.0,
                    "prover": a.prover.to_hex(),
                    "assigned_ms": a.assigned.0,
                    "ended_ms": a.ended.map(|t| t.0),
                    "outcome": outcome,
                })
            })
            .collect();
        json!({ "attempts": rows })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::BatchId;
    use protocol::lrp::Handout;

    #[test]
    fn attempts_follow_their_hand_outs() {
        let mut h = History::default();
        let a = protocol::SecretKey::from_seed([1; 32]).public();
        let b = protocol::SecretKey::from_seed([2; 32]).public();
        let job = JobId::new(BatchId(1), 0);
        for (prover, request) in [(a, 1), (b, 2)] {
            h.record(
                &LrpEvent::Request {
                    prover,
                    now: Timestamp(request),
                },
                &LrpOutcome::Decided(Decision::Assign(Handout {
                    job,
                    request: RequestId(request),
                    reserve: request == 2,
                })),
                10,
            );
        }
        h.record(
            &LrpEvent::Complete {
                job,
                request: RequestId(2),
                prover: b,
                now: Timestamp(5),
            },
            &LrpOutcome::Completed(Completion::Accepted {
                superseded: 1,
                batch_finished: true,
            }),
            10,
        );
        let doc = h.attempts_json(None, |_| true);
        let rows = doc["attempts"].as_array().unwrap();
        assert_eq!(rows[0]["outcome"], "abandoned");
        assert_eq!(rows[1]["outcome"], "won");
        let newest = h.attempts_json(Some(1), |_| true);
        assert_eq!(newest["attempts"].as_array().unwrap().len(), 1);
        assert_eq!(newest["attempts"][0]["request"], 2);
        h.late(a, RequestId(1), Timestamp(6));
        assert_eq!(
            h.attempts_json(None, |_| true)["attempts"][0]["outcome"],
            "late"
        );
        assert_eq!(h.provers[&b].earned, 10);
        assert_eq!(h.provers[&b].reserved, 1);
        assert_eq!(h.provers[&a].late, 1);
        // Speed: hand-out to valid proof, first (2 → 5) or late (1 → 6).
        assert_eq!(h.provers[&b].mean_prove_ms(), Some(3.0));
        assert_eq!(h.provers[&a].mean_prove_ms(), Some(5.0));
        assert_eq!(h.provers[&a].last_seen, Some(Timestamp(6)));
        assert_eq!(h.provers[&b].last_seen, Some(Timestamp(5)));
    }

    fn key(i: u32) -> PublicKey {
        let mut key = [0; 32];
        key[..4].copy_from_slice(&i.to_be_bytes());
        PublicKey(key)
    }

    fn handed_out(h: &mut History, prover: PublicKey, at: u64) {
        let handout = Handout {
            job: JobId::new(BatchId(1), 0),
            request: RequestId(at),
            reserve: false,
        };
        let event = LrpEvent::Request {
            prover,
            now: Timestamp(at),
        };
        h.record(&event, &LrpOutcome::Decided(Decision::Assign(handout)), 10);
    }

    #[test]
    fn polls_and_strangers_submissions_make_no_counters() {
        let mut h = History::default();
        for i in 0..1_000 {
            let event = LrpEvent::Request {
                prover: key(i),
                now: Timestamp(u64::from(i)),
            };
            let idle = Decision::NoWork {
                retry_at: Timestamp(0),
            };
            h.record(&event, &LrpOutcome::Decided(idle), 10);
            let refused = Decision::Refused(protocol::lrp::Refusal::RequestIdsExhausted);
            h.record(&event, &LrpOutcome::Decided(refused), 10);
            h.not_issued(key(i));
        }
        assert!(h.provers.is_empty());
        // A known prover's poll marks it seen; its bogus submission counts.
        handed_out(&mut h, key(1), 5);
        let poll = LrpEvent::Request {
            prover: key(1),
            now: Timestamp(9),
        };
        let idle = Decision::NoWork {
            retry_at: Timestamp(0),
        };
        h.record(&poll, &LrpOutcome::Decided(idle), 10);
        h.not_issued(key(1));
        assert_eq!(h.provers[&key(1)].last_seen, Some(Timestamp(9)));
        assert_eq!(h.provers[&key(1)].not_issued, 1);
    }

    #[test]
    fn past_the_cap_the_least_recently_seen_unpinned_provers_go() {
        let mut h = History::default();
        h.set_cap(160);
        // Every tenth prover holds work (pinned); they are the oldest.
        let pinned = |k: &PublicKey| u32::from_be_bytes(k.0[..4].try_into().unwrap()) % 10 == 0;
        for i in 0..1_000u32 {
            handed_out(&mut h, key(i), u64::from(i));
            h.trim(pinned);
            assert!(h.provers.len() <= 170, "{} at {i}", h.provers.len());
        }
        assert!(h.provers.len() >= 160);
        // The pinned ones are all there, the rest are the newest.
        assert!(
            (0..1_000)
                .step_by(10)
                .all(|i| h.provers.contains_key(&key(i)))
        );
        let oldest_kept = (0..1_000)
            .filter(|i| i % 10 != 0)
            .find(|i| h.provers.contains_key(&key(*i)))
            .unwrap();
        assert!(
            (oldest_kept..1_000).all(|i| h.provers.contains_key(&key(i))),
            "kept from {oldest_kept} on"
        );
        // Pinned provers alone past the cap: kept, and trimming stays
        // amortised (it waits for the slack again).
        let mut h = History::default();
        h.set_cap(16);
        for i in 0..100 {
            handed_out(&mut h, key(i), u64::from(i));
            h.trim(|_| true);
        }
        assert_eq!(h.provers.len(), 100);
    }

    #[test]
    fn the_oldest_attempts_are_dropped_past_the_cap_and_the_rest_still_end() {
        let mut h = History::default();
        let a = protocol::SecretKey::from_seed([1; 32]).public();
        let job = JobId::new(BatchId(1), 0);
        let total = MAX_ATTEMPTS as u64 + 2;
        for request in 1..=total {
            h.record(
                &LrpEvent::Request {
                    prover: a,
                    now: Timestamp(request),
                },
                &LrpOutcome::Decided(Decision::Assign(Handout {
                    job,
                    request: RequestId(request),
                    reserve: false,
                })),
                10,
            );
        }
        assert!(h.attempt(RequestId(1)).is_none());
        assert!(h.attempt(RequestId(2)).is_none());
        assert_eq!(h.attempt(RequestId(3)).unwrap().assigned, Timestamp(3));
        h.late(a, RequestId(total), Timestamp(total + 5));
        let doc = h.attempts_json(Some(1), |_| false);
        assert_eq!(doc["attempts"][0]["request"], total);
        assert_eq!(doc["attempts"][0]["outcome"], "late");
        assert_eq!(h.provers[&a].mean_prove_ms(), Some(5.0));
    }
}
