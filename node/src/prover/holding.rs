//! The hand-outs this prover holds, kept on disk (`<data_dir>/holding.json`)
//! so that a prover killed while it held work gives that work back when it
//! starts again. The distributor counts a hand-out held past its lease
//! against its holder's allowance until the job is done: a newcomer killed
//! mid-job would otherwise be refused work (`AtCapacity`) until someone
//! else proved its job, which on a network of newcomers is never.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use protocol::messages::Release;
use protocol::{JobId, RequestId};
use tracing::{info, warn};

use super::client::{CallError, Client, PATIENCE};

/// The file, under the data dir.
const FILE: &str = "holding.json";

/// What this prover holds now, and what it held when it last stopped.
#[derive(Debug)]
pub struct Holding {
    dir: PathBuf,
    held: Mutex<Vec<(JobId, RequestId)>>,
    /// Held when the prover last stopped without giving it back.
    left: Vec<(JobId, RequestId)>,
}

impl Holding {
    /// The list under `dir`; what it holds is what the last run left
    /// (an unreadable file is logged and taken as empty).
    pub fn open(dir: &Path) -> Self {
        let path = dir.join(FILE);
        let left = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                warn!(target: "prover", path = %path.display(), error = %e, "unreadable list of held jobs; ignored");
                Vec::new()
            }),
            Err(_) => Vec::new(),
        };
        Self {
            dir: dir.to_path_buf(),
            held: Mutex::new(left.clone()),
            left,
        }
    }

    /// It was handed `request` of `job`.
    pub fn took(&self, job: JobId, request: RequestId) {
        let mut held = self.held.lock().expect("holding lock");
        held.push((job, request));
        self.save(&held);
    }

    /// It is done with `request` of `job` (proved, released or failed).
    pub fn done(&self, job: JobId, request: RequestId) {
        let mut held = self.held.lock().expect("holding lock");
        held.retain(|h| *h != (job, request));
        self.save(&held);
    }

    /// Gives back what the last run left held: each is released (retried
    /// while the distributor is unreachable or busy, for [`PATIENCE`]).
    pub async fn give_back_leftovers(&self, client: &Client) {
        for &(job, request) in &self.left {
            let release = Release { job, request };
            let started = Instant::now();
            let outcome = loop {
                match client.call_when_free(&release, PATIENCE).await {
                    Err(CallError::Network(_)) if started.elapsed() < PATIENCE => {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    other => break other,
                }
            };
            match outcome {
                Ok(_) => {
                    info!(target: "prover", %job, "gave back a job held when this prover last stopped")
                }
                // Done, or re-served: nothing of it is held any more.
                Err(CallError::Rejected(reason)) => {
                    info!(target: "prover", %job, reason, "a job held when this prover last stopped is no longer held")
                }
                Err(e) => {
                    warn!(target: "prover", %job, error = %e, "cannot give back a job held when this prover last stopped");
                    continue;
                }
            }
            self.done(job, request);
        }
    }

    fn save(&self, held: &[(JobId, RequestId)]) {
        let path = self.dir.join(FILE);
        let bytes = serde_json::to_vec(held).expect("plain data");
        if let Err(e) =
            crate::disk::write_durably(&self.dir, &path, |f| std::io::Write::write_all(f, &bytes))
        {
            warn!(target: "prover", path = %path.display(), error = %e, "cannot save the list of held jobs");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::BatchId;

    #[test]
    fn what_was_held_at_a_stop_is_left_for_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (JobId::new(BatchId(1), 0), JobId::new(BatchId(1), 1));
        let holding = Holding::open(dir.path());
        assert!(holding.left.is_empty());
        holding.took(a, RequestId(1));
        holding.took(b, RequestId(2));
        holding.done(a, RequestId(1));
        // Killed here: the next start finds b.
        let next = Holding::open(dir.path());
        assert_eq!(next.left, vec![(b, RequestId(2))]);
        next.done(b, RequestId(2));
        assert!(Holding::open(dir.path()).left.is_empty());
        // A damaged file is no list, not a failure.
        std::fs::write(dir.path().join(FILE), b"{not json").unwrap();
        assert!(Holding::open(dir.path()).left.is_empty());
    }
}
