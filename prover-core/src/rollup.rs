//! The operator's side: rollup state, batch execution, and cutting a batch
//! into jobs with their witness bytes.

use std::fmt;

use protocol::codec;
use protocol::ids::CircuitId;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::circuit::CircuitConfig;
use crate::eddsa::EddsaPublicKey;
use crate::error::{Error, Result, Rule};
use crate::merkle::SparseMerkleTree;
use crate::witness::{ChunkWitness, PublicInputs, Root, TxWitness};
use crate::workload::{
    Account, AccountWire, SignedTransfer, Transfer, credit, debit, tx_commitment,
};

/// Largest rollup state accepted by [`Rollup::from_bytes`] (about 2^22 accounts).
pub const MAX_STATE_BYTES: usize = 1 << 28;
/// The saved state's format: version 1 held the accounts; version 2 also
/// the root they hash to, which a restore checks in place of each key's
/// subgroup.
const STATE_VERSION: u8 = 2;

/// A transaction the builder refused, with the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Position of the transaction in the submitted batch.
    pub index: usize,
    /// The transaction.
    pub transfer: Transfer,
    /// The rule it breaks.
    pub rule: Rule,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.transfer;
        write!(
            f,
            "transaction #{} ({} -> {}, amount {}, fee {}, nonce {}): {}",
            self.index, t.from, t.to, t.amount, t.fee, t.nonce, self.rule
        )
    }
}

/// One job of a batch: the witness a prover needs and the public inputs its
/// proof must verify against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobWitness {
    /// The chunk's witness.
    pub witness: ChunkWitness,
    /// Its public inputs.
    pub public: PublicInputs,
}

impl JobWitness {
    /// The bytes sent to a prover.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.witness.to_bytes()
    }

    /// The circuit the job is for.
    pub fn circuit_id(&self) -> CircuitId {
        self.witness.config.circuit_id()
    }
}

/// The result of applying a batch.
#[derive(Debug, Clone)]
pub struct BuiltBatch {
    /// State root before the batch.
    pub old_root: Root,
    /// State root after the batch.
    pub new_root: Root,
    /// Jobs in order; job i's new root is job i+1's old root.
    pub jobs: Vec<JobWitness>,
    /// Transactions that were refused (the state skips them).
    pub rejected: Vec<Rejection>,
}

/// The rollup state: accounts by index and their Merkle tree.
#[derive(Debug, Clone)]
pub struct Rollup {
    config: CircuitConfig,
    accounts: Vec<Account>,
    tree: SparseMerkleTree,
}

/// The saved state. Written from [`Account`]s; read as [`AccountWire`]s (the
/// same bytes) so the keys, each a curve point checked to be in the
/// subgroup, are decoded on every core.
#[derive(Serialize, Deserialize)]
struct StateWire<A> {
    version: u8,
    circuit: CircuitId,
    root: Root,
    accounts: Vec<A>,
}

/// A state saved by a build before the root was saved with it.
#[derive(Serialize, Deserialize)]
struct StateWireV1<A> {
    version: u8,
    circuit: CircuitId,
    accounts: Vec<A>,
}

impl Rollup {
    /// An empty state for circuits of `config`'s shape.
    pub fn new(config: CircuitConfig) -> Self {
        Self {
            config,
            accounts: Vec::new(),
            tree: SparseMerkleTree::new(config.depth),
        }
    }

    /// A state holding `accounts` at indices 0.., built in one pass.
    pub fn from_accounts(config: CircuitConfig, accounts: Vec<Account>) -> Result<Self> {
        let cap = 1u64 << config.depth;
        if accounts.len() as u64 > cap {
            return Err(Error::StateFull(cap));
        }
        let leaves: Vec<(u64, _)> = accounts
            .par_iter()
            .enumerate()
            .map(|(i, a)| (i as u64, a.leaf()))
            .collect();
        let tree = SparseMerkleTree::from_leaves(config.depth, leaves);
        Ok(Self {
            config,
            accounts,
            tree,
        })
    }

    /// Opens a funded account (a deposit) and returns its index.
    pub fn add_account(&mut self, pubkey: EddsaPublicKey, balance: u64) -> Result<u32> {
        let index = self.accounts.len() as u64;
        if index >= self.tree.capacity() {
            return Err(Error::StateFull(self.tree.capacity()));
        }
        let account = Account {
            pubkey,
            balance,
            nonce: 0,
        };
        self.tree.set(index, account.leaf());
        self.accounts.push(account);
        Ok(index as u32)
    }

    /// The circuit shape this state feeds.
    pub fn config(&self) -> CircuitConfig {
        self.config
    }

    /// The account at `index`.
    pub fn account(&self, index: u32) -> Option<&Account> {
        self.accounts.get(index as usize)
    }

    /// Number of accounts.
    pub fn num_accounts(&self) -> usize {
        self.accounts.len()
    }

    /// The current state root.
    pub fn root(&self) -> Root {
        Root::from_field(&self.tree.root())
    }

    /// Stored tree nodes (memory accounting).
    pub fn stored_nodes(&self) -> usize {
        self.tree.stored_nodes()
    }

    /// Applies `txs` in order: invalid ones are rejected with their rule, the
    /// rest update the state and are cut into jobs of K transfers. Fails with
    /// [`Error::EmptyBatch`] (state unchanged) when nothing is valid.
    pub fn apply_batch(&mut self, txs: &[SignedTransfer]) -> Result<BuiltBatch> {
        let old_root = self.root();
        let k = self.config.transfers_per_job as usize;
        let mut rejected = Vec::new();
        let mut jobs = Vec::new();
        let mut chunk: Vec<TxWitness> = Vec::with_capacity(k);
        let mut chunk_root = self.tree.root();
        for (index, st) in txs.iter().enumerate() {
            match self.apply_one(st) {
                Ok(w) => chunk.push(w),
                Err(rule) => {
                    rejected.push(Rejection {
                        index,
                        transfer: st.tx,
                        rule,
                    });
                    continue;
                }
            }
            if chunk.len() == k {
                jobs.push(self.close_chunk(chunk_root, std::mem::take(&mut chunk)));
                chunk_root = self.tree.root();
            }
        }
        if !chunk.is_empty() {
            jobs.push(self.close_chunk(chunk_root, chunk));
        }
        if jobs.is_empty() {
            return Err(Error::EmptyBatch {
                rejected: rejected.len(),
            });
        }
        Ok(BuiltBatch {
            old_root,
            new_root: self.root(),
            jobs,
            rejected,
        })
    }

    fn close_chunk(&self, old_root: crate::poseidon::F, txs: Vec<TxWitness>) -> JobWitness {
        let public = PublicInputs {
            old_root: Root::from_field(&old_root),
            new_root: self.root(),
            tx_commitment: Root::from_field(&tx_commitment(txs.iter().map(|t| &t.transfer.tx))),
            fees: txs.iter().map(|t| t.transfer.tx.fee as u128).sum(),
        };
        JobWitness {
            witness: ChunkWitness {
                config: self.config,
                old_root,
                txs,
            },
            public,
        }
    }

    /// Checks every rule first and only then mutates, so a rejected
    /// transaction leaves no trace.
    fn apply_one(&mut self, st: &SignedTransfer) -> std::result::Result<TxWitness, Rule> {
        let tx = &st.tx;
        let cap = self.tree.capacity();
        if tx.from as u64 >= cap || tx.to as u64 >= cap {
            return Err(Rule::IndexOutOfRange);
        }
        let sender = *self.account(tx.from).ok_or(Rule::UnknownSender)?;
        let receiver_known = self.account(tx.to).is_some();
        let new_sender = debit(&sender, st)?;
        if !receiver_known {
            return Err(Rule::UnknownReceiver);
        }
        let receiver = if tx.to == tx.from {
            new_sender
        } else {
            self.accounts[tx.to as usize]
        };
        let new_receiver = credit(&receiver, tx.amount)?;

        let sender_path = self.tree.path(tx.from as u64);
        self.accounts[tx.from as usize] = new_sender;
        self.tree.set(tx.from as u64, new_sender.leaf());
        let receiver_path = self.tree.path(tx.to as u64);
        self.accounts[tx.to as usize] = new_receiver;
        self.tree.set(tx.to as u64, new_receiver.leaf());
        Ok(TxWitness {
            transfer: *st,
            sender,
            sender_path,
            receiver,
            receiver_path,
        })
    }

    /// Serializes the accounts and their root (the tree is rebuilt on load).
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::encode_stored(&StateWire {
            version: STATE_VERSION,
            circuit: self.config.circuit_id(),
            root: self.root(),
            accounts: self.accounts.clone(),
        })
    }

    /// The state as a build before version 2 saved it (no root): what the
    /// migration test and the restart benchmark restore.
    pub fn to_v1_bytes(&self) -> Vec<u8> {
        codec::encode_stored(&StateWireV1 {
            version: 1,
            circuit: self.config.circuit_id(),
            accounts: self.accounts.clone(),
        })
    }

    /// Restores a state saved with [`Self::to_bytes`] (or by a build that
    /// saved version 1).
    ///
    /// Every account key was checked when it entered the state (genesis
    /// derives them; a deposit's key is parsed with every check), and the
    /// saved root binds them all: a restore checks that the accounts hash
    /// to it, which catches any changed byte, instead of checking each key's
    /// subgroup again (a 200,000-account state restores in about half the
    /// time).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let corrupt = |e: String| Error::StateBytes(e);
        match bytes.first() {
            Some(&STATE_VERSION) => {
                let wire: StateWire<AccountWire> = codec::decode_stored(bytes, MAX_STATE_BYTES)
                    .map_err(|e| corrupt(e.to_string()))?;
                let state =
                    Self::from_wire(&wire.circuit, wire.accounts, AccountWire::into_checked)?;
                if state.root() != wire.root {
                    return Err(corrupt(format!(
                        "its accounts hash to root {}, not to the saved root {}",
                        state.root(),
                        wire.root
                    )));
                }
                Ok(state)
            }
            Some(1) => {
                let wire: StateWireV1<AccountWire> = codec::decode_stored(bytes, MAX_STATE_BYTES)
                    .map_err(|e| corrupt(e.to_string()))?;
                Self::from_wire(&wire.circuit, wire.accounts, Account::try_from)
            }
            Some(version) => Err(corrupt(format!(
                "state version {version} (this build reads 1 and {STATE_VERSION})"
            ))),
            None => Err(corrupt("the saved state is empty".into())),
        }
    }

    /// The state of `circuit` holding the saved `accounts`, each parsed by
    /// `parse` on every core.
    fn from_wire(
        circuit: &CircuitId,
        accounts: Vec<AccountWire>,
        parse: fn(AccountWire) -> std::result::Result<Account, String>,
    ) -> Result<Self> {
        let config = CircuitConfig::from_circuit_id(circuit)?;
        let accounts = accounts
            .into_par_iter()
            .map(parse)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(Error::StateBytes)?;
        Self::from_accounts(config, accounts)
    }
}
