//! What the chain tests share: an anvil process per test, the proof
//! fixtures (made once per test binary), calldata tampering, balance trees
//! and the contracts' custom errors by name.

#![allow(dead_code, unreachable_pub)]

mod anvil;
mod errors;
mod fixtures;
mod payouts;
mod tamper;

pub use anvil::{Anvil, Dyn};
pub use errors::*;
pub use fixtures::{circom_fixture, transfer_fixture};
pub use payouts::*;
pub use tamper::*;
