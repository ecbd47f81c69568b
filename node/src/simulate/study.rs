//! What `crowdprove simulate` runs: every policy over crowd sizes and fault
//! mixes on the same seeds, the paper's own runs, the scale run, and the
//! goals the adaptive policy must meet.

use std::collections::BTreeMap;
use std::time::Instant;

use super::{CPU_8, CPU_16, Fault, Hardware, L4_GPU, M3_MAX, Outcome, Policy, Scenario, run};

/// A share of the crowd with one fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mix {
    /// The fault.
    pub fault: Fault,
    /// Percent of the crowd that has it.
    pub percent: u32,
}

impl Mix {
    /// Its label in tables.
    pub fn label(self) -> String {
        match self.fault {
            Fault::None => "fault-free".to_string(),
            fault => format!("{}% {}", self.percent, fault.name()),
        }
    }
}

/// The fault mixes compared.
pub const MIXES: [Mix; 6] = [
    Mix {
        fault: Fault::None,
        percent: 0,
    },
    Mix {
        fault: Fault::Sit,
        percent: 25,
    },
    Mix {
        fault: Fault::Stall,
        percent: 25,
    },
    Mix {
        fault: Fault::Hang,
        percent: 25,
    },
    Mix {
        fault: Fault::Byzantine,
        percent: 10,
    },
    Mix {
        fault: Fault::Slow,
        percent: 10,
    },
];

/// The settings of a study.
#[derive(Debug, Clone)]
pub struct Study {
    /// Crowd sizes (machines, faulty ones included).
    pub sizes: Vec<u32>,
    /// Jobs per batch, per machine of the crowd.
    pub jobs_per_prover: u32,
    /// Seed of every run (the same for every policy).
    pub seed: u64,
}

/// One run of the grid.
#[derive(Debug, Clone)]
pub struct Row {
    /// The policy.
    pub policy: Policy,
    /// Machines in the crowd.
    pub size: u32,
    /// Its faults.
    pub mix: Mix,
    /// What the run measured.
    pub outcome: Outcome,
    /// Mean batch latency of the crowd's fault-free provers alone, same
    /// policy and seed, ms: what the faults cost is measured against it.
    pub baseline_ms: f64,
}

impl Row {
    /// Batch latency ÷ the fault-free provers' alone.
    pub fn latency_ratio(&self) -> f64 {
        self.outcome.mean_latency_ms() / self.baseline_ms.max(1.0)
    }
}

/// `size` machines in the paper's hardware classes: 40% 8-core, 30%
/// 16-core, 20% M3 Max, 10% L4 (the remainder to the 8-core).
pub fn hardware_mix(size: u32) -> Vec<(Hardware, u32)> {
    let share = |percent: u32| size * percent / 100;
    let (c16, m3, l4) = (share(30), share(20), share(10));
    vec![
        (CPU_8, size - c16 - m3 - l4),
        (CPU_16, c16),
        (M3_MAX, m3),
        (L4_GPU, l4),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .collect()
}

/// The scenario of one grid cell: `size` machines, `mix.percent` of them
/// faulty, one batch of `jobs_per_prover × size` jobs.
pub fn scenario(study: &Study, size: u32, mix: Mix, policy: Policy) -> Scenario {
    let faulty = size * mix.percent / 100;
    let mut crowd: Vec<(Hardware, Fault, u32)> = hardware_mix(size - faulty)
        .into_iter()
        .map(|(h, n)| (h, Fault::None, n))
        .collect();
    if faulty > 0 {
        crowd.extend(
            hardware_mix(faulty)
                .into_iter()
                .map(|(h, n)| (h, mix.fault, n)),
        );
    }
    Scenario::one_batch(study.jobs_per_prover * size, crowd, policy, study.seed)
}

/// Runs every policy on every size and mix.
pub fn grid(study: &Study) -> Vec<Row> {
    let mut baselines: BTreeMap<(u32, u32, usize), f64> = BTreeMap::new();
    let mut rows = Vec::new();
    for &size in &study.sizes {
        for mix in MIXES {
            for (p, policy) in Policy::ALL.into_iter().enumerate() {
                let outcome = run(&scenario(study, size, mix, policy));
                let healthy = size - size * mix.percent / 100;
                let baseline_ms = *baselines.entry((size, healthy, p)).or_insert_with(|| {
                    if mix.percent == 0 {
                        outcome.mean_latency_ms()
                    } else {
                        let alone = Study {
                            sizes: vec![],
                            ..study.clone()
                        };
                        let mut s = scenario(&alone, healthy, MIXES[0], policy);
                        s.jobs = study.jobs_per_prover * size;
                        run(&s).mean_latency_ms()
                    }
                });
                rows.push(Row {
                    policy,
                    size,
                    mix,
                    outcome,
                    baseline_ms,
                });
            }
        }
    }
    rows
}

/// The goals the adaptive policy must meet on the grid; each failure as a
/// line.
pub fn check(rows: &[Row]) -> Vec<String> {
    let mut failures = Vec::new();
    for row in rows.iter().filter(|r| r.policy == Policy::Adaptive) {
        let o = &row.outcome;
        let at = format!("{} provers, {}", row.size, row.mix.label());
        if !o.finished {
            failures.push(format!("{at}: the batch did not finish"));
            continue;
        }
        if o.paid_to_faulty > 0 {
            failures.push(format!(
                "{at}: {} jobs paid to faulty provers",
                o.paid_to_faulty
            ));
        }
        let bound = match row.mix.fault {
            Fault::None => {
                if o.useful_work() < 0.97 {
                    failures.push(format!("{at}: useful work {:.3} < 0.97", o.useful_work()));
                }
                if o.fairness < 0.99 {
                    failures.push(format!("{at}: fairness (Jain) {:.3} < 0.99", o.fairness));
                }
                continue;
            }
            Fault::Sit | Fault::Stall | Fault::Hang => 1.3,
            Fault::Byzantine | Fault::Slow => 1.2,
        };
        if row.latency_ratio() > bound {
            failures.push(format!(
                "{at}: batch latency {:.2}× the fault-free provers' alone (bound {bound}×)",
                row.latency_ratio()
            ));
        }
    }
    failures
}

/// One of the paper's runs beside the simulation of it.
#[derive(Debug, Clone)]
pub struct PaperRun {
    /// What was run.
    pub label: String,
    /// The paper's figure, minutes.
    pub paper_min: f64,
    /// The model T = J·T_job/P, minutes.
    pub model_min: f64,
    /// Simulated under each policy (in [`Policy::ALL`] order), minutes.
    pub simulated_min: Vec<f64>,
}

/// The paper's distributed runs (100 jobs, 5 and 20 eight-core provers) and
/// its break-even crowds for the real 17,188-job batch against the
/// centralized prover's 38.70 min.
pub fn paper(seed: u64) -> Vec<PaperRun> {
    let runs: [(&str, u32, Hardware, u32, f64); 6] = [
        ("100 jobs, 5 × 8-core", 100, CPU_8, 5, 37.11),
        ("100 jobs, 20 × 8-core", 100, CPU_8, 20, 9.12),
        ("17,188 jobs, 723 × 8-core", 17_188, CPU_8, 723, 38.70),
        ("17,188 jobs, 502 × 16-core", 17_188, CPU_16, 502, 38.70),
        ("17,188 jobs, 359 × M3 Max", 17_188, M3_MAX, 359, 38.70),
        ("17,188 jobs, 107 × L4", 17_188, L4_GPU, 107, 38.70),
    ];
    runs.iter()
        .map(|&(label, jobs, hardware, provers, paper_min)| {
            let simulated_min = Policy::ALL
                .iter()
                .map(|&policy| {
                    let crowd = vec![(hardware, Fault::None, provers)];
                    run(&Scenario::one_batch(jobs, crowd, policy, seed)).mean_latency_ms()
                        / 60_000.0
                })
                .collect();
            PaperRun {
                label: label.to_string(),
                paper_min,
                model_min: f64::from(jobs) * hardware.job_ms as f64 / f64::from(provers) / 60_000.0,
                simulated_min,
            }
        })
        .collect()
}

/// The scale run: the paper's batch on a big mixed crowd.
#[derive(Debug, Clone)]
pub struct ScaleRun {
    /// Jobs in the batch.
    pub jobs: u32,
    /// Machines.
    pub provers: u32,
    /// What it measured.
    pub outcome: Outcome,
    /// Wall-clock seconds the simulation took on this machine.
    pub wall_secs: f64,
}

/// 17,188 jobs on `provers` machines of the hardware mix, with 10% of them
/// hanging, under the adaptive policy; timed.
pub fn scale(provers: u32, seed: u64) -> ScaleRun {
    let study = Study {
        sizes: vec![],
        jobs_per_prover: 1,
        seed,
    };
    let mix = Mix {
        fault: Fault::Hang,
        percent: 10,
    };
    let mut s = scenario(&study, provers, mix, Policy::Adaptive);
    s.jobs = 17_188;
    let started = Instant::now();
    let outcome = run(&s);
    ScaleRun {
        jobs: s.jobs,
        provers,
        outcome,
        wall_secs: started.elapsed().as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hardware_mix_adds_up() {
        for size in [1, 7, 20, 723, 3_000] {
            let total: u32 = hardware_mix(size).iter().map(|(_, n)| n).sum();
            assert_eq!(total, size);
        }
    }

    #[test]
    fn the_adaptive_policy_meets_its_goals_on_a_small_grid() {
        let study = Study {
            sizes: vec![20],
            jobs_per_prover: 10,
            seed: 1,
        };
        let rows = grid(&study);
        assert_eq!(rows.len(), MIXES.len() * Policy::ALL.len());
        let failures = check(&rows);
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[test]
    fn check_names_a_missed_goal() {
        let study = Study {
            sizes: vec![20],
            jobs_per_prover: 10,
            seed: 1,
        };
        let mut rows = grid(&study);
        let fault_free = rows
            .iter_mut()
            .find(|r| r.policy == Policy::Adaptive && r.mix.fault == Fault::None)
            .unwrap();
        fault_free.outcome.handouts = 2 * fault_free.outcome.jobs;
        let failures = check(&rows);
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(
            failures[0].contains("useful work 0.500 < 0.97"),
            "{failures:?}"
        );
    }
}
