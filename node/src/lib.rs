//! The `crowdprove` node: the network layer, the distributor and prover
//! roles, the job store and the HTTP status API. The binary (`main.rs`) is a
//! thin command line over this library; integration tests and the testnet
//! use the same pieces.
//!
//! # Layout
//! - [`config`]: the TOML configuration and its defaults.
//! - [`chain`]: the L1 contracts' bindings: settling batches, anchoring blocks, payouts.
//! - [`network`]: the one task that owns the libp2p swarm, and its handle.
//! - [`distributor`]: batches → jobs → LRP → verification → ledger; the job store.
//! - [`prover`]: claim → prove → submit; the proving-key cache; receipts.
//! - [`crowd`]: many prover identities in one process (`crowdprove crowd`).
//! - [`simulate`]: a proving crowd in virtual time on the real scheduler
//!   (`crowdprove simulate`).
//! - [`api`]: the dashboard at `/`, `/status`, `/metrics`, `POST /batch`.
//! - [`status_doc`]: the `/status` documents, typed ([`status_doc::DistributorStatus`]).
//! - [`status_text`]: `/status` rendered for a person (`crowdprove status`).
//! - [`metrics`]: the Prometheus registry.
//! - [`node`]: start-up and shutdown.
//! - [`node_info`]: what a running node says about itself (`node.json`).
//! - [`crash`]: crash points for the crash tests.
//! - [`disk`]: the data dir's free-space floor, checked before every write.

pub mod api;
pub mod chain;
pub mod config;
pub mod crash;
pub mod crowd;
pub mod disk;
pub mod distributor;
pub mod metrics;
pub mod network;
pub mod node;
pub mod node_info;
pub mod prover;
pub mod simulate;
pub mod status_doc;
pub mod status_text;
