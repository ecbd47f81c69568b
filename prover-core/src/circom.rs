//! circom circuits: a snarkjs `.zkey` is the proving key (and holds the
//! verification key), a `.wtns` file is one job's witness, and proofs are made
//! with the QAP reduction snarkjs uses, so snarkjs and its Solidity verifier
//! accept them.
//!
//! Every zkey and wtns is treated as hostile: its size is capped, its layout
//! (section table, field primes, counts, every section's length, every
//! coefficient's indices) is checked against itself before any part of it is
//! decoded, so the decoder never indexes or allocates from an unchecked
//! length; points are checked to be on their curves and in their subgroups.
//! Every failure is an error naming the reason.

pub mod setup;

use std::path::Path;

use ark_bn254::{Bn254, Fq, Fr};
use ark_ff::{BigInteger, One, PrimeField, Zero};
use ark_groth16::Groth16;
use ark_groth16::r1cs_to_qap::{R1CSToQAP, evaluate_constraint};
use ark_poly::EvaluationDomain;
use ark_relations::gr1cs::{ConstraintSystemRef, SynthesisError};
use ark_relations::utils::matrix::Matrix;
use protocol::ids::ContentHash;
use rand::RngCore;
use rand::rngs::OsRng;
use taceo_circom_types::CheckElement;
use taceo_circom_types::groth16::Zkey;

use crate::circuit::{CircomCircuit, Circuit};
use crate::error::{Error, Result};
use crate::keys::{KeySetup, VerifyingKey};
use crate::prove::Proof;

/// Largest zkey accepted: about 2^22 constraints' worth.
pub const MAX_ZKEY_BYTES: u64 = 2 << 30;
/// Largest witness accepted: 2^24 values.
pub const MAX_WITNESS_BYTES: u64 = (32 << 24) + 64;

const G1_BYTES: u64 = 64;
const G2_BYTES: u64 = 128;
const FIELD_BYTES: usize = 32;
/// A zkey's sections: 1 header, 2 Groth16 header, 3 IC, 4 coefficients,
/// 5 A, 6 B in G1, 7 B in G2, 8 C (the L query), 9 H, 10 contributions.
const ZKEY_SECTIONS: u32 = 10;
/// The Groth16 header: two field sizes and primes, n_vars, n_public,
/// domain size, α₁ β₁ β₂ γ₂ δ₁ δ₂.
const GROTH16_HEADER_BYTES: u64 = 4 + 32 + 4 + 32 + 12 + 3 * G1_BYTES + 3 * G2_BYTES;
/// Coefficient: matrix, constraint, signal (u32 each), value.
const COEFFICIENT_BYTES: u64 = 12 + FIELD_BYTES as u64;

/// A circom circuit's proving key, read from a snarkjs zkey.
pub struct CircomKey {
    pk: ark_groth16::ProvingKey<Bn254>,
    pvk: ark_groth16::PreparedVerifyingKey<Bn254>,
    /// The A and B matrices (a zkey holds no C).
    matrices: [Matrix<Fr>; 2],
    num_constraints: usize,
    num_public: usize,
    num_vars: usize,
    hash: ContentHash,
    circuit: Circuit,
}

impl std::fmt::Debug for CircomKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CircomKey({} constraints, {} public, {})",
            self.num_constraints,
            self.num_public,
            self.hash.short()
        )
    }
}

/// The checked shape of a zkey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    num_vars: usize,
    num_public: usize,
    domain_size: usize,
    num_constraints: usize,
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// Whether `bytes` (little-endian) is below the field's modulus.
fn below_modulus<F: PrimeField>(bytes: &[u8]) -> bool {
    let modulus = F::MODULUS.to_bytes_le();
    bytes.iter().rev().cmp(modulus.iter().rev()) == std::cmp::Ordering::Less
}

/// The section table of a snarkjs binary file (`magic`, version, sections):
/// each id in 1..=`max_id` once, every length inside the file, nothing
/// after the last. Returns each section's byte range by id (index id-1).
type SectionTable = Vec<Option<std::ops::Range<usize>>>;

fn sections(
    bytes: &[u8],
    magic: &[u8; 4],
    versions: &[u32],
    max_id: u32,
) -> std::result::Result<SectionTable, String> {
    let (table, end) = leading_sections(bytes, magic, versions, max_id)?;
    if end != bytes.len() {
        return Err(format!(
            "{} bytes after the last section",
            bytes.len() - end
        ));
    }
    Ok(table)
}

/// The section table of the file `bytes` starts with, and where that file
/// ends.
fn leading_sections(
    bytes: &[u8],
    magic: &[u8; 4],
    versions: &[u32],
    max_id: u32,
) -> std::result::Result<(SectionTable, usize), String> {
    if bytes.get(..4) != Some(&magic[..]) {
        return Err(format!(
            "not a {} file (bad magic)",
            String::from_utf8_lossy(magic)
        ));
    }
    let version = u32_at(bytes, 4).ok_or("truncated header")?;
    if !versions.contains(&version) {
        return Err(format!(
            "format version {version} (this build reads {versions:?})"
        ));
    }
    let count = u32_at(bytes, 8).ok_or("truncated header")?;
    if count > max_id {
        return Err(format!("{count} sections (at most {max_id})"));
    }
    let mut table = vec![None; max_id as usize];
    let mut at = 12usize;
    for _ in 0..count {
        let id = u32_at(bytes, at).ok_or("truncated section table")?;
        let len = u64_at(bytes, at + 4).ok_or("truncated section table")?;
        at += 12;
        if id == 0 || id > max_id {
            return Err(format!("unknown section {id}"));
        }
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| at.checked_add(len))
            .filter(|end| *end <= bytes.len())
            .ok_or_else(|| format!("section {id} runs past the end of the file"))?;
        let slot = &mut table[id as usize - 1];
        if slot.is_some() {
            return Err(format!("section {id} appears twice"));
        }
        *slot = Some(at..end);
        at = end;
    }
    Ok((table, at))
}

/// Splits concatenated `.wtns` files (how a batch of witnesses travels to
/// `POST /batch/witnesses`) into one slice per file, walking each file's
/// section table; each is then read with [`CircomWitness::from_bytes`].
pub fn split_witness_files(bytes: &[u8]) -> Result<Vec<&[u8]>> {
    let mut files = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (_, end) = leading_sections(rest, b"wtns", &[2], 2)
            .map_err(|reason| Error::Wtns(format!("witness {}: {reason}", files.len())))?;
        let (file, tail) = rest.split_at(end);
        files.push(file);
        rest = tail;
    }
    Ok(files)
}

/// A zkey's section table over its bytes.
struct ZkeySections<'a> {
    bytes: &'a [u8],
    table: SectionTable,
}

impl<'a> ZkeySections<'a> {
    /// Section `id`'s bytes; an error if the zkey lacks it.
    fn get(&self, id: u32) -> std::result::Result<&'a [u8], String> {
        let range = self.table[id as usize - 1]
            .clone()
            .ok_or_else(|| format!("section {id} is missing"))?;
        Ok(&self.bytes[range])
    }

    /// Checks that section `id` (`what`) holds exactly `count` points of
    /// `each` bytes.
    fn expect(
        &self,
        id: u32,
        what: &str,
        count: usize,
        each: u64,
    ) -> std::result::Result<(), String> {
        let len = self.get(id)?.len() as u64;
        if len != count as u64 * each {
            return Err(format!(
                "section {id} ({what}) is {len} bytes; {count} points need {}",
                count as u64 * each
            ));
        }
        Ok(())
    }
}

/// Checks a zkey's layout against itself; see the module doc.
fn check_zkey(bytes: &[u8]) -> std::result::Result<Shape, String> {
    let zkey = ZkeySections {
        bytes,
        table: sections(bytes, b"zkey", &[1], ZKEY_SECTIONS)?,
    };
    if zkey.get(1)? != 1u32.to_le_bytes() {
        return Err("not a Groth16 zkey (header section 1 names another protocol)".into());
    }
    let h = zkey.get(2)?;
    let (num_vars, num_public, domain_size) = check_groth16_header(h)?;
    check_points(&zkey, h, num_vars, num_public, domain_size)?;
    let last_constraint = check_coefficients(zkey.get(4)?, num_vars, domain_size)?;
    // snarkjs appends one constraint per public input (and the constant)
    // after the circuit's own: the last index is constraints + public.
    let num_constraints = last_constraint
        .and_then(|last| last.checked_sub(num_public))
        .ok_or("the coefficients lack the public inputs' constraints")?;
    if num_constraints + num_public + 1 > domain_size {
        return Err(format!(
            "{num_constraints} constraints and {num_public} public inputs do not fit domain size {domain_size}"
        ));
    }
    Ok(Shape {
        num_vars,
        num_public,
        domain_size,
        num_constraints,
    })
}

/// Checks the Groth16 header section `h`: its length, the BN254 field
/// primes, and counts that fit each other. Returns the number of
/// variables, of public inputs, and the domain size.
fn check_groth16_header(h: &[u8]) -> std::result::Result<(usize, usize, usize), String> {
    if h.len() as u64 != GROTH16_HEADER_BYTES {
        return Err(format!(
            "Groth16 header is {} bytes, expected {GROTH16_HEADER_BYTES}",
            h.len()
        ));
    }
    let q = Fq::MODULUS.to_bytes_le();
    let r = Fr::MODULUS.to_bytes_le();
    if u32_at(h, 0) != Some(32)
        || h[4..36] != q[..]
        || u32_at(h, 36) != Some(32)
        || h[40..72] != r[..]
    {
        return Err("not a BN254 (bn128) zkey: its field primes differ".into());
    }
    let num_vars = u32_at(h, 72).expect("in the header") as usize;
    let num_public = u32_at(h, 76).expect("in the header") as usize;
    let domain_size = u32_at(h, 80).expect("in the header") as usize;
    if num_vars <= num_public {
        return Err(format!(
            "{num_vars} variables cannot hold {num_public} public inputs and the constant 1"
        ));
    }
    if !domain_size.is_power_of_two() || domain_size > 1 << 28 {
        return Err(format!(
            "domain size {domain_size} is not a power of two up to 2^28"
        ));
    }
    Ok((num_vars, num_public, domain_size))
}

/// Checks the point sections' lengths against the header's counts, and that
/// every point coordinate (the header `h`'s six points and sections 3 and
/// 5–9) is a base-field element, as the decoder asserts.
fn check_points(
    zkey: &ZkeySections<'_>,
    h: &[u8],
    num_vars: usize,
    num_public: usize,
    domain_size: usize,
) -> std::result::Result<(), String> {
    zkey.expect(3, "IC", num_public + 1, G1_BYTES)?;
    zkey.expect(5, "A", num_vars, G1_BYTES)?;
    zkey.expect(6, "B in G1", num_vars, G1_BYTES)?;
    zkey.expect(7, "B in G2", num_vars, G2_BYTES)?;
    zkey.expect(8, "C", num_vars - num_public - 1, G1_BYTES)?;
    zkey.expect(9, "H", domain_size, G1_BYTES)?;
    let points = [3, 5, 6, 7, 8, 9]
        .into_iter()
        .map(|id| zkey.get(id))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    for coordinates in std::iter::once(&h[84..]).chain(points) {
        if !coordinates
            .chunks_exact(FIELD_BYTES)
            .all(below_modulus::<Fq>)
        {
            return Err("a point coordinate is not a field element".into());
        }
    }
    Ok(())
}

/// Checks the coefficient section: its length against its count, and every
/// coefficient's matrix, constraint and signal indices and value. Returns
/// the highest constraint index used.
fn check_coefficients(
    coefficients: &[u8],
    num_vars: usize,
    domain_size: usize,
) -> std::result::Result<Option<usize>, String> {
    let count = u32_at(coefficients, 0).ok_or("coefficient section is empty")? as u64;
    if coefficients.len() as u64 != 4 + count * COEFFICIENT_BYTES {
        return Err(format!(
            "coefficient section is {} bytes; {count} coefficients need {}",
            coefficients.len(),
            4 + count * COEFFICIENT_BYTES
        ));
    }
    let mut last_constraint = None;
    for c in coefficients[4..].chunks_exact(COEFFICIENT_BYTES as usize) {
        let (matrix, constraint, signal) = (
            u32_at(c, 0).expect("12 bytes"),
            u32_at(c, 4).expect("12 bytes") as usize,
            u32_at(c, 8).expect("12 bytes") as usize,
        );
        if matrix > 1 || constraint >= domain_size || signal >= num_vars {
            return Err(format!(
                "coefficient (matrix {matrix}, constraint {constraint}, signal {signal}) is \
                 outside {domain_size} constraints of {num_vars} signals"
            ));
        }
        if !below_modulus::<Fr>(&c[12..]) {
            return Err("a coefficient is not a field element".into());
        }
        last_constraint = last_constraint.max(Some(constraint));
    }
    Ok(last_constraint)
}

impl CircomKey {
    /// Reads a snarkjs Groth16 zkey for BN254. Takes seconds for large keys
    /// (every point is checked).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::decode(bytes, CheckElement::Yes)
    }

    /// Reads zkey bytes fetched by content hash: when they match `expected`
    /// (a key the distributor checked when it was registered), the points'
    /// curve and subgroup checks are skipped, which is most of the time a
    /// large key takes to load. The layout is checked either way.
    pub fn from_bytes_named(bytes: &[u8], expected: ContentHash) -> Result<Self> {
        let got = ContentHash::of(bytes);
        if got != expected {
            return Err(Error::Zkey(format!(
                "content hash is {}, expected {}",
                got.to_hex(),
                expected.to_hex()
            )));
        }
        Self::decode(bytes, CheckElement::No)
    }

    fn decode(bytes: &[u8], check: CheckElement) -> Result<Self> {
        let bad = |reason: String| Error::Zkey(reason);
        if bytes.len() as u64 > MAX_ZKEY_BYTES {
            return Err(bad(format!(
                "{} bytes (at most {MAX_ZKEY_BYTES})",
                bytes.len()
            )));
        }
        let shape = check_zkey(bytes).map_err(bad)?;
        let hash = ContentHash::of(bytes);
        let circuit = Circuit::Circom(
            CircomCircuit::new(&hash, shape.num_public).map_err(|e| bad(e.to_string()))?,
        );
        let zkey = Zkey::<Bn254>::from_reader(bytes, check)
            .map_err(|e| bad(format!("cannot decode: {e}")))?;
        debug_assert_eq!(zkey.num_constraints, shape.num_constraints);
        let vk = ark_groth16::VerifyingKey {
            alpha_g1: zkey.alpha_g1,
            beta_g2: zkey.beta_g2,
            gamma_g2: zkey.gamma_g2,
            delta_g2: zkey.delta_g2,
            gamma_abc_g1: zkey.ic,
        };
        let pvk = ark_groth16::prepare_verifying_key(&vk);
        let pk = ark_groth16::ProvingKey {
            vk,
            beta_g1: zkey.beta_g1,
            delta_g1: zkey.delta_g1,
            a_query: zkey.a_query,
            b_g1_query: zkey.b_g1_query,
            b_g2_query: zkey.b_g2_query,
            h_query: zkey.h_query,
            l_query: zkey.l_query,
        };
        Ok(Self {
            pk,
            pvk,
            matrices: [zkey.a_matrix, zkey.b_matrix],
            num_constraints: shape.num_constraints,
            num_public: shape.num_public,
            num_vars: shape.num_vars,
            hash,
            circuit,
        })
    }

    /// Reads a zkey file; errors name the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = read_capped(path, MAX_ZKEY_BYTES)?;
        Self::from_bytes(&bytes).map_err(|e| Error::CircomFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// SHA-256 of the zkey file: how the network names the key.
    pub fn hash(&self) -> ContentHash {
        self.hash
    }

    /// The circuit's own constraints (without snarkjs's input constraints).
    pub fn num_constraints(&self) -> usize {
        self.num_constraints
    }

    /// Public signals (outputs first, then public inputs, as circom orders them).
    pub fn num_public(&self) -> usize {
        self.num_public
    }

    /// Signals in a full witness, the constant 1 included.
    pub fn num_vars(&self) -> usize {
        self.num_vars
    }

    /// The verification key inside the zkey.
    pub fn verifying_key(&self) -> &ark_groth16::VerifyingKey<Bn254> {
        &self.pk.vk
    }

    /// The circuit this zkey defines, named by its hash.
    pub fn circuit(&self) -> Circuit {
        self.circuit
    }

    /// The zkey's verification key as a CrowdProve verifying key (setup
    /// [`KeySetup::Snarkjs`]), to save and verify with.
    pub fn to_verifying_key(&self) -> VerifyingKey {
        VerifyingKey::new(self.circuit, KeySetup::Snarkjs, self.pk.vk.clone())
    }

    /// Checks that `vk` is this zkey's verification key.
    pub fn check_pairs_with(&self, vk: &VerifyingKey) -> Result<()> {
        let fail = |why: String| Err(Error::KeyMismatch(why));
        if vk.circuit != self.circuit {
            return fail(format!(
                "the zkey is circuit {}, the verifying key is for {}",
                self.circuit.id(),
                vk.circuit.id()
            ));
        }
        // The setup is what the verifying key records: a zkey does not say
        // (a snarkjs ceremony, or `crowdprove setup --r1cs`'s own).
        if vk.inner != self.pk.vk {
            return fail("the verifying key is not the zkey's".into());
        }
        Ok(())
    }

    /// Proves `witness` and checks the proof before returning it: a
    /// witness that does not satisfy the circuit gives
    /// [`Error::CircomUnsatisfied`], never a proof that will not verify.
    /// Runs on the current rayon pool.
    pub fn prove(&self, witness: &CircomWitness) -> Result<Proof> {
        self.check_witness(witness)?;
        let (r, s) = (random_scalar(), random_scalar());
        let proof = Groth16::<Bn254, CircomReduction>::create_proof_with_reduction_and_matrices(
            &self.pk,
            r,
            s,
            &self.matrices,
            self.num_public + 1,
            self.num_constraints,
            &witness.values,
        )?;
        let proof = Proof(proof);
        match self.verify(witness.public(), &proof) {
            Ok(()) => Ok(proof),
            Err(Error::InvalidProof) => Err(Error::CircomUnsatisfied),
            Err(e) => Err(e),
        }
    }

    /// Verifies a proof against public signals.
    pub fn verify(&self, public: &[Fr], proof: &Proof) -> Result<()> {
        if public.len() != self.num_public {
            return Err(Error::MalformedPublicInputs(format!(
                "{} public signals, the circuit has {}",
                public.len(),
                self.num_public
            )));
        }
        match Groth16::<Bn254>::verify_proof(&self.pvk, &proof.0, public) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::InvalidProof),
            Err(e) => Err(Error::MalformedPublicInputs(e.to_string())),
        }
    }

    /// Checks a witness fits this circuit (its length; its field was checked
    /// when it was read).
    pub fn check_witness(&self, witness: &CircomWitness) -> Result<()> {
        if witness.values.len() != self.num_vars {
            return Err(Error::Wtns(format!(
                "{} values, the circuit takes {} (a witness for another circuit?)",
                witness.values.len(),
                self.num_vars
            )));
        }
        Ok(())
    }
}

fn random_scalar() -> Fr {
    let mut bytes = [0u8; 64];
    OsRng.fill_bytes(&mut bytes);
    Fr::from_le_bytes_mod_order(&bytes)
}

pub(crate) fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > cap {
        return Err(Error::CircomFile {
            path: path.to_path_buf(),
            reason: format!("{len} bytes (at most {cap})"),
        });
    }
    std::fs::read(path).map_err(io)
}

/// Largest `.r1cs` accepted, as large as the largest zkey.
pub const MAX_R1CS_BYTES: u64 = MAX_ZKEY_BYTES;

/// A linear combination: (wire, coefficient) pairs.
type Combination = Vec<(usize, Fr)>;

/// A circom circuit's constraints, read from its `.r1cs` file: what a
/// distributor checks each submitted witness against, so a witness that
/// does not satisfy the circuit is refused at intake instead of reaching
/// provers, none of whom could prove it. (A zkey holds only the A and B
/// matrices; satisfaction needs C as well.)
pub struct CircomR1cs {
    /// Each constraint's A, B and C: `(A·w)(B·w) = C·w`.
    constraints: Vec<[Combination; 3]>,
    num_wires: usize,
    num_public: usize,
    hash: ContentHash,
}

impl std::fmt::Debug for CircomR1cs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CircomR1cs({} constraints, {} wires, {})",
            self.constraints.len(),
            self.num_wires,
            self.hash.short()
        )
    }
}

impl CircomR1cs {
    /// Reads `.r1cs` bytes (format 1, BN254, without custom gates); every
    /// count, length, wire index and coefficient is checked.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::decode(bytes).map_err(Error::R1cs)
    }

    fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        if bytes.len() as u64 > MAX_R1CS_BYTES {
            return Err(format!("{} bytes (at most {MAX_R1CS_BYTES})", bytes.len()));
        }
        let table = sections(bytes, b"r1cs", &[1], 5)?;
        if table[3].is_some() || table[4].is_some() {
            return Err("custom gates (sections 4 and 5) are not supported".into());
        }
        let (Some(header), Some(body)) = (table[0].clone(), table[1].clone()) else {
            return Err("the header or the constraints section is missing".into());
        };
        let header = &bytes[header];
        if header.len() != 4 + FIELD_BYTES + 4 * 4 + 8 + 4
            || u32_at(header, 0) != Some(FIELD_BYTES as u32)
            || header[4..36] != Fr::MODULUS.to_bytes_le()[..]
        {
            return Err("not a BN254 constraint system (its header names another field)".into());
        }
        let at = |i: usize| u32_at(header, 36 + 4 * i).expect("checked length") as usize;
        let (num_wires, public_out, public_in) = (at(0), at(1), at(2));
        let num_constraints = u32_at(header, 36 + 16 + 8).expect("checked length") as usize;
        let num_public = public_out + public_in;
        if num_public >= num_wires.max(1) {
            return Err(format!("{num_public} public signals for {num_wires} wires"));
        }
        let body = &bytes[body];
        // Each constraint takes at least 12 bytes: bound the count before
        // allocating for it.
        if num_constraints > body.len() / 12 {
            return Err(format!(
                "{num_constraints} constraints in a {}-byte section",
                body.len()
            ));
        }
        let mut constraints = Vec::with_capacity(num_constraints);
        let mut pos = 0usize;
        for c in 0..num_constraints {
            let mut combinations: [Combination; 3] = Default::default();
            for combination in &mut combinations {
                let n = u32_at(body, pos).ok_or_else(|| format!("constraint {c} is cut short"))?
                    as usize;
                pos += 4;
                let len = n
                    .checked_mul(4 + FIELD_BYTES)
                    .filter(|len| pos + len <= body.len())
                    .ok_or_else(|| format!("constraint {c} is cut short"))?;
                combination.reserve(n);
                for factor in body[pos..pos + len].chunks_exact(4 + FIELD_BYTES) {
                    let wire = u32_at(factor, 0).expect("4 bytes") as usize;
                    if wire >= num_wires {
                        return Err(format!("constraint {c} names wire {wire} of {num_wires}"));
                    }
                    let value = &factor[4..];
                    if !below_modulus::<Fr>(value) {
                        return Err(format!("constraint {c} has a coefficient ≥ the modulus"));
                    }
                    combination.push((wire, Fr::from_le_bytes_mod_order(value)));
                }
                pos += len;
            }
            constraints.push(combinations);
        }
        if pos != body.len() {
            return Err(format!(
                "{} bytes after the last constraint",
                body.len() - pos
            ));
        }
        Ok(Self {
            constraints,
            num_wires,
            num_public,
            hash: ContentHash::of(bytes),
        })
    }

    /// Reads an `.r1cs` file; errors name the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = read_capped(path, MAX_R1CS_BYTES)?;
        Self::from_bytes(&bytes).map_err(|e| Error::CircomFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// SHA-256 of the file.
    pub fn hash(&self) -> ContentHash {
        self.hash
    }

    /// Checks that this is the constraint system `key` was set up for: the
    /// same wires, public signals and constraints, and the same A and B
    /// matrices.
    pub fn check_matches(&self, key: &CircomKey) -> Result<()> {
        let fail = |why: String| {
            Err(Error::KeyMismatch(format!(
                "the r1cs and the zkey differ: {why}"
            )))
        };
        if (self.num_wires, self.num_public, self.constraints.len())
            != (key.num_vars, key.num_public, key.num_constraints)
        {
            return fail(format!(
                "{} wires, {} public, {} constraints against {}, {}, {}",
                self.num_wires,
                self.num_public,
                self.constraints.len(),
                key.num_vars,
                key.num_public,
                key.num_constraints
            ));
        }
        let sorted = |row: &mut Vec<(usize, Fr)>| {
            row.retain(|(_, v)| !v.is_zero());
            row.sort_by_key(|(wire, _)| *wire);
        };
        for (i, constraint) in self.constraints.iter().enumerate() {
            for (m, matrix) in key.matrices.iter().enumerate() {
                let mut ours = constraint[m].clone();
                let mut theirs: Vec<(usize, Fr)> =
                    matrix[i].iter().map(|(v, w)| (*w, *v)).collect();
                sorted(&mut ours);
                sorted(&mut theirs);
                if ours != theirs {
                    let name = ["A", "B"][m];
                    return fail(format!("constraint {i}'s {name} differs"));
                }
            }
        }
        Ok(())
    }

    /// Checks that `witness` satisfies every constraint; the first that
    /// fails is named.
    pub fn check_satisfied(&self, witness: &CircomWitness) -> Result<()> {
        if witness.values.len() != self.num_wires {
            return Err(Error::Wtns(format!(
                "{} values, the circuit takes {} (a witness for another circuit?)",
                witness.values.len(),
                self.num_wires
            )));
        }
        let eval = |combination: &Combination| -> Fr {
            combination
                .iter()
                .map(|(wire, v)| witness.values[*wire] * v)
                .sum()
        };
        for (i, [a, b, c]) in self.constraints.iter().enumerate() {
            if eval(a) * eval(b) != eval(c) {
                return Err(Error::Wtns(format!(
                    "constraint {i} does not hold: the witness does not satisfy the circuit"
                )));
            }
        }
        Ok(())
    }
}

/// One job's full witness, read from a circom `.wtns` file: the constant 1,
/// then the public signals, then the private ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircomWitness {
    values: Vec<Fr>,
    num_public: usize,
}

impl CircomWitness {
    /// Reads `.wtns` bytes (format 2, BN254) for a circuit with `num_public`
    /// public signals.
    pub fn from_bytes(bytes: &[u8], num_public: usize) -> Result<Self> {
        let bad = |reason: String| Error::Wtns(reason);
        if bytes.len() as u64 > MAX_WITNESS_BYTES {
            return Err(bad(format!(
                "{} bytes (at most {MAX_WITNESS_BYTES})",
                bytes.len()
            )));
        }
        let table = sections(bytes, b"wtns", &[2], 2).map_err(bad)?;
        let (Some(header), Some(values)) = (table[0].clone(), table[1].clone()) else {
            return Err(bad("a section is missing".into()));
        };
        let (header, values) = (&bytes[header], &bytes[values]);
        if header.len() != 4 + FIELD_BYTES + 4
            || u32_at(header, 0) != Some(FIELD_BYTES as u32)
            || header[4..36] != Fr::MODULUS.to_bytes_le()[..]
        {
            return Err(bad(
                "not a BN254 witness (its header names another field)".into()
            ));
        }
        let count = u32_at(header, 36).expect("checked length") as usize;
        if values.len() != count * FIELD_BYTES {
            return Err(bad(format!(
                "{} value bytes for {count} values",
                values.len()
            )));
        }
        let mut out = Vec::with_capacity(count);
        for v in values.chunks_exact(FIELD_BYTES) {
            if !below_modulus::<Fr>(v) {
                return Err(bad(format!("value {} is not a field element", out.len())));
            }
            out.push(Fr::from_le_bytes_mod_order(v));
        }
        if out.first() != Some(&Fr::one()) {
            return Err(bad("the first value (the constant) is not 1".into()));
        }
        if out.len() <= num_public {
            return Err(bad(format!(
                "{} values cannot hold {num_public} public signals",
                out.len()
            )));
        }
        Ok(Self {
            values: out,
            num_public,
        })
    }

    /// Reads a `.wtns` file; errors name the file.
    pub fn load(path: impl AsRef<Path>, num_public: usize) -> Result<Self> {
        let path = path.as_ref();
        let bytes = read_capped(path, MAX_WITNESS_BYTES)?;
        Self::from_bytes(&bytes, num_public).map_err(|e| Error::CircomFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// The public signals, in circuit order.
    pub fn public(&self) -> &[Fr] {
        &self.values[1..=self.num_public]
    }

    /// Every value, the constant 1 first.
    pub fn values(&self) -> &[Fr] {
        &self.values
    }

    /// The `.wtns` bytes (format 2).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + 2 * 12 + 40 + self.values.len() * FIELD_BYTES);
        out.extend_from_slice(b"wtns");
        out.extend_from_slice(&2u32.to_le_bytes());
        out.extend_from_slice(&2u32.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&40u64.to_le_bytes());
        out.extend_from_slice(&(FIELD_BYTES as u32).to_le_bytes());
        out.extend_from_slice(&Fr::MODULUS.to_bytes_le());
        out.extend_from_slice(&(self.values.len() as u32).to_le_bytes());
        out.extend_from_slice(&2u32.to_le_bytes());
        out.extend_from_slice(&((self.values.len() * FIELD_BYTES) as u64).to_le_bytes());
        for v in &self.values {
            out.extend_from_slice(&v.into_bigint().to_bytes_le());
        }
        out
    }
}

/// The R1CS-to-QAP reduction of snarkjs (and circom-compat): the quotient
/// `h` is evaluated on the coset `g·H`, `g` a primitive `2n`-th root of
/// unity, where the vanishing polynomial is the constant `g^n - 1 = -2`; a
/// snarkjs zkey's H query already holds that constant and the coset's
/// Lagrange basis, so `h`'s evaluations are used as they are. arkworks'
/// default (libsnark) reduction divides by the vanishing polynomial on
/// another coset instead, and its proofs against a zkey do not verify.
pub struct CircomReduction;

impl R1CSToQAP for CircomReduction {
    /// Not used: circom circuits' keys come from snarkjs, never from an
    /// arkworks setup.
    #[allow(clippy::type_complexity)]
    fn instance_map_with_evaluation<F: PrimeField, D: EvaluationDomain<F>>(
        _cs: ConstraintSystemRef<F>,
        _t: &F,
    ) -> std::result::Result<(Vec<F>, Vec<F>, Vec<F>, F, usize, usize), SynthesisError> {
        Err(SynthesisError::Unsatisfiable)
    }

    fn witness_map_from_matrices<F: PrimeField, D: EvaluationDomain<F>>(
        matrices: &[Matrix<F>],
        num_inputs: usize,
        num_constraints: usize,
        full_assignment: &[F],
    ) -> std::result::Result<Vec<F>, SynthesisError> {
        let domain =
            D::new(num_constraints + num_inputs).ok_or(SynthesisError::PolynomialDegreeTooLarge)?;
        let n = domain.size();
        let mut a = vec![F::zero(); n];
        let mut b = vec![F::zero(); n];
        for (i, (a_row, b_row)) in matrices[0].iter().zip(&matrices[1]).enumerate() {
            a[i] = evaluate_constraint(a_row, full_assignment);
            b[i] = evaluate_constraint(b_row, full_assignment);
        }
        // snarkjs's input constraints: input j times 1 (B is zero there).
        a[num_constraints..num_constraints + num_inputs]
            .copy_from_slice(&full_assignment[..num_inputs]);
        let mut c: Vec<F> = a.iter().zip(&b).map(|(x, y)| *x * y).collect();
        let g = D::new(2 * n)
            .ok_or(SynthesisError::PolynomialDegreeTooLarge)?
            .element(1);
        for evals in [&mut a, &mut b, &mut c] {
            domain.ifft_in_place(evals);
            D::distribute_powers_and_mul_by_const(evals, g, F::one());
            domain.fft_in_place(evals);
        }
        Ok(a.iter()
            .zip(&b)
            .zip(&c)
            .map(|((a, b), c)| *a * b - c)
            .collect())
    }

    /// Not used: see [`Self::instance_map_with_evaluation`].
    fn h_query_scalars<F: PrimeField, D: EvaluationDomain<F>>(
        _max_power: usize,
        _t: F,
        _zt: F,
        _delta_inverse: F,
    ) -> std::result::Result<Vec<F>, SynthesisError> {
        Err(SynthesisError::Unsatisfiable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concatenated_witness_files_split_where_each_ends() {
        let w = |v: u64| {
            CircomWitness {
                values: vec![Fr::one(), Fr::from(v), Fr::from(v + 1)],
                num_public: 1,
            }
            .to_bytes()
        };
        let (a, b) = (w(5), w(7));
        let both = [a.clone(), b.clone()].concat();
        assert_eq!(split_witness_files(&both).unwrap(), vec![&a[..], &b[..]]);
        assert!(split_witness_files(&[]).unwrap().is_empty());
        let err = split_witness_files(&both[..both.len() - 1])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("witness 1: section 2 runs past the end"),
            "{err}"
        );
        let err = split_witness_files(&[&a[..], b"junk"].concat())
            .unwrap_err()
            .to_string();
        assert!(err.contains("witness 1: "), "{err}");
    }

    #[test]
    fn below_modulus_compares_little_endian_numbers() {
        let r = Fr::MODULUS.to_bytes_le();
        assert!(!below_modulus::<Fr>(&r));
        let mut less = r.clone();
        less[0] -= 1;
        assert!(below_modulus::<Fr>(&less));
        let mut more = r.clone();
        more[31] += 1;
        assert!(!below_modulus::<Fr>(&more));
        assert!(below_modulus::<Fr>(&[0u8; 32]));
    }
}
