//! Balance trees, claims, and the two ways Payouts is funded.

use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use ledger::merkle::MerkleTree;
use ledger::state::balance_leaf;
use node::chain::ChainError;
use node::chain::Payouts::{self, PayoutsInstance};
use protocol::identity::PublicKey;

use super::anvil::{Anvil, Dyn};

alloy::sol!(
    #[sol(rpc)]
    TestToken,
    "../contracts/out/TestToken.json"
);

/// A Payouts contract seen through a test provider.
pub type PayoutsOf = PayoutsInstance<Dyn>;

/// A made-up prover key.
pub fn prover(n: u8) -> PublicKey {
    PublicKey([n; 32])
}

/// The same Payouts contract, sent to by `provider`'s account.
pub fn payouts_as(payouts: &PayoutsOf, provider: Dyn) -> PayoutsOf {
    Payouts::new(*payouts.address(), provider)
}

/// The siblings of leaf `index`, as the contract takes them.
pub fn path_of(tree: &MerkleTree, index: u64) -> Vec<B256> {
    let proof = tree.proof(index as usize).expect("index in the tree");
    proof.iter().map(|h| B256::from(h.0)).collect()
}

/// A block's balances and their tree.
pub struct BalanceTree {
    entries: Vec<(PublicKey, u64, Address)>,
    tree: MerkleTree,
}

/// One claim's arguments, to forge from.
#[derive(Clone)]
pub struct ClaimArgs {
    pub prover: PublicKey,
    pub balance: u64,
    pub payout: Address,
    pub index: u64,
    pub count: u64,
    pub path: Vec<B256>,
}

impl BalanceTree {
    pub fn new(entries: Vec<(PublicKey, u64, Address)>) -> Self {
        let leaves = entries
            .iter()
            .map(|(key, balance, payout)| {
                let account = ledger::Account {
                    balance: *balance,
                    payout: protocol::PayoutAddress(payout.0.0),
                    payout_seq: 1,
                };
                balance_leaf(key, &account)
            })
            .collect();
        Self {
            entries,
            tree: MerkleTree::from_leaves(leaves),
        }
    }

    pub fn root(&self) -> B256 {
        B256::from(self.tree.root().0)
    }

    /// The honest claim of entry `index`.
    pub fn claim_args(&self, index: usize) -> ClaimArgs {
        let (prover, balance, payout) = self.entries[index];
        ClaimArgs {
            prover,
            balance,
            payout,
            index: index as u64,
            count: self.entries.len() as u64,
            path: path_of(&self.tree, index as u64),
        }
    }
}

impl ClaimArgs {
    /// The claim a ledger's balance proof makes.
    pub fn from_proof(proof: &ledger::BalanceProof) -> Self {
        Self {
            prover: proof.prover,
            balance: proof.account.balance,
            payout: node::chain::payout_address(proof.account.payout),
            index: proof.index,
            count: proof.header.header.account_count,
            path: proof.path.iter().map(|h| B256::from(h.0)).collect(),
        }
    }
}

/// Claims entry `index` of `tree` against anchored height `height`.
pub async fn claim(
    payouts: &PayoutsOf,
    tree: &BalanceTree,
    index: usize,
    height: u64,
) -> Result<TransactionReceipt, ChainError> {
    send_claim(payouts, &tree.claim_args(index), height).await
}

/// Sends a claim with these arguments.
pub async fn send_claim(
    payouts: &PayoutsOf,
    args: &ClaimArgs,
    height: u64,
) -> Result<TransactionReceipt, ChainError> {
    let call = payouts.claim(
        B256::from(args.prover.0),
        args.balance,
        args.payout,
        height,
        U256::from(args.index),
        U256::from(args.count),
        args.path.clone(),
    );
    let receipt = call.send().await?.get_receipt().await;
    let receipt = receipt.map_err(alloy::contract::Error::from)?;
    assert!(receipt.status(), "a sent claim succeeds");
    Ok(receipt)
}

/// Sends `amount` wei from the operator (account 0) to `to`.
pub async fn fund_eth(anvil: &Anvil, to: Address, amount: u64) {
    let tx = TransactionRequest::default()
        .to(to)
        .value(U256::from(amount));
    let pending = anvil.provider(0).send_transaction(tx).await.unwrap();
    assert!(pending.get_receipt().await.unwrap().status());
}

/// Deploys the test ERC-20.
pub async fn deploy_token(anvil: &Anvil) -> TestToken::TestTokenInstance<Dyn> {
    TestToken::deploy(anvil.provider(0)).await.unwrap()
}

/// What a Payouts contract pays in.
pub enum Funding {
    Eth,
    Token(TestToken::TestTokenInstance<Dyn>),
}

impl Funding {
    /// `who`'s balance in the paid currency.
    pub async fn balance(&self, anvil: &Anvil, who: Address) -> U256 {
        match self {
            Self::Eth => anvil.provider(0).get_balance(who).await.unwrap(),
            Self::Token(token) => token.balanceOf(who).call().await.unwrap(),
        }
    }
}

/// The transactions that anchored blocks on `payouts`, oldest first, each
/// with the heights it anchored (read from the `Anchored` events).
pub async fn anchor_transactions<P: Provider>(payouts: &PayoutsInstance<P>) -> Vec<Vec<u64>> {
    let events = payouts
        .Anchored_filter()
        .from_block(0)
        .query()
        .await
        .unwrap();
    let mut txs: Vec<(Option<B256>, Vec<u64>)> = Vec::new();
    for (event, log) in events {
        match txs.last_mut() {
            Some((tx, heights)) if *tx == log.transaction_hash => heights.push(event.height),
            _ => txs.push((log.transaction_hash, vec![event.height])),
        }
    }
    txs.into_iter().map(|(_, heights)| heights).collect()
}

/// Checks that every block up to `anchored` was anchored once, in order,
/// and returns how many transactions did it.
pub async fn anchored_once<P: Provider>(payouts: &PayoutsInstance<P>, anchored: u64) -> u64 {
    let txs = anchor_transactions(payouts).await;
    let heights: Vec<u64> = txs.iter().flatten().copied().collect();
    assert_eq!(
        heights,
        (1..=anchored).collect::<Vec<_>>(),
        "anchored: {txs:?}"
    );
    txs.len() as u64
}
