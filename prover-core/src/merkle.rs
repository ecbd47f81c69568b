//! Sparse Poseidon Merkle tree: native tree and path gadget.
//!
//! Leaves are field elements; an empty leaf is `0`. An inner node is
//! `poseidon::hash([left, right])`. Only non-empty nodes are stored, so a
//! depth-20 tree with 100,000 accounts costs memory in proportion to the
//! accounts, not to the 2^20 slots. The same path gadget serves both halves of
//! an update: the old leaf and the new leaf are hashed up the same siblings
//! under the same index bits.

use std::collections::HashMap;

use ark_ff::Zero;
use ark_r1cs_std::boolean::Boolean;
use ark_r1cs_std::fields::fp::FpVar;
use ark_relations::gr1cs::{ConstraintSystemRef, SynthesisError};
use rayon::prelude::*;

use crate::poseidon::{self, F};

/// The deepest tree supported (indices are `u32`).
pub const MAX_DEPTH: u32 = 32;

/// A sparse Merkle tree of fixed depth.
#[derive(Debug, Clone)]
pub struct SparseMerkleTree {
    depth: u32,
    /// `levels[0]` holds leaves, `levels[depth]` the root; absent = default.
    levels: Vec<HashMap<u64, F>>,
    /// `defaults[l]` is the root of an empty subtree of height `l`.
    defaults: Vec<F>,
}

/// Roots of empty subtrees of height `0..=depth`.
pub fn empty_roots(depth: u32) -> Vec<F> {
    let mut out = Vec::with_capacity(depth as usize + 1);
    out.push(F::zero());
    for l in 0..depth as usize {
        out.push(poseidon::hash(&[out[l], out[l]]));
    }
    out
}

impl SparseMerkleTree {
    /// An empty tree. `depth` must be at most [`MAX_DEPTH`] (checked by callers
    /// through `CircuitConfig`).
    pub fn new(depth: u32) -> Self {
        assert!(depth <= MAX_DEPTH, "depth {depth} over MAX_DEPTH");
        Self {
            depth,
            levels: vec![HashMap::new(); depth as usize + 1],
            defaults: empty_roots(depth),
        }
    }

    /// Builds a tree from `(index, leaf)` pairs with one hash per non-empty
    /// node, much cheaper than inserting leaves one path at a time.
    pub fn from_leaves(depth: u32, leaves: impl IntoIterator<Item = (u64, F)>) -> Self {
        let mut tree = Self::new(depth);
        tree.levels[0] = leaves.into_iter().filter(|(_, v)| !v.is_zero()).collect();
        for l in 0..depth as usize {
            let parents: Vec<u64> = {
                let mut p: Vec<u64> = tree.levels[l].keys().map(|i| i >> 1).collect();
                p.sort_unstable();
                p.dedup();
                p
            };
            // Each level's hashes are independent: computed on every core
            // (a 200,000-account state is some 400,000 hashes).
            let next = parents
                .into_par_iter()
                .map(|p| {
                    let left = tree.node(l, p << 1);
                    let right = tree.node(l, (p << 1) | 1);
                    (p, poseidon::hash(&[left, right]))
                })
                .collect();
            tree.levels[l + 1] = next;
        }
        tree
    }

    /// The tree's depth.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// The current root.
    pub fn root(&self) -> F {
        self.node(self.depth as usize, 0)
    }

    /// Number of slots, `2^depth`.
    pub fn capacity(&self) -> u64 {
        1u64 << self.depth
    }

    fn node(&self, level: usize, index: u64) -> F {
        self.levels[level]
            .get(&index)
            .copied()
            .unwrap_or(self.defaults[level])
    }

    /// The leaf at `index` (`0` when empty).
    pub fn leaf(&self, index: u64) -> F {
        self.node(0, index)
    }

    /// Siblings of the path from leaf `index` to the root, bottom first.
    pub fn path(&self, index: u64) -> Vec<F> {
        (0..self.depth as usize)
            .map(|l| self.node(l, (index >> l) ^ 1))
            .collect()
    }

    /// Sets leaf `index` and rehashes its path. `index` must be below
    /// [`Self::capacity`].
    pub fn set(&mut self, index: u64, leaf: F) {
        assert!(index < self.capacity(), "leaf index {index} out of range");
        let mut cur = leaf;
        let mut idx = index;
        for l in 0..=self.depth as usize {
            if cur == self.defaults[l] {
                self.levels[l].remove(&idx);
            } else {
                self.levels[l].insert(idx, cur);
            }
            if l == self.depth as usize {
                break;
            }
            let sib = self.node(l, idx ^ 1);
            cur = if idx & 1 == 0 {
                poseidon::hash(&[cur, sib])
            } else {
                poseidon::hash(&[sib, cur])
            };
            idx >>= 1;
        }
    }

    /// Number of stored (non-default) nodes, for memory accounting.
    pub fn stored_nodes(&self) -> usize {
        self.levels.iter().map(HashMap::len).sum()
    }
}

/// Recomputes a root from a leaf, its index and its siblings (bottom first).
pub fn root_from_path(leaf: F, index: u64, siblings: &[F]) -> F {
    siblings.iter().enumerate().fold(leaf, |cur, (l, sib)| {
        if (index >> l) & 1 == 0 {
            poseidon::hash(&[cur, *sib])
        } else {
            poseidon::hash(&[*sib, cur])
        }
    })
}

/// In-circuit twin of [`root_from_path`]; `index_bits` are little-endian and
/// as many as `siblings`.
pub fn root_from_path_var(
    cs: ConstraintSystemRef<F>,
    leaf: &FpVar<F>,
    index_bits: &[Boolean<F>],
    siblings: &[FpVar<F>],
) -> Result<FpVar<F>, SynthesisError> {
    debug_assert_eq!(index_bits.len(), siblings.len());
    let mut cur = leaf.clone();
    for (bit, sib) in index_bits.iter().zip(siblings) {
        // One selection gives `left`; `right` is then the other of the pair.
        let left = bit.select(sib, &cur)?;
        let right = &cur + sib - &left;
        cur = poseidon::hash_var(cs.clone(), &[left, right])?;
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_r1cs_std::GR1CSVar;
    use ark_r1cs_std::alloc::AllocVar;
    use ark_relations::gr1cs::ConstraintSystem;

    #[test]
    fn bulk_build_matches_incremental_and_paths_verify() {
        let leaves: Vec<(u64, F)> = [(0u64, 5u64), (3, 7), (9, 11), (15, 13)]
            .iter()
            .map(|(i, v)| (*i, F::from(*v)))
            .collect();
        let bulk = SparseMerkleTree::from_leaves(4, leaves.clone());
        let mut inc = SparseMerkleTree::new(4);
        for (i, v) in &leaves {
            inc.set(*i, *v);
        }
        assert_eq!(bulk.root(), inc.root());
        for (i, v) in &leaves {
            assert_eq!(root_from_path(*v, *i, &bulk.path(*i)), bulk.root());
        }
        assert_eq!(root_from_path(F::zero(), 4, &bulk.path(4)), bulk.root());
        // Clearing every leaf returns to the empty root and frees storage.
        for (i, _) in &leaves {
            inc.set(*i, F::zero());
        }
        assert_eq!(inc.root(), SparseMerkleTree::new(4).root());
        assert_eq!(inc.stored_nodes(), 0);
    }

    #[test]
    fn update_gadget_agrees_with_native() {
        let mut tree = SparseMerkleTree::from_leaves(6, [(1, F::from(1u64)), (42, F::from(2u64))]);
        let index = 42u64;
        let siblings = tree.path(index);
        let old_root = tree.root();
        tree.set(index, F::from(99u64));
        let new_root = tree.root();

        let cs = ConstraintSystem::<F>::new_ref();
        let bits: Vec<Boolean<F>> = (0..6)
            .map(|l| Boolean::new_witness(cs.clone(), || Ok((index >> l) & 1 == 1)).unwrap())
            .collect();
        let sibs: Vec<FpVar<F>> = siblings
            .iter()
            .map(|s| FpVar::new_witness(cs.clone(), || Ok(*s)).unwrap())
            .collect();
        let old_leaf = FpVar::new_witness(cs.clone(), || Ok(F::from(2u64))).unwrap();
        let new_leaf = FpVar::new_witness(cs.clone(), || Ok(F::from(99u64))).unwrap();
        let r0 = root_from_path_var(cs.clone(), &old_leaf, &bits, &sibs).unwrap();
        let r1 = root_from_path_var(cs.clone(), &new_leaf, &bits, &sibs).unwrap();
        assert_eq!(r0.value().unwrap(), old_root);
        assert_eq!(r1.value().unwrap(), new_root);
        assert!(cs.is_satisfied().unwrap());
    }
}
