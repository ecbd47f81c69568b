//! Gas of settling a batch in one transaction on anvil, per batch and per
//! chunk proof, for batches of 1, 4, 12 and 32 chunks, against checking one
//! proof at a time with snarkjs's Solidity verifier (one `verifyProof` per
//! proof, measured in the same run by `scripts/circom-tools/evm-verifier.mjs`);
//! then the largest batch that settles within a 30 M gas block (gas is
//! linear in the chunks: the line is checked by settling 128 chunks),
//! and the gas of anchoring a ledger block and of a claim against ledgers of
//! 10 to 1,000,000 accounts. Prints Markdown tables. Run by
//! `scripts/bench-chain`.
//!
//! Gas is the transaction's (21,000 base + calldata + execution) and its
//! execution part alone (the receipt's gas minus the base and calldata
//! cost), the figure the baseline reports.

#[path = "../tests/chain_support/anvil.rs"]
#[allow(dead_code, unreachable_pub)]
mod anvil;

use std::process::Command;

use alloy::primitives::{B256, U256};
use node::chain::calldata::root_word;
use node::chain::{SettlementMode, batch_calldata, deploy_settlement, settle};
use prover_core::snarkjs::export_snarkjs;
use prover_core::{CircuitConfig, Proof, PublicInputs, TxGenerator, prove, setup_insecure};

const BATCH_SIZES: [usize; 4] = [1, 4, 12, 32];
const TX_BASE_GAS: u64 = 21_000;
/// The block gas limit the largest batch must fit in.
const BLOCK_GAS: u64 = 30_000_000;
/// The batch that checks the gas line.
const CHECK_CHUNKS: usize = 128;
/// Ledger sizes (accounts) whose claims are measured.
const LEDGER_ACCOUNTS: [u64; 3] = [10, 10_000, 1_000_000];

/// Calldata gas: 16 a non-zero byte, 4 a zero byte.
fn calldata_gas(data: &[u8]) -> u64 {
    data.iter().map(|&b| if b == 0 { 4 } else { 16 }).sum()
}

/// snarkjs's verifier's execution gas for one of our proofs.
fn baseline_gas(vk: &prover_core::VerifyingKey, chunk: &(PublicInputs, Proof)) -> u64 {
    let dir = tempfile::tempdir().expect("a temp dir");
    export_snarkjs(dir.path(), vk, &chunk.0, &chunk.1).expect("snarkjs files");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/circom-tools/evm-verifier.mjs"
    );
    let file = |name: &str| dir.path().join(name);
    let out = Command::new("node")
        .arg(script)
        .arg("verify")
        .args([
            file("verification_key.json"),
            file("proof.json"),
            file("public.json"),
        ])
        .output()
        .expect("node runs evm-verifier.mjs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(line["valid"], true, "snarkjs's verifier accepts the proof");
    line["gas"].as_u64().expect("a gas figure")
}

#[tokio::main]
async fn main() {
    let config = CircuitConfig::new(4, 1).expect("a valid config");
    let (pk, vk) = setup_insecure(config, 29).expect("setup");
    let mut generator = TxGenerator::new(29, 16);
    let state = generator.genesis(config, 1_000_000).expect("genesis");
    let block_gas = BLOCK_GAS.to_string();
    let anvil = anvil::Anvil::start_with(&["--gas-limit", &block_gas]);
    let genesis = root_word(&state.root());
    let settlement = deploy_settlement(anvil.provider(0), &vk, SettlementMode::Roots { genesis })
        .await
        .expect("deploy");

    let mut batches = Batches {
        pk,
        generator,
        state,
        settled: 0,
    };
    let rows = settle_sizes(&mut batches, &vk, &settlement).await;
    largest_batch(&mut batches, &settlement, &rows).await;
    anchors_and_claims(&anvil).await;
}

/// Batches of the transfer circuit, proven, each after the last.
struct Batches {
    pk: prover_core::ProvingKey,
    generator: TxGenerator,
    state: prover_core::Rollup,
    settled: u64,
}

impl Batches {
    /// The chunks of a batch of `n` transactions (one chunk each), proven.
    fn next(&mut self, n: usize) -> Vec<(PublicInputs, Proof)> {
        let built = self
            .state
            .apply_batch(&self.generator.batch(&self.state, n))
            .expect("a batch");
        built
            .jobs
            .iter()
            .map(|job| {
                (
                    job.public,
                    prove(&self.pk, &job.to_bytes()).expect("a proof"),
                )
            })
            .collect()
    }
}

type SettlementOf = node::chain::Settlement::SettlementInstance<anvil::Dyn>;

/// Settles batches of [`BATCH_SIZES`] chunks; prints the gas table and
/// returns (chunks, transaction gas) per batch.
async fn settle_sizes(
    batches: &mut Batches,
    vk: &prover_core::VerifyingKey,
    settlement: &SettlementOf,
) -> Vec<(u64, u64)> {
    let mut baseline = None;
    let mut rows = Vec::new();
    println!(
        "| chunks | settle tx gas | tx gas / chunk | execution gas | execution / chunk | one verifyProof per proof (execution) | batched / one-at-a-time |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for n in BATCH_SIZES {
        let chunks = batches.next(n);
        let per_proof = *baseline.get_or_insert_with(|| baseline_gas(vk, &chunks[0]));
        let calldata = batch_calldata(&chunks).expect("calldata");
        batches.settled += 1;
        let input = settlement
            .settle(
                batches.settled,
                calldata.proofs.clone(),
                calldata.inputs.clone(),
            )
            .calldata()
            .clone();
        let receipt = settle(settlement, batches.settled, &calldata)
            .await
            .expect("the batch settles");
        let gas = receipt.gas_used;
        let execution = gas - TX_BASE_GAS - calldata_gas(&input);
        let n = chunks.len() as u64;
        println!(
            "| {n} | {gas} | {} | {execution} | {} | {} | {:.2} |",
            gas / n,
            execution / n,
            per_proof * n,
            execution as f64 / (per_proof * n) as f64,
        );
        rows.push((n, gas));
    }
    rows
}

/// The largest batch within [`BLOCK_GAS`]. Gas is linear in the chunks:
/// the line through the 12- and 32-chunk rows predicts a batch of
/// [`CHECK_CHUNKS`], which is then proven and settled to check it (proving
/// the ~520 chunks of the largest batch itself takes this build over 15
/// minutes); the line through the 32- and the checked row gives the largest
/// batch.
async fn largest_batch(batches: &mut Batches, settlement: &SettlementOf, rows: &[(u64, u64)]) {
    let line = |(n1, g1): (u64, u64), (n2, g2): (u64, u64)| {
        let per_chunk = (g2 - g1) as f64 / (n2 - n1) as f64;
        (per_chunk, g2 as f64 - per_chunk * n2 as f64)
    };
    let [.., small, large] = rows else {
        panic!("two rows at least")
    };
    let (per_chunk, fixed) = line(*small, *large);
    let predicted = fixed + per_chunk * CHECK_CHUNKS as f64;
    eprintln!("proving {CHECK_CHUNKS} chunks to check the line");
    let chunks = batches.next(CHECK_CHUNKS);
    batches.settled += 1;
    let calldata = batch_calldata(&chunks).expect("calldata");
    let measured = settle(settlement, batches.settled, &calldata)
        .await
        .expect("the batch settles")
        .gas_used;
    let (per_chunk, fixed) = line(*large, (CHECK_CHUNKS as u64, measured));
    let largest = ((BLOCK_GAS as f64 - fixed) / per_chunk).floor();
    println!();
    println!(
        "| chunks | settle tx gas, measured | predicted from 12 and 32 | error | gas per further chunk | fixed gas | largest batch in {BLOCK_GAS} gas |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {CHECK_CHUNKS} | {measured} | {predicted:.0} | {:+.3} % | {per_chunk:.0} | {fixed:.0} | {largest:.0} chunks ({:.0} gas) |",
        (measured as f64 - predicted) / predicted * 100.0,
        fixed + per_chunk * largest
    );
}

/// Anchors one block per ledger size of [`LEDGER_ACCOUNTS`] and claims one
/// account of each (its path is log2(accounts) hashes); prints the gas.
async fn anchors_and_claims(anvil: &anvil::Anvil) {
    use alloy::network::TransactionBuilder;
    use alloy::providers::Provider;
    use ledger::state::balance_leaf;
    use ledger::{Account, BalanceProof, BlockHeader};
    use protocol::{ContentHash, PayoutAddress, PublicKey, SecretKey, Timestamp};

    let payouts = node::chain::deploy_payouts(anvil.provider(0), None, None)
        .await
        .expect("deploy Payouts");
    let fund = alloy::rpc::types::TransactionRequest::default()
        .with_to(*payouts.address())
        .with_value(alloy::primitives::U256::from(1_000_000u64));
    let funded = anvil
        .provider(0)
        .send_transaction(fund)
        .await
        .expect("fund");
    funded.get_receipt().await.expect("funded");
    let distributor = SecretKey::from_seed([7; 32]);
    println!();
    println!("| ledger accounts | path hashes | anchor gas | claim gas (to a fresh address) |");
    println!("| ---: | ---: | ---: | ---: |");
    for (i, accounts) in LEDGER_ACCOUNTS.into_iter().enumerate() {
        let account = |k: u64| Account {
            balance: 100 + k,
            payout: PayoutAddress([0x10 + i as u8; 20]),
            payout_seq: 1,
        };
        let key = |k: u64| {
            let mut bytes = [0u8; 32];
            bytes[..8].copy_from_slice(&k.to_be_bytes());
            bytes[31] = i as u8;
            PublicKey(bytes)
        };
        let leaves = (0..accounts)
            .map(|k| balance_leaf(&key(k), &account(k)))
            .collect();
        let tree = ledger::merkle::MerkleTree::from_leaves(leaves);
        let index = accounts / 2;
        let header = BlockHeader {
            version: ledger::block::HEADER_VERSION,
            height: i as u64 + 1,
            prev_hash: ContentHash([0; 32]),
            timestamp: Timestamp::now(),
            tx_count: 0,
            tx_root: ledger::merkle::empty_root(),
            balance_root: tree.root(),
            account_count: accounts,
            distributor: distributor.public(),
        }
        .sign(&distributor);
        let anchored = node::chain::anchor(
            &payouts,
            header.header.height,
            &[(B256::from(header.hash().0), B256::from(tree.root().0))],
        )
        .await
        .expect("anchored");
        let proof = BalanceProof {
            prover: key(index),
            account: account(index),
            index,
            path: tree.proof(index as usize).expect("a path"),
            header,
        };
        let claimed = node::chain::claim(&payouts, &proof).await.expect("claimed");
        println!(
            "| {accounts} | {} | {} | {} |",
            proof.path.len(),
            anchored.gas_used,
            claimed.gas_used
        );
    }
    anchor_runs(&payouts, LEDGER_ACCOUNTS.len() as u64 + 1).await;
}

/// Anchors runs of 1, 4, 16 and 64 blocks, each in one transaction, from
/// height `next`; prints the gas per run and per block.
async fn anchor_runs(payouts: &node::chain::Payouts::PayoutsInstance<anvil::Dyn>, mut next: u64) {
    println!();
    println!("| blocks in one anchor | gas | gas per block |");
    println!("| ---: | ---: | ---: |");
    for n in [1u64, 4, 16, 64] {
        let blocks: Vec<(B256, B256)> = (next..next + n)
            .map(|h| (B256::from(U256::from(h)), B256::from(U256::from(h << 32))))
            .collect();
        let anchored = node::chain::anchor(payouts, next, &blocks)
            .await
            .expect("anchored");
        println!(
            "| {n} | {} | {} |",
            anchored.gas_used,
            anchored.gas_used / n
        );
        next += n;
    }
}
