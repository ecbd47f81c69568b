//! circom circuits end to end against the committed snarkjs fixtures
//! (`tests/fixtures/circom/`, made by `scripts/circom-fixtures`): our prover
//! proves snarkjs zkeys and circom witnesses, `snarkjs groth16 verify`
//! accepts the proofs and refuses a tampered input, the r1cs catches a
//! witness that does not satisfy the circuit, and every malformed zkey, r1cs
//! or witness is a named error, never a panic.

mod common;
mod interop;

use std::path::{Path, PathBuf};

use ark_bn254::Fr;
use interop::snarkjs_accepts;
use proptest::prelude::*;
use prover_core::circom::{CircomKey, CircomR1cs, CircomWitness};
use prover_core::snarkjs::ark_verification_key_json;
use prover_core::{Error, Proof, export_snarkjs};

fn fixture(circuit: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/circom")
        .join(circuit)
        .join(file)
}

fn key(circuit: &str) -> CircomKey {
    CircomKey::load(fixture(circuit, "circuit.zkey")).unwrap()
}

fn witness(circuit: &str, key: &CircomKey, i: usize) -> CircomWitness {
    CircomWitness::load(
        fixture(circuit, &format!("witness-{i}.wtns")),
        key.num_public(),
    )
    .unwrap()
}

#[test]
fn the_zkeys_verification_key_is_the_one_snarkjs_exports() {
    for circuit in ["multiplier", "chain"] {
        let key = key(circuit);
        let ours = ark_verification_key_json(key.verifying_key());
        let theirs: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fixture(circuit, "verification_key.json")).unwrap(),
        )
        .unwrap();
        for field in [
            "nPublic",
            "vk_alpha_1",
            "vk_beta_2",
            "vk_gamma_2",
            "vk_delta_2",
            "IC",
        ] {
            assert_eq!(ours[field], theirs[field], "{circuit}: {field}");
        }
    }
    let chain = key("chain");
    assert_eq!(
        (
            chain.num_constraints(),
            chain.num_public(),
            chain.num_vars()
        ),
        (3000, 2, 3002)
    );
}

#[test]
fn our_proofs_of_circom_witnesses_verify_here_and_in_snarkjs() {
    for circuit in ["multiplier", "chain"] {
        let key = key(circuit);
        for i in 1..=2 {
            let w = witness(circuit, &key, i);
            let proof = key.prove(&w).unwrap();
            key.verify(w.public(), &proof).unwrap();
            let back = Proof::from_bytes(&proof.to_bytes()).unwrap();
            key.verify(w.public(), &back).unwrap();

            let dir = tempfile::tempdir().unwrap();
            export_snarkjs(dir.path(), &key.to_verifying_key(), w.public(), &proof).unwrap();
            assert!(snarkjs_accepts(dir.path()), "{circuit} witness {i}");
            // A tampered public signal: refused by both.
            let mut tampered = w.public().to_vec();
            tampered[0] += Fr::from(1u64);
            assert!(matches!(
                key.verify(&tampered, &proof),
                Err(Error::InvalidProof)
            ));
            export_snarkjs(dir.path(), &key.to_verifying_key(), &tampered[..], &proof).unwrap();
            assert!(
                !snarkjs_accepts(dir.path()),
                "{circuit}: tampered input accepted"
            );
        }
    }
    // The multiplier's public signal is its output c = a·b (3·11).
    let m = key("multiplier");
    assert_eq!(witness("multiplier", &m, 1).public(), &[Fr::from(33u64)]);
}

#[test]
fn witnesses_that_do_not_fit_or_do_not_satisfy_are_refused() {
    let chain = key("chain");
    let multiplier = key("multiplier");
    // A witness for another circuit.
    let other = witness("multiplier", &multiplier, 1);
    let other = CircomWitness::from_bytes(&other.to_bytes(), chain.num_public()).unwrap();
    assert!(matches!(chain.prove(&other), Err(Error::Wtns(r)) if r.contains("another circuit")));
    // A witness that fits but breaks a constraint: the proof would not
    // verify, so the prover says so instead of handing it out.
    let w = witness("multiplier", &multiplier, 1);
    let mut bytes = w.to_bytes();
    let last = bytes.len() - 32; // b, a private input
    bytes[last] ^= 1;
    let broken = CircomWitness::from_bytes(&bytes, multiplier.num_public()).unwrap();
    assert!(matches!(
        multiplier.prove(&broken),
        Err(Error::CircomUnsatisfied)
    ));
    // The byte form round-trips to what circom wrote.
    let file = std::fs::read(fixture("multiplier", "witness-1.wtns")).unwrap();
    assert_eq!(w.to_bytes(), file);
}

#[test]
fn malformed_witness_files_get_named_errors() {
    let good = std::fs::read(fixture("multiplier", "witness-1.wtns")).unwrap();
    let bad = |bytes: &[u8], expect: &str| match CircomWitness::from_bytes(bytes, 1) {
        Err(Error::Wtns(reason)) => assert!(reason.contains(expect), "{expect}: {reason}"),
        other => panic!("{expect}: expected a witness error, got {other:?}"),
    };
    bad(&good[..good.len() - 1], "past the end");
    bad(&good[..10], "truncated");
    bad(&[&good[..], &[0]].concat(), "after the last section");
    bad(b"zkey\x02\0\0\0", "bad magic");
    let mut field = good.clone();
    field[24] ^= 1; // the prime
    bad(&field, "another field");
    let mut big = good.clone();
    let v = big.len() - 32;
    big[v..].fill(0xff);
    bad(&big, "not a field element");
    let mut constant = good.clone();
    constant[76] = 2; // the first value
    bad(&constant, "constant");
    let mut version = good.clone();
    version[4] = 9;
    bad(&version, "version 9");
    // Named by its file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.wtns");
    std::fs::write(&path, &good[..40]).unwrap();
    let e = CircomWitness::load(&path, 1).unwrap_err().to_string();
    assert!(e.contains("broken.wtns"), "{e}");
}

#[test]
fn malformed_zkeys_get_named_errors() {
    let good = std::fs::read(fixture("multiplier", "circuit.zkey")).unwrap();
    CircomKey::from_bytes(&good).unwrap();
    let bad = |bytes: &[u8], expect: &str| match CircomKey::from_bytes(bytes) {
        Err(Error::Zkey(reason)) => assert!(reason.contains(expect), "{expect}: {reason}"),
        other => panic!("{expect}: expected a zkey error, got {other:?}"),
    };
    bad(&good[..good.len() - 1], "");
    bad(&good[..8], "truncated");
    bad(b"wtns\x01\0\0\0\0\0\0\0", "bad magic");
    bad(&[&good[..], &[0; 3]].concat(), "after the last section");
    // Find the Groth16 header (section 2) and break its fields.
    let header = section_start(&good, 2);
    let mut prime = good.clone();
    prime[header + 10] ^= 1;
    bad(&prime, "field primes");
    let mut vars = good.clone();
    vars[header + 72..header + 76].copy_from_slice(&1_000_000u32.to_le_bytes());
    bad(&vars, "section 5 (A)");
    let mut domain = good.clone();
    domain[header + 80..header + 84].copy_from_slice(&3u32.to_le_bytes());
    bad(&domain, "power of two");
    let mut public = good.clone();
    public[header + 76..header + 80].copy_from_slice(&u32::MAX.to_le_bytes());
    bad(&public, "public inputs");
    // A coefficient pointing outside the matrices.
    let coefficients = section_start(&good, 4);
    let mut index = good.clone();
    index[coefficients + 4..coefficients + 8].copy_from_slice(&7u32.to_le_bytes());
    bad(&index, "outside");
    // A point off the curve.
    let a = section_start(&good, 5);
    let mut point = good.clone();
    point[a + 64] ^= 1;
    bad(&point, "decode");
    // A section id the table cannot hold.
    let mut id = good.clone();
    id[12..16].copy_from_slice(&99u32.to_le_bytes());
    bad(&id, "unknown section 99");
}

#[test]
fn the_r1cs_matches_its_zkey_and_catches_unsatisfied_witnesses() {
    let r1cs = |circuit: &str| CircomR1cs::load(fixture(circuit, "circuit.r1cs")).unwrap();
    for circuit in ["multiplier", "chain"] {
        let (key, r1cs) = (key(circuit), r1cs(circuit));
        r1cs.check_matches(&key).unwrap();
        for i in 1..=4 {
            r1cs.check_satisfied(&witness(circuit, &key, i)).unwrap();
        }
    }
    let e = r1cs("chain").check_matches(&key("multiplier")).unwrap_err();
    assert!(
        matches!(e, Error::KeyMismatch(ref r) if r.contains("differ")),
        "{e}"
    );
    // A witness that fits but breaks a constraint, found before proving.
    let m = key("multiplier");
    let mut bytes = witness("multiplier", &m, 1).to_bytes();
    let last = bytes.len() - 32;
    bytes[last] ^= 1;
    let broken = CircomWitness::from_bytes(&bytes, 1).unwrap();
    let e = r1cs("multiplier").check_satisfied(&broken).unwrap_err();
    assert!(e.to_string().contains("constraint 0 does not hold"), "{e}");
    // Same shape, other values in A: refused as another constraint system.
    let good = std::fs::read(fixture("multiplier", "circuit.r1cs")).unwrap();
    let constraints = section_start(&good, 2);
    let mut other = good.clone();
    other[constraints + 8 + 31] = 0x20; // A's first coefficient, still below p
    let e = CircomR1cs::from_bytes(&other)
        .unwrap()
        .check_matches(&m)
        .unwrap_err();
    assert!(e.to_string().contains("constraint 0's A differs"), "{e}");
}

#[test]
fn malformed_r1cs_files_get_named_errors() {
    let good = std::fs::read(fixture("multiplier", "circuit.r1cs")).unwrap();
    let bad = |bytes: &[u8], expect: &str| match CircomR1cs::from_bytes(bytes) {
        Err(Error::R1cs(reason)) => assert!(reason.contains(expect), "{expect}: {reason}"),
        other => panic!("{expect}: expected an r1cs error, got {other:?}"),
    };
    bad(&good[..good.len() - 1], "past the end");
    bad(&good[..6], "truncated");
    bad(b"wtns\x01\0\0\0\0\0\0\0", "bad magic");
    let header = section_start(&good, 1);
    let mut prime = good.clone();
    prime[header + 10] ^= 1;
    bad(&prime, "another field");
    let mut count = good.clone();
    count[header + 60..header + 64].copy_from_slice(&u32::MAX.to_le_bytes());
    bad(&count, "constraints in a");
    let mut fewer = good.clone();
    fewer[header + 60..header + 64].copy_from_slice(&0u32.to_le_bytes());
    bad(&fewer, "after the last constraint");
    let constraints = section_start(&good, 2);
    let mut wire = good.clone();
    wire[constraints + 4..constraints + 8].copy_from_slice(&9u32.to_le_bytes());
    bad(&wire, "names wire 9 of 4");
    let mut factors = good.clone();
    factors[constraints..constraints + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    bad(&factors, "cut short");
    let mut value = good.clone();
    value[constraints + 8..constraints + 40].fill(0xff);
    bad(&value, "modulus");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.r1cs");
    std::fs::write(&path, &good[..40]).unwrap();
    let e = CircomR1cs::load(&path).unwrap_err().to_string();
    assert!(e.contains("broken.r1cs"), "{e}");
}

/// The process's peak resident memory (VmHWM), in bytes.
fn peak_memory() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    kib << 10
}

#[test]
fn files_over_the_size_caps_are_refused_by_name_before_they_are_read() {
    use prover_core::AnyProvingKey;
    use prover_core::circom::{MAX_R1CS_BYTES, MAX_WITNESS_BYTES, MAX_ZKEY_BYTES};
    let multiplier = key("multiplier");
    let dir = tempfile::tempdir().unwrap();
    // Sparse files one byte over each cap: nothing is on disk, but reading
    // one would allocate the whole length (2 GiB for a zkey).
    let sparse = |name: &str, len: u64| {
        let path = dir.path().join(name);
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(len).unwrap();
        path
    };
    let zkey = sparse("huge.zkey", MAX_ZKEY_BYTES + 1);
    let wtns = sparse("huge.wtns", MAX_WITNESS_BYTES + 1);
    let r1cs = sparse("huge.r1cs", MAX_R1CS_BYTES + 1);
    let refused = |e: Error, name: &str, cap: u64| {
        let text = e.to_string();
        assert!(
            matches!(e, Error::CircomFile { ref path, .. } if path.ends_with(name)),
            "{name}: expected a file error, got {e:?}"
        );
        assert!(
            text.contains(name)
                && text.contains(&format!("{} bytes", cap + 1))
                && text.contains(&format!("at most {cap}")),
            "{name}: the error names neither the file nor the cap: {text}"
        );
    };
    let before = peak_memory();
    refused(
        CircomKey::load(&zkey).unwrap_err(),
        "huge.zkey",
        MAX_ZKEY_BYTES,
    );
    refused(
        AnyProvingKey::load(multiplier.circuit(), &zkey, None).unwrap_err(),
        "huge.zkey",
        MAX_ZKEY_BYTES,
    );
    refused(
        AnyProvingKey::load(multiplier.circuit(), &zkey, Some(multiplier.hash())).unwrap_err(),
        "huge.zkey",
        MAX_ZKEY_BYTES,
    );
    refused(
        CircomWitness::load(&wtns, 1).unwrap_err(),
        "huge.wtns",
        MAX_WITNESS_BYTES,
    );
    refused(
        CircomR1cs::load(&r1cs).unwrap_err(),
        "huge.r1cs",
        MAX_R1CS_BYTES,
    );
    // Refused from the file's length: none of them was read into memory
    // (the smallest, the witness, is 512 MiB).
    let grew = peak_memory().saturating_sub(before);
    assert!(grew < 128 << 20, "peak memory grew by {grew} bytes");
}

#[test]
fn huge_declared_lengths_are_refused_without_allocating_them() {
    // Each file is small, but a length inside it claims far more than it
    // holds: allocating what it claims (up to 128 GiB, or 2^64 bytes) would
    // abort the test. Each is refused by checking the claim against the
    // bytes present.
    let wtns = std::fs::read(fixture("multiplier", "witness-1.wtns")).unwrap();
    let bad_witness = |bytes: &[u8], expect: &str| match CircomWitness::from_bytes(bytes, 1) {
        Err(Error::Wtns(reason)) => assert!(reason.contains(expect), "{expect}: {reason}"),
        other => panic!("{expect}: expected a witness error, got {other:?}"),
    };
    // Section 1's length (the header): u64::MAX.
    let mut section = wtns.clone();
    section[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    bad_witness(&section, "section 1 runs past the end");
    // The values section's length: 2^40.
    let values = section_start(&wtns, 2) - 8;
    let mut long = wtns.clone();
    long[values..values + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    bad_witness(&long, "section 2 runs past the end");
    // The header's value count: u32::MAX values (128 GiB) in a section of 4.
    let count = section_start(&wtns, 1) + 36;
    let mut many = wtns.clone();
    many[count..count + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    bad_witness(&many, &format!("value bytes for {} values", u32::MAX));
    // The same for a batch body split into files.
    let e = prover_core::circom::split_witness_files(&[&wtns[..], &long[..]].concat())
        .unwrap_err()
        .to_string();
    assert!(e.contains("witness 1") && e.contains("past the end"), "{e}");

    let zkey = std::fs::read(fixture("multiplier", "circuit.zkey")).unwrap();
    let bad_zkey = |bytes: &[u8], expect: &str| match CircomKey::from_bytes(bytes) {
        Err(Error::Zkey(reason)) => assert!(reason.contains(expect), "{expect}: {reason}"),
        other => panic!("{expect}: expected a zkey error, got {other:?}"),
    };
    // The H section's length: u64::MAX.
    let h = section_start(&zkey, 9) - 8;
    let mut section = zkey.clone();
    section[h..h + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    bad_zkey(&section, "section 9 runs past the end");
    // A domain of 2^28 (16 GiB of H points) in a file of a few KiB.
    let header = section_start(&zkey, 2);
    let mut domain = zkey.clone();
    domain[header + 80..header + 84].copy_from_slice(&(1u32 << 28).to_le_bytes());
    bad_zkey(&domain, "section 9 (H)");
    // u32::MAX coefficients in a coefficient section of a few hundred bytes.
    let coefficients = section_start(&zkey, 4);
    let mut many = zkey.clone();
    many[coefficients..coefficients + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    bad_zkey(&many, "coefficients need");
    // u32::MAX variables.
    let mut vars = zkey.clone();
    vars[header + 72..header + 76].copy_from_slice(&u32::MAX.to_le_bytes());
    bad_zkey(&vars, "section 5 (A)");
}

/// Offset of section `id`'s body in a snarkjs binary file.
fn section_start(bytes: &[u8], id: u32) -> usize {
    let mut at = 12;
    loop {
        let this = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let len = u64::from_le_bytes(bytes[at + 4..at + 12].try_into().unwrap()) as usize;
        if this == id {
            return at + 12;
        }
        at += 12 + len;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn mutated_zkeys_and_witnesses_never_panic(
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let zkey = std::fs::read(fixture("multiplier", "circuit.zkey")).unwrap();
        let wtns = std::fs::read(fixture("multiplier", "witness-1.wtns")).unwrap();
        let r1cs = std::fs::read(fixture("multiplier", "circuit.r1cs")).unwrap();
        for good in [zkey, wtns, r1cs] {
            let mut bytes = good.clone();
            bytes[pos.index(good.len())] = byte;
            let _ = CircomKey::from_bytes(&bytes);
            let _ = CircomWitness::from_bytes(&bytes, 1);
            let _ = CircomR1cs::from_bytes(&bytes);
            let short = &good[..cut.index(good.len())];
            let _ = CircomKey::from_bytes(short);
            let _ = CircomWitness::from_bytes(short, 1);
            let _ = CircomR1cs::from_bytes(short);
        }
    }
}
