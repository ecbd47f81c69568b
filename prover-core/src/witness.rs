//! A job's witness: the compact bytes that travel to a prover, their decoding
//! and validation, and the native re-execution that yields the public inputs.

use std::fmt;

use ark_ff::Zero;
use protocol::codec;
use protocol::ids::CircuitId;
use serde::{Deserialize, Serialize};

use crate::circuit::CircuitConfig;
use crate::eddsa::EddsaSignature;
use crate::error::{Error, Result, Rule};
use crate::merkle::root_from_path;
use crate::poseidon::{self, F};
use crate::workload::{
    Account, SignedTransfer, Transfer, credit, debit, field_from_bytes, field_to_bytes,
    signature_from_bytes, signature_to_bytes,
};

/// Largest witness accepted from the network (a depth-32, K=64 job is ~280 KB).
pub const MAX_WITNESS_BYTES: usize = 4 << 20;
/// Version byte of the witness encoding.
pub const WITNESS_VERSION: u8 = 1;

/// A state root (or any field element) as 32 canonical little-endian bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Root(pub [u8; 32]);

impl Root {
    /// Wraps a field element.
    pub fn from_field(f: &F) -> Self {
        Self(field_to_bytes(f))
    }

    /// The field element, if the bytes are canonical.
    pub fn to_field(&self) -> Option<F> {
        field_from_bytes(&self.0)
    }
}

impl fmt::Debug for Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Root({})", protocol::hex::encode(&self.0))
    }
}

impl fmt::Display for Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&protocol::hex::encode(&self.0))
    }
}

/// A job's public inputs, in the circuit's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicInputs {
    /// State root before the chunk.
    pub old_root: Root,
    /// State root after the chunk.
    pub new_root: Root,
    /// [`crate::workload::tx_commitment`] of the chunk's transfers.
    pub tx_commitment: Root,
    /// Sum of the chunk's fees.
    pub fees: u128,
}

impl PublicInputs {
    /// The field elements the verifier uses: old root, new root, commitment, fees.
    pub fn to_field_elements(&self) -> Result<Vec<F>> {
        let f = |r: &Root, what: &str| {
            r.to_field().ok_or_else(|| {
                Error::MalformedPublicInputs(format!("{what} is not a canonical field element"))
            })
        };
        Ok(vec![
            f(&self.old_root, "old root")?,
            f(&self.new_root, "new root")?,
            f(&self.tx_commitment, "tx commitment")?,
            F::from(self.fees),
        ])
    }
}

/// One transfer of a chunk with the state it touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxWitness {
    /// The signed transfer.
    pub transfer: SignedTransfer,
    /// The sender before the transfer.
    pub sender: Account,
    /// Siblings of the sender's path in the state before the transfer.
    pub sender_path: Vec<F>,
    /// The receiver after the sender's update (equal to the updated sender for
    /// a self-transfer) and before the credit.
    pub receiver: Account,
    /// Siblings of the receiver's path after the sender's update.
    pub receiver_path: Vec<F>,
}

/// A decoded, structurally valid job witness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkWitness {
    /// The circuit this chunk is for.
    pub config: CircuitConfig,
    /// State root before the chunk.
    pub old_root: F,
    /// 1..=K transfers; the circuit pads the rest with disabled slots.
    pub txs: Vec<TxWitness>,
}

#[derive(Serialize, Deserialize)]
struct TxWire {
    tx: Transfer,
    sig_r: [u8; 32],
    sig_s: [u8; 32],
    sender: Account,
    sender_path: Vec<[u8; 32]>,
    receiver: Account,
    receiver_path: Vec<[u8; 32]>,
}

#[derive(Serialize, Deserialize)]
struct WitnessWire {
    version: u8,
    circuit: CircuitId,
    old_root: [u8; 32],
    txs: Vec<TxWire>,
}

fn path_from_wire(p: &[[u8; 32]], depth: u32, what: &str, i: usize) -> Result<Vec<F>> {
    if p.len() != depth as usize {
        return Err(Error::WitnessMalformed(format!(
            "transfer {i}: {what} path has {} siblings, the circuit needs {depth}",
            p.len()
        )));
    }
    p.iter()
        .map(|b| {
            field_from_bytes(b).ok_or_else(|| {
                Error::WitnessMalformed(format!(
                    "transfer {i}: {what} path holds a non-canonical field element"
                ))
            })
        })
        .collect()
}

impl ChunkWitness {
    /// Encodes the witness: the bytes a prover receives.
    pub fn to_bytes(&self) -> Vec<u8> {
        let wire = WitnessWire {
            version: WITNESS_VERSION,
            circuit: self.config.circuit_id(),
            old_root: field_to_bytes(&self.old_root),
            txs: self
                .txs
                .iter()
                .map(|t| {
                    let (sig_r, sig_s) = signature_to_bytes(&t.transfer.sig);
                    TxWire {
                        tx: t.transfer.tx,
                        sig_r,
                        sig_s,
                        sender: t.sender,
                        sender_path: t.sender_path.iter().map(field_to_bytes).collect(),
                        receiver: t.receiver,
                        receiver_path: t.receiver_path.iter().map(field_to_bytes).collect(),
                    }
                })
                .collect(),
        };
        codec::encode(&wire)
    }

    /// Decodes and structurally validates witness bytes (it does not check the
    /// circuit rules; [`Self::execute`] does).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let wire: WitnessWire = codec::decode(bytes, MAX_WITNESS_BYTES)
            .map_err(|e| Error::WitnessDecode(e.to_string()))?;
        if wire.version != WITNESS_VERSION {
            return Err(Error::WitnessDecode(format!(
                "witness version {} (this build reads {WITNESS_VERSION})",
                wire.version
            )));
        }
        let config = CircuitConfig::from_circuit_id(&wire.circuit)?;
        let k = config.transfers_per_job as usize;
        if wire.txs.is_empty() || wire.txs.len() > k {
            return Err(Error::WitnessMalformed(format!(
                "{} transfers, circuit {} takes 1 to {k}",
                wire.txs.len(),
                wire.circuit
            )));
        }
        let old_root = field_from_bytes(&wire.old_root).ok_or_else(|| {
            Error::WitnessMalformed("old root is not a canonical field element".into())
        })?;
        let cap = 1u64 << config.depth;
        let mut txs = Vec::with_capacity(wire.txs.len());
        for (i, t) in wire.txs.iter().enumerate() {
            if t.tx.from as u64 >= cap || t.tx.to as u64 >= cap {
                return Err(Error::WitnessMalformed(format!(
                    "transfer {i}: account index outside a depth-{} tree",
                    config.depth
                )));
            }
            let sig: EddsaSignature = signature_from_bytes(&t.sig_r, &t.sig_s)
                .map_err(|e| Error::WitnessMalformed(format!("transfer {i}: {e}")))?;
            txs.push(TxWitness {
                transfer: SignedTransfer { tx: t.tx, sig },
                sender: t.sender,
                sender_path: path_from_wire(&t.sender_path, config.depth, "sender", i)?,
                receiver: t.receiver,
                receiver_path: path_from_wire(&t.receiver_path, config.depth, "receiver", i)?,
            });
        }
        Ok(Self {
            config,
            old_root,
            txs,
        })
    }

    /// Checks the shape: 1..=K transfers, indices inside the tree, paths of
    /// the tree's depth. [`Self::from_bytes`] guarantees it; hand-built
    /// witnesses are checked here before they reach the circuit.
    pub fn check_shape(&self) -> Result<()> {
        let k = self.config.transfers_per_job as usize;
        if self.txs.is_empty() || self.txs.len() > k {
            return Err(Error::WitnessMalformed(format!(
                "{} transfers, circuit {} takes 1 to {k}",
                self.txs.len(),
                self.config
            )));
        }
        let depth = self.config.depth as usize;
        let cap = 1u64 << self.config.depth;
        for (i, t) in self.txs.iter().enumerate() {
            if t.sender_path.len() != depth || t.receiver_path.len() != depth {
                return Err(Error::WitnessMalformed(format!(
                    "transfer {i}: paths must have {depth} siblings"
                )));
            }
            if t.transfer.tx.from as u64 >= cap || t.transfer.tx.to as u64 >= cap {
                return Err(Error::WitnessMalformed(format!(
                    "transfer {i}: account index outside the tree"
                )));
            }
        }
        Ok(())
    }

    /// Re-executes the chunk natively under exactly the circuit's rules and
    /// returns its public inputs, or the first transfer and rule it breaks.
    pub fn execute(&self) -> Result<PublicInputs> {
        self.check_shape()?;
        let mut root = self.old_root;
        let mut commitment = F::zero();
        let mut fees: u128 = 0;
        for (i, t) in self.txs.iter().enumerate() {
            let fail = |rule| Error::Unsatisfied { tx: i, rule };
            let tx = &t.transfer.tx;
            if root_from_path(t.sender.leaf(), tx.from as u64, &t.sender_path) != root {
                return Err(fail(Rule::WrongRoot));
            }
            let sender = debit(&t.sender, &t.transfer).map_err(fail)?;
            let mid = root_from_path(sender.leaf(), tx.from as u64, &t.sender_path);
            if root_from_path(t.receiver.leaf(), tx.to as u64, &t.receiver_path) != mid {
                return Err(fail(Rule::WrongRoot));
            }
            let receiver = credit(&t.receiver, tx.amount).map_err(fail)?;
            root = root_from_path(receiver.leaf(), tx.to as u64, &t.receiver_path);
            commitment = poseidon::hash(&[commitment, tx.message()]);
            fees += tx.fee as u128;
        }
        Ok(PublicInputs {
            old_root: Root::from_field(&self.old_root),
            new_root: Root::from_field(&root),
            tx_commitment: Root::from_field(&commitment),
            fees,
        })
    }
}

/// Decodes witness bytes and returns the public inputs they prove, checking
/// every circuit rule natively.
pub fn public_inputs(witness_bytes: &[u8]) -> Result<PublicInputs> {
    ChunkWitness::from_bytes(witness_bytes)?.execute()
}
