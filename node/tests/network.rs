//! End-to-end tests: a distributor and provers as separate `crowdprove`
//! processes over real TCP on loopback, real Groth16 proofs of the tiny
//! transfer circuit, the real RocksDB ledger. Only what crosses processes
//! is tested here; the distributor's own rules run in-process in
//! `distributor.rs`, which now covers what these process tests did:
//! - `the_winner_resubmitting_is_told_accepted_again_and_paid_once`: its
//!   namesake there, with `a_proof_for_a_handout_never_issued_to_its_sender_is_dropped_unverified`
//!   and the signer check of `requests_that_fail_admission_are_refused_with_their_reason`;
//! - `key_chunks_go_only_to_job_holders_within_a_budget`:
//!   `key_chunks_go_only_to_job_holders_within_their_budget`;
//! - `hostile_requests_are_refused_counted_and_do_not_stop_honest_work`:
//!   `requests_that_fail_admission_are_refused_with_their_reason`;
//! - `provers_ride_out_a_five_minute_distributor_outage`: its namesake
//!   there, two real provers on a paused clock (a restarted distributor
//!   found again over libp2p is
//!   `a_distributor_killed_mid_batch_resumes_and_pays_no_job_twice` here);
//! - `claim_and_sit_identities_neither_stall_a_batch_nor_earn`: its
//!   namesake there, the 24 sitters sending through the same edge (here
//!   they were 24 libp2p swarms: 102 s of CPU against 32 s);
//! - `a_sybil_flood_of_future_stamped_requests_leaves_an_honest_prover_served`:
//!   its namesake there, the 100 sybils sending through the same edge
//!   (here 100 libp2p swarms in the test process: about 340 s of CPU, the
//!   suite's largest, against 64 s); the network's part of a flood, a
//!   proof never crowded out by polls, stays here in
//!   `a_flood_of_polls_never_crowds_out_a_proof`.

#[path = "../../prover-core/tests/interop/mod.rs"]
mod interop;
mod support;

use std::time::Duration;

use node::status_doc::{DistributorStatus, ProverRow};
use serde_json::Value;
use support::{Net, check_ledger};

const REWARD: u64 = 100;
const JOBS: u64 = 4; // batch_txs 4, one transfer per job

fn proven(status: &DistributorStatus, batches: u64) -> bool {
    status.batches.proven == batches
}

fn prover_row<'a>(status: &'a DistributorStatus, public_key: &str) -> Option<&'a ProverRow> {
    status.provers.iter().find(|p| p.public_key == public_key)
}

/// A distributor's rate limit pushes back on a newcomer fetching the
/// proving key in more chunks than the limit's burst: the prover waits and
/// goes on, and its first job is proven and paid (before, the download
/// failed at the first `rate_limited`, the release was refused the same way,
/// and the newcomer, holding an abandoned job, got no other).
/// A distributor allowing one request a second (a burst of two) with a
/// batch of one job, and a newcomer prover: its key download is slow.
/// Returns the distributor, the prover and the key's length.
fn a_slowly_served_newcomer(net: &mut Net) -> (usize, usize, u64) {
    let limits = "batch_txs = 1\nrate_limit_per_sec = 1\nrate_limit_burst = 2\n";
    let (d, key, boot) = net.start_distributor(limits, &[]);
    let p = net.start_prover("prover", &key, &boot, &[]);
    net.wait_distributor(d, "the prover connected", |s| s.peers >= 1);
    net.submit_batch(d);
    let key_len = std::fs::metadata(net.keys.join(format!("{}.pk", support::CIRCUIT)))
        .unwrap()
        .len();
    (d, p, key_len)
}

#[test]
fn a_newcomer_rate_limited_mid_key_download_waits_and_is_paid() {
    let mut net = Net::new();
    let (d, p, key_len) = a_slowly_served_newcomer(&mut net);
    let s = net.wait_prover(p, "its first proof accepted", |s| {
        s.first_job.accepted_ms.is_some()
    });
    assert!(s.first_job.key_ready_ms.is_some(), "{:?}", s.first_job);
    // The limit was met, and the key came once in all (a download cut short
    // when the slow fetch outlasted the hand-out resumes where it stopped).
    let metrics = net.metrics(p);
    for line in [
        "crowdprove_pushed_back_total{reason=\"rate_limited\"}".to_string(),
        format!("crowdprove_key_bytes_fetched_total {key_len}"),
    ] {
        assert!(
            metrics.contains(&line),
            "{line} in\n{metrics}\n{}",
            net.log("prover")
        );
    }
    net.wait_distributor(d, "the batch proven", |s| proven(s, 1));
}

/// A newcomer SIGKILLed while its key comes in (slowed by a rate limit of
/// one request a second) gives back the job it held and picks the download
/// up where its disk has it after a restart: it fetches only the rest, and
/// is paid. (Before, the job it held past its lease counted against its
/// allowance until another prover proved it: alone, it was refused work
/// for good.)
#[test]
fn a_prover_killed_mid_key_download_resumes_it_after_a_restart() {
    let mut net = Net::new();
    let (d, p, key_len) = a_slowly_served_newcomer(&mut net);
    let s = net.wait_prover(p, "part of the key on disk", |s| {
        s.key
            .as_ref()
            .is_some_and(|k| k.doing == "downloading" && k.bytes > 0)
    });
    let had = s.key.unwrap().bytes;
    assert!(had < key_len, "{had} of {key_len}");
    net.kill(p);
    net.restart(p, None);
    let s = net.wait_prover(p, "its first proof accepted", |s| {
        s.first_job.accepted_ms.is_some()
    });
    let fetched: u64 = net
        .metrics(p)
        .lines()
        .find_map(|l| l.strip_prefix("crowdprove_key_bytes_fetched_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the key bytes metric");
    assert!(
        fetched > 0 && fetched <= key_len - had,
        "fetched {fetched} after the restart, with {had} of {key_len} on disk before it\n{}",
        net.log("prover")
    );
    assert!(
        s.first_job.key_bytes.unwrap() <= fetched,
        "{:?}",
        s.first_job
    );
    // The job it held when killed was given back, not left to count
    // against its allowance until someone else proved it (the give-back is
    // its own task, retried under the same rate limit as the key's chunks:
    // it may log after the first proof).
    let gave_back = support::settles(Duration::from_secs(10), || {
        net.log("prover")
            .contains("gave back a job held when this prover last stopped")
    });
    assert!(gave_back, "{}", net.log("prover"));
    net.wait_distributor(d, "the batch proven", |s| proven(s, 1));
}

#[test]
fn three_provers_prove_a_batch_and_each_job_is_paid_once() {
    let mut net = Net::new();
    let (d, key, boot) = net.start_distributor("", &[]);
    let provers: Vec<usize> = (0..3)
        .map(|i| net.start_prover(&format!("prover{i}"), &key, &boot, &[]))
        .collect();
    net.wait_distributor(d, "three provers connected", |s| s.peers >= 3);
    let answer = net.submit_batch(d);
    assert_eq!(answer["jobs"].as_u64(), Some(JOBS), "{answer}");

    let status = net.wait_distributor(d, "the batch proven", |s| proven(s, 1));
    let accepted: u64 = status.provers.iter().map(|p| p.accepted).sum();
    assert_eq!(accepted, JOBS, "{status:#?}");
    assert_eq!(status.batches.list.first().map(|b| b.done), Some(JOBS));

    // Provers keep checked receipts of what they were paid for.
    for &p in &provers {
        let pk = net.node(p).public_key();
        let row = prover_row(&status, &pk).cloned();
        let accepted = row.map_or(0, |r| r.accepted);
        let s = net.wait_prover(p, "receipts for every accepted job", |s| {
            s.receipts == Some(accepted) && s.jobs.accepted == Some(accepted)
        });
        // It says what its workers do, and how its first job went: handed
        // out, key ready (downloaded: the data dir was empty), accepted.
        assert!(!s.workers.is_empty(), "{s:#?}");
        let f = s.first_job;
        if accepted > 0 {
            let steps = [f.assigned_ms, f.key_ready_ms, f.accepted_ms].map(Option::unwrap);
            assert!(steps.is_sorted(), "{f:?}");
            assert!(
                f.key_bytes.unwrap() > 0 && f.key_download_ms.is_some(),
                "{f:?}"
            );
        }
    }
    let out = net.cli(&[
        "status",
        "--data-dir",
        net.node(d).data_dir.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 proven / 1 total"),
        "{text}"
    );
    let metrics = net.metrics(d);
    assert!(
        metrics.contains(&format!("crowdprove_jobs_completed_total {JOBS}")),
        "{metrics}"
    );
    assert!(
        metrics.contains("crowdprove_verify_seconds_count"),
        "{metrics}"
    );

    // A built-in circuit's accepted proof comes out in snarkjs JSON through
    // `crowdprove proof`; snarkjs verifies it and refuses a tampered input.
    let dir = tempfile::tempdir().unwrap();
    let out = net.cli(&[
        "proof",
        "--job",
        "b1/j0",
        "--out",
        dir.path().to_str().unwrap(),
        "--data-dir",
        net.node(d).data_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let read = |name: &str| -> Value {
        let path = dir.path().join(name);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let vk = read("verification_key.json");
    assert_eq!(
        (&vk["protocol"], &vk["curve"]),
        (&"groth16".into(), &"bn128".into())
    );
    assert_eq!(vk["nPublic"], 4, "{vk}");
    assert_eq!(read("public.json").as_array().map(Vec::len), Some(4));
    assert_eq!(read("proof.json")["protocol"], "groth16");
    assert!(
        interop::snarkjs_accepts(dir.path()),
        "snarkjs refused b1/j0"
    );
    interop::tamper_public(dir.path());
    assert!(!interop::snarkjs_accepts(dir.path()), "b1/j0 tampered");

    for &p in &provers {
        assert!(
            net.stop(p).success(),
            "prover exits cleanly\n{}",
            net.logs()
        );
    }
    assert!(
        net.stop(d).success(),
        "distributor exits cleanly\n{}",
        net.logs()
    );
    check_ledger(&net, net.node(d), 1, JOBS, REWARD);
}

#[test]
fn a_prover_that_claims_and_stalls_does_not_stop_the_batch() {
    let mut net = Net::new();
    let (d, key, boot) = net.start_distributor("", &[]);
    let staller = net.start_prover("staller", &key, &boot, &["--fault", "stall"]);
    net.wait_distributor(d, "the staller connected", |s| s.peers >= 1);
    net.submit_batch(d);
    let staller_key = net.node(staller).public_key();
    // A new identity holds one job at a time (probation).
    net.wait_distributor(d, "the staller holding a job", |s| {
        prover_row(s, &staller_key).is_some_and(|r| r.assigned >= 1)
    });
    let honest = net.start_prover("honest", &key, &boot, &[]);
    let status = net.wait_distributor(d, "the batch proven", |s| proven(s, 1));
    let staller_row = prover_row(&status, &staller_key).unwrap();
    assert_eq!(staller_row.accepted, 0);
    let honest_row = prover_row(&status, &net.node(honest).public_key()).unwrap();
    assert_eq!(honest_row.accepted, JOBS);
    assert!(
        honest_row.reserved >= 1,
        "stalled jobs were re-served: {status:#?}"
    );
    assert!(net.stop(d).success());
    check_ledger(&net, net.node(d), 1, JOBS, REWARD);
}

/// Heartbeats over the network, with two bare clients and only silence
/// re-serving (job times assumed 10,000 times their learnt length, no
/// backups, 4 s of silence): while the holder heartbeats every second, the
/// other client asking twice a second never gets its job; once the holder
/// falls silent, the job goes to the other client, and not before 4 s of
/// silence. A heartbeat for someone else's hand-out is refused.
#[test]
fn a_holder_keeps_its_job_while_it_heartbeats_and_loses_it_when_silent() {
    use protocol::SecretKey;
    use protocol::envelope::seal_now;
    use protocol::messages::{AnyMessage, Heartbeat, JobRequest};
    use std::time::Instant;

    let mut net = Net::new();
    let (d, key_hex, boot) = net.start_distributor(
        "batch_txs = 1\n\
         scheduler.overdue_percent = 1000000\n\
         scheduler.backup_percent = 0\n\
         scheduler.heartbeat_silence_ms = 4000\n\
         scheduler.lease_ms = 600000",
        &[],
    );
    let key = node::config::parse_public_key(&key_hex).unwrap();
    net.submit_batch(d);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (holder, racer) = (
            SecretKey::from_seed([41; 32]),
            SecretKey::from_seed([42; 32]),
        );
        let holder_client = support::Client::connect(&holder, &boot, key).await;
        let racer_client = support::Client::connect(&racer, &boot, key).await;
        let ask = || seal_now(&JobRequest { circuits: vec![] }, &racer);
        let held = holder_client
            .ask_until(
                "the job",
                || seal_now(&JobRequest { circuits: vec![] }, &holder),
                |m| match m {
                    AnyMessage::Assignment(a) => Some(a),
                    _ => None,
                },
            )
            .await;
        let beat = Heartbeat {
            job: held.job,
            request: held.request,
        };
        // Twelve seconds of heartbeats, three times the silence.
        let talking = Instant::now();
        let mut last_beat = Instant::now();
        while talking.elapsed() < Duration::from_secs(12) {
            if last_beat.elapsed() >= Duration::from_secs(1) {
                let echo = holder_client.ask(seal_now(&beat, &holder)).await;
                assert!(
                    matches!(echo, AnyMessage::Heartbeat(ref b) if *b == beat),
                    "{echo:?}"
                );
                last_beat = Instant::now();
            }
            match racer_client.ask(ask()).await {
                AnyMessage::NoWork(_) => {}
                other => panic!("a talking holder's job was handed out: {other:?}"),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // Someone else's hand-out: refused, and it does not count.
        match racer_client.ask(seal_now(&beat, &racer)).await {
            AnyMessage::Rejected(r) => assert_eq!(r.reason, "not_issued"),
            other => panic!("{other:?}"),
        }
        let silent = last_beat;
        let again = racer_client
            .ask_until("the silent holder's job", ask, |m| match m {
                AnyMessage::Assignment(a) => Some(a),
                _ => None,
            })
            .await;
        assert_eq!(again.job, held.job);
        assert!(
            silent.elapsed() >= Duration::from_millis(3_000),
            "re-served {:?} after the last heartbeat",
            silent.elapsed()
        );
    });
    assert!(net.stop(d).success());
}

#[test]
fn a_byzantine_prover_is_never_paid_and_honest_work_goes_on() {
    let mut net = Net::new();
    // Its strikes kept, for the operator's pardon below: by default a key
    // that never had a proof accepted is forgotten once struck (the LRP's
    // and the harness's tests cover that).
    let (d, key, boot) = net.start_distributor("scheduler.forget_struck_newcomers = false", &[]);
    let byzantine = net.start_prover("byzantine", &key, &boot, &["--fault", "byzantine"]);
    let honest = net.start_prover("honest", &key, &boot, &[]);
    net.wait_distributor(d, "both provers connected", |s| s.peers >= 2);
    net.submit_batch(d);
    net.submit_batch(d);
    let status = net.wait_distributor(d, "both batches proven", |s| proven(s, 2));
    let bad = prover_row(&status, &net.node(byzantine).public_key()).cloned();
    let good = prover_row(&status, &net.node(honest).public_key()).unwrap();
    assert_eq!(good.accepted, 2 * JOBS, "{status:#?}");
    if let Some(bad) = bad {
        assert_eq!(bad.accepted, 0, "{status:#?}");
        assert_eq!(bad.earned, 0);
    }
    let metrics = net.metrics(d);
    // Its invalid proofs, misbound submissions and replays were each counted.
    assert!(metrics.contains("outcome=\"invalid\""), "{metrics}");
    let bad_key = net.node(byzantine).public_key();
    let data = net.node(d).data_dir.to_str().unwrap().to_string();
    let pardon = ["pardon", "--data-dir", &data, "--prover", &bad_key];
    // The operator lifts its strikes: refused while the distributor runs...
    let out = net.cli(&pardon);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is running") && err.lines().count() == 1,
        "{err}"
    );
    assert!(net.stop(d).success());
    check_ledger(&net, net.node(d), 2, JOBS, REWARD);
    let balances = support::ledger_balances(&net, &net.node(d).data_dir);
    assert_eq!(balances.get(&bad_key), None, "{balances:?}");
    // ...and done once it is stopped; the restarted distributor has the
    // prover with no strikes.
    let out = net.cli(&pardon);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("cleared"),
        "{said}{out:?}"
    );
    net.restart(d, None);
    let status = net.wait_distributor(d, "restarted", |_| true);
    let row = prover_row(&status, &bad_key).unwrap();
    assert_eq!(row.strikes, 0, "{status:#?}");
    assert!(net.stop(d).success());
}

#[test]
fn a_distributor_killed_mid_batch_resumes_and_pays_no_job_twice() {
    const BATCH: u64 = 8;
    let mut net = Net::new();
    let (d, key, boot) = net.start_distributor(&format!("batch_txs = {BATCH}\n"), &[]);
    // Restart on the same port so provers reconnect to the address they know.
    let listen = boot.split("/p2p/").next().unwrap().to_string();
    let mut args = net.node(d).args.clone();
    args.extend(["--listen".to_string(), listen]);
    net.start_prover("prover0", &key, &boot, &[]);
    net.start_prover("prover1", &key, &boot, &[]);
    net.wait_distributor(d, "provers connected", |s| s.peers >= 2);
    net.submit_batch(d);
    net.wait_distributor(d, "some jobs done", |s| s.jobs.done >= 3);
    net.kill(d);
    let killed_at = protocol::Timestamp::now().0;
    net.restart(d, Some(args));
    let status = net.wait_distributor(d, "the batch proven after the restart", |s| proven(s, 1));
    // Hand-outs from before the crash stayed valid: their proofs, delivered
    // to the restarted distributor, won.
    let attempts = net.get(d, "/attempts");
    let carried_over = attempts["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            a["outcome"] == "won"
                && a["assigned_ms"].as_u64() < Some(killed_at)
                && a["ended_ms"].as_u64() > Some(killed_at)
        })
        .count();
    assert!(
        carried_over >= 1,
        "no pre-crash hand-out was completed after the restart: {attempts:#}\n{}",
        net.logs()
    );
    assert!(net.log("distributor").matches("state loaded").count() == 2);
    let accepted: u64 = status.provers.iter().map(|p| p.accepted).sum();
    assert_eq!(accepted, BATCH, "{status:#?}");
    assert!(net.stop(d).success());
    check_ledger(&net, net.node(d), 1, BATCH, REWARD);
}

#[test]
fn provers_find_the_distributor_through_kademlia_from_another_peer() {
    let mut net = Net::new();
    let (d, key, boot) = net.start_distributor("", &[]);
    // The first prover knows the distributor; it stalls, so all proving is
    // left to the second, which knows only the first prover's address.
    let relay = net.start_prover("relay", &key, &boot, &["--fault", "stall"]);
    let relay_addr = net.node(relay).bootstrap();
    assert!(!relay_addr.contains(&net.node(d).info().peer_id));
    let finder = net.start_prover("finder", &key, &relay_addr, &[]);
    net.submit_batch(d);
    let status = net.wait_distributor(d, "the batch proven", |s| proven(s, 1));
    let row = prover_row(&status, &net.node(finder).public_key()).unwrap();
    assert_eq!(row.accepted, JOBS, "{status:#?}");
    assert!(net.log("finder").contains("connected to the distributor"));
}

/// A prover killed after `Accepted` and before its receipts gets them after
/// its restart: the receipts it is owed are kept on disk.
#[test]
fn a_prover_killed_before_its_receipts_gets_them_after_a_restart() {
    let mut net = Net::new();
    // No block is cut while the distributor runs: no receipt can be fetched.
    let (d, key, boot) = net.start_distributor("block_interval_ms = 600000\n", &[]);
    // It comes back on the same address, which the prover knows.
    let listen = boot.split("/p2p/").next().unwrap().to_string();
    let mut args = net.node(d).args.clone();
    args.extend(["--listen".to_string(), listen]);
    let p = net.start_prover("prover0", &key, &boot, &[]);
    net.wait_distributor(d, "the prover connected", |s| s.peers >= 1);
    net.submit_batch(d);
    net.wait_distributor(d, "the batch proven", |s| proven(s, 1));
    let owed = net.wait_prover(p, "every job owed a receipt", |s| {
        s.awaiting_receipts == Some(JOBS)
    });
    assert_eq!(owed.receipts, Some(0), "{owed:#?}");
    // The key it proved with is kept expanded, and only so, for its restart.
    let kept: Vec<String> = std::fs::read_dir(net.node(p).data_dir.join("keys"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        kept.len() == 1 && kept[0].ends_with(".expanded"),
        "{kept:?}"
    );
    net.kill(p);
    // The distributor's shutdown cuts the last block; it comes back.
    assert!(net.stop(d).success());
    net.restart(d, Some(args));
    net.restart(p, None);
    let status = net.wait_prover(p, "the receipts fetched after the restart", |s| {
        s.receipts == Some(JOBS)
    });
    assert_eq!(status.awaiting_receipts, Some(0), "{status:#?}");
    let dir = net.node(p).data_dir.join("receipts");
    for index in 0..JOBS as u32 {
        let job = protocol::JobId::new(protocol::BatchId(1), index);
        assert!(node::prover::receipt_path(&dir, job).exists(), "{job}");
    }
}

/// A restart with another reward while a batch is open is refused with both
/// values named (its jobs were announced at the old price); with the old
/// settings the distributor starts again.
#[test]
fn seeded_keys_need_dev_and_random_keys_prove_without_it() {
    let mut net = Net::new(); // seeded keys; the test config says dev = true
    let (d, _, _) = net.start_distributor("", &[]);
    let status = net.distributor_status(d);
    assert_eq!(status.key_setup.kind, "insecure-seed", "{status:?}");
    assert!(!status.key_setup.secure);
    assert!(
        net.metrics(d)
            .contains("crowdprove_key_setup{setup=\"insecure-seed\"} 1"),
        "{}",
        net.metrics(d)
    );
    assert!(net.log("distributor").contains("development mode"));
    assert!(net.stop(d).success());

    // Without --dev the same keys are refused, in one line naming the fix
    // (and the batch proven below is two jobs: one is as good as eight).
    net.distributor_config("dev = false\nbatch_txs = 2\n");
    let refused = net.try_restart(d, None);
    assert!(refused.is_err(), "started with seeded keys and no --dev");
    let log = net.log("distributor");
    let last = log.trim().lines().last().unwrap();
    assert!(
        last.contains("INSECURE (seed 1)") && last.contains("--dev") && last.contains("--force"),
        "{log}"
    );

    // Keys from the OS's randomness run without --dev and prove a batch.
    let keys = net.keys.display().to_string();
    let out = net.cli(&[
        "setup",
        "--circuit",
        support::CIRCUIT,
        "--out",
        &keys,
        "--force",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("random (from the OS)"));
    net.restart(d, None);
    let status = net.distributor_status(d);
    assert_eq!(status.key_setup.kind, "random", "{status:?}");
    assert!(status.key_setup.secure);
    let (key, boot) = (net.node(d).public_key(), net.node(d).bootstrap());
    let p = net.start_prover("prover", &key, &boot, &[]);
    net.submit_batch(d);
    net.wait_distributor(d, "the batch proven with random keys", |s| proven(s, 1));
    assert!(!net.log("prover").contains("insecure seeded setup"));
    assert!(net.stop(p).success());
}

#[test]
fn a_restart_with_other_settings_and_an_open_batch_is_refused_clearly() {
    let mut net = Net::new();
    let (d, _key, _boot) = net.start_distributor("", &[]);
    net.submit_batch(d);
    net.wait_distributor(d, "the batch stored", |s| s.batches.total == 1);
    assert!(net.stop(d).success());
    let changed = net.distributor_config("reward_per_job = 200\n");
    let node = net.node(d);
    let out = net.cli(&[
        "run",
        "--config",
        changed.to_str().unwrap(),
        "--data-dir",
        node.data_dir.to_str().unwrap(),
        "--key",
        node.key.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("reward_per_job 100 → 200"), "{stderr}");
    assert!(stderr.contains("1 batch(es) are still open"), "{stderr}");
    assert_eq!(
        stderr
            .trim()
            .lines()
            .filter(|l| l.starts_with("error:"))
            .count(),
        1,
        "one clear line: {stderr}"
    );
    net.distributor_config("");
    net.restart(d, None);
    net.wait_distributor(d, "running again", |s| s.batches.open == 1);
}

/// Shutdown drains in order: a proof the distributor has just accepted when
/// SIGTERM arrives is still stored, paid, and its prover told — what the
/// ledger credits and what the provers heard as `Accepted` agree exactly.
#[test]
fn a_proof_accepted_at_shutdown_is_paid_and_its_prover_told() {
    use std::time::Duration;

    let mut net = Net::new();
    let (d, key, boot) = net.start_distributor("batch_txs = 16\n", &[]);
    let provers = [
        net.start_prover("prover0", &key, &boot, &[]),
        net.start_prover("prover1", &key, &boot, &[]),
    ];
    net.wait_distributor(d, "provers connected", |s| s.peers >= 2);
    net.submit_batch(d);
    // Stop the distributor the moment it accepts its first proof: the
    // proof's record, its credit and its verdict are still on their way.
    support::eventually("a proof accepted", support::DEADLINE, || {
        net.log("distributor")
            .contains("proof accepted")
            .then_some(())
    });
    assert!(net.stop(d).success(), "{}", net.log("distributor"));
    let paid: u64 = support::ledger_balances(&net, &net.node(d).data_dir)
        .values()
        .sum();
    assert!(
        paid >= REWARD,
        "the accepted proof was paid\n{}",
        net.logs()
    );
    // The provers' status catches up within a refresh or two.
    let told = || -> u64 {
        provers
            .iter()
            .map(|p| net.prover_status(*p).jobs.accepted.unwrap())
            .sum()
    };
    // Within a few refreshes, or the assertion below says what differs.
    support::settles(Duration::from_secs(10), || told() * REWARD == paid);
    let statuses: Vec<_> = provers.iter().map(|p| net.prover_status(*p)).collect();
    assert_eq!(
        told() * REWARD,
        paid,
        "credited but not told, or told but not credited\n{statuses:#?}\n{}",
        net.logs()
    );
    assert!(
        !net.log("distributor").contains("answers not yet sent"),
        "{}",
        net.log("distributor")
    );
}

/// The swarm loop never waits on its role: with the role's event queue full
/// and nobody reading it, the network still answers every request (the
/// overflow `busy`), still serves its own handle, and counts what it did.
#[test]
fn a_full_event_queue_never_stalls_the_network() {
    use node::metrics::Metrics;
    use node::network::{self, NetworkConfig};
    use protocol::envelope::{open_any, seal_now};
    use protocol::messages::{AnyMessage, JobRequest};
    use protocol::{SecretKey, Timestamp};
    use std::sync::Arc;
    use std::time::Duration;

    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let server_key = SecretKey::from_seed([21; 32]);
        let server_metrics = Arc::new(Metrics::new());
        // `_events` is never read: the role is "stuck".
        const QUEUE: usize = 8;
        let small_queue = NetworkConfig {
            event_queue: QUEUE,
            ..NetworkConfig::default()
        };
        let (server, _events, _server_task) =
            network::start(&server_key, small_queue, server_metrics.clone())
                .await
                .unwrap();
        let addr = server.listen_addrs().await.unwrap()[0].clone();
        let boot = addr.with(libp2p::multiaddr::Protocol::P2p(server.local_peer_id()));
        let client_key = SecretKey::from_seed([22; 32]);
        let config = NetworkConfig {
            bootstrap: vec![boot],
            ..NetworkConfig::default()
        };
        let (client, _client_events, _client_task) =
            network::start(&client_key, config, Arc::new(Metrics::new()))
                .await
                .unwrap();
        client.locate(server.local_peer_id()).await.unwrap();
        // Under libp2p's 100 concurrent streams per connection: all get in.
        let total = QUEUE + 60;
        let mut answers = tokio::task::JoinSet::new();
        for _ in 0..total {
            let client = client.clone();
            let peer = server.local_peer_id();
            let bytes = seal_now(&JobRequest { circuits: vec![] }, &client_key);
            answers.spawn(async move { client.request(peer, bytes).await });
        }
        let mut busy = 0;
        let mut answered = 0;
        while answered < total - QUEUE {
            let answer = tokio::time::timeout(Duration::from_secs(60), answers.join_next())
                .await
                .unwrap_or_else(|_| panic!("only {answered} of {total} requests answered"));
            if let Some(Ok(Ok(bytes))) = answer {
                let signed = open_any(&bytes, Timestamp::now(), Default::default()).unwrap();
                assert_eq!(signed.signer(), server_key.public());
                if let AnyMessage::Rejected(r) = signed.body {
                    assert_eq!(r.reason, "busy");
                    busy += 1;
                }
                answered += 1;
            }
            // The network task keeps serving its own handle meanwhile.
            if answered % 10 == 0 {
                server.listen_addrs().await.unwrap();
            }
        }
        assert_eq!(
            busy,
            total - QUEUE,
            "every request past the queue is answered busy"
        );
        assert!(
            server_metrics
                .render()
                .contains("crowdprove_overflow_total{policy=\"request_busy\"}"),
            "{}",
            server_metrics.render()
        );
    });
}

/// Proof submissions have a lane of their own: with the role's event queue
/// full of polls nobody reads, the polls past it are answered `busy` while
/// a proof still reaches the role, and the role is answered when it replies
/// by the request's id.
#[test]
fn a_flood_of_polls_never_crowds_out_a_proof() {
    use node::metrics::Metrics;
    use node::network::{self, Inbox, NetworkConfig, NetworkEvent};
    use protocol::envelope::{open_any, seal_now};
    use protocol::messages::{AnyMessage, JobRequest, ProofSubmission, Rejected};
    use protocol::{BatchId, JobId, RequestId, SecretKey, Timestamp};
    use std::sync::Arc;

    tokio::runtime::Runtime::new().unwrap().block_on(async {
        const QUEUE: usize = 8;
        let server_key = SecretKey::from_seed([23; 32]);
        let config = NetworkConfig {
            event_queue: QUEUE,
            proof_lane: QUEUE,
            ..NetworkConfig::default()
        };
        let (
            server,
            Inbox {
                events: _polls,
                mut proofs,
            },
            _task,
        ) = network::start(&server_key, config, Arc::new(Metrics::new()))
            .await
            .unwrap();
        let addr = server.listen_addrs().await.unwrap()[0].clone();
        let boot = addr.with(libp2p::multiaddr::Protocol::P2p(server.local_peer_id()));
        let client_key = SecretKey::from_seed([24; 32]);
        let config = NetworkConfig {
            bootstrap: vec![boot],
            ..NetworkConfig::default()
        };
        let (client, _inbox, _client_task) =
            network::start(&client_key, config, Arc::new(Metrics::new()))
                .await
                .unwrap();
        let peer = server.local_peer_id();
        client.locate(peer).await.unwrap();
        let poll = || seal_now(&JobRequest { circuits: vec![] }, &client_key);
        let mut polls = tokio::task::JoinSet::new();
        for _ in 0..QUEUE + 20 {
            let (client, bytes) = (client.clone(), poll());
            polls.spawn(async move { client.request(peer, bytes).await });
        }
        // The queue is full and 20 polls are refused before the proof goes.
        let mut busy = 0;
        while busy < 20 {
            let answer = tokio::time::timeout(support::DEADLINE, polls.join_next())
                .await
                .expect("the overflow is answered at once")
                .unwrap()
                .unwrap()
                .unwrap();
            let signed = open_any(&answer, Timestamp::now(), Default::default()).unwrap();
            assert!(matches!(signed.body, AnyMessage::Rejected(r) if r.reason == "busy"));
            busy += 1;
        }
        let proof = ProofSubmission {
            job: JobId::new(BatchId(1), 0),
            request: RequestId(1),
            proof: vec![0; 128],
            payout: None,
        };
        let sent = {
            let (client, bytes) = (client.clone(), seal_now(&proof, &client_key));
            tokio::spawn(async move { client.request(peer, bytes).await })
        };
        let Some(NetworkEvent::Request { reply, bytes, .. }) =
            tokio::time::timeout(support::DEADLINE, proofs.recv())
                .await
                .unwrap()
        else {
            panic!("the proof did not reach the role");
        };
        assert_eq!(
            protocol::envelope::peek_kind(&bytes),
            Ok(protocol::messages::Kind::ProofSubmission)
        );
        let ack = Rejected {
            reason: "test".into(),
        };
        server.respond(reply, seal_now(&ack, &server_key));
        let answer = tokio::time::timeout(support::DEADLINE, sent)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let signed = open_any(&answer, Timestamp::now(), Default::default()).unwrap();
        assert!(matches!(signed.body, AnyMessage::Rejected(r) if r.reason == "test"));
    });
}

#[test]
fn a_distributor_with_a_200_000_account_state_restarts() {
    // Depth 18 holds 262,144 accounts; the saved state is past the 8 MiB a
    // network message may be.
    let mut net = Net::new();
    let keys = net.keys.to_str().unwrap().to_string();
    let out = net.cli(&[
        "setup",
        "--circuit",
        "transfer-d18-k1",
        "--insecure-seed",
        "1",
        "--out",
        &keys,
    ]);
    assert!(out.status.success(), "{out:?}");
    let (d, _, _) = net.start_distributor(
        "circuit = \"transfer-d18-k1\"\naccounts = 200000\nbatch_txs = 4\n",
        &[],
    );
    let loaded = |net: &Net, times: usize| {
        support::eventually("the state loaded", Duration::from_secs(600), || {
            (net.log("distributor").matches("state loaded").count() >= times).then_some(())
        })
    };
    loaded(&net, 1);
    net.submit_batch(d);
    net.wait_distributor(d, "the batch stored", |s| s.batches.total == 1);
    assert!(net.stop(d).success());
    net.restart(d, None);
    loaded(&net, 2);
    // The restored state is the one the first batch left: the next batch
    // builds on it.
    net.submit_batch(d);
    let status = net.wait_distributor(d, "the second batch stored", |s| s.batches.total == 2);
    assert_eq!(status.batches.proven, 0, "{status:#?}");
    let log = net.log("distributor");
    assert!(!log.contains("ERROR"), "{log}");
    assert!(net.stop(d).success());
}

/// Identities are free, addresses are not: while one identity from an
/// address holds its inbound connection, a second identity from the same
/// address is refused (and counted) and the first keeps being served; once
/// the first leaves, its place is free again.
#[test]
fn connections_past_the_per_address_cap_are_refused() {
    use protocol::SecretKey;
    use protocol::envelope::seal_now;
    use protocol::messages::{AnyMessage, JobRequest};

    let mut net = Net::new();
    let (d, key_hex, boot) = net.start_distributor("", &["--max-connections-per-ip", "1"]);
    let key = node::config::parse_public_key(&key_hex).unwrap();
    let distributor = node::network::peer_id_of(&key);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let first = SecretKey::from_seed([41; 32]);
        let client = support::Client::connect(&first, &boot, key).await;
        let ask_for_work = || seal_now(&JobRequest { circuits: vec![] }, &first);
        // An answer means the distributor has counted the first connection
        // (the dialler can see it established a moment before the listener).
        let answer = client.ask(ask_for_work()).await;
        assert!(
            matches!(answer, AnyMessage::NoWork(_)),
            "{:?}",
            answer.kind()
        );

        let second = SecretKey::from_seed([42; 32]);
        let config = node::network::NetworkConfig {
            bootstrap: vec![boot.parse().unwrap()],
            ..node::network::NetworkConfig::default()
        };
        let metrics = std::sync::Arc::new(node::metrics::Metrics::new());
        let (other, _events, _task) = node::network::start(&second, config, metrics)
            .await
            .unwrap();
        // It keeps dialling (a locate retries every tick) and never gets in.
        let refused =
            tokio::time::timeout(Duration::from_secs(10), other.locate(distributor)).await;
        assert!(refused.is_err(), "a second identity got in: {refused:?}");
        let answer = client.ask(ask_for_work()).await;
        assert!(
            matches!(answer, AnyMessage::NoWork(_)),
            "{:?}",
            answer.kind()
        );

        // The first leaves: its place goes to the one still trying.
        client.net.stop().await;
        tokio::time::timeout(support::DEADLINE, other.locate(distributor))
            .await
            .expect("the second got in once the first left")
            .unwrap();
    });
    let metrics = net.metrics(d);
    assert!(metrics.contains("reason=\"connection_cap\""), "{metrics}");
    drop(runtime);
}

/// A fresh identity comes with a fresh per-peer allowance, so an address
/// has a request rate of its own: eight identities from 127.0.0.1, each
/// asking once, share its burst (two seconds of its rate).
#[test]
fn requests_past_the_per_address_rate_are_refused() {
    use protocol::SecretKey;
    use protocol::envelope::seal_now;
    use protocol::messages::{AnyMessage, JobRequest};

    let mut net = Net::new();
    let (d, key_hex, boot) = net.start_distributor("rate_limit_per_ip_per_sec = 2", &[]);
    let key = node::config::parse_public_key(&key_hex).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let answers: Vec<AnyMessage> = runtime.block_on(async {
        let mut clients = Vec::new();
        for i in 0..8 {
            let secret = SecretKey::from_seed([90 + i; 32]);
            let client = support::Client::connect(&secret, &boot, key).await;
            clients.push((secret, client));
        }
        let asks = clients
            .iter()
            .map(|(secret, client)| client.ask(seal_now(&JobRequest { circuits: vec![] }, secret)));
        futures::future::join_all(asks).await
    });
    let refused = answers
        .iter()
        .filter(|a| matches!(a, AnyMessage::Rejected(r) if r.reason == "rate_limited"))
        .count();
    let served = answers
        .iter()
        .filter(|a| matches!(a, AnyMessage::NoWork(_)))
        .count();
    // The burst is 4; the refill while eight asks land is well under 4.
    assert!(
        (4..=7).contains(&served) && served + refused == 8,
        "{served} served, {refused} refused"
    );
    let metrics = net.metrics(d);
    assert!(metrics.contains("reason=\"rate_limited\""), "{metrics}");
    drop(runtime);
}

/// 20 fake provider records under the distributors' key, published before
/// the distributor's own: a prover that bootstraps through one of the fakes
/// still reaches the distributor (it pins its peer id and looks it up) and
/// proves a batch, within 60 s of starting.
#[test]
fn fake_provider_records_cannot_hide_the_distributor() {
    use protocol::SecretKey;
    use std::time::Instant;

    const FAKES: u8 = 20;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut fakes = Vec::new();
    let mut first: Option<String> = None;
    for i in 0..FAKES {
        let secret = SecretKey::from_seed([60 + i; 32]);
        let config = node::network::NetworkConfig {
            bootstrap: first.iter().map(|a| a.parse().unwrap()).collect(),
            ..node::network::NetworkConfig::default()
        };
        let metrics = std::sync::Arc::new(node::metrics::Metrics::new());
        let (handle, events, task) = runtime
            .block_on(node::network::start(&secret, config, metrics))
            .unwrap();
        handle.provide().unwrap();
        let addr = runtime.block_on(handle.listen_addrs()).unwrap()[0].clone();
        let peer = node::network::peer_id_of(&secret.public());
        first.get_or_insert(format!("{addr}/p2p/{peer}"));
        fakes.push((handle, events, task, format!("{addr}/p2p/{peer}")));
    }
    // Every fake is in the DHT (and so has published) before the distributor.
    support::eventually("the fakes joined", Duration::from_secs(30), || {
        fakes
            .iter()
            .all(|(handle, ..)| handle.stats().peers >= 1)
            .then_some(())
    });
    let mut net = Net::new();
    let first = first.unwrap();
    let (d, key, _) = net.start_distributor("", &["--bootstrap", &first]);
    let through = fakes[FAKES as usize / 2].3.clone();
    let started = Instant::now();
    let prover = net.start_prover("prover", &key, &through, &[]);
    net.submit_batch(d);
    net.wait_distributor(d, "the batch proven", |s| proven(s, 1));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(60), "took {took:?}");
    let status = net.distributor_status(d);
    let row = prover_row(&status, &net.node(prover).public_key()).unwrap();
    assert_eq!(row.accepted, JOBS, "{status:#?}");
    drop(fakes);
    drop(runtime);
}

/// `POST /batch` refusals against a running distributor: each is a 4xx and
/// none creates a batch; the honest request after them does.
#[test]
fn the_api_refuses_unsafe_or_malformed_batch_requests_and_creates_nothing() {
    use std::io::{Read, Write};

    let mut net = Net::new();
    let (d, _, _) = net.start_distributor("", &[]);
    let api = net.node(d).info().api;
    let token = net.api_token(d);
    let auth = format!("Authorization: Bearer {}\r\n", token.as_str());
    let status_of = |request: &[u8]| -> u16 {
        let mut stream = std::net::TcpStream::connect(api).unwrap();
        stream.write_all(request).unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer);
        text.split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {text:?}"))
    };
    let post = |headers: &str, body: &[u8]| -> u16 {
        let mut request = format!(
            "POST /batch HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Connection: close\r\n\r\n"
        )
        .into_bytes();
        request.extend_from_slice(body);
        status_of(&request)
    };
    let sized = |extra: &str, body: &[u8]| format!("{extra}Content-Length: {}\r\n", body.len());
    // No token.
    assert_eq!(post(&sized("", b""), b""), 401);
    // A web page's cross-origin POST, even carrying the token.
    let origin = format!("{auth}Origin: http://evil.example\r\n");
    assert_eq!(post(&sized(&origin, b""), b""), 403);
    // A chunked body, which would otherwise read as "generate a batch".
    let chunked = format!("{auth}Transfer-Encoding: chunked\r\n");
    assert_eq!(post(&chunked, b"0\r\n\r\n"), 411);
    // An oversized body (refused from its declared length).
    assert_eq!(
        post(&format!("{auth}Content-Length: {}\r\n", 9 << 20), b""),
        413
    );
    // More transfers than announcements may carry.
    let many = format!("[{}{{}}]", "{},".repeat(4096 * 8));
    assert_eq!(post(&sized(&auth, many.as_bytes()), many.as_bytes()), 413);
    // Malformed JSON.
    assert_eq!(post(&sized(&auth, b"[{"), b"[{"), 400);
    let status = net.distributor_status(d);
    assert_eq!(status.batches.total, 0, "{status:#?}");
    // The operator's own request, with the token, is taken.
    let answer = net.submit_batch(d);
    assert!(answer["batch"].is_u64(), "{answer}");
}

/// `POST /batch/witnesses` with `body` to node `index`, with its API token:
/// the status code and the answer's error text.
fn post_witnesses(net: &Net, index: usize, body: &[u8]) -> (u16, String) {
    let api = net.node(index).info().api;
    let token = net.api_token(index);
    let (code, answer) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(node::api::request_with(
            api,
            "POST",
            "/batch/witnesses",
            body,
            Some(&token),
        ))
        .unwrap();
    (code, node::api::error_text(&answer))
}

/// The SHA-256 circom fixture (prover-core/tests/fixtures/circom/sha256,
/// circomlib's SHA-256 of 256 bytes): 156,320 constraints, past 2^17, and
/// 156,809 wires, so each witness is 5,017,964 bytes, far past what travels
/// inside an assignment. Its r1cs and two witnesses are made here once
/// (`scripts/circom-fixtures --out`, about 35 s) and kept while its
/// circuit.circom stays the same; its key is set up by the test.
fn sha256_fixture() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let source = root.join("prover-core/tests/fixtures/circom/sha256/circuit.circom");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("circom-sha256");
    let made = std::fs::read(dir.join("circuit.circom")).ok();
    if made != Some(std::fs::read(&source).unwrap()) || !dir.join("witness-2.wtns").exists() {
        let _ = std::fs::remove_dir_all(&dir);
        let out = std::process::Command::new(root.join("scripts/circom-fixtures"))
            .args(["--out", dir.to_str().unwrap(), "sha256"])
            .current_dir(&root)
            .output()
            .unwrap();
        assert!(out.status.success(), "scripts/circom-fixtures: {out:?}");
    }
    dir
}

#[test]
fn a_circom_circuit_past_2_17_constraints_is_set_up_proven_by_hash_paid_and_exported() {
    let fixture = sha256_fixture();
    let file = |name: &str| fixture.join(name).display().to_string();
    let witness_len = std::fs::metadata(fixture.join("witness-1.wtns"))
        .unwrap()
        .len();
    assert!(witness_len > 4 << 20, "{witness_len}");
    let mut net = Net::new();
    let keys = net.keys.display().to_string();
    // Its key from our own setup: a snarkjs ceremony of 2^18 takes hours.
    let out = net.cli(&[
        "setup",
        "--r1cs",
        &file("circuit.r1cs"),
        "--insecure-seed",
        "1",
        "--out",
        &keys,
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("156320 constraints, 256 public signals"),
        "{text}"
    );
    assert!(text.contains("INSECURE (seed 1)"), "{text}");
    let circuit = text
        .lines()
        .find_map(|l| l.strip_prefix("circuit"))
        .unwrap()
        .trim()
        .to_string();
    let (d, key, boot) = net.start_distributor(&format!("circuit = \"{circuit}\"\n"), &[]);
    let provers: Vec<usize> = (0..2)
        .map(|i| net.start_prover(&format!("prover{i}"), &key, &boot, &[]))
        .collect();
    let data_dir = net.node(d).data_dir.display().to_string();
    let out = net.cli(&[
        "submit",
        &file("witness-1.wtns"),
        &file("witness-2.wtns"),
        "--data-dir",
        &data_dir,
    ]);
    assert!(out.status.success(), "{out:?}");
    net.wait_distributor(d, "the SHA-256 batch proven", |s| proven(s, 1));

    // Each assignment named its witness by hash; its holder fetched the
    // chunks and proved them.
    let logs = net.logs();
    let fetched: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("fetching the witness"))
        .collect();
    assert!(fetched.len() >= 2, "{logs}");
    assert!(
        fetched.iter().all(|l| l.contains(&witness_len.to_string())),
        "{logs}"
    );
    // Every byte of them crossed as witness chunks: each job's witness at
    // least once, and what the provers fetched is what was served (once a
    // chunk still on its way to a backup holder has landed).
    let counter = |node: usize, name: &str| -> u64 {
        net.metrics(node)
            .lines()
            .find_map(|l| l.strip_prefix(&format!("crowdprove_{name}_total ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} metric"))
    };
    let bytes = || {
        let served = counter(d, "witness_bytes_served");
        let got: u64 = provers
            .iter()
            .map(|&p| counter(p, "witness_bytes_fetched"))
            .sum();
        (served, got)
    };
    support::settles(Duration::from_secs(10), || {
        let (served, got) = bytes();
        served == got
    });
    let (served, got) = bytes();
    assert!(served >= 2 * witness_len, "{served} of 2 × {witness_len}");
    assert_eq!(got, served);
    for j in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let job = format!("b1/j{j}");
        let out_dir = dir.path().display().to_string();
        let out = net.cli(&[
            "proof",
            "--job",
            &job,
            "--out",
            &out_dir,
            "--data-dir",
            &data_dir,
        ]);
        assert!(out.status.success(), "{out:?}");
        assert!(interop::snarkjs_accepts(dir.path()), "{job}");
    }
    for &p in &provers {
        assert!(net.stop(p).success(), "{}", net.logs());
    }
    assert!(net.stop(d).success(), "{}", net.logs());
    check_ledger(&net, net.node(d), 1, 2, REWARD);
}

#[test]
fn a_network_proves_circom_jobs_that_snarkjs_and_the_evm_verifier_accept() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../prover-core/tests/fixtures/circom");
    let fixture = |name: &str| fixtures.join(name).display().to_string();
    let mut net = Net::new();
    let keys = net.keys.display().to_string();
    let zkey = fixture("chain/circuit.zkey");
    let out = net.cli(&["setup", "--zkey", &zkey, "--out", &keys]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--zkey needs --r1cs"),
        "{err}"
    );
    let other = fixture("multiplier/circuit.r1cs");
    let out = net.cli(&["setup", "--zkey", &zkey, "--r1cs", &other, "--out", &keys]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("is not the circuit of"),
        "{err}"
    );
    let r1cs = fixture("chain/circuit.r1cs");
    let out = net.cli(&["setup", "--zkey", &zkey, "--r1cs", &r1cs, "--out", &keys]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{out:?}");
    let circuit = text
        .lines()
        .find_map(|l| l.strip_prefix("circuit"))
        .unwrap()
        .trim()
        .to_string();
    assert!(
        circuit.starts_with("circom-") && circuit.ends_with("-p2"),
        "{text}"
    );
    assert!(text.contains("3000 constraints"), "{text}");

    let (d, key, boot) = net.start_distributor(&format!("circuit = \"{circuit}\"\n"), &[]);
    let provers: Vec<usize> = (0..2)
        .map(|i| net.start_prover(&format!("prover{i}"), &key, &boot, &[]))
        .collect();
    let data_dir = net.node(d).data_dir.display().to_string();

    // A batch holding one witness of another circuit is refused whole,
    // naming it, and creates nothing.
    let body = [
        std::fs::read(fixture("chain/witness-1.wtns")).unwrap(),
        std::fs::read(fixture("multiplier/witness-1.wtns")).unwrap(),
    ]
    .concat();
    let out = net.cli(&[
        "submit",
        &fixture("chain/witness-1.wtns"),
        &fixture("multiplier/witness-1.wtns"),
        "--data-dir",
        &data_dir,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("422") && err.contains("witness 1"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // So is a witness that fits but breaks a constraint.
    let mut broken = std::fs::read(fixture("chain/witness-2.wtns")).unwrap();
    let last = broken.len() - 32;
    broken[last] ^= 1;
    let broken_path = net.keys.join("broken.wtns");
    std::fs::write(&broken_path, &broken).unwrap();
    let out = net.cli(&[
        "submit",
        broken_path.to_str().unwrap(),
        "--data-dir",
        &data_dir,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("witness 0: constraint") && err.contains("does not satisfy"),
        "{err}"
    );
    let (code, _) = net.post_batch(d, &body[..body.len() - 3]).unwrap();
    assert_eq!(code, 400, "transfers JSON expected at /batch");
    // Truncated, malformed and oversized witness files, posted straight to
    // `POST /batch/witnesses`: each refused whole with a 4xx naming the file
    // and the fault, and none creates a batch.
    let good = std::fs::read(fixture("chain/witness-1.wtns")).unwrap();
    let mut prime = good.clone();
    prime[40] ^= 1; // inside the header's field prime
    let mut unreduced = good.clone();
    let last = unreduced.len() - 32;
    unreduced[last..].fill(0xff); // a value above the prime
    // A well-formed wtns of 33,000 values (1,056,076 bytes): a witness of
    // another circuit, its length named.
    let mut huge = good.clone();
    let values = 33_000u32;
    huge[60..64].copy_from_slice(&values.to_le_bytes());
    huge[68..76].copy_from_slice(&(u64::from(values) * 32).to_le_bytes());
    huge.resize(76 + values as usize * 32, 0);
    let truncated = [&good[..], &good[..good.len() - 3]].concat();
    for (body, code, says) in [
        (
            &truncated[..],
            400,
            "witness 1: section 2 runs past the end of the file",
        ),
        (&good[..10], 400, "witness 0: truncated header"),
        (
            &b"not a witness file"[..],
            400,
            "witness 0: not a wtns file (bad magic)",
        ),
        (&[][..], 400, "no witness files"),
        (&prime[..], 422, "witness 0: not a BN254 witness"),
        (
            &unreduced[..],
            422,
            "witness 0: value 3001 is not a field element",
        ),
        (
            &huge[..],
            422,
            "witness 0: 33000 values, the circuit takes 3002",
        ),
    ] {
        let (got, text) = post_witnesses(&net, d, body);
        assert_eq!(got, code, "{says}: {text}");
        assert!(text.contains(says), "expected {says:?}, got {text:?}");
        assert_eq!(text.lines().count(), 1, "{text}");
    }
    assert_eq!(net.distributor_status(d).batches.total, 0);

    let witnesses: Vec<String> = (1..=4)
        .map(|i| fixture(&format!("chain/witness-{i}.wtns")))
        .collect();
    let mut args: Vec<&str> = vec!["submit"];
    args.extend(witnesses.iter().map(String::as_str));
    args.extend(["--data-dir", &data_dir]);
    let out = net.cli(&args);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("batch 1: 4 jobs"),
        "{out:?}"
    );
    net.wait_distributor(d, "the circom batch proven", |s| proven(s, 1));

    // Every accepted proof comes out in snarkjs JSON; snarkjs and the
    // Solidity verifier in the EVM accept it and refuse a tampered signal.
    for j in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        let job = format!("b1/j{j}");
        let out_dir = dir.path().display().to_string();
        let out = net.cli(&[
            "proof",
            "--job",
            &job,
            "--out",
            &out_dir,
            "--data-dir",
            &data_dir,
        ]);
        assert!(out.status.success(), "{out:?}");
        assert!(interop::snarkjs_accepts(dir.path()), "{job}");
        let (valid, gas) = interop::evm_verifies(dir.path());
        assert!(valid, "{job}: the EVM verifier refused it");
        assert!((150_000..400_000).contains(&gas), "{gas} gas");
        interop::tamper_public(dir.path());
        assert!(!interop::snarkjs_accepts(dir.path()), "{job} tampered");
        assert!(!interop::evm_verifies(dir.path()).0, "{job} tampered");
    }
    let out = net.cli(&["proof", "--job", "b1/j9", "--data-dir", &data_dir]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no job b1/j9"),
        "{out:?}"
    );

    for &p in &provers {
        assert!(net.stop(p).success(), "{}", net.logs());
    }
    assert!(net.stop(d).success(), "{}", net.logs());
    check_ledger(&net, net.node(d), 1, 4, REWARD);
}
