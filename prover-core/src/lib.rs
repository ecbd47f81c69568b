//! CrowdProve's proving work: the reference transfer-rollup circuit, Groth16
//! key generation, proving, verification and batch verification over BN254.
//!
//! Knows nothing of networking: the network carries a circuit id and opaque
//! witness bytes, and this crate maps them to circuits.
