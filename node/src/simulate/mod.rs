//! A proving crowd in virtual time (`crowdprove simulate`): the real
//! scheduler, [`protocol::lrp::Lrp`], fed the events a distributor would log
//! for a crowd of synthetic provers, so its policies can be measured at the
//! paper's scale (17,188 jobs, thousands of provers) on one machine in
//! seconds.
//!
//! Nothing here re-implements the rule: every decision is `Lrp::apply`'s.
//! The simulation supplies what the network would: provers of the paper's
//! hardware classes asking for work, proving for a jittered time, answering
//! with a proof (or not), message latency, and the faults of an open crowd.
//! Everything is seeded: a scenario gives the same figures on every run.
//!
//! # Layout
//! - this file: hardware, faults, policies, a [`Scenario`] and [`run`];
//! - [`study`]: the comparison grid, the paper's figures and the goals;
//! - [`report`]: the Markdown tables and the SVG chart.

pub mod report;
pub mod study;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use protocol::lrp::{
    Completion, Decision, HeartbeatOutcome, Lrp, LrpConfig, LrpEvent, LrpOutcome, Refusal,
    ReservePolicy,
};
use protocol::{BatchId, JobId, PublicKey, Timestamp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A kind of prover machine and its time per job: the paper's hardware
/// with the per-job times its figures imply (docs/benchmarks.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hardware {
    /// What it is.
    pub name: &'static str,
    /// Its mean time to prove one job, ms.
    pub job_ms: u64,
}

/// An 8-core CPU: ~98 s a job.
pub const CPU_8: Hardware = Hardware {
    name: "8-core CPU",
    job_ms: 98_000,
};
/// A 16-core CPU: ~68 s a job.
pub const CPU_16: Hardware = Hardware {
    name: "16-core CPU",
    job_ms: 68_000,
};
/// An Apple M3 Max laptop: ~48 s a job.
pub const M3_MAX: Hardware = Hardware {
    name: "M3 Max",
    job_ms: 48_000,
};
/// An NVIDIA L4 GPU: ~14.5 s a job.
pub const L4_GPU: Hardware = Hardware {
    name: "L4 GPU",
    job_ms: 14_500,
};

/// How a simulated prover misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// It does not: proves every job it gets and asks for the next.
    None,
    /// Claims jobs and never answers (the testnet's straggler).
    Sit,
    /// Claims jobs and heartbeats as if proving, but never proves: a
    /// sitter that knows silence gives it away.
    Stall,
    /// Proves honestly until a random moment in the first half of the
    /// batch, then hangs holding what it has, for good (a wedged or
    /// killed machine).
    Hang,
    /// Proves, but four times slower than its hardware (a busy machine).
    Slow,
    /// Answers every job with an invalid proof, quickly.
    Byzantine,
}

impl Fault {
    /// Its name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Sit => "sit",
            Self::Stall => "stall",
            Self::Hang => "hang",
            Self::Slow => "slow",
            Self::Byzantine => "byzantine",
        }
    }
}

/// The scheduling policies compared, each a configuration of the real
/// scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Ours: re-serve on evidence, bounded tail backups (the default).
    Adaptive,
    /// The paper's LRP as published: re-serve the least recently handed-out
    /// job to any idle prover at once, any number of copies.
    PaperLrp,
    /// LRP with this project's former default: re-serve after 30 s, at most
    /// three live copies.
    Lrp30s,
    /// Timeout re-queueing (zkSync-style): one copy, re-queued only once
    /// its holder has had it for 10 minutes.
    Timeout10min,
    /// Heartbeat leases (Aztec-style): one copy, re-queued only once its
    /// holder has been silent for 30 s; a live holder keeps it however
    /// long it takes.
    HeartbeatLease,
}

impl Policy {
    /// Every policy, ours first.
    pub const ALL: [Policy; 5] = [
        Policy::Adaptive,
        Policy::PaperLrp,
        Policy::Lrp30s,
        Policy::Timeout10min,
        Policy::HeartbeatLease,
    ];

    /// Its name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Adaptive => "adaptive (ours)",
            Self::PaperLrp => "paper LRP",
            Self::Lrp30s => "LRP, 30 s",
            Self::Timeout10min => "timeout 10 min",
            Self::HeartbeatLease => "heartbeat lease 30 s",
        }
    }

    /// The scheduler's knobs for it.
    pub fn config(self) -> LrpConfig {
        let base = LrpConfig::default();
        match self {
            Self::Adaptive => base,
            Self::PaperLrp => LrpConfig {
                policy: ReservePolicy::Lrp,
                min_reserve_age_ms: 0,
                max_live_holders: u32::MAX,
                ..base
            },
            Self::Lrp30s => LrpConfig {
                policy: ReservePolicy::Lrp,
                ..base
            },
            Self::Timeout10min => LrpConfig {
                policy: ReservePolicy::Lrp,
                min_reserve_age_ms: 600_000,
                lease_ms: 600_000,
                max_live_holders: 1,
                ..base
            },
            // The adaptive rule with only its heartbeat evidence: never
            // overdue for its expected time, no backups.
            Self::HeartbeatLease => LrpConfig {
                policy: ReservePolicy::Adaptive,
                min_reserve_age_ms: 0,
                overdue_percent: u32::MAX,
                backup_percent: 0,
                max_live_holders: 1,
                heartbeat_silence_ms: 30_000,
                ..base
            },
        }
    }
}

/// One simulated run: a crowd, its faults, the jobs, the policy.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Jobs per batch.
    pub jobs: u32,
    /// Batches, submitted `batch_interval_ms` apart (all at once at 0).
    pub batches: u32,
    /// Milliseconds between batch submissions.
    pub batch_interval_ms: u64,
    /// The provers: hardware, fault, how many.
    pub crowd: Vec<(Hardware, Fault, u32)>,
    /// Each proof takes the hardware's time times a factor drawn uniformly
    /// from `1 ± jitter`.
    pub jitter: f64,
    /// One-way message latency, ms (each message draws from 0.5× to 1.5×).
    pub latency_ms: u64,
    /// Milliseconds between a working prover's heartbeats (0: none).
    /// Sitters and liars send none; a hung machine stops.
    pub heartbeat_ms: u64,
    /// The scheduling policy.
    pub policy: Policy,
    /// Seed of every random draw.
    pub seed: u64,
}

impl Scenario {
    /// One batch of `jobs` under the standard conditions every table uses:
    /// ±10% proving-time jitter, 50 ms latency, heartbeats every 10 s.
    pub fn one_batch(
        jobs: u32,
        crowd: Vec<(Hardware, Fault, u32)>,
        policy: Policy,
        seed: u64,
    ) -> Self {
        Self {
            jobs,
            batches: 1,
            batch_interval_ms: 0,
            crowd,
            jitter: 0.1,
            latency_ms: 50,
            heartbeat_ms: 10_000,
            policy,
            seed,
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Whether every job was proven within the time cap.
    pub finished: bool,
    /// Each batch's latency, submission to its last accepted proof, ms.
    pub batch_latency_ms: Vec<u64>,
    /// Jobs proven.
    pub jobs: u64,
    /// Hand-outs made, to anyone.
    pub handouts: u64,
    /// Hand-outs to fault-free provers whose proof came late (wasted work).
    pub late: u64,
    /// Milliseconds fault-free provers spent proving, in all.
    pub busy_ms: u64,
    /// Of those, spent on proofs that came late.
    pub wasted_ms: u64,
    /// Jain's fairness index of earnings among fault-free provers of the
    /// same hardware: the lowest over hardware classes of two or more.
    pub fairness: f64,
    /// Mean time from start to each fault-free prover's first paid job, ms
    /// (over those paid at all).
    pub first_paid_ms: u64,
    /// Jobs paid to faulty provers (sitters and liars must earn nothing).
    pub paid_to_faulty: u64,
    /// Scheduler decisions made (requests and proofs).
    pub decisions: u64,
}

impl Outcome {
    /// Jobs ÷ hand-outs.
    pub fn useful_work(&self) -> f64 {
        self.jobs as f64 / self.handouts.max(1) as f64
    }

    /// The mean batch latency, ms.
    pub fn mean_latency_ms(&self) -> f64 {
        let n = self.batch_latency_ms.len().max(1) as f64;
        self.batch_latency_ms.iter().sum::<u64>() as f64 / n
    }

    /// Prover-seconds spent per job proven, by fault-free provers.
    pub fn prover_secs_per_job(&self) -> f64 {
        self.busy_ms as f64 / 1000.0 / self.jobs.max(1) as f64
    }
}

/// Virtual time after which a run is given up as stalled.
const TIME_CAP_MS: u64 = 30 * 24 * 3_600_000;

#[derive(Debug)]
struct Prover {
    key: PublicKey,
    hardware: Hardware,
    fault: Fault,
    /// When a `Hang` prover stops for good.
    hang_at: u64,
    gone: bool,
    earned: u64,
    first_paid: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// A batch's jobs arrive.
    Submit(u32),
    /// A prover's request reaches the distributor.
    Ask(usize),
    /// A prover's heartbeat for a hand-out reaches the distributor.
    Beat {
        prover: usize,
        job: JobId,
        request: u64,
    },
    /// A prover's proof reaches the distributor; it took `took` ms to make.
    Proof {
        prover: usize,
        job: JobId,
        request: u64,
        took: u64,
        valid: bool,
    },
}

/// Runs `scenario` to the end (or the time cap) and measures it.
pub fn run(scenario: &Scenario) -> Outcome {
    let mut sim = Sim::new(scenario);
    while let Some(Reverse((now, _, event))) = sim.queue.pop() {
        if now > TIME_CAP_MS {
            break;
        }
        match event {
            Event::Submit(b) => sim.submit(b),
            Event::Ask(i) => sim.ask(i, now),
            Event::Beat {
                prover: i,
                job,
                request,
            } => sim.beat(i, job, request, now),
            Event::Proof {
                prover: i,
                job,
                request,
                took,
                valid,
            } => {
                if sim.proof(i, job, request, took, valid, now) {
                    sim.out.finished = true;
                    break;
                }
            }
        }
    }
    sim.finish()
}

/// A run under way: the scheduler, the crowd, the events still to come
/// (by virtual time, then order of scheduling) and the measures so far.
struct Sim<'a> {
    scenario: &'a Scenario,
    rng: StdRng,
    lrp: Lrp,
    provers: Vec<Prover>,
    queue: BinaryHeap<Reverse<(u64, u64, Event)>>,
    /// Events scheduled so far: orders events of the same time.
    seq: u64,
    out: Outcome,
    /// Batches submitted so far.
    submitted: u32,
    /// Jobs of all the batches.
    span: u64,
}

impl<'a> Sim<'a> {
    /// The crowd of `scenario`, its batches scheduled and its provers
    /// joining over the first second, in a shuffled order.
    fn new(scenario: &'a Scenario) -> Self {
        let mut rng = StdRng::seed_from_u64(scenario.seed);
        let lrp = Lrp::new(scenario.policy.config()).expect("the policies' knobs are valid");
        let provers = crowd(scenario, &mut rng);
        let mut sim = Sim {
            scenario,
            rng,
            lrp,
            provers,
            queue: BinaryHeap::new(),
            seq: 0,
            out: Outcome {
                finished: false,
                batch_latency_ms: Vec::new(),
                jobs: 0,
                handouts: 0,
                late: 0,
                busy_ms: 0,
                wasted_ms: 0,
                fairness: 1.0,
                first_paid_ms: 0,
                paid_to_faulty: 0,
                decisions: 0,
            },
            submitted: 0,
            span: u64::from(scenario.jobs) * u64::from(scenario.batches),
        };
        for b in 0..scenario.batches {
            sim.push(first_batch_ms(scenario, b), Event::Submit(b));
        }
        for i in 0..sim.provers.len() {
            let at = sim.rng.gen_range(0..1_000);
            sim.push(at, Event::Ask(i));
        }
        sim
    }

    /// Schedules `event` at `at`.
    fn push(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, event)));
    }

    /// One message's latency, ms: 0.5× to 1.5× the scenario's.
    fn hop(&mut self) -> u64 {
        let latency = self.scenario.latency_ms;
        if latency == 0 {
            0
        } else {
            self.rng.gen_range(latency / 2..=latency + latency / 2)
        }
    }

    /// Batch `b`'s jobs arrive.
    fn submit(&mut self, b: u32) {
        let batch = BatchId(u64::from(b) + 1);
        let jobs = (0..self.scenario.jobs)
            .map(|i| JobId::new(batch, i))
            .collect();
        self.lrp.apply(&LrpEvent::Submit { jobs });
        self.submitted += 1;
    }

    /// Prover `i`'s request reaches the distributor at `now`.
    fn ask(&mut self, i: usize, now: u64) {
        let p = &mut self.provers[i];
        if p.gone || (p.fault == Fault::Hang && now >= p.hang_at) {
            p.gone = true;
            return;
        }
        self.out.decisions += 1;
        let LrpOutcome::Decided(decision) = self.lrp.apply(&LrpEvent::Request {
            prover: p.key,
            now: Timestamp(now),
        }) else {
            unreachable!("a request is answered with a decision")
        };
        let back = now + self.hop();
        match decision {
            Decision::Assign(h) => self.assigned(i, h.job, h.request.0, back),
            Decision::NoWork { retry_at }
            | Decision::Refused(Refusal::AtCapacity { retry_at, .. })
            | Decision::Refused(Refusal::Cooldown {
                until: retry_at, ..
            }) => {
                if self.lrp.is_all_finished() && self.submitted == self.scenario.batches {
                    return;
                }
                let again = retry_at.0.max(back) + self.hop();
                self.push(again, Event::Ask(i));
            }
            Decision::Refused(Refusal::Banned { .. })
            | Decision::Refused(Refusal::RequestIdsExhausted) => self.provers[i].gone = true,
        }
    }

    /// Prover `i` hears at `back` that it holds `job` (hand-out `request`),
    /// and does with it what its fault makes it do.
    fn assigned(&mut self, i: usize, job: JobId, request: u64, back: u64) {
        self.out.handouts += 1;
        match self.provers[i].fault {
            Fault::Sit | Fault::Stall => {
                // Sits on it, and asks for more a little later.
                let again = back + 5_000 + self.hop();
                self.push(again, Event::Ask(i));
                let beat = self.scenario.heartbeat_ms;
                if self.provers[i].fault == Fault::Stall && beat > 0 {
                    let event = Event::Beat {
                        prover: i,
                        job,
                        request,
                    };
                    let first = back + beat + self.hop();
                    self.push(first, event);
                }
            }
            Fault::Byzantine => {
                let lie = back + 1_000 + self.hop();
                let event = Event::Proof {
                    prover: i,
                    job,
                    request,
                    took: 1_000,
                    valid: false,
                };
                self.push(lie, event);
            }
            Fault::None | Fault::Slow | Fault::Hang => self.prove(i, job, request, back),
        }
    }

    /// Prover `i` proves `job` from `back`, sending heartbeats while it
    /// works, and answers with a valid proof, unless it hangs first.
    fn prove(&mut self, i: usize, job: JobId, request: u64, back: u64) {
        let Prover {
            fault,
            hardware,
            hang_at,
            ..
        } = self.provers[i];
        let slow = if fault == Fault::Slow { 4.0 } else { 1.0 };
        let factor = 1.0 + self.scenario.jitter * self.rng.gen_range(-1.0..=1.0);
        let took = (hardware.job_ms as f64 * slow * factor) as u64;
        let hangs = fault == Fault::Hang && back + took >= hang_at;
        // Heartbeats while it works, until it hangs.
        let quiet = if hangs { hang_at } else { back + took };
        let beat = self.scenario.heartbeat_ms;
        let mut at = back + beat;
        while beat > 0 && at < quiet {
            let event = Event::Beat {
                prover: i,
                job,
                request,
            };
            let arrives = at + self.hop();
            self.push(arrives, event);
            at += beat;
        }
        if hangs {
            // Hangs before it finishes: never heard of again.
            self.provers[i].gone = true;
            return;
        }
        let event = Event::Proof {
            prover: i,
            job,
            request,
            took,
            valid: true,
        };
        let arrives = back + took + self.hop();
        self.push(arrives, event);
    }

    /// Prover `i`'s heartbeat for `job` (hand-out `request`) reaches the
    /// distributor at `now`.
    fn beat(&mut self, i: usize, job: JobId, request: u64, now: u64) {
        self.out.decisions += 1;
        let heard = self.lrp.apply(&LrpEvent::Heartbeat {
            job,
            request: protocol::RequestId(request),
            prover: self.provers[i].key,
            now: Timestamp(now),
        });
        // A staller keeps talking for as long as the job is its own.
        let still_held = matches!(
            heard,
            LrpOutcome::Heard(HeartbeatOutcome::Noted | HeartbeatOutcome::TooSoon)
        );
        if self.provers[i].fault == Fault::Stall && still_held {
            let event = Event::Beat {
                prover: i,
                job,
                request,
            };
            let next = now + self.scenario.heartbeat_ms;
            self.push(next, event);
        }
    }

    /// Prover `i`'s proof of `job` (hand-out `request`), `took` ms in the
    /// making, reaches the distributor at `now`; the prover asks for more.
    /// True once every job of every batch is proven.
    fn proof(
        &mut self,
        i: usize,
        job: JobId,
        request: u64,
        took: u64,
        valid: bool,
        now: u64,
    ) -> bool {
        self.out.decisions += 1;
        let fault_free = self.provers[i].fault == Fault::None;
        if fault_free {
            self.out.busy_ms += took;
        }
        let (request, prover, at) = (
            protocol::RequestId(request),
            self.provers[i].key,
            Timestamp(now),
        );
        let event = if valid {
            LrpEvent::Complete {
                job,
                request,
                prover,
                now: at,
            }
        } else {
            LrpEvent::Invalid {
                job,
                request,
                prover,
                now: at,
            }
        };
        if let LrpOutcome::Completed(completion) = self.lrp.apply(&event) {
            match completion {
                Completion::Accepted { batch_finished, .. } => {
                    self.accepted(i, job, batch_finished, now)
                }
                _ if fault_free => {
                    self.out.late += 1;
                    self.out.wasted_ms += took;
                }
                _ => {}
            }
        }
        if self.out.jobs == self.span && self.submitted == self.scenario.batches {
            return true;
        }
        let again = now + 2 * self.hop();
        self.push(again, Event::Ask(i));
        false
    }

    /// Prover `i`'s proof of `job` is accepted at `now`: it is paid, and
    /// the job's batch measured if that was its last job.
    fn accepted(&mut self, i: usize, job: JobId, batch_finished: bool, now: u64) {
        let p = &mut self.provers[i];
        self.out.jobs += 1;
        p.earned += 1;
        p.first_paid.get_or_insert(now);
        if !matches!(p.fault, Fault::None | Fault::Slow | Fault::Hang) {
            self.out.paid_to_faulty += 1;
        }
        if batch_finished {
            let b = (job.batch.0 - 1) as u32;
            let latency = now - first_batch_ms(self.scenario, b);
            self.out.batch_latency_ms.push(latency);
        }
    }

    /// The measures, once the run is over.
    fn finish(self) -> Outcome {
        let Sim {
            provers,
            queue,
            mut out,
            ..
        } = self;
        // Proofs still being made when the last batch finished will be late:
        // the provers finish them all the same (as real ones do).
        for Reverse((_, _, event)) in queue {
            if let Event::Proof { prover, took, .. } = event
                && provers[prover].fault == Fault::None
            {
                out.busy_ms += took;
                out.wasted_ms += took;
                out.late += 1;
            }
        }
        out.fairness = fairness(&provers);
        let paid: Vec<u64> = provers
            .iter()
            .filter(|p| p.fault == Fault::None)
            .filter_map(|p| p.first_paid)
            .collect();
        out.first_paid_ms = paid.iter().sum::<u64>() / (paid.len().max(1) as u64);
        out
    }
}

/// When batch `b` of `scenario` is submitted, ms.
fn first_batch_ms(scenario: &Scenario, b: u32) -> u64 {
    u64::from(b) * scenario.batch_interval_ms
}

/// The provers of `scenario`, shuffled, with keys spread like ed25519's.
fn crowd(scenario: &Scenario, rng: &mut StdRng) -> Vec<Prover> {
    // The first half of the batch, at the crowd's mean speed: when the
    // `Hang` provers stop.
    let machines: u64 = scenario.crowd.iter().map(|c| u64::from(c.2)).sum();
    let mean_job: u64 = scenario
        .crowd
        .iter()
        .map(|c| c.0.job_ms * u64::from(c.2))
        .sum::<u64>()
        / machines.max(1);
    let half = (u64::from(scenario.jobs) * mean_job / machines.max(1) / 2).max(1);
    let mut provers = Vec::new();
    for &(hardware, fault, count) in &scenario.crowd {
        for _ in 0..count {
            let n = provers.len() as u64 + 1;
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&n.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
            key[8..16].copy_from_slice(&n.to_le_bytes());
            provers.push(Prover {
                key: PublicKey(key),
                hardware,
                fault,
                hang_at: rng.gen_range(0..half),
                gone: false,
                earned: 0,
                first_paid: None,
            });
        }
    }
    provers
}

/// Jain's index, (Σx)² ÷ (n·Σx²), of fault-free provers' earnings within
/// each hardware class; the lowest over classes of two or more provers.
fn fairness(provers: &[Prover]) -> f64 {
    let mut lowest: f64 = 1.0;
    let mut classes: Vec<&'static str> = provers.iter().map(|p| p.hardware.name).collect();
    classes.sort_unstable();
    classes.dedup();
    for class in classes {
        let earned: Vec<f64> = provers
            .iter()
            .filter(|p| p.hardware.name == class && p.fault == Fault::None)
            .map(|p| p.earned as f64)
            .collect();
        if earned.len() < 2 {
            continue;
        }
        let sum: f64 = earned.iter().sum();
        let squares: f64 = earned.iter().map(|x| x * x).sum();
        if squares > 0.0 {
            lowest = lowest.min(sum * sum / (earned.len() as f64 * squares));
        }
    }
    lowest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(policy: Policy, crowd: Vec<(Hardware, Fault, u32)>, jobs: u32) -> Scenario {
        Scenario::one_batch(jobs, crowd, policy, 1)
    }

    #[test]
    fn a_run_is_reproducible_and_proves_every_job_once() {
        let s = scenario(Policy::Adaptive, vec![(CPU_8, Fault::None, 10)], 100);
        let a = run(&s);
        assert_eq!(a, run(&s));
        assert!(a.finished);
        assert_eq!(a.jobs, 100);
        assert!(a.handouts >= 100);
        // Ten equal machines, ten jobs each, ~98 s a job: about 980 s.
        let latency = a.mean_latency_ms();
        assert!((950_000.0..1_150_000.0).contains(&latency), "{latency}");
        let other = run(&Scenario { seed: 2, ..s });
        assert_ne!(a.batch_latency_ms, other.batch_latency_ms);
    }

    #[test]
    fn a_later_batch_is_measured_from_its_own_submission() {
        // Ten GPUs, two batches of 50 jobs a minute apart: the second is
        // submitted while the first's tail runs, and goes first.
        let s = Scenario {
            batches: 2,
            batch_interval_ms: 60_000,
            ..scenario(Policy::Adaptive, vec![(L4_GPU, Fault::None, 10)], 50)
        };
        let out = run(&s);
        assert!(out.finished);
        assert_eq!(out.jobs, 100);
        assert_eq!(out.batch_latency_ms.len(), 2);
        // Five rounds of 14.5 s each: about 73 s for either, not 133 s for
        // the second.
        for latency in &out.batch_latency_ms {
            assert!((70_000..110_000).contains(latency), "{out:?}");
        }
    }

    #[test]
    fn sitters_and_liars_earn_nothing_and_stall_nothing() {
        for policy in Policy::ALL {
            let crowd = vec![
                (L4_GPU, Fault::None, 6),
                (L4_GPU, Fault::Sit, 2),
                (L4_GPU, Fault::Byzantine, 2),
            ];
            let out = run(&scenario(policy, crowd, 60));
            assert!(out.finished, "{policy:?}");
            assert_eq!(out.paid_to_faulty, 0, "{policy:?}");
        }
    }

    #[test]
    fn the_paper_lrp_duplicates_the_tail_and_ours_does_not() {
        // Fast and slow machines: in the tail, the paper's rule hands every
        // idle GPU a copy of a job a CPU is still proving.
        let crowd = vec![(CPU_8, Fault::None, 10), (L4_GPU, Fault::None, 10)];
        let paper = run(&scenario(Policy::PaperLrp, crowd.clone(), 200));
        let ours = run(&scenario(Policy::Adaptive, crowd, 200));
        assert!(ours.useful_work() >= 0.97, "{}", ours.useful_work());
        assert!(paper.useful_work() < ours.useful_work());
        assert!(paper.wasted_ms > ours.wasted_ms);
    }

    #[test]
    fn a_hung_prover_costs_a_timeout_its_overdue_time_and_adaptive_far_less() {
        let crowd = vec![(L4_GPU, Fault::None, 15), (L4_GPU, Fault::Hang, 5)];
        let timeout = run(&scenario(Policy::Timeout10min, crowd.clone(), 200));
        let ours = run(&scenario(Policy::Adaptive, crowd, 200));
        assert!(timeout.finished && ours.finished);
        // Ten minutes at least for the timeout; ours re-serves at ~2 × 14.5 s.
        assert!(timeout.mean_latency_ms() > 600_000.0);
        assert!(ours.mean_latency_ms() < 0.5 * timeout.mean_latency_ms());
    }

    #[test]
    fn fairness_is_jains_index_per_hardware_class() {
        let prover = |hardware, earned| Prover {
            key: PublicKey([0; 32]),
            hardware,
            fault: Fault::None,
            hang_at: 0,
            gone: false,
            earned,
            first_paid: None,
        };
        let even = [prover(CPU_8, 5), prover(CPU_8, 5), prover(L4_GPU, 30)];
        assert_eq!(fairness(&even), 1.0);
        let skewed = [prover(CPU_8, 0), prover(CPU_8, 10)];
        assert!((fairness(&skewed) - 0.5).abs() < 1e-9);
    }
}
