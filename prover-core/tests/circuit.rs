//! The transfer circuit: satisfied by valid chunks, unsatisfiable for each
//! broken rule, and in agreement with the native checker and batch builder.

mod common;

use common::*;
use prover_core::*;

fn accounts(state: &Rollup) -> Vec<Account> {
    (0..state.num_accounts() as u32)
        .map(|i| *state.account(i).unwrap())
        .collect()
}

#[test]
fn builder_chunks_satisfy_the_circuit_and_match_native_execution() {
    let (mut generator, mut state) = small_state(1, 10, 1_000);
    let txs = generator.batch(&state, 5);
    assert_eq!(txs.len(), 5);
    let before = state.root();
    let batch = state.apply_batch(&txs).unwrap();
    assert!(batch.rejected.is_empty());
    assert_eq!(
        batch.jobs.len(),
        3,
        "5 transfers at K=2 make 3 jobs, the last padded"
    );
    assert_eq!(batch.old_root, before);
    assert_eq!(batch.new_root, state.root());
    let mut root = batch.old_root;
    for job in &batch.jobs {
        assert_eq!(job.public.old_root, root);
        root = job.public.new_root;
        let decoded = ChunkWitness::from_bytes(&job.to_bytes()).unwrap();
        assert_eq!(decoded, job.witness);
        assert_eq!(public_inputs(&job.to_bytes()).unwrap(), job.public);
        assert!(satisfied(&job.witness, &job.public));
    }
    assert_eq!(root, batch.new_root);
}

#[test]
fn self_transfer_is_consistent() {
    let (mut generator, mut state) = small_state(2, 4, 1_000);
    let tx = Transfer {
        from: 1,
        to: 1,
        amount: 10,
        fee: 3,
        nonce: 0,
    }
    .sign(generator.key(1));
    let batch = state.apply_batch(&[tx]).unwrap();
    assert_eq!(state.account(1).unwrap().balance, 997);
    assert!(satisfied(&batch.jobs[0].witness, &batch.jobs[0].public));
}

fn check_broken(w: &ChunkWitness, public: &PublicInputs, rule: Rule) {
    assert!(
        !satisfied(w, public),
        "circuit accepted a chunk breaking {rule}"
    );
    match w.execute() {
        Err(Error::Unsatisfied { tx: 0, rule: r }) => assert_eq!(r, rule),
        other => panic!("native check gave {other:?}, expected {rule}"),
    }
}

#[test]
fn forced_valid_chunk_is_satisfied() {
    let (mut generator, state) = small_state(3, 4, 1_000);
    let st = Transfer {
        from: 0,
        to: 2,
        amount: 5,
        fee: 1,
        nonce: 0,
    }
    .sign(generator.key(0));
    let (w, public) = forced_chunk(small_config(), &accounts(&state), st);
    assert!(satisfied(&w, &public));
    assert_eq!(w.execute().unwrap(), public);
}

#[test]
fn bad_signature_is_unsatisfiable() {
    let (mut generator, state) = small_state(4, 4, 1_000);
    let tx = Transfer {
        from: 0,
        to: 2,
        amount: 5,
        fee: 1,
        nonce: 0,
    };
    // Signed by the wrong key.
    let st = tx.sign(generator.key(1));
    let (w, public) = forced_chunk(small_config(), &accounts(&state), st);
    check_broken(&w, &public, Rule::BadSignature);
    // Valid signature on a different message.
    let mut st = tx.sign(generator.key(0));
    st.tx.amount = 6;
    let (w, public) = forced_chunk(small_config(), &accounts(&state), st);
    check_broken(&w, &public, Rule::BadSignature);
}

#[test]
fn wrong_nonce_is_unsatisfiable() {
    let (mut generator, state) = small_state(5, 4, 1_000);
    let st = Transfer {
        from: 0,
        to: 2,
        amount: 5,
        fee: 1,
        nonce: 1,
    }
    .sign(generator.key(0));
    let (w, public) = forced_chunk(small_config(), &accounts(&state), st);
    check_broken(&w, &public, Rule::WrongNonce);
}

#[test]
fn insufficient_balance_is_unsatisfiable() {
    let (mut generator, state) = small_state(6, 4, 1_000);
    let st = Transfer {
        from: 0,
        to: 2,
        amount: 1_000,
        fee: 1,
        nonce: 0,
    }
    .sign(generator.key(0));
    let (w, public) = forced_chunk(small_config(), &accounts(&state), st);
    check_broken(&w, &public, Rule::InsufficientBalance);
}

#[test]
fn receiver_overflow_is_unsatisfiable() {
    let (mut generator, state) = small_state(7, 4, 1_000);
    let mut accts = accounts(&state);
    accts[2].balance = u64::MAX - 3;
    let st = Transfer {
        from: 0,
        to: 2,
        amount: 4,
        fee: 1,
        nonce: 0,
    }
    .sign(generator.key(0));
    let (w, public) = forced_chunk(small_config(), &accts, st);
    check_broken(&w, &public, Rule::BalanceOverflow);
}

#[test]
fn wrong_root_is_unsatisfiable() {
    let (mut generator, state) = small_state(8, 4, 1_000);
    let st = Transfer {
        from: 0,
        to: 2,
        amount: 5,
        fee: 1,
        nonce: 0,
    }
    .sign(generator.key(0));
    let (w, public) = forced_chunk(small_config(), &accounts(&state), st);
    // A claimed old root that is not the witness's state.
    let mut bad = public;
    bad.old_root = public.new_root;
    assert!(!satisfied(&w, &bad));
    // A claimed new root that is not the result.
    let mut bad = public;
    bad.new_root = public.old_root;
    assert!(!satisfied(&w, &bad));
    // Claimed fees or commitment that differ.
    let mut bad = public;
    bad.fees += 1;
    assert!(!satisfied(&w, &bad));
    let mut bad = public;
    bad.tx_commitment = public.old_root;
    assert!(!satisfied(&w, &bad));
    // A sender whose balance the state does not hold.
    let mut w2 = w.clone();
    w2.txs[0].sender.balance += 1;
    check_broken(&w2, &public, Rule::WrongRoot);
    // A tampered path.
    let mut w3 = w;
    w3.txs[0].receiver_path[1] += ark_bn254::Fr::from(1u64);
    check_broken(&w3, &public, Rule::WrongRoot);
}

#[test]
fn builder_rejects_each_rule_with_the_transaction_named() {
    let (mut generator, mut state) = small_state(9, 4, 100);
    let k0 = generator.key(0).clone();
    let txs = vec![
        Transfer {
            from: 0,
            to: 1,
            amount: 10,
            fee: 1,
            nonce: 0,
        }
        .sign(&k0), // ok
        Transfer {
            from: 0,
            to: 1,
            amount: 10,
            fee: 1,
            nonce: 0,
        }
        .sign(&k0), // replay
        Transfer {
            from: 0,
            to: 1,
            amount: 1_000,
            fee: 1,
            nonce: 1,
        }
        .sign(&k0),
        Transfer {
            from: 0,
            to: 1,
            amount: 1,
            fee: 1,
            nonce: 1,
        }
        .sign(generator.key(2)),
        Transfer {
            from: 9,
            to: 1,
            amount: 1,
            fee: 1,
            nonce: 0,
        }
        .sign(&k0),
        Transfer {
            from: 0,
            to: 9,
            amount: 1,
            fee: 1,
            nonce: 1,
        }
        .sign(&k0),
        Transfer {
            from: 0,
            to: 99,
            amount: 1,
            fee: 1,
            nonce: 1,
        }
        .sign(&k0),
        Transfer {
            from: 0,
            to: 3,
            amount: 1,
            fee: 1,
            nonce: 1,
        }
        .sign(&k0), // ok
    ];
    let batch = state.apply_batch(&txs).unwrap();
    let got: Vec<(usize, Rule)> = batch.rejected.iter().map(|r| (r.index, r.rule)).collect();
    assert_eq!(
        got,
        vec![
            (1, Rule::WrongNonce),
            (2, Rule::InsufficientBalance),
            (3, Rule::BadSignature),
            (4, Rule::UnknownSender),
            (5, Rule::UnknownReceiver),
            (6, Rule::IndexOutOfRange),
        ]
    );
    assert!(batch.rejected[0].to_string().contains("transaction #1"));
    assert_eq!(batch.jobs.len(), 1);
    assert_eq!(state.account(0).unwrap().balance, 100 - 11 - 2);
    assert_eq!(state.account(0).unwrap().nonce, 2);
    assert!(satisfied(&batch.jobs[0].witness, &batch.jobs[0].public));

    // A batch with nothing valid changes nothing.
    let root = state.root();
    let err = state.apply_batch(&txs[..2]).unwrap_err();
    assert!(matches!(err, Error::EmptyBatch { rejected: 2 }));
    assert_eq!(state.root(), root);
}

#[test]
fn overflowing_credit_is_rejected_by_the_builder() {
    let mut generator = TxGenerator::new(10, 3);
    let accts: Vec<Account> = (0..3)
        .map(|i| Account {
            pubkey: generator.key(i).public(),
            balance: if i == 1 { u64::MAX } else { 50 },
            nonce: 0,
        })
        .collect();
    let mut state = Rollup::from_accounts(small_config(), accts).unwrap();
    let tx = Transfer {
        from: 0,
        to: 1,
        amount: 1,
        fee: 0,
        nonce: 0,
    }
    .sign(generator.key(0));
    let ok = Transfer {
        from: 0,
        to: 2,
        amount: 1,
        fee: 0,
        nonce: 0,
    }
    .sign(generator.key(0));
    let batch = state.apply_batch(&[tx, ok]).unwrap();
    assert_eq!(batch.rejected[0].rule, Rule::BalanceOverflow);
    assert_eq!(
        state.account(0).unwrap().nonce,
        1,
        "the rejected transfer left no trace"
    );
}

#[test]
fn state_round_trips_through_bytes() {
    let (mut generator, mut state) = small_state(11, 12, 500);
    let txs = generator.batch(&state, 6);
    state.apply_batch(&txs).unwrap();
    let bytes = state.to_bytes();
    let restored = Rollup::from_bytes(&bytes).unwrap();
    assert_eq!(restored.root(), state.root());
    assert_eq!(restored.num_accounts(), 12);
    assert!(Rollup::from_bytes(&bytes[..40]).is_err());
    // Any changed byte that still decodes (here the last account's nonce)
    // no longer hashes to the saved root.
    let mut changed = bytes.clone();
    *changed.last_mut().unwrap() ^= 1;
    match Rollup::from_bytes(&changed) {
        Err(Error::StateBytes(reason)) => assert!(
            reason.contains(&format!("not to the saved root {}", state.root())),
            "{reason}"
        ),
        other => panic!("expected a root mismatch, got {other:?}"),
    }
    // A version-1 state (no root: every key checked) still restores, and
    // is saved again as version 2.
    let v1 = state.to_v1_bytes();
    assert_eq!(v1.len(), bytes.len() - 32);
    let migrated = Rollup::from_bytes(&v1).unwrap();
    assert_eq!(migrated.root(), state.root());
    assert_eq!(migrated.to_bytes(), bytes);
    assert!(
        matches!(Rollup::from_bytes(&[3]), Err(Error::StateBytes(r)) if r.contains("version 3"))
    );
}

#[test]
fn generator_is_deterministic_and_skewed() {
    let (mut g1, s1) = small_state(12, 16, 1_000_000);
    let (mut g2, _) = small_state(12, 16, 1_000_000);
    let a = g1.batch(&s1, 200);
    let b = g2.batch(&s1, 200);
    assert_eq!(a, b);
    let low = a.iter().filter(|t| t.tx.from < 4).count();
    assert!(
        low > 80,
        "the first quarter of accounts should send most transfers, sent {low}/200"
    );
    let mut state = s1;
    assert!(state.apply_batch(&a).unwrap().rejected.is_empty());
}
