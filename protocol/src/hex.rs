//! Lower-case hexadecimal, for keys, hashes and ids shown to people.

use thiserror::Error;

/// Why a hex string did not decode.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HexError {
    /// The string has an odd number of digits.
    #[error("odd number of hex digits ({0})")]
    OddLength(usize),
    /// A character is not a hex digit.
    #[error("invalid hex digit {0:?} at position {1}")]
    InvalidDigit(char, usize),
    /// The decoded length is not the one expected.
    #[error("expected {expected} bytes, found {found}")]
    WrongLength {
        /// Bytes expected.
        expected: usize,
        /// Bytes found.
        found: usize,
    },
}

/// Encodes bytes as lower-case hex.
pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

/// Decodes hex (either case) into bytes.
pub fn decode(text: &str) -> Result<Vec<u8>, HexError> {
    if !text.len().is_multiple_of(2) {
        return Err(HexError::OddLength(text.len()));
    }
    let digit = |i: usize, c: u8| -> Result<u8, HexError> {
        (c as char)
            .to_digit(16)
            .map(|d| d as u8)
            .ok_or(HexError::InvalidDigit(c as char, i))
    };
    text.as_bytes()
        .chunks(2)
        .enumerate()
        .map(|(i, pair)| Ok(digit(2 * i, pair[0])? << 4 | digit(2 * i + 1, pair[1])?))
        .collect()
}

/// Decodes hex into exactly `N` bytes.
pub fn decode_array<const N: usize>(text: &str) -> Result<[u8; N], HexError> {
    let bytes = decode(text)?;
    bytes
        .try_into()
        .map_err(|v: Vec<u8>| HexError::WrongLength {
            expected: N,
            found: v.len(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let bytes = [0u8, 1, 0x7f, 0x80, 0xff];
        assert_eq!(encode(&bytes), "00017f80ff");
        assert_eq!(decode("00017F80ff").unwrap(), bytes);
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(decode("abc"), Err(HexError::OddLength(3)));
        assert_eq!(decode("0g"), Err(HexError::InvalidDigit('g', 1)));
        assert!(matches!(
            decode_array::<2>("00"),
            Err(HexError::WrongLength {
                expected: 2,
                found: 1
            })
        ));
    }
}
