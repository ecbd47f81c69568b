//! Export in the EVM's form: 32-byte big-endian words in the order the
//! BN254 precompiles (ecAdd 0x06, ecMul 0x07, ecPairing 0x08) read them.
//!
//! A G1 point is `[x, y]`; a G2 point is `[x.c1, x.c0, y.c1, y.c0]` (the
//! imaginary part first, as EIP-197 orders it; arkworks' `c0` is the real
//! part). The point at infinity is all zeros. The contracts in `contracts/`
//! take proofs, public inputs and verifying keys in this form.

use ark_bn254::{Fq, Fr, G1Affine, G2Affine};
use ark_ec::AffineRepr;
use ark_ff::{BigInteger, PrimeField};

use crate::error::Result;
use crate::keys::VerifyingKey;
use crate::prove::{Proof, Statement};

/// One EVM word, big-endian.
pub type Word = [u8; 32];

/// A Groth16 verifying key as EVM words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvmVerifyingKey {
    /// α in G1.
    pub alpha: [Word; 2],
    /// β in G2.
    pub beta: [Word; 4],
    /// γ in G2.
    pub gamma: [Word; 4],
    /// δ in G2.
    pub delta: [Word; 4],
    /// The IC points (one more than the public inputs), in G1.
    pub ic: Vec<[Word; 2]>,
}

fn word<F: PrimeField>(x: &F) -> Word {
    let bytes = x.into_bigint().to_bytes_be();
    let mut out = [0u8; 32];
    out[32 - bytes.len()..].copy_from_slice(&bytes);
    out
}

fn g1(p: &G1Affine) -> [Word; 2] {
    p.xy()
        .map_or([[0u8; 32]; 2], |(x, y): (Fq, Fq)| [word(&x), word(&y)])
}

fn g2(p: &G2Affine) -> [Word; 4] {
    p.xy().map_or([[0u8; 32]; 4], |(x, y)| {
        [word(&x.c1), word(&x.c0), word(&y.c1), word(&y.c0)]
    })
}

/// A verifying key's points as EVM words.
pub fn verifying_key_words(vk: &VerifyingKey) -> EvmVerifyingKey {
    let k = &vk.inner;
    EvmVerifyingKey {
        alpha: g1(&k.alpha_g1),
        beta: g2(&k.beta_g2),
        gamma: g2(&k.gamma_g2),
        delta: g2(&k.delta_g2),
        ic: k.gamma_abc_g1.iter().map(g1).collect(),
    }
}

/// A proof as the eight words `[A.x, A.y, B.x.c1, B.x.c0, B.y.c1, B.y.c0, C.x, C.y]`.
pub fn proof_words(proof: &Proof) -> [Word; 8] {
    let [ax, ay] = g1(&proof.0.a);
    let [bx1, bx0, by1, by0] = g2(&proof.0.b);
    let [cx, cy] = g1(&proof.0.c);
    [ax, ay, bx1, bx0, by1, by0, cx, cy]
}

/// A statement's public inputs as words, in circuit order.
pub fn input_words(public: &(impl Statement + ?Sized)) -> Result<Vec<Word>> {
    Ok(public
        .field_elements()?
        .iter()
        .map(|x: &Fr| word(x))
        .collect())
}
