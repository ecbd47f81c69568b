//! The byte encoding every CrowdProve message and record uses: bincode 2 with
//! fixed-width little-endian integers, a size limit on every decode, and no
//! trailing bytes.
//!
//! bincode does not describe itself, so what is decoded must already be known
//! from context: the [envelope](crate::envelope) carries a version byte and a
//! domain tag for that.

use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

/// The hard ceiling on any single decode, whatever the caller's limit.
pub const MAX_DECODE_BYTES: usize = 8 << 20;

type Config = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Fixint,
    bincode::config::Limit<MAX_DECODE_BYTES>,
>;

const CONFIG: Config = bincode::config::standard()
    .with_little_endian()
    .with_fixed_int_encoding()
    .with_limit::<MAX_DECODE_BYTES>();

/// The ceiling for a record a node reads back from its own storage (a
/// rollup state of a million accounts, a scheduler snapshot): far above
/// anything the network may send, so never used for network bytes.
pub const MAX_STORED_BYTES: usize = 1 << 30;

type StoredConfig = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Fixint,
    bincode::config::Limit<MAX_STORED_BYTES>,
>;

const STORED: StoredConfig = bincode::config::standard()
    .with_little_endian()
    .with_fixed_int_encoding()
    .with_limit::<MAX_STORED_BYTES>();

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    /// The input is longer than the limit for what it claims to be.
    #[error("{len} bytes is over the {limit}-byte limit")]
    TooLarge {
        /// Bytes offered.
        len: usize,
        /// The limit that applies.
        limit: usize,
    },
    /// The value decoded but bytes were left over.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    /// The bytes are not a valid encoding of the expected type.
    #[error("malformed encoding: {0}")]
    Malformed(String),
}

/// Encodes `value`. Encoding our own types cannot fail, short of a bug.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, CONFIG).expect("encoding to a Vec cannot fail")
}

/// Appends the encoding of `value` to `out`.
pub fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    out.extend_from_slice(&encode(value));
}

/// Encodes a record for this node's own storage; [`decode_stored`] reads it.
/// The bytes are those [`encode`] writes: only the decode limit differs.
pub fn encode_stored<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, STORED).expect("encoding to a Vec cannot fail")
}

/// Decodes a record this node wrote to its own storage, which may be at most
/// `limit` (capped at [`MAX_STORED_BYTES`]) long. Never for network bytes:
/// those go through [`decode`] and its 8 MiB ceiling.
pub fn decode_stored<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, CodecError> {
    decode_with(bytes, limit.min(MAX_STORED_BYTES), STORED)
}

/// Decodes exactly one `T` from `bytes`, which may be at most `limit` long.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, CodecError> {
    decode_with(bytes, limit.min(MAX_DECODE_BYTES), CONFIG)
}

/// Decodes exactly one `T` of at most `limit` bytes under `config`.
fn decode_with<T: DeserializeOwned>(
    bytes: &[u8],
    limit: usize,
    config: impl bincode::config::Config,
) -> Result<T, CodecError> {
    if bytes.len() > limit {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            limit,
        });
    }
    let (value, used) = bincode::serde::decode_from_slice(bytes, config)
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes(bytes.len() - used));
    }
    Ok(value)
}

/// `#[serde(with = "codec::bytes")]` for `Vec<u8>` fields: the same bytes on
/// the wire as a plain `Vec<u8>` (a `u64` length, then the bytes), but copied
/// in one go instead of element by element, which matters for witnesses and
/// key chunks.
pub mod bytes {
    use std::fmt;

    use serde::de::{SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    /// Writes the bytes as one length-prefixed block.
    pub fn serialize<S: Serializer>(value: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(value)
    }

    /// Reads one length-prefixed block.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        deserializer.deserialize_byte_buf(BytesVisitor)
    }

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(byte) = seq.next_element()? {
                out.push(byte);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        a: u32,
        b: Vec<u8>,
        c: Option<bool>,
    }

    #[test]
    fn stored_records_may_pass_the_network_ceiling_and_encode_the_same() {
        let big = vec![7u8; MAX_DECODE_BYTES + 1024];
        let bytes = encode_stored(&big);
        assert!(
            decode::<Vec<u8>>(&bytes, usize::MAX).is_err(),
            "over the network ceiling"
        );
        let back: Vec<u8> = decode_stored(&bytes, usize::MAX).unwrap();
        assert_eq!(back, big);
        // Small records read back the same either way.
        let small = encode_stored(&(1u32, vec![1u8, 2]));
        assert_eq!(small, encode(&(1u32, vec![1u8, 2])));
        assert_eq!(
            decode::<(u32, Vec<u8>)>(&small, 64).unwrap(),
            (1, vec![1, 2])
        );
        assert!(matches!(
            decode_stored::<Vec<u8>>(&bytes, 16),
            Err(CodecError::TooLarge { .. })
        ));
    }

    #[test]
    fn round_trip_and_rejections() {
        let s = Sample {
            a: 7,
            b: vec![1, 2, 3],
            c: Some(true),
        };
        let bytes = encode(&s);
        assert_eq!(decode::<Sample>(&bytes, 100), Ok(s));

        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            decode::<Sample>(&long, 100),
            Err(CodecError::TrailingBytes(1))
        );
        assert!(matches!(
            decode::<Sample>(&bytes, 4),
            Err(CodecError::TooLarge { .. })
        ));
        assert!(matches!(
            decode::<Sample>(&bytes[..5], 100),
            Err(CodecError::Malformed(_))
        ));
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Blob {
        #[serde(with = "super::bytes")]
        data: Vec<u8>,
    }

    #[test]
    fn byte_blocks_match_plain_vec_encoding() {
        let data: Vec<u8> = (0..=255).collect();
        let blob = Blob { data: data.clone() };
        let bytes = encode(&blob);
        assert_eq!(bytes, encode(&data));
        assert_eq!(decode::<Blob>(&bytes, 1000), Ok(blob));
        // a length that claims more than is there
        let mut short = bytes.clone();
        short.truncate(100);
        assert!(matches!(
            decode::<Blob>(&short, 1000),
            Err(CodecError::Malformed(_))
        ));
        let mut huge = u64::MAX.to_le_bytes().to_vec();
        huge.push(1);
        assert!(matches!(
            decode::<Blob>(&huge, 1000),
            Err(CodecError::Malformed(_))
        ));
    }

    #[test]
    fn huge_claimed_lengths_fail_cleanly() {
        // a Vec length of 2^64-1 followed by nothing
        let mut bytes = 7u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            decode::<Sample>(&bytes, 100),
            Err(CodecError::Malformed(_))
        ));
    }

    #[test]
    fn invalid_bool_and_option_tags_are_rejected() {
        let mut bytes = encode(&Sample {
            a: 1,
            b: vec![],
            c: Some(true),
        });
        let n = bytes.len();
        bytes[n - 1] = 2; // bool must be 0 or 1
        assert!(decode::<Sample>(&bytes, 100).is_err());
        bytes[n - 2] = 2; // option tag must be 0 or 1
        assert!(decode::<Sample>(&bytes, 100).is_err());
    }
}
