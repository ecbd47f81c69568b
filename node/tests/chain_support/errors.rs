//! The contracts' custom errors by name.

use alloy::primitives::{Address, U256};
use node::chain::Payouts::{self, PayoutsErrors};
use node::chain::Settlement::{self, SettlementErrors};
use protocol::identity::PublicKey;

pub fn gap(expected: u64, got: u64) -> SettlementErrors {
    SettlementErrors::BatchGap(Settlement::BatchGap { expected, got })
}
pub fn replayed(expected: u64, got: u64) -> SettlementErrors {
    SettlementErrors::BatchReplayed(Settlement::BatchReplayed { expected, got })
}
pub fn wrong_old_root(expected: U256, got: U256) -> SettlementErrors {
    SettlementErrors::WrongOldRoot(Settlement::WrongOldRoot { expected, got })
}
pub fn broken_chain(chunk: u64) -> SettlementErrors {
    SettlementErrors::BrokenChain(Settlement::BrokenChain {
        chunk: U256::from(chunk),
    })
}
pub fn invalid() -> SettlementErrors {
    SettlementErrors::InvalidProof(Settlement::InvalidProof {})
}
pub fn malformed(chunk: u64) -> SettlementErrors {
    SettlementErrors::MalformedProof(Settlement::MalformedProof {
        chunk: U256::from(chunk),
    })
}
pub fn not_in_field(chunk: u64, index: u64) -> SettlementErrors {
    SettlementErrors::InputNotInField(Settlement::InputNotInField {
        chunk: U256::from(chunk),
        index: U256::from(index),
    })
}
pub fn wrong_count(expected: usize, got: usize) -> SettlementErrors {
    SettlementErrors::WrongInputCount(Settlement::WrongInputCount {
        expected: U256::from(expected),
        got: U256::from(got),
    })
}
pub fn no_chunks() -> SettlementErrors {
    SettlementErrors::NoChunks(Settlement::NoChunks {})
}

pub fn anchor_out_of_order(expected: u64, got: u64) -> PayoutsErrors {
    PayoutsErrors::AnchorOutOfOrder(Payouts::AnchorOutOfOrder { expected, got })
}
pub fn anchor_range_mismatch(hashes: u64, roots: u64) -> PayoutsErrors {
    PayoutsErrors::AnchorRangeMismatch(Payouts::AnchorRangeMismatch {
        hashes: U256::from(hashes),
        roots: U256::from(roots),
    })
}
pub fn not_operator(caller: Address) -> PayoutsErrors {
    PayoutsErrors::NotOperator(Payouts::NotOperator { caller })
}
pub fn height_not_anchored(height: u64) -> PayoutsErrors {
    PayoutsErrors::HeightNotAnchored(Payouts::HeightNotAnchored { height })
}
pub fn invalid_balance_proof() -> PayoutsErrors {
    PayoutsErrors::InvalidBalanceProof(Payouts::InvalidBalanceProof {})
}
pub fn payout_unbound(prover: PublicKey) -> PayoutsErrors {
    PayoutsErrors::PayoutUnbound(Payouts::PayoutUnbound {
        proverKey: prover.0.into(),
    })
}
pub fn nothing_to_claim(prover: PublicKey, balance: u64, already_paid: u64) -> PayoutsErrors {
    PayoutsErrors::NothingToClaim(Payouts::NothingToClaim {
        proverKey: prover.0.into(),
        balance,
        alreadyPaid: already_paid,
    })
}
pub fn payout_failed(payout: Address, amount: u64) -> PayoutsErrors {
    PayoutsErrors::PayoutFailed(Payouts::PayoutFailed { payout, amount })
}
