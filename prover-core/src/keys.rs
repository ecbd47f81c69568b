//! Groth16 keys: the setup (from the OS's randomness, or INSECURE from a
//! public seed for testnets), and proving/verifying keys as bytes and files
//! identified by their content hash.
//!
//! File layout (format 2): magic (`CPPK` or `CPVK`), format version (1 byte),
//! how the setup drew its randomness (1 byte: 0 the OS; 1 a seed, followed by
//! the seed as 8 little-endian bytes; 2 a snarkjs zkey's ceremony, for the
//! verifying key of a registered circom circuit), circuit id length (1 byte) and id, then
//! the arkworks key in compressed form. Format 1 lacked the setup byte; only
//! the seeded setup wrote it, so it reads as insecure. The content hash is
//! SHA-256 of the whole file, so a key's setup is part of its name.
//!
//! A prover keeps the keys it proves with in an expanded form (magic `CPPX`,
//! the same header, the points uncompressed, the key's content hash and a
//! SHA-256 checksum; [`ProvingKey::save_expanded`]), which it reads 40 to
//! 60 times faster than the compressed file it fetched.

use std::borrow::Cow;
use std::path::Path;

use ark_bn254::Bn254;
use ark_ec::AffineRepr;
use ark_ec::pairing::Pairing;
use ark_groth16::Groth16;
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize, Compress, Validate};
use ark_snark::SNARK;
use protocol::ids::{CircuitId, ContentHash};
use rand::rngs::{OsRng, StdRng};
use rand::{CryptoRng, RngCore, SeedableRng};

use crate::circuit::{Circuit, CircuitConfig, TransferCircuit};
use crate::error::{Error, Result};

const PK_MAGIC: &[u8; 4] = b"CPPK";
const VK_MAGIC: &[u8; 4] = b"CPVK";
/// A proving key's expanded form ([`ProvingKey::save_expanded`]).
const EXPANDED_MAGIC: &[u8; 4] = b"CPPX";
const KEY_VERSION: u8 = 2;
/// The first format, written only by the seeded setup.
const KEY_VERSION_SEEDED_ONLY: u8 = 1;

/// Where a key pair's secret randomness (α, β, γ, δ, τ: the "toxic waste")
/// came from. Whoever knows it can forge a proof of any statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySetup {
    /// The operating system's random source, dropped when the setup ended.
    /// Still a single party's setup: the operator could have kept it; real
    /// value needs a multi-party ceremony (e.g. a snarkjs zkey).
    Random,
    /// **INSECURE**: a public seed, so anyone can recompute the toxic waste.
    /// `None` for a format-1 file, which does not record its seed.
    InsecureSeed(Option<u64>),
    /// A snarkjs zkey's ceremony (powers of tau and phase 2): as secure as
    /// its contributions, which the operator who registered it vouches for.
    Snarkjs,
}

impl KeySetup {
    /// False for keys anyone can forge proofs for.
    pub fn is_secure(&self) -> bool {
        matches!(self, Self::Random | Self::Snarkjs)
    }

    /// `random` or `insecure-seed`, for status documents and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Random => "random",
            Self::InsecureSeed(_) => "insecure-seed",
            Self::Snarkjs => "snarkjs-zkey",
        }
    }
}

impl std::fmt::Display for KeySetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Random => f.write_str("random (from the OS)"),
            Self::InsecureSeed(Some(seed)) => write!(f, "INSECURE (seed {seed})"),
            Self::InsecureSeed(None) => f.write_str("INSECURE (seeded, key format 1)"),
            Self::Snarkjs => f.write_str("a snarkjs zkey's ceremony"),
        }
    }
}

/// A proving key for one circuit. Load once, prove many times.
#[derive(Clone)]
pub struct ProvingKey {
    pub(crate) circuit: Circuit,
    setup: KeySetup,
    pub(crate) inner: ark_groth16::ProvingKey<Bn254>,
    hash: ContentHash,
}

/// A verifying key for one circuit.
#[derive(Clone, Debug)]
pub struct VerifyingKey {
    pub(crate) circuit: Circuit,
    setup: KeySetup,
    pub(crate) inner: ark_groth16::VerifyingKey<Bn254>,
    hash: ContentHash,
}

/// A verifying key with its pairing precomputations; use it when verifying
/// many proofs.
#[derive(Clone, Debug)]
pub struct PreparedVerifyingKey {
    pub(crate) circuit: Circuit,
    pub(crate) inner: ark_groth16::PreparedVerifyingKey<Bn254>,
    hash: ContentHash,
}

impl std::fmt::Debug for ProvingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ProvingKey({}, {})",
            self.circuit.id(),
            self.hash.short()
        )
    }
}

/// Generates keys for `circuit` from the OS's random source. The toxic waste
/// lives only inside this call (arkworks draws and drops it).
pub fn setup(circuit: Circuit) -> Result<(ProvingKey, VerifyingKey)> {
    setup_with(circuit, KeySetup::Random, &mut OsRng)
}

/// **INSECURE, testnets only.** Generates keys for the transfer circuit of
/// `config` from a public seed. Anyone who knows the seed knows the toxic
/// waste and can forge proofs of false statements; the key files say so and
/// a distributor refuses them outside `--dev`.
pub fn setup_insecure(config: CircuitConfig, seed: u64) -> Result<(ProvingKey, VerifyingKey)> {
    setup_insecure_for(Circuit::Transfer(config), seed)
}

/// **INSECURE, testnets only.** [`setup_insecure`] for any registered circuit.
pub fn setup_insecure_for(circuit: Circuit, seed: u64) -> Result<(ProvingKey, VerifyingKey)> {
    let mut rng = StdRng::seed_from_u64(seed);
    setup_with(circuit, KeySetup::InsecureSeed(Some(seed)), &mut rng)
}

fn setup_with<R: RngCore + CryptoRng>(
    circuit: Circuit,
    setup: KeySetup,
    rng: &mut R,
) -> Result<(ProvingKey, VerifyingKey)> {
    let (pk, vk) = match circuit {
        Circuit::Transfer(config) => {
            Groth16::<Bn254>::circuit_specific_setup(TransferCircuit::blank(config), rng)?
        }
        Circuit::Circom(_) => {
            return Err(Error::Config(
                "circom keys come from a snarkjs ceremony; register the zkey with \
                 `crowdprove setup --zkey FILE`"
                    .into(),
            ));
        }
    };
    Ok((
        ProvingKey::new(circuit, setup, pk),
        VerifyingKey::new(circuit, setup, vk),
    ))
}

fn encode_key<K: CanonicalSerialize>(
    magic: &[u8; 4],
    circuit: &Circuit,
    setup: KeySetup,
    key: &K,
    points: Compress,
) -> Vec<u8> {
    let id = circuit.id();
    let mut out = Vec::with_capacity(15 + id.as_str().len() + key.serialized_size(points));
    out.extend_from_slice(magic);
    // A format-1 key is written back as format 1, so its bytes (and hash)
    // stay what they were.
    match setup {
        KeySetup::Random => out.extend_from_slice(&[KEY_VERSION, 0]),
        KeySetup::InsecureSeed(Some(seed)) => {
            out.extend_from_slice(&[KEY_VERSION, 1]);
            out.extend_from_slice(&seed.to_le_bytes());
        }
        KeySetup::InsecureSeed(None) => out.push(KEY_VERSION_SEEDED_ONLY),
        KeySetup::Snarkjs => out.extend_from_slice(&[KEY_VERSION, 2]),
    }
    out.push(id.as_str().len() as u8);
    out.extend_from_slice(id.as_str().as_bytes());
    key.serialize_with_mode(&mut out, points)
        .expect("serialising to a Vec cannot fail");
    out
}

/// Reads a key file's header: its circuit, its setup, and the key's body.
fn decode_header<'a>(
    magic: &[u8; 4],
    bytes: &'a [u8],
) -> std::result::Result<(Circuit, KeySetup, &'a [u8]), String> {
    let what = match magic {
        PK_MAGIC => "proving",
        EXPANDED_MAGIC => "expanded proving",
        _ => "verifying",
    };
    if bytes.len() < 6 || &bytes[..4] != magic {
        return Err(format!(
            "not a CrowdProve {what} key (bad magic or truncated header)"
        ));
    }
    let truncated = || "truncated header".to_string();
    let (setup, rest) = match bytes[4] {
        KEY_VERSION_SEEDED_ONLY => (KeySetup::InsecureSeed(None), &bytes[5..]),
        KEY_VERSION => match bytes[5] {
            0 => (KeySetup::Random, &bytes[6..]),
            1 => {
                let seed = bytes.get(6..14).ok_or_else(truncated)?;
                let seed = u64::from_le_bytes(seed.try_into().expect("8 bytes"));
                (KeySetup::InsecureSeed(Some(seed)), &bytes[14..])
            }
            2 => (KeySetup::Snarkjs, &bytes[6..]),
            other => return Err(format!("unknown setup kind {other}")),
        },
        other => {
            return Err(format!(
                "key format version {other} (this build reads {KEY_VERSION_SEEDED_ONLY} and {KEY_VERSION})"
            ));
        }
    };
    let id_len = *rest.first().ok_or_else(truncated)? as usize;
    let id = rest.get(1..1 + id_len).ok_or_else(truncated)?;
    let id = std::str::from_utf8(id).map_err(|_| "circuit id is not UTF-8".to_string())?;
    let id = CircuitId::new(id).map_err(|e| e.to_string())?;
    let circuit = Circuit::from_id(&id).map_err(|e| e.to_string())?;
    Ok((circuit, setup, &rest[1 + id_len..]))
}

/// Parses key bytes whose points are written as `points` says. Skipping the
/// subgroup checks (`Validate::No`, for bytes that matched an expected hash)
/// saves seconds for a large proving key.
fn decode_key<K: CanonicalDeserialize>(
    magic: &[u8; 4],
    bytes: &[u8],
    points: Compress,
    validate: Validate,
) -> std::result::Result<(Circuit, KeySetup, K), String> {
    let (circuit, setup, mut body) = decode_header(magic, bytes)?;
    let key = K::deserialize_with_mode(&mut body, points, validate).map_err(corrupt_body)?;
    if !body.is_empty() {
        return Err(trailing(body));
    }
    Ok((circuit, setup, key))
}

fn validation(trusted: bool) -> Validate {
    if trusted { Validate::No } else { Validate::Yes }
}

fn corrupt_body(e: impl std::fmt::Display) -> String {
    format!("key body is truncated or corrupt: {e}")
}

fn trailing(body: &[u8]) -> String {
    format!("{} trailing bytes after the key", body.len())
}

fn check_hash(bytes: &[u8], expected: Option<ContentHash>) -> std::result::Result<bool, String> {
    match expected {
        None => Ok(false),
        Some(e) => {
            let got = ContentHash::of(bytes);
            if got == e {
                Ok(true)
            } else {
                Err(format!("content hash is {}", got.to_hex()))
            }
        }
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    // Write, sync, then rename, so a crash never leaves a half key (or an
    // empty one) under the real name.
    let tmp = path.with_extension("tmp");
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut file, bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_parent(path)
    })();
    written.map_err(|source| {
        // A full disk leaves no half-written copy behind.
        let _ = std::fs::remove_file(&tmp);
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Syncs the folder holding `path`, so a rename into it survives a crash.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

fn expected_text(expected: Option<ContentHash>) -> String {
    expected.map_or_else(|| "none given".to_string(), |h| h.to_hex())
}

macro_rules! key_io {
    ($ty:ident, $inner:ty, $magic:expr) => {
        impl $ty {
            pub(crate) fn new(circuit: Circuit, setup: KeySetup, inner: $inner) -> Self {
                let hash =
                    ContentHash::of(&encode_key($magic, &circuit, setup, &inner, Compress::Yes));
                Self {
                    circuit,
                    setup,
                    inner,
                    hash,
                }
            }

            /// The circuit this key belongs to.
            pub fn circuit(&self) -> Circuit {
                self.circuit
            }

            /// Where the setup's randomness came from.
            pub fn setup(&self) -> KeySetup {
                self.setup
            }

            /// SHA-256 of [`Self::to_bytes`]; how the network names the key.
            pub fn hash(&self) -> ContentHash {
                self.hash
            }

            /// The key's file bytes.
            pub fn to_bytes(&self) -> Vec<u8> {
                encode_key(
                    $magic,
                    &self.circuit,
                    self.setup,
                    &self.inner,
                    Compress::Yes,
                )
            }

            /// Parses key bytes, checking them against `expected` when given.
            pub fn from_bytes(bytes: &[u8], expected: Option<ContentHash>) -> Result<Self> {
                let trusted = check_hash(bytes, expected).map_err(|r| {
                    Error::KeyBytes(format!("{r}, expected {}", expected_text(expected)))
                })?;
                let (circuit, setup, inner) =
                    decode_key($magic, bytes, Compress::Yes, validation(trusted))
                        .map_err(Error::KeyBytes)?;
                Ok(Self {
                    circuit,
                    setup,
                    inner,
                    hash: ContentHash::of(bytes),
                })
            }

            /// Writes the key to `path`.
            pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
                write_file(path.as_ref(), &self.to_bytes())
            }

            /// Reads a key file, checking it against `expected` when given.
            /// Errors name the file and the expected hash.
            pub fn load(path: impl AsRef<Path>, expected: Option<ContentHash>) -> Result<Self> {
                Self::load_inner(path.as_ref(), None, expected)
            }

            /// Like [`Self::load`], and also requires the key to be for `circuit`.
            pub fn load_for(
                path: impl AsRef<Path>,
                circuit: &CircuitId,
                expected: Option<ContentHash>,
            ) -> Result<Self> {
                Self::load_inner(path.as_ref(), Some(circuit), expected)
            }

            fn load_inner(
                path: &Path,
                circuit: Option<&CircuitId>,
                expected: Option<ContentHash>,
            ) -> Result<Self> {
                let fail = |reason: String| Error::KeyFile {
                    path: path.to_path_buf(),
                    expected: expected_text(expected),
                    reason,
                };
                let bytes = read_file(path)?;
                let trusted = check_hash(&bytes, expected).map_err(fail)?;
                let (c, setup, inner) =
                    decode_key($magic, &bytes, Compress::Yes, validation(trusted)).map_err(fail)?;
                if let Some(want) = circuit {
                    if c.id() != *want {
                        return Err(fail(format!("key is for circuit {}, not {want}", c.id())));
                    }
                }
                Ok(Self {
                    circuit: c,
                    setup,
                    inner,
                    hash: ContentHash::of(&bytes),
                })
            }
        }
    };
}

key_io!(ProvingKey, ark_groth16::ProvingKey<Bn254>, PK_MAGIC);
key_io!(VerifyingKey, ark_groth16::VerifyingKey<Bn254>, VK_MAGIC);

impl ProvingKey {
    /// The matching verifying key.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey::new(self.circuit, self.setup, self.inner.vk.clone())
    }

    /// Writes the key's expanded form to `path`, for the prover that keeps
    /// it: every point uncompressed (about twice the file's bytes), then the
    /// key's content hash, then SHA-256 of all that as a checksum.
    /// [`Self::load_expanded`] reads it without a square root per point:
    /// 34 ms instead of 1.9 s for a `transfer-d8-k2` key (the key-load
    /// benchmark).
    pub fn save_expanded(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut bytes = encode_key(
            EXPANDED_MAGIC,
            &self.circuit,
            self.setup,
            &self.inner,
            Compress::No,
        );
        bytes.extend_from_slice(&self.hash.0);
        let checksum = ContentHash::of(&bytes);
        bytes.extend_from_slice(&checksum.0);
        write_file(path.as_ref(), &bytes)
    }

    /// Reads a key written by [`Self::save_expanded`], which must be the
    /// key of `circuit` named `expected`. Its points are not checked: the
    /// file is the prover's own, written from a key it checked, and the
    /// checksum finds any change to it since.
    pub fn load_expanded(
        path: impl AsRef<Path>,
        circuit: &CircuitId,
        expected: ContentHash,
    ) -> Result<Self> {
        let path = path.as_ref();
        let fail = |reason: String| Error::KeyFile {
            path: path.to_path_buf(),
            expected: expected.to_hex(),
            reason,
        };
        let bytes = read_file(path)?;
        let Some(body_len) = bytes.len().checked_sub(64) else {
            return Err(fail("too short for an expanded proving key".into()));
        };
        let (checked, checksum) = bytes.split_at(body_len + 32);
        if ContentHash::of(checked).0 != checksum {
            return Err(fail(
                "its checksum does not match: the file is corrupt".into(),
            ));
        }
        let (body, hash) = checked.split_at(body_len);
        let hash = ContentHash(hash.try_into().expect("32 bytes"));
        if hash != expected {
            return Err(fail(format!(
                "it is the expanded form of key {}",
                hash.to_hex()
            )));
        }
        let (c, setup, inner) =
            decode_key(EXPANDED_MAGIC, body, Compress::No, Validate::No).map_err(fail)?;
        if c.id() != *circuit {
            return Err(fail(format!(
                "key is for circuit {}, not {circuit}",
                c.id()
            )));
        }
        Ok(Self {
            circuit: c,
            setup,
            inner,
            hash: expected,
        })
    }

    /// Checks that `vk` judges the proofs this key makes
    /// ([`ProvingKeyHead::check_pairs_with`]).
    pub fn check_pairs_with(&self, vk: &VerifyingKey) -> Result<()> {
        let k = &self.inner;
        let head = ProvingKeyHead {
            circuit: self.circuit,
            setup: self.setup,
            vk: k.vk.clone(),
            beta_g1: k.beta_g1,
            delta_g1: k.delta_g1,
        };
        head.check_pairs_with(vk)
    }

    /// Compressed size in bytes.
    pub fn size(&self) -> usize {
        self.inner.compressed_size()
    }

    /// The arkworks key, for callers that drive ark-groth16 themselves.
    pub fn as_ark(&self) -> &ark_groth16::ProvingKey<Bn254> {
        &self.inner
    }
}

/// What a proving key file holds before its queries: the circuit, the
/// setup, the embedded verifying key, and β and δ in G1, which is all
/// [`ProvingKey::check_pairs_with`] reads. Read without decompressing the
/// queries, nearly all of the file (a second of a core for a depth-4
/// transfer key, 26 s for a default job's): for a distributor, which
/// serves the key's bytes and proves nothing with them. The queries'
/// lengths are checked to add up to the file's, so a truncated or
/// extended file is refused; each prover that loads the key decompresses
/// every point of it (a point off the curve fails there).
pub struct ProvingKeyHead {
    circuit: Circuit,
    setup: KeySetup,
    vk: ark_groth16::VerifyingKey<Bn254>,
    beta_g1: <Bn254 as Pairing>::G1Affine,
    delta_g1: <Bn254 as Pairing>::G1Affine,
}

impl ProvingKeyHead {
    /// Reads the head of proving key bytes, checked against `expected`
    /// (their content hash) when given.
    pub fn from_bytes(bytes: &[u8], expected: Option<ContentHash>) -> Result<Self> {
        type G1 = <Bn254 as Pairing>::G1Affine;
        type G2 = <Bn254 as Pairing>::G2Affine;
        let fail = Error::KeyBytes;
        let trusted = check_hash(bytes, expected)
            .map_err(|r| fail(format!("{r}, expected {}", expected_text(expected))))?;
        let (circuit, setup, mut body) = decode_header(PK_MAGIC, bytes).map_err(fail)?;
        let validate = validation(trusted);
        let read = |body: &mut &[u8]| -> Result<(ark_groth16::VerifyingKey<Bn254>, G1, G1)> {
            CanonicalDeserialize::deserialize_with_mode(body, Compress::Yes, validate)
                .map_err(|e| fail(corrupt_body(e)))
        };
        let (vk, beta_g1, delta_g1) = read(&mut body)?;
        // The queries, in the order ark-groth16 writes them (a, b in G1,
        // b in G2, h, l): each a length and that many compressed points.
        let (g1, g2) = (G1::zero().compressed_size(), G2::zero().compressed_size());
        for point in [g1, g1, g2, g1, g1] {
            let len = u64::deserialize_compressed(&mut body).map_err(|e| fail(corrupt_body(e)))?;
            let size = usize::try_from(len)
                .ok()
                .and_then(|n| n.checked_mul(point))
                .filter(|&size| size <= body.len())
                .ok_or_else(|| fail(corrupt_body("a query is longer than the file")))?;
            body = &body[size..];
        }
        if !body.is_empty() {
            return Err(fail(trailing(body)));
        }
        Ok(Self {
            circuit,
            setup,
            vk,
            beta_g1,
            delta_g1,
        })
    }

    /// Checks that `vk` judges the proofs the key makes: the same circuit
    /// and setup, the same embedded verifying key, and the key's own G1
    /// copies of β and δ pair with the verifying key's G2 ones (a spliced
    /// file fails here). Two pairings: milliseconds.
    pub fn check_pairs_with(&self, vk: &VerifyingKey) -> Result<()> {
        let fail = |why: &str| Err(Error::KeyMismatch(why.to_string()));
        if self.circuit != vk.circuit {
            return fail(&format!(
                "the proving key is for circuit {}, the verifying key for {}",
                self.circuit.id(),
                vk.circuit.id()
            ));
        }
        if self.setup != vk.setup {
            return fail(&format!(
                "the proving key's setup is {}, the verifying key's {}",
                self.setup, vk.setup
            ));
        }
        if self.vk != vk.inner {
            return fail("they come from different setups");
        }
        // The setup's generators are random, so compare the two keys'
        // β and δ against each other: e(β₁, δ₂) = e(δ₁, β₂) = e(g, h)^βδ.
        let (k, v) = (self, &vk.inner);
        if Bn254::pairing(k.beta_g1, v.delta_g2) != Bn254::pairing(k.delta_g1, v.beta_g2) {
            return fail(
                "the proving key's β or δ does not match its verifying key (a corrupt or spliced file)",
            );
        }
        Ok(())
    }
}

impl VerifyingKey {
    /// Precomputes the pairing inputs for fast verification.
    pub fn prepare(&self) -> PreparedVerifyingKey {
        PreparedVerifyingKey {
            circuit: self.circuit,
            inner: ark_groth16::prepare_verifying_key(&self.inner),
            hash: self.hash,
        }
    }
}

impl PreparedVerifyingKey {
    /// The content hash of the verifying key it was prepared from.
    pub fn hash(&self) -> ContentHash {
        self.hash
    }
}

/// Either kind of verifying key; [`crate::verify`] and
/// [`crate::batch_verify`] accept both.
pub trait VerifierKey {
    /// The circuit the key verifies.
    fn circuit(&self) -> Circuit;
    /// The key with its pairing precomputations.
    fn prepared(&self) -> Cow<'_, ark_groth16::PreparedVerifyingKey<Bn254>>;
}

impl VerifierKey for VerifyingKey {
    fn circuit(&self) -> Circuit {
        self.circuit
    }
    fn prepared(&self) -> Cow<'_, ark_groth16::PreparedVerifyingKey<Bn254>> {
        Cow::Owned(ark_groth16::prepare_verifying_key(&self.inner))
    }
}

impl VerifierKey for PreparedVerifyingKey {
    fn circuit(&self) -> Circuit {
        self.circuit
    }
    fn prepared(&self) -> Cow<'_, ark_groth16::PreparedVerifyingKey<Bn254>> {
        Cow::Borrowed(&self.inner)
    }
}
