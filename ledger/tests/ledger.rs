//! The ledger's rules, queries, receipts and open errors, on real RocksDB.

use std::path::Path;
use std::sync::OnceLock;

use ledger::{
    BindPayout, Credit, Error, FsyncPolicy, Ledger, LedgerConfig, Penalty, Receipt, ReceiptError,
    Tx, TxLocation, verify_balance_proof, verify_receipt,
};
use proptest::prelude::*;
use protocol::{
    BatchId, ContentHash, JobId, PayoutAddress, PayoutBinding, PublicKey, SecretKey, Timestamp,
};

fn distributor() -> SecretKey {
    SecretKey::from_seed([7; 32])
}

fn prover(n: u8) -> SecretKey {
    SecretKey::from_seed([100 + n; 32])
}

fn config(max_block_txs: usize) -> LedgerConfig {
    LedgerConfig {
        sync: FsyncPolicy::Never,
        max_block_txs,
        max_block_age_ms: 1000,
    }
}

fn open(path: &Path) -> Ledger {
    Ledger::open(path, &distributor(), config(4)).unwrap()
}

fn job(batch: u64, index: u32) -> JobId {
    JobId::new(BatchId(batch), index)
}

fn credit(p: &PublicKey, batch: u64, index: u32, amount: u64) -> Tx {
    Tx::Credit(Credit::new(
        *p,
        job(batch, index),
        amount,
        ContentHash::of(&index.to_le_bytes()),
    ))
}

fn bind(key: &SecretKey, address: u8, seq: u64) -> Tx {
    Tx::BindPayout(BindPayout {
        prover: key.public(),
        binding: PayoutBinding::signed(key, PayoutAddress([address; 20]), seq),
    })
}

#[test]
fn a_new_ledger_has_a_signed_genesis_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    {
        let l = open(&path);
        assert_eq!(l.height(), 0);
        assert_eq!(l.distributor(), distributor().public());
        let report = l.verify_chain().unwrap();
        assert_eq!((report.blocks, report.txs, report.accounts), (1, 0, 0));
    }
    let l = open(&path);
    assert_eq!(l.height(), 0);
    l.verify_chain().unwrap();
}

#[test]
fn a_job_is_credited_once_ever() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let p = prover(1).public();
    let mut l = open(&path);
    l.append(&[credit(&p, 1, 0, 10)]).unwrap();
    assert!(l.is_credited(job(1, 0)).unwrap());
    // while pending, by another prover, for another amount
    let again = credit(&prover(2).public(), 1, 0, 99);
    assert!(
        matches!(l.append(std::slice::from_ref(&again)), Err(Error::AlreadyCredited { job: j }) if j == job(1, 0))
    );
    l.cut_block().unwrap().unwrap();
    assert!(matches!(
        l.append(std::slice::from_ref(&again)),
        Err(Error::AlreadyCredited { .. })
    ));
    drop(l);
    let mut l = open(&path);
    assert!(matches!(
        l.append(&[again]),
        Err(Error::AlreadyCredited { .. })
    ));
    // twice in one batch, and the batch is all or nothing
    let err = l
        .append(&[
            credit(&p, 2, 0, 1),
            credit(&p, 2, 1, 1),
            credit(&p, 2, 0, 1),
        ])
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyCredited { job: j } if j == job(2, 0)));
    assert!(!l.is_credited(job(2, 0)).unwrap());
    assert!(!l.is_credited(job(2, 1)).unwrap());
    assert_eq!(l.pending_len(), 0);
    assert_eq!(l.balance(&p), 10);
    l.verify_chain().unwrap();
}

#[test]
fn malformed_transactions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir.path().join("l"));
    let p = prover(1).public();
    assert!(matches!(
        l.append(&[credit(&p, 1, 0, 0)]),
        Err(Error::InvalidTx(_))
    ));
    let mut c = Credit::new(p, job(1, 0), 5, ContentHash::of(b"p"));
    c.batch = BatchId(2);
    assert!(matches!(
        l.append(&[Tx::Credit(c)]),
        Err(Error::InvalidTx(_))
    ));
    assert!(matches!(
        l.append(&[credit(&p, 1, 0, 5), bind(&prover(1), 0, 1)]),
        Err(Error::InvalidTx(_))
    ));
    let penalty = Tx::Penalty(Penalty {
        prover: p,
        job: None,
        amount: 1,
        reason: "y".repeat(300),
    });
    assert!(matches!(l.append(&[penalty]), Err(Error::InvalidTx(_))));
    assert_eq!(l.pending_len(), 0);
}

#[test]
fn payout_bindings_need_an_account_the_signature_and_a_higher_seq() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir.path().join("l"));
    let key = prover(1);
    let p = key.public();
    // no account yet: strangers cannot make accounts by binding
    assert!(matches!(
        l.append(&[bind(&key, 0xaa, 1)]),
        Err(Error::NoAccount { .. })
    ));
    // a credit and the binding in one append: the credit makes the account
    l.append(&[credit(&p, 1, 0, 100), bind(&key, 0xaa, 5)])
        .unwrap();
    let account = l.account(&p);
    assert_eq!(
        (account.payout, account.payout_seq),
        (PayoutAddress([0xaa; 20]), 5)
    );
    // signed by someone else
    let mut forged = PayoutBinding::signed(&prover(2), PayoutAddress([0xee; 20]), 9);
    assert!(matches!(
        l.append(&[Tx::BindPayout(BindPayout {
            prover: p,
            binding: forged.clone()
        })]),
        Err(Error::BadSignature { .. })
    ));
    // the prover's own binding, redirected afterwards
    forged = PayoutBinding::signed(&key, PayoutAddress([0xbb; 20]), 9);
    forged.address = PayoutAddress([0xee; 20]);
    assert!(matches!(
        l.append(&[Tx::BindPayout(BindPayout {
            prover: p,
            binding: forged
        })]),
        Err(Error::BadSignature { .. })
    ));
    // the same binding again, or an older one, is a replay
    for seq in [5, 4] {
        assert!(matches!(
            l.append(&[bind(&key, 0xaa, seq)]),
            Err(Error::StaleBinding { recorded: 5, .. })
        ));
    }
    l.cut_block().unwrap();
    assert!(matches!(
        l.append(&[bind(&key, 0xcc, 5)]),
        Err(Error::StaleBinding { .. })
    ));
    // several in one append apply in order, all or nothing
    assert!(matches!(
        l.append(&[bind(&key, 0xcc, 7), bind(&key, 0xdd, 6)]),
        Err(Error::StaleBinding {
            recorded: 7,
            offered: 6,
            ..
        })
    ));
    assert_eq!(l.account(&p).payout, PayoutAddress([0xaa; 20]));
    l.append(&[bind(&key, 0xcc, 6), bind(&key, 0xdd, 7)])
        .unwrap();
    assert_eq!(l.account(&p).payout, PayoutAddress([0xdd; 20]));
    // a binding moves no money
    assert_eq!(l.balance(&p), 100);
    l.cut_block().unwrap();
    let report = l.verify_chain().unwrap();
    assert_eq!((report.credits, report.bindings), (1, 3));
}

#[test]
fn balance_proofs_lead_to_the_signed_balance_root_and_nothing_else_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir.path().join("l"));
    let keys: Vec<SecretKey> = (1..=5).map(prover).collect();
    for (i, key) in keys.iter().enumerate() {
        l.append(&[credit(&key.public(), 1, i as u32, 10 + i as u64)])
            .unwrap();
    }
    l.append(&[bind(&keys[2], 0x22, 1)]).unwrap();
    assert!(
        l.balance_proof(&keys[0].public()).is_none(),
        "not in a block yet"
    );
    l.cut_block().unwrap(); // four transactions a block
    l.cut_block().unwrap();
    l.append(&[credit(&keys[2].public(), 2, 0, 1000)]).unwrap(); // pending: not proven
    let d = distributor().public();
    for key in &keys {
        let proof = l.balance_proof(&key.public()).unwrap();
        assert_eq!(verify_balance_proof(&proof, &d).unwrap(), &proof.account);
    }
    let proof = l.balance_proof(&keys[2].public()).unwrap();
    assert_eq!(proof.account.balance, 12);
    assert_eq!(proof.account.payout, PayoutAddress([0x22; 20]));
    assert_eq!(proof.header, *l.tip());
    // a raised balance, another address, another prover's key, another
    // index, another distributor: none verifies
    let mut raised = proof.clone();
    raised.account.balance += 1;
    let mut moved = proof.clone();
    moved.account.payout = PayoutAddress([0x33; 20]);
    let mut other = proof.clone();
    other.prover = keys[1].public();
    let mut shifted = proof.clone();
    shifted.index += 1;
    for bad in [raised, moved, other, shifted] {
        assert!(verify_balance_proof(&bad, &d).is_err(), "{bad:?}");
    }
    assert!(verify_balance_proof(&proof, &prover(9).public()).is_err());
}

#[test]
fn penalties_and_overflow_keep_balances_in_range() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir.path().join("l"));
    let p = prover(1).public();
    let penalty = |amount| {
        Tx::Penalty(Penalty {
            prover: p,
            job: Some(job(1, 0)),
            amount,
            reason: "invalid proof".into(),
        })
    };
    l.append(&[credit(&p, 1, 0, 10)]).unwrap();
    assert!(matches!(
        l.append(&[penalty(11)]),
        Err(Error::InsufficientBalance { .. })
    ));
    l.append(&[penalty(4)]).unwrap();
    assert_eq!(l.balance(&p), 6);
    assert!(matches!(
        l.append(&[credit(&p, 1, 1, u64::MAX)]),
        Err(Error::Overflow { .. })
    ));
    l.cut_block().unwrap();
    let report = l.verify_chain().unwrap();
    assert_eq!(
        (report.credits, report.penalties, report.total_balance),
        (1, 1, 6)
    );
}

#[test]
fn blocks_are_cut_by_count_and_by_age_and_chain() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir.path().join("l"));
    let p = prover(1).public();
    // later than genesis, so the clock-went-backwards check below means something
    let t0 = Timestamp::now().plus_millis(60_000);
    assert_eq!(l.cut_block_at(t0).unwrap(), None);
    let txs: Vec<Tx> = (0..9).map(|i| credit(&p, 1, i, 1)).collect();
    assert_eq!(l.append_at(&txs, t0).unwrap(), 0..9);
    // max 4 per block: two full blocks now, one transaction left
    let cut = l.maybe_cut_blocks(t0).unwrap();
    assert_eq!(cut.len(), 2);
    assert_eq!(l.pending_len(), 1);
    assert_eq!(cut[0].header.height, 1);
    assert_eq!(cut[1].header.prev_hash, cut[0].hash());
    assert_eq!(cut[1].header.tx_count, 4);
    assert_eq!(l.committed_balance(&p), 8);
    assert_eq!(l.balance(&p), 9);
    // the leftover is cut once it is 1000 ms old
    assert!(l.maybe_cut_blocks(t0.plus_millis(999)).unwrap().is_empty());
    let cut = l.maybe_cut_blocks(t0.plus_millis(1000)).unwrap();
    assert_eq!(cut.len(), 1);
    assert_eq!(cut[0].header.height, 3);
    // a clock that went backwards never makes a block older than its parent
    l.append_at(&[credit(&p, 1, 9, 1)], t0).unwrap();
    let back = l.cut_block_at(Timestamp(5)).unwrap().unwrap();
    assert_eq!(back.header.timestamp, cut[0].header.timestamp);
    let report = l.verify_chain().unwrap();
    assert_eq!(
        (report.height, report.blocks, report.txs, report.pending),
        (4, 5, 10, 0)
    );
}

#[test]
fn history_lists_blocks_then_pending() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir.path().join("l"));
    let (a, b) = (prover(1).public(), prover(2).public());
    l.append(&[
        credit(&a, 1, 0, 5),
        credit(&b, 1, 1, 5),
        credit(&a, 1, 2, 5),
    ])
    .unwrap();
    l.cut_block().unwrap();
    l.append(&[credit(&a, 2, 0, 5)]).unwrap();
    l.cut_block().unwrap();
    l.append(&[credit(&a, 3, 0, 5)]).unwrap();
    let all = l.history(&a, ..).unwrap();
    let locations: Vec<TxLocation> = all.iter().map(|e| e.location).collect();
    assert_eq!(
        locations,
        vec![
            TxLocation::Block {
                height: 1,
                index: 0
            },
            TxLocation::Block {
                height: 1,
                index: 2
            },
            TxLocation::Block {
                height: 2,
                index: 0
            },
            TxLocation::Pending { seq: 4 },
        ]
    );
    assert_eq!(all[3].tx, credit(&a, 3, 0, 5));
    assert_eq!(l.history(&a, 2..).unwrap().len(), 2);
    assert_eq!(l.history(&a, 1..2).unwrap().len(), 2);
    assert_eq!(l.history(&a, 3..10).unwrap().len(), 0);
    assert_eq!(l.history(&b, ..).unwrap().len(), 1);
    assert_eq!(l.history(&prover(3).public(), ..).unwrap().len(), 0);
}

fn ledger_with_receipts(dir: &Path) -> (Ledger, Vec<JobId>) {
    let mut l = Ledger::open(dir.join("l"), &distributor(), config(7)).unwrap();
    let mut jobs = Vec::new();
    for i in 0..20u32 {
        let p = prover((i % 3) as u8).public();
        l.append(&[credit(&p, 4, i, 10 + u64::from(i))]).unwrap();
        jobs.push(job(4, i));
    }
    l.maybe_cut_blocks(Timestamp::now()).unwrap();
    l.cut_block().unwrap();
    (l, jobs)
}

#[test]
fn receipts_verify_offline_and_travel() {
    let dir = tempfile::tempdir().unwrap();
    let (mut l, jobs) = ledger_with_receipts(dir.path());
    assert!(matches!(
        l.receipt(job(9, 9)),
        Err(Error::NotCredited { .. })
    ));
    l.append(&[credit(&prover(0).public(), 5, 0, 1)]).unwrap();
    assert!(matches!(
        l.receipt(job(5, 0)),
        Err(Error::NotYetInBlock { .. })
    ));
    for j in &jobs {
        let receipt = l.receipt(*j).unwrap();
        let bytes = receipt.encode();
        let back = Receipt::decode(&bytes).unwrap();
        assert_eq!(back, receipt);
        let c = verify_receipt(&back, &distributor().public()).unwrap();
        assert_eq!(c.job, *j);
        assert!(matches!(
            verify_receipt(&back, &prover(0).public()),
            Err(Error::Receipt(ReceiptError::WrongDistributor { .. }))
        ));
    }
    // blocks of 7, 7, 6 transactions
    assert_eq!(l.receipt(jobs[19]).unwrap().header.header.height, 3);
    assert!(Receipt::decode(&[0u8; 10]).is_err());
}

/// Every field of a receipt an attacker could change, each changed at `seed`.
fn tamper(r: &mut Receipt, field: usize, seed: u64) {
    let bit = |bytes: &mut [u8]| {
        let i = (seed as usize / 8) % bytes.len();
        bytes[i] ^= 1 << (seed % 8);
    };
    let h = &mut r.header.header;
    match field {
        0 => bit(&mut r.credit.prover.0),
        1 => r.credit.job.index ^= 1 << (seed % 32),
        2 => {
            r.credit.job.batch.0 ^= 1 << (seed % 64);
            r.credit.batch = r.credit.job.batch;
        }
        3 => r.credit.batch.0 ^= 1 << (seed % 64),
        4 => r.credit.amount ^= 1 << (seed % 64),
        5 => bit(&mut r.credit.proof_hash.0),
        6 => r.index ^= 1 << (seed % 3),
        7 => {
            let i = seed as usize % r.proof.len();
            bit(&mut r.proof[i].0);
        }
        8 => {
            r.proof.pop();
        }
        9 => r.proof.push(ContentHash::of(&seed.to_le_bytes())),
        10 => h.version ^= 1 << (seed % 16),
        11 => h.height ^= 1 << (seed % 64),
        12 => bit(&mut h.prev_hash.0),
        13 => h.timestamp.0 ^= 1 << (seed % 64),
        14 => h.tx_count ^= 1 << (seed % 32),
        15 => bit(&mut h.tx_root.0),
        16 => bit(&mut h.balance_root.0),
        17 => h.account_count ^= 1 << (seed % 64),
        18 => bit(&mut h.distributor.0),
        19 => bit(&mut r.header.signature.0),
        _ => unreachable!(),
    }
}

const FIELDS: usize = 20;

/// Receipts for the 20 jobs of [`ledger_with_receipts`], built once.
fn real_receipts() -> &'static [Receipt] {
    static RECEIPTS: OnceLock<Vec<Receipt>> = OnceLock::new();
    RECEIPTS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (l, jobs) = ledger_with_receipts(dir.path());
        jobs.iter().map(|j| l.receipt(*j).unwrap()).collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed), ..ProptestConfig::default() })]

    #[test]
    fn any_tampered_receipt_field_is_rejected(job_index in 0usize..20, field in 0..FIELDS, seed in any::<u64>()) {
        let good = &real_receipts()[job_index];
        prop_assert!(verify_receipt(good, &distributor().public()).is_ok());
        let mut bad = good.clone();
        tamper(&mut bad, field, seed);
        prop_assume!(&bad != good);
        prop_assert!(verify_receipt(&bad, &distributor().public()).is_err(), "field {} accepted", field);
        // and through the wire form as well
        if let Ok(decoded) = Receipt::decode(&bad.encode()) {
            prop_assert!(verify_receipt(&decoded, &distributor().public()).is_err());
        }
    }
}

#[test]
fn balances_export_as_json_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = open(&dir.path().join("l"));
    let (a, b) = (prover(1), prover(2));
    l.append(&[credit(&a.public(), 1, 0, 40), credit(&b.public(), 1, 1, 2)])
        .unwrap();
    l.append(&[bind(&a, 0xab, 1)]).unwrap();
    l.cut_block().unwrap();
    l.append(&[credit(&b.public(), 1, 2, 1000)]).unwrap(); // pending: not exported
    let mut csv = Vec::new();
    l.export_csv(&mut csv).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    let mut rows: Vec<String> = vec![
        format!("{},40,0x{}", a.public().to_hex(), "ab".repeat(20)),
        format!("{},2,0x{}", b.public().to_hex(), "00".repeat(20)),
    ];
    rows.sort();
    assert_eq!(
        csv,
        format!("prover,balance,payout\n{}\n{}\n", rows[0], rows[1])
    );
    let mut json = Vec::new();
    l.export_json(&mut json).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(doc["height"], 1);
    assert_eq!(doc["block_hash"], l.tip().hash().to_hex());
    assert_eq!(doc["distributor"], distributor().public().to_hex());
    let accounts = doc["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 2);
    let total: u64 = accounts
        .iter()
        .map(|a| a["balance"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 42);
}

#[test]
fn another_distributor_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    drop(open(&path));
    let err = Ledger::open(&path, &prover(9), config(4)).unwrap_err();
    assert!(matches!(err, Error::WrongDistributor { .. }), "{err}");
    assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
}

#[test]
fn foreign_and_corrupt_directories_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let check = |path: &Path, expect_foreign: bool| {
        let err = Ledger::open(path, &distributor(), config(4)).unwrap_err();
        assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
        if expect_foreign {
            assert!(matches!(err, Error::Foreign { .. }), "{err}");
        } else {
            assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        }
        let ro = Ledger::open_read_only(path).unwrap_err();
        assert!(ro.to_string().contains(path.to_str().unwrap()), "{ro}");
    };

    // a directory of other files
    let other = dir.path().join("photos");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("cat.jpg"), b"meow").unwrap();
    check(&other, true);
    // a plain file
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    check(&file, true);
    // some other RocksDB database
    let rocks = dir.path().join("rocks");
    {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        let db = rocksdb::DB::open(&opts, &rocks).unwrap();
        db.put(b"k", b"v").unwrap();
    }
    check(&rocks, true);
    // a ledger whose manifest was damaged
    let broken = dir.path().join("broken");
    drop(open(&broken));
    let manifest = std::fs::read_dir(&broken)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("MANIFEST")
        })
        .unwrap();
    std::fs::write(&manifest, b"garbage garbage garbage").unwrap();
    // RocksDB then sees no column families: refused, named, but it cannot tell why
    let err = Ledger::open(&broken, &distributor(), config(4)).unwrap_err();
    assert!(err.to_string().contains(broken.to_str().unwrap()), "{err}");
    // a ledger whose CURRENT names a manifest that is gone
    let lost = dir.path().join("lost");
    drop(open(&lost));
    std::fs::write(lost.join("CURRENT"), b"MANIFEST-999999\n").unwrap();
    check(&lost, false);
    // nothing there: read-only refuses, a writer creates
    let missing = dir.path().join("missing");
    assert!(matches!(
        Ledger::open_read_only(&missing),
        Err(Error::Foreign { .. })
    ));
    assert_eq!(open(&missing).height(), 0);
}

#[test]
fn read_only_reads_but_never_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let mut l = open(&path);
    let p = prover(1).public();
    l.append(&[credit(&p, 1, 0, 3)]).unwrap();
    l.cut_block().unwrap();
    // readable while the distributor still has it open
    let mut ro = Ledger::open_read_only(&path).unwrap();
    assert_eq!(ro.balance(&p), 3);
    assert_eq!(ro.distributor(), distributor().public());
    ro.verify_chain().unwrap();
    verify_receipt(&ro.receipt(job(1, 0)).unwrap(), &distributor().public()).unwrap();
    assert!(matches!(
        ro.append(&[credit(&p, 1, 1, 3)]),
        Err(Error::ReadOnly { .. })
    ));
    assert!(matches!(ro.cut_block(), Err(Error::ReadOnly { .. })));
}

#[test]
fn bad_config_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = Ledger::open(dir.path().join("l"), &distributor(), config(0)).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)), "{err}");
}
