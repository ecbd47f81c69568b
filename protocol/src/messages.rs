//! Every message of the CrowdProve protocol, with its domain tag, who signs it
//! and its size limit.
//!
//! | kind | tag | signed by | body limit |
//! | --- | --- | --- | --- |
//! | [`JobAnnouncement`] | 1 | distributor | 64 KiB |
//! | [`JobRequest`] | 2 | prover | 2 KiB |
//! | [`Assignment`] | 3 | distributor | 256 KiB + 1 KiB |
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
//! | [`WitnessRequest`] | 15 | prover | 256 B |
//! | [`WitnessChunk`] | 16 | distributor | 512 KiB + 1 KiB |
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

/// The longest witness a job may have on the network: 1 GiB, past what a
/// circuit of 2^24 constraints needs (32 bytes a wire). A distributor takes
/// in at most its operator's `max_witness_mb` (at most 256 MiB); a prover
/// never fetches more.
pub const MAX_WITNESS_BYTES: u64 = 1 << 30;
/// Witnesses up to this many bytes travel inside their [`Assignment`];
/// longer ones travel by content hash, in chunks the holder asks for
/// ([`WitnessRequest`]), so an assignment stays small however large its
/// circuit.
pub const MAX_INLINE_WITNESS_BYTES: usize = 256 << 10;
/// Chunked witnesses travel in chunks of this many bytes (the last may be
/// shorter).
pub const WITNESS_CHUNK_BYTES: usize = KEY_CHUNK_BYTES;
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
    /// The witness input, opaque to the network (the circuit decodes it):
    /// its bytes, or their hash and length to fetch them by.
    pub witness: Witness,
    /// What the first valid proof earns.
    pub reward: u64,
}

/// A job's witness as an [`Assignment`] carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Witness {
    /// The bytes themselves (at most [`MAX_INLINE_WITNESS_BYTES`]).
    Inline(#[serde(with = "crate::codec::bytes")] Vec<u8>),
    /// A longer witness: its holder fetches it in chunks
    /// ([`WitnessRequest`]) and checks the whole against `hash`.
    Chunked {
        /// Content hash of the whole witness.
        hash: ContentHash,
        /// Its length in bytes.
        len: u64,
    },
}

impl Witness {
    /// How `bytes` travel: inline when short, else by hash.
    pub fn of(bytes: Vec<u8>) -> Self {
        if bytes.len() <= MAX_INLINE_WITNESS_BYTES {
            Witness::Inline(bytes)
        } else {
            Witness::Chunked {
                hash: ContentHash::of(&bytes),
                len: bytes.len() as u64,
            }
        }
    }

    /// The witness's length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Witness::Inline(bytes) => bytes.len() as u64,
            Witness::Chunked { len, .. } => *len,
        }
    }

    /// Whether it has no bytes (never, in a checked assignment).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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

/// The holder of a hand-out whose witness is [`Witness::Chunked`] asks for
/// one chunk of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessRequest {
    /// The job.
    pub job: JobId,
    /// The hand-out the asker holds: only its holder is served.
    pub request: RequestId,
    /// Which chunk, from 0; asking from where a download stopped resumes it.
    pub chunk: u32,
}

/// One chunk of a job's witness. The receiver checks the reassembled
/// witness against the hash its signed [`Assignment`] named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessChunk {
    /// The job.
    pub job: JobId,
    /// This chunk's index.
    pub chunk: u32,
    /// Length of the whole witness in bytes.
    pub total_len: u64,
    /// The chunk's bytes: [`WITNESS_CHUNK_BYTES`] except for the last chunk.
    #[serde(with = "crate::codec::bytes")]
    pub data: Vec<u8>,
}

impl WitnessChunk {
    /// How many chunks a witness of `total_len` bytes travels in.
    pub fn count(total_len: u64) -> u64 {
        total_len.div_ceil(WITNESS_CHUNK_BYTES as u64)
    }
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
    const MAX_BODY: usize = MAX_INLINE_WITNESS_BYTES + KIB;
    fn check(&self) -> Result<(), &'static str> {
        match &self.witness {
            Witness::Inline(bytes) if bytes.is_empty() => Err("assignment carries no witness"),
            Witness::Inline(bytes) if bytes.len() > MAX_INLINE_WITNESS_BYTES => {
                Err("inline witness too large")
            }
            Witness::Chunked { len, .. } if *len == 0 || *len > MAX_WITNESS_BYTES => {
                Err("witness length is zero or past the 1 GiB ceiling")
            }
            _ => Ok(()),
        }
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
        check_chunk_fits(self.chunk, self.total_len, self.data.len())
    }
}

impl Message for WitnessRequest {
    const KIND: Kind = Kind::WitnessRequest;
    const MAX_BODY: usize = 256;
}

impl Message for WitnessChunk {
    const KIND: Kind = Kind::WitnessChunk;
    const MAX_BODY: usize = WITNESS_CHUNK_BYTES + KIB;
    fn check(&self) -> Result<(), &'static str> {
        if self.total_len == 0 || self.total_len > MAX_WITNESS_BYTES {
            return Err("witness length is zero or past the 1 GiB ceiling");
        }
        check_chunk_fits(self.chunk, self.total_len, self.data.len())
    }
}

/// A chunk (of a key or a witness, both [`KEY_CHUNK_BYTES`] long) is
/// within the whole and exactly as long as its position leaves.
fn check_chunk_fits(chunk: u32, total_len: u64, len: usize) -> Result<(), &'static str> {
    let size = KEY_CHUNK_BYTES as u64;
    if u64::from(chunk) >= total_len.div_ceil(size) {
        return Err("chunk index past the end");
    }
    let start = u64::from(chunk) * size;
    if len as u64 != (total_len - start).min(size) {
        return Err("chunk length does not match its position");
    }
    Ok(())
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
    WitnessRequest = 15, "witness-request";
    WitnessChunk = 16, "witness-chunk";
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
    fn witnesses_travel_inline_when_short_and_by_hash_in_chunks_that_fit() {
        let short = vec![1u8; MAX_INLINE_WITNESS_BYTES];
        assert_eq!(Witness::of(short.clone()), Witness::Inline(short));
        let long = vec![2u8; MAX_INLINE_WITNESS_BYTES + 1];
        let hash = ContentHash::of(&long);
        let by_hash = Witness::of(long);
        assert_eq!(
            by_hash,
            Witness::Chunked {
                hash,
                len: MAX_INLINE_WITNESS_BYTES as u64 + 1
            }
        );
        let mut assignment = Assignment {
            job: JobId::new(BatchId(1), 0),
            request: RequestId(1),
            prover: PublicKey([0; 32]),
            circuit: CircuitId::new("c").unwrap(),
            proving_key: ContentHash([0; 32]),
            witness: by_hash,
            reward: 1,
        };
        assert!(assignment.check().is_ok());
        assignment.witness = Witness::Chunked {
            hash,
            len: MAX_WITNESS_BYTES + 1,
        };
        assert!(assignment.check().is_err());
        assignment.witness = Witness::Chunked { hash, len: 0 };
        assert!(assignment.check().is_err());
        assignment.witness = Witness::Inline(vec![0; MAX_INLINE_WITNESS_BYTES + 1]);
        assert!(assignment.check().is_err());
        assignment.witness = Witness::Inline(Vec::new());
        assert!(assignment.check().is_err());

        let chunk = |chunk, total_len, len| WitnessChunk {
            job: JobId::new(BatchId(1), 0),
            chunk,
            total_len,
            data: vec![0; len],
        };
        let total = WITNESS_CHUNK_BYTES as u64 * 2 + 1;
        assert_eq!(WitnessChunk::count(total), 3);
        assert!(chunk(0, total, WITNESS_CHUNK_BYTES).check().is_ok());
        assert!(chunk(2, total, 1).check().is_ok());
        assert!(chunk(2, total, 2).check().is_err());
        assert!(chunk(1, total, 1).check().is_err());
        assert!(chunk(3, total, 0).check().is_err());
        assert!(
            chunk(0, MAX_WITNESS_BYTES + 1, WITNESS_CHUNK_BYTES)
                .check()
                .is_err()
        );
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
            witness: Witness::Inline(vec![0; MAX_INLINE_WITNESS_BYTES]),
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
        let chunk = WitnessChunk {
            job: JobId::new(BatchId(u64::MAX), u32::MAX),
            chunk: 0,
            total_len: MAX_WITNESS_BYTES,
            data: vec![0; WITNESS_CHUNK_BYTES],
        };
        assert!(crate::codec::encode(&chunk).len() <= WitnessChunk::MAX_BODY);
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
