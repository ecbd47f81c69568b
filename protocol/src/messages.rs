//! Every message of the CrowdProve protocol, with its domain tag, who signs it
//! and its size limit.
//!
//! | kind | tag | signed by | body limit |
//! | --- | --- | --- | --- |
//! | [`JobAnnouncement`] | 1 | distributor | 64 KiB |
//! | [`JobRequest`] | 2 | prover | 2 KiB |
//! | [`Assignment`] | 3 | distributor | 1 MiB + 1 KiB |
//! | [`NoWork`] | 4 | distributor | 256 B |
//! | [`ProofSubmission`] | 5 | prover | 5 KiB |
//! | [`Verdict`] | 6 | distributor | 1 KiB |
//! | [`Release`] | 7 | prover | 256 B |
//! | [`BatchProven`] | 8 | distributor | 1 KiB |
//! | [`KeyRequest`] | 9 | prover | 256 B |
//! | [`KeyChunk`] | 10 | distributor | 512 KiB + 1 KiB |
//! | [`ReceiptRequest`] | 11 | prover | 256 B |
//! | [`ReceiptReply`] | 12 | distributor | 4 KiB + 256 B |
//! | [`Rejected`] | 13 | distributor | 256 B |
//! | [`Heartbeat`] | 14 | prover | 256 B |
//!
//! Bodies are encoded with [`crate::codec`] and wrapped in a signed
//! [envelope](crate::envelope). After decoding, [`Message::check`] rejects
//! contents that are well-formed bytes but make no sense (a job of another
//! batch in an announcement, an empty proof, a chunk past the end of a key).

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::identity::PublicKey;
use crate::ids::{BatchId, CircuitId, ContentHash, JobId, RequestId};
use crate::payout::PayoutBinding;

/// The largest witness an assignment may carry.
pub const MAX_WITNESS_BYTES: usize = 1 << 20;
/// The largest proof a submission may carry (a Groth16 proof is 128 bytes
/// compressed; the margin leaves room for other proof systems).
pub const MAX_PROOF_BYTES: usize = 4 << 10;
/// Proving keys travel in chunks of this many bytes (the last may be shorter).
pub const KEY_CHUNK_BYTES: usize = 512 << 10;
/// The longest proving key a chunk may announce: 4 GiB, ample for a circuit
/// of 2^24 constraints (2^18 constraints make a 50 MB key). A prover never
/// fetches or stores more than this for one key, whatever a distributor says.
pub const MAX_KEY_BYTES: u64 = 4 << 30;
/// The most jobs one announcement may list.
pub const MAX_JOBS_PER_ANNOUNCEMENT: usize = 4096;
/// The most circuits a job request may list.
pub const MAX_CIRCUITS_PER_REQUEST: usize = 16;

/// A body that travels inside a signed envelope.
pub trait Message: Serialize + DeserializeOwned + Clone + fmt::Debug {
    /// The domain tag that says which message this is.
    const KIND: Kind;
    /// The largest encoded body accepted.
    const MAX_BODY: usize;

    /// Checks contents that decoding alone cannot (cross-field rules).
    fn check(&self) -> Result<(), &'static str> {
        Ok(())
    }
}

/// The distributor announces a batch's jobs on the gossip topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobAnnouncement {
    /// The batch the jobs belong to.
    pub batch: BatchId,
    /// The jobs open for claiming, all of `batch`.
    pub jobs: Vec<JobId>,
    /// The circuit every job of the batch is proved with.
    pub circuit: CircuitId,
    /// Content hash of the proving key to fetch.
    pub proving_key: ContentHash,
    /// Content hash of the verifying key proofs are checked against.
    pub verifying_key: ContentHash,
    /// What the first valid proof of a job earns.
    pub reward_per_job: u64,
}

/// A prover with a free slot asks the distributor for a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRequest {
    /// Circuits this prover can prove; empty means any.
    pub circuits: Vec<CircuitId>,
}

/// The distributor hands a job to the prover that asked: the answer to a
/// [`JobRequest`] when there is work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// The job to prove.
    pub job: JobId,
    /// This hand-out; the proof must be submitted with it.
    pub request: RequestId,
    /// The prover the job is handed to; no one else may submit for `request`.
    pub prover: PublicKey,
    /// The circuit to prove with.
    pub circuit: CircuitId,
    /// Content hash of the proving key for `circuit`.
    pub proving_key: ContentHash,
    /// The witness input, opaque to the network; the circuit decodes it.
    #[serde(with = "crate::codec::bytes")]
    pub witness: Vec<u8>,
    /// What the first valid proof earns.
    pub reward: u64,
}

/// The answer to a [`JobRequest`] when the distributor has nothing to hand out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoWork {
    /// Why there is no job for this prover.
    pub reason: NoWorkReason,
    /// When asking again makes sense, in milliseconds.
    pub retry_after_ms: u64,
}

/// Why a job request got no job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoWorkReason {
    /// Every job is done or held; ask again later.
    Idle,
    /// The prover already holds as many jobs as it may.
    AtCapacity,
    /// The prover asked again too soon (cooling down after invalid proofs, or
    /// rate limited).
    CoolingDown,
    /// The prover is not served any more (too many invalid proofs, or not on
    /// the allowlist).
    Refused,
}

/// A prover submits its proof for one hand-out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofSubmission {
    /// The job proved.
    pub job: JobId,
    /// The hand-out this proof answers.
    pub request: RequestId,
    /// The proof bytes (128 for a compressed Groth16 proof on BN254).
    #[serde(with = "crate::codec::bytes")]
    pub proof: Vec<u8>,
    /// The prover's signed payout address, recorded in the ledger with its
    /// credit when it is newer than the one recorded.
    pub payout: Option<PayoutBinding>,
}

/// The distributor's signed answer to a [`ProofSubmission`]: the prover's
/// receipt of acceptance, or the reason it was not paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The job the submission was for.
    pub job: JobId,
    /// The hand-out it named.
    pub request: RequestId,
    /// The prover that submitted.
    pub prover: PublicKey,
    /// Hash of the submitted proof bytes.
    pub proof_hash: ContentHash,
    /// What became of it.
    pub outcome: Outcome,
}

/// What became of a proof submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The first valid proof of the job: credited in the ledger.
    Accepted {
        /// The amount credited.
        reward: u64,
    },
    /// A valid-looking submission for a job another prover completed first.
    Late,
    /// Not paid, and counted against the prover.
    Invalid(InvalidReason),
}

/// Why a submission was invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvalidReason {
    /// The (job, request) pair was never issued to this prover.
    NotIssued,
    /// The proof bytes do not decode as a proof.
    MalformedProof,
    /// The proof does not verify against the job's public inputs.
    VerificationFailed,
}

/// A prover gives a hand-out back (on shutdown) so it is re-served at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The job given back.
    pub job: JobId,
    /// The hand-out given back.
    pub request: RequestId,
}

/// A prover says it is still working on a hand-out (every few seconds, from
/// the assignment until its proof or release), so that its silence is
/// evidence: a hand-out whose prover stopped talking is re-served sooner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The job being proved.
    pub job: JobId,
    /// The hand-out it answers.
    pub request: RequestId,
}

/// The distributor gossips that a batch is fully proven.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchProven {
    /// The batch.
    pub batch: BatchId,
    /// How many jobs it had.
    pub jobs: u32,
    /// The rollup state root before the batch (circuit-defined encoding).
    pub old_root: [u8; 32],
    /// The rollup state root after the batch.
    pub new_root: [u8; 32],
    /// Hash over the chunk proofs, in job order.
    pub proofs: ContentHash,
}

/// A prover asks for one chunk of a proving key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRequest {
    /// Content hash of the whole key.
    pub key: ContentHash,
    /// Which chunk, from 0; asking from where a download stopped resumes it.
    pub chunk: u32,
}

/// One chunk of a proving key. The receiver checks the reassembled key
/// against `key` before using it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyChunk {
    /// Content hash of the whole key.
    pub key: ContentHash,
    /// This chunk's index.
    pub chunk: u32,
    /// Length of the whole key in bytes.
    pub total_len: u64,
    /// The chunk's bytes: [`KEY_CHUNK_BYTES`] except for the last chunk.
    #[serde(with = "crate::codec::bytes")]
    pub data: Vec<u8>,
}

impl KeyChunk {
    /// How many chunks a key of `total_len` bytes travels in.
    pub fn count(total_len: u64) -> u64 {
        total_len.div_ceil(KEY_CHUNK_BYTES as u64)
    }
}

/// A prover asks for the ledger receipt of a job it was paid for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptRequest {
    /// The job.
    pub job: JobId,
}

/// The distributor's answer to a [`ReceiptRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptReply {
    /// The job asked about.
    pub job: JobId,
    /// The encoded ledger receipt (the ledger crate's `Receipt`); empty while
    /// the credit waits for its block, so the prover asks again later.
    #[serde(with = "crate::codec::bytes")]
    pub receipt: Vec<u8>,
    /// With a receipt: the encoded balance proof (the ledger crate's
    /// `BalanceProof`) of the credited prover's account at the ledger's last
    /// block, what `crowdprove claim` carries to the payout contract; empty
    /// otherwise.
    #[serde(with = "crate::codec::bytes")]
    pub balance_proof: Vec<u8>,
}

/// Largest encoded receipt (and balance proof) a [`ReceiptReply`] carries.
pub const MAX_RECEIPT_BYTES: usize = 4 << 10;

/// The distributor refuses a request it could not act on (malformed, stale,
/// replayed, rate-limited, not admitted), saying why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    /// A short machine-readable reason, e.g. `rate_limited`, `bad_signature`.
    pub reason: String,
}

/// Longest [`Rejected::reason`].
pub const MAX_REASON_LEN: usize = 128;

const KIB: usize = 1024;

impl Message for JobAnnouncement {
    const KIND: Kind = Kind::JobAnnouncement;
    const MAX_BODY: usize = 64 * KIB;
    fn check(&self) -> Result<(), &'static str> {
        if self.jobs.is_empty() {
            return Err("announcement lists no jobs");
        }
        if self.jobs.len() > MAX_JOBS_PER_ANNOUNCEMENT {
            return Err("announcement lists too many jobs");
        }
        if self.jobs.iter().any(|job| job.batch != self.batch) {
            return Err("announcement lists a job of another batch");
        }
        Ok(())
    }
}

impl Message for JobRequest {
    const KIND: Kind = Kind::JobRequest;
    const MAX_BODY: usize = 2 * KIB;
    fn check(&self) -> Result<(), &'static str> {
        if self.circuits.len() > MAX_CIRCUITS_PER_REQUEST {
            return Err("request lists too many circuits");
        }
        Ok(())
    }
}

impl Message for Assignment {
    const KIND: Kind = Kind::Assignment;
    const MAX_BODY: usize = MAX_WITNESS_BYTES + KIB;
    fn check(&self) -> Result<(), &'static str> {
        if self.witness.is_empty() {
            return Err("assignment carries no witness");
        }
        if self.witness.len() > MAX_WITNESS_BYTES {
            return Err("witness too large");
        }
        Ok(())
    }
}

impl Message for NoWork {
    const KIND: Kind = Kind::NoWork;
    const MAX_BODY: usize = 256;
}

impl Message for ProofSubmission {
    const KIND: Kind = Kind::ProofSubmission;
    const MAX_BODY: usize = MAX_PROOF_BYTES + KIB;
    fn check(&self) -> Result<(), &'static str> {
        if self.proof.is_empty() {
            return Err("submission carries no proof");
        }
        if self.proof.len() > MAX_PROOF_BYTES {
            return Err("proof too large");
        }
        Ok(())
    }
}

impl Message for Verdict {
    const KIND: Kind = Kind::Verdict;
    const MAX_BODY: usize = KIB;
}

impl Message for Release {
    const KIND: Kind = Kind::Release;
    const MAX_BODY: usize = 256;
}

impl Message for Heartbeat {
    const KIND: Kind = Kind::Heartbeat;
    const MAX_BODY: usize = 256;
}

impl Message for BatchProven {
    const KIND: Kind = Kind::BatchProven;
    const MAX_BODY: usize = KIB;
    fn check(&self) -> Result<(), &'static str> {
        if self.jobs == 0 {
            return Err("a proven batch has at least one job");
        }
        Ok(())
    }
}

impl Message for KeyRequest {
    const KIND: Kind = Kind::KeyRequest;
    const MAX_BODY: usize = 256;
}

impl Message for KeyChunk {
    const KIND: Kind = Kind::KeyChunk;
    const MAX_BODY: usize = KEY_CHUNK_BYTES + KIB;
    fn check(&self) -> Result<(), &'static str> {
        if self.total_len == 0 || self.total_len > MAX_KEY_BYTES {
            return Err("key length is zero or past the 4 GiB ceiling");
        }
        let chunks = KeyChunk::count(self.total_len);
        if u64::from(self.chunk) >= chunks {
            return Err("chunk index past the end of the key");
        }
        let start = u64::from(self.chunk) * KEY_CHUNK_BYTES as u64;
        let expected = (self.total_len - start).min(KEY_CHUNK_BYTES as u64);
        if self.data.len() as u64 != expected {
            return Err("chunk length does not match its position in the key");
        }
        Ok(())
    }
}

impl Message for ReceiptRequest {
    const KIND: Kind = Kind::ReceiptRequest;
    const MAX_BODY: usize = 256;
}

impl Message for ReceiptReply {
    const KIND: Kind = Kind::ReceiptReply;
    const MAX_BODY: usize = 2 * MAX_RECEIPT_BYTES + 256;
    fn check(&self) -> Result<(), &'static str> {
        if self.receipt.len() > MAX_RECEIPT_BYTES {
            return Err("receipt too large");
        }
        if self.balance_proof.len() > MAX_RECEIPT_BYTES {
            return Err("balance proof too large");
        }
        Ok(())
    }
}

impl Message for Rejected {
    const KIND: Kind = Kind::Rejected;
    const MAX_BODY: usize = 256;
    fn check(&self) -> Result<(), &'static str> {
        if self.reason.len() > MAX_REASON_LEN {
            return Err("reason too long");
        }
        Ok(())
    }
}

/// Declares [`Kind`] and [`AnyMessage`] from one list, so a new message is
/// added in one place.
macro_rules! message_kinds {
    ($($name:ident = $tag:literal, $label:literal;)*) => {
        /// The domain tag of a message: which message an envelope carries.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum Kind {
            $(
                #[doc = concat!("Carries a [`", stringify!($name), "`].")]
                $name = $tag,
            )*
        }

        impl Kind {
            /// Every kind, in tag order.
            pub const ALL: &'static [Kind] = &[$(Kind::$name),*];

            /// The kind for a tag byte, if there is one.
            pub fn from_tag(tag: u8) -> Option<Kind> {
                match tag {
                    $($tag => Some(Kind::$name),)*
                    _ => None,
                }
            }

            /// The tag byte.
            pub fn tag(self) -> u8 {
                self as u8
            }

            /// A stable lower-case name, used in signatures' domain
            /// separation, logs and metrics labels.
            pub fn name(self) -> &'static str {
                match self {
                    $(Kind::$name => $label,)*
                }
            }

            /// The body size limit for this kind.
            pub fn max_body(self) -> usize {
                match self {
                    $(Kind::$name => <$name as Message>::MAX_BODY,)*
                }
            }
        }

        /// Any one message, for code that dispatches on the domain tag.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum AnyMessage {
            $(
                #[doc = concat!("A [`", stringify!($name), "`].")]
                $name($name),
            )*
        }

        impl AnyMessage {
            /// The message's kind.
            pub fn kind(&self) -> Kind {
                match self {
                    $(AnyMessage::$name(_) => Kind::$name,)*
                }
            }

            /// Decodes and checks a body of the given kind.
            pub(crate) fn decode_body(kind: Kind, body: &[u8]) -> Result<Self, BodyError> {
                match kind {
                    $(Kind::$name => decode_checked::<$name>(body).map(AnyMessage::$name),)*
                }
            }
        }

        $(
            impl From<$name> for AnyMessage {
                fn from(message: $name) -> Self {
                    AnyMessage::$name(message)
                }
            }
        )*
    };
}

message_kinds! {
    JobAnnouncement = 1, "job-announcement";
    JobRequest = 2, "job-request";
    Assignment = 3, "assignment";
    NoWork = 4, "no-work";
    ProofSubmission = 5, "proof-submission";
    Verdict = 6, "verdict";
    Release = 7, "release";
    BatchProven = 8, "batch-proven";
    KeyRequest = 9, "key-request";
    KeyChunk = 10, "key-chunk";
    ReceiptRequest = 11, "receipt-request";
    ReceiptReply = 12, "receipt-reply";
    Rejected = 13, "rejected";
    Heartbeat = 14, "heartbeat";
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyError {
    Codec(crate::codec::CodecError),
    Content(&'static str),
}

pub(crate) fn decode_checked<M: Message>(body: &[u8]) -> Result<M, BodyError> {
    let message: M = crate::codec::decode(body, M::MAX_BODY).map_err(BodyError::Codec)?;
    message.check().map_err(BodyError::Content)?;
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_unique_and_round_trip() {
        for (i, kind) in Kind::ALL.iter().enumerate() {
            assert_eq!(kind.tag() as usize, i + 1);
            assert_eq!(Kind::from_tag(kind.tag()), Some(*kind));
        }
        assert_eq!(Kind::from_tag(0), None);
        assert_eq!(Kind::from_tag(Kind::ALL.len() as u8 + 1), None);
    }

    #[test]
    fn key_chunks_must_fit_the_key() {
        let chunk = |chunk, total_len, len| KeyChunk {
            key: ContentHash([0; 32]),
            chunk,
            total_len,
            data: vec![0; len],
        };
        let total = KEY_CHUNK_BYTES as u64 + 10;
        assert_eq!(KeyChunk::count(total), 2);
        assert!(chunk(0, total, KEY_CHUNK_BYTES).check().is_ok());
        assert!(chunk(1, total, 10).check().is_ok());
        assert!(chunk(1, total, 11).check().is_err());
        assert!(chunk(2, total, 0).check().is_err());
        assert!(chunk(0, 0, 0).check().is_err());
        // A key longer than any circuit needs is refused, whatever its chunks.
        let huge = MAX_KEY_BYTES + KEY_CHUNK_BYTES as u64;
        assert!(chunk(0, huge, KEY_CHUNK_BYTES).check().is_err());
        assert!(chunk(0, MAX_KEY_BYTES, KEY_CHUNK_BYTES).check().is_ok());
    }

    #[test]
    fn announcements_must_be_about_their_batch() {
        let mut a = JobAnnouncement {
            batch: BatchId(1),
            jobs: vec![JobId::new(BatchId(1), 0)],
            circuit: CircuitId::new("c").unwrap(),
            proving_key: ContentHash([1; 32]),
            verifying_key: ContentHash([2; 32]),
            reward_per_job: 10,
        };
        assert!(a.check().is_ok());
        a.jobs.push(JobId::new(BatchId(2), 0));
        assert!(a.check().is_err());
        a.jobs.clear();
        assert!(a.check().is_err());
    }

    #[test]
    fn largest_bodies_fit_their_limits() {
        let assignment = Assignment {
            job: JobId::new(BatchId(u64::MAX), u32::MAX),
            request: RequestId(u64::MAX),
            prover: PublicKey([0; 32]),
            circuit: CircuitId::new("x".repeat(CircuitId::MAX_LEN)).unwrap(),
            proving_key: ContentHash([0; 32]),
            witness: vec![0; MAX_WITNESS_BYTES],
            reward: u64::MAX,
        };
        assert!(crate::codec::encode(&assignment).len() <= Assignment::MAX_BODY);
        let chunk = KeyChunk {
            key: ContentHash([0; 32]),
            chunk: 0,
            total_len: KEY_CHUNK_BYTES as u64,
            data: vec![0; KEY_CHUNK_BYTES],
        };
        assert!(crate::codec::encode(&chunk).len() <= KeyChunk::MAX_BODY);
        let announcement = JobAnnouncement {
            batch: BatchId(1),
            jobs: vec![JobId::new(BatchId(1), 0); MAX_JOBS_PER_ANNOUNCEMENT],
            circuit: CircuitId::new("x".repeat(CircuitId::MAX_LEN)).unwrap(),
            proving_key: ContentHash([0; 32]),
            verifying_key: ContentHash([0; 32]),
            reward_per_job: 1,
        };
        assert!(crate::codec::encode(&announcement).len() <= JobAnnouncement::MAX_BODY);
        let request = JobRequest {
            circuits: vec![
                CircuitId::new("x".repeat(CircuitId::MAX_LEN)).unwrap();
                MAX_CIRCUITS_PER_REQUEST
            ],
        };
        assert!(crate::codec::encode(&request).len() <= JobRequest::MAX_BODY);
        let verdict = Verdict {
            job: JobId::new(BatchId(1), 0),
            request: RequestId(1),
            prover: PublicKey([0; 32]),
            proof_hash: ContentHash([0; 32]),
            outcome: Outcome::Accepted { reward: 1 },
        };
        assert!(crate::codec::encode(&verdict).len() <= Verdict::MAX_BODY);
    }
}
