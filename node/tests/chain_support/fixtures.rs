//! Real proofs, made once per test binary: two batches of the small
//! transfer circuit, and two proofs of the circom multiplier fixture.

use std::path::PathBuf;
use std::sync::OnceLock;

use node::chain::{BatchCalldata, batch_calldata};
use prover_core::circom::{CircomKey, CircomWitness};
use prover_core::{
    CircuitConfig, Proof, PublicInputs, PublicSignals, Root, TxGenerator, VerifyingKey, prove,
    setup_insecure,
};

/// A proven batch's settle arguments and new root.
pub struct ProvenBatch {
    pub calldata: BatchCalldata,
    pub new_root: Root,
}

/// The transfer circuit's key and two proven batches from one genesis.
pub struct TransferFixture {
    pub vk: VerifyingKey,
    pub genesis: Root,
    pub batches: Vec<ProvenBatch>,
}

/// The circom multiplier's key and a batch of its proofs.
pub struct CircomFixture {
    pub vk: VerifyingKey,
    pub calldata: BatchCalldata,
}

/// Chunks (transfers, one per chunk) of the two batches.
const BATCH_SIZES: [usize; 2] = [3, 2];

/// Two batches of depth-4, one-transfer chunks (seeded statements).
pub fn transfer_fixture() -> &'static TransferFixture {
    static FIXTURE: OnceLock<TransferFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let config = CircuitConfig::new(4, 1).unwrap();
        let (pk, vk) = setup_insecure(config, 29).unwrap();
        let mut generator = TxGenerator::new(29, 16);
        let mut state = generator.genesis(config, 1_000_000).unwrap();
        let genesis = state.root();
        let batches = BATCH_SIZES
            .iter()
            .map(|&n| {
                let built = state.apply_batch(&generator.batch(&state, n)).unwrap();
                assert_eq!(built.jobs.len(), n, "every generated transfer applies");
                let chunks: Vec<(PublicInputs, Proof)> = built
                    .jobs
                    .iter()
                    .map(|job| (job.public, prove(&pk, &job.to_bytes()).unwrap()))
                    .collect();
                ProvenBatch {
                    calldata: batch_calldata(&chunks).unwrap(),
                    new_root: built.new_root,
                }
            })
            .collect();
        TransferFixture {
            vk,
            genesis,
            batches,
        }
    })
}

fn multiplier_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../prover-core/tests/fixtures/circom/multiplier")
        .join(name)
}

/// Two multiplier proofs (witnesses 1 and 2) as one batch.
pub fn circom_fixture() -> &'static CircomFixture {
    static FIXTURE: OnceLock<CircomFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key = CircomKey::load(multiplier_file("circuit.zkey")).unwrap();
        let chunks: Vec<(PublicSignals, Proof)> = (1..=2)
            .map(|i| {
                let file = multiplier_file(&format!("witness-{i}.wtns"));
                let witness = CircomWitness::load(file, key.num_public()).unwrap();
                let proof = key.prove(&witness).unwrap();
                (PublicSignals::circom(witness.public()), proof)
            })
            .collect();
        CircomFixture {
            vk: key.to_verifying_key(),
            calldata: batch_calldata(&chunks).unwrap(),
        }
    })
}
