//! Export in snarkjs's JSON formats, so `snarkjs groth16 verify
//! verification_key.json public.json proof.json` can check our proofs.
//!
//! Points are affine with decimal coordinates and a trailing projective `z`
//! (`"1"`, or `["1","0"]` in G2); G2 coordinates are `[c0, c1]`. The curve is
//! named `bn128`, as snarkjs calls BN254.

use std::path::Path;

use ark_bn254::{Bn254, Fq, G1Affine, G2Affine};
use ark_ec::AffineRepr;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::keys::VerifyingKey;
use crate::prove::{Proof, Statement};

fn fq(x: &Fq) -> Value {
    Value::String(x.to_string())
}

fn g1(p: &G1Affine) -> Value {
    match p.xy() {
        Some((x, y)) => json!([fq(&x), fq(&y), "1"]),
        None => json!(["0", "1", "0"]),
    }
}

fn g2(p: &G2Affine) -> Value {
    match p.xy() {
        Some((x, y)) => json!([[fq(&x.c0), fq(&x.c1)], [fq(&y.c0), fq(&y.c1)], ["1", "0"]]),
        None => json!([["0", "0"], ["1", "0"], ["0", "0"]]),
    }
}

/// `verification_key.json`.
pub fn verification_key_json(vk: &VerifyingKey) -> Value {
    ark_verification_key_json(&vk.inner)
}

/// `verification_key.json` of any Groth16 verifying key over BN254.
pub fn ark_verification_key_json(k: &ark_groth16::VerifyingKey<Bn254>) -> Value {
    json!({
        "protocol": "groth16",
        "curve": "bn128",
        "nPublic": k.gamma_abc_g1.len() - 1,
        "vk_alpha_1": g1(&k.alpha_g1),
        "vk_beta_2": g2(&k.beta_g2),
        "vk_gamma_2": g2(&k.gamma_g2),
        "vk_delta_2": g2(&k.delta_g2),
        "IC": k.gamma_abc_g1.iter().map(g1).collect::<Vec<_>>(),
    })
}

/// `proof.json`.
pub fn proof_json(proof: &Proof) -> Value {
    json!({
        "pi_a": g1(&proof.0.a),
        "pi_b": g2(&proof.0.b),
        "pi_c": g1(&proof.0.c),
        "protocol": "groth16",
        "curve": "bn128",
    })
}

/// `public.json`: the public inputs as decimal strings, in circuit order.
pub fn public_json(public: &(impl Statement + ?Sized)) -> Result<Value> {
    Ok(Value::Array(
        public
            .field_elements()?
            .iter()
            .map(|x| Value::String(x.to_string()))
            .collect(),
    ))
}

/// The names of a proof's snarkjs files, and their keys in a bundle.
const FILES: [(&str, &str); 3] = [
    ("verification_key", "verification_key.json"),
    ("proof", "proof.json"),
    ("public", "public.json"),
];

/// One proof's three snarkjs files as one document: `{"verification_key":
/// …, "proof": …, "public": …}`. A distributor's `GET /proofs/<job>` answers
/// with it; [`write_bundle`] writes the files.
pub fn proof_bundle(
    vk: &VerifyingKey,
    public: &(impl Statement + ?Sized),
    proof: &Proof,
) -> Result<Value> {
    Ok(json!({
        "verification_key": verification_key_json(vk),
        "proof": proof_json(proof),
        "public": public_json(public)?,
    }))
}

/// Writes a [`proof_bundle`] as `verification_key.json`, `proof.json` and
/// `public.json` into `dir`.
pub fn write_bundle(dir: impl AsRef<Path>, bundle: &Value) -> Result<()> {
    for (key, name) in FILES {
        let path = dir.as_ref().join(name);
        let value = bundle
            .get(key)
            .ok_or_else(|| Error::MalformedProof(format!("the proof document has no {key:?}")))?;
        let text = serde_json::to_string_pretty(value).expect("JSON values always serialise");
        std::fs::write(&path, text).map_err(|source| Error::Io { path, source })?;
    }
    Ok(())
}

/// Writes `verification_key.json`, `proof.json` and `public.json` of one
/// proof into `dir`: the transfer circuit's inputs or a circom circuit's
/// signals (`CircomKey::to_verifying_key` gives its key).
pub fn export_snarkjs(
    dir: impl AsRef<Path>,
    vk: &VerifyingKey,
    public: &(impl Statement + ?Sized),
    proof: &Proof,
) -> Result<()> {
    write_bundle(dir, &proof_bundle(vk, public, proof)?)
}
