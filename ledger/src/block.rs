//! Block headers, their hashes and the distributor's signature over them.

use protocol::{ContentHash, PublicKey, SecretKey, Signature, Timestamp, codec};
use serde::{Deserialize, Serialize};

use crate::error::ReceiptError;

/// The header format version written by this code. Version 2: balance
/// leaves commit to the payout address (`state::balance_leaf_data`).
pub const HEADER_VERSION: u16 = 2;

/// Domain tag prefixed to an encoded header before hashing.
pub const HEADER_DOMAIN: &[u8] = b"crowdprove/ledger/block-header/v1\0";

/// Domain tag prefixed to a block hash before the distributor signs it.
pub const SIGNATURE_DOMAIN: &[u8] = b"crowdprove/ledger/block-signature/v1\0";

/// The largest encoded signed header accepted.
pub const MAX_HEADER_BYTES: usize = 512;

/// A block header: everything a block commits to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockHeader {
    /// Format version, [`HEADER_VERSION`].
    pub version: u16,
    /// 0 for the genesis block, then +1 per block.
    pub height: u64,
    /// The previous block's hash; all zeros for genesis.
    pub prev_hash: ContentHash,
    /// When the block was cut; never earlier than the previous block's.
    pub timestamp: Timestamp,
    /// Transactions in the block.
    pub tx_count: u32,
    /// Merkle root of the block's transactions, in order.
    pub tx_root: ContentHash,
    /// Merkle root of every account's balance leaf after the block, sorted by prover.
    pub balance_root: ContentHash,
    /// Accounts in the balance tree.
    pub account_count: u64,
    /// The distributor that signs the chain.
    pub distributor: PublicKey,
}

impl BlockHeader {
    /// The block's hash: SHA-256 over [`HEADER_DOMAIN`] and the encoded header.
    pub fn hash(&self) -> ContentHash {
        ContentHash::of_parts([HEADER_DOMAIN, &codec::encode(self)])
    }

    /// Signs the header with the distributor's key.
    pub fn sign(self, distributor: &SecretKey) -> SignedHeader {
        let signature = distributor.sign(&signing_bytes(&self.hash()));
        SignedHeader {
            header: self,
            signature,
        }
    }
}

fn signing_bytes(hash: &ContentHash) -> Vec<u8> {
    [SIGNATURE_DOMAIN, &hash.0].concat()
}

/// A header with the distributor's signature over its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedHeader {
    /// The header.
    pub header: BlockHeader,
    /// The distributor's signature over [`SIGNATURE_DOMAIN`] ‖ the header hash.
    pub signature: Signature,
}

impl SignedHeader {
    /// The block's hash.
    pub fn hash(&self) -> ContentHash {
        self.header.hash()
    }

    /// Checks the header names `distributor` and carries its valid signature.
    pub fn verify(&self, distributor: &PublicKey) -> Result<(), ReceiptError> {
        if self.header.distributor != *distributor {
            return Err(ReceiptError::WrongDistributor {
                expected: *distributor,
                found: self.header.distributor,
            });
        }
        distributor
            .verify(&signing_bytes(&self.hash()), &self.signature)
            .map_err(|_| ReceiptError::BadHeaderSignature {
                height: self.header.height,
            })
    }

    /// The stored form.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes the stored form.
    pub fn decode(bytes: &[u8]) -> Result<Self, codec::CodecError> {
        codec::decode(bytes, MAX_HEADER_BYTES)
    }
}
