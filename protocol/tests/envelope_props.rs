//! Property tests of the codec and the signed envelope: round trips for every
//! message kind, no panic on any input, any flipped byte breaks verification,
//! replays are refused.

use proptest::prelude::*;
use protocol::envelope::{
    Freshness, HEADER_LEN, PROTOCOL_VERSION, SIGNATURE_LEN, Verifier, open, open_any, peek_kind,
    seal,
};
use protocol::messages::*;
use protocol::{
    BatchId, CircuitId, ContentHash, JobId, PayoutAddress, PayoutBinding, PublicKey, RequestId,
    SecretKey, Signature, Timestamp,
};

const NOW: Timestamp = Timestamp(1_750_000_000_000);

fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed([seed; 32])
}

fn hash() -> impl Strategy<Value = ContentHash> {
    any::<[u8; 32]>().prop_map(ContentHash)
}

fn circuit() -> impl Strategy<Value = CircuitId> {
    "[a-z0-9._-]{1,64}".prop_map(|s| CircuitId::new(s).unwrap())
}

fn job() -> impl Strategy<Value = JobId> {
    (any::<u64>(), any::<u32>()).prop_map(|(b, i)| JobId::new(BatchId(b), i))
}

fn bytes(min: usize, max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), min..=max)
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        any::<u64>().prop_map(|reward| Outcome::Accepted { reward }),
        Just(Outcome::Late),
        Just(Outcome::Invalid(InvalidReason::NotIssued)),
        Just(Outcome::Invalid(InvalidReason::MalformedProof)),
        Just(Outcome::Invalid(InvalidReason::VerificationFailed)),
    ]
}

fn no_work_reason() -> impl Strategy<Value = NoWorkReason> {
    prop_oneof![
        Just(NoWorkReason::Idle),
        Just(NoWorkReason::AtCapacity),
        Just(NoWorkReason::CoolingDown),
        Just(NoWorkReason::Refused),
    ]
}

/// Any valid message of any kind.
fn message() -> impl Strategy<Value = AnyMessage> {
    prop_oneof![
        (
            any::<u64>(),
            prop::collection::vec(any::<u32>(), 1..50),
            circuit(),
            hash(),
            hash(),
            any::<u64>()
        )
            .prop_map(|(b, idx, circuit, pk, vk, reward)| JobAnnouncement {
                batch: BatchId(b),
                jobs: idx.into_iter().map(|i| JobId::new(BatchId(b), i)).collect(),
                circuit,
                proving_key: pk,
                verifying_key: vk,
                reward_per_job: reward,
            }
            .into()),
        prop::collection::vec(circuit(), 0..=MAX_CIRCUITS_PER_REQUEST)
            .prop_map(|circuits| JobRequest { circuits }.into()),
        (
            job(),
            any::<u64>(),
            any::<[u8; 32]>(),
            circuit(),
            hash(),
            prop_oneof![
                bytes(1, 4096).prop_map(Witness::Inline),
                (hash(), 1..=MAX_WITNESS_BYTES)
                    .prop_map(|(hash, len)| Witness::Chunked { hash, len }),
            ],
            any::<u64>()
        )
            .prop_map(|(job, r, p, circuit, pk, witness, reward)| Assignment {
                job,
                request: RequestId(r),
                prover: PublicKey(p),
                circuit,
                proving_key: pk,
                witness,
                reward,
            }
            .into()),
        (no_work_reason(), any::<u64>()).prop_map(|(reason, retry_after_ms)| NoWork {
            reason,
            retry_after_ms
        }
        .into()),
        (
            job(),
            any::<u64>(),
            bytes(1, MAX_PROOF_BYTES),
            proptest::option::of((any::<[u8; 20]>(), any::<u64>(), any::<[u8; 64]>()))
        )
            .prop_map(|(job, r, proof, payout)| {
                ProofSubmission {
                    job,
                    request: RequestId(r),
                    proof,
                    payout: payout.map(|(address, seq, signature)| PayoutBinding {
                        address: PayoutAddress(address),
                        seq,
                        signature: Signature(signature),
                    }),
                }
                .into()
            }),
        (job(), any::<u64>(), any::<[u8; 32]>(), hash(), outcome()).prop_map(
            |(job, r, p, proof_hash, outcome)| Verdict {
                job,
                request: RequestId(r),
                prover: PublicKey(p),
                proof_hash,
                outcome,
            }
            .into()
        ),
        (job(), any::<u64>()).prop_map(|(job, r)| Release {
            job,
            request: RequestId(r)
        }
        .into()),
        (
            any::<u64>(),
            1..u32::MAX,
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
            hash()
        )
            .prop_map(|(b, jobs, old_root, new_root, proofs)| BatchProven {
                batch: BatchId(b),
                jobs,
                old_root,
                new_root,
                proofs,
            }
            .into()),
        (hash(), any::<u32>()).prop_map(|(key, chunk)| KeyRequest { key, chunk }.into()),
        (hash(), 1..3000u64).prop_map(|(key, total_len)| KeyChunk {
            key,
            chunk: 0,
            total_len,
            data: vec![0xAB; total_len as usize],
        }
        .into()),
        job().prop_map(|job| ReceiptRequest { job }.into()),
        (
            job(),
            bytes(0, MAX_RECEIPT_BYTES),
            bytes(0, MAX_RECEIPT_BYTES)
        )
            .prop_map(|(job, receipt, balance_proof)| ReceiptReply {
                job,
                receipt,
                balance_proof,
            }
            .into()),
        "[a-z-]{0,128}".prop_map(|reason| Rejected { reason }.into()),
        (job(), any::<u64>()).prop_map(|(job, r)| Heartbeat {
            job,
            request: RequestId(r)
        }
        .into()),
        (job(), any::<u64>(), any::<u32>()).prop_map(|(job, r, chunk)| WitnessRequest {
            job,
            request: RequestId(r),
            chunk
        }
        .into()),
        (job(), 1..3000u64).prop_map(|(job, total_len)| WitnessChunk {
            job,
            chunk: 0,
            total_len,
            data: vec![0xCD; total_len as usize],
        }
        .into()),
    ]
}

fn seal_any(message: &AnyMessage, key: &SecretKey, at: Timestamp, nonce: u64) -> Vec<u8> {
    match message {
        AnyMessage::JobAnnouncement(m) => seal(m, key, at, nonce),
        AnyMessage::JobRequest(m) => seal(m, key, at, nonce),
        AnyMessage::Assignment(m) => seal(m, key, at, nonce),
        AnyMessage::NoWork(m) => seal(m, key, at, nonce),
        AnyMessage::ProofSubmission(m) => seal(m, key, at, nonce),
        AnyMessage::Verdict(m) => seal(m, key, at, nonce),
        AnyMessage::Release(m) => seal(m, key, at, nonce),
        AnyMessage::BatchProven(m) => seal(m, key, at, nonce),
        AnyMessage::KeyRequest(m) => seal(m, key, at, nonce),
        AnyMessage::KeyChunk(m) => seal(m, key, at, nonce),
        AnyMessage::ReceiptRequest(m) => seal(m, key, at, nonce),
        AnyMessage::ReceiptReply(m) => seal(m, key, at, nonce),
        AnyMessage::Rejected(m) => seal(m, key, at, nonce),
        AnyMessage::Heartbeat(m) => seal(m, key, at, nonce),
        AnyMessage::WitnessRequest(m) => seal(m, key, at, nonce),
        AnyMessage::WitnessChunk(m) => seal(m, key, at, nonce),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_message_round_trips(message in message(), seed in any::<u8>(), nonce in any::<u64>()) {
        let signer = key(seed);
        let bytes = seal_any(&message, &signer, NOW, nonce);
        let opened = open_any(&bytes, NOW, Freshness::default()).unwrap();
        prop_assert_eq!(opened.header.kind, message.kind());
        prop_assert_eq!(opened.header.signer, signer.public());
        prop_assert_eq!(opened.header.nonce, nonce);
        prop_assert_eq!(opened.body, message);
    }

    #[test]
    fn flipping_any_byte_breaks_verification(
        message in message(),
        position in any::<prop::sample::Index>(),
        flip in 1..=255u8,
    ) {
        let mut bytes = seal_any(&message, &key(1), NOW, 9);
        let i = position.index(bytes.len());
        bytes[i] ^= flip;
        prop_assert!(open_any(&bytes, NOW, Freshness::default()).is_err(), "flipped byte {}", i);
    }

    #[test]
    fn random_bytes_never_panic(data in bytes(0, 2048)) {
        let _ = open_any(&data, NOW, Freshness::default());
        let _ = open::<Assignment>(&data, NOW, Freshness::default());
        let _ = protocol::codec::decode::<JobAnnouncement>(&data, 1 << 16);
    }

    #[test]
    fn random_bodies_behind_a_valid_header_never_panic(
        tag in 1..=10u8,
        body in bytes(0, 2048),
    ) {
        // A well-formed header and signature slot, so decoding reaches the body.
        let mut data = vec![PROTOCOL_VERSION, tag];
        data.extend_from_slice(&key(3).public().0);
        data.extend_from_slice(&NOW.0.to_le_bytes());
        data.extend_from_slice(&7u64.to_le_bytes());
        prop_assert_eq!(data.len(), HEADER_LEN);
        data.extend_from_slice(&body);
        data.extend_from_slice(&[0u8; SIGNATURE_LEN]);
        prop_assert!(peek_kind(&data).is_ok());
        prop_assert!(open_any(&data, NOW, Freshness::default()).is_err());
    }

    #[test]
    fn truncation_is_always_an_error(message in message(), cut in any::<prop::sample::Index>()) {
        let bytes = seal_any(&message, &key(2), NOW, 1);
        let len = cut.index(bytes.len());
        prop_assert!(open_any(&bytes[..len], NOW, Freshness::default()).is_err());
    }

    #[test]
    fn replayed_nonces_are_refused(
        message in message(),
        nonces in prop::collection::vec(any::<u64>(), 1..20),
        delay in 0..120_000u64,
    ) {
        let signer = key(4);
        let mut verifier = Verifier::default();
        let mut seen = std::collections::HashSet::new();
        for nonce in nonces {
            let bytes = seal_any(&message, &signer, NOW, nonce);
            let first_time = seen.insert(nonce);
            let result = verifier.open_any(&bytes, NOW.plus_millis(delay));
            prop_assert_eq!(result.is_ok(), first_time);
            // The very same bytes again are always refused.
            prop_assert!(verifier.open_any(&bytes, NOW.plus_millis(delay)).is_err());
        }
    }
}
