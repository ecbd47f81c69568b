//! RocksDB layout: column families, key encodings and stored records.
//!
//! | column family | key | value |
//! | --- | --- | --- |
//! | `meta` | `magic`, `distributor`, `next_seq` | format tag, distributor key, next pending sequence number (u64 BE) |
//! | `blocks` | height (u64 BE) | encoded [`SignedHeader`](crate::SignedHeader) |
//! | `txs` | height (u64 BE) ‖ index (u32 BE) | encoded [`Tx`](crate::Tx) |
//! | `trees` | height (u64 BE) | every level of the block's transaction Merkle tree |
//! | `index` | batch (u64 BE) ‖ job index (u32 BE) | encoded [`TxLocation`] of the job's credit |
//! | `history` | prover (32 bytes) ‖ height ‖ index | empty |
//! | `balances` | prover (32 bytes) | encoded [`Account`](crate::Account) as of the tip block |
//! | `pending` | sequence number (u64 BE) | encoded [`PendingTx`] |
//!
//! Big-endian integers make RocksDB's byte order the numeric order, so
//! iterators walk heights and sequence numbers in order.

use protocol::{JobId, PublicKey, Timestamp};
use rocksdb::{BlockBasedOptions, ColumnFamilyDescriptor, DBCompressionType, Options};
use serde::{Deserialize, Serialize};

use crate::tx::Tx;

pub(crate) const CF_META: &str = "meta";
pub(crate) const CF_BLOCKS: &str = "blocks";
pub(crate) const CF_TXS: &str = "txs";
pub(crate) const CF_TREES: &str = "trees";
pub(crate) const CF_INDEX: &str = "index";
pub(crate) const CF_HISTORY: &str = "history";
pub(crate) const CF_BALANCES: &str = "balances";
pub(crate) const CF_PENDING: &str = "pending";

/// Every column family a ledger has, besides RocksDB's `default`.
pub(crate) const COLUMN_FAMILIES: [&str; 8] = [
    CF_META,
    CF_BLOCKS,
    CF_TXS,
    CF_TREES,
    CF_INDEX,
    CF_HISTORY,
    CF_BALANCES,
    CF_PENDING,
];

pub(crate) const META_MAGIC: &[u8] = b"magic";
pub(crate) const META_DISTRIBUTOR: &[u8] = b"distributor";
pub(crate) const META_NEXT_SEQ: &[u8] = b"next_seq";

/// The value under `meta/magic`: names the format and its version.
pub(crate) const MAGIC: &[u8] = b"crowdprove-ledger v2";

/// Where a credited job's transaction lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxLocation {
    /// Appended and durable, waiting in the pending pool for the next block.
    Pending {
        /// Its sequence number in the pool.
        seq: u64,
    },
    /// In a block.
    Block {
        /// The block's height.
        height: u64,
        /// Its position in the block.
        index: u32,
    },
}

/// A transaction in the pending pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTx {
    /// When `append` accepted it (drives time-based block cutting).
    pub appended_at: Timestamp,
    /// The transaction.
    pub tx: Tx,
}

pub(crate) fn height_key(height: u64) -> [u8; 8] {
    height.to_be_bytes()
}

pub(crate) fn tx_key(height: u64, index: u32) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..8].copy_from_slice(&height.to_be_bytes());
    key[8..].copy_from_slice(&index.to_be_bytes());
    key
}

/// Splits a `txs` key; `None` if it has the wrong length.
pub(crate) fn parse_tx_key(key: &[u8]) -> Option<(u64, u32)> {
    let key: [u8; 12] = key.try_into().ok()?;
    let height = u64::from_be_bytes(key[..8].try_into().ok()?);
    let index = u32::from_be_bytes(key[8..].try_into().ok()?);
    Some((height, index))
}

pub(crate) fn job_key(job: JobId) -> [u8; 12] {
    tx_key(job.batch.0, job.index)
}

pub(crate) fn history_key(prover: &PublicKey, height: u64, index: u32) -> [u8; 44] {
    let mut key = [0u8; 44];
    key[..32].copy_from_slice(&prover.0);
    key[32..].copy_from_slice(&tx_key(height, index));
    key
}

pub(crate) fn parse_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// Options shared by every column family.
fn cf_options() -> Options {
    let mut opts = Options::default();
    opts.set_compression_type(DBCompressionType::Lz4);
    opts
}

/// Column family descriptors; the job index gets a Bloom filter because every
/// credit appended looks its job up there, and almost all lookups miss.
pub(crate) fn descriptors() -> Vec<ColumnFamilyDescriptor> {
    COLUMN_FAMILIES
        .iter()
        .map(|&name| {
            let mut opts = cf_options();
            if name == CF_INDEX {
                let mut table = BlockBasedOptions::default();
                table.set_bloom_filter(10.0, false);
                opts.set_block_based_table_factory(&table);
            }
            ColumnFamilyDescriptor::new(name, opts)
        })
        .collect()
}

/// Database-wide options; `create` for a new ledger.
pub(crate) fn db_options(create: bool) -> Options {
    let mut opts = cf_options();
    opts.create_if_missing(create);
    opts.create_missing_column_families(create);
    opts.set_keep_log_file_num(4);
    opts
}
