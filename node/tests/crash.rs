//! Crash tests: a distributor SIGKILLed again and again while real provers
//! work, at named crash points (between two durable steps) and at random
//! moments. However it dies, every job is credited exactly once and every
//! prover is paid for exactly the proofs it was told were accepted, with a
//! receipt for each.

#[allow(dead_code, unreachable_pub)]
#[path = "chain_support/anvil.rs"]
mod anvil;
#[allow(dead_code, unreachable_pub)]
#[path = "chain_support/payouts.rs"]
mod payouts;
mod support;

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use node::crash::Point;
use node::status_doc::DistributorStatus;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use support::{Net, check_ledger, ledger_balances};

const REWARD: u64 = 100;
const JOBS: u64 = 8; // batch_txs 8, one transfer per job
const PROVERS: usize = 3;

/// How one run of the distributor ends.
#[derive(Debug, Clone, Copy)]
enum Death {
    /// It kills itself the n-th time it passes the point.
    At(Point, u64),
    /// The test SIGKILLs it this long after it has made progress.
    After(Duration),
}

/// Open jobs: fresh or held.
fn open_jobs(status: &DistributorStatus) -> u64 {
    status.jobs.fresh + status.jobs.pending
}

/// Proofs accepted so far, from the per-prover history: unlike the jobs
/// counts (open batches only) it never goes down.
fn accepted(status: &DistributorStatus) -> u64 {
    status.provers.iter().map(|p| p.accepted).sum()
}

/// Waits until the provers together were told `Accepted` for `total` proofs:
/// a winner whose answer was lost when the distributor died hears it on its
/// retry, which may come after the batch is proven.
fn wait_told(net: &Net, provers: &[usize], total: u64) {
    support::eventually(
        &format!("the provers told of {total} accepted proofs"),
        Duration::from_secs(180),
        || {
            let told: u64 = provers
                .iter()
                .map(|&p| {
                    net.try_prover_status(p)
                        .map_or(0, |s| s.jobs.accepted.unwrap())
                })
                .sum();
            (told == total).then_some(())
        },
    );
}

/// Twenty deaths, seeded: three at each crash point, five at random
/// moments (the first run ends at one).
fn deaths(rng: &mut impl Rng) -> Vec<Death> {
    let mut deaths: Vec<Death> = Point::ALL
        .iter()
        .flat_map(|&p| [p; 3])
        .map(|p| {
            let n = if p == Point::BatchStored {
                1
            } else {
                rng.gen_range(1..=3)
            };
            Death::At(p, n)
        })
        .collect();
    deaths.extend((0..4).map(|_| Death::After(Duration::from_millis(rng.gen_range(0..600)))));
    deaths.shuffle(rng);
    deaths.insert(
        0,
        Death::After(Duration::from_millis(rng.gen_range(0..600))),
    );
    deaths
}

#[test]
fn a_distributor_killed_at_twenty_moments_pays_every_accepted_proof_exactly_once() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(20);
    let deaths = deaths(&mut rng);
    assert_eq!(deaths.len(), 20);
    let mut net = Net::new();
    let (d, key, boot) = net.start_distributor(&format!("batch_txs = {JOBS}"), &[]);
    // It comes back on the same address, which the provers know.
    let listen = boot.split("/p2p/").next().unwrap().to_string();
    let mut args = net.node(d).args.clone();
    args.extend(["--listen".to_string(), listen]);
    let provers: Vec<usize> = (0..PROVERS)
        .map(|i| net.start_prover(&format!("prover{i}"), &key, &boot, &[]))
        .collect();
    net.wait_distributor(d, "provers connected", |s| s.peers >= PROVERS as u64);

    let mut first = true;
    for (round, &death) in deaths.iter().enumerate() {
        if !first {
            net.node_mut(d).env = match death {
                Death::At(point, n) => vec![(
                    node::crash::ENV.to_string(),
                    format!("{}:{n}", point.name()),
                )],
                Death::After(_) => Vec::new(),
            };
            if net.try_restart(d, Some(args.clone())).is_err() {
                // Died while starting (recovery reached the crash point).
                assert!(matches!(death, Death::At(..)), "round {round}: {death:?}");
                continue;
            }
        }
        first = false;
        // Keep work open; a batch-stored death needs a new batch. A node
        // that is to die at a crash point may be gone before its state is
        // loaded.
        let status =
            support::eventually("the state loaded", Duration::from_secs(180), || {
                match net.try_distributor_status(d) {
                    Some(status) => Some(Some(status)),
                    None => net.has_exited(d).then_some(None),
                }
            });
        assert!(
            status.is_some() || matches!(death, Death::At(..)),
            "round {round}: died unasked"
        );
        let short = status.as_ref().is_some_and(|s| open_jobs(s) < 4);
        if short || matches!(death, Death::At(Point::BatchStored, _)) {
            let _ = net.try_submit_batch(d);
        }
        match death {
            Death::At(point, _) => {
                let exit = net.wait_exit(d, &format!("round {round}: the crash at {point:?}"));
                assert_eq!(exit.signal(), Some(9), "round {round}: {exit}");
            }
            Death::After(delay) => {
                let before = status.as_ref().map_or(0, accepted);
                net.wait_distributor(d, &format!("round {round}: progress"), |s| {
                    accepted(s) > before
                });
                std::thread::sleep(delay);
                net.kill(d);
            }
        }
    }
    let log = net.log("distributor");
    assert_eq!(
        log.matches("crash point reached").count(),
        15,
        "every crash point was reached"
    );

    // The last run: no crash; every batch stored is proven and paid.
    net.node_mut(d).env.clear();
    net.restart(d, Some(args));
    let status = net.wait_distributor(d, "every batch proven", |s| {
        let total = s.batches.total;
        total > 0 && s.batches.proven == total
    });
    let batches = status.batches.total;
    eprintln!(
        "{batches} batches of {JOBS} jobs through {} deaths",
        deaths.len()
    );
    wait_told(&net, &provers, batches * JOBS);
    let mut told = Vec::new();
    for &p in &provers {
        let s = net.wait_prover(p, "every receipt fetched", |s| {
            s.awaiting_receipts == Some(0)
        });
        let accepted = s.jobs.accepted.unwrap();
        told.push((net.node(p).public_key(), accepted));
        assert_eq!(s.receipts, Some(accepted), "{s:#?}");
        // The prover's own audit: every receipt file checks, none owed.
        let data = net.node(p).data_dir.to_str().unwrap().to_string();
        let out = net.cli(&[
            "ledger",
            "receipts",
            "--data-dir",
            &data,
            "--distributor",
            &key,
        ]);
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{said}{out:?}");
        let held = format!("{accepted} receipt(s) held");
        let all = format!("crediting {} in all; 0 owed", accepted * REWARD);
        assert!(said.contains(&held) && said.contains(&all), "{said}");
    }
    assert!(net.stop(d).success());
    check_ledger(&net, net.node(d), batches, JOBS, REWARD);
    let balances = ledger_balances(&net, &net.node(d).data_dir);
    for (prover, accepted) in &told {
        assert_eq!(
            balances.get(prover).copied().unwrap_or(0),
            accepted * REWARD,
            "prover {prover}: told accepted {accepted} times; balances {balances:?}"
        );
    }
    let accepted: u64 = told.iter().map(|(_, n)| n).sum();
    assert_eq!(accepted, batches * JOBS, "every job's winner was told");
}

/// A small tmpfs mounted for one test, unmounted however the test ends.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    /// Mounts `mib` MiB at `at`; `None` where mounting is not allowed.
    fn mount(at: &std::path::Path, mib: u32) -> Option<Self> {
        std::fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(at)
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| Self(at.to_path_buf()))
    }

    /// Fills what space is left with a file; returns its path.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        for size in [1 << 20, 4 << 10, 1] {
            let chunk = vec![0u8; size];
            while file.write_all(&chunk).is_ok() {}
        }
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_disk_stops_the_distributor_clearly_and_loses_no_credit() {
    let mut net = Net::new();
    let Some(disk) = SmallDisk::mount(&net.dir.path().join("distributor"), 64) else {
        // Mounting needs root (CI has it); nothing else here can fill a disk.
        eprintln!("skipped: cannot mount a small tmpfs (needs root)");
        return;
    };
    const BATCH: u64 = 8;
    let settings = format!("batch_txs = {BATCH}\nmin_free_disk_mb = 8\n");
    let (d, key, boot) = net.start_distributor(&settings, &[]);
    let listen = boot.split("/p2p/").next().unwrap().to_string();
    let mut args = net.node(d).args.clone();
    args.extend(["--listen".to_string(), listen]);
    let provers: Vec<usize> = (0..2)
        .map(|i| net.start_prover(&format!("prover{i}"), &key, &boot, &[]))
        .collect();
    net.wait_distributor(d, "provers connected", |s| s.peers >= 2);
    net.submit_batch(d);
    net.wait_distributor(d, "some proofs accepted", |s| accepted(s) >= 2);
    // The disk fills while proofs keep arriving: the distributor stops and
    // says why.
    let filler = disk.fill();
    let exit = net.wait_exit(d, "the distributor to stop on the full disk");
    assert!(!exit.success(), "{exit}");
    let log = net.log("distributor");
    let last = log.lines().last().unwrap_or("");
    assert!(
        last.starts_with("error: the disk holding") && last.contains("min_free_disk_mb"),
        "{log}"
    );
    // Space returns; the restarted distributor finishes and pays every job
    // once, and every prover holds a receipt for each proof it was told was
    // accepted.
    std::fs::remove_file(filler).unwrap();
    net.restart(d, Some(args));
    net.wait_distributor(d, "the batch proven", |s| s.batches.proven == 1);
    wait_told(&net, &provers, BATCH);
    let mut told = 0;
    for &p in &provers {
        let s = net.wait_prover(p, "every receipt fetched", |s| {
            s.awaiting_receipts == Some(0)
        });
        let accepted = s.jobs.accepted.unwrap();
        assert_eq!(s.receipts, Some(accepted), "{s:#?}");
        told += accepted;
    }
    assert_eq!(told, BATCH, "every job's winner was told");
    assert!(net.stop(d).success());
    check_ledger(&net, net.node(d), 1, BATCH, REWARD);
    drop(disk);
}

/// How often the settling crash test's chain mines a block.
const BLOCK_SECS: u64 = 2;

/// Waits until distributor `d`, restarted after a kill that left a
/// transaction pending on a chain told to mine nothing, reports that
/// transaction pending; then lets the chain mine again. Says whether it
/// did: not if it died first (at its own crash point), nor if a block
/// begun before mining stopped took the transaction after all.
fn found_pending_then_mine(
    net: &mut Net,
    d: usize,
    anvil: &anvil::Anvil,
    rt: &tokio::runtime::Runtime,
) -> bool {
    let mut found = false;
    let settled = support::settles(support::DEADLINE, || {
        found = net
            .try_distributor_status(d)
            .and_then(|s| s.chain)
            .is_some_and(|c| c.pending_txs > 0);
        found || net.has_exited(d) || rt.block_on(anvil.pending_of(0)) == 0
    });
    assert!(
        settled,
        "the transaction a kill left pending was not reported after the restart\n{}",
        net.logs()
    );
    rt.block_on(anvil.mine_every(BLOCK_SECS));
    found
}

/// The chain client SIGKILLed at its worst moments: between sending a
/// chain transaction (a settlement or an anchor) and seeing its receipt —
/// the chain then mines nothing until the distributor is back and has
/// found the transaction pending — and right after a ledger block is cut,
/// before its anchoring. Each time it restarts from the
/// chain's state: every batch ends settled and every block anchored exactly
/// once, and the operator's account sent exactly those transactions and
/// the two deployments.
#[test]
fn a_distributor_killed_while_settling_lands_every_batch_and_block_once() {
    use alloy::providers::Provider;

    // A kill right after a send stops the chain's blocks until the restart
    // has found the transaction pending. (Before, the chain mined on
    // through the restart: a kill left its transaction pending only when
    // the restart beat the next block, and with 10 s blocks all three kills
    // after a send could miss, one run in a few dozen on a loaded machine.)
    let rt = tokio::runtime::Runtime::new().unwrap();
    let anvil = anvil::Anvil::start_with(&["--block-time", &BLOCK_SECS.to_string()]);
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("operator.key");
    std::fs::write(&key_file, anvil.key(0)).unwrap();
    let key_path = key_file.to_str().unwrap();
    let mut net = Net::new();
    let chain = ["--rpc-url", anvil.url.as_str(), "--account-key", key_path];
    // Few ledger blocks: each anchor waits for a chain block.
    let (d, key, boot) = net.start_distributor("block_interval_ms = 3000", &chain);
    let listen = boot.split("/p2p/").next().unwrap().to_string();
    let mut args = net.node(d).args.clone();
    args.extend(["--listen".to_string(), listen]);
    let prover = net.start_prover("prover", &key, &boot, &[]);
    net.wait_distributor(d, "the prover connected", |s| s.peers >= 1);
    net.submit_batch(d);
    // Both contracts deployed and their addresses kept before the first
    // kill (a kill between a deployment and that write deploys again).
    net.wait_distributor(d, "the contracts deployed", |s| {
        s.chain.as_ref().is_some_and(|c| c.settlement.is_some())
    });
    let deaths = [
        (Point::ChainSent, 1),
        (Point::ChainSent, 2),
        (Point::BlockCut, 1),
        (Point::ChainSent, 3),
    ];
    net.kill(d);
    let (mut left_pending, mut found_pending) = (false, 0);
    for (round, (point, n)) in deaths.into_iter().enumerate() {
        net.node_mut(d).env = vec![(
            node::crash::ENV.to_string(),
            format!("{}:{n}", point.name()),
        )];
        let restarted = net.try_restart(d, Some(args.clone())).is_ok();
        if std::mem::take(&mut left_pending) {
            if restarted {
                found_pending += u32::from(found_pending_then_mine(&mut net, d, &anvil, &rt));
            } else {
                rt.block_on(anvil.mine_every(BLOCK_SECS));
            }
        }
        if !restarted {
            continue; // died while starting up, at the point
        }
        // Keep work open until it dies: the n-th transaction may need
        // another batch once this one is settled. One batch at a time, each
        // once the last is listed.
        let mut asked_at = None;
        let died = support::settles(support::DEADLINE, || {
            if net.has_exited(d) {
                return true;
            }
            if let Some(s) = net.try_distributor_status(d) {
                let listed = asked_at.is_none_or(|total| s.batches.total > total);
                if listed && open_jobs(&s) == 0 && net.try_submit_batch(d).is_some() {
                    asked_at = Some(s.batches.total);
                }
            }
            false
        });
        assert!(died, "round {round}: no crash at {point:?}\n{}", net.logs());
        if point == Point::ChainSent {
            rt.block_on(anvil.mine_every(0));
            left_pending = rt.block_on(anvil.pending_of(0)) > 0;
            if !left_pending {
                // Mined between the send and the kill's detection.
                rt.block_on(anvil.mine_every(BLOCK_SECS));
            }
        }
        let exit = net.wait_exit(d, &format!("round {round}: the crash at {point:?}"));
        assert_eq!(exit.signal(), Some(9), "round {round}: {exit}");
    }
    net.node_mut(d).env.clear();
    net.restart(d, Some(args));
    if left_pending {
        found_pending += u32::from(found_pending_then_mine(&mut net, d, &anvil, &rt));
    }
    eprintln!("{found_pending} restarts found the transaction a kill left pending");
    assert!(
        found_pending >= 1,
        "no restart found the transaction a kill left pending"
    );
    let _ = net.try_submit_batch(d);
    let status = net.wait_distributor(d, "every batch settled, every block anchored", |s| {
        let Some(chain) = &s.chain else { return false };
        let proven = s.batches.proven;
        s.batches.total == proven
            && proven >= 2
            && chain.settled_batch == proven
            && chain.anchored_height == s.ledger.height
            && chain.pending_txs == 0
    });
    let proven = status.batches.proven;
    let chain = status.chain.unwrap();
    let (settlement, status_payouts) = (chain.settlement.unwrap(), chain.payouts.unwrap());
    let log = net.log("distributor");
    assert_eq!(
        log.matches("crash point reached").count(),
        deaths.len(),
        "every crash point was reached"
    );
    assert!(
        log.contains("pending: waiting for them, sending nothing new"),
        "a transaction sent before a kill was found pending after the restart"
    );
    net.stop(prover);
    assert!(net.stop(d).success());
    // On chain, once it stopped: the operator's account sent two
    // deployments, one settlement per batch settled and the anchors of the
    // blocks anchored (each block once, in order, several to a
    // transaction), and nothing else (a duplicate would have been a
    // transaction too, reverted or not).
    let provider = anvil.provider(1);
    let settlement: alloy::primitives::Address = settlement.parse().unwrap();
    let payouts: alloy::primitives::Address = status_payouts.parse().unwrap();
    let (settled, anchored, nonce) = rt.block_on(async {
        let contract = node::chain::Settlement::new(settlement, provider.clone());
        let payouts = node::chain::Payouts::new(payouts, provider.clone());
        let operator = anvil.address(0);
        (
            contract.lastBatch().call().await.unwrap(),
            payouts.lastHeight().call().await.unwrap(),
            provider.get_transaction_count(operator).await.unwrap(),
        )
    });
    let anchors = rt.block_on(payouts::anchored_once(
        &node::chain::Payouts::new(payouts, provider.clone()),
        anchored,
    ));
    assert!(settled >= proven, "settled {settled} of {proven}");
    assert_eq!(
        nonce,
        2 + settled + anchors,
        "settled {settled}, anchored {anchored} in {anchors} transaction(s)"
    );
}
