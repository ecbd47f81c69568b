//! Identifier newtypes: batches, jobs, requests, circuits, content hashes, time.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::hex;

/// A rollup batch, numbered by the distributor from 1 upward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BatchId(pub u64);

impl fmt::Display for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b{}", self.0)
    }
}

/// One proving job: chunk `index` of batch `batch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JobId {
    /// The batch the job belongs to.
    pub batch: BatchId,
    /// The chunk's position in the batch, from 0.
    pub index: u32,
}

impl JobId {
    /// The job for chunk `index` of `batch`.
    pub fn new(batch: BatchId, index: u32) -> Self {
        Self { batch, index }
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/j{}", self.batch, self.index)
    }
}

/// A string that is not a job id (`b<batch>/j<index>`, e.g. `b7/j3`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0:?} is not a job id; write it as b<batch>/j<index>, e.g. b7/j3")]
pub struct InvalidJobId(pub String);

impl FromStr for JobId {
    type Err = InvalidJobId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidJobId(s.to_string());
        let (batch, index) = s.split_once('/').ok_or_else(bad)?;
        let batch = batch.strip_prefix('b').ok_or_else(bad)?;
        let index = index.strip_prefix('j').ok_or_else(bad)?;
        Ok(JobId::new(
            BatchId(batch.parse().map_err(|_| bad())?),
            index.parse().map_err(|_| bad())?,
        ))
    }
}

/// One hand-out of a job to a prover. Every hand-out gets a fresh one, so a proof
/// can be bound to the exact assignment it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// Names a circuit and its configuration, e.g. `transfer-d20-k8`.
///
/// 1 to [`CircuitId::MAX_LEN`] characters from `[a-z0-9._-]`, so it is safe in
/// file names, logs and metrics labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CircuitId(String);

/// Why a string is not a valid [`CircuitId`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid circuit id {0:?}: use 1 to 64 characters from a-z, 0-9, '.', '_' and '-'")]
pub struct InvalidCircuitId(pub String);

impl CircuitId {
    /// The longest circuit id accepted.
    pub const MAX_LEN: usize = 64;

    /// Checks and wraps a circuit name.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidCircuitId> {
        let name = name.into();
        let valid = !name.is_empty()
            && name.len() <= Self::MAX_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
        if valid {
            Ok(Self(name))
        } else {
            Err(InvalidCircuitId(name))
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CircuitId {
    type Error = InvalidCircuitId;
    fn try_from(name: String) -> Result<Self, Self::Error> {
        Self::new(name)
    }
}

impl From<CircuitId> for String {
    fn from(id: CircuitId) -> Self {
        id.0
    }
}

impl FromStr for CircuitId {
    type Err = InvalidCircuitId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for CircuitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// SHA-256 of some content: a proving key, a verifying key, a proof, a witness.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    /// Hashes `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Hashes content fed in pieces, e.g. a file read in chunks.
    pub fn of_parts<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        Self(hasher.finalize().into())
    }

    /// The full hash in hex (64 characters).
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    /// The first 12 hex digits, for logs.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..6])
    }
}

impl FromStr for ContentHash {
    type Err = hex::HexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        hex::decode_array(s).map(Self)
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({}..)", self.short())
    }
}

/// Milliseconds since the Unix epoch.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Self(ms)
    }

    /// Milliseconds from `earlier` to `self`, or 0 if `earlier` is later.
    pub fn millis_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// This time plus `ms` milliseconds (saturating).
    pub fn plus_millis(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_parse_what_they_print() {
        let job = JobId::new(BatchId(7), 3);
        assert_eq!(job.to_string().parse::<JobId>().unwrap(), job);
        for bad in ["", "b7", "7/3", "b7/3", "bx/j1", "b1/j-1", "b1/j1/x"] {
            assert!(bad.parse::<JobId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn circuit_ids_are_checked() {
        assert!(CircuitId::new("transfer-d20-k8").is_ok());
        assert!(CircuitId::new("").is_err());
        assert!(CircuitId::new("Upper").is_err());
        assert!(CircuitId::new("a/b").is_err());
        assert!(CircuitId::new("x".repeat(65)).is_err());
        assert!(CircuitId::new("x".repeat(64)).is_ok());
    }

    #[test]
    fn ids_print_short() {
        assert_eq!(JobId::new(BatchId(7), 3).to_string(), "b7/j3");
        assert_eq!(RequestId(9).to_string(), "r9");
    }

    #[test]
    fn content_hash_hex_round_trip() {
        let h = ContentHash::of(b"abc");
        assert_eq!(
            h.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(h.to_hex().parse::<ContentHash>().unwrap(), h);
        assert_eq!(ContentHash::of_parts([&b"a"[..], b"bc"]), h);
    }
}
