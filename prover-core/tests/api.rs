//! The proving API: keys, prove/verify round trips, tampering, batch
//! verification, typed errors on bad input, snarkjs export.

mod common;
mod interop;

use std::sync::OnceLock;

use common::*;
use interop::snarkjs_accepts;
use proptest::prelude::*;
use protocol::ids::ContentHash;
use prover_core::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

struct Fixture {
    /// The proving key's file, parsed by the few tests that prove.
    pk_file: std::path::PathBuf,
    pk: OnceLock<ProvingKey>,
    vk: VerifyingKey,
    batch: BuiltBatch,
    proofs: Vec<Proof>,
}

/// One setup and one proved batch shared by every test in this file: the
/// batch is rebuilt from its seed, the keys and proofs are made once per
/// build of this binary ([`built_once`]).
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let (mut generator, mut state) = small_state(20, 8, 10_000);
        let txs = generator.batch(&state, 5);
        let batch = state.apply_batch(&txs).unwrap();
        let dir = built_once("api-fixture", &[], |dir| {
            let (pk, vk) = setup_insecure(small_config(), 99).unwrap();
            let pool = ThreadPool::new(2).unwrap();
            let proofs: Vec<u8> = batch
                .jobs
                .iter()
                .flat_map(|j| {
                    pool.install(|| prove(&pk, &j.to_bytes()))
                        .unwrap()
                        .to_bytes()
                })
                .collect();
            pk.save(dir.join("pk")).unwrap();
            vk.save(dir.join("vk")).unwrap();
            std::fs::write(dir.join("proofs"), proofs).unwrap();
        });
        let vk = std::fs::read(dir.join("vk")).unwrap();
        let proofs = std::fs::read(dir.join("proofs")).unwrap();
        Fixture {
            pk_file: dir.join("pk"),
            pk: OnceLock::new(),
            vk: trusted(&vk, VerifyingKey::from_bytes),
            proofs: proofs
                .chunks(PROOF_BYTES)
                .map(|p| Proof::from_bytes(p).unwrap())
                .collect(),
            batch,
        }
    })
}

impl Fixture {
    fn pk(&self) -> &ProvingKey {
        self.pk.get_or_init(|| {
            let bytes = std::fs::read(&self.pk_file).unwrap();
            trusted(&bytes, ProvingKey::from_bytes)
        })
    }
}

/// Parses key bytes this test binary wrote itself: trusted as they are.
fn trusted<K>(bytes: &[u8], parse: fn(&[u8], Option<ContentHash>) -> Result<K>) -> K {
    parse(bytes, Some(ContentHash::of(bytes))).unwrap()
}

fn items(f: &Fixture) -> Vec<(PublicInputs, Proof)> {
    f.batch
        .jobs
        .iter()
        .map(|j| j.public)
        .zip(f.proofs.iter().cloned())
        .collect()
}

#[test]
fn prove_verify_round_trip() {
    let f = fixture();
    let pvk = f.vk.prepare();
    for (job, proof) in f.batch.jobs.iter().zip(&f.proofs) {
        let bytes = proof.to_bytes();
        assert_eq!(bytes.len(), PROOF_BYTES);
        let proof = Proof::from_bytes(&bytes).unwrap();
        verify(&pvk, &job.public, &proof).unwrap();
        verify(&f.vk, &job.public, &proof).unwrap();
    }
    // The same witness proves again (fresh randomness) to the same statement.
    let (again, public) = prove_with_public(f.pk(), &f.batch.jobs[0].to_bytes()).unwrap();
    assert_eq!(public, f.batch.jobs[0].public);
    assert_ne!(again, f.proofs[0]);
    verify(&pvk, &public, &again).unwrap();
}

#[test]
fn tampered_public_inputs_fail() {
    let f = fixture();
    let pvk = f.vk.prepare();
    let good = f.batch.jobs[0].public;
    let proof = f.proofs[0].clone();
    let other = f.batch.jobs[1].public;
    let tampered = [
        PublicInputs {
            old_root: other.old_root,
            ..good
        },
        PublicInputs {
            new_root: other.new_root,
            ..good
        },
        PublicInputs {
            tx_commitment: other.tx_commitment,
            ..good
        },
        PublicInputs {
            fees: good.fees + 1,
            ..good
        },
    ];
    for t in tampered {
        assert!(matches!(verify(&pvk, &t, &proof), Err(Error::InvalidProof)));
    }
    // Non-canonical field bytes are malformed input, not an invalid proof.
    let bad = PublicInputs {
        old_root: Root([0xff; 32]),
        ..good
    };
    assert!(matches!(
        verify(&pvk, &bad, &proof),
        Err(Error::MalformedPublicInputs(_))
    ));
}

#[test]
fn tampered_proof_bytes_fail() {
    let f = fixture();
    let pvk = f.vk.prepare();
    let public = f.batch.jobs[0].public;
    let bytes = f.proofs[0].to_bytes();
    for i in (0..PROOF_BYTES).step_by(7) {
        let mut b = bytes;
        b[i] ^= 0x04;
        match Proof::from_bytes(&b) {
            Err(Error::MalformedProof(_)) => {}
            Ok(p) => assert!(
                matches!(verify(&pvk, &public, &p), Err(Error::InvalidProof)),
                "byte {i}"
            ),
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert!(matches!(
        Proof::from_bytes(&bytes[..100]),
        Err(Error::MalformedProof(_))
    ));
    // Another job's proof does not verify this job.
    assert!(matches!(
        verify(&pvk, &public, &f.proofs[1]),
        Err(Error::InvalidProof)
    ));
}

#[test]
fn batch_verification_accepts_good_and_rejects_one_bad_proof() {
    let f = fixture();
    let pvk = f.vk.prepare();
    let mut rng = StdRng::seed_from_u64(5);
    let good = items(f);
    batch_verify(&pvk, &good, &mut rng).unwrap();
    verify_batch_proof(&pvk, f.batch.old_root, f.batch.new_root, &good, &mut rng).unwrap();
    batch_verify::<PublicInputs>(&pvk, &[], &mut rng).unwrap();

    // Swap two proofs: each is valid, but not for its statement.
    let mut swapped = good.clone();
    swapped[0].1 = good[1].1.clone();
    swapped[1].1 = good[0].1.clone();
    assert!(matches!(
        batch_verify(&pvk, &swapped, &mut rng),
        Err(Error::InvalidBatch(3))
    ));
    // One tampered statement.
    let mut bad = good.clone();
    bad[2].0.fees += 1;
    assert!(matches!(
        batch_verify(&pvk, &bad, &mut rng),
        Err(Error::InvalidBatch(_))
    ));
}

#[test]
fn verify_each_finds_the_bad_proofs_in_a_batch_and_passes_the_rest() {
    let f = fixture();
    let pvk = f.vk.prepare();
    let mut rng = StdRng::seed_from_u64(7);
    let good = items(f);
    assert_eq!(verify_each(&pvk, &good, &mut rng), vec![true; good.len()]);
    assert!(verify_each::<PublicInputs>(&pvk, &[], &mut rng).is_empty());
    // Repeat the statements so bisection has levels to walk, then spoil two.
    let mut many: Vec<_> = good.iter().cycle().take(9).cloned().collect();
    many[1].1 = good[2].1.clone();
    many[7].0.fees += 1;
    let expected: Vec<bool> = (0..9).map(|i| i != 1 && i != 7).collect();
    assert_eq!(verify_each(&pvk, &many, &mut rng), expected);
}

#[test]
fn batch_proof_rejects_a_broken_root_chain() {
    let f = fixture();
    let pvk = f.vk.prepare();
    let mut rng = StdRng::seed_from_u64(6);
    let good = items(f);
    let (old, new) = (f.batch.old_root, f.batch.new_root);
    let mut reordered = good.clone();
    reordered.swap(1, 2);
    assert!(matches!(
        verify_batch_proof(&pvk, old, new, &reordered, &mut rng),
        Err(Error::BrokenRootChain { index: 1, .. })
    ));
    let missing_last = &good[..2];
    assert!(matches!(
        verify_batch_proof(&pvk, old, new, missing_last, &mut rng),
        Err(Error::BrokenRootChain { index: 2, .. })
    ));
    assert!(matches!(
        verify_batch_proof(&pvk, new, new, &good, &mut rng),
        Err(Error::BrokenRootChain { index: 0, .. })
    ));
}

#[test]
fn wrong_circuit_and_unsatisfied_witnesses_get_typed_errors() {
    let f = fixture();
    // A witness for another circuit shape.
    let other = CircuitConfig::new(4, 1).unwrap();
    let mut generator = TxGenerator::new(30, 4);
    let mut state = generator.genesis(other, 100).unwrap();
    let txs = generator.batch(&state, 1);
    let job = state.apply_batch(&txs).unwrap().jobs.remove(0);
    match prove(f.pk(), &job.to_bytes()) {
        Err(Error::WrongCircuit { key, witness }) => {
            assert_eq!(key.as_str(), "transfer-d4-k2");
            assert_eq!(witness.as_str(), "transfer-d4-k1");
        }
        other => panic!("expected WrongCircuit, got {other:?}"),
    }
    // A well-formed witness that breaks a rule.
    let (mut generator, state) = small_state(31, 4, 100);
    let accounts: Vec<Account> = (0..4).map(|i| *state.account(i).unwrap()).collect();
    let st = Transfer {
        from: 0,
        to: 1,
        amount: 500,
        fee: 0,
        nonce: 0,
    }
    .sign(generator.key(0));
    let (w, _) = forced_chunk(small_config(), &accounts, st);
    assert!(matches!(
        prove(f.pk(), &w.to_bytes()),
        Err(Error::Unsatisfied {
            tx: 0,
            rule: Rule::InsufficientBalance
        })
    ));
    // Bytes that do not decode.
    assert!(matches!(
        prove(f.pk(), b"not a witness"),
        Err(Error::WitnessDecode(_))
    ));
    let mut bytes = f.batch.jobs[0].to_bytes();
    bytes.push(0);
    assert!(matches!(
        prove(f.pk(), &bytes),
        Err(Error::WitnessDecode(_))
    ));
}

#[test]
fn keys_round_trip_and_bad_key_files_are_named() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let pk_path = dir.path().join("transfer.pk");
    let vk_path = dir.path().join("transfer.vk");
    f.pk().save(&pk_path).unwrap();
    f.vk.save(&vk_path).unwrap();
    assert_eq!(f.pk().verifying_key().hash(), f.vk.hash());

    let pk = ProvingKey::load(&pk_path, Some(f.pk().hash())).unwrap();
    assert_eq!(pk.hash(), f.pk().hash());
    assert_eq!(pk.circuit().id().as_str(), "transfer-d4-k2");
    let pk_unchecked = ProvingKey::load_for(&pk_path, &small_config().circuit_id(), None).unwrap();
    assert_eq!(pk_unchecked.hash(), f.pk().hash());
    let vk = VerifyingKey::load(&vk_path, Some(f.vk.hash())).unwrap();
    let vk2 = VerifyingKey::from_bytes(&f.vk.to_bytes(), Some(f.vk.hash())).unwrap();
    assert_eq!(vk2.hash(), vk.hash());
    // A reloaded key proves and verifies.
    let proof = prove(&pk, &f.batch.jobs[0].to_bytes()).unwrap();
    verify(&vk, &f.batch.jobs[0].public, &proof).unwrap();

    let bytes = std::fs::read(&pk_path).unwrap();
    let bad_path = dir.path().join("bad.pk");
    let expect_key_file_error = |content: &[u8], expected: Option<ContentHash>, what: &str| {
        std::fs::write(&bad_path, content).unwrap();
        match ProvingKey::load(&bad_path, expected) {
            Err(e @ Error::KeyFile { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("bad.pk"), "{what}: {msg}");
                if let Some(h) = expected {
                    assert!(msg.contains(&h.to_hex()), "{what}: {msg}");
                }
            }
            other => panic!("{what}: expected KeyFile error, got {other:?}"),
        }
    };
    expect_key_file_error(
        &bytes[..bytes.len() / 2],
        Some(f.pk().hash()),
        "truncated, hash given",
    );
    // Cut early in the queries: the same error, without first checking
    // every point of half a key.
    expect_key_file_error(&bytes[..bytes.len() / 32], None, "truncated");
    let mut corrupt = bytes.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0xff;
    expect_key_file_error(&corrupt, Some(f.pk().hash()), "corrupt, hash given");
    expect_key_file_error(&corrupt[..5], None, "header only");
    expect_key_file_error(&f.vk.to_bytes(), None, "a verifying key");
    // A key for another circuit: the hash does not match, and load_for says so.
    match ProvingKey::load_for(
        &pk_path,
        &CircuitConfig::new(4, 1).unwrap().circuit_id(),
        None,
    ) {
        Err(Error::KeyFile { reason, .. }) => assert!(reason.contains("transfer-d4-k2")),
        other => panic!("expected KeyFile error, got {other:?}"),
    }
    assert!(matches!(
        VerifyingKey::from_bytes(&f.vk.to_bytes(), Some(f.pk().hash())),
        Err(Error::KeyBytes(_))
    ));
    assert!(matches!(
        ProvingKey::load(dir.path().join("missing.pk"), None),
        Err(Error::Io { .. })
    ));

    // A key's head (what a distributor reads) pairs as the whole key does,
    // and a file whose queries do not add up to its length is refused.
    let head = ProvingKeyHead::from_bytes(&bytes, Some(f.pk().hash())).unwrap();
    head.check_pairs_with(&f.vk).unwrap();
    ProvingKeyHead::from_bytes(&bytes, None)
        .unwrap()
        .check_pairs_with(&f.vk)
        .unwrap();
    let head_error = |content: &[u8], what: &str| match ProvingKeyHead::from_bytes(content, None) {
        Err(Error::KeyBytes(reason)) => reason,
        other => panic!("{what}: expected KeyBytes, got {:?}", other.map(|_| ())),
    };
    let short = head_error(&bytes[..bytes.len() - 1], "one byte short");
    assert!(short.contains("truncated"), "{short}");
    let long = head_error(&[&bytes[..], &[0]].concat(), "one byte more");
    assert!(long.contains("1 trailing bytes"), "{long}");
    head_error(&bytes[..bytes.len() / 2], "truncated");
    head_error(&f.vk.to_bytes(), "a verifying key");
    assert!(matches!(
        ProvingKeyHead::from_bytes(&bytes, Some(f.vk.hash())),
        Err(Error::KeyBytes(_))
    ));
}

#[test]
fn an_expanded_key_reads_back_as_the_same_key_and_any_change_is_refused() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.expanded");
    let id = small_config().circuit_id();
    f.pk().save_expanded(&path).unwrap();
    let back = ProvingKey::load_expanded(&path, &id, f.pk().hash()).unwrap();
    assert_eq!(
        (back.hash(), back.setup(), back.circuit().id()),
        (f.pk().hash(), f.pk().setup(), id.clone())
    );
    assert!(back.to_bytes() == f.pk().to_bytes(), "the same points");

    let bytes = std::fs::read(&path).unwrap();
    assert!(
        bytes.len() > 2 * f.pk().to_bytes().len() - 1000,
        "uncompressed"
    );
    let bad = dir.path().join("bad.expanded");
    let refused =
        |content: &[u8], circuit: &protocol::ids::CircuitId, expected: ContentHash, want: &str| {
            std::fs::write(&bad, content).unwrap();
            match ProvingKey::load_expanded(&bad, circuit, expected) {
                Err(e @ Error::KeyFile { .. }) => {
                    let msg = e.to_string();
                    assert!(
                        msg.contains("bad.expanded") && msg.contains(want),
                        "{want}: {msg}"
                    );
                }
                other => panic!(
                    "{want}: expected KeyFile error, got {:?}",
                    other.map(|_| ())
                ),
            }
        };
    let hash = f.pk().hash();
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 1;
    refused(&flipped, &id, hash, "checksum does not match");
    refused(
        &bytes[..bytes.len() / 2],
        &id,
        hash,
        "checksum does not match",
    );
    refused(&bytes[..40], &id, hash, "too short");
    refused(&f.pk().to_bytes(), &id, hash, "checksum does not match");
    refused(
        &bytes,
        &id,
        f.vk.hash(),
        &format!("expanded form of key {}", hash.to_hex()),
    );
    let other = CircuitConfig::new(4, 1).unwrap().circuit_id();
    refused(&bytes, &other, hash, "key is for circuit transfer-d4-k2");
    // Its checksum right, its body one byte longer: the layout is still read.
    let body = &bytes[..bytes.len() - 64];
    let mut longer = [body, &[0], &hash.0].concat();
    let checksum = ContentHash::of(&longer);
    longer.extend_from_slice(&checksum.0);
    refused(&longer, &id, hash, "1 trailing bytes");
}

#[test]
fn key_files_record_their_setup_and_mismatched_pairs_are_named() {
    let f = fixture();
    assert_eq!(f.pk().setup(), KeySetup::InsecureSeed(Some(99)));
    assert!(!f.vk.setup().is_secure());
    f.pk().check_pairs_with(&f.vk).unwrap();

    let config = CircuitConfig::new(4, 1).unwrap();
    let (pk, vk) = setup(Circuit::Transfer(config)).unwrap();
    assert_eq!(pk.setup(), KeySetup::Random);
    assert!(vk.setup().is_secure());
    // The setup survives the file, and is part of the key's name.
    let again = ProvingKey::from_bytes(&pk.to_bytes(), Some(pk.hash())).unwrap();
    assert_eq!(again.setup(), KeySetup::Random);
    let seeded = VerifyingKey::from_bytes(&f.vk.to_bytes(), None).unwrap();
    assert_eq!(seeded.setup(), KeySetup::InsecureSeed(Some(99)));
    // Two random setups differ; the same seed twice is the same key.
    let (_, other_vk) = setup(Circuit::Transfer(config)).unwrap();
    assert_ne!(other_vk.hash(), vk.hash());
    let (_, seeded_vk) = setup_insecure(config, 5).unwrap();
    assert_eq!(
        seeded_vk.hash(),
        setup_insecure(config, 5).unwrap().1.hash()
    );

    // A format-1 file (no setup byte) is from the seeded setup.
    let v2 = f.vk.to_bytes();
    let mut v1 = v2[..4].to_vec();
    v1.push(1);
    v1.extend_from_slice(&v2[14..]);
    let old = VerifyingKey::from_bytes(&v1, None).unwrap();
    assert_eq!(old.setup(), KeySetup::InsecureSeed(None));
    assert_eq!(
        old.to_bytes(),
        v1,
        "a format-1 key keeps its bytes and hash"
    );
    assert!(matches!(
        VerifyingKey::from_bytes(&[&v2[..5], &[7][..], &v2[6..]].concat(), None),
        Err(Error::KeyBytes(reason)) if reason.contains("setup kind 7")
    ));

    // Keys from different setups, and a spliced proving key, are refused.
    let mismatch = |pk: &ProvingKey, vk: &VerifyingKey| match pk.check_pairs_with(vk) {
        Err(Error::KeyMismatch(reason)) => reason,
        other => panic!("expected KeyMismatch, got {other:?}"),
    };
    assert!(mismatch(&pk, &other_vk).contains("different setups"));
    assert!(mismatch(&pk, &seeded_vk).contains("setup is random"));
    assert!(mismatch(f.pk(), &vk).contains("transfer-d4-k2"));
    // A proving key whose embedded verifying key (the first part of its
    // body) is another setup's: its own β and δ give it away.
    let mut spliced = pk.to_bytes();
    let header = spliced.len() - pk.size();
    let (ours, theirs) = (vk.to_bytes(), other_vk.to_bytes());
    assert_eq!(&spliced[header..ours.len()], &ours[header..]);
    spliced[header..ours.len()].copy_from_slice(&theirs[header..]);
    match ProvingKeyHead::from_bytes(&spliced, None)
        .unwrap()
        .check_pairs_with(&other_vk)
    {
        Err(Error::KeyMismatch(reason)) => assert!(reason.contains("spliced"), "{reason}"),
        other => panic!("expected KeyMismatch, got {other:?}"),
    }
    // Every point of it is valid (the pairing check is what finds it):
    // taken by its own hash, so they are not all checked again here.
    let spliced = ProvingKey::from_bytes(&spliced, Some(ContentHash::of(&spliced))).unwrap();
    assert!(mismatch(&spliced, &other_vk).contains("spliced"));
}

#[test]
fn snarkjs_export_writes_files_snarkjs_and_the_evm_verifier_accept() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    export_snarkjs(dir.path(), &f.vk, &f.batch.jobs[0].public, &f.proofs[0]).unwrap();
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(name)).unwrap()).unwrap()
    };
    let vk = read("verification_key.json");
    assert_eq!(vk["protocol"], "groth16");
    assert_eq!(vk["curve"], "bn128");
    assert_eq!(vk["nPublic"], 4);
    assert_eq!(vk["IC"].as_array().unwrap().len(), 5);
    let proof = read("proof.json");
    assert_eq!(proof["pi_b"].as_array().unwrap().len(), 3);
    let public = read("public.json");
    assert_eq!(public.as_array().unwrap().len(), 4);
    assert_eq!(public[3], f.batch.jobs[0].public.fees.to_string());
    // snarkjs and the Solidity verifier in the EVM accept the proof, and
    // refuse it for another job's inputs or a tampered fee.
    assert!(snarkjs_accepts(dir.path()));
    let (valid, gas) = interop::evm_verifies(dir.path());
    assert!(valid, "the EVM verifier refused a valid proof");
    assert!((150_000..400_000).contains(&gas), "{gas} gas");
    interop::tamper_public(dir.path());
    assert!(!snarkjs_accepts(dir.path()));
    assert!(!interop::evm_verifies(dir.path()).0);
    export_snarkjs(dir.path(), &f.vk, &f.batch.jobs[1].public, &f.proofs[0]).unwrap();
    assert!(!snarkjs_accepts(dir.path()));
    assert!(!interop::evm_verifies(dir.path()).0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn random_witness_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let r = public_inputs(&bytes);
        prop_assert!(r.is_err());
    }

    #[test]
    fn mutated_witness_bytes_never_panic(pos in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let f = fixture();
        let good = f.batch.jobs[0].to_bytes();
        let mut bytes = good.clone();
        let i = pos.index(bytes.len());
        bytes[i] = byte;
        // Whatever the native checker accepts, the circuit must accept too.
        if let Ok(p) = public_inputs(&bytes) {
            let w = ChunkWitness::from_bytes(&bytes).unwrap();
            prop_assert!(satisfied(&w, &p));
        }
        let truncated = &good[..cut.index(good.len())];
        prop_assert!(public_inputs(truncated).is_err());
    }
}
