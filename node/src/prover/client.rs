//! The prover's client of its distributor: signed requests out, answers
//! checked against the one key the prover trusts.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use libp2p::PeerId;
use protocol::envelope::{self, Freshness};
use protocol::messages::{AnyMessage, KeyChunk, KeyRequest, Message, WitnessChunk, WitnessRequest};
use protocol::{PublicKey, SecretKey, Timestamp};

use super::keys::ChunkSource;
use super::witness::WitnessSource;
use crate::metrics::Metrics;
use crate::network::{NetError, NetworkHandle, ReplyTo, peer_id_of};

/// How long a key or witness chunk, or a release, is asked for while the
/// distributor pushes back.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Why a call to the distributor failed.
#[derive(Debug)]
pub enum CallError {
    /// No answer (unreachable, timed out).
    Network(String),
    /// The distributor is overloaded or rate-limits us: back off and retry;
    /// not the prover's fault.
    Busy(String),
    /// The distributor answered with a refusal.
    Rejected(String),
    /// The answer did not check out (bad signature, not the distributor).
    BadAnswer(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Network(e) => write!(f, "distributor unreachable: {e}"),
            CallError::Busy(r) => write!(f, "distributor busy: {r}"),
            CallError::Rejected(r) => write!(f, "distributor refused: {r}"),
            CallError::BadAnswer(e) => write!(f, "bad answer from the distributor: {e}"),
        }
    }
}

/// What a [`Link`] call returns.
pub type LinkFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, NetError>> + Send + 'a>>;

/// The prover's way to its distributor, as plain calls: the libp2p network
/// in the node ([`NetworkHandle`]); in the in-process tests, channels to a
/// distributor in the same process. No transport type crosses it.
pub trait Link: Send + Sync + 'static {
    /// Sends request `bytes` to the node with key `to`; its answer.
    fn request(&self, to: PublicKey, bytes: Vec<u8>) -> LinkFuture<'_, Vec<u8>>;
    /// Finds and connects to the node with key `to`.
    fn locate(&self, to: PublicKey) -> LinkFuture<'_, ()>;
    /// Answers an inbound request. Never waits.
    fn respond(&self, reply: ReplyTo, bytes: Vec<u8>);
}

impl Link for NetworkHandle {
    fn request(&self, to: PublicKey, bytes: Vec<u8>) -> LinkFuture<'_, Vec<u8>> {
        Box::pin(NetworkHandle::request(self, peer_id_of(&to), bytes))
    }

    fn locate(&self, to: PublicKey) -> LinkFuture<'_, ()> {
        Box::pin(NetworkHandle::locate(self, peer_id_of(&to)))
    }

    fn respond(&self, reply: ReplyTo, bytes: Vec<u8>) {
        NetworkHandle::respond(self, reply, bytes)
    }
}

/// One identity's line to the distributor.
pub struct Client {
    secret: SecretKey,
    distributor: PublicKey,
    distributor_peer: PeerId,
    link: Arc<dyn Link>,
    /// How fresh an answer must be. Answers are not checked for replays:
    /// each arrives on this prover's own request stream (authenticated and
    /// encrypted by the transport, matched to its request), so only the
    /// distributor could repeat one, and it could as well sign it anew. A
    /// replay guard's per-signer quota would only let a busy run of this
    /// prover's own calls (key chunks, receipts) crowd out a verdict.
    freshness: Freshness,
    metrics: Arc<Metrics>,
}

impl Client {
    /// A client for `secret`, trusting `distributor`.
    pub fn new(
        secret: SecretKey,
        distributor: PublicKey,
        link: Arc<dyn Link>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            secret,
            distributor_peer: peer_id_of(&distributor),
            distributor,
            link,
            freshness: Freshness::default(),
            metrics,
        }
    }

    /// This identity's public key.
    pub fn me(&self) -> PublicKey {
        self.secret.public()
    }

    /// The distributor's key.
    pub fn distributor(&self) -> PublicKey {
        self.distributor
    }

    /// The distributor's peer id.
    pub fn distributor_peer(&self) -> PeerId {
        self.distributor_peer
    }

    /// The metrics this client counts into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Finds and connects to the distributor.
    pub async fn locate(&self) -> Result<(), NetError> {
        self.link.locate(self.distributor).await
    }

    /// Answers an inbound request (provers serve none: a refusal).
    pub fn respond<M: Message>(&self, reply: ReplyTo, message: &M) {
        self.link.respond(reply, self.seal(message));
    }

    /// Seals `message` with this identity's key.
    pub fn seal<M: Message>(&self, message: &M) -> Vec<u8> {
        envelope::seal_now(message, &self.secret)
    }

    /// Sends a signed request to the distributor and checks that the answer
    /// is signed by it.
    pub async fn call<M: Message>(&self, message: &M) -> Result<AnyMessage, CallError> {
        self.call_raw(self.seal(message)).await
    }

    /// [`Client::call`], asked again while the distributor answers `busy`
    /// or `rate_limited` (each time sealed afresh), backing off from 250 ms
    /// to 8 s, for up to `patience`: back-pressure is no reason to give up
    /// a key download halfway (a key of more than 40 chunks outruns the
    /// default rate limit) or to leave a job unreleased.
    pub async fn call_when_free<M: Message>(
        &self,
        message: &M,
        patience: Duration,
    ) -> Result<AnyMessage, CallError> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut delay = Duration::from_millis(250);
        loop {
            match self.call(message).await {
                Err(CallError::Busy(_)) if tokio::time::Instant::now() + delay < deadline => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(8));
                }
                answer => return answer,
            }
        }
    }

    /// [`Client::call`] with an envelope sealed already.
    pub async fn call_raw(&self, bytes: Vec<u8>) -> Result<AnyMessage, CallError> {
        let answer = self
            .link
            .request(self.distributor, bytes)
            .await
            .map_err(|e| CallError::Network(e.to_string()))?;
        let signed =
            envelope::open_any(&answer, Timestamp::now(), self.freshness).map_err(|e| {
                self.metrics.reject(e.label());
                CallError::BadAnswer(e.to_string())
            })?;
        if signed.signer() != self.distributor {
            self.metrics.reject("not_the_distributor");
            return Err(CallError::BadAnswer("signed by another key".into()));
        }
        match signed.body {
            AnyMessage::Rejected(r) if matches!(r.reason.as_str(), "busy" | "rate_limited") => {
                self.metrics.pushed_back(&r.reason);
                Err(CallError::Busy(r.reason))
            }
            AnyMessage::Rejected(r) => Err(CallError::Rejected(r.reason)),
            body => Ok(body),
        }
    }
}

impl Client {
    /// Asks for one chunk (`request`, patiently) and takes the answer of
    /// the kind `take` accepts; `Err` names the kind that came instead.
    async fn chunk<T>(
        &self,
        request: &impl Message,
        take: impl FnOnce(AnyMessage) -> Result<T, AnyMessage>,
    ) -> anyhow::Result<T> {
        let answer = self
            .call_when_free(request, PATIENCE)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        take(answer).or_else(|other| bail!("asked for a chunk, got a {}", other.kind()))
    }
}

impl ChunkSource for Client {
    async fn fetch(&self, request: KeyRequest) -> anyhow::Result<KeyChunk> {
        let chunk = self
            .chunk(&request, |answer| match answer {
                AnyMessage::KeyChunk(chunk) => Ok(chunk),
                other => Err(other),
            })
            .await?;
        let fetched = &self.metrics.key_bytes_fetched;
        fetched.inc_by(chunk.data.len() as u64);
        Ok(chunk)
    }
}

impl WitnessSource for Client {
    async fn fetch_witness(&self, request: WitnessRequest) -> anyhow::Result<WitnessChunk> {
        let chunk = self
            .chunk(&request, |answer| match answer {
                AnyMessage::WitnessChunk(chunk) => Ok(chunk),
                other => Err(other),
            })
            .await?;
        let fetched = &self.metrics.witness_bytes_fetched;
        fetched.inc_by(chunk.data.len() as u64);
        Ok(chunk)
    }
}
