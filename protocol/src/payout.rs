//! A prover's payout address and its signed binding.
//!
//! A prover names the Ethereum address its pay goes to and signs the
//! binding with its node key. The binding travels with its proof
//! submissions; the distributor records it in the ledger (`BindPayout`),
//! whose balance leaf commits to the address, so the payout contract pays
//! nowhere else and nobody but the prover can redirect its pay.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::hex;
use crate::identity::{PublicKey, SecretKey, Signature};

/// Domain tag prefixed to a binding's signed bytes, so a prover's signature
/// over anything else (an envelope, a job request) never binds an address.
pub const BINDING_DOMAIN: &[u8] = b"crowdprove/payout-binding/v1\0";

/// An Ethereum address (20 bytes) a prover is paid at.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct PayoutAddress(pub [u8; 20]);

impl PayoutAddress {
    /// The zero address: no address bound.
    pub const UNBOUND: Self = Self([0; 20]);

    /// Whether this is the zero address.
    pub fn is_unbound(&self) -> bool {
        *self == Self::UNBOUND
    }
}

impl fmt::Display for PayoutAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(&self.0))
    }
}

impl fmt::Debug for PayoutAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a payout address did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayoutAddressError {
    /// Not `0x` followed by 40 hex digits.
    #[error("a payout address is 0x followed by 40 hex digits, not {0:?}")]
    Malformed(String),
    /// The zero address, which would burn the pay.
    #[error("the zero address cannot be a payout address")]
    Zero,
}

impl FromStr for PayoutAddress {
    type Err = PayoutAddressError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let malformed = || PayoutAddressError::Malformed(text.to_string());
        let digits = text.strip_prefix("0x").ok_or_else(malformed)?;
        let address = Self(hex::decode_array(digits).map_err(|_| malformed())?);
        if address.is_unbound() {
            return Err(PayoutAddressError::Zero);
        }
        Ok(address)
    }
}

/// A prover's signed word that its pay goes to `address`.
///
/// `seq` orders a prover's bindings: the ledger records a binding only if its
/// `seq` is above the one it holds, so an old binding replayed never moves
/// the pay back. A prover uses the time it signed (ms since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutBinding {
    /// Where the prover's pay goes.
    pub address: PayoutAddress,
    /// Orders the prover's bindings; higher wins.
    pub seq: u64,
    /// The prover's signature over [`PayoutBinding::signing_bytes`].
    pub signature: Signature,
}

impl PayoutBinding {
    /// `address` bound by `key` with sequence number `seq`.
    pub fn signed(key: &SecretKey, address: PayoutAddress, seq: u64) -> Self {
        let signature = key.sign(&Self::signing_bytes(&key.public(), &address, seq));
        Self {
            address,
            seq,
            signature,
        }
    }

    /// The domain-separated bytes a prover signs: the tag, then the encoded
    /// (prover, address, seq).
    pub fn signing_bytes(prover: &PublicKey, address: &PayoutAddress, seq: u64) -> Vec<u8> {
        let mut bytes = BINDING_DOMAIN.to_vec();
        codec::encode_into(&(prover, address, seq), &mut bytes);
        bytes
    }

    /// Whether `prover` signed this binding, and it binds a real address.
    pub fn check(&self, prover: &PublicKey) -> Result<(), &'static str> {
        if self.address.is_unbound() {
            return Err("payout binding names the zero address");
        }
        let message = Self::signing_bytes(prover, &self.address, self.seq);
        prover
            .verify(&message, &self.signature)
            .map_err(|_| "payout binding is not signed by the prover")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_with_0x_and_40_hex_digits_and_never_zero() {
        let text = "0x00112233445566778899aabbccddeeff00112233";
        let address: PayoutAddress = text.parse().unwrap();
        assert_eq!(address.to_string(), text);
        // Checksummed (mixed-case) addresses parse too.
        let mixed: PayoutAddress = "0x00112233445566778899AaBbCcDdEeFf00112233"
            .parse()
            .unwrap();
        assert_eq!(mixed, address);
        for bad in ["00112233445566778899aabbccddeeff00112233", "0x1234", "0xzz"] {
            assert!(matches!(
                bad.parse::<PayoutAddress>(),
                Err(PayoutAddressError::Malformed(_))
            ));
        }
        assert_eq!(
            format!("0x{}", "0".repeat(40)).parse::<PayoutAddress>(),
            Err(PayoutAddressError::Zero)
        );
    }

    #[test]
    fn a_binding_verifies_only_for_its_prover_address_and_seq() {
        let key = SecretKey::from_seed([1; 32]);
        let address = PayoutAddress([0xab; 20]);
        let binding = PayoutBinding::signed(&key, address, 7);
        assert_eq!(binding.check(&key.public()), Ok(()));
        let other = SecretKey::from_seed([2; 32]).public();
        assert!(binding.check(&other).is_err(), "another prover's key");
        let mut moved = binding.clone();
        moved.address = PayoutAddress([0xcd; 20]);
        assert!(moved.check(&key.public()).is_err(), "a changed address");
        let mut renumbered = binding.clone();
        renumbered.seq = 8;
        assert!(renumbered.check(&key.public()).is_err(), "a changed seq");
        let zero = PayoutBinding::signed(&key, PayoutAddress::UNBOUND, 9);
        assert!(zero.check(&key.public()).is_err(), "the zero address");
    }
}
