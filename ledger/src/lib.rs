//! CrowdProve's compensation ledger: credits and payout bindings grouped in
//! signed, hash-chained blocks on RocksDB, with receipts any prover can check
//! offline and a balance root a payout contract pays claims against.
//!
//! The ledger enforces its own rules: a job is credited at most once, ever;
//! balances never go negative; a payout binding needs the prover's signature,
//! an account (a credit first) and a sequence number above the one recorded;
//! heights are contiguous and hashes chain.
//! [`Ledger::append`] makes transactions durable in a pending pool with one
//! atomic (fsynced by default) write; blocks are cut from that pool by count
//! or age with a second atomic write. `docs/ledger.md` describes the formats.
//!
//! # Layout
//! - [`ledger`]: [`Ledger`] — open, append, cut blocks, queries, receipts,
//!   chain verification, export.
//! - [`tx`]: the transactions ([`Credit`], [`BindPayout`], [`Penalty`]).
//! - [`block`]: block headers, hashes and the distributor's signature.
//! - [`receipt`]: [`Receipt`] and [`BalanceProof`], checked by the pure
//!   [`verify_receipt`] and [`verify_balance_proof`].
//! - [`merkle`]: the SHA-256 Merkle tree and its inclusion proofs.
//! - [`state`]: accounts, the balance rules and the balance leaf.
//! - [`store`]: the RocksDB column families and key layout.
//! - [`error`]: [`Error`] and [`Result`].

pub mod block;
pub mod error;
pub mod ledger;
pub mod merkle;
pub mod receipt;
pub mod state;
pub mod store;
pub mod tx;

pub use block::{BlockHeader, SignedHeader};
pub use error::{Error, ReceiptError, Result};
pub use ledger::{ChainReport, FsyncPolicy, HistoryEntry, Ledger, LedgerConfig};
pub use receipt::{BalanceProof, Receipt, verify_balance_proof, verify_receipt};
pub use state::Account;
pub use store::{PendingTx, TxLocation};
pub use tx::{BindPayout, Credit, Penalty, Tx};
