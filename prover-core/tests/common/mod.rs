//! Shared helpers for the integration tests: small states and hand-built
//! chunks that break exactly one rule.

#![allow(dead_code, unreachable_pub)]

mod built_once;
#[allow(unused_imports)]
pub use built_once::built_once;

use ark_bn254::Fr as F;
use prover_core::merkle::SparseMerkleTree;
use prover_core::poseidon;
use prover_core::*;

/// Depth 4, two transfers per job: small enough for dev-profile tests.
pub fn small_config() -> CircuitConfig {
    CircuitConfig::new(4, 2).unwrap()
}

/// A generator and a state of `n` accounts funded with `balance`.
pub fn small_state(seed: u64, n: u32, balance: u64) -> (TxGenerator, Rollup) {
    let mut generator = TxGenerator::new(seed, n);
    let state = generator.genesis(small_config(), balance).unwrap();
    (generator, state)
}

fn leaf(pk: &EddsaPublicKey, balance: F, nonce: F) -> F {
    let (x, y) = pk.xy();
    poseidon::hash(&[x, y, balance, nonce])
}

/// Builds a one-transfer chunk exactly as the circuit computes it (field
/// arithmetic, no rule checks), so only the rule under test can fail.
/// `to` must differ from `from`.
pub fn forced_chunk(
    config: CircuitConfig,
    accounts: &[Account],
    st: SignedTransfer,
) -> (ChunkWitness, PublicInputs) {
    let mut tree = SparseMerkleTree::from_leaves(
        config.depth,
        accounts
            .iter()
            .enumerate()
            .map(|(i, a)| (i as u64, a.leaf())),
    );
    let old_root = tree.root();
    let tx = st.tx;
    assert_ne!(tx.from, tx.to);
    let sender = accounts[tx.from as usize];
    let receiver = accounts[tx.to as usize];
    let sender_path = tree.path(tx.from as u64);
    let new_sbal = F::from(sender.balance) - F::from(tx.amount) - F::from(tx.fee);
    tree.set(
        tx.from as u64,
        leaf(
            &sender.pubkey,
            new_sbal,
            F::from(sender.nonce) + F::from(1u64),
        ),
    );
    let receiver_path = tree.path(tx.to as u64);
    let new_rbal = F::from(receiver.balance) + F::from(tx.amount);
    tree.set(
        tx.to as u64,
        leaf(&receiver.pubkey, new_rbal, F::from(receiver.nonce)),
    );
    let public = PublicInputs {
        old_root: Root::from_field(&old_root),
        new_root: Root::from_field(&tree.root()),
        tx_commitment: Root::from_field(&tx_commitment([&tx])),
        fees: tx.fee as u128,
    };
    let witness = ChunkWitness {
        config,
        old_root,
        txs: vec![TxWitness {
            transfer: st,
            sender,
            sender_path,
            receiver,
            receiver_path,
        }],
    };
    (witness, public)
}

/// Whether the circuit with this witness and these public inputs is satisfied.
pub fn satisfied(w: &ChunkWitness, public: &PublicInputs) -> bool {
    use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystem};
    let cs = ConstraintSystem::<F>::new_ref();
    TransferCircuit::with_witness(w, public)
        .unwrap()
        .generate_constraints(cs.clone())
        .unwrap();
    cs.is_satisfied().unwrap()
}
