//! Proving, verification and batch verification.

use ark_bn254::{Bn254, Fr, G1Projective};
use ark_ec::pairing::Pairing;
use ark_ec::{CurveGroup, VariableBaseMSM};
use ark_ff::{One, UniformRand, Zero};
use ark_groth16::Groth16;
use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystem, OptimizationGoal, R1CS_PREDICATE_LABEL,
    SynthesisError, SynthesisMode,
};
use ark_relations::utils::matrix::Matrix;
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use rand::RngCore;
use rand::rngs::OsRng;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use protocol::ids::ContentHash;

use crate::circom::{CircomKey, CircomWitness};
use crate::circuit::{Circuit, CircuitConfig, TransferCircuit};
use crate::error::{Error, Result};
use crate::keys::{KeySetup, ProvingKey, VerifierKey, VerifyingKey};
use crate::witness::{ChunkWitness, PublicInputs, Root};

/// Size of a compressed proof.
pub const PROOF_BYTES: usize = 128;

/// A Groth16 proof over BN254.
#[derive(Clone, Debug, PartialEq)]
pub struct Proof(pub(crate) ark_groth16::Proof<Bn254>);

impl Proof {
    /// The 128-byte compressed form.
    pub fn to_bytes(&self) -> [u8; PROOF_BYTES] {
        let mut out = [0u8; PROOF_BYTES];
        self.0
            .serialize_compressed(&mut out[..])
            .expect("a BN254 Groth16 proof compresses to 128 bytes");
        out
    }

    /// Parses a compressed proof, checking every point is on its curve and
    /// in the right subgroup.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != PROOF_BYTES {
            return Err(Error::MalformedProof(format!(
                "{} bytes, expected {PROOF_BYTES}",
                bytes.len()
            )));
        }
        ark_groth16::Proof::<Bn254>::deserialize_compressed(bytes)
            .map(Self)
            .map_err(|e| Error::MalformedProof(e.to_string()))
    }
}

/// Proves the job whose witness bytes are `witness_bytes`. The witness is
/// checked natively first, so a witness that breaks a rule gets
/// [`Error::Unsatisfied`] naming the transfer and rule instead of a useless
/// proof. Runs on the current rayon pool (see [`ThreadPool`]).
pub fn prove(pk: &ProvingKey, witness_bytes: &[u8]) -> Result<Proof> {
    prove_with_public(pk, witness_bytes).map(|(proof, _)| proof)
}

/// [`prove`], also returning the public inputs the proof is for.
pub fn prove_with_public(pk: &ProvingKey, witness_bytes: &[u8]) -> Result<(Proof, PublicInputs)> {
    let witness = ChunkWitness::from_bytes(witness_bytes)?;
    let witness_circuit = Circuit::Transfer(witness.config);
    if witness_circuit != pk.circuit {
        return Err(Error::WrongCircuit {
            key: pk.circuit.id(),
            witness: witness_circuit.id(),
        });
    }
    let public = witness.execute()?;
    let circuit = TransferCircuit::with_witness(&witness, &public)?;
    let shape = R1csShape::of(witness.config)?;
    let assignment = assignment_of(circuit)?;
    if assignment.len() != shape.num_variables {
        return Err(SynthesisError::Unsatisfiable.into());
    }
    let (r, s) = (Fr::rand(&mut OsRng), Fr::rand(&mut OsRng));
    let proof = Groth16::<Bn254>::create_proof_with_reduction_and_matrices(
        &pk.inner,
        r,
        s,
        &shape.matrices,
        shape.num_inputs,
        shape.num_constraints,
        &assignment,
    )?;
    Ok((Proof(proof), public))
}

/// A transfer circuit's R1CS matrices (A, B, C), the same for every job of
/// one shape: built once per [`CircuitConfig`] and kept, so a proof
/// synthesizes only the witness's values. (arkworks's own prover rebuilds
/// every linear combination and matrix for each proof, which was most of a
/// proof's memory and much of its time.)
struct R1csShape {
    matrices: Vec<Matrix<Fr>>,
    num_inputs: usize,
    num_constraints: usize,
    num_variables: usize,
}

impl R1csShape {
    /// The shape of `config`'s circuit, built on first use (as the setup
    /// builds it: blank, constraints inlined).
    fn of(config: CircuitConfig) -> Result<Arc<Self>> {
        static SHAPES: OnceLock<Mutex<HashMap<CircuitConfig, Arc<R1csShape>>>> = OnceLock::new();
        // Held while building: workers starting together build it once,
        // not once each (the build is the prover's peak of memory).
        let mut shapes = SHAPES
            .get_or_init(Default::default)
            .lock()
            .expect("unpoisoned");
        if let Some(shape) = shapes.get(&config) {
            return Ok(shape.clone());
        }
        let cs = ConstraintSystem::<Fr>::new_ref();
        cs.set_optimization_goal(OptimizationGoal::Constraints);
        cs.set_mode(SynthesisMode::Setup);
        TransferCircuit::blank(config).generate_constraints(cs.clone())?;
        cs.finalize();
        let matrices = cs
            .to_matrices()?
            .remove(R1CS_PREDICATE_LABEL)
            .ok_or(SynthesisError::Unsatisfiable)?;
        let shape = Arc::new(Self {
            matrices,
            num_inputs: cs.num_instance_variables(),
            num_constraints: cs.num_constraints(),
            num_variables: cs.num_instance_variables() + cs.num_witness_variables(),
        });
        shapes.insert(config, shape.clone());
        Ok(shape)
    }
}

/// The full assignment (instance, then witness) of `circuit`, synthesized
/// without building its linear combinations or matrices.
fn assignment_of(circuit: TransferCircuit) -> Result<Vec<Fr>> {
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_optimization_goal(OptimizationGoal::Constraints);
    cs.set_mode(SynthesisMode::Prove {
        construct_matrices: false,
        generate_lc_assignments: false,
    });
    circuit.generate_constraints(cs.clone())?;
    Ok([cs.instance_assignment()?, cs.witness_assignment()?].concat())
}

/// A proof's public inputs, as field elements in the circuit's order.
pub trait Statement {
    /// The field elements the verifier uses.
    fn field_elements(&self) -> Result<Vec<Fr>>;
}

impl Statement for PublicInputs {
    fn field_elements(&self) -> Result<Vec<Fr>> {
        self.to_field_elements()
    }
}

impl Statement for [Fr] {
    fn field_elements(&self) -> Result<Vec<Fr>> {
        Ok(self.to_vec())
    }
}

/// A job's public inputs, whichever circuit it is for; what a distributor
/// stores with each job and judges its proofs against.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PublicSignals {
    /// The transfer circuit's four inputs.
    Transfer(PublicInputs),
    /// A circom circuit's public signals, each a canonical field element
    /// (32 bytes, big-endian as [`Root`]).
    Circom(Vec<Root>),
}

impl PublicSignals {
    /// A circom witness's public signals.
    pub fn circom(signals: &[Fr]) -> Self {
        Self::Circom(signals.iter().map(Root::from_field).collect())
    }

    /// The transfer inputs, for a transfer job.
    pub fn transfer(&self) -> Option<&PublicInputs> {
        match self {
            Self::Transfer(p) => Some(p),
            Self::Circom(_) => None,
        }
    }
}

impl From<PublicInputs> for PublicSignals {
    fn from(p: PublicInputs) -> Self {
        Self::Transfer(p)
    }
}

impl Statement for PublicSignals {
    fn field_elements(&self) -> Result<Vec<Fr>> {
        match self {
            Self::Transfer(p) => p.to_field_elements(),
            Self::Circom(signals) => signals
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    s.to_field().ok_or_else(|| {
                        Error::MalformedPublicInputs(format!(
                            "public signal {i} is not a canonical field element"
                        ))
                    })
                })
                .collect(),
        }
    }
}

/// The proving key of any circuit: what a prover holds for the jobs it was
/// handed, and proves each job's witness bytes with.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per prover, held behind an Arc
pub enum AnyProvingKey {
    /// A transfer circuit's CrowdProve key file.
    Transfer(ProvingKey),
    /// A circom circuit's snarkjs zkey (shared: a distributor's intake
    /// checks witnesses against it too).
    Circom(Arc<CircomKey>),
}

impl AnyProvingKey {
    /// Parses the key bytes of `circuit`, checked against `expected` (its
    /// content hash) when given.
    pub fn from_bytes(
        circuit: Circuit,
        bytes: &[u8],
        expected: Option<ContentHash>,
    ) -> Result<Self> {
        let key = match (circuit, expected) {
            (Circuit::Transfer(_), _) => Self::Transfer(ProvingKey::from_bytes(bytes, expected)?),
            (Circuit::Circom(_), Some(hash)) => {
                Self::Circom(Arc::new(CircomKey::from_bytes_named(bytes, hash)?))
            }
            (Circuit::Circom(_), None) => Self::Circom(Arc::new(CircomKey::from_bytes(bytes)?)),
        };
        if key.circuit() != circuit {
            return Err(Error::KeyBytes(format!(
                "the key is for circuit {}, not {}",
                key.circuit().id(),
                circuit.id()
            )));
        }
        Ok(key)
    }

    /// Reads a key file of `circuit`; errors name the file.
    pub fn load(
        circuit: Circuit,
        path: impl AsRef<Path>,
        expected: Option<ContentHash>,
    ) -> Result<Self> {
        let path = path.as_ref();
        if let Circuit::Transfer(_) = circuit {
            let id = circuit.id();
            return ProvingKey::load_for(path, &id, expected).map(Self::Transfer);
        }
        let bytes = crate::circom::read_capped(path, crate::circom::MAX_ZKEY_BYTES)?;
        Self::from_bytes(circuit, &bytes, expected).map_err(|e| Error::CircomFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// The circuit the key proves.
    pub fn circuit(&self) -> Circuit {
        match self {
            Self::Transfer(k) => k.circuit(),
            Self::Circom(k) => k.circuit(),
        }
    }

    /// The key's content hash.
    pub fn hash(&self) -> ContentHash {
        match self {
            Self::Transfer(k) => k.hash(),
            Self::Circom(k) => k.hash(),
        }
    }

    /// Where the setup's randomness came from.
    pub fn setup(&self) -> KeySetup {
        match self {
            Self::Transfer(k) => k.setup(),
            Self::Circom(_) => KeySetup::Snarkjs,
        }
    }

    /// Proves one job from its witness bytes (a transfer chunk, or a circom
    /// `.wtns` file). Either way the witness is checked first: an
    /// unsatisfied one is an error, never a proof that will not verify.
    pub fn prove(&self, witness_bytes: &[u8]) -> Result<Proof> {
        match self {
            Self::Transfer(k) => prove(k, witness_bytes),
            Self::Circom(k) => k.prove(&CircomWitness::from_bytes(witness_bytes, k.num_public())?),
        }
    }

    /// Checks that `vk` judges the proofs this key makes.
    pub fn check_pairs_with(&self, vk: &VerifyingKey) -> Result<()> {
        match self {
            Self::Transfer(k) => k.check_pairs_with(vk),
            Self::Circom(k) => k.check_pairs_with(vk),
        }
    }
}

fn inputs_for(circuit: Circuit, public: &dyn Statement) -> Result<Vec<Fr>> {
    let inputs = public.field_elements()?;
    if inputs.len() != circuit.num_public_inputs() {
        return Err(Error::MalformedPublicInputs(format!(
            "{} inputs, circuit {} takes {}",
            inputs.len(),
            circuit.id(),
            circuit.num_public_inputs()
        )));
    }
    Ok(inputs)
}

/// Verifies one proof. [`Error::InvalidProof`] means the proof is well formed
/// but false; other errors mean malformed input.
///
/// The verifiers take `&dyn` keys so their pairing code is compiled here,
/// once, at this crate's optimization level: generic, they would be
/// instantiated in each caller (an unoptimized node build verified 15× slower).
pub fn verify(vk: &dyn VerifierKey, public: &dyn Statement, proof: &Proof) -> Result<()> {
    let inputs = inputs_for(vk.circuit(), public)?;
    verify_fields(vk, &inputs, proof)
}

fn verify_fields(vk: &dyn VerifierKey, inputs: &[Fr], proof: &Proof) -> Result<()> {
    let pvk = vk.prepared();
    match Groth16::<Bn254>::verify_proof(&pvk, &proof.0, inputs) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::InvalidProof),
        Err(e) => Err(Error::MalformedPublicInputs(e.to_string())),
    }
}

/// Verifies many proofs with one multi-pairing.
///
/// With random 128-bit `r_i`, checks
/// `∏ e(r_i·A_i, B_i) · e(Σ r_i·IC_i, -γ) · e(Σ r_i·C_i, -δ) · e(-(Σ r_i)·α, β) = 1`:
/// n + 3 Miller loops and one final exponentiation instead of 3n and n. A
/// batch holding any invalid proof passes with probability at most 2^-128.
/// An empty batch verifies.
pub fn batch_verify<S: Statement>(
    vk: &dyn VerifierKey,
    items: &[(S, Proof)],
    rng: &mut dyn RngCore,
) -> Result<()> {
    let items = fields_of(vk, items)?;
    batch_verify_fields(vk, &items, rng)
}

/// Each item's inputs as field elements, checked against the key's circuit.
fn fields_of<'a, S: Statement>(
    vk: &dyn VerifierKey,
    items: &'a [(S, Proof)],
) -> Result<Vec<(Vec<Fr>, &'a Proof)>> {
    items
        .iter()
        .map(|(public, proof)| Ok((inputs_for(vk.circuit(), public)?, proof)))
        .collect()
}

fn batch_verify_fields(
    vk: &dyn VerifierKey,
    items: &[(Vec<Fr>, &Proof)],
    rng: &mut dyn RngCore,
) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let pvk = vk.prepared();
    let n_inputs = vk.circuit().num_public_inputs();
    let mut r_sum = Fr::zero();
    // Σ r_i·IC_i = (Σ r_i)·γ_0 + Σ_j (Σ_i r_i·x_ij)·γ_j: one small MSM.
    let mut ic_scalars = vec![Fr::zero(); n_inputs + 1];
    let mut c_points = Vec::with_capacity(items.len());
    let mut rs = Vec::with_capacity(items.len());
    let mut g1 = Vec::with_capacity(items.len() + 3);
    let mut g2 = Vec::with_capacity(items.len() + 3);
    for (inputs, proof) in items {
        let mut r = Fr::zero();
        while r.is_zero() {
            r = Fr::from(((rng.next_u64() as u128) << 64) | rng.next_u64() as u128);
        }
        r_sum += r;
        ic_scalars[0] += r;
        for (s, x) in ic_scalars[1..].iter_mut().zip(inputs) {
            *s += r * x;
        }
        c_points.push(proof.0.c);
        rs.push(r);
        g1.push((proof.0.a * r).into_affine());
        g2.push(proof.0.b);
    }
    let ic = G1Projective::msm(&pvk.vk.gamma_abc_g1, &ic_scalars)
        .map_err(|_| Error::Synthesis("verifying key has the wrong number of inputs".into()))?;
    let c = G1Projective::msm(&c_points, &rs).expect("same lengths");
    let alpha = (pvk.vk.alpha_g1 * -r_sum).into_affine();
    let mut g1p: Vec<<Bn254 as Pairing>::G1Prepared> = g1.iter().map(|p| (*p).into()).collect();
    let mut g2p: Vec<<Bn254 as Pairing>::G2Prepared> = g2.iter().map(|p| (*p).into()).collect();
    g1p.push(ic.into_affine().into());
    g2p.push(pvk.gamma_g2_neg_pc.clone());
    g1p.push(c.into_affine().into());
    g2p.push(pvk.delta_g2_neg_pc.clone());
    g1p.push(alpha.into());
    g2p.push(pvk.vk.beta_g2.into());
    let ml = Bn254::multi_miller_loop(g1p, g2p);
    match Bn254::final_exponentiation(ml) {
        Some(out) if out.0.is_one() => Ok(()),
        _ => Err(Error::InvalidBatch(items.len())),
    }
}

/// Judges each proof on its own while paying for a batch: the items are
/// checked with [`batch_verify`]; a failing batch is split in halves and each
/// half checked again, down to single proofs. `k` bad proofs among `n` cost
/// about `2k·log2(n/k)` extra batch checks, so one bad proof costs its sender
/// a few multi-pairings and everyone else nothing. Returns one verdict per
/// item, in order: `true` for a valid proof.
pub fn verify_each<S: Statement>(
    vk: &dyn VerifierKey,
    items: &[(S, Proof)],
    rng: &mut dyn RngCore,
) -> Vec<bool> {
    let mut verdicts = vec![false; items.len()];
    // Items whose inputs do not fit the circuit are invalid on their own.
    let mut fitting = Vec::with_capacity(items.len());
    let mut index = Vec::with_capacity(items.len());
    for (i, (public, proof)) in items.iter().enumerate() {
        if let Ok(inputs) = inputs_for(vk.circuit(), public) {
            fitting.push((inputs, proof));
            index.push(i);
        }
    }
    let mut fit_verdicts = vec![false; fitting.len()];
    bisect(vk, &fitting, &mut fit_verdicts, rng);
    for (i, v) in index.into_iter().zip(fit_verdicts) {
        verdicts[i] = v;
    }
    verdicts
}

fn bisect(
    vk: &dyn VerifierKey,
    items: &[(Vec<Fr>, &Proof)],
    verdicts: &mut [bool],
    rng: &mut dyn RngCore,
) {
    match items.len() {
        0 => {}
        1 => verdicts[0] = verify_fields(vk, &items[0].0, items[0].1).is_ok(),
        n => {
            if batch_verify_fields(vk, items, rng).is_ok() {
                verdicts.fill(true);
                return;
            }
            let (left, right) = items.split_at(n / 2);
            let (left_v, right_v) = verdicts.split_at_mut(n / 2);
            bisect(vk, left, left_v, rng);
            bisect(vk, right, right_v, rng);
        }
    }
}

/// Checks a whole batch: the chunks' roots chain from `old_root` to
/// `new_root`, then all chunk proofs batch-verify.
pub fn verify_batch_proof(
    vk: &dyn VerifierKey,
    old_root: Root,
    new_root: Root,
    chunks: &[(PublicInputs, Proof)],
    rng: &mut dyn RngCore,
) -> Result<()> {
    let broken = |index: usize, expected: &Root, found: &Root| Error::BrokenRootChain {
        index,
        expected: expected.to_string(),
        found: found.to_string(),
    };
    let mut expected = old_root;
    for (i, (p, _)) in chunks.iter().enumerate() {
        if p.old_root != expected {
            return Err(broken(i, &expected, &p.old_root));
        }
        expected = p.new_root;
    }
    if expected != new_root {
        return Err(broken(chunks.len(), &new_root, &expected));
    }
    batch_verify(vk, chunks, rng)
}

/// A fixed-size pool for proving; arkworks' parallel code runs on the pool
/// that [`ThreadPool::install`] enters. Without one, proving uses rayon's
/// global pool (all cores).
#[derive(Debug)]
pub struct ThreadPool(rayon::ThreadPool);

impl ThreadPool {
    /// A pool of `threads` threads (at least 1).
    pub fn new(threads: usize) -> Result<Self> {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("prover-{i}"))
            .build()
            .map(Self)
            .map_err(|e| Error::ThreadPool(e.to_string()))
    }

    /// Runs `f` (e.g. a call to [`prove`]) on this pool.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.0.install(f)
    }

    /// The pool's thread count.
    pub fn threads(&self) -> usize {
        self.0.current_num_threads()
    }
}
