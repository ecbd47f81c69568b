//! `crowdprove pardon`: the operator lifts a prover's strikes (and so its
//! ban) by appending a `Pardon` event to the distributor's scheduler log.
//!
//! Offline by design: the log has one writer, the running distributor, and
//! its RocksDB lock keeps a second process out. The pardon is replayed like
//! every other event, so it survives restarts and later snapshots.

use std::path::Path;

use anyhow::{Context, bail};
use protocol::PublicKey;
use protocol::lrp::{Lrp, LrpEvent};

use super::store::{Change, JobStore};

/// Clears `prover`'s strikes in the distributor state under `data_dir`.
/// Returns the strikes cleared; with none, nothing is written.
pub fn pardon(data_dir: &Path, prover: PublicKey) -> anyhow::Result<u32> {
    let path = data_dir.join("jobs");
    if !path.exists() {
        bail!(
            "{} holds no distributor state (no {}); pass the distributor's --data-dir",
            data_dir.display(),
            path.display()
        );
    }
    let store = JobStore::open(&path).map_err(|e| {
        if e.to_string().contains("lock") {
            anyhow::anyhow!(
                "the distributor using {} is running; stop it (SIGTERM), pardon, then start it again",
                data_dir.display()
            )
        } else {
            anyhow::Error::new(e).context("cannot open the distributor's job store")
        }
    })?;
    let pinned = store.pinned()?.with_context(|| {
        format!(
            "{} has no pinned scheduler settings: the distributor never started there",
            data_dir.display()
        )
    })?;
    let (first, mut lrp) = match store.snapshot()? {
        Some((first, snapshot)) => (first, Lrp::restore(pinned.scheduler, &snapshot.lrp)?),
        None => (0, Lrp::new(pinned.scheduler)?),
    };
    for event in store.events_from(first)? {
        lrp.apply(&event);
    }
    let strikes = lrp.strikes(&prover);
    if strikes > 0 {
        store
            .commit(&[Change::Event(LrpEvent::Pardon { prover })], true)
            .context("cannot write the pardon to the scheduler log")?;
    }
    Ok(strikes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::lrp::{Decision, LrpConfig, LrpOutcome};
    use protocol::{BatchId, JobId, SecretKey, Timestamp};

    use crate::distributor::store::Pinned;

    #[test]
    fn a_pardon_is_logged_only_for_a_struck_prover_and_not_while_the_store_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let prover = SecretKey::from_seed([3; 32]).public();
        assert!(
            pardon(dir.path(), prover)
                .unwrap_err()
                .to_string()
                .contains("no distributor state")
        );
        // A new key's strike is kept only with the format-5 rule; a
        // trusted prover's always is (the LRP's tests cover both).
        let scheduler = LrpConfig {
            forget_struck_newcomers: false,
            ..LrpConfig::default()
        };
        let store = JobStore::open(dir.path().join("jobs")).unwrap();
        store
            .pin(&Pinned {
                scheduler: scheduler.clone(),
                reward_per_job: 1,
            })
            .unwrap();
        let err = pardon(dir.path(), prover).unwrap_err().to_string();
        assert!(err.contains("is running"), "{err}");
        drop(store);
        // No strikes: nothing to write.
        assert_eq!(pardon(dir.path(), prover).unwrap(), 0);
        let store = JobStore::open(dir.path().join("jobs")).unwrap();
        assert!(store.events().unwrap().is_empty());

        // One invalid proof: one strike, which the pardon clears for good.
        let job = JobId::new(BatchId(0), 0);
        let mut lrp = Lrp::new(scheduler).unwrap();
        let mut log = vec![LrpEvent::Submit { jobs: vec![job] }];
        lrp.apply(&log[0]);
        let now = Timestamp(1_000);
        log.push(LrpEvent::Request { prover, now });
        let LrpOutcome::Decided(Decision::Assign(handout)) = lrp.apply(&log[1]) else {
            panic!("the job is handed out")
        };
        log.push(LrpEvent::Invalid {
            job,
            request: handout.request,
            prover,
            now,
        });
        let changes: Vec<Change> = log.into_iter().map(Change::Event).collect();
        store.commit(&changes, true).unwrap();
        drop(store);
        assert_eq!(pardon(dir.path(), prover).unwrap(), 1);
        assert_eq!(pardon(dir.path(), prover).unwrap(), 0, "already pardoned");
        let events = JobStore::open(dir.path().join("jobs"))
            .unwrap()
            .events()
            .unwrap();
        assert_eq!(events.last(), Some(&LrpEvent::Pardon { prover }));
        assert_eq!(events.len(), 4);
    }
}
