//! prover-core's proofs, public inputs and verifying keys as the contracts'
//! arguments: 256-bit words in the BN254 precompiles' order
//! ([`prover_core::evm`] says which).

use alloy::primitives::{Address, U256};
use protocol::PayoutAddress;
use prover_core::evm::{self, Word};
use prover_core::{Proof, Root, Statement, VerifyingKey};

/// One EVM word.
pub fn word(w: &Word) -> U256 {
    U256::from_be_bytes(*w)
}

/// A prover's payout address as the contracts take it.
pub fn payout_address(address: PayoutAddress) -> Address {
    Address::from(address.0)
}

/// A state root (32 canonical little-endian bytes) as the field element
/// word the contract compares.
pub fn root_word(root: &Root) -> U256 {
    U256::from_le_bytes(root.0)
}

/// A proof as `settle`'s eight words.
pub fn proof_words(proof: &Proof) -> [U256; 8] {
    evm::proof_words(proof).map(|w| word(&w))
}

/// A statement's public inputs as words, in circuit order.
pub fn input_words(public: &(impl Statement + ?Sized)) -> prover_core::Result<Vec<U256>> {
    Ok(evm::input_words(public)?.iter().map(word).collect())
}

/// The verifying key as the Settlement constructor's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyWords {
    /// α (G1).
    pub alpha: [U256; 2],
    /// β (G2, precompile order).
    pub beta: [U256; 4],
    /// γ (G2, precompile order).
    pub gamma: [U256; 4],
    /// δ (G2, precompile order).
    pub delta: [U256; 4],
    /// The IC points flattened: x0, y0, x1, y1, ...
    pub ic: Vec<U256>,
}

/// A verifying key as the Settlement constructor's arguments.
pub fn key_words(vk: &VerifyingKey) -> KeyWords {
    let k = evm::verifying_key_words(vk);
    KeyWords {
        alpha: k.alpha.map(|w| word(&w)),
        beta: k.beta.map(|w| word(&w)),
        gamma: k.gamma.map(|w| word(&w)),
        delta: k.delta.map(|w| word(&w)),
        ic: k.ic.iter().flatten().map(word).collect(),
    }
}

/// A batch's `settle` arguments: one proof per chunk, and every chunk's
/// inputs one chunk after another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchCalldata {
    /// Each chunk's proof words.
    pub proofs: Vec<[U256; 8]>,
    /// Each chunk's public inputs, concatenated in chunk order.
    pub inputs: Vec<U256>,
}

/// The `settle` arguments for `chunks` (each chunk's statement and proof,
/// in the batch's order).
pub fn batch_calldata<S: Statement>(chunks: &[(S, Proof)]) -> prover_core::Result<BatchCalldata> {
    let mut calldata = BatchCalldata {
        proofs: Vec::with_capacity(chunks.len()),
        inputs: Vec::new(),
    };
    for (statement, proof) in chunks {
        calldata.proofs.push(proof_words(proof));
        calldata.inputs.extend(input_words(statement)?);
    }
    Ok(calldata)
}
