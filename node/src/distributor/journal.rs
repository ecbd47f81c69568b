//! The journal: the one thread that writes the job store, in group commits.
//!
//! The scheduler core applies an event in memory and hands it here with the
//! records that go with it (a new batch, a winning proof) and, when its
//! effect must not leave the node before it is on disk, a follow-up: a
//! plain value ([`super::courier::Durable`]: send this assignment, pay this
//! settlement) that the thread hands to its `deliver` function once the
//! write is durable. The thread takes every entry waiting, writes them as
//! one atomic RocksDB write — synced if any entry carries a follow-up — and
//! then delivers their follow-ups in order. Under load a
//! thousand hand-outs share one fsync; idle, an entry waits for one.
//!
//! Entries commit in the order they were queued, so the log's order is the
//! order the scheduler applied them in. A failed write is fatal: the thread
//! reports it and stops, and no follow-up of the failed group is delivered
//! (a scheduler ahead of its log could forget a hand-out).

use std::sync::Arc;
use std::sync::mpsc;

use tracing::{debug, error};

use super::queue::{self, Depth, ServiceThread, Unbounded};
use super::store::{Change, JobStore};
use crate::disk::Space;

/// Most entries in one group commit.
const MAX_GROUP: usize = 4096;

struct Entry<T> {
    changes: Vec<Change>,
    /// Delivered once the entry is on disk; its presence makes the group
    /// synced.
    then: Option<T>,
}

/// The handle to the journal thread, whose follow-ups are `T`s. Dropping
/// every handle lets the thread write what is queued and stop.
pub struct Journal<T> {
    queue: Unbounded<Entry<T>>,
}

impl<T: Send + 'static> Journal<T> {
    /// Starts the journal thread over `store`. `deliver` takes each
    /// follow-up once its entry is durable; `fatal` hears of a failed write
    /// (the node must stop); a disk too full to write ends the process
    /// ([`Space::check_or_exit`]).
    pub fn start(
        store: Arc<JobStore>,
        space: Space,
        deliver: impl Fn(T) + Send + 'static,
        fatal: impl Fn(String) + Send + 'static,
    ) -> std::io::Result<(Self, ServiceThread)> {
        let (queue, rx, depth) = queue::unbounded();
        let thread = ServiceThread::spawn("journal", move || {
            run(&store, &space, &rx, &depth, &deliver, &fatal)
        })?;
        Ok((Self { queue }, thread))
    }

    /// Queues `changes`, unsynced and with nothing waiting on them (a
    /// refusal's strike, a release: replay must see them, but nothing has
    /// left the node that depends on them).
    pub fn write(&self, changes: Vec<Change>) {
        self.push(Entry {
            changes,
            then: None,
        });
    }

    /// Queues `changes` and delivers `then` once they are synced to disk.
    pub fn write_then(&self, changes: Vec<Change>, then: T) {
        self.push(Entry {
            changes,
            then: Some(then),
        });
    }

    fn push(&self, entry: Entry<T>) {
        if self.queue.push(entry).is_err() {
            error!(target: "distributor", "the journal has stopped; change dropped");
        }
    }

    /// Lets the thread stop once it has written what is queued (and every
    /// other handle is gone); later writes are dropped and logged.
    pub fn close(&mut self) {
        self.queue.close();
    }

    /// Entries queued and not yet written.
    pub fn depth(&self) -> usize {
        self.queue.depth()
    }
}

fn run<T>(
    store: &JobStore,
    space: &Space,
    rx: &mpsc::Receiver<Entry<T>>,
    depth: &Depth,
    deliver: &dyn Fn(T),
    fatal: &dyn Fn(String),
) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(entry) => group.push(entry),
                Err(_) => break,
            }
        }
        let sync = group.iter().any(|e| e.then.is_some());
        space.check_or_exit();
        let written = store.commit(group.iter().flat_map(|e| &e.changes), sync);
        depth.done(group.len());
        if let Err(e) = written {
            error!(target: "distributor", error = %e, "cannot write the job store; stopping");
            fatal(format!(
                "cannot write the job store ({e}); stopping so no hand-out is forgotten"
            ));
            return;
        }
        debug!(target: "distributor", entries = group.len(), sync, "journal group committed");
        if sync {
            crate::crash::at(crate::crash::Point::Logged);
        }
        for then in group.into_iter().filter_map(|e| e.then) {
            deliver(then);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::lrp::LrpEvent;
    use protocol::{SecretKey, Timestamp};
    use std::sync::Mutex;

    fn request(at: u64) -> Change {
        Change::Event(LrpEvent::Request {
            prover: SecretKey::from_seed([3; 32]).public(),
            now: Timestamp(at),
        })
    }

    #[test]
    fn entries_commit_in_order_and_follow_ups_run_after_the_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(JobStore::open(dir.path()).unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let deliver = {
            let (seen, store) = (seen.clone(), store.clone());
            move |at: u64| {
                // Durable before the follow-up is delivered: it is in the log.
                let logged = store.events().unwrap().len() as u64;
                assert!(logged > at, "{logged} events logged at follow-up {at}");
                seen.lock().unwrap().push(at);
            }
        };
        let (journal, thread) =
            Journal::start(store.clone(), Space::floor(dir.path(), 0), deliver, |e| {
                panic!("{e}")
            })
            .unwrap();
        for at in 0..500u64 {
            if at % 7 == 0 {
                journal.write_then(vec![request(at)], at);
            } else {
                journal.write(vec![request(at)]);
            }
        }
        drop(journal);
        thread.join();
        let events = store.events().unwrap();
        assert_eq!(events.len(), 500);
        for (i, e) in events.iter().enumerate() {
            assert!(matches!(e, LrpEvent::Request { now, .. } if now.0 == i as u64));
        }
        let seen = seen.lock().unwrap();
        assert_eq!(*seen, (0..500).filter(|a| a % 7 == 0).collect::<Vec<_>>());
    }
}
