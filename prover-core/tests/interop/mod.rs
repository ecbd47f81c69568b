//! The ecosystem's verifiers, run on our proofs' snarkjs files: `snarkjs
//! groth16 verify`, and snarkjs's Solidity verifier compiled with solc and
//! executed in an EVM (`scripts/circom-tools/evm-verifier.mjs`). Shared by
//! prover-core's and the node's tests; the tools come from `scripts/setup
//! --tests`, and a test fails, never skips, without them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn tools() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/circom-tools")
}

/// The snarkjs command line.
pub(crate) fn snarkjs() -> PathBuf {
    let path = tools().join("node_modules/.bin/snarkjs");
    assert!(
        path.exists(),
        "{} not found: the interop tests run snarkjs; run scripts/setup --tests",
        path.display()
    );
    path
}

/// The proof's files in `dir`.
fn files(dir: &Path) -> [PathBuf; 3] {
    ["verification_key.json", "public.json", "proof.json"].map(|f| dir.join(f))
}

/// Whether `snarkjs groth16 verify` accepts the three files in `dir`.
pub(crate) fn snarkjs_accepts(dir: &Path) -> bool {
    let out = Command::new(snarkjs())
        .args(["groth16", "verify"])
        .args(files(dir))
        .output()
        .unwrap();
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("OK!")
}

/// What the Solidity verifier of `dir`'s verification key answered for its
/// proof in the EVM: whether it returned true, and the call's gas.
pub(crate) fn evm_verifies(dir: &Path) -> (bool, u64) {
    snarkjs(); // the same install
    let [vk, public, proof] = files(dir);
    let out = Command::new("node")
        .arg(tools().join("evm-verifier.mjs"))
        .arg("verify")
        .args([vk, proof, public])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "evm-verifier failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        answer["valid"].as_bool().unwrap(),
        answer["gas"].as_u64().unwrap(),
    )
}

/// Adds 1 to the last public signal in `dir`'s `public.json`.
pub(crate) fn tamper_public(dir: &Path) {
    let path = dir.join("public.json");
    let mut public: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let last = public.last_mut().unwrap();
    // Decimal +1 without a big-integer crate.
    let mut digits: Vec<u8> = last.bytes().map(|b| b - b'0').collect();
    let mut i = digits.len();
    loop {
        if i == 0 {
            digits.insert(0, 1);
            break;
        }
        i -= 1;
        if digits[i] == 9 {
            digits[i] = 0;
        } else {
            digits[i] += 1;
            break;
        }
    }
    *last = digits.iter().map(|d| (d + b'0') as char).collect();
    std::fs::write(&path, serde_json::to_string(&public).unwrap()).unwrap();
}
