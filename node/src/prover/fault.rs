//! Fault injection for tests and the testnet, kept apart from the honest
//! path: a byzantine prover's submissions. Never used by a real prover.

use protocol::messages::{Assignment, ProofSubmission};
use tracing::warn;

/// A byzantine prover's state: which attack comes next and its last
/// envelope (to replay word for word).
#[derive(Debug, Default)]
pub struct Byzantine {
    attack: u32,
    last_envelope: Option<Vec<u8>>,
}

impl Byzantine {
    /// Spoils `submission` in turn: a proof that does not verify, a request
    /// id it was not given, a replay of its previous envelope. Returns the
    /// envelope to send instead, for a replay.
    pub fn spoil(
        &mut self,
        submission: &mut ProofSubmission,
        assignment: &Assignment,
    ) -> Option<Vec<u8>> {
        // The invalid proof first: a new identity gets one job at a time,
        // and a misbound submission leaves it sitting on that one.
        let attack = self.attack % 3;
        self.attack += 1;
        warn!(target: "prover", attack, "sending a byzantine submission (fault injection)");
        match attack {
            0 => {
                let mid = submission.proof.len() / 2;
                submission.proof[mid] ^= 0x5A;
                submission.proof[0] ^= 0x01;
                None
            }
            1 => {
                submission.request = protocol::RequestId(assignment.request.0.saturating_sub(1));
                None
            }
            _ => {
                let replay = self.last_envelope.clone();
                if replay.is_none() {
                    submission.request = protocol::RequestId(assignment.request.0 + 1_000_000);
                }
                replay
            }
        }
    }

    /// Remembers the envelope just sent.
    pub fn sent(&mut self, envelope: &[u8]) {
        self.last_envelope = Some(envelope.to_vec());
    }
}
