//! A circuit-specific Groth16 setup for a circom circuit, written as a
//! snarkjs zkey: what `crowdprove setup --r1cs` runs when an operator has no
//! ceremony's zkey. It is one party's setup, like the transfer circuit's
//! (`KeySetup::Random`: the randomness is dropped when it ends), or, from a
//! seed, an INSECURE one for tests and testnets. It needs no powers of tau:
//! the toxic waste (τ, α, β, γ, δ) is drawn here, so a 2^18 domain takes
//! seconds, where snarkjs's ceremony takes hours in JavaScript.
//!
//! The zkey is what snarkjs's `groth16 setup` writes, so snarkjs, its
//! Solidity verifier and this crate's prover read it alike:
//! - the QAP is over a domain of `m` (a power of two) points holding the
//!   circuit's constraints, then one constraint per public input and the
//!   constant (`input · 1`, in A only), which makes the IC points
//!   independent;
//! - A, B (in G1 and G2) hold each signal's `A_i(τ)`, `B_i(τ)`; IC the public
//!   signals' `(β·A_i + α·B_i + C_i)(τ)/γ`, C the private ones' over `δ`;
//! - H holds the Lagrange basis of the domain of `2m` points at its odd
//!   points, over `δ`: the prover evaluates `A·B − C` on that coset
//!   ([`super::CircomReduction`]), and since it vanishes on the even points,
//!   those evaluations against this basis give `h(τ)·Z(τ)/δ`;
//! - points are written in Montgomery form; coefficients in Montgomery form
//!   of their Montgomery form (value·R², as snarkjs writes them).

use ark_bn254::{Fq, Fr, G1Affine, G1Projective, G2Affine, G2Projective};
use ark_ec::scalar_mul::BatchMulPreprocessing;
use ark_ec::{AffineRepr, PrimeGroup};
use ark_ff::{Field, PrimeField, UniformRand, Zero};
use ark_poly::{EvaluationDomain, Radix2EvaluationDomain};
use protocol::ids::ContentHash;
use rand::rngs::{OsRng, StdRng};
use rand::{CryptoRng, RngCore, SeedableRng};

use super::{CircomKey, CircomR1cs, Combination};
use crate::error::{Error, Result};
use crate::keys::{KeySetup, VerifyingKey};

/// A setup's product: the zkey's bytes, the key read back from them, and
/// its verification key recording how the setup was made.
pub struct CircomSetup {
    /// The zkey file's bytes.
    pub zkey: Vec<u8>,
    /// The proving key they hold.
    pub key: CircomKey,
    /// Its verification key, saying how the setup was made.
    pub verifying_key: VerifyingKey,
}

/// Sets up `r1cs` from the OS's random source.
pub fn setup(r1cs: &CircomR1cs) -> Result<CircomSetup> {
    setup_with(r1cs, KeySetup::Random, &mut OsRng)
}

/// **INSECURE, testnets only**: sets up `r1cs` from a public seed, so anyone
/// who knows it can forge proofs. The verification key says so, and a
/// distributor refuses it outside `--dev`.
pub fn setup_insecure(r1cs: &CircomR1cs, seed: u64) -> Result<CircomSetup> {
    setup_with(
        r1cs,
        KeySetup::InsecureSeed(Some(seed)),
        &mut StdRng::seed_from_u64(seed),
    )
}

fn setup_with<R: RngCore + CryptoRng>(
    r1cs: &CircomR1cs,
    how: KeySetup,
    rng: &mut R,
) -> Result<CircomSetup> {
    let waste = ToxicWaste::draw(rng);
    let zkey = Zkey::of(r1cs, &waste)?.to_bytes();
    // Read back as any zkey is (layout checked; the points are our own).
    let key = CircomKey::from_bytes_named(&zkey, ContentHash::of(&zkey))?;
    let verifying_key = VerifyingKey::new(key.circuit(), how, key.pk.vk.clone());
    Ok(CircomSetup {
        zkey,
        key,
        verifying_key,
    })
}

/// The setup's secrets: whoever holds them can forge proofs.
struct ToxicWaste {
    tau: Fr,
    alpha: Fr,
    beta: Fr,
    gamma: Fr,
    delta: Fr,
}

impl ToxicWaste {
    fn draw<R: RngCore>(rng: &mut R) -> Self {
        let mut nonzero = || loop {
            let x = Fr::rand(rng);
            if !x.is_zero() {
                return x;
            }
        };
        Self {
            tau: nonzero(),
            alpha: nonzero(),
            beta: nonzero(),
            gamma: nonzero(),
            delta: nonzero(),
        }
    }
}

/// A zkey's contents, in section order.
struct Zkey {
    num_vars: usize,
    num_public: usize,
    domain_size: usize,
    alpha_g1: G1Affine,
    beta_g1: G1Affine,
    beta_g2: G2Affine,
    gamma_g2: G2Affine,
    delta_g1: G1Affine,
    delta_g2: G2Affine,
    ic: Vec<G1Affine>,
    /// (matrix, constraint, signal, value): A is matrix 0, B matrix 1.
    coefficients: Vec<(u32, u32, u32, Fr)>,
    a: Vec<G1Affine>,
    b_g1: Vec<G1Affine>,
    b_g2: Vec<G2Affine>,
    c: Vec<G1Affine>,
    h: Vec<G1Affine>,
}

impl Zkey {
    fn of(r1cs: &CircomR1cs, w: &ToxicWaste) -> Result<Self> {
        let (n, num_public, num_vars) = (r1cs.constraints.len(), r1cs.num_public, r1cs.num_wires);
        let domain = Radix2EvaluationDomain::<Fr>::new(n + num_public + 1)
            .filter(|d| d.size() <= 1 << 27)
            .ok_or_else(|| {
                Error::Config(format!(
                    "{n} constraints and {num_public} public signals need a domain past 2^27"
                ))
            })?;
        let m = domain.size();
        let coefficients = coefficients_of(r1cs);
        // Each signal's A, B and C polynomials at τ.
        let lagrange = domain.evaluate_all_lagrange_coefficients(w.tau);
        let (mut a, mut b, mut c) = (
            vec![Fr::zero(); num_vars],
            vec![Fr::zero(); num_vars],
            vec![Fr::zero(); num_vars],
        );
        for (row, [ra, rb, rc]) in r1cs.constraints.iter().enumerate() {
            for (at, combination) in [(&mut a, ra), (&mut b, rb), (&mut c, rc)] {
                for (wire, value) in combination {
                    at[*wire] += *value * lagrange[row];
                }
            }
        }
        for (signal, l) in a.iter_mut().zip(&lagrange[n..=n + num_public]) {
            *signal += l;
        }
        let (gamma_inv, delta_inv) = (inverse(w.gamma), inverse(w.delta));
        let combined = |i: usize| w.beta * a[i] + w.alpha * b[i] + c[i];
        let ic_scalars: Vec<Fr> = (0..=num_public).map(|i| combined(i) * gamma_inv).collect();
        let c_scalars: Vec<Fr> = (num_public + 1..num_vars)
            .map(|i| combined(i) * delta_inv)
            .collect();
        let double = Radix2EvaluationDomain::<Fr>::new(2 * m).expect("2m fits when m does");
        let h_scalars: Vec<Fr> = double
            .evaluate_all_lagrange_coefficients(w.tau)
            .into_iter()
            .skip(1)
            .step_by(2)
            .map(|l| l * delta_inv)
            .collect();
        let g1 = BatchMulPreprocessing::new(G1Projective::generator(), num_vars.max(m));
        let g2 = BatchMulPreprocessing::new(G2Projective::generator(), num_vars);
        let one_g1 = |x: Fr| (G1Projective::generator() * x).into();
        let one_g2 = |x: Fr| (G2Projective::generator() * x).into();
        Ok(Self {
            num_vars,
            num_public,
            domain_size: m,
            alpha_g1: one_g1(w.alpha),
            beta_g1: one_g1(w.beta),
            beta_g2: one_g2(w.beta),
            gamma_g2: one_g2(w.gamma),
            delta_g1: one_g1(w.delta),
            delta_g2: one_g2(w.delta),
            ic: g1.batch_mul(&ic_scalars),
            coefficients,
            a: g1.batch_mul(&a),
            b_g1: g1.batch_mul(&b),
            b_g2: g2.batch_mul(&b),
            c: g1.batch_mul(&c_scalars),
            h: g1.batch_mul(&h_scalars),
        })
    }

    /// The zkey file: magic, version 1, ten sections.
    fn to_bytes(&self) -> Vec<u8> {
        let mut header = Vec::new();
        for modulus in [Fq::MODULUS.0, Fr::MODULUS.0] {
            header.extend(32u32.to_le_bytes());
            limbs(&mut header, &modulus);
        }
        for count in [self.num_vars, self.num_public, self.domain_size] {
            header.extend(u32::try_from(count).expect("checked sizes").to_le_bytes());
        }
        g1(&mut header, &self.alpha_g1);
        g1(&mut header, &self.beta_g1);
        g2(&mut header, &self.beta_g2);
        g2(&mut header, &self.gamma_g2);
        g1(&mut header, &self.delta_g1);
        g2(&mut header, &self.delta_g2);
        let mut coefficients = u32::try_from(self.coefficients.len())
            .expect("coefficients fit a zkey")
            .to_le_bytes()
            .to_vec();
        // snarkjs stores value·R² (Montgomery form of the Montgomery form).
        let r = Fr::from_bigint(Fr::R).expect("R is below the modulus");
        for (matrix, constraint, signal, value) in &self.coefficients {
            for index in [matrix, constraint, signal] {
                coefficients.extend(index.to_le_bytes());
            }
            limbs(&mut coefficients, &(*value * r).0.0);
        }
        let points = |write: &dyn Fn(&mut Vec<u8>)| {
            let mut out = Vec::new();
            write(&mut out);
            out
        };
        let sections: [Vec<u8>; 10] = [
            1u32.to_le_bytes().to_vec(),
            header,
            points(&|o| self.ic.iter().for_each(|p| g1(o, p))),
            coefficients,
            points(&|o| self.a.iter().for_each(|p| g1(o, p))),
            points(&|o| self.b_g1.iter().for_each(|p| g1(o, p))),
            points(&|o| self.b_g2.iter().for_each(|p| g2(o, p))),
            points(&|o| self.c.iter().for_each(|p| g1(o, p))),
            points(&|o| self.h.iter().for_each(|p| g1(o, p))),
            // No contributions: a 64-byte hash of them (unused) and a count.
            [0u8; 68].to_vec(),
        ];
        let mut file = b"zkey".to_vec();
        file.extend(1u32.to_le_bytes());
        file.extend(10u32.to_le_bytes());
        for (id, body) in (1u32..).zip(&sections) {
            file.extend(id.to_le_bytes());
            file.extend((body.len() as u64).to_le_bytes());
            file.extend(body);
        }
        file
    }
}

/// The A and B matrices' nonzero entries, then snarkjs's input constraints:
/// signal `s` (each public one and the constant) times 1 in row `n + s`.
fn coefficients_of(r1cs: &CircomR1cs) -> Vec<(u32, u32, u32, Fr)> {
    let index = |i: usize| u32::try_from(i).expect("r1cs indices are u32");
    let entries = |matrix: u32, row: usize, combination: &Combination| {
        combination
            .iter()
            .filter(|(_, v)| !v.is_zero())
            .map(move |(wire, v)| (matrix, index(row), index(*wire), *v))
            .collect::<Vec<_>>()
    };
    let n = r1cs.constraints.len();
    let mut out = Vec::new();
    for (row, [a, b, _]) in r1cs.constraints.iter().enumerate() {
        out.extend(entries(0, row, a));
        out.extend(entries(1, row, b));
    }
    out.extend((0..=r1cs.num_public).map(|s| (0, index(n + s), index(s), Fr::from(1u64))));
    out
}

fn inverse(x: Fr) -> Fr {
    x.inverse().expect("drawn nonzero")
}

fn limbs(out: &mut Vec<u8>, limbs: &[u64; 4]) {
    for limb in limbs {
        out.extend(limb.to_le_bytes());
    }
}

/// A G1 point as snarkjs writes it: x, y in Montgomery form; (0, 0) for
/// infinity.
fn g1(out: &mut Vec<u8>, p: &G1Affine) {
    let (x, y) = p.xy().unwrap_or_default();
    limbs(out, &x.0.0);
    limbs(out, &y.0.0);
}

/// A G2 point: x.c0, x.c1, y.c0, y.c1.
fn g2(out: &mut Vec<u8>, p: &G2Affine) {
    let (x, y) = p.xy().unwrap_or_default();
    for f in [x.c0, x.c1, y.c0, y.c1] {
        limbs(out, &f.0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CircomWitness;

    fn fixture(circuit: &str, file: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/circom")
            .join(circuit)
            .join(file)
    }

    /// The coefficient section (4) of a zkey, sorted.
    fn coefficient_section(zkey: &[u8]) -> Vec<Vec<u8>> {
        let table = super::super::sections(zkey, b"zkey", &[1], 10).unwrap();
        let section = &zkey[table[3].clone().unwrap()];
        let mut entries: Vec<Vec<u8>> = section[4..].chunks(44).map(<[u8]>::to_vec).collect();
        entries.sort();
        entries
    }

    #[test]
    fn a_seeded_setup_proves_and_verifies_the_committed_circuits() {
        for circuit in ["multiplier", "chain"] {
            let r1cs = CircomR1cs::load(fixture(circuit, "circuit.r1cs")).unwrap();
            let made = setup_insecure(&r1cs, 7).unwrap();
            // Every point checked, as a registered zkey is.
            let key = CircomKey::from_bytes(&made.zkey).unwrap();
            r1cs.check_matches(&key).unwrap();
            assert_eq!(made.verifying_key.setup(), KeySetup::InsecureSeed(Some(7)));
            assert!(!made.verifying_key.setup().is_secure());
            // The same coefficients as snarkjs's own setup of the circuit.
            let snarkjs = std::fs::read(fixture(circuit, "circuit.zkey")).unwrap();
            assert_eq!(
                coefficient_section(&made.zkey),
                coefficient_section(&snarkjs)
            );
            let theirs = CircomKey::from_bytes(&snarkjs).unwrap();
            assert_eq!(
                (key.num_vars(), key.num_public(), key.num_constraints()),
                (
                    theirs.num_vars(),
                    theirs.num_public(),
                    theirs.num_constraints()
                )
            );
            let witness =
                CircomWitness::load(fixture(circuit, "witness-1.wtns"), key.num_public()).unwrap();
            let proof = key.prove(&witness).unwrap();
            key.verify(witness.public(), &proof).unwrap();
            // Another statement, or another setup's key, refuses it.
            let other =
                CircomWitness::load(fixture(circuit, "witness-2.wtns"), key.num_public()).unwrap();
            assert!(key.verify(other.public(), &proof).is_err());
            assert!(theirs.verify(witness.public(), &proof).is_err());
        }
    }

    #[test]
    fn the_same_seed_makes_the_same_zkey_and_another_seed_another() {
        let r1cs = CircomR1cs::load(fixture("multiplier", "circuit.r1cs")).unwrap();
        let a = setup_insecure(&r1cs, 1).unwrap();
        assert_eq!(a.zkey, setup_insecure(&r1cs, 1).unwrap().zkey);
        assert_ne!(a.key.hash(), setup_insecure(&r1cs, 2).unwrap().key.hash());
        let random = setup(&r1cs).unwrap();
        assert_eq!(random.verifying_key.setup(), KeySetup::Random);
        assert_ne!(random.key.hash(), a.key.hash());
    }
}
