//! Accounts and the balance rules every transaction is applied under, shared
//! by appending, block cutting, reopening and chain verification.

use std::collections::{BTreeMap, HashMap};

use protocol::{ContentHash, PayoutAddress, PublicKey};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::merkle;
use crate::tx::Tx;

/// A prover's account. It exists from the prover's first credit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Credits less penalties: cumulative, what the payout contract pays out
    /// in all (less what it paid before).
    pub balance: u64,
    /// Where the prover's pay goes; [`PayoutAddress::UNBOUND`] until it binds one.
    pub payout: PayoutAddress,
    /// The sequence number of the binding recorded; a new one must be higher.
    pub payout_seq: u64,
}

/// Applies the rules of `tx` to `account` (the prover's account just before
/// it; the default for a prover never credited). Job uniqueness and
/// well-formedness are checked by the caller.
pub(crate) fn apply(tx: &Tx, account: &mut Account) -> Result<()> {
    match tx {
        Tx::Credit(c) => {
            account.balance = account
                .balance
                .checked_add(c.amount)
                .ok_or(Error::Overflow { prover: c.prover })?;
        }
        Tx::BindPayout(b) => {
            if *account == Account::default() {
                return Err(Error::NoAccount { prover: b.prover });
            }
            if b.binding.seq <= account.payout_seq {
                return Err(Error::StaleBinding {
                    prover: b.prover,
                    recorded: account.payout_seq,
                    offered: b.binding.seq,
                });
            }
            account.payout = b.binding.address;
            account.payout_seq = b.binding.seq;
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

/// Bytes of a balance leaf's data.
pub const BALANCE_LEAF_BYTES: usize = 32 + 8 + 20;

/// The data of one account's balance leaf: `prover key (32) ‖ balance (u64
/// big-endian) ‖ payout address (20)`, the bytes `contracts/Payouts.sol`
/// hashes to check a claim.
pub fn balance_leaf_data(prover: &PublicKey, account: &Account) -> [u8; BALANCE_LEAF_BYTES] {
    let mut data = [0u8; BALANCE_LEAF_BYTES];
    data[..32].copy_from_slice(&prover.0);
    data[32..40].copy_from_slice(&account.balance.to_be_bytes());
    data[40..].copy_from_slice(&account.payout.0);
    data
}

/// The leaf of one account in the balance tree.
pub fn balance_leaf(prover: &PublicKey, account: &Account) -> ContentHash {
    merkle::leaf_hash(&balance_leaf_data(prover, account))
}

/// The balance commitment: the Merkle root over every account's balance
/// leaf, sorted by prover key.
pub fn balance_root(accounts: &BTreeMap<PublicKey, Account>) -> ContentHash {
    balance_tree(accounts).root()
}

/// The Merkle tree over `accounts`' balance leaves, in key order: its root
/// is the balance root, its paths are what claims carry.
pub fn balance_tree(accounts: &BTreeMap<PublicKey, Account>) -> merkle::MerkleTree {
    merkle::MerkleTree::from_leaves(
        accounts
            .iter()
            .map(|(prover, account)| balance_leaf(prover, account))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leaf_data_is_key_then_big_endian_balance_then_address() {
        let account = Account {
            balance: 0x0102_0304_0506_0708,
            payout: PayoutAddress([0xab; 20]),
            payout_seq: 9,
        };
        let data = balance_leaf_data(&PublicKey([7; 32]), &account);
        assert_eq!(&data[..32], &[7; 32]);
        assert_eq!(&data[32..40], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&data[40..], &[0xab; 20]);
        let mut prefixed = vec![merkle::LEAF_PREFIX];
        prefixed.extend_from_slice(&data);
        assert_eq!(
            balance_leaf(&PublicKey([7; 32]), &account),
            ContentHash::of(&prefixed)
        );
    }
}
