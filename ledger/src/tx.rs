//! Ledger transactions: credits for accepted proofs, prover-signed payout
//! bindings, and penalties.

use protocol::{BatchId, ContentHash, JobId, PayoutBinding, PublicKey, codec};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::merkle;

/// The longest penalty reason accepted, in bytes.
pub const MAX_REASON_LEN: usize = 256;

/// The largest encoded transaction, with room to spare.
pub const MAX_TX_BYTES: usize = 1024;

/// Pays `prover` `amount` for the first valid proof of `job`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credit {
    /// The prover paid.
    pub prover: PublicKey,
    /// The job proven; credited at most once, ever.
    pub job: JobId,
    /// The job's batch; must equal `job.batch` (kept for indexing and display).
    pub batch: BatchId,
    /// The reward, in the rollup's smallest unit.
    pub amount: u64,
    /// SHA-256 of the accepted proof's bytes.
    pub proof_hash: ContentHash,
}

impl Credit {
    /// A credit for `job`, with `batch` taken from the job.
    pub fn new(prover: PublicKey, job: JobId, amount: u64, proof_hash: ContentHash) -> Self {
        Self {
            prover,
            job,
            batch: job.batch,
            amount,
            proof_hash,
        }
    }
}

/// Binds `prover`'s pay to an Ethereum address, signed by the prover: the
/// address its balance leaf commits to, where the payout contract pays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindPayout {
    /// The prover whose pay is bound, and who signed.
    pub prover: PublicKey,
    /// The signed binding: the address and its sequence number.
    pub binding: PayoutBinding,
}

/// Takes `amount` from `prover`, e.g. for proofs that failed verification.
/// The distributor decides when; the ledger only checks the balance covers it.
/// Nothing issues penalties yet: the LRP settings may use them later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Penalty {
    /// The prover debited.
    pub prover: PublicKey,
    /// The job concerned, if any.
    pub job: Option<JobId>,
    /// The amount taken.
    pub amount: u64,
    /// Why, for people; at most [`MAX_REASON_LEN`] bytes.
    pub reason: String,
}

/// One ledger transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tx {
    /// Pays a prover for a job.
    Credit(Credit),
    /// Binds a prover's pay to an address, signed by the prover.
    BindPayout(BindPayout),
    /// Takes from a prover's balance.
    Penalty(Penalty),
}

impl Tx {
    /// The prover whose balance the transaction changes.
    pub fn prover(&self) -> &PublicKey {
        match self {
            Tx::Credit(c) => &c.prover,
            Tx::BindPayout(b) => &b.prover,
            Tx::Penalty(p) => &p.prover,
        }
    }

    /// The canonical encoding (what is stored and hashed).
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a stored transaction.
    pub fn decode(bytes: &[u8]) -> std::result::Result<Self, codec::CodecError> {
        codec::decode(bytes, MAX_TX_BYTES)
    }

    /// The transaction's leaf in its block's Merkle tree; also its id.
    pub fn leaf_hash(&self) -> ContentHash {
        merkle::leaf_hash(&self.encode())
    }

    /// Checks what needs no ledger state: amounts, lengths, the batch
    /// matching the job, and a binding's signature.
    pub fn check_well_formed(&self) -> Result<()> {
        match self {
            Tx::Credit(c) => {
                if c.amount == 0 {
                    return Err(Error::InvalidTx(format!(
                        "credit for job {} has amount 0",
                        c.job
                    )));
                }
                if c.batch != c.job.batch {
                    return Err(Error::InvalidTx(format!(
                        "credit for job {} names batch {}",
                        c.job, c.batch
                    )));
                }
            }
            Tx::BindPayout(b) => {
                if b.binding.address.is_unbound() {
                    return Err(Error::InvalidTx(
                        "payout binding to the zero address".into(),
                    ));
                }
                if b.binding.check(&b.prover).is_err() {
                    return Err(Error::BadSignature { prover: b.prover });
                }
            }
            Tx::Penalty(p) => {
                if p.amount == 0 {
                    return Err(Error::InvalidTx("penalty of amount 0".into()));
                }
                if p.reason.len() > MAX_REASON_LEN {
                    return Err(Error::InvalidTx(format!(
                        "penalty reason longer than {MAX_REASON_LEN} bytes"
                    )));
                }
            }
        }
        Ok(())
    }
}
