//! CrowdProve's vocabulary: who is speaking, what they may say, how it travels,
//! and the rule that decides who proves what.
//!
//! No networking, storage or async runtime lives here; every other crate
//! speaks these types.
//!
//! # Layout
//! - [`ids`]: batch, job, request and circuit ids, content hashes, timestamps.
//! - [`identity`]: ed25519 keys, signatures, node ids and the key file.
//! - [`messages`]: every wire message, its domain tag and size limit.
//! - [`envelope`]: the signed envelope, freshness, replay protection.
//! - [`codec`]: the bincode encoding with size limits and no trailing bytes.
//! - [`hex`]: hex for keys and hashes shown to people.
//! - [`payout`]: a prover's payout address and its signed binding.
//! - [`lrp`]: the Least-Recently-Processed job assignment rule, as an event-driven state machine.

pub mod codec;
pub mod envelope;
pub mod hex;
pub mod identity;
pub mod ids;
pub mod lrp;
pub mod messages;
pub mod payout;

pub use identity::{NodeId, PublicKey, PublicKeyError, SecretKey, Signature};
pub use ids::{BatchId, CircuitId, ContentHash, JobId, RequestId, Timestamp};
pub use payout::{PayoutAddress, PayoutBinding};
