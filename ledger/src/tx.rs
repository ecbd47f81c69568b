//! Ledger transactions: credits for accepted proofs, prover-signed
//! withdrawals, and penalties.

use protocol::{BatchId, ContentHash, JobId, PublicKey, SecretKey, Signature, codec};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::merkle;

/// Domain tag prefixed to a withdrawal's signed bytes, so a prover's signature
/// over anything else (an envelope, a job request) can never authorise one.
pub const WITHDRAW_DOMAIN: &[u8] = b"crowdprove/ledger/withdraw/v1\0";

/// The longest withdrawal destination accepted, in bytes.
pub const MAX_DESTINATION_LEN: usize = 256;

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

/// Moves `amount` out of `prover`'s balance to `destination`, authorised by the prover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdraw {
    /// The prover whose balance is debited and who signs.
    pub prover: PublicKey,
    /// The amount paid out.
    pub amount: u64,
    /// Where settlement sends the money (an address on the settlement layer), at most
    /// [`MAX_DESTINATION_LEN`] bytes.
    pub destination: String,
    /// The prover's withdrawal counter: 0 for the first, then 1, 2, ... (stops replays).
    pub nonce: u64,
    /// The prover's signature over [`Withdraw::signing_bytes`].
    pub signature: Signature,
}

/// What a withdrawal's signature covers: everything but the signature.
#[derive(Serialize)]
struct WithdrawBody<'a> {
    prover: &'a PublicKey,
    amount: u64,
    destination: &'a str,
    nonce: u64,
}

impl Withdraw {
    /// A withdrawal signed by `key`.
    pub fn signed(
        key: &SecretKey,
        amount: u64,
        destination: impl Into<String>,
        nonce: u64,
    ) -> Self {
        let prover = key.public();
        let destination = destination.into();
        let signature = key.sign(&Self::signing_bytes(&prover, amount, &destination, nonce));
        Self {
            prover,
            amount,
            destination,
            nonce,
            signature,
        }
    }

    /// The domain-separated canonical bytes a prover signs.
    pub fn signing_bytes(
        prover: &PublicKey,
        amount: u64,
        destination: &str,
        nonce: u64,
    ) -> Vec<u8> {
        let mut bytes = WITHDRAW_DOMAIN.to_vec();
        codec::encode_into(
            &WithdrawBody {
                prover,
                amount,
                destination,
                nonce,
            },
            &mut bytes,
        );
        bytes
    }

    /// Whether the prover's signature verifies.
    pub fn signature_valid(&self) -> bool {
        let msg = Self::signing_bytes(&self.prover, self.amount, &self.destination, self.nonce);
        self.prover.verify(&msg, &self.signature).is_ok()
    }
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
    /// Pays out of a prover's balance, signed by the prover.
    Withdraw(Withdraw),
    /// Takes from a prover's balance.
    Penalty(Penalty),
}

impl Tx {
    /// The prover whose balance the transaction changes.
    pub fn prover(&self) -> &PublicKey {
        match self {
            Tx::Credit(c) => &c.prover,
            Tx::Withdraw(w) => &w.prover,
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
    /// matching the job, and a withdrawal's signature.
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
            Tx::Withdraw(w) => {
                if w.amount == 0 {
                    return Err(Error::InvalidTx("withdrawal of amount 0".into()));
                }
                if w.destination.is_empty() || w.destination.len() > MAX_DESTINATION_LEN {
                    return Err(Error::InvalidTx(format!(
                        "withdrawal destination must be 1 to {MAX_DESTINATION_LEN} bytes"
                    )));
                }
                if !w.signature_valid() {
                    return Err(Error::BadSignature { prover: w.prover });
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
