//! The crate's error type.

use std::path::PathBuf;

use protocol::ids::CircuitId;
use thiserror::Error;

/// A rule of the transfer circuit that a transaction or witness breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Rule {
    /// The sender index holds no account.
    #[error("unknown sender account")]
    UnknownSender,
    /// The receiver index holds no account.
    #[error("unknown receiver account")]
    UnknownReceiver,
    /// An account index is outside the tree.
    #[error("account index outside the tree")]
    IndexOutOfRange,
    /// The signature does not verify under the sender's key.
    #[error("bad signature")]
    BadSignature,
    /// The transaction nonce is not the sender's current nonce.
    #[error("wrong nonce")]
    WrongNonce,
    /// The sender's balance is below amount + fee.
    #[error("insufficient balance for amount + fee")]
    InsufficientBalance,
    /// The receiver's balance would exceed 2^64 - 1.
    #[error("receiver balance overflow")]
    BalanceOverflow,
    /// The sender's nonce would exceed 2^64 - 1.
    #[error("sender nonce overflow")]
    NonceOverflow,
    /// A Merkle path does not lead from the account to the current root.
    #[error("account not in the state root (wrong root or path)")]
    WrongRoot,
}

/// Everything that can go wrong in prover-core.
#[derive(Debug, Error)]
pub enum Error {
    /// A circuit id names no circuit this build knows.
    #[error("unknown circuit {0}: expected transfer-d<depth>-k<transfers per job>")]
    UnknownCircuit(String),
    /// A circuit configuration is out of range.
    #[error("invalid circuit configuration: {0}")]
    Config(String),
    /// Witness bytes do not decode.
    #[error("witness bytes do not decode: {0}")]
    WitnessDecode(String),
    /// Witness bytes decode but are inconsistent (lengths, points, field elements).
    #[error("malformed witness: {0}")]
    WitnessMalformed(String),
    /// The witness belongs to a different circuit than the key.
    #[error("witness is for circuit {witness} but the key is for {key}")]
    WrongCircuit {
        /// The key's circuit.
        key: CircuitId,
        /// The witness's circuit.
        witness: CircuitId,
    },
    /// The witness decodes but a transfer in it breaks a circuit rule.
    #[error("witness does not satisfy the circuit: transfer {tx} breaks rule: {rule}")]
    Unsatisfied {
        /// Position of the transfer in the chunk.
        tx: usize,
        /// The rule it breaks.
        rule: Rule,
    },
    /// A key file is missing, truncated, corrupt, or for another circuit.
    #[error("key file {path}: {reason} (expected hash {expected}); fetch the key again")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// The expected content hash, or "none given".
        expected: String,
        /// What is wrong.
        reason: String,
    },
    /// Key bytes (not from a file) do not decode or have the wrong hash.
    #[error("key bytes: {0}")]
    KeyBytes(String),
    /// A snarkjs zkey is malformed, for another curve, or too large.
    #[error("zkey: {0}")]
    Zkey(String),
    /// A circom witness (`.wtns`) is malformed, for another field, too large,
    /// or does not fit the circuit.
    #[error("witness: {0}")]
    Wtns(String),
    /// A circom `.r1cs` file is malformed, for another field, or too large.
    #[error("r1cs: {0}")]
    R1cs(String),
    /// A circom file (zkey or wtns) cannot be used.
    #[error("{path}: {reason}")]
    CircomFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A circom witness fits the circuit but does not satisfy it: the proof
    /// made from it does not verify.
    #[error("the witness does not satisfy the circuit (its proof does not verify)")]
    CircomUnsatisfied,
    /// A proving key and a verifying key do not belong together.
    #[error("the proving key does not belong to the verifying key: {0}")]
    KeyMismatch(String),
    /// Public inputs are not canonical field elements or do not fit the circuit.
    #[error("malformed public inputs: {0}")]
    MalformedPublicInputs(String),
    /// Proof bytes do not decode to valid curve points.
    #[error("malformed proof: {0}")]
    MalformedProof(String),
    /// The proof is well formed but does not verify.
    #[error("invalid proof")]
    InvalidProof,
    /// Batch verification failed: at least one proof in the batch is invalid.
    #[error("batch verification failed: at least one of {0} proofs is invalid")]
    InvalidBatch(usize),
    /// Chunk roots do not chain.
    #[error("broken root chain at chunk {index}: expected root {expected}, found {found}")]
    BrokenRootChain {
        /// The first chunk (or `len` for the batch's final root) that does not chain.
        index: usize,
        /// Root the chain requires.
        expected: String,
        /// Root the chunk claims.
        found: String,
    },
    /// A batch in which every transaction was rejected (nothing to prove).
    #[error("batch has no valid transaction ({rejected} rejected)")]
    EmptyBatch {
        /// How many transactions were rejected.
        rejected: usize,
    },
    /// The rollup has no free account slot left.
    #[error("rollup state is full ({0} accounts)")]
    StateFull(u64),
    /// Rollup state bytes do not decode or are inconsistent.
    #[error("rollup state bytes: {0}")]
    StateBytes(String),
    /// Constraint synthesis or proving failed inside arkworks.
    #[error("proving system: {0}")]
    Synthesis(String),
    /// A thread pool could not be built.
    #[error("thread pool: {0}")]
    ThreadPool(String),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl From<ark_relations::gr1cs::SynthesisError> for Error {
    fn from(e: ark_relations::gr1cs::SynthesisError) -> Self {
        Error::Synthesis(e.to_string())
    }
}
