//! The service threads and the queues in front of them. Each service is a
//! [`ServiceThread`] draining one queue; dropping or closing every sender
//! lets it finish what is queued and stop, and the run loop joins it at
//! shutdown. Sending never waits: a
//! bounded queue that is full gives the item back (the caller answers
//! `busy`); an unbounded one (the journal, the payout writer) is bounded by
//! what feeds it. Each counts its depth for `/status` and the metrics: the
//! sender adds, the service subtracts once it has handled an item.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

/// The service's side of a queue's depth count.
#[derive(Debug, Clone, Default)]
pub struct Depth(Arc<AtomicUsize>);

impl Depth {
    /// `n` items are handled.
    pub fn done(&self, n: usize) {
        self.0.fetch_sub(n, Ordering::Relaxed);
    }

    fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// The sending side of a bounded queue.
pub struct Bounded<T> {
    tx: Option<mpsc::SyncSender<T>>,
    depth: Depth,
    capacity: usize,
}

/// A queue of at most `capacity` items (at least 1).
pub fn bounded<T>(capacity: usize) -> (Bounded<T>, mpsc::Receiver<T>, Depth) {
    let capacity = capacity.max(1);
    let (tx, rx) = mpsc::sync_channel(capacity);
    let depth = Depth::default();
    let sender = Bounded {
        tx: Some(tx),
        depth: depth.clone(),
        capacity,
    };
    (sender, rx, depth)
}

impl<T> Bounded<T> {
    /// Queues `item`; a full or closed queue gives it back.
    pub fn push(&self, item: T) -> Result<(), T> {
        let Some(tx) = &self.tx else {
            return Err(item);
        };
        self.depth.add();
        tx.try_send(item).map_err(|e| {
            self.depth.done(1);
            match e {
                mpsc::TrySendError::Full(item) | mpsc::TrySendError::Disconnected(item) => item,
            }
        })
    }

    /// Takes no more items: the service stops once it has handled the rest.
    pub fn close(&mut self) {
        self.tx = None;
    }

    /// Items waiting or in progress.
    pub fn depth(&self) -> usize {
        self.depth.get()
    }

    /// Most items it holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// The sending side of a queue bounded by its producers.
pub struct Unbounded<T> {
    tx: Option<mpsc::Sender<T>>,
    depth: Depth,
}

/// A queue with no capacity of its own.
pub fn unbounded<T>() -> (Unbounded<T>, mpsc::Receiver<T>, Depth) {
    let (tx, rx) = mpsc::channel();
    let depth = Depth::default();
    let sender = Unbounded {
        tx: Some(tx),
        depth: depth.clone(),
    };
    (sender, rx, depth)
}

impl<T> Unbounded<T> {
    /// Queues `item`; a closed queue (the service stopped) gives it back.
    pub fn push(&self, item: T) -> Result<(), T> {
        let Some(tx) = &self.tx else {
            return Err(item);
        };
        self.depth.add();
        tx.send(item).map_err(|e| {
            self.depth.done(1);
            e.0
        })
    }

    /// Lets the service stop once every sender is closed or gone.
    pub fn close(&mut self) {
        self.tx = None;
    }

    /// Items waiting or in progress.
    pub fn depth(&self) -> usize {
        self.depth.get()
    }
}

impl<T> Clone for Unbounded<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            depth: self.depth.clone(),
        }
    }
}

/// A running service thread: join it at shutdown, once its senders are
/// closed.
pub struct ServiceThread(JoinHandle<()>);

impl ServiceThread {
    /// Starts `work` on a thread named `name`.
    pub fn spawn(name: &str, work: impl FnOnce() + Send + 'static) -> std::io::Result<Self> {
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(work)
            .map(Self)
    }

    /// Waits until the service has handled what was queued and stopped.
    pub fn join(self) {
        let _ = self.0.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bounded_queue_gives_the_item_back_and_counts_depth() {
        let (mut q, rx, depth) = bounded::<u32>(2);
        assert_eq!(q.push(1), Ok(()));
        assert_eq!(q.push(2), Ok(()));
        assert_eq!(q.push(3), Err(3));
        assert_eq!(q.depth(), 2);
        assert_eq!(rx.recv().unwrap(), 1);
        depth.done(1);
        assert_eq!(q.depth(), 1);
        q.close();
        assert_eq!(q.push(4), Err(4));
        assert_eq!(rx.recv().unwrap(), 2);
        assert!(rx.recv().is_err(), "closed and drained");
    }

    #[test]
    fn an_unbounded_queue_stops_once_every_sender_is_closed() {
        let (mut q, rx, depth) = unbounded::<u32>();
        let mut other = q.clone();
        q.push(1).unwrap();
        other.push(2).unwrap();
        assert_eq!(q.depth(), 2);
        depth.done(2);
        q.close();
        assert_eq!(q.push(3), Err(3));
        other.close();
        assert_eq!(rx.iter().collect::<Vec<_>>(), vec![1, 2]);
    }
}
