//! Accounts and the balance rules every transaction is applied under, shared
//! by appending, block cutting, reopening and chain verification.

use std::collections::{BTreeMap, HashMap};

use protocol::{ContentHash, PublicKey, codec};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::merkle;
use crate::tx::Tx;

/// A prover's account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// What the prover can withdraw.
    pub balance: u64,
    /// The nonce the prover's next withdrawal must carry.
    pub next_nonce: u64,
}

/// Applies the balance rules of `tx` to `account` (the prover's account just
/// before it). Job uniqueness and well-formedness are checked by the caller.
pub(crate) fn apply(tx: &Tx, account: &mut Account) -> Result<()> {
    match tx {
        Tx::Credit(c) => {
            account.balance = account
                .balance
                .checked_add(c.amount)
                .ok_or(Error::Overflow { prover: c.prover })?;
        }
        Tx::Withdraw(w) => {
            if w.nonce != account.next_nonce {
                return Err(Error::BadNonce {
                    prover: w.prover,
                    expected: account.next_nonce,
                    found: w.nonce,
                });
            }
            account.balance = debit(account.balance, w.amount, &w.prover)?;
            account.next_nonce += 1;
        }
        Tx::Penalty(p) => {
            account.balance = debit(account.balance, p.amount, &p.prover)?;
        }
    }
    Ok(())
}

fn debit(balance: u64, amount: u64, prover: &PublicKey) -> Result<u64> {
    balance
        .checked_sub(amount)
        .ok_or(Error::InsufficientBalance {
            prover: *prover,
            balance,
            requested: amount,
        })
}

/// Applies `txs` in order on top of `base`, returning the touched accounts'
/// new values; `base` is left as it was.
pub(crate) fn apply_all<'a>(
    txs: impl IntoIterator<Item = &'a Tx>,
    base: impl Fn(&PublicKey) -> Account,
) -> Result<HashMap<PublicKey, Account>> {
    let mut touched: HashMap<PublicKey, Account> = HashMap::new();
    for tx in txs {
        let prover = *tx.prover();
        let account = touched.entry(prover).or_insert_with(|| base(&prover));
        apply(tx, account)?;
    }
    Ok(touched)
}

/// The leaf of one account in the balance tree: the (prover, balance) pair.
pub fn balance_leaf(prover: &PublicKey, balance: u64) -> ContentHash {
    merkle::leaf_hash(&codec::encode(&(prover, balance)))
}

/// The balance commitment: the Merkle root over every account's
/// (prover, balance) leaf, sorted by prover key.
pub fn balance_root(accounts: &BTreeMap<PublicKey, Account>) -> ContentHash {
    let leaves: Vec<ContentHash> = accounts
        .iter()
        .map(|(prover, account)| balance_leaf(prover, account.balance))
        .collect();
    merkle::root_of(&leaves)
}
