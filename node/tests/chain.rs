//! The Settlement and Payouts contracts against a real anvil (the binary
//! from the pinned npm package `@foundry-rs/anvil`, installed by
//! `scripts/setup --tests`), with real Groth16 proofs of the small transfer
//! circuit and of the circom multiplier fixture.
//!
//! Each test starts its own anvil on a free port and kills it on drop.

mod chain_support;
mod harness;

use alloy::primitives::{Address, B256, U256};
use chain_support::*;
use ledger::merkle::MerkleTree;
use node::chain::Payouts::PayoutsErrors;
use node::chain::Settlement::{self, SettlementErrors};
use node::chain::calldata::root_word;
use node::chain::{
    BatchCalldata, ChainError, SettlementMode, anchor, deploy_payouts, deploy_settlement, settle,
};
use node::prover::anchoring::{BALANCE_PROOF_FILE, keep_balance_proof};
use protocol::identity::PublicKey;

/// The BN254 scalar field's modulus.
const Q: U256 = U256::from_limbs([
    0x43e1f593f0000001,
    0x2833e84879b97091,
    0xb85045b68181585d,
    0x30644e72e131a029,
]);

fn settlement_error(result: Result<impl std::fmt::Debug, ChainError>) -> SettlementErrors {
    let err = result.expect_err("the settlement should revert");
    err.settlement_revert()
        .unwrap_or_else(|| panic!("not a Settlement error: {err}"))
}

fn payouts_error(result: Result<impl std::fmt::Debug, ChainError>) -> PayoutsErrors {
    let err = result.expect_err("the call should revert");
    err.payouts_revert()
        .unwrap_or_else(|| panic!("not a Payouts error: {err}"))
}

async fn state_of(settlement: &Settlement::SettlementInstance<Dyn>) -> (U256, u64) {
    let root = settlement.stateRoot().call().await.unwrap();
    let last = settlement.lastBatch().call().await.unwrap();
    (root, last)
}

#[tokio::test]
async fn batches_settle_one_transaction_each_and_move_the_root() {
    let fixture = transfer_fixture();
    let anvil = Anvil::start();
    let provider = anvil.provider(0);
    let genesis = root_word(&fixture.genesis);
    let settlement = deploy_settlement(
        provider.clone(),
        &fixture.vk,
        SettlementMode::Roots { genesis },
    )
    .await
    .unwrap();
    assert_eq!(state_of(&settlement).await, (genesis, 0));

    for (number, batch) in fixture.batches.iter().enumerate() {
        let number = number as u64 + 1;
        let receipt = settle(&settlement, number, &batch.calldata).await.unwrap();
        let settled: Vec<_> = receipt
            .decoded_log::<Settlement::BatchSettled>()
            .into_iter()
            .collect();
        assert_eq!(settled.len(), 1, "one BatchSettled event");
        assert_eq!(settled[0].batch, number);
        assert_eq!(settled[0].chunks, U256::from(batch.calldata.proofs.len()));
        assert_eq!(settled[0].newRoot, root_word(&batch.new_root));
        assert_eq!(
            state_of(&settlement).await,
            (root_word(&batch.new_root), number)
        );
    }
    assert!(
        fixture.batches[0].calldata.proofs.len() >= 3,
        "a batch of several chunks"
    );
}

#[tokio::test]
async fn every_bad_settlement_reverts_with_its_cause_and_changes_nothing() {
    let fixture = transfer_fixture();
    let anvil = Anvil::start();
    let genesis = root_word(&fixture.genesis);
    let settlement = deploy_settlement(
        anvil.provider(0),
        &fixture.vk,
        SettlementMode::Roots { genesis },
    )
    .await
    .unwrap();
    let first = &fixture.batches[0].calldata;
    let second = &fixture.batches[1].calldata;
    let k = first.inputs.len() / first.proofs.len();
    assert_eq!(k, 4, "old root, new root, tx commitment, fees");

    let cases: Vec<(&str, u64, BatchCalldata, SettlementErrors)> = vec![
        ("gap", 2, first.clone(), gap(1, 2)),
        (
            "wrong old root",
            1,
            second.clone(),
            wrong_old_root(genesis, second.inputs[0]),
        ),
        ("broken chain", 1, swap_chunks(first, 1, 2), broken_chain(1)),
        (
            "tampered input",
            1,
            with_input(first, k + 2, first.inputs[k + 2] + U256::from(1)),
            invalid(),
        ),
        (
            "tampered fees",
            1,
            with_input(first, 3, first.inputs[3] + U256::from(1)),
            invalid(),
        ),
        ("proofs swapped", 1, swap_proofs(first, 0, 1), invalid()),
        (
            "A replaced by C",
            1,
            with_proof_word(first, 1, [(0, 6), (1, 7)]),
            invalid(),
        ),
        (
            "A off the curve",
            1,
            bump_proof_word(first, 2, 1),
            malformed(2),
        ),
        (
            "chunk 0's A off the curve",
            1,
            bump_proof_word(first, 0, 1),
            malformed(0),
        ),
        (
            "chunk 0's C off the curve",
            1,
            bump_proof_word(first, 0, 7),
            malformed(0),
        ),
        (
            "C off the curve",
            1,
            bump_proof_word(first, 1, 7),
            malformed(1),
        ),
        (
            "input not in field",
            1,
            with_input(first, 2, first.inputs[2] + Q),
            not_in_field(0, 2),
        ),
        (
            "input missing",
            1,
            drop_last_input(first),
            wrong_count(first.inputs.len(), first.inputs.len() - 1),
        ),
        (
            "no chunks",
            1,
            BatchCalldata {
                proofs: vec![],
                inputs: vec![],
            },
            no_chunks(),
        ),
    ];
    for (name, batch, calldata, expected) in cases {
        let got = settlement_error(settle(&settlement, batch, &calldata).await);
        assert_eq!(got, expected, "{name}");
        assert_eq!(
            state_of(&settlement).await,
            (genesis, 0),
            "{name} changed nothing"
        );
    }

    settle(&settlement, 1, first).await.unwrap();
    let replay = settlement_error(settle(&settlement, 1, first).await);
    assert_eq!(replay, replayed(2, 1));
    let after = root_word(&fixture.batches[0].new_root);
    assert_eq!(state_of(&settlement).await, (after, 1));
}

#[tokio::test]
async fn statements_mode_settles_circom_signals_without_roots() {
    let fixture = circom_fixture();
    let anvil = Anvil::start();
    let settlement = deploy_settlement(anvil.provider(0), &fixture.vk, SettlementMode::Statements)
        .await
        .unwrap();
    settle(&settlement, 1, &fixture.calldata).await.unwrap();
    assert_eq!(state_of(&settlement).await, (U256::ZERO, 1));
    // the multiplier's one public signal is c = a·b: a changed c is refused
    let tampered = with_input(
        &fixture.calldata,
        1,
        fixture.calldata.inputs[1] + U256::from(1),
    );
    assert_eq!(
        settlement_error(settle(&settlement, 2, &tampered).await),
        invalid()
    );
    settle(&settlement, 2, &fixture.calldata).await.unwrap();
    assert_eq!(state_of(&settlement).await, (U256::ZERO, 2));
}

#[tokio::test]
async fn the_contracts_merkle_paths_are_the_ledgers() {
    let anvil = Anvil::start();
    let payouts = deploy_payouts(anvil.provider(0), None, None).await.unwrap();
    for n in 1..=9u64 {
        let tree = MerkleTree::from_leaves(
            (0..n)
                .map(|i| ledger::merkle::leaf_hash(&i.to_be_bytes()))
                .collect(),
        );
        let root = B256::from(tree.root().0);
        for i in 0..n {
            let path = path_of(&tree, i);
            let leaf = B256::from(tree.leaves()[i as usize].0);
            let ok = payouts.verifyPath(leaf, U256::from(i), U256::from(n), path.clone(), root);
            assert!(ok.call().await.unwrap(), "leaf {i} of {n}");
            let wrong_index = U256::from((i + 1) % n);
            let bad = payouts.verifyPath(leaf, wrong_index, U256::from(n), path, root);
            assert_eq!(
                bad.call().await.unwrap(),
                n == 1,
                "leaf {i} of {n} at another index"
            );
        }
    }
}

#[tokio::test]
async fn anchors_come_in_order_from_the_operator_only() {
    let anvil = Anvil::start();
    let payouts = deploy_payouts(anvil.provider(0), None, None).await.unwrap();
    let root = B256::repeat_byte(7);
    let out_of_order = anchor(&payouts, 2, &[(B256::ZERO, root)]).await;
    assert_eq!(payouts_error(out_of_order), anchor_out_of_order(1, 2));
    let empty = anchor(&payouts, 1, &[]).await;
    assert_eq!(payouts_error(empty), anchor_range_mismatch(0, 0));
    anchor(&payouts, 1, &[(B256::ZERO, root)]).await.unwrap();
    let replay = anchor(&payouts, 1, &[(B256::ZERO, root)]).await;
    assert_eq!(payouts_error(replay), anchor_out_of_order(2, 1));
    let stranger = payouts_as(&payouts, anvil.provider(1));
    let refused = anchor(&stranger, 2, &[(B256::ZERO, root)]).await;
    assert_eq!(payouts_error(refused), not_operator(anvil.address(1)));
    // Several blocks in one transaction, each with its own root, in order.
    let later: Vec<(B256, B256)> = (2..=4u8)
        .map(|h| (B256::repeat_byte(h), B256::repeat_byte(0x10 + h)))
        .collect();
    anchor(&payouts, 2, &later).await.unwrap();
    assert_eq!(payouts.lastHeight().call().await.unwrap(), 4);
    assert_eq!(payouts.balanceRoots(1).call().await.unwrap(), root);
    for (height, (hash, root)) in (2u64..).zip(&later) {
        assert_eq!(payouts.balanceRoots(height).call().await.unwrap(), *root);
        assert_eq!(payouts.blockHashes(height).call().await.unwrap(), *hash);
    }
}

#[tokio::test]
async fn claims_pay_the_balance_minus_what_was_paid_in_eth() {
    let anvil = Anvil::start();
    let payouts = deploy_payouts(anvil.provider(0), None, None).await.unwrap();
    fund_eth(&anvil, *payouts.address(), 1_000_000).await;
    check_claims(&anvil, &payouts, Funding::Eth).await;
}

#[tokio::test]
async fn claims_pay_the_balance_minus_what_was_paid_in_an_erc20() {
    let anvil = Anvil::start();
    let token = deploy_token(&anvil).await;
    let payouts = deploy_payouts(anvil.provider(0), None, Some(*token.address()))
        .await
        .unwrap();
    token
        .mint(*payouts.address(), U256::from(1_000_000))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    check_claims(&anvil, &payouts, Funding::Token(token)).await;
}

/// Anchors two blocks and claims against them: exact payouts, nothing
/// twice, the difference after a higher balance, and every forgery refused.
async fn check_claims(anvil: &Anvil, payouts: &PayoutsOf, funding: Funding) {
    let (alice, bob, carol) = (prover(1), prover(2), prover(3));
    let (alice_pay, bob_pay) = (Address::repeat_byte(0xa1), Address::repeat_byte(0xb2));
    let block1 = BalanceTree::new(vec![
        (alice, 300, alice_pay),
        (bob, 50, bob_pay),
        (carol, 20, Address::ZERO),
    ]);
    anchor(payouts, 1, &[(B256::repeat_byte(1), block1.root())])
        .await
        .unwrap();
    let claimant = payouts_as(payouts, anvil.provider(2)); // anyone may send a claim

    let unanchored = claim(&claimant, &block1, 0, 2).await;
    assert_eq!(payouts_error(unanchored), height_not_anchored(2));
    claim(&claimant, &block1, 0, 1).await.unwrap();
    assert_eq!(funding.balance(anvil, alice_pay).await, U256::from(300));
    let again = claim(&claimant, &block1, 0, 1).await;
    assert_eq!(payouts_error(again), nothing_to_claim(alice, 300, 300));
    assert_eq!(funding.balance(anvil, alice_pay).await, U256::from(300));

    // forgeries: a changed amount, a redirected payout, another's leaf, a bad path
    let mut forged = block1.claim_args(1);
    forged.balance = 5_000;
    assert_eq!(
        payouts_error(send_claim(&claimant, &forged, 1).await),
        invalid_balance_proof()
    );
    let mut redirected = block1.claim_args(1);
    redirected.payout = alice_pay;
    assert_eq!(
        payouts_error(send_claim(&claimant, &redirected, 1).await),
        invalid_balance_proof()
    );
    let mut stolen = block1.claim_args(1);
    stolen.prover = alice;
    assert_eq!(
        payouts_error(send_claim(&claimant, &stolen, 1).await),
        invalid_balance_proof()
    );
    let mut bad_path = block1.claim_args(1);
    bad_path.path[0] = B256::repeat_byte(9);
    assert_eq!(
        payouts_error(send_claim(&claimant, &bad_path, 1).await),
        invalid_balance_proof()
    );
    let unbound = claim(&claimant, &block1, 2, 1).await;
    assert_eq!(payouts_error(unbound), payout_unbound(carol));

    // a later block with a higher balance pays the difference, once
    let block2 = BalanceTree::new(vec![(alice, 450, alice_pay), (bob, 50, bob_pay)]);
    anchor(payouts, 2, &[(B256::repeat_byte(2), block2.root())])
        .await
        .unwrap();
    claim(&claimant, &block2, 0, 2).await.unwrap();
    assert_eq!(funding.balance(anvil, alice_pay).await, U256::from(450));
    let old = claim(&claimant, &block1, 0, 1).await;
    assert_eq!(payouts_error(old), nothing_to_claim(alice, 300, 450));
    claim(&claimant, &block2, 1, 2).await.unwrap();
    assert_eq!(funding.balance(anvil, bob_pay).await, U256::from(50));
    assert_eq!(payouts.paid(key_word(&alice)).call().await.unwrap(), 450);
}

/// A real ledger's blocks, anchored, claimed with the CLI: the prover that
/// bound an address is paid its balance there from `crowdprove ledger
/// balance-proof`'s file with `crowdprove claim` — after the distributor's
/// data dir is gone — and once only; one that bound none is told so before
/// anything is sent; a proof from before its binding cannot pay.
#[tokio::test]
async fn a_real_ledgers_anchored_block_pays_each_prover_at_its_bound_address() {
    use ledger::{BindPayout, Credit, Ledger, LedgerConfig, Tx};
    use protocol::{BatchId, ContentHash, JobId, PayoutAddress, PayoutBinding, SecretKey};

    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("distributor");
    let distributor = SecretKey::from_seed([1; 32]);
    let config = LedgerConfig::default();
    let mut books = Ledger::open(data_dir.join("ledger"), &distributor, config).unwrap();
    let (alice, bob) = (SecretKey::from_seed([2; 32]), SecretKey::from_seed([3; 32]));
    let credit = |key: &SecretKey, index: u32, amount: u64| {
        let job = JobId::new(BatchId(1), index);
        Tx::Credit(Credit::new(
            key.public(),
            job,
            amount,
            ContentHash::of(b"p"),
        ))
    };
    let alice_pay = PayoutAddress([0xa1; 20]);
    let bind = Tx::BindPayout(BindPayout {
        prover: alice.public(),
        binding: PayoutBinding::signed(&alice, alice_pay, 1),
    });
    books
        .append(&[credit(&alice, 0, 300), credit(&bob, 1, 50)])
        .unwrap();
    books.cut_block().unwrap();
    let before_binding = books.balance_proof(&alice.public()).unwrap();
    books.append(&[credit(&alice, 2, 100), bind]).unwrap();
    books.cut_block().unwrap();

    let anvil = Anvil::start();
    let payouts = deploy_payouts(anvil.provider(0), None, None).await.unwrap();
    fund_eth(&anvil, *payouts.address(), 1_000).await;
    for height in 1..=books.height() {
        let signed = books.header(height).unwrap().unwrap();
        let root = B256::from(signed.header.balance_root.0);
        let hash = B256::from(signed.hash().0);
        anchor(&payouts, height, &[(hash, root)]).await.unwrap();
    }
    let claimant = payouts_as(&payouts, anvil.provider(2));
    let early = send_claim(&claimant, &ClaimArgs::from_proof(&before_binding), 1).await;
    assert_eq!(payouts_error(early), payout_unbound(alice.public()));

    // The operator exports each prover's balance proof; then its data is gone.
    let proof_of = |key: &SecretKey, name: &str| {
        let out = dir.path().join(name);
        let written = cli(&[
            "ledger",
            "balance-proof",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--prover",
            &key.public().to_hex(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(written.0, "{}", written.1);
        out
    };
    let (alice_proof, bob_proof) = (proof_of(&alice, "alice.proof"), proof_of(&bob, "bob.proof"));
    drop(books);
    std::fs::remove_dir_all(&data_dir).unwrap();

    let sender_key = dir.path().join("sender.key");
    std::fs::write(&sender_key, anvil.key(2)).unwrap();
    let payouts_address = payouts.address().to_string();
    let distributor_hex = distributor.public().to_hex();
    let claim_expecting = |proof: &std::path::Path, expected: &[&str]| {
        let mut args = vec![
            "claim",
            "--balance-proof",
            proof.to_str().unwrap(),
            "--distributor",
            &distributor_hex,
            "--rpc",
            &anvil.url,
            "--payouts",
            &payouts_address,
            "--sender-key",
            sender_key.to_str().unwrap(),
        ];
        args.extend(expected);
        cli(&args)
    };
    let claim_with = |proof: &std::path::Path| claim_expecting(proof, &[]);
    // Told which address to expect, a claim that would pay another is
    // refused before anything is sent.
    let elsewhere = format!("0x{}", "b7".repeat(20));
    let (ok, said) = claim_expecting(&alice_proof, &["--payout-address", &elsewhere]);
    assert!(
        !ok && said.contains("a claim would pay someone else"),
        "{said}"
    );
    let (ok, said) = claim_with(&alice_proof);
    assert!(ok && said.starts_with("paid 400 to 0xa1a1"), "{said}");
    let paid_to = node::chain::payout_address(alice_pay);
    assert_eq!(Funding::Eth.balance(&anvil, paid_to).await, U256::from(400));
    let (ok, said) = claim_with(&alice_proof);
    assert!(!ok && said.contains("nothing to claim"), "{said}");
    assert_eq!(Funding::Eth.balance(&anvil, paid_to).await, U256::from(400));
    let (ok, said) = claim_with(&bob_proof);
    assert!(
        !ok && said.contains("no payout address was bound"),
        "{said}"
    );
}

/// A prover's watch against a real chain: the kept balance proof's block,
/// once anchored with the root the distributor signed, checks; anchored
/// with another root (the operator paying accounts that never earned), it
/// is reported, once.
#[tokio::test]
async fn a_prover_sees_an_anchored_root_its_distributor_did_not_sign() {
    use ledger::{Credit, Ledger, LedgerConfig, Tx};
    use node::prover::anchoring::{Anchoring, read_chain};
    use protocol::{BatchId, ContentHash, JobId, SecretKey};

    let dir = tempfile::tempdir().unwrap();
    let distributor = SecretKey::from_seed([1; 32]);
    let mut books = Ledger::open(
        dir.path().join("ledger"),
        &distributor,
        LedgerConfig::default(),
    )
    .unwrap();
    let me = SecretKey::from_seed([2; 32]).public();
    let prover_dir = dir.path().join("prover");
    std::fs::create_dir(&prover_dir).unwrap();
    let anvil = Anvil::start();
    let payouts = deploy_payouts(anvil.provider(0), None, None).await.unwrap();
    let watched = node::chain::Payouts::new(
        *payouts.address(),
        node::chain::reading_provider(&anvil.url).unwrap(),
    );
    let mut anchoring = Anchoring::new(*payouts.address(), std::time::Duration::from_secs(60));
    for (index, forge) in [(0, false), (1, true)] {
        let job = JobId::new(BatchId(1), index);
        books
            .append(&[Tx::Credit(Credit::new(me, job, 10, ContentHash::of(b"p")))])
            .unwrap();
        let signed = books.cut_block().unwrap().unwrap();
        let proof = books.balance_proof(&me).unwrap().encode();
        let kept = keep_balance_proof(
            &prover_dir,
            &proof,
            &distributor.public(),
            &me,
            None,
            signed.header.height,
        )
        .unwrap();
        let root = if forge {
            B256::repeat_byte(0xf0)
        } else {
            B256::from(signed.header.balance_root.0)
        };
        anchor(
            &payouts,
            signed.header.height,
            &[(B256::from(signed.hash().0), root)],
        )
        .await
        .unwrap();
        let (height, compared) = read_chain(&watched, Some(kept), None).await.unwrap();
        assert_eq!((height, kept.height), (signed.header.height, height));
        let anchored = compared.expect("the kept proof's block is anchored");
        assert_eq!(anchored == kept.root.0, !forge);
        assert_eq!(
            anchoring.compare_anchor(height, kept.root, anchored),
            forge,
            "block {height}"
        );
        let (_, again) = read_chain(&watched, Some(kept), Some(height))
            .await
            .unwrap();
        assert!(again.is_none(), "a block is compared once");
    }
    let forged = anchoring
        .view(protocol::Timestamp::now())
        .forged_anchor
        .unwrap();
    assert!(
        forged.starts_with("block 2: anchored balance root f0f0"),
        "{forged}"
    );
}

/// Runs the `crowdprove` binary: whether it succeeded, and what it said
/// (stdout, then stderr).
fn cli(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_crowdprove"))
        .args(args)
        .output()
        .expect("run crowdprove");
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), said)
}

fn key_word(key: &PublicKey) -> B256 {
    B256::from(key.0)
}

#[tokio::test]
async fn an_unfunded_claim_reverts_and_records_nothing() {
    let anvil = Anvil::start();
    let payouts = deploy_payouts(anvil.provider(0), None, None).await.unwrap();
    let alice_pay = Address::repeat_byte(0xa1);
    let block = BalanceTree::new(vec![(prover(1), 300, alice_pay)]);
    anchor(&payouts, 1, &[(B256::repeat_byte(1), block.root())])
        .await
        .unwrap();
    let unfunded = claim(&payouts, &block, 0, 1).await;
    assert_eq!(payouts_error(unfunded), payout_failed(alice_pay, 300));
    assert_eq!(payouts.paid(key_word(&prover(1))).call().await.unwrap(), 0);
    fund_eth(&anvil, *payouts.address(), 300).await;
    claim(&payouts, &block, 0, 1).await.unwrap();
    assert_eq!(
        Funding::Eth.balance(&anvil, alice_pay).await,
        U256::from(300)
    );
}

/// Where prover 1 of the harness is paid.
const PROVER_PAY: protocol::PayoutAddress = protocol::PayoutAddress([0xb7; 20]);

/// Proves one batch of four jobs through the in-process distributor, as
/// prover 1 paid at [`PROVER_PAY`].
async fn prove_a_batch(h: &mut harness::Harness) {
    let answer = h.submit_batch().await;
    assert_eq!(answer["jobs"], 4, "{answer}");
    let p = harness::prover(1);
    let binding = protocol::PayoutBinding::signed(&p, PROVER_PAY, 1);
    for _ in 0..4 {
        let assignment = h.claim(&p).await;
        let proof = harness::prove(&assignment);
        let reply = h
            .submit_with(&p, &assignment, proof, Some(binding.clone()))
            .await;
        let verdict = h.verdict(reply).await;
        assert!(
            matches!(
                verdict.outcome,
                protocol::messages::Outcome::Accepted { .. }
            ),
            "{verdict:?}"
        );
    }
}

/// Asks for the receipt of prover 1's first job of batch 3 and keeps the
/// balance proof served with it in `dir`, as a prover does; returns its
/// height and balance.
async fn keep_served_balance_proof(h: &mut harness::Harness, dir: &std::path::Path) -> (u64, u64) {
    use protocol::messages::{AnyMessage, ReceiptRequest};
    let p = harness::prover(1);
    let job = harness::job(3, 0);
    let AnyMessage::ReceiptReply(reply) = h.ask(&p, &ReceiptRequest { job }).await else {
        panic!("no receipt reply");
    };
    let height = node::prover::check_receipt(&reply.receipt, &h.public())
        .expect("a receipt of a cut block")
        .1;
    // Held to the binding the prover sent: a leaf paying anyone else would
    // be refused.
    let binding = protocol::PayoutBinding::signed(&p, PROVER_PAY, 1);
    let kept = keep_balance_proof(
        dir,
        &reply.balance_proof,
        &h.public(),
        &p.public(),
        Some(&binding),
        height,
    )
    .expect("a balance proof that checks");
    let other = protocol::PayoutBinding::signed(&p, protocol::PayoutAddress([0xee; 20]), 1);
    let diverted = keep_balance_proof(
        dir,
        &reply.balance_proof,
        &h.public(),
        &p.public(),
        Some(&other),
        height,
    )
    .unwrap_err();
    assert!(
        format!("{diverted:#}").contains("would pay someone else"),
        "{diverted:#}"
    );
    (kept.height, kept.balance)
}

/// An in-process distributor settling on `anvil` from its account 0 (the
/// key file written in `dir`).
async fn settling_on(anvil: &Anvil, dir: &std::path::Path) -> harness::Harness {
    settling_on_with(anvil, dir, |_| {}).await
}

/// [`settling_on`], with `tune` applied to the settings.
async fn settling_on_with(
    anvil: &Anvil,
    dir: &std::path::Path,
    tune: impl FnOnce(&mut node::config::Config),
) -> harness::Harness {
    let key_file = dir.join("operator.key");
    std::fs::write(&key_file, anvil.key(0)).unwrap();
    let url = anvil.url.clone();
    harness::Harness::start_with(|c| {
        c.chain.rpc_url = url;
        c.chain.account_key = key_file.to_str().unwrap().to_string();
        tune(c);
    })
    .await
}

/// The transactions the operator account (anvil's account 0) sent, mined.
async fn operator_nonce(anvil: &Anvil) -> u64 {
    use alloy::providers::Provider;
    anvil
        .provider(0)
        .get_transaction_count(anvil.address(0))
        .await
        .unwrap()
}

/// The Payouts contract the distributor's `/status` names.
fn payouts_of(anvil: &Anvil, doc: &serde_json::Value) -> PayoutsOf {
    let at = doc["chain"]["payouts"].as_str().expect("payouts deployed");
    node::chain::Payouts::new(at.parse().unwrap(), anvil.provider(1))
}

/// Where the chain client stands, from `/status`.
fn chain_of(doc: &serde_json::Value) -> (u64, u64, u64) {
    let chain = &doc["chain"];
    (
        chain["settled_batch"].as_u64().unwrap_or(0),
        chain["anchored_height"].as_u64().unwrap_or(0),
        doc["ledger"]["height"].as_u64().unwrap_or(0),
    )
}

/// The distributor as a chain client, in-process against a real anvil: it
/// deploys both contracts, settles every proven batch (the contract's root
/// becomes the last batch's new root) and anchors every ledger block, in
/// order; restarted, it goes on from the chain's state with the contracts
/// it deployed, settling the next batch and sending nothing twice. The
/// balance proof it serves with a receipt, kept as a prover keeps it, pays
/// the prover's whole balance with `crowdprove claim`.
#[tokio::test]
async fn the_distributor_settles_every_proven_batch_and_anchors_every_block() {
    let anvil = Anvil::start();
    let key_dir = tempfile::tempdir().unwrap();
    let mut h = settling_on(&anvil, key_dir.path()).await;
    for _ in 0..2 {
        prove_a_batch(&mut h).await;
    }
    let caught_up = |doc: &serde_json::Value| {
        let (settled, anchored, height) = chain_of(doc);
        settled == 2 && height > 0 && anchored == height
    };
    let doc = h
        .status_until("batches settled, blocks anchored", caught_up)
        .await;
    let settlement: Address = doc["chain"]["settlement"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let payouts: Address = doc["chain"]["payouts"].as_str().unwrap().parse().unwrap();
    assert_eq!(doc["chain"]["pending_txs"], 0, "{doc:#}");
    let sent_before = doc["chain"]["txs_sent"].as_u64().unwrap();

    let mut h = h.restart().await;
    prove_a_batch(&mut h).await;
    let doc = h
        .status_until("the third batch settled, its credits anchored", |doc| {
            // With nothing pending, the last credit's block is cut: the
            // balance proof below is served from the anchored height.
            let (settled, anchored, height) = chain_of(doc);
            settled == 3 && anchored == height && doc["ledger"]["pending"] == 0
        })
        .await;
    assert_eq!(
        doc["chain"]["settlement"].as_str(),
        Some(settlement.to_string().as_str())
    );
    assert_eq!(
        doc["chain"]["payouts"].as_str(),
        Some(payouts.to_string().as_str())
    );
    let prover_dir = tempfile::tempdir().unwrap();
    let claimable = keep_served_balance_proof(&mut h, prover_dir.path()).await;
    assert_eq!(claimable, (doc["ledger"]["height"].as_u64().unwrap(), 1200));
    h.stop().await.unwrap();

    // On chain: three batches, the root the store recorded for the third,
    // every block anchored once with the ledger's own hash and root.
    let provider = anvil.provider(1);
    let contract = Settlement::new(settlement, provider.clone());
    let store = node::distributor::store::JobStore::open(h.dir.path().join("jobs")).unwrap();
    let third = store.batch(protocol::BatchId(3)).unwrap().unwrap();
    assert_eq!(state_of(&contract).await, (root_word(&third.new_root), 3));
    let books = h.ledger();
    let payouts = node::chain::Payouts::new(payouts, provider);
    let anchored = payouts.lastHeight().call().await.unwrap();
    assert!(
        anchored + 1 >= books.height(),
        "at most the block cut at shutdown waits"
    );
    for height in 1..=anchored {
        let block = books.header(height).unwrap().unwrap();
        let root = payouts.balanceRoots(height).call().await.unwrap();
        let hash = payouts.blockHashes(height).call().await.unwrap();
        assert_eq!(
            root,
            B256::from(block.header.balance_root.0),
            "height {height}"
        );
        assert_eq!(hash, B256::from(block.hash().0), "height {height}");
    }
    // Each transaction was sent once: two deployments, then one per batch
    // and one per run of blocks anchored together, across the restart (a
    // duplicate would have reverted on estimation and been counted nowhere,
    // so count the account's nonce).
    let anchors = anchored_once(&payouts, anchored).await;
    let nonce = operator_nonce(&anvil).await;
    assert_eq!(
        nonce,
        2 + 3 + anchors,
        "sent before the restart: {sent_before}"
    );
    fund_eth(&anvil, *payouts.address(), 10_000).await;
    let sender_key = key_dir.path().join("sender.key");
    std::fs::write(&sender_key, anvil.key(2)).unwrap();
    let kept = prover_dir.path().join(BALANCE_PROOF_FILE);
    let (ok, said) = cli(&[
        "claim",
        "--balance-proof",
        kept.to_str().unwrap(),
        "--distributor",
        &h.public().to_hex(),
        "--rpc",
        &anvil.url,
        "--payouts",
        &payouts.address().to_string(),
        "--sender-key",
        sender_key.to_str().unwrap(),
    ]);
    assert!(ok && said.starts_with("paid 1200 to 0xb7b7"), "{said}");
    let (ok, said) = cli(&[
        "ledger",
        "receipts",
        "--data-dir",
        prover_dir.path().to_str().unwrap(),
        "--distributor",
        &h.public().to_hex(),
        "--rpc-url",
        &anvil.url,
        "--payouts",
        &payouts.address().to_string(),
    ]);
    let height = claimable.0;
    for expected in [
        format!("claimable: balance 1200 at block {height}, payout 0xb7b7"),
        format!(
            "on chain: anchored to block {anchored}, 1200 claimed; block {height} is anchored with the root the distributor signed: 0 left to claim"
        ),
    ] {
        assert!(ok && said.contains(&expected), "{expected:?} not in {said}");
    }
}

/// How long the chain stays down in
/// [`a_chain_down_for_a_while_delays_settlement_and_loses_nothing`]:
/// `CROWDPROVE_CHAIN_OUTAGE_SECS`, 30 s unless set (120 for the two
/// minutes docs/settlement.md reports).
fn outage() -> std::time::Duration {
    let secs = std::env::var("CROWDPROVE_CHAIN_OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    std::time::Duration::from_secs(secs)
}

/// The chain stopped (anvil's process gone, its state kept) while two
/// batches are proven: the provers are paid in the ledger throughout, the
/// chain client reports the outage and sends nothing; once the chain is
/// back every batch settles and every block is anchored, each once.
#[tokio::test]
async fn a_chain_down_for_a_while_delays_settlement_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("anvil-state.json");
    let mut anvil = Anvil::start_with(&["--state", state.to_str().unwrap()]);
    let mut h = settling_on(&anvil, dir.path()).await;
    prove_a_batch(&mut h).await;
    h.status_until("batch 1 settled, its blocks anchored", |doc| {
        let (settled, anchored, height) = chain_of(doc);
        settled == 1 && anchored == height
    })
    .await;

    anvil.stop();
    let down = std::time::Instant::now();
    for _ in 0..2 {
        prove_a_batch(&mut h).await;
    }
    let balance = |doc: &serde_json::Value| {
        doc["provers"].as_array().and_then(|rows| {
            rows.iter()
                .find(|r| r["public_key"] == harness::prover(1).public().to_hex())
                .and_then(|r| r["balance"].as_u64())
        })
    };
    let doc = h
        .status_until("the chain's outage seen, every credit in a block", |doc| {
            doc["chain"]["last_error"].is_string()
                && doc["ledger"]["pending"] == 0
                && balance(doc) == Some(1200)
        })
        .await;
    assert_eq!(
        chain_of(&doc).0,
        1,
        "nothing settles while the chain is down"
    );
    // The outage is the scenario itself: the chain stays down this long.
    tokio::time::sleep(outage().saturating_sub(down.elapsed())).await;
    assert_eq!(chain_of(&h.status_until("", |_| true).await).0, 1);

    anvil.resume();
    let doc = h
        .status_until(
            "every batch settled and block anchored after the outage",
            |doc| {
                let (settled, anchored, height) = chain_of(doc);
                settled == 3 && anchored == height && doc["chain"]["last_error"].is_null()
            },
        )
        .await;
    h.stop().await.unwrap();
    let anchored = chain_of(&doc).1;
    let anchors = anchored_once(&payouts_of(&anvil, &doc), anchored).await;
    let nonce = operator_nonce(&anvil).await;
    assert_eq!(nonce, 2 + 3 + anchors, "each batch and block sent once");
    // The blocks cut while the chain was down caught up together.
    assert!(anchors < anchored, "{anchored} blocks in {anchors} anchors");
}

/// A transaction the chain leaves pending (anvil stops mining) is replaced
/// after `replace_after_secs` — the transaction due next, at the same
/// nonce, with twice the fees — and once the chain mines again every batch
/// and block lands once: the operator's nonce is exactly the transactions
/// due, the replaced one never counted twice.
#[tokio::test]
async fn a_transaction_pending_too_long_is_replaced_and_lands_once() {
    use alloy::providers::Provider;

    let anvil = Anvil::start();
    let dir = tempfile::tempdir().unwrap();
    let mut h = settling_on_with(&anvil, dir.path(), |c| c.chain.replace_after_secs = 2).await;
    prove_a_batch(&mut h).await;
    h.status_until("batch 1 settled, its blocks anchored", |doc| {
        let (settled, anchored, height) = chain_of(doc);
        settled == 1 && anchored == height
    })
    .await;
    let rpc = anvil.provider(1);
    let automine = |on: bool| {
        let rpc = rpc.clone();
        async move {
            rpc.raw_request::<_, ()>("evm_setAutomine".into(), (on,))
                .await
                .unwrap()
        }
    };
    automine(false).await;
    prove_a_batch(&mut h).await;
    let doc = h
        .status_until("a pending transaction replaced", |doc| {
            doc["chain"]["replaced"].as_u64() >= Some(1)
        })
        .await;
    assert_eq!(chain_of(&doc).0, 1, "nothing mined meanwhile");
    automine(true).await;
    rpc.raw_request::<_, serde_json::Value>("evm_mine".into(), ())
        .await
        .unwrap();
    let doc = h
        .status_until("every batch settled and block anchored", |doc| {
            let (settled, anchored, height) = chain_of(doc);
            settled == 2 && anchored == height && doc["chain"]["pending_txs"] == 0
        })
        .await;
    h.stop().await.unwrap();
    let anchors = anchored_once(&payouts_of(&anvil, &doc), chain_of(&doc).1).await;
    let nonce = operator_nonce(&anvil).await;
    assert_eq!(nonce, 2 + 2 + anchors, "each batch and block sent once");
}
