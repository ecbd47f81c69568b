//! The signed envelope every message travels in.
//!
//! ```text
//! offset  size  field
//! 0       1     version      (PROTOCOL_VERSION = 3)
//! 1       1     kind         (domain tag, see messages::Kind)
//! 2       32    signer       (ed25519 public key)
//! 34      8     timestamp    (ms since the Unix epoch, little-endian)
//! 42      8     nonce        (random per message, little-endian)
//! 50      n     body         (codec encoding of the message)
//! 50+n    64    signature    (ed25519 over SIGNING_CONTEXT ‖ kind name ‖ 0 ‖ bytes 0..50+n)
//! ```
//!
//! [`open`] checks, cheapest first: length and size limit, version, kind,
//! body decoding and content, freshness, then the signature. Replay
//! protection needs memory, so it lives in [`ReplayGuard`]; a [`Verifier`]
//! does all of it.

use std::collections::{BTreeSet, HashMap, HashSet};

use rand_core::{OsRng, RngCore};
use thiserror::Error;

use crate::codec::{self, CodecError};
use crate::identity::{PublicKey, SecretKey, Signature, SignatureError};
use crate::ids::Timestamp;
use crate::messages::{AnyMessage, BodyError, Kind, Message};

/// The envelope version this code speaks.
pub const PROTOCOL_VERSION: u8 = 3;
/// Bytes before the body.
pub const HEADER_LEN: usize = 50;
/// Bytes of the trailing signature.
pub const SIGNATURE_LEN: usize = 64;
/// Prefix of every signed payload, so a CrowdProve signature can never be
/// mistaken for a signature made in another context with the same key.
pub const SIGNING_CONTEXT: &[u8] = b"crowdprove/1/";

/// The envelope's header: who signed what kind of message, when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Envelope version.
    pub version: u8,
    /// Which message the body is.
    pub kind: Kind,
    /// Who signed it.
    pub signer: PublicKey,
    /// When the signer says it signed it.
    pub timestamp: Timestamp,
    /// Random per message; with the signer and timestamp, what replay
    /// protection remembers.
    pub nonce: u64,
}

/// A message whose envelope checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<M> {
    /// The verified header.
    pub header: Header,
    /// The message.
    pub body: M,
}

impl<M> Signed<M> {
    /// Who signed the message.
    pub fn signer(&self) -> PublicKey {
        self.header.signer
    }
}

/// How old or how far ahead of our clock a message may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// Messages older than this are stale.
    pub max_age_ms: u64,
    /// Messages stamped further than this in the future are refused (clock skew).
    pub max_skew_ms: u64,
}

impl Default for Freshness {
    /// Two minutes old, thirty seconds ahead: room for a slow link and loose
    /// clocks, while bounding what a replay guard must remember.
    fn default() -> Self {
        Self {
            max_age_ms: 120_000,
            max_skew_ms: 30_000,
        }
    }
}

/// Why an envelope was refused. Each variant is a counted reason in the node's
/// metrics.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EnvelopeError {
    /// Too short to hold a header and a signature.
    #[error("{0} bytes is too short for an envelope")]
    TooShort(usize),
    /// Longer than any message of its kind may be.
    #[error("{kind} envelope of {len} bytes is over its {limit}-byte limit")]
    TooLarge {
        /// The kind claimed.
        kind: Kind,
        /// Envelope length.
        len: usize,
        /// The limit for that kind.
        limit: usize,
    },
    /// A version this code does not speak.
    #[error("unsupported envelope version {0} (this node speaks {PROTOCOL_VERSION})")]
    UnsupportedVersion(u8),
    /// A domain tag no message has.
    #[error("unknown message kind tag {0}")]
    UnknownKind(u8),
    /// A valid kind, but not the one expected here.
    #[error("expected a {expected} message, got {found}")]
    WrongKind {
        /// The kind this context accepts.
        expected: Kind,
        /// The kind received.
        found: Kind,
    },
    /// The body is not a valid encoding of its kind.
    #[error("{kind} body: {source}")]
    Body {
        /// The kind claimed.
        kind: Kind,
        /// The decoding error.
        source: CodecError,
    },
    /// The body decoded but its contents are invalid.
    #[error("{kind} content: {reason}")]
    Content {
        /// The kind claimed.
        kind: Kind,
        /// What is wrong.
        reason: &'static str,
    },
    /// The signature does not verify.
    #[error("bad signature: {0}")]
    BadSignature(SignatureError),
    /// Older than the freshness window.
    #[error("stale message: signed {age_ms} ms ago")]
    Stale {
        /// How old it is.
        age_ms: u64,
    },
    /// Stamped too far in the future.
    #[error("message from the future: {ahead_ms} ms ahead of our clock")]
    FromFuture {
        /// How far ahead.
        ahead_ms: u64,
    },
    /// Seen before.
    #[error("replayed message")]
    Replayed,
    /// The replay guard is full; refusing rather than forgetting (which would
    /// let replays through).
    #[error("too many recent messages; try again shortly")]
    Busy,
    /// This signer sent more messages within the freshness window than its
    /// quota in the replay guard.
    #[error("too many recent messages from this signer; slow down")]
    OverQuota,
}

impl EnvelopeError {
    /// A short stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            EnvelopeError::TooShort(_) => "too_short",
            EnvelopeError::TooLarge { .. } => "too_large",
            EnvelopeError::UnsupportedVersion(_) => "bad_version",
            EnvelopeError::UnknownKind(_) => "unknown_kind",
            EnvelopeError::WrongKind { .. } => "wrong_kind",
            EnvelopeError::Body { .. } => "malformed",
            EnvelopeError::Content { .. } => "bad_content",
            EnvelopeError::BadSignature(_) => "bad_signature",
            EnvelopeError::Stale { .. } => "stale",
            EnvelopeError::FromFuture { .. } => "from_future",
            EnvelopeError::Replayed => "replayed",
            EnvelopeError::Busy => "busy",
            EnvelopeError::OverQuota => "rate_limited",
        }
    }
}

/// Signs and encodes `body` with an explicit timestamp and nonce (tests and
/// replays of a log use this; live code uses [`seal_now`]).
pub fn seal<M: Message>(body: &M, key: &SecretKey, timestamp: Timestamp, nonce: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER_LEN + 64 + SIGNATURE_LEN);
    bytes.push(PROTOCOL_VERSION);
    bytes.push(M::KIND.tag());
    bytes.extend_from_slice(&key.public().0);
    bytes.extend_from_slice(&timestamp.0.to_le_bytes());
    bytes.extend_from_slice(&nonce.to_le_bytes());
    codec::encode_into(body, &mut bytes);
    let signature = key.sign(&signing_payload(M::KIND, &bytes));
    bytes.extend_from_slice(&signature.0);
    bytes
}

/// Signs and encodes `body` stamped with the current time and a random nonce.
pub fn seal_now<M: Message>(body: &M, key: &SecretKey) -> Vec<u8> {
    seal(body, key, Timestamp::now(), OsRng.next_u64())
}

/// Checks an envelope that must carry an `M`, and decodes it. Does not check
/// for replays: see [`Verifier`].
pub fn open<M: Message>(
    bytes: &[u8],
    now: Timestamp,
    freshness: Freshness,
) -> Result<Signed<M>, EnvelopeError> {
    let found = peek_kind(bytes)?;
    if found != M::KIND {
        return Err(EnvelopeError::WrongKind {
            expected: M::KIND,
            found,
        });
    }
    let (header, body) = check(bytes, now, freshness, |body| {
        crate::messages::decode_checked::<M>(body)
    })?;
    Ok(Signed { header, body })
}

/// Checks an envelope of any kind and decodes it. Does not check for replays:
/// see [`Verifier`].
pub fn open_any(
    bytes: &[u8],
    now: Timestamp,
    freshness: Freshness,
) -> Result<Signed<AnyMessage>, EnvelopeError> {
    let kind = peek_kind(bytes)?;
    let (header, body) = check(bytes, now, freshness, |body| {
        AnyMessage::decode_body(kind, body)
    })?;
    Ok(Signed { header, body })
}

/// Reads the version and kind without checking anything else.
pub fn peek_kind(bytes: &[u8]) -> Result<Kind, EnvelopeError> {
    if bytes.len() < HEADER_LEN + SIGNATURE_LEN {
        return Err(EnvelopeError::TooShort(bytes.len()));
    }
    if bytes[0] != PROTOCOL_VERSION {
        return Err(EnvelopeError::UnsupportedVersion(bytes[0]));
    }
    Kind::from_tag(bytes[1]).ok_or(EnvelopeError::UnknownKind(bytes[1]))
}

fn check<T>(
    bytes: &[u8],
    now: Timestamp,
    freshness: Freshness,
    decode: impl FnOnce(&[u8]) -> Result<T, BodyError>,
) -> Result<(Header, T), EnvelopeError> {
    let kind = peek_kind(bytes)?;
    let limit = HEADER_LEN + kind.max_body() + SIGNATURE_LEN;
    if bytes.len() > limit {
        return Err(EnvelopeError::TooLarge {
            kind,
            len: bytes.len(),
            limit,
        });
    }
    let signed_len = bytes.len() - SIGNATURE_LEN;
    let header = Header {
        version: bytes[0],
        kind,
        signer: PublicKey(bytes[2..34].try_into().expect("32 bytes")),
        timestamp: Timestamp(u64::from_le_bytes(
            bytes[34..42].try_into().expect("8 bytes"),
        )),
        nonce: u64::from_le_bytes(bytes[42..50].try_into().expect("8 bytes")),
    };
    let body = decode(&bytes[HEADER_LEN..signed_len]).map_err(|e| match e {
        BodyError::Codec(source) => EnvelopeError::Body { kind, source },
        BodyError::Content(reason) => EnvelopeError::Content { kind, reason },
    })?;
    if header.timestamp > now {
        let ahead_ms = header.timestamp.millis_since(now);
        if ahead_ms > freshness.max_skew_ms {
            return Err(EnvelopeError::FromFuture { ahead_ms });
        }
    } else {
        let age_ms = now.millis_since(header.timestamp);
        if age_ms > freshness.max_age_ms {
            return Err(EnvelopeError::Stale { age_ms });
        }
    }
    let signature = Signature(bytes[signed_len..].try_into().expect("64 bytes"));
    header
        .signer
        .verify(&signing_payload(kind, &bytes[..signed_len]), &signature)
        .map_err(EnvelopeError::BadSignature)?;
    Ok((header, body))
}

fn signing_payload(kind: Kind, signed: &[u8]) -> Vec<u8> {
    let name = kind.name().as_bytes();
    let mut payload = Vec::with_capacity(SIGNING_CONTEXT.len() + name.len() + 1 + signed.len());
    payload.extend_from_slice(SIGNING_CONTEXT);
    payload.extend_from_slice(name);
    payload.push(0);
    payload.extend_from_slice(signed);
    payload
}

/// Remembers recently seen (signer, nonce) pairs so no message is accepted
/// twice, with a quota per signer so that no sender can crowd out another.
///
/// A pair is remembered until its timestamp falls out of the freshness window;
/// after that [`open`] refuses the message as stale anyway. Memory is bounded
/// by `capacity` entries in all, and each signer holds at most `per_signer`:
/// past that its messages are refused ([`EnvelopeError::OverQuota`]) until its
/// own entries expire. When the guard is full, a message from a signer is
/// admitted by forgetting the oldest entry of the signer that holds the most,
/// and only if that one holds more than the newcomer: a flood from many keys
/// costs the flooders, never a signer that sends little.
///
/// Forgetting early lets the heaviest signer's oldest message through a
/// second time. Where the transport authenticates the sender (the
/// distributor checks that the signer is the sending peer) only that signer
/// can resend it, and the resend costs it a request like any other.
#[derive(Debug)]
pub struct ReplayGuard {
    max_age_ms: u64,
    capacity: usize,
    per_signer: usize,
    len: usize,
    /// Each signer's remembered nonces, and the same ordered by expiry.
    signers: HashMap<PublicKey, SignerEntries>,
    /// Every entry by expiry, for forgetting.
    by_expiry: BTreeSet<(Timestamp, PublicKey, u64)>,
    /// Signers by how many entries they hold, heaviest last.
    by_load: BTreeSet<(usize, PublicKey)>,
}

#[derive(Debug, Default)]
struct SignerEntries {
    nonces: HashSet<u64>,
    by_expiry: BTreeSet<(Timestamp, u64)>,
}

impl ReplayGuard {
    /// The default capacity: enough for ~2,000 messages/s over the default
    /// window, a few tens of MB at most.
    pub const DEFAULT_CAPACITY: usize = 1 << 18;
    /// The default quota of one signer: 20 messages/s over the window.
    pub const DEFAULT_PER_SIGNER: usize = 3_000;

    /// A guard for messages accepted under `freshness`, holding at most
    /// `capacity` entries, `per_signer` of them for any one signer.
    pub fn new(freshness: Freshness, capacity: usize, per_signer: usize) -> Self {
        Self {
            max_age_ms: freshness.max_age_ms,
            capacity: capacity.max(1),
            per_signer: per_signer.max(1),
            len: 0,
            signers: HashMap::new(),
            by_expiry: BTreeSet::new(),
            by_load: BTreeSet::new(),
        }
    }

    /// Records the message's (signer, nonce); refuses it if seen before, if
    /// its signer is over its quota, or if the guard is full of entries of
    /// signers holding no more than this one.
    pub fn check(&mut self, header: &Header, now: Timestamp) -> Result<(), EnvelopeError> {
        self.forget_expired(now);
        let signer = header.signer;
        let held = match self.signers.get(&signer) {
            Some(entries) if entries.nonces.contains(&header.nonce) => {
                return Err(EnvelopeError::Replayed);
            }
            Some(entries) => entries.nonces.len(),
            None => 0,
        };
        if held >= self.per_signer {
            return Err(EnvelopeError::OverQuota);
        }
        if self.len >= self.capacity {
            match self.by_load.last() {
                Some(&(load, heaviest)) if load > held + 1 => self.forget_oldest_of(heaviest),
                _ => return Err(EnvelopeError::Busy),
            }
        }
        let expiry = header.timestamp.plus_millis(self.max_age_ms);
        let entries = self.signers.entry(signer).or_default();
        entries.nonces.insert(header.nonce);
        entries.by_expiry.insert((expiry, header.nonce));
        self.by_expiry.insert((expiry, signer, header.nonce));
        self.len += 1;
        self.by_load.remove(&(held, signer));
        self.by_load.insert((held + 1, signer));
        Ok(())
    }

    /// How many messages are remembered now.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The most it remembers at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many messages of `signer` are remembered now.
    pub fn held_by(&self, signer: &PublicKey) -> usize {
        self.signers.get(signer).map_or(0, |e| e.nonces.len())
    }

    fn forget_expired(&mut self, now: Timestamp) {
        while let Some(&(expiry, signer, nonce)) = self.by_expiry.first() {
            if expiry >= now {
                break;
            }
            self.forget(signer, expiry, nonce);
        }
    }

    fn forget_oldest_of(&mut self, signer: PublicKey) {
        let oldest = self
            .signers
            .get(&signer)
            .and_then(|e| e.by_expiry.first().copied());
        if let Some((expiry, nonce)) = oldest {
            self.forget(signer, expiry, nonce);
        }
    }

    fn forget(&mut self, signer: PublicKey, expiry: Timestamp, nonce: u64) {
        self.by_expiry.remove(&(expiry, signer, nonce));
        let Some(entries) = self.signers.get_mut(&signer) else {
            return;
        };
        let held = entries.nonces.len();
        if !entries.nonces.remove(&nonce) {
            return;
        }
        entries.by_expiry.remove(&(expiry, nonce));
        self.len -= 1;
        self.by_load.remove(&(held, signer));
        if held > 1 {
            self.by_load.insert((held - 1, signer));
        } else {
            self.signers.remove(&signer);
        }
    }
}

/// Everything a receiver checks: envelope, freshness, signature and replays.
#[derive(Debug)]
pub struct Verifier {
    freshness: Freshness,
    replays: ReplayGuard,
}

impl Verifier {
    /// A verifier with the given freshness window and replay guard limits.
    pub fn new(freshness: Freshness, replay_capacity: usize, per_signer: usize) -> Self {
        Self {
            freshness,
            replays: ReplayGuard::new(freshness, replay_capacity, per_signer),
        }
    }

    /// Opens an envelope that must carry an `M`, refusing replays.
    pub fn open<M: Message>(
        &mut self,
        bytes: &[u8],
        now: Timestamp,
    ) -> Result<Signed<M>, EnvelopeError> {
        let signed = open::<M>(bytes, now, self.freshness)?;
        self.replays.check(&signed.header, now)?;
        Ok(signed)
    }

    /// Opens an envelope of any kind, refusing replays.
    pub fn open_any(
        &mut self,
        bytes: &[u8],
        now: Timestamp,
    ) -> Result<Signed<AnyMessage>, EnvelopeError> {
        let signed = open_any(bytes, now, self.freshness)?;
        self.replays.check(&signed.header, now)?;
        Ok(signed)
    }
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new(
            Freshness::default(),
            ReplayGuard::DEFAULT_CAPACITY,
            ReplayGuard::DEFAULT_PER_SIGNER,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{BatchId, CircuitId, JobId};
    use crate::messages::{JobRequest, Release};

    fn key() -> SecretKey {
        SecretKey::from_seed([7; 32])
    }

    fn request() -> JobRequest {
        JobRequest {
            circuits: vec![CircuitId::new("transfer-d4-k1").unwrap()],
        }
    }

    const T: Timestamp = Timestamp(1_700_000_000_000);

    #[test]
    fn seal_then_open() {
        let bytes = seal(&request(), &key(), T, 42);
        let signed = open::<JobRequest>(&bytes, T, Freshness::default()).unwrap();
        assert_eq!(signed.body, request());
        assert_eq!(signed.signer(), key().public());
        assert_eq!(signed.header.nonce, 42);
        let any = open_any(&bytes, T, Freshness::default()).unwrap();
        assert_eq!(any.body, AnyMessage::JobRequest(request()));
    }

    #[test]
    fn wrong_kind_version_and_length() {
        let bytes = seal(&request(), &key(), T, 1);
        assert_eq!(
            open::<Release>(&bytes, T, Freshness::default()),
            Err(EnvelopeError::WrongKind {
                expected: Kind::Release,
                found: Kind::JobRequest
            })
        );
        for version in [PROTOCOL_VERSION - 1, PROTOCOL_VERSION + 1] {
            let mut other = bytes.clone();
            other[0] = version;
            assert_eq!(
                open_any(&other, T, Freshness::default()),
                Err(EnvelopeError::UnsupportedVersion(version))
            );
        }
        let mut unknown = bytes.clone();
        unknown[1] = 200;
        assert_eq!(
            open_any(&unknown, T, Freshness::default()),
            Err(EnvelopeError::UnknownKind(200))
        );
        assert_eq!(
            open_any(&bytes[..20], T, Freshness::default()),
            Err(EnvelopeError::TooShort(20))
        );
        let mut huge = bytes.clone();
        huge.resize(HEADER_LEN + JobRequest::MAX_BODY + SIGNATURE_LEN + 1, 0);
        assert!(matches!(
            open_any(&huge, T, Freshness::default()),
            Err(EnvelopeError::TooLarge { .. })
        ));
    }

    #[test]
    fn freshness_window() {
        let f = Freshness::default();
        let bytes = seal(&request(), &key(), T, 1);
        assert!(open_any(&bytes, T.plus_millis(f.max_age_ms), f).is_ok());
        assert_eq!(
            open_any(&bytes, T.plus_millis(f.max_age_ms + 1), f),
            Err(EnvelopeError::Stale {
                age_ms: f.max_age_ms + 1
            })
        );
        let early = Timestamp(T.0 - f.max_skew_ms - 1);
        assert_eq!(
            open_any(&bytes, early, f),
            Err(EnvelopeError::FromFuture {
                ahead_ms: f.max_skew_ms + 1
            })
        );
    }

    #[test]
    fn forged_signer_is_refused() {
        let mut bytes = seal(&request(), &key(), T, 1);
        let other = SecretKey::from_seed([8; 32]).public();
        bytes[2..34].copy_from_slice(&other.0);
        assert!(matches!(
            open_any(&bytes, T, Freshness::default()),
            Err(EnvelopeError::BadSignature(_))
        ));
    }

    #[test]
    fn bad_content_is_refused_after_decoding() {
        let release = Release {
            job: JobId::new(BatchId(1), 0),
            request: crate::ids::RequestId(1),
        };
        assert!(open::<Release>(&seal(&release, &key(), T, 1), T, Freshness::default()).is_ok());
        let empty = JobRequest {
            circuits: vec![CircuitId::new("a").unwrap(); 17],
        };
        assert!(matches!(
            open_any(&seal(&empty, &key(), T, 1), T, Freshness::default()),
            Err(EnvelopeError::Content { .. })
        ));
    }

    #[test]
    fn replays_are_refused_until_stale() {
        let f = Freshness {
            max_age_ms: 1_000,
            max_skew_ms: 1_000,
        };
        let mut verifier = Verifier::new(f, 16, 16);
        let bytes = seal(&request(), &key(), T, 5);
        assert!(verifier.open::<JobRequest>(&bytes, T).is_ok());
        assert_eq!(
            verifier.open::<JobRequest>(&bytes, T.plus_millis(999)),
            Err(EnvelopeError::Replayed)
        );
        // Same nonce from another signer is a different message.
        let other = seal(&request(), &SecretKey::from_seed([9; 32]), T, 5);
        assert!(verifier.open::<JobRequest>(&other, T).is_ok());
        // Once stale, the envelope check refuses it and the guard forgets it.
        assert!(matches!(
            verifier.open::<JobRequest>(&bytes, T.plus_millis(1_001)),
            Err(EnvelopeError::Stale { .. })
        ));
        let later = seal(&request(), &key(), T.plus_millis(5_000), 6);
        assert!(
            verifier
                .open::<JobRequest>(&later, T.plus_millis(5_000))
                .is_ok()
        );
        assert_eq!(verifier.replays.len(), 1);
    }

    fn header(signer: &SecretKey, nonce: u64) -> Header {
        Header {
            version: 1,
            kind: Kind::JobRequest,
            signer: signer.public(),
            timestamp: T,
            nonce,
        }
    }

    #[test]
    fn a_full_guard_refuses_rather_than_forget_an_equal_signer() {
        let mut guard = ReplayGuard::new(Freshness::default(), 2, 10);
        assert!(guard.check(&header(&key(), 1), T).is_ok());
        assert!(guard.check(&header(&key(), 2), T).is_ok());
        assert_eq!(guard.check(&header(&key(), 3), T), Err(EnvelopeError::Busy));
        assert_eq!(
            guard.check(&header(&key(), 1), T),
            Err(EnvelopeError::Replayed)
        );
    }

    #[test]
    fn a_signer_over_its_quota_is_refused_and_others_are_not() {
        let flooder = SecretKey::from_seed([11; 32]);
        let mut guard = ReplayGuard::new(Freshness::default(), 1_000, 3);
        for nonce in 0..3 {
            assert!(guard.check(&header(&flooder, nonce), T).is_ok());
        }
        assert_eq!(
            guard.check(&header(&flooder, 3), T),
            Err(EnvelopeError::OverQuota)
        );
        assert!(guard.check(&header(&key(), 3), T).is_ok());
        // Its quota frees as its own entries expire.
        let later = T.plus_millis(Freshness::default().max_age_ms + 1);
        assert!(
            guard
                .check(
                    &Header {
                        timestamp: later,
                        ..header(&flooder, 4)
                    },
                    later
                )
                .is_ok()
        );
        assert_eq!(guard.held_by(&flooder.public()), 1);
    }

    #[test]
    fn a_full_guard_forgets_the_heaviest_signer_for_a_light_one() {
        // Many flooders fill the guard; a quiet signer still gets in, at the
        // cost of the heaviest flooder's oldest entry.
        let mut guard = ReplayGuard::new(Freshness::default(), 100, 40);
        let flooders: Vec<SecretKey> = (0..5).map(|i| SecretKey::from_seed([20 + i; 32])).collect();
        for (i, f) in flooders.iter().enumerate() {
            for nonce in 0..(16 + i as u64) {
                let _ = guard.check(&header(f, nonce), T);
            }
        }
        assert_eq!(guard.len(), 90);
        for nonce in 0..20 {
            let _ = guard.check(&header(&flooders[4], 100 + nonce), T);
        }
        assert_eq!(guard.len(), 100);
        let quiet = SecretKey::from_seed([50; 32]);
        for nonce in 0..10 {
            assert!(guard.check(&header(&quiet, nonce), T).is_ok(), "{nonce}");
        }
        assert_eq!(guard.len(), 100);
        assert_eq!(guard.held_by(&quiet.public()), 10);
        // The heaviest flooder paid: it held 30, now 20.
        assert_eq!(guard.held_by(&flooders[4].public()), 20);
        // Every other flooder kept all it had.
        assert_eq!(guard.held_by(&flooders[0].public()), 16);
    }
}
