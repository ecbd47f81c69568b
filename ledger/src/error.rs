//! The crate's error type: rule violations, receipt failures, storage trouble.

use std::path::PathBuf;

use protocol::{JobId, PublicKey};
use thiserror::Error;

/// Shorthand for results in this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Why a receipt was not accepted by [`verify_receipt`](crate::verify_receipt).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReceiptError {
    /// The block header names a different distributor than the one expected.
    #[error("receipt's block was produced by distributor {found}, expected {expected}")]
    WrongDistributor {
        /// The key the verifier trusts.
        expected: PublicKey,
        /// The key named in the header.
        found: PublicKey,
    },
    /// The distributor's signature over the block header does not verify.
    #[error("block {height}: the distributor's signature over the header does not verify")]
    BadHeaderSignature {
        /// The block's height as claimed by the header.
        height: u64,
    },
    /// The credit's position is outside the block.
    #[error("transaction index {index} is outside block {height} of {count} transactions")]
    IndexOutOfRange {
        /// The claimed position.
        index: u32,
        /// The block's height.
        height: u64,
        /// The number of transactions in the block.
        count: u32,
    },
    /// The credit and its inclusion proof do not lead to the block's transaction root.
    #[error("block {height}: the inclusion proof does not lead to the signed transaction root")]
    ProofMismatch {
        /// The block's height.
        height: u64,
    },
}

/// Everything that can go wrong in the ledger.
#[derive(Debug, Error)]
pub enum Error {
    /// The job was credited before (in a block or in the pending pool); a job is paid once, ever.
    #[error("job {job} is already credited; a job is paid at most once")]
    AlreadyCredited {
        /// The job.
        job: JobId,
    },
    /// A penalty is larger than the prover's balance.
    #[error("prover {prover:?} has {balance}, cannot take {requested}")]
    InsufficientBalance {
        /// The prover.
        prover: PublicKey,
        /// The balance at that point.
        balance: u64,
        /// The amount asked for.
        requested: u64,
    },
    /// A payout binding's signature does not verify.
    #[error("payout binding of prover {prover:?} is not validly signed by that prover")]
    BadSignature {
        /// The prover named in the binding.
        prover: PublicKey,
    },
    /// A payout binding for a prover the ledger never credited: accounts
    /// exist from their first credit, so strangers cannot make them.
    #[error("payout binding of prover {prover:?}, who has no account (never credited)")]
    NoAccount {
        /// The prover.
        prover: PublicKey,
    },
    /// A payout binding no newer than the one recorded (replayed or old).
    #[error(
        "payout binding of prover {prover:?} has sequence {offered}, not above the recorded {recorded} (replay?)"
    )]
    StaleBinding {
        /// The prover.
        prover: PublicKey,
        /// The sequence number of the binding recorded.
        recorded: u64,
        /// The sequence number offered.
        offered: u64,
    },
    /// A credit would push a balance past `u64::MAX`.
    #[error("credit would overflow the balance of prover {prover:?}")]
    Overflow {
        /// The prover.
        prover: PublicKey,
    },
    /// A transaction is malformed (zero amount, mismatched batch, over-long text).
    #[error("invalid transaction: {0}")]
    InvalidTx(String),
    /// The configuration cannot work (e.g. `max_block_txs` of 0).
    #[error("invalid ledger configuration: {0}")]
    InvalidConfig(String),
    /// No credit for this job exists.
    #[error("job {job} has not been credited")]
    NotCredited {
        /// The job.
        job: JobId,
    },
    /// The credit exists but its block has not been cut yet; ask again after the next block.
    #[error("job {job} is credited but its block is not cut yet; ask again after the next block")]
    NotYetInBlock {
        /// The job.
        job: JobId,
    },
    /// A receipt did not verify.
    #[error("invalid receipt: {0}")]
    Receipt(#[from] ReceiptError),
    /// Writing needs the distributor's secret key; this ledger was opened read-only.
    #[error("ledger {path} is open read-only; open it with the distributor key to write")]
    ReadOnly {
        /// The ledger directory.
        path: PathBuf,
    },
    /// An earlier write failed, so memory and disk may disagree; reopen the ledger.
    #[error("ledger {path} refused a write after an earlier storage failure; reopen it")]
    Poisoned {
        /// The ledger directory.
        path: PathBuf,
    },
    /// The ledger belongs to another distributor.
    #[error(
        "ledger {path} belongs to distributor {recorded}, not {offered}; use that distributor's key or another directory"
    )]
    WrongDistributor {
        /// The ledger directory.
        path: PathBuf,
        /// The distributor key recorded at creation.
        recorded: PublicKey,
        /// The key offered to open it.
        offered: PublicKey,
    },
    /// The directory holds something other than a CrowdProve ledger.
    #[error("{path} is not a CrowdProve ledger: {reason}")]
    Foreign {
        /// The directory.
        path: PathBuf,
        /// What gave it away.
        reason: String,
    },
    /// The ledger's stored data is damaged.
    #[error("ledger {path} is corrupt: {reason}")]
    Corrupt {
        /// The ledger directory.
        path: PathBuf,
        /// What is damaged.
        reason: String,
    },
    /// Chain verification found a fault; blocks below `height` are sound.
    #[error("ledger {path}: chain invalid at height {height}: {reason}")]
    InvalidChain {
        /// The ledger directory.
        path: PathBuf,
        /// The first bad height (the tip height + 1 means the pending pool).
        height: u64,
        /// What is wrong there.
        reason: String,
    },
    /// RocksDB failed.
    #[error("ledger {path}: storage error: {source}")]
    Db {
        /// The ledger directory.
        path: PathBuf,
        /// RocksDB's error.
        source: rocksdb::Error,
    },
    /// Writing an export failed.
    #[error("export failed: {0}")]
    Export(#[from] std::io::Error),
}
