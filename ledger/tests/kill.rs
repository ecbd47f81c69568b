//! The crash test: a child process appends to a ledger in a loop and is
//! SIGKILLed at seeded-random points; every reopen must find a valid chain,
//! every acknowledged credit, block and payout binding, and no job paid twice.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use ledger::{Error, FsyncPolicy, Ledger, LedgerConfig};
use protocol::{BatchId, JobId, SecretKey};
use rand::{Rng, SeedableRng, rngs::StdRng};

const CHILD: &str = env!("CARGO_BIN_EXE_ledger-crash-child");
const KILLS: u64 = 24;
/// Generous: a healthy child prints a line every few milliseconds.
const LINE_DEADLINE: Duration = Duration::from_secs(30);

/// What the children acknowledged, across all runs.
#[derive(Default)]
struct Acked {
    jobs: BTreeSet<JobId>,
    height: u64,
    /// Highest acknowledged payout binding's sequence number per prover number.
    bindings: HashMap<u8, u64>,
    dups: u64,
}

impl Acked {
    fn record(&mut self, line: &str) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let n = |i: usize| {
            words[i]
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("bad line {line:?}"))
        };
        match words.first() {
            Some(&"OPEN") => {}
            Some(&"DUP") => self.dups += 1,
            Some(&"ACK") => {
                for index in n(2)..n(2) + n(3) {
                    self.jobs.insert(JobId::new(BatchId(n(1)), index as u32));
                }
            }
            Some(&"BACK") => {
                let seq = self.bindings.entry(n(1) as u8).or_insert(0);
                *seq = (*seq).max(n(2));
            }
            Some(&"BLOCK") => self.height = self.height.max(n(1)),
            _ => panic!("unexpected line from the child: {line:?}"),
        }
    }
}

fn lines_of(child: &mut Child) -> Receiver<String> {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn sigkill_at_random_points_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger");
    let distributor = SecretKey::from_seed([42; 32]);
    let config = LedgerConfig {
        sync: FsyncPolicy::EveryWrite,
        max_block_txs: 50,
        max_block_age_ms: 60_000,
    };
    // The kill points and the children's seeds come from their own stream:
    // how far a child got before its kill varies with the machine's speed,
    // and so does how a pick among the acknowledged jobs draws from its
    // stream, which used to shift every later kill point (and, one run in
    // four, left fewer than 20 kills mid-run).
    let mut rng = StdRng::seed_from_u64(0x4b11_7e57);
    let mut picks = StdRng::seed_from_u64(0x4b11_7e58);
    let mut acked = Acked::default();
    let mut killed_mid_run = 0;

    for run in 1..=KILLS {
        // 0: kill while the child is still opening (recovery itself must be crash-safe).
        let kill_after = if rng.gen_bool(0.15) {
            0
        } else {
            rng.gen_range(1..=40)
        };
        let mut cmd = Command::new(CHILD);
        cmd.arg(&path)
            .arg(run.to_string())
            .arg(rng.r#gen::<u64>().to_string());
        let dup = acked
            .jobs
            .iter()
            .nth(picks.gen_range(0..acked.jobs.len().max(1)));
        if let Some(job) = dup {
            cmd.arg(job.batch.0.to_string()).arg(job.index.to_string());
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = lines_of(&mut child);

        let mut seen = 0;
        let deadline = Instant::now() + LINE_DEADLINE;
        while seen < kill_after {
            match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    acked.record(&line);
                    seen += 1;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let out = child.wait_with_output().unwrap();
                    panic!(
                        "run {run}: the child exited early: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                Err(RecvTimeoutError::Timeout) => {
                    child.kill().unwrap();
                    panic!("run {run}: no output from the child for {LINE_DEADLINE:?}");
                }
            }
        }
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        assert!(
            status.code().is_none(),
            "run {run}: the child was not killed but exited: {status:?}"
        );
        killed_mid_run += u32::from(kill_after > 0);
        // Lines the child wrote before dying were acknowledged too.
        for line in lines.iter() {
            acked.record(&line);
        }

        let ledger = Ledger::open(&path, &distributor, config.clone())
            .unwrap_or_else(|e| panic!("run {run}: reopen failed: {e}"));
        let report = ledger
            .verify_chain()
            .unwrap_or_else(|e| panic!("run {run}: chain invalid after SIGKILL: {e}"));
        assert!(
            report.height >= acked.height,
            "run {run}: block {} was acknowledged, the tip is {}",
            acked.height,
            report.height
        );
        for job in &acked.jobs {
            assert!(
                ledger.is_credited(*job).unwrap(),
                "run {run}: acknowledged {job} lost"
            );
        }
        for (&who, &seq) in &acked.bindings {
            let key = SecretKey::from_seed([who + 1; 32]);
            assert!(
                ledger.account(&key.public()).payout_seq >= seq,
                "run {run}: acknowledged payout binding {seq} of prover {who} lost"
            );
        }
        // verify_chain rejects any job credited twice; the count must also
        // match: every credit in the ledger is a job some run attempted.
        assert!(report.credits + report.pending >= acked.jobs.len() as u64);
    }

    assert!(
        killed_mid_run >= 20,
        "only {killed_mid_run} kills landed mid-run"
    );
    assert!(
        acked.dups >= 10,
        "re-credits of old jobs were refused only {} times",
        acked.dups
    );
    assert!(
        acked.height >= 3,
        "too few blocks were cut ({}) for the test to mean much",
        acked.height
    );

    // And a final, independent check of the one-credit-per-job rule.
    let ledger = Ledger::open_read_only(&path).unwrap();
    for job in acked.jobs.iter().take(50) {
        match ledger.receipt(*job) {
            Ok(receipt) => assert_eq!(
                ledger::verify_receipt(&receipt, &distributor.public())
                    .unwrap()
                    .job,
                *job
            ),
            Err(Error::NotYetInBlock { .. }) => {}
            Err(e) => panic!("receipt for {job}: {e}"),
        }
    }
}
