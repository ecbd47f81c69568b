//! Receipts: a credit, its Merkle inclusion proof and the signed header of its
//! block, checkable offline with only the distributor's public key; and
//! balance proofs: an account's leaf and its path to a block's balance root,
//! what a claim on the payout contract carries.

use protocol::{ContentHash, PublicKey, codec};
use serde::{Deserialize, Serialize};

use crate::block::SignedHeader;
use crate::error::{ReceiptError, Result};
use crate::merkle;
use crate::state::{self, Account};
use crate::tx::{Credit, Tx};

/// The largest encoded receipt accepted (a header, a credit, 64 siblings).
pub const MAX_RECEIPT_BYTES: usize = 4096;

/// Proof that a credit is in a block the distributor signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The credit.
    pub credit: Credit,
    /// Its position in the block.
    pub index: u32,
    /// Sibling hashes from the credit's leaf up to the transaction root.
    pub proof: Vec<ContentHash>,
    /// The signed header of the block holding the credit.
    pub header: SignedHeader,
}

impl Receipt {
    /// The wire and file form (protocol codec).
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes the wire form.
    pub fn decode(bytes: &[u8]) -> std::result::Result<Self, codec::CodecError> {
        codec::decode(bytes, MAX_RECEIPT_BYTES)
    }
}

/// Checks `receipt` against the distributor's key alone: the header names
/// that distributor and carries its signature, and the credit sits at the
/// stated index under the signed transaction root. Returns the credit.
pub fn verify_receipt<'a>(receipt: &'a Receipt, distributor: &PublicKey) -> Result<&'a Credit> {
    let header = &receipt.header.header;
    receipt.header.verify(distributor)?;
    if receipt.index >= header.tx_count {
        return Err(ReceiptError::IndexOutOfRange {
            index: receipt.index,
            height: header.height,
            count: header.tx_count,
        }
        .into());
    }
    let leaf = Tx::Credit(receipt.credit.clone()).leaf_hash();
    if !merkle::verify_proof(
        leaf,
        u64::from(receipt.index),
        u64::from(header.tx_count),
        &receipt.proof,
        &header.tx_root,
    ) {
        return Err(ReceiptError::ProofMismatch {
            height: header.height,
        }
        .into());
    }
    Ok(&receipt.credit)
}

/// Proof that `prover`'s account stood at `account` in a block the
/// distributor signed: the balance leaf's path to the header's balance root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceProof {
    /// The prover.
    pub prover: PublicKey,
    /// Its account as of the block.
    pub account: Account,
    /// The leaf's position (accounts sorted by prover key).
    pub index: u64,
    /// Sibling hashes from the leaf up to the balance root.
    pub path: Vec<ContentHash>,
    /// The block's signed header (its height, hash and balance root).
    pub header: SignedHeader,
}

impl BalanceProof {
    /// The file form (protocol codec).
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes the file form.
    pub fn decode(bytes: &[u8]) -> std::result::Result<Self, codec::CodecError> {
        codec::decode(bytes, MAX_RECEIPT_BYTES)
    }
}

/// Checks `proof` against the distributor's key alone: the header is the
/// distributor's, and the account's leaf sits at the stated index under its
/// signed balance root. Returns the account.
pub fn verify_balance_proof<'a>(
    proof: &'a BalanceProof,
    distributor: &PublicKey,
) -> Result<&'a Account> {
    let header = &proof.header.header;
    proof.header.verify(distributor)?;
    let leaf = state::balance_leaf(&proof.prover, &proof.account);
    if !merkle::verify_proof(
        leaf,
        proof.index,
        header.account_count,
        &proof.path,
        &header.balance_root,
    ) {
        return Err(ReceiptError::ProofMismatch {
            height: header.height,
        }
        .into());
    }
    Ok(&proof.account)
}
