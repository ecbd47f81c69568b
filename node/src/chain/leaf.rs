//! The balance leaf a prover claims its pay with on chain.
//!
//! Its data is `prover key (32) ‖ balance (u64 big-endian, 8) ‖ payout
//! address (20)`, hashed as a leaf of [`ledger::merkle`]'s tree
//! (SHA-256 of `0x00 ‖ data`); `contracts/Payouts.sol` hashes the same bytes.

use alloy::primitives::Address;
use ledger::merkle::leaf_hash;
use protocol::ContentHash;
use protocol::identity::PublicKey;

/// Bytes of a balance leaf's data.
pub const BALANCE_LEAF_BYTES: usize = 32 + 8 + 20;

/// The data of `prover`'s balance leaf.
pub fn balance_leaf_data(
    prover: &PublicKey,
    balance: u64,
    payout: Address,
) -> [u8; BALANCE_LEAF_BYTES] {
    let mut data = [0u8; BALANCE_LEAF_BYTES];
    data[..32].copy_from_slice(&prover.0);
    data[32..40].copy_from_slice(&balance.to_be_bytes());
    data[40..].copy_from_slice(payout.as_slice());
    data
}

/// The leaf hash of `prover`'s balance `balance`, paid to `payout`.
pub fn balance_leaf(prover: &PublicKey, balance: u64, payout: Address) -> ContentHash {
    leaf_hash(&balance_leaf_data(prover, balance, payout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leaf_data_is_key_then_big_endian_balance_then_address() {
        let payout = Address::repeat_byte(0xab);
        let data = balance_leaf_data(&PublicKey([7; 32]), 0x0102_0304_0506_0708, payout);
        assert_eq!(&data[..32], &[7; 32]);
        assert_eq!(&data[32..40], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&data[40..], &[0xab; 20]);
        let mut prefixed = vec![ledger::merkle::LEAF_PREFIX];
        prefixed.extend_from_slice(&data);
        assert_eq!(
            balance_leaf(&PublicKey([7; 32]), 0x0102_0304_0506_0708, payout),
            ContentHash::of(&prefixed)
        );
    }
}
