//! `crowdprove claim`: pays a prover's ledger balance out on chain from a
//! balance proof, checked offline against the distributor's key first.

use std::path::PathBuf;

use alloy::primitives::{Address, B256};
use anyhow::{Context, anyhow, bail};
use clap::Args;
use ledger::BalanceProof;
use node::chain::Payouts::{self, PayoutsErrors};
use node::config::parse_public_key;

#[derive(Debug, Args)]
pub(crate) struct ClaimArgs {
    /// The balance proof: the one a prover keeps in
    /// `<data-dir>/balance-proof` (served with its receipts), or one from
    /// `crowdprove ledger balance-proof --out`.
    #[arg(long, value_name = "FILE")]
    balance_proof: PathBuf,
    /// The distributor's public key (hex): the proof must be of a block it
    /// signed.
    #[arg(long)]
    distributor: String,
    /// The chain's JSON-RPC URL.
    #[arg(long, default_value = "http://127.0.0.1:8545")]
    rpc: String,
    /// The Payouts contract's address.
    #[arg(long)]
    payouts: String,
    /// A file with the private key (hex) of the account that sends the
    /// claim and pays its gas. Any account may: the pay goes to the address
    /// the prover bound, whoever sends it.
    #[arg(long, value_name = "FILE")]
    sender_key: PathBuf,
    /// Refuse to send unless the proof pays this address (your `[prover]
    /// payout_address`): a proof from anyone but your own prover may name
    /// another.
    #[arg(long, value_name = "0x…")]
    payout_address: Option<String>,
}

/// Checks the proof, then sends the claim; prints what was paid.
pub(crate) fn claim(args: &ClaimArgs) -> anyhow::Result<()> {
    let path = &args.balance_proof;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let proof = BalanceProof::decode(&bytes)
        .with_context(|| format!("{} is not a balance proof", path.display()))?;
    let distributor = parse_public_key(&args.distributor)?;
    let account = ledger::verify_balance_proof(&proof, &distributor)
        .context("the balance proof does not check against the distributor's key")?;
    let height = proof.header.header.height;
    if account.payout.is_unbound() {
        bail!(
            "no payout address was bound at block {height}: set [prover] payout_address, \
             earn one more credit, and claim from a later block"
        );
    }
    if let Some(expected) = &args.payout_address {
        let expected: protocol::PayoutAddress = expected
            .parse()
            .map_err(|e| anyhow!("--payout-address {expected:?}: {e}"))?;
        if account.payout != expected {
            bail!(
                "the balance proof pays {}, not {expected}: a claim would pay someone else",
                account.payout
            );
        }
    }
    let payouts: Address = args
        .payouts
        .parse()
        .map_err(|_| anyhow!("--payouts {:?} is not an address", args.payouts))?;
    let key = std::fs::read_to_string(&args.sender_key)
        .with_context(|| format!("cannot read {}", args.sender_key.display()))?;
    let provider = node::chain::signing_provider(&args.rpc, &key)?;
    tokio::runtime::Runtime::new()?.block_on(async {
        let contract = Payouts::new(payouts, provider);
        let prover = B256::from(proof.prover.0);
        let before = contract.paid(prover).call().await.map_err(|e| {
            anyhow!(
                "cannot read the Payouts contract at {payouts} via {}: {e}",
                args.rpc
            )
        })?;
        let receipt =
            node::chain::claim(&contract, &proof)
                .await
                .map_err(|e| match e.payouts_revert() {
                    Some(revert) => anyhow!("the claim was refused: {}", describe(&revert)),
                    None => anyhow!("the claim failed: {e}"),
                })?;
        println!(
            "paid {} to {} (balance {} at block {height}, {before} paid before); tx {}, gas {}",
            account.balance - before,
            account.payout,
            account.balance,
            receipt.transaction_hash,
            receipt.gas_used
        );
        Ok(())
    })
}

/// One line for a Payouts revert.
fn describe(revert: &PayoutsErrors) -> String {
    match revert {
        PayoutsErrors::HeightNotAnchored(e) => format!(
            "block {} is not anchored on chain yet; claim again once the distributor anchors it",
            e.height
        ),
        PayoutsErrors::NothingToClaim(e) => format!(
            "nothing to claim: the balance at that block is {} and {} was paid already",
            e.balance, e.alreadyPaid
        ),
        PayoutsErrors::InvalidBalanceProof(_) => {
            "the root anchored at that height is not this block's (another ledger, or a forged anchor)"
                .into()
        }
        PayoutsErrors::PayoutUnbound(_) => "no payout address bound in that block".into(),
        PayoutsErrors::PayoutFailed(e) => format!(
            "the contract could not pay {} to {} (is it funded?)",
            e.amount, e.payout
        ),
        other => format!("{other:?}"),
    }
}
