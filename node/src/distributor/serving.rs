//! The serving thread: proving-key chunks and receipts, answered from
//! read-only views (the key bytes in memory, the ledger under a read lock)
//! off the run loop, behind a bounded queue. A full queue is answered
//! `busy` by the caller.

use std::sync::Arc;
use std::thread::JoinHandle;

use protocol::ContentHash;
use protocol::messages::{KEY_CHUNK_BYTES, KeyChunk, KeyRequest, ReceiptReply, ReceiptRequest};
use tracing::error;

use super::outbox::{Channel, Outbox};
use super::payout::SharedLedger;
use super::queue::{self, Bounded};

/// A request the serving thread answers.
pub enum Serve {
    /// A chunk of the proving key.
    Key(KeyRequest, Channel),
    /// A job's receipt.
    Receipt(ReceiptRequest, Channel),
}

/// What the thread serves from.
pub struct Sources {
    /// The proving key file's bytes.
    pub proving_key: Arc<Vec<u8>>,
    /// Their content hash.
    pub proving_key_hash: ContentHash,
    /// The ledger.
    pub ledger: SharedLedger,
}

/// The handle to the serving thread.
pub struct Server {
    queue: Bounded<Serve>,
}

/// The running thread.
pub struct ServerThread(JoinHandle<()>);

impl ServerThread {
    /// Waits until every queued request is answered.
    pub fn join(self) {
        let _ = self.0.join();
    }
}

impl Server {
    /// Starts the thread; at most `queue` requests wait.
    pub fn start(
        sources: Sources,
        outbox: Outbox,
        queue: usize,
    ) -> std::io::Result<(Self, ServerThread)> {
        let (queue, rx, depth) = queue::bounded(queue);
        let thread = std::thread::Builder::new()
            .name("serving".into())
            .spawn(move || {
                while let Ok(request) = rx.recv() {
                    serve(&sources, &outbox, request);
                    depth.done(1);
                }
            })?;
        Ok((Self { queue }, ServerThread(thread)))
    }

    /// Queues a request; a full queue gives it back.
    pub fn submit(&self, request: Serve) -> Result<(), Serve> {
        self.queue.push(request)
    }

    /// Takes no more requests; the thread stops once the queue is empty.
    pub fn close(&mut self) {
        self.queue.close();
    }

    /// Requests waiting.
    pub fn depth(&self) -> usize {
        self.queue.depth()
    }

    /// The queue's capacity.
    pub fn capacity(&self) -> usize {
        self.queue.capacity()
    }
}

fn serve(sources: &Sources, outbox: &Outbox, request: Serve) {
    match request {
        Serve::Key(request, channel) => match key_chunk(sources, &request) {
            Ok(chunk) => outbox.reply(channel, &chunk),
            Err(reason) => outbox.refuse(channel, reason),
        },
        Serve::Receipt(request, channel) => {
            let found = sources
                .ledger
                .read()
                .expect("ledger lock")
                .receipt(request.job);
            let receipt = match found {
                Ok(receipt) => receipt.encode(),
                // Paid, but its block is not cut yet: ask again later.
                Err(ledger::Error::NotYetInBlock { .. }) => Vec::new(),
                Err(ledger::Error::NotCredited { .. }) => {
                    return outbox.refuse(channel, "not_credited");
                }
                Err(e) => {
                    error!(target: "ledger", error = %e, "receipt failed");
                    return outbox.refuse(channel, "ledger_error");
                }
            };
            let reply = ReceiptReply {
                job: request.job,
                receipt,
            };
            outbox.reply(channel, &reply);
        }
    }
}

/// The chunk `request` asks for, or why not.
fn key_chunk(sources: &Sources, request: &KeyRequest) -> Result<KeyChunk, &'static str> {
    if request.key != sources.proving_key_hash {
        return Err("unknown_key");
    }
    let bytes = &sources.proving_key;
    let total = bytes.len() as u64;
    let start = u64::from(request.chunk) * KEY_CHUNK_BYTES as u64;
    if start >= total {
        return Err("chunk_out_of_range");
    }
    let end = (start + KEY_CHUNK_BYTES as u64).min(total);
    Ok(KeyChunk {
        key: sources.proving_key_hash,
        chunk: request.chunk,
        total_len: total,
        data: bytes[start as usize..end as usize].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::SecretKey;
    use std::sync::RwLock;

    #[test]
    fn chunks_cover_the_key_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let secret = SecretKey::from_seed([10; 32]);
        let ledger =
            ledger::Ledger::open(dir.path(), &secret, ledger::LedgerConfig::default()).unwrap();
        let key = vec![7u8; KEY_CHUNK_BYTES + 10];
        let hash = ContentHash::of(&key);
        let sources = Sources {
            proving_key: Arc::new(key),
            proving_key_hash: hash,
            ledger: Arc::new(RwLock::new(ledger)),
        };
        let ask = |chunk| KeyRequest { key: hash, chunk };
        assert_eq!(
            key_chunk(&sources, &ask(0)).unwrap().data.len(),
            KEY_CHUNK_BYTES
        );
        let last = key_chunk(&sources, &ask(1)).unwrap();
        assert_eq!(
            (last.data.len(), last.total_len),
            (10, KEY_CHUNK_BYTES as u64 + 10)
        );
        assert_eq!(
            key_chunk(&sources, &ask(2)).unwrap_err(),
            "chunk_out_of_range"
        );
        let other = KeyRequest {
            key: ContentHash::of(b"other"),
            chunk: 0,
        };
        assert_eq!(key_chunk(&sources, &other).unwrap_err(), "unknown_key");
    }
}
