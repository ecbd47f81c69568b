//! Gas of settling a batch in one transaction on anvil, per batch and per
//! chunk proof, for batches of 1, 4, 12 and 32 chunks, against checking one
//! proof at a time with snarkjs's Solidity verifier (one `verifyProof` per
//! proof, measured in the same run by `scripts/circom-tools/evm-verifier.mjs`).
//! Prints a Markdown table. Run by `scripts/bench-chain`.
//!
//! Gas is the transaction's (21,000 base + calldata + execution) and its
//! execution part alone (the receipt's gas minus the base and calldata
//! cost), the figure the baseline reports.

#[path = "../tests/chain_support/anvil.rs"]
#[allow(dead_code, unreachable_pub)]
mod anvil;

use std::process::Command;

use node::chain::calldata::root_word;
use node::chain::{SettlementMode, batch_calldata, deploy_settlement, settle};
use prover_core::snarkjs::export_snarkjs;
use prover_core::{CircuitConfig, Proof, PublicInputs, TxGenerator, prove, setup_insecure};

const BATCH_SIZES: [usize; 4] = [1, 4, 12, 32];
const TX_BASE_GAS: u64 = 21_000;

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
    let mut state = generator.genesis(config, 1_000_000).expect("genesis");
    let anvil = anvil::Anvil::start();
    let genesis = root_word(&state.root());
    let settlement = deploy_settlement(anvil.provider(0), &vk, SettlementMode::Roots { genesis })
        .await
        .expect("deploy");

    let mut baseline = None;
    println!(
        "| chunks | settle tx gas | tx gas / chunk | execution gas | execution / chunk | one verifyProof per proof (execution) | batched / one-at-a-time |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (i, &n) in BATCH_SIZES.iter().enumerate() {
        let built = state
            .apply_batch(&generator.batch(&state, n))
            .expect("a batch");
        let chunks: Vec<(PublicInputs, Proof)> = built
            .jobs
            .iter()
            .map(|job| (job.public, prove(&pk, &job.to_bytes()).expect("a proof")))
            .collect();
        let per_proof = *baseline.get_or_insert_with(|| baseline_gas(&vk, &chunks[0]));
        let calldata = batch_calldata(&chunks).expect("calldata");
        let input = settlement
            .settle(
                i as u64 + 1,
                calldata.proofs.clone(),
                calldata.inputs.clone(),
            )
            .calldata()
            .clone();
        let receipt = settle(&settlement, i as u64 + 1, &calldata)
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
    }
}
