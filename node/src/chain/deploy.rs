//! Deploying the contracts, settling a batch, anchoring a ledger block,
//! claiming a prover's pay; the signing provider they are sent through, and
//! a reading one for calls.
//!
//! Every call waits for the transaction's receipt; a transaction that the
//! node estimates to revert fails before it is sent, with the contract's
//! custom error in its revert data ([`ChainError::settlement_revert`],
//! [`ChainError::payouts_revert`] decode it).

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use prover_core::VerifyingKey;

use super::bindings::Payouts::{self, PayoutsErrors, PayoutsInstance};
use super::bindings::Settlement::{self, SettlementErrors, SettlementInstance};
use super::calldata::{BatchCalldata, key_words, payout_address};

/// What went wrong talking to the chain.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The node refused the call or transaction, or it reverted on estimation.
    #[error("chain call failed: {0}")]
    Contract(#[from] alloy::contract::Error),
    /// The transaction was mined but reverted.
    #[error("transaction {0} was mined but reverted")]
    Reverted(B256),
    /// The proofs or inputs could not be encoded.
    #[error("cannot encode the batch: {0}")]
    Encode(#[from] prover_core::Error),
    /// The RPC URL or the account key is unusable.
    #[error("{0}")]
    Setup(String),
}

impl ChainError {
    /// The Settlement contract's custom error, if this is one.
    pub fn settlement_revert(&self) -> Option<SettlementErrors> {
        match self {
            Self::Contract(e) => e.as_decoded_interface_error::<SettlementErrors>(),
            _ => None,
        }
    }

    /// The Payouts contract's custom error, if this is one.
    pub fn payouts_revert(&self) -> Option<PayoutsErrors> {
        match self {
            Self::Contract(e) => e.as_decoded_interface_error::<PayoutsErrors>(),
            _ => None,
        }
    }
}

/// The chain's result type.
pub type Result<T> = std::result::Result<T, ChainError>;

/// What a Settlement contract settles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettlementMode {
    /// The transfer circuit: chunks chain state roots (inputs 0 and 1) from
    /// this genesis root.
    Roots {
        /// The state root before batch 1.
        genesis: U256,
    },
    /// A circom circuit: the chunks' public signals, no roots.
    Statements,
}

/// Deploys a Settlement contract for proofs under `vk`.
pub async fn deploy_settlement<P: Provider>(
    provider: P,
    vk: &VerifyingKey,
    mode: SettlementMode,
) -> Result<SettlementInstance<P>> {
    let key = key_words(vk);
    let (genesis, chains_roots) = match mode {
        SettlementMode::Roots { genesis } => (genesis, true),
        SettlementMode::Statements => (U256::ZERO, false),
    };
    let deployed = Settlement::deploy(
        provider,
        key.alpha,
        key.beta,
        key.gamma,
        key.delta,
        key.ic,
        genesis,
        chains_roots,
    )
    .await?;
    Ok(deployed)
}

/// Deploys a Payouts contract anchored by `operator` (the deployer if
/// `None`), paying in the ERC-20 `token` (ETH if `None`).
pub async fn deploy_payouts<P: Provider>(
    provider: P,
    operator: Option<Address>,
    token: Option<Address>,
) -> Result<PayoutsInstance<P>> {
    let operator = operator.unwrap_or(Address::ZERO);
    let token = token.unwrap_or(Address::ZERO);
    Ok(Payouts::deploy(provider, operator, token).await?)
}

/// Settles batch `batch` in one transaction; returns its receipt.
pub async fn settle<P: Provider>(
    settlement: &SettlementInstance<P>,
    batch: u64,
    calldata: &BatchCalldata,
) -> Result<TransactionReceipt> {
    let call = settlement.settle(batch, calldata.proofs.clone(), calldata.inputs.clone());
    mined(call.send().await?.get_receipt().await)
}

/// Waits for a sent transaction's receipt; one mined but reverted is an
/// error.
pub async fn receipt(
    pending: alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
) -> Result<TransactionReceipt> {
    mined(pending.get_receipt().await)
}

/// Anchors ledger blocks `first`, `first + 1`, …: each block's hash and
/// balance root, in order.
pub async fn anchor<P: Provider>(
    payouts: &PayoutsInstance<P>,
    first: u64,
    blocks: &[(B256, B256)],
) -> Result<TransactionReceipt> {
    let (hashes, roots) = blocks.iter().copied().unzip();
    let call = payouts.anchor(first, hashes, roots);
    mined(call.send().await?.get_receipt().await)
}

/// Claims the balance `proof` shows on `payouts` (anyone may send it): the
/// contract pays the bound address the balance less what it paid before.
pub async fn claim<P: Provider>(
    payouts: &PayoutsInstance<P>,
    proof: &ledger::BalanceProof,
) -> Result<TransactionReceipt> {
    let header = &proof.header.header;
    let call = payouts.claim(
        B256::from(proof.prover.0),
        proof.account.balance,
        payout_address(proof.account.payout),
        header.height,
        U256::from(proof.index),
        U256::from(header.account_count),
        proof.path.iter().map(|h| B256::from(h.0)).collect(),
    );
    mined(call.send().await?.get_receipt().await)
}

/// A provider for the node at `url` that signs with the account whose
/// private key is `key` (hex, `0x` optional). It asks the node for every
/// nonce: alloy's default cached nonce counts a call whose gas estimate
/// reverted, and the next transaction then waits in the pool forever.
pub fn signing_provider(url: &str, key: &str) -> Result<DynProvider> {
    let signer: PrivateKeySigner = key.trim().parse().map_err(|_| {
        ChainError::Setup("the account key is not a 32-byte hex private key".into())
    })?;
    let url = url
        .parse()
        .map_err(|e| ChainError::Setup(format!("invalid RPC URL {url:?}: {e}")))?;
    Ok(ProviderBuilder::default()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(EthereumWallet::from(signer))
        .connect_http(url)
        .erased())
}

/// A provider for reading the node at `url` (calls only, no account).
pub fn reading_provider(url: &str) -> Result<DynProvider> {
    let url = url
        .parse()
        .map_err(|e| ChainError::Setup(format!("invalid RPC URL {url:?}: {e}")))?;
    Ok(ProviderBuilder::default().connect_http(url).erased())
}

fn mined(
    receipt: std::result::Result<TransactionReceipt, alloy::providers::PendingTransactionError>,
) -> Result<TransactionReceipt> {
    let receipt = receipt.map_err(alloy::contract::Error::from)?;
    if !receipt.status() {
        return Err(ChainError::Reverted(receipt.transaction_hash));
    }
    Ok(receipt)
}
