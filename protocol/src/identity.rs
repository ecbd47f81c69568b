//! Node identities: ed25519 keys, signatures, short node ids and the key file.
//!
//! A key file is three lines of text, created with mode 0600:
//!
//! ```text
//! crowdprove-secret-key v1
//! seed <64 hex digits>
//! public <64 hex digits>
//! ```
//!
//! The public line lets a load detect a damaged seed: it must match the key the
//! seed derives.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand_core::{CryptoRngCore, OsRng};
use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::hex;

/// An ed25519 public key: a node's identity on the network.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PublicKey(pub [u8; 32]);

/// An ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

/// An ed25519 secret key. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

/// A short printable node id: the first 6 bytes of the public key in hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId([u8; 6]);

/// Why bytes or text are not a usable public key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PublicKeyError {
    /// Not 64 hex digits.
    #[error("not 64 hex digits ({0})")]
    Hex(#[from] hex::HexError),
    /// 32 bytes, but not the encoding of a point on the ed25519 curve.
    #[error("its bytes are no point on the ed25519 curve")]
    NotAPoint,
    /// A point of small order: anyone can forge its signatures.
    #[error("a weak ed25519 key (a point of small order), which no node may use")]
    Weak,
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignatureError {
    /// The public key bytes are not a valid ed25519 point.
    #[error("signer key is not a valid ed25519 public key")]
    InvalidKey,
    /// The signature does not verify for this key and message.
    #[error("signature does not verify")]
    Mismatch,
}

impl PublicKey {
    /// The key of 32 bytes, if they are a usable ed25519 public key: a
    /// point on the curve, not of small order. Where bytes or text from
    /// outside become a key the node will dial or trust, take it here.
    pub fn checked(bytes: [u8; 32]) -> Result<Self, PublicKeyError> {
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| PublicKeyError::NotAPoint)?;
        if key.is_weak() {
            return Err(PublicKeyError::Weak);
        }
        Ok(Self(bytes))
    }

    /// Verifies `signature` over `message` (strict: rejects weak keys and
    /// malleable signatures).
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), SignatureError> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| SignatureError::InvalidKey)?;
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        key.verify_strict(message, &sig)
            .map_err(|_| SignatureError::Mismatch)
    }

    /// The short id printed in logs and tables.
    pub fn node_id(&self) -> NodeId {
        let mut short = [0u8; 6];
        short.copy_from_slice(&self.0[..6]);
        NodeId(short)
    }

    /// The whole key in hex.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.node_id())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// 64 hex digits of a usable key (see [`PublicKey::checked`]).
impl FromStr for PublicKey {
    type Err = PublicKeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::checked(hex::decode_array(s)?)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}..)", hex::encode(&self.0[..6]))
    }
}

// serde's derive stops at 32-element arrays; a signature is written as a
// fixed 64-byte tuple (no length prefix).
impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(64)?;
        for byte in &self.0 {
            tuple.serialize_element(byte)?;
        }
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SignatureVisitor;
        impl<'de> Visitor<'de> for SignatureVisitor {
            type Value = Signature;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Signature, A::Error> {
                let mut bytes = [0u8; 64];
                for (i, byte) in bytes.iter_mut().enumerate() {
                    *byte = seq
                        .next_element()?
                        .ok_or_else(|| de::Error::invalid_length(i, &self))?;
                }
                Ok(Signature(bytes))
            }
        }
        deserializer.deserialize_tuple(64, SignatureVisitor)
    }
}

impl SecretKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Self {
        Self::generate_with(&mut OsRng)
    }

    /// A new key from `rng` (tests pass a seeded one).
    pub fn generate_with(rng: &mut impl CryptoRngCore) -> Self {
        Self(SigningKey::generate(rng))
    }

    /// The key for a 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(SigningKey::from_bytes(&seed))
    }

    /// The 32-byte seed; handle with care.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }

    /// Loads a key file written by [`SecretKey::save`].
    pub fn load(path: &Path) -> Result<Self, KeyFileError> {
        let text = fs::read_to_string(path).map_err(|source| KeyFileError::Io {
            path: path.to_owned(),
            source,
        })?;
        parse_key_file(&text).map_err(|reason| KeyFileError::Malformed {
            path: path.to_owned(),
            reason,
        })
    }

    /// Writes the key to a new file with mode 0600. Refuses to overwrite an
    /// existing file: replacing a node's key loses its identity and earnings.
    /// The key is written and synced under a temporary name, then linked to
    /// `path`, so a crash never leaves an empty or half key there.
    pub fn save(&self, path: &Path) -> Result<(), KeyFileError> {
        let io_error = |source| KeyFileError::Io {
            path: path.to_owned(),
            source,
        };
        let exists = |source: std::io::Error| match source.kind() {
            std::io::ErrorKind::AlreadyExists => KeyFileError::AlreadyExists(path.to_owned()),
            _ => io_error(source),
        };
        if path.exists() {
            return Err(KeyFileError::AlreadyExists(path.to_owned()));
        }
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(format!(".tmp-{}", std::process::id()));
        let tmp = std::path::PathBuf::from(tmp_name);
        let written = (|| -> std::io::Result<()> {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            // The mode above is filtered by the umask; make it exactly 0600.
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
            let text = format!(
                "{KEY_FILE_HEADER}\nseed {}\npublic {}\n",
                hex::encode(&self.seed()),
                self.public().to_hex()
            );
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io_error(e));
        }
        // A link, unlike a rename, never replaces a file that appeared meanwhile.
        let linked = fs::hard_link(&tmp, path);
        let _ = fs::remove_file(&tmp);
        linked.map_err(exists)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_error)?;
        }
        Ok(())
    }

    /// Loads the key at `path`, or creates and saves a new one if there is no
    /// file there. Any other failure (unreadable, malformed) is an error.
    pub fn load_or_generate(path: &Path) -> Result<Self, KeyFileError> {
        match Self::load(path) {
            Err(KeyFileError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                let key = Self::generate();
                key.save(path)?;
                Ok(key)
            }
            other => other,
        }
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

const KEY_FILE_HEADER: &str = "crowdprove-secret-key v1";

fn parse_key_file(text: &str) -> Result<SecretKey, String> {
    let mut lines = text.lines();
    match lines.next() {
        Some(KEY_FILE_HEADER) => {}
        Some(other) => {
            return Err(format!(
                "first line is {other:?}, expected {KEY_FILE_HEADER:?}"
            ));
        }
        None => return Err("file is empty".into()),
    }
    let mut field = |name: &str| -> Result<[u8; 32], String> {
        let line = lines
            .next()
            .ok_or_else(|| format!("missing '{name}' line (file truncated?)"))?;
        let value = line
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(' '))
            .ok_or_else(|| format!("expected a '{name} <hex>' line, found {line:?}"))?;
        hex::decode_array(value.trim()).map_err(|e| format!("bad '{name}' value: {e}"))
    };
    let seed = field("seed")?;
    let public = field("public")?;
    let key = SecretKey::from_seed(seed);
    if key.public().0 != public {
        return Err("seed does not match the public key (file corrupt?)".into());
    }
    Ok(key)
}

/// Why a key file could not be loaded or saved.
#[derive(Debug, Error)]
pub enum KeyFileError {
    /// The file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file exists but is not a valid key file.
    #[error("key file {path} is not a valid CrowdProve key: {reason}")]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Saving would overwrite an existing key.
    #[error("key file {0} already exists; refusing to overwrite a node identity")]
    AlreadyExists(PathBuf),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SecretKey {
        SecretKey::from_seed([n; 32])
    }

    #[test]
    fn sign_and_verify() {
        let k = key(1);
        let sig = k.sign(b"hello");
        assert_eq!(k.public().verify(b"hello", &sig), Ok(()));
        assert_eq!(
            k.public().verify(b"hellO", &sig),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            key(2).public().verify(b"hello", &sig),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn secret_debug_hides_key() {
        assert_eq!(format!("{:?}", key(1)), "SecretKey(..)");
    }

    #[test]
    fn key_file_round_trip_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let k = key(3);
        k.save(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(SecretKey::load(&path).unwrap().public(), k.public());
        assert!(matches!(
            key(4).save(&path),
            Err(KeyFileError::AlreadyExists(_))
        ));
    }

    #[test]
    fn bad_key_files_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let err = SecretKey::load(&path).unwrap_err();
        assert!(matches!(err, KeyFileError::Io { .. }));
        assert!(err.to_string().contains("node.key"));

        key(5).save(&path).unwrap();
        let full = fs::read_to_string(&path).unwrap();
        let cases = [
            String::new(),
            full[..40].to_string(),                // truncated
            full.replace("seed ", "sed "),         // malformed
            full.replacen(&full[40..42], "zz", 1), // bad hex
            full.replace("v1", "v9"),              // unknown version
            {
                // valid hex, but the seed no longer matches the public key
                let mut lines: Vec<String> = full.lines().map(String::from).collect();
                lines[1] = format!("seed {}", hex::encode(&[9u8; 32]));
                lines.join("\n")
            },
        ];
        for case in cases {
            fs::write(&path, &case).unwrap();
            let err = SecretKey::load(&path).unwrap_err();
            assert!(
                matches!(err, KeyFileError::Malformed { .. }),
                "{case:?} gave {err:?}"
            );
            assert!(err.to_string().contains("node.key"));
        }
    }

    #[test]
    fn load_or_generate_creates_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.key");
        let first = SecretKey::load_or_generate(&path).unwrap();
        let second = SecretKey::load_or_generate(&path).unwrap();
        assert_eq!(first.public(), second.public());
    }

    #[test]
    fn only_usable_keys_parse() {
        let good = key(1).public();
        assert_eq!(good.to_hex().parse::<PublicKey>(), Ok(good));
        assert_eq!(PublicKey::checked(good.0), Ok(good));
        // y = 2: x² has no square root, so no point has these bytes.
        let mut off_curve = [0u8; 32];
        off_curve[0] = 2;
        assert_eq!(
            PublicKey::checked(off_curve),
            Err(PublicKeyError::NotAPoint)
        );
        assert_eq!(
            hex::encode(&off_curve).parse::<PublicKey>(),
            Err(PublicKeyError::NotAPoint)
        );
        // The identity point (y = 1) is on the curve but of small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(PublicKey::checked(identity), Err(PublicKeyError::Weak));
        assert!(matches!(
            "abc".parse::<PublicKey>(),
            Err(PublicKeyError::Hex(_))
        ));
    }

    #[test]
    fn node_id_is_short_hex() {
        assert_eq!(key(1).public().node_id().to_string().len(), 12);
    }
}
