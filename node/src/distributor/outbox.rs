//! Sealed answers and gossip, from any of the distributor's threads: the
//! signing key and the network handle in one cheap-to-clone value.

use std::sync::Arc;
use std::time::Instant;

use libp2p::request_response::ResponseChannel;
use protocol::SecretKey;
use protocol::envelope;
use protocol::messages::{Message, Rejected};

use crate::metrics::Metrics;
use crate::network::NetworkHandle;

/// Where the distributor's answers leave from.
#[derive(Clone)]
pub struct Outbox {
    net: NetworkHandle,
    secret: Arc<SecretKey>,
    metrics: Arc<Metrics>,
}

/// A request's way back to its sender, and when it arrived.
pub struct Channel {
    inner: ResponseChannel<Vec<u8>>,
    received: Instant,
}

impl Channel {
    /// The way back for a request the network took in at `received`.
    pub fn new(inner: ResponseChannel<Vec<u8>>, received: Instant) -> Self {
        Self { inner, received }
    }
}

impl Outbox {
    /// Answers signed with `secret`, sent through `net`.
    pub fn new(net: NetworkHandle, secret: SecretKey, metrics: Arc<Metrics>) -> Self {
        Self {
            net,
            secret: Arc::new(secret),
            metrics,
        }
    }

    /// Answers a request with `message`.
    pub fn reply<M: Message>(&self, channel: Channel, message: &M) {
        self.net
            .respond(channel.inner, envelope::seal_now(message, &self.secret));
    }

    /// Answers a request of `kind` with `message`, timing it from its arrival
    /// (`crowdprove_request_seconds{kind}`).
    pub fn answer<M: Message>(&self, kind: &str, channel: Channel, message: &M) {
        self.metrics.answered(kind, channel.received);
        self.reply(channel, message);
    }

    /// Answers a request with a refusal, counted under `reason`.
    pub fn refuse(&self, channel: Channel, reason: &str) {
        self.metrics.reject(reason);
        let message = Rejected {
            reason: reason.to_string(),
        };
        self.reply(channel, &message);
    }

    /// Gossips `message` on the jobs topic.
    pub fn publish<M: Message>(&self, message: &M) {
        self.net.publish(envelope::seal_now(message, &self.secret));
    }
}
