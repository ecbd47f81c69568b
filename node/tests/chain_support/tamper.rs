//! Calldata with exactly one thing changed.

use alloy::primitives::U256;
use node::chain::BatchCalldata;

/// Chunks `a` and `b` (proofs and inputs) swapped.
pub fn swap_chunks(calldata: &BatchCalldata, a: usize, b: usize) -> BatchCalldata {
    let k = calldata.inputs.len() / calldata.proofs.len();
    let mut out = calldata.clone();
    out.proofs.swap(a, b);
    for j in 0..k {
        out.inputs.swap(a * k + j, b * k + j);
    }
    out
}

/// Chunks `a` and `b`'s proofs swapped, their inputs kept.
pub fn swap_proofs(calldata: &BatchCalldata, a: usize, b: usize) -> BatchCalldata {
    let mut out = calldata.clone();
    out.proofs.swap(a, b);
    out
}

/// Input `index` (counted across chunks) set to `value`.
pub fn with_input(calldata: &BatchCalldata, index: usize, value: U256) -> BatchCalldata {
    let mut out = calldata.clone();
    out.inputs[index] = value;
    out
}

/// Chunk `chunk`'s proof words copied: `(to, from)` for each pair.
pub fn with_proof_word<const N: usize>(
    calldata: &BatchCalldata,
    chunk: usize,
    moves: [(usize, usize); N],
) -> BatchCalldata {
    let mut out = calldata.clone();
    for (to, from) in moves {
        out.proofs[chunk][to] = calldata.proofs[chunk][from];
    }
    out
}

/// Chunk `chunk`'s proof word `word` plus one.
pub fn bump_proof_word(calldata: &BatchCalldata, chunk: usize, word: usize) -> BatchCalldata {
    let mut out = calldata.clone();
    out.proofs[chunk][word] += U256::from(1);
    out
}

/// The last input dropped.
pub fn drop_last_input(calldata: &BatchCalldata) -> BatchCalldata {
    let mut out = calldata.clone();
    out.inputs.pop();
    out
}
