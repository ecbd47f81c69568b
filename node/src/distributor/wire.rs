//! The distributor's edge: requests come in on [`Lane`]s and answers and
//! gossip go out through a [`Transmit`] function, all as plain values. The
//! node wires them to the network (`node.rs`); the in-process tests wire
//! them to channels of their own. No transport type crosses this line: a
//! request's way back is a [`ReplyTo`], which the network resolves to its
//! own response channel.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use protocol::PublicKey;
use protocol::SecretKey;
use protocol::envelope;
use protocol::messages::{Message, Rejected};
use tokio::sync::mpsc;

use crate::metrics::Metrics;
use crate::network::NetStats;
pub use crate::network::ReplyTo;

/// Sends what the distributor sends; from any thread, never waits.
pub type Transmit = Arc<dyn Fn(Outgoing) + Send + Sync>;

/// The distributor's way out to the network, and the network's counters
/// for `/status`.
pub struct Edge {
    /// Where answers and gossip go.
    pub transmit: Transmit,
    /// The network's peer and byte counters.
    pub stats: Arc<dyn Fn() -> NetStats + Send + Sync>,
}

/// A queue of inbound items the run loop reads: the network's (in the
/// node) or a plain channel (in tests).
pub trait Lane {
    /// The next item; `None` once the lane is closed.
    fn recv(&mut self) -> impl Future<Output = Option<Inbound>> + Send;
    /// Items waiting.
    fn depth(&self) -> usize;
    /// Most items it holds.
    fn capacity(&self) -> usize;
}

impl Lane for mpsc::Receiver<Inbound> {
    fn recv(&mut self) -> impl Future<Output = Option<Inbound>> + Send {
        mpsc::Receiver::recv(self)
    }

    fn depth(&self) -> usize {
        self.len()
    }

    fn capacity(&self) -> usize {
        self.max_capacity()
    }
}

/// The distributor's inbound lanes, read by priority: a finished proof is
/// never queued behind polls, nor refused `busy` because they filled a
/// queue.
pub struct Lanes<L> {
    /// Proof submissions.
    pub proofs: L,
    /// Every other request, and connection events.
    pub requests: L,
}

/// A request from a peer, not yet admitted.
#[derive(Debug)]
pub struct Request {
    /// The node key of the sending peer (authenticated by the transport);
    /// `None` for a peer whose id is not an ed25519 key.
    pub sender: Option<PublicKey>,
    /// The address it came from, if the connection has one.
    pub from: Option<IpAddr>,
    /// The envelope, unchecked.
    pub bytes: Vec<u8>,
    /// Where its answer goes.
    pub reply: ReplyTo,
}

/// What the network tells the distributor.
#[derive(Debug)]
pub enum Inbound {
    /// A request to admit and answer.
    Request(Request),
    /// An inbound request failed below the distributor (a metrics label).
    Failed(&'static str),
    /// The last connection to this peer closed.
    Gone(PublicKey),
}

/// What the distributor sends: answers to requests, and gossip.
#[derive(Debug, PartialEq, Eq)]
pub enum Outgoing {
    /// A sealed answer to the request behind `to`.
    Reply {
        /// The request answered.
        to: ReplyTo,
        /// The sealed envelope.
        bytes: Vec<u8>,
    },
    /// A sealed message for the jobs topic.
    Publish(Vec<u8>),
}

/// Where the distributor's answers leave from, on any of its threads: the
/// signing key and the outgoing channel in one cheap-to-clone value.
#[derive(Clone)]
pub struct Outbox {
    transmit: Transmit,
    secret: Arc<SecretKey>,
    metrics: Arc<Metrics>,
}

impl Outbox {
    /// Answers signed with `secret`, sent through `transmit`.
    pub fn new(transmit: Transmit, secret: SecretKey, metrics: Arc<Metrics>) -> Self {
        Self {
            transmit,
            secret: Arc::new(secret),
            metrics,
        }
    }

    fn send(&self, outgoing: Outgoing) {
        (self.transmit)(outgoing);
    }

    /// Answers a request with `message`.
    pub fn reply<M: Message>(&self, to: ReplyTo, message: &M) {
        self.send(Outgoing::Reply {
            to,
            bytes: envelope::seal_now(message, &self.secret),
        });
    }

    /// Answers a request of `kind` with `message`, timing it from its arrival
    /// (`crowdprove_request_seconds{kind}`).
    pub fn answer<M: Message>(&self, kind: &str, to: ReplyTo, message: &M) {
        self.metrics.answered(kind, to.received);
        self.reply(to, message);
    }

    /// Answers a request with a refusal, counted under `reason`.
    pub fn refuse(&self, to: ReplyTo, reason: &str) {
        self.metrics.reject(reason);
        let message = Rejected {
            reason: reason.to_string(),
        };
        self.reply(to, &message);
    }

    /// Gossips `message` on the jobs topic.
    pub fn publish<M: Message>(&self, message: &M) {
        self.send(Outgoing::Publish(envelope::seal_now(message, &self.secret)));
    }
}
