//! CrowdProve's proving work: the reference transfer-rollup circuit, Groth16
//! key generation, proving, verification and batch verification over BN254.
//!
//! Knows nothing of networking: the network carries a circuit id and opaque
//! witness bytes, and this crate maps them to circuits.
//!
//! # How the node uses it
//!
//! ```no_run
//! use prover_core::*;
//! # fn main() -> prover_core::Result<()> {
//! let config = CircuitConfig::default();                 // "transfer-d20-k8"
//! let id = config.circuit_id();
//! assert_eq!(CircuitConfig::from_circuit_id(&id)?, config);
//!
//! // Operator: keys (INSECURE seeded setup, testnets only), state, batches.
//! let (pk, vk) = setup_insecure(config, 42)?;
//! pk.save("transfer.pk")?;
//! let mut generator = TxGenerator::new(7, 1_000);
//! let mut state = generator.genesis(config, 1_000_000)?;
//! let batch = state.apply_batch(&generator.batch(&state, 64))?;
//! let job = &batch.jobs[0];
//! let witness_bytes: Vec<u8> = job.to_bytes();             // goes to a prover
//!
//! // Prover: load the key once by hash, prove on a fixed number of threads.
//! let pk = ProvingKey::load("transfer.pk", Some(pk.hash()))?;
//! let pool = ThreadPool::new(2)?;
//! let proof = pool.install(|| prove(&pk, &witness_bytes))?;
//! let proof_bytes: [u8; 128] = proof.to_bytes();
//!
//! // Operator: verify one proof, then the whole batch.
//! let pvk = vk.prepare();
//! let proof = Proof::from_bytes(&proof_bytes)?;
//! verify(&pvk, &job.public, &proof)?;          // Err(Error::InvalidProof) if false
//! let chunks = vec![(job.public, proof)];
//! # let _ = (batch.old_root, batch.new_root);
//! batch_verify(&pvk, &chunks, &mut rand::rngs::OsRng)?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`poseidon`]: Poseidon parameters, native hash and gadget.
//! - [`merkle`]: sparse Poseidon Merkle tree and the path gadget.
//! - [`eddsa`]: EdDSA over Baby Jubjub, native and gadget.
//! - [`workload`]: accounts, transfers, the transfer rules, tx commitment.
//! - [`circuit`]: circuit ids and registry, the transfer circuit.
//! - [`witness`]: job witness bytes, decoding, native re-execution, public inputs.
//! - [`rollup`]: rollup state and the batch builder.
//! - [`generator`]: seeded transaction generator.
//! - [`circom`]: snarkjs zkeys, circom witnesses, proving with snarkjs's reduction.
//! - [`keys`]: the setup (random, or insecure from a seed), key bytes and files.
//! - [`prove`](mod@prove): prove, verify, batch verify, thread pools.
//! - [`snarkjs`]: JSON export for snarkjs.
//! - [`evm`]: proofs, inputs and verifying keys as EVM precompile words.
//! - [`error`]: the error type.

pub mod circom;
pub mod circuit;
pub mod eddsa;
pub mod error;
pub mod evm;
pub mod generator;
pub mod keys;
pub mod merkle;
pub mod poseidon;
pub mod prove;
pub mod rollup;
pub mod snarkjs;
pub mod witness;
pub mod workload;

pub use circom::{CircomKey, CircomR1cs, CircomWitness};
pub use circuit::{CircomCircuit, Circuit, CircuitConfig, TransferCircuit};
pub use eddsa::{EddsaPublicKey, EddsaSecretKey, EddsaSignature};
pub use error::{Error, Result, Rule};
pub use generator::TxGenerator;
pub use keys::{
    KeySetup, PreparedVerifyingKey, ProvingKey, ProvingKeyHead, VerifierKey, VerifyingKey, setup,
    setup_insecure, setup_insecure_for,
};
pub use prove::{
    AnyProvingKey, PROOF_BYTES, Proof, PublicSignals, Statement, ThreadPool, batch_verify, prove,
    prove_with_public, verify, verify_batch_proof, verify_each,
};
pub use rollup::{BuiltBatch, JobWitness, Rejection, Rollup};
pub use snarkjs::export_snarkjs;
pub use witness::{ChunkWitness, PublicInputs, Root, TxWitness, public_inputs};
pub use workload::{Account, SignedTransfer, Transfer, tx_commitment};
