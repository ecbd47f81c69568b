//! `Settlement` and `Payouts`, generated from `contracts/out/*.json`.
//!
//! Each module holds the contract's calls, events, custom errors (as
//! `SettlementErrors` / `PayoutsErrors`, for decoding reverts), its
//! bytecode and an `…Instance` to call a deployed contract through a
//! provider.
#![allow(missing_docs, unreachable_pub, clippy::too_many_arguments)]

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    Settlement,
    "../contracts/out/Settlement.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    Payouts,
    "../contracts/out/Payouts.json"
);
