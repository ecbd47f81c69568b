//! The hash maps' hasher: fast, and seeded at random per map so that keys
//! cannot be ground into one bucket. Lookups only; see
//! [Determinism](super#determinism).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};

use crate::identity::PublicKey;

/// FxHash (the multiply-rotate hash of Firefox and rustc): a few cycles per
/// word, against SipHash's tens. Each map starts it from a random seed
/// ([`SeededFx`]), so the buckets keys land in cannot be predicted: an
/// attacker who grinds ed25519 keys cannot aim them all at one bucket and turn
/// lookups linear. (Not a keyed PRF like SipHash, but without the seed the
/// bucket of a key is unknown.)
#[derive(Debug, Clone, Copy)]
pub(super) struct FxHasher(u64);

impl FxHasher {
    const K: u64 = 0xf135_7aea_2e62_a9c5;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(26) ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let mut tail = [0u8; 8];
        tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.add(u64::from_le_bytes(tail));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(n.into());
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        // The table takes its bucket from the low bits; the multiply leaves
        // them depending only on the input's low bits, so fold the high down.
        self.0 ^ (self.0 >> 32)
    }
}

/// Builds [`FxHasher`]s from one random seed per map.
#[derive(Debug, Clone, Copy)]
pub(super) struct SeededFx(u64);

impl Default for SeededFx {
    fn default() -> Self {
        // std's per-process random keys, without a dependency on `rand`.
        Self(RandomState::new().hash_one(0x5eed_u64))
    }
}

impl BuildHasher for SeededFx {
    type Hasher = FxHasher;
    fn build_hasher(&self) -> FxHasher {
        FxHasher(self.0)
    }
}

/// A lookup-only map: see [Determinism](super#determinism).
pub(super) type FxMap<K, V> = HashMap<K, V, SeededFx>;

/// A prover's map key: hashes only the public key's first eight bytes, which
/// are as good as random for an ed25519 key; equality still compares all 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ProverKey(pub(super) PublicKey);

impl ProverKey {
    pub(super) fn of(key: &PublicKey) -> Self {
        Self(*key)
    }
}

impl Hash for ProverKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut head = [0u8; 8];
        head.copy_from_slice(&self.0.0[..8]);
        state.write_u64(u64::from_le_bytes(head));
    }
}
