//! Poseidon over the BN254 scalar field: parameters, native hash and gadget.
//!
//! Parameters (documented in `docs/circuit.md`): width 3 (rate 2, capacity 1),
//! S-box x^5, 8 full and 57 partial rounds, round constants and MDS matrix from
//! the Grain LFSR of the Poseidon paper (`find_poseidon_ark_and_mds` with
//! `prime_bits = 254`, `skip_matrices = 0`). This is the standard 128-bit
//! security choice for t = 3 over a 254-bit field.
//!
//! A hash of `n` elements absorbs them into a fresh sponge and squeezes one
//! element; the native and in-circuit versions run the same sponge.

use std::sync::OnceLock;

use ark_bn254::Fr;
use ark_crypto_primitives::sponge::constraints::CryptographicSpongeVar;
use ark_crypto_primitives::sponge::poseidon::constraints::PoseidonSpongeVar;
use ark_crypto_primitives::sponge::poseidon::{PoseidonConfig, find_poseidon_ark_and_mds};
use ark_ff::{Field, Zero};
use ark_r1cs_std::fields::fp::FpVar;
use ark_relations::gr1cs::{ConstraintSystemRef, SynthesisError};

/// Field of the circuit: the BN254 scalar field (also Baby Jubjub's base field).
pub type F = Fr;

/// Number of full rounds.
pub const FULL_ROUNDS: usize = 8;
/// Number of partial rounds.
pub const PARTIAL_ROUNDS: usize = 57;
/// S-box exponent.
pub const ALPHA: u64 = 5;
/// Sponge rate (field elements absorbed per permutation).
pub const RATE: usize = 2;

/// The Poseidon parameters, derived once.
pub fn config() -> &'static PoseidonConfig<F> {
    static CONFIG: OnceLock<PoseidonConfig<F>> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let (ark, mds) =
            find_poseidon_ark_and_mds::<F>(254, RATE, FULL_ROUNDS as u64, PARTIAL_ROUNDS as u64, 0);
        PoseidonConfig::new(FULL_ROUNDS, PARTIAL_ROUNDS, ALPHA, mds, ark, RATE, 1)
    })
}

/// Width of the permutation: the rate and one capacity element.
const WIDTH: usize = RATE + 1;

/// The permutation's round constants and MDS matrix, as arrays.
struct Permutation {
    ark: Vec<[F; WIDTH]>,
    mds: [[F; WIDTH]; WIDTH],
}

fn permutation() -> &'static Permutation {
    static PERMUTATION: OnceLock<Permutation> = OnceLock::new();
    PERMUTATION.get_or_init(|| {
        let c = config();
        let row = |r: &Vec<F>| -> [F; WIDTH] { r.as_slice().try_into().expect("width 3") };
        Permutation {
            ark: c.ark.iter().map(row).collect(),
            mds: [row(&c.mds[0]), row(&c.mds[1]), row(&c.mds[2])],
        }
    })
}

impl Permutation {
    /// The Poseidon permutation, as arkworks' sponge runs it: half the
    /// full rounds, the partial rounds (S-box on the first element only),
    /// the other half of the full rounds; each round adds its constants,
    /// applies the S-box and mixes by the MDS matrix.
    fn permute(&self, state: &mut [F; WIDTH]) {
        let half = FULL_ROUNDS / 2;
        for (round, ark) in self.ark.iter().enumerate() {
            for (s, k) in state.iter_mut().zip(ark) {
                *s += k;
            }
            if round < half || round >= half + PARTIAL_ROUNDS {
                state.iter_mut().for_each(|s| *s = pow5(*s));
            } else {
                state[0] = pow5(state[0]);
            }
            let mixed = self
                .mds
                .map(|row| row[0] * state[0] + row[1] * state[1] + row[2] * state[2]);
            *state = mixed;
        }
    }
}

fn pow5(x: F) -> F {
    let x2 = x.square();
    x2.square() * x
}

/// Hashes field elements natively: the same duplex sponge as arkworks'
/// `PoseidonSponge` and the gadget (capacity element first; absorb `RATE`
/// elements at a time, permuting between them; permute and squeeze the
/// first rate element), without its per-hash allocations (2.5 times as
/// fast).
pub fn hash(inputs: &[F]) -> F {
    let permutation = permutation();
    let mut state = [F::zero(); WIDTH];
    for (i, chunk) in inputs.chunks(RATE).enumerate() {
        if i > 0 {
            permutation.permute(&mut state);
        }
        for (s, x) in state[1..].iter_mut().zip(chunk) {
            *s += x;
        }
    }
    permutation.permute(&mut state);
    state[1]
}

/// Hashes field elements in the circuit; agrees with [`hash`].
pub fn hash_var(
    cs: ConstraintSystemRef<F>,
    inputs: &[FpVar<F>],
) -> Result<FpVar<F>, SynthesisError> {
    let mut sponge = PoseidonSpongeVar::new(cs, config());
    sponge.absorb(&inputs)?;
    Ok(sponge.squeeze_field_elements(1)?.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_crypto_primitives::sponge::CryptographicSponge;
    use ark_crypto_primitives::sponge::poseidon::PoseidonSponge;
    use ark_r1cs_std::GR1CSVar;
    use ark_r1cs_std::alloc::AllocVar;
    use ark_relations::gr1cs::ConstraintSystem;
    use ark_std::UniformRand;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn native_and_gadget_agree() {
        let mut rng = StdRng::seed_from_u64(1);
        for n in [1usize, 2, 4, 5] {
            let inputs: Vec<F> = (0..n).map(|_| F::rand(&mut rng)).collect();
            let cs = ConstraintSystem::<F>::new_ref();
            let vars: Vec<FpVar<F>> = inputs
                .iter()
                .map(|x| FpVar::new_witness(cs.clone(), || Ok(*x)).unwrap())
                .collect();
            let out = hash_var(cs.clone(), &vars).unwrap();
            assert_eq!(out.value().unwrap(), hash(&inputs));
            assert!(cs.is_satisfied().unwrap());
        }
    }

    #[test]
    fn the_native_hash_is_arkworks_sponge() {
        let mut rng = StdRng::seed_from_u64(2);
        for n in 0..=7usize {
            let inputs: Vec<F> = (0..n).map(|_| F::rand(&mut rng)).collect();
            let mut sponge = PoseidonSponge::new(config());
            sponge.absorb(&inputs);
            let expected = sponge.squeeze_field_elements::<F>(1)[0];
            assert_eq!(hash(&inputs), expected, "{n} inputs");
        }
    }

    #[test]
    fn different_inputs_give_different_hashes() {
        let a = hash(&[F::from(1u64), F::from(2u64)]);
        let b = hash(&[F::from(2u64), F::from(1u64)]);
        let c = hash(&[F::from(1u64), F::from(2u64), F::from(0u64)]);
        assert_ne!(a, b);
        assert_ne!(a, c);
    }
}
