//! Binary SHA-256 Merkle trees with domain-separated leaves and inner nodes.
//!
//! - leaf = SHA-256(`0x00` ‖ data), inner node = SHA-256(`0x01` ‖ left ‖ right),
//!   the root of no leaves = SHA-256(`0x02`). The prefixes stop a leaf from
//!   posing as an inner node (second-preimage attacks on the tree shape).
//! - A level with an odd number of nodes promotes its last node unchanged to the
//!   next level. Nodes are never duplicated, so two different leaf lists can
//!   never share a root (the Bitcoin duplicate-last-node flaw).
//! - A proof is the list of siblings from the leaf upward. Which side each
//!   sibling sits on, and where a node is promoted without one, follows from the
//!   leaf's index and the leaf count, so the verifier derives both: a proof
//!   binds its position, not just its membership.

use protocol::ContentHash;

/// Prefix of a leaf hash.
pub const LEAF_PREFIX: u8 = 0x00;
/// Prefix of an inner node hash.
pub const NODE_PREFIX: u8 = 0x01;
/// Prefix hashed alone for the root of an empty tree.
pub const EMPTY_PREFIX: u8 = 0x02;

/// The leaf hash of `data`.
pub fn leaf_hash(data: &[u8]) -> ContentHash {
    ContentHash::of_parts([&[LEAF_PREFIX][..], data])
}

/// The hash of an inner node.
pub fn node_hash(left: &ContentHash, right: &ContentHash) -> ContentHash {
    ContentHash::of_parts([&[NODE_PREFIX][..], &left.0, &right.0])
}

/// The root of a tree with no leaves.
pub fn empty_root() -> ContentHash {
    ContentHash::of(&[EMPTY_PREFIX])
}

/// The sizes of every level, from the leaves (first) to the root (last).
fn level_sizes(leaves: usize) -> Vec<usize> {
    let mut sizes = vec![leaves];
    let mut n = leaves;
    while n > 1 {
        n = n.div_ceil(2);
        sizes.push(n);
    }
    sizes
}

fn next_level(level: &[ContentHash]) -> Vec<ContentHash> {
    level
        .chunks(2)
        .map(|pair| match pair {
            [left, right] => node_hash(left, right),
            [single] => *single,
            _ => unreachable!("chunks(2) yields one or two nodes"),
        })
        .collect()
}

/// The root over `leaves` without keeping the inner levels.
pub fn root_of(leaves: &[ContentHash]) -> ContentHash {
    if leaves.is_empty() {
        return empty_root();
    }
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        level = next_level(&level);
    }
    level[0]
}

/// A whole tree, every level kept, so inclusion proofs cost no hashing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    levels: Vec<Vec<ContentHash>>,
}

impl MerkleTree {
    /// Builds the tree over `leaves` (already leaf-hashed).
    pub fn from_leaves(leaves: Vec<ContentHash>) -> Self {
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let next = next_level(levels.last().expect("checked above"));
            levels.push(next);
        }
        Self { levels }
    }

    /// The number of leaves.
    pub fn len(&self) -> usize {
        self.levels[0].len()
    }

    /// Whether the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The leaf hashes.
    pub fn leaves(&self) -> &[ContentHash] {
        &self.levels[0]
    }

    /// The root.
    pub fn root(&self) -> ContentHash {
        if self.is_empty() {
            empty_root()
        } else {
            self.levels.last().expect("a tree has a level")[0]
        }
    }

    /// The siblings from leaf `index` up to the root, or `None` past the end.
    pub fn proof(&self, index: usize) -> Option<Vec<ContentHash>> {
        if index >= self.len() {
            return None;
        }
        let mut proof = Vec::with_capacity(self.levels.len());
        let mut i = index;
        for level in &self.levels[..self.levels.len() - 1] {
            let sibling = i ^ 1;
            if sibling < level.len() {
                proof.push(level[sibling]);
            }
            i /= 2;
        }
        Some(proof)
    }

    /// Every level concatenated, leaves first: the stored form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let total: usize = self.levels.iter().map(Vec::len).sum();
        let mut out = Vec::with_capacity(total * 32);
        for hash in self.levels.iter().flatten() {
            out.extend_from_slice(&hash.0);
        }
        out
    }

    /// Reads the stored form of a tree over `leaves` leaves; `None` if the
    /// length is wrong or the levels do not hash to each other.
    pub fn from_bytes(bytes: &[u8], leaves: usize) -> Option<Self> {
        let sizes = level_sizes(leaves);
        let total: usize = sizes.iter().sum();
        if bytes.len() != total.checked_mul(32)? {
            return None;
        }
        let mut hashes = bytes.chunks_exact(32).map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            ContentHash(h)
        });
        let levels: Vec<Vec<ContentHash>> = sizes
            .iter()
            .map(|&n| hashes.by_ref().take(n).collect())
            .collect();
        let consistent = levels.windows(2).all(|w| next_level(&w[0]) == w[1]);
        consistent.then_some(Self { levels })
    }
}

/// Recomputes the root from `leaf` at `index` of `count` leaves and its
/// `proof`; true if it equals `root` and the proof has exactly the right length.
pub fn verify_proof(
    leaf: ContentHash,
    index: u64,
    count: u64,
    proof: &[ContentHash],
    root: &ContentHash,
) -> bool {
    if index >= count {
        return false;
    }
    let mut hash = leaf;
    let mut i = index;
    let mut n = count;
    let mut siblings = proof.iter();
    while n > 1 {
        if i % 2 == 1 {
            let Some(left) = siblings.next() else {
                return false;
            };
            hash = node_hash(left, &hash);
        } else if i + 1 < n {
            let Some(right) = siblings.next() else {
                return false;
            };
            hash = node_hash(&hash, right);
        }
        i /= 2;
        n = n.div_ceil(2);
    }
    siblings.next().is_none() && hash == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<ContentHash> {
        (0..n as u32).map(|i| leaf_hash(&i.to_le_bytes())).collect()
    }

    #[test]
    fn small_trees_have_the_documented_shape() {
        let l = leaves(3);
        assert_eq!(root_of(&[]), empty_root());
        assert_eq!(root_of(&l[..1]), l[0]);
        assert_eq!(root_of(&l[..2]), node_hash(&l[0], &l[1]));
        // the odd third leaf is promoted, not duplicated
        assert_eq!(root_of(&l), node_hash(&node_hash(&l[0], &l[1]), &l[2]));
        assert_ne!(leaf_hash(b""), empty_root());
    }

    #[test]
    fn every_proof_verifies_and_binds_its_index() {
        for n in 0..40usize {
            let tree = MerkleTree::from_leaves(leaves(n));
            let root = tree.root();
            assert_eq!(root, root_of(tree.leaves()));
            assert!(tree.proof(n).is_none());
            for i in 0..n {
                let proof = tree.proof(i).unwrap();
                assert!(verify_proof(
                    tree.leaves()[i],
                    i as u64,
                    n as u64,
                    &proof,
                    &root
                ));
                // wrong index, wrong count, wrong leaf, truncated or padded proof
                if n > 1 {
                    let j = (i + 1) % n;
                    assert!(!verify_proof(
                        tree.leaves()[i],
                        j as u64,
                        n as u64,
                        &proof,
                        &root
                    ));
                }
                assert!(!verify_proof(
                    leaf_hash(b"x"),
                    i as u64,
                    n as u64,
                    &proof,
                    &root
                ));
                if !proof.is_empty() {
                    assert!(!verify_proof(
                        tree.leaves()[i],
                        i as u64,
                        n as u64,
                        &proof[1..],
                        &root
                    ));
                }
                let mut padded = proof.clone();
                padded.push(root);
                assert!(!verify_proof(
                    tree.leaves()[i],
                    i as u64,
                    n as u64,
                    &padded,
                    &root
                ));
            }
        }
    }

    #[test]
    fn stored_form_round_trips_and_rejects_damage() {
        for n in [0usize, 1, 2, 5, 16, 33] {
            let tree = MerkleTree::from_leaves(leaves(n));
            let bytes = tree.to_bytes();
            assert_eq!(MerkleTree::from_bytes(&bytes, n), Some(tree.clone()));
            assert_eq!(MerkleTree::from_bytes(&bytes, n + 1), None);
            if n > 1 {
                let mut bad = bytes.clone();
                bad[0] ^= 1;
                assert_eq!(MerkleTree::from_bytes(&bad, n), None);
            }
        }
    }
}
