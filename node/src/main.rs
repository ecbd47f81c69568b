//! `crowdprove`: one binary for both sides of the network.
fn main() {}
