//! The network layer: one task owns the libp2p [`Swarm`]; roles hold a
//! cloneable [`NetworkHandle`] (commands, some with oneshot replies) and read
//! a bounded stream of [`NetworkEvent`]s. Nothing outside this module touches
//! libp2p's swarm.
//!
//! The swarm loop never waits on a role: events go to the role's queue with
//! `try_send`, and when the queue is full the overflow policy applies — a
//! request is answered `busy` at once (the requester backs off and retries),
//! any other event is dropped — each counted in `crowdprove_overflow_total`.
//! A distributor's proof submissions have a lane of their own
//! ([`NetworkConfig::proof_lane`]), so a flood of polls never makes a
//! finished proof wait behind it or be refused `busy` in its place.
//!
//! libp2p's response channels stay here: a role gets a plain [`ReplyTo`]
//! with each request and answers through [`NetworkHandle::respond`].
//! Gossip is validated here, before it is queued ([`gossip`]). Roles never
//! wait on the swarm either: commands go down an unbounded queue whose
//! producers are bounded by the role's own inputs, and the counters
//! ([`NetworkHandle::stats`]) are shared atomics.
//!
//! # Layout
//! - [`behaviour`]: the `#[derive(NetworkBehaviour)]` struct: connection limits,
//!   identify, Kademlia, gossipsub, request-response, ping.
//! - [`codec`]: the length-framed envelope codec with per-direction limits.
//! - [`dht_store`]: the DHT's store: the distributors' provider records alone.
//! - [`gossip`]: the gossip validator both roles share.
//! - [`ip_limits`]: inbound connection caps per address and per subnet.
//! - this file: configuration, the handle, the events and the event loop.

pub mod behaviour;
pub mod codec;
pub mod dht_store;
pub mod gossip;
pub mod ip_limits;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::gossipsub::{self, MessageAcceptance, MessageId};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, InboundRequestId, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, identify, identity, kad, noise, tcp, yamux};
use protocol::envelope;
use protocol::messages::{AnyMessage, Rejected};
use protocol::{PublicKey, SecretKey, Timestamp};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use self::behaviour::{Behaviour, BehaviourEvent};
use self::codec::{EnvelopeCodec, WireCounters};
use crate::metrics::Metrics;

/// The gossipsub topic for job announcements and proven batches.
pub const JOBS_TOPIC: &str = "/crowdprove/1/jobs";

/// The name distributors publish provider records under; the DHT key is its
/// multihash ([`provider_key`]).
pub const DISTRIBUTOR_KEY: &[u8] = b"/crowdprove/1/distributor";

/// The Kademlia key of the distributors' provider records: the sha2-256
/// multihash of [`DISTRIBUTOR_KEY`] (code 0x12, length 32, digest), as the
/// spec wants provider keys to be, so other implementations (js-libp2p's
/// kad-dht reads the key as a CID's multihash) store and find it too.
pub fn provider_key() -> kad::RecordKey {
    let digest = protocol::ContentHash::of(DISTRIBUTOR_KEY).0;
    let mut multihash = Vec::with_capacity(2 + digest.len());
    multihash.extend_from_slice(&[0x12, 0x20]);
    multihash.extend_from_slice(&digest);
    kad::RecordKey::new(&multihash)
}

/// How often a distributor re-publishes its provider record.
const REPROVIDE_EVERY: Duration = Duration::from_secs(20);

/// Slots in the queue of events to the role, by default.
pub const EVENT_QUEUE: usize = 1024;

/// How long a stopping network keeps sending answers already queued.
const FLUSH_DEADLINE: Duration = Duration::from_secs(3);

/// Network settings.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// Addresses to listen on, e.g. `/ip4/0.0.0.0/tcp/4100`.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start, ideally with a `/p2p/<peer id>` suffix.
    pub bootstrap: Vec<Multiaddr>,
    /// Most established connections in all.
    pub max_connections: u32,
    /// Most established connections to one peer.
    pub max_connections_per_peer: u32,
    /// Most inbound connections per address and per subnet.
    pub ip_caps: ip_limits::IpCaps,
    /// How long a request may wait for its response.
    pub request_timeout: Duration,
    /// How long an unused connection stays open.
    pub idle_timeout: Duration,
    /// The one key whose gossip this node accepts and forwards (a prover:
    /// its distributor's; a distributor: its own). `None` ignores all gossip.
    pub gossip_signer: Option<PublicKey>,
    /// Slots in the queue of events to the role; when it is full, requests
    /// are answered `busy` and other events dropped.
    pub event_queue: usize,
    /// Slots in the lane of proof submissions ([`Inbox::proofs`]); 0 sends
    /// them down the event queue with everything else (a prover's node).
    pub proof_lane: usize,
}

/// What the network hands the role: its events, and a distributor's proof
/// submissions in a lane of their own.
#[derive(Debug)]
pub struct Inbox {
    /// Requests, gossip and connection events, in arrival order.
    pub events: mpsc::Receiver<NetworkEvent>,
    /// Requests whose envelope says `proof-submission`, when
    /// [`NetworkConfig::proof_lane`] is set; otherwise never sends.
    pub proofs: mpsc::Receiver<NetworkEvent>,
}

/// A request's way back: the network keeps libp2p's response channel under
/// `id` until [`NetworkHandle::respond`] answers it or the request fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyTo {
    /// The network's key for the waiting response channel.
    pub id: u64,
    /// When the network took the request off the wire.
    pub received: Instant,
}

impl Default for NetworkConfig {
    /// The `[network]` section's defaults (declared there, once).
    fn default() -> Self {
        crate::config::NetworkSection::default()
            .parse()
            .expect("the default addresses parse")
    }
}

/// Why a network operation failed.
#[derive(Debug, Clone, Error)]
pub enum NetError {
    /// The network task has stopped.
    #[error("the network task has stopped")]
    Stopped,
    /// A request got no response.
    #[error("request to {peer} failed: {reason}")]
    Request {
        /// The peer asked.
        peer: PeerId,
        /// What went wrong.
        reason: String,
    },
    /// The peer could not be located or reached.
    #[error("could not reach {peer}: {reason}")]
    Unreachable {
        /// The peer sought.
        peer: PeerId,
        /// What went wrong.
        reason: String,
    },
    /// Publishing failed.
    #[error("publish failed: {0}")]
    Publish(String),
    /// Starting the network failed.
    #[error("network start failed: {0}")]
    Start(String),
}

/// What the network tells the role.
#[derive(Debug)]
pub enum NetworkEvent {
    /// A peer sent a request; answer it with [`NetworkHandle::respond`].
    Request {
        /// Who sent it (authenticated by Noise).
        peer: PeerId,
        /// The address of the connection it came on, if it has one.
        from: Option<IpAddr>,
        /// The request bytes: an envelope, unchecked.
        bytes: Vec<u8>,
        /// Where the answer goes.
        reply: ReplyTo,
    },
    /// A gossip message signed by [`NetworkConfig::gossip_signer`]: already
    /// checked and forwarded.
    Gossip(AnyMessage),
    /// An inbound request failed below the role (oversized, truncated, timed out).
    InboundFailure {
        /// The peer.
        peer: PeerId,
        /// A short metrics label.
        reason: &'static str,
    },
    /// A connection to a new peer is up.
    Connected(PeerId),
    /// The last connection to a peer closed.
    Disconnected(PeerId),
}

/// Counters the network keeps, read without asking the network task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Peers with at least one connection.
    pub peers: u64,
    /// Request-response bytes read.
    pub rpc_bytes_read: u64,
    /// Request-response bytes written.
    pub rpc_bytes_written: u64,
}

enum Command {
    Request {
        peer: PeerId,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>, NetError>>,
    },
    Respond {
        reply: ReplyTo,
        bytes: Vec<u8>,
    },
    Publish {
        bytes: Vec<u8>,
    },
    Provide,
    Locate {
        peer: PeerId,
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    Stop {
        done: oneshot::Sender<()>,
    },
}

/// The roles' way to the network. Cheap to clone.
#[derive(Clone, Debug)]
pub struct NetworkHandle {
    commands: mpsc::UnboundedSender<Command>,
    local: PeerId,
    counters: Arc<WireCounters>,
    peers: Arc<AtomicU64>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

/// The libp2p peer id of a node identity: the same ed25519 key.
///
/// Total: libp2p names an ed25519 key by its protobuf encoding inlined in
/// an identity multihash, which any 32 bytes have; so no `PublicKey`, even
/// bytes that are no point on the curve (keys from the command line are
/// checked where they are parsed, [`crate::config::parse_public_key`]),
/// makes this panic. A peer id of such bytes names no peer that can ever
/// connect.
pub fn peer_id_of(key: &PublicKey) -> PeerId {
    // Protobuf `PublicKey { Type = Ed25519 (1), Data = 32 bytes }`.
    let mut encoded = [0u8; 36];
    encoded[..4].copy_from_slice(&[0x08, 0x01, 0x12, 0x20]);
    encoded[4..].copy_from_slice(&key.0);
    let multihash = libp2p::multihash::Multihash::<64>::wrap(0x00, &encoded)
        .expect("36 bytes fit a 64-byte multihash");
    PeerId::from_multihash(multihash).expect("an identity multihash of 36 bytes is a peer id")
}

/// The node identity behind a libp2p peer id, if it is an ed25519 one
/// (the only kind CrowdProve nodes use).
pub fn public_key_of(peer: &PeerId) -> Option<PublicKey> {
    let public = identity::PublicKey::try_decode_protobuf(&peer.to_bytes()[2..]).ok()?;
    let ed = public.try_into_ed25519().ok()?;
    Some(PublicKey(ed.to_bytes()))
}

impl NetworkHandle {
    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local
    }

    fn send(&self, command: Command) -> Result<(), NetError> {
        self.commands.send(command).map_err(|_| NetError::Stopped)
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx))?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Sends `bytes` to `peer` and waits for the response.
    pub async fn request(&self, peer: PeerId, bytes: Vec<u8>) -> Result<Vec<u8>, NetError> {
        self.ask(|reply| Command::Request { peer, bytes, reply })
            .await?
    }

    /// Answers an inbound request. Never waits; from any thread.
    pub fn respond(&self, reply: ReplyTo, bytes: Vec<u8>) {
        let _ = self.send(Command::Respond { reply, bytes });
    }

    /// Gossips `bytes` on the jobs topic. Never waits; a failure is logged
    /// by the network task (provers also poll, so a lost announcement only
    /// delays them).
    pub fn publish(&self, bytes: Vec<u8>) {
        let _ = self.send(Command::Publish { bytes });
    }

    /// Publishes (and keeps re-publishing) this node's provider record under
    /// [`DISTRIBUTOR_KEY`].
    pub fn provide(&self) -> Result<(), NetError> {
        self.send(Command::Provide)
    }

    /// Finds `peer` through the DHT and connects to it. Returns at once when
    /// already connected. Two lookups run side by side: the peer id itself
    /// (a closest-peers walk, which a crowd of fake provider records cannot
    /// hide: the caller pins the id), and the provider records under
    /// [`provider_key`], every step of the walk, not just the first 20.
    pub async fn locate(&self, peer: PeerId) -> Result<(), NetError> {
        self.ask(|reply| Command::Locate { peer, reply }).await?
    }

    /// Peers and wire counters, from shared atomics: never waits.
    pub fn stats(&self) -> NetStats {
        NetStats {
            peers: self.peers.load(Ordering::Relaxed),
            rpc_bytes_read: self.counters.read.load(Ordering::Relaxed),
            rpc_bytes_written: self.counters.written.load(Ordering::Relaxed),
        }
    }

    /// The addresses the node listens on.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetError> {
        self.ask(|reply| Command::ListenAddrs { reply }).await
    }

    /// Stops the network: answers already queued are sent (for up to a few
    /// seconds), requests the role never read are answered `busy`, then the
    /// swarm is dropped. Returns once it is.
    pub async fn stop(&self) {
        let _ = self.ask(|done| Command::Stop { done }).await;
    }
}

/// Starts the network for `secret` and returns the handle, the role's
/// inbox and the task that owns the swarm (it ends when every handle is
/// dropped).
pub async fn start(
    secret: &SecretKey,
    config: NetworkConfig,
    metrics: Arc<Metrics>,
) -> Result<(NetworkHandle, Inbox, tokio::task::JoinHandle<()>), NetError> {
    let counters = Arc::new(WireCounters::default());
    let mut swarm = build_swarm(secret, &config, counters.clone())?;
    let listening = listen(&mut swarm, &config).await?;
    dial_bootstrap(&mut swarm, &config);
    let local = *swarm.local_peer_id();
    let (command_tx, command_rx) = mpsc::unbounded_channel();
    let (event_tx, event_rx) = mpsc::channel(config.event_queue.max(1));
    let (proof_tx, proof_rx) = mpsc::channel(config.proof_lane.max(1));
    let peers = Arc::new(AtomicU64::new(0));
    let event_loop = EventLoop {
        swarm,
        commands: command_rx,
        events: event_tx,
        proofs: (config.proof_lane > 0).then_some(proof_tx),
        secret: secret.clone(),
        gossip_signer: config.gossip_signer,
        metrics,
        peers: peers.clone(),
        inbound: HashMap::new(),
        waiting: HashMap::new(),
        next_reply: 0,
        remote_ips: HashMap::new(),
        stopping: None,
        listening,
        requests: HashMap::new(),
        locates: Vec::new(),
        queries: HashMap::new(),
        providing: false,
        last_provide: None,
        bootstrapped: config.bootstrap.is_empty(),
    };
    let task = tokio::spawn(event_loop.run());
    let handle = NetworkHandle {
        commands: command_tx,
        local,
        counters,
        peers,
    };
    let inbox = Inbox {
        events: event_rx,
        proofs: proof_rx,
    };
    Ok((handle, inbox, task))
}

/// The swarm: TCP with Noise and yamux, and the [`Behaviour`].
fn build_swarm(
    secret: &SecretKey,
    config: &NetworkConfig,
    counters: Arc<WireCounters>,
) -> Result<Swarm<Behaviour>, NetError> {
    let keypair = identity::Keypair::ed25519_from_bytes(secret.seed())
        .map_err(|e| NetError::Start(format!("identity: {e}")))?;
    let codec = EnvelopeCodec::new(counters);
    let idle = config.idle_timeout;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| NetError::Start(format!("tcp transport: {e}")))?
        .with_behaviour(|key| {
            Behaviour::new(key, config, codec)
                .map_err(Box::<dyn std::error::Error + Send + Sync>::from)
        })
        .map_err(|e| NetError::Start(format!("behaviour: {e}")))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
        .build();
    Ok(swarm)
}

/// Listens on every configured address and returns them once each has
/// its address, so callers can publish them.
async fn listen(
    swarm: &mut Swarm<Behaviour>,
    config: &NetworkConfig,
) -> Result<Vec<Multiaddr>, NetError> {
    for addr in &config.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NetError::Start(format!("cannot listen on {addr}: {e}")))?;
    }
    let mut listening = Vec::new();
    while listening.len() < config.listen.len() {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(target: "net", %address, "listening");
                listening.push(address);
            }
            SwarmEvent::ListenerError { error, .. } => {
                return Err(NetError::Start(format!("listener failed: {error}")));
            }
            SwarmEvent::ListenerClosed { reason, .. } => {
                return Err(NetError::Start(format!("listener closed: {reason:?}")));
            }
            _ => {}
        }
    }
    Ok(listening)
}

/// Dials the bootstrap peers, and tells Kademlia where they are.
fn dial_bootstrap(swarm: &mut Swarm<Behaviour>, config: &NetworkConfig) {
    for addr in &config.bootstrap {
        if let Some(Protocol::P2p(peer)) = addr.iter().last() {
            let mut transport_addr = addr.clone();
            transport_addr.pop();
            swarm.behaviour_mut().kad.add_address(&peer, transport_addr);
        }
        if let Err(e) = swarm.dial(addr.clone()) {
            warn!(target: "net", %addr, error = %e, "cannot dial bootstrap peer");
        }
    }
}

/// A pending [`NetworkHandle::locate`].
struct Locate {
    peer: PeerId,
    reply: oneshot::Sender<Result<(), NetError>>,
    started: Instant,
}

/// What a running Kademlia query is for.
enum Query {
    /// Looking for providers of [`DISTRIBUTOR_KEY`] on behalf of locates.
    Providers,
    /// Looking up a peer's addresses.
    Closest(PeerId),
}

struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<NetworkEvent>,
    /// The proof lane, if the role has one.
    proofs: Option<mpsc::Sender<NetworkEvent>>,
    /// Seals the `busy` answers of the overflow policy.
    secret: SecretKey,
    gossip_signer: Option<PublicKey>,
    metrics: Arc<Metrics>,
    peers: Arc<AtomicU64>,
    /// Inbound requests not yet answered or failed, with their
    /// [`ReplyTo::id`]: a stopping network waits for them to drain.
    inbound: HashMap<InboundRequestId, u64>,
    /// The response channels the role has yet to answer, by [`ReplyTo::id`].
    waiting: HashMap<u64, ResponseChannel<Vec<u8>>>,
    next_reply: u64,
    /// The remote address of each open connection, either direction.
    remote_ips: HashMap<ConnectionId, IpAddr>,
    /// Set by [`Command::Stop`]: when the stop was asked, and whom to tell.
    stopping: Option<(Instant, oneshot::Sender<()>)>,
    listening: Vec<Multiaddr>,
    requests: HashMap<OutboundRequestId, oneshot::Sender<Result<Vec<u8>, NetError>>>,
    locates: Vec<Locate>,
    queries: HashMap<kad::QueryId, Query>,
    providing: bool,
    last_provide: Option<Instant>,
    bootstrapped: bool,
}

/// How long a locate may take before it fails.
const LOCATE_TIMEOUT: Duration = Duration::from_secs(30);

impl EventLoop {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            if let Some((since, _)) = &self.stopping
                && (self.inbound.is_empty() || since.elapsed() >= FLUSH_DEADLINE)
            {
                let unsent = self.inbound.len();
                if unsent > 0 {
                    warn!(target: "net", unsent, "stopping with answers not yet sent");
                }
                let (_, done) = self.stopping.take().expect("checked");
                let _ = done.send(());
                break;
            }
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => break,
                },
                _ = tick.tick() => self.on_tick(),
            }
        }
        debug!(target: "net", "network task stopped");
    }

    fn on_tick(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        if self.providing
            && self
                .last_provide
                .is_none_or(|at| at.elapsed() >= REPROVIDE_EVERY)
        {
            self.publish_provider_record();
        }
        let now = Instant::now();
        let (expired, live): (Vec<_>, Vec<_>) = std::mem::take(&mut self.locates)
            .into_iter()
            .partition(|l| now.duration_since(l.started) >= LOCATE_TIMEOUT);
        self.locates = live;
        for l in expired {
            let _ = l.reply.send(Err(NetError::Unreachable {
                peer: l.peer,
                reason: "not found in the DHT in time".into(),
            }));
        }
        if !self.locates.is_empty() && !self.queries.values().any(|q| matches!(q, Query::Providers))
        {
            self.query_providers();
        }
        let sought: Vec<PeerId> = self.locates.iter().map(|l| l.peer).collect();
        for peer in sought {
            self.look_up(peer);
        }
    }

    fn publish_provider_record(&mut self) {
        self.last_provide = Some(Instant::now());
        if let Err(e) = self
            .swarm
            .behaviour_mut()
            .kad
            .start_providing(provider_key())
        {
            warn!(target: "net", error = %e, "cannot store provider record");
        }
    }

    fn query_providers(&mut self) {
        let id = self.swarm.behaviour_mut().kad.get_providers(provider_key());
        self.queries.insert(id, Query::Providers);
    }

    /// Walks the DHT toward `peer` for its addresses, unless a walk runs.
    fn look_up(&mut self, peer: PeerId) {
        if self
            .queries
            .values()
            .any(|q| matches!(q, Query::Closest(p) if *p == peer))
        {
            return;
        }
        let id = self.swarm.behaviour_mut().kad.get_closest_peers(peer);
        self.queries.insert(id, Query::Closest(peer));
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Request { peer, bytes, reply } => {
                let id = self.swarm.behaviour_mut().rpc.send_request(&peer, bytes);
                self.requests.insert(id, reply);
            }
            Command::Respond { reply, bytes } => {
                let sent = self
                    .waiting
                    .remove(&reply.id)
                    .map(|channel| self.swarm.behaviour_mut().rpc.send_response(channel, bytes));
                if !matches!(sent, Some(Ok(()))) {
                    debug!(target: "net", "response dropped: the requester went away");
                }
            }
            Command::Publish { bytes } => {
                let topic = gossipsub::IdentTopic::new(JOBS_TOPIC);
                match self.swarm.behaviour_mut().gossipsub.publish(topic, bytes) {
                    // Nobody listening yet is normal: provers also poll.
                    Ok(_) | Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {}
                    Err(e) => warn!(target: "net", error = %e, "gossip not published"),
                }
            }
            Command::Provide => {
                self.providing = true;
                self.publish_provider_record();
            }
            Command::Locate { peer, reply } => {
                if self.swarm.is_connected(&peer) {
                    let _ = reply.send(Ok(()));
                    return;
                }
                self.locates.push(Locate {
                    peer,
                    reply,
                    started: Instant::now(),
                });
                // Fast path: an address we already know (a restarted peer on
                // its old address). The DHT lookup runs alongside.
                if let Err(e) = self.swarm.dial(peer) {
                    debug!(target: "net", %peer, error = %e, "no known address yet");
                }
                self.query_providers();
                self.look_up(peer);
            }
            Command::ListenAddrs { reply } => {
                let _ = reply.send(self.listening.clone());
            }
            Command::Stop { done } => {
                info!(target: "net", unanswered = self.inbound.len(), "network stopping");
                // The role has stopped, and every answer it sent came
                // before this command: a request still waiting was never
                // read. Say so rather than leave it to time out.
                let unread: Vec<u64> = self.waiting.keys().copied().collect();
                for id in unread {
                    self.busy(id);
                }
                self.stopping = Some((Instant::now(), done));
            }
        }
    }

    /// Queues `event` to the role without waiting; when the queue is full a
    /// request is answered `busy` and anything else is dropped.
    fn emit(&mut self, event: NetworkEvent) {
        let lane = match (&event, &self.proofs) {
            (NetworkEvent::Request { bytes, .. }, Some(proofs))
                if envelope::peek_kind(bytes) == Ok(protocol::messages::Kind::ProofSubmission) =>
            {
                proofs
            }
            _ => &self.events,
        };
        let event = match lane.try_send(event) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Closed(_)) => {
                debug!(target: "net", "role stopped reading events");
                return;
            }
            Err(mpsc::error::TrySendError::Full(event)) => event,
        };
        match event {
            NetworkEvent::Request { reply, .. } => self.busy(reply.id),
            NetworkEvent::Gossip(_) => self.metrics.overflowed("gossip_dropped"),
            _ => self.metrics.overflowed("event_dropped"),
        }
    }

    fn on_gossip(&mut self, id: MessageId, source: PeerId, bytes: &[u8]) {
        let (acceptance, message) = match &self.gossip_signer {
            None => (MessageAcceptance::Ignore, None),
            Some(signer) => match gossip::check(bytes, signer, Timestamp::now()) {
                gossip::Checked::Accept(message) => (MessageAcceptance::Accept, Some(message)),
                gossip::Checked::Ignore => (MessageAcceptance::Ignore, None),
                gossip::Checked::Reject(reason) => {
                    self.metrics.reject(reason);
                    (MessageAcceptance::Reject, None)
                }
            },
        };
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&id, &source, acceptance);
        if let Some(message) = message {
            self.emit(NetworkEvent::Gossip(message));
        }
    }

    fn set_peers(&self) {
        let peers = self.swarm.connected_peers().count() as u64;
        self.peers.store(peers, Ordering::Relaxed);
        self.metrics.peers.set(peers as i64);
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Rpc(event)) => self.on_rpc(event),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.on_gossip(message_id, propagation_source, &message.data),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => self.on_identified(peer_id, info.listen_addrs),
            SwarmEvent::Behaviour(BehaviourEvent::IpLimits(evicted)) => {
                debug!(
                    target: "net",
                    peer_id = %evicted.peer,
                    subnet = %evicted.subnet,
                    count = evicted.count,
                    newcomer = %evicted.newcomer,
                    "connection evicted: every inbound place taken, the most crowded subnet made room"
                );
                self.metrics.reject("connection_evicted");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id,
                result,
                step,
                ..
            })) => self.on_query(id, result, step.last),
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                num_established,
                endpoint,
                ..
            } => {
                let ip = ip_limits::ip_of(endpoint.get_remote_address());
                self.on_connected(peer_id, connection_id, ip, num_established.get());
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                ..
            } => {
                self.remote_ips.remove(&connection_id);
                if num_established == 0 {
                    debug!(target: "net", %peer_id, "disconnected");
                    self.set_peers();
                    self.emit(NetworkEvent::Disconnected(peer_id));
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                debug!(target: "net", ?peer_id, %error, "dial failed");
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error: libp2p::swarm::ListenError::Denied { cause },
                ..
            } => {
                if let Some(over) = cause.downcast_ref::<ip_limits::OverCap>() {
                    debug!(target: "net", from = %send_back_addr, %over, "connection refused");
                    self.metrics.reject("connection_cap");
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(target: "net", %address, "listening");
                self.listening.push(address);
            }
            _ => {}
        }
    }

    /// Identify told us where `peer` listens: Kademlia learns it.
    fn on_identified(&mut self, peer: PeerId, listen_addrs: Vec<Multiaddr>) {
        for addr in listen_addrs {
            self.swarm.behaviour_mut().kad.add_address(&peer, addr);
        }
        if !self.bootstrapped {
            self.bootstrapped = true;
            let _ = self.swarm.behaviour_mut().kad.bootstrap();
        }
        // A new neighbour: make sure it holds our provider record.
        if self.providing
            && self
                .last_provide
                .is_none_or(|at| at.elapsed() >= Duration::from_millis(500))
        {
            self.publish_provider_record();
        }
    }

    /// A connection is up: locates waiting for `peer` are answered, and
    /// the role hears of a new peer.
    fn on_connected(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        ip: Option<IpAddr>,
        established: u32,
    ) {
        if let Some(ip) = ip {
            self.remote_ips.insert(connection, ip);
        }
        let waiting: Vec<_>;
        (waiting, self.locates) = std::mem::take(&mut self.locates)
            .into_iter()
            .partition(|l| l.peer == peer);
        for l in waiting {
            let _ = l.reply.send(Ok(()));
        }
        if established == 1 {
            debug!(target: "net", %peer, "connected");
            self.set_peers();
            self.emit(NetworkEvent::Connected(peer));
        }
    }

    fn on_query(&mut self, id: kad::QueryId, result: kad::QueryResult, last: bool) {
        let Some(query) = self.queries.get(&id) else {
            return;
        };
        match (query, result) {
            (
                Query::Providers,
                kad::QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders {
                    providers,
                    ..
                })),
            ) => {
                let wanted: Vec<PeerId> = self
                    .locates
                    .iter()
                    .map(|l| l.peer)
                    .filter(|p| providers.contains(p))
                    .collect();
                for peer in wanted {
                    debug!(target: "net", %peer, "found provider record");
                    self.look_up(peer);
                }
            }
            (Query::Closest(peer), kad::QueryResult::GetClosestPeers(found)) => {
                let peer = *peer;
                // A walk that timed out still reports what it met.
                let peers = match found {
                    Ok(ok) => ok.peers,
                    Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
                };
                let addrs: Vec<Multiaddr> = peers
                    .into_iter()
                    .filter(|info| info.peer_id == peer)
                    .flat_map(|info| info.addrs)
                    .collect();
                if addrs.is_empty() {
                    return self.finish_query(id, last);
                }
                for addr in &addrs {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, addr.clone());
                }
                let dial = DialOpts::peer_id(peer).addresses(addrs).build();
                if let Err(e) = self.swarm.dial(dial) {
                    debug!(target: "net", %peer, error = %e, "dial after lookup failed");
                }
            }
            (_, other) => {
                debug!(target: "net", ?other, "kad query step");
            }
        }
        self.finish_query(id, last);
    }

    fn finish_query(&mut self, id: kad::QueryId, last: bool) {
        if last {
            self.queries.remove(&id);
        }
    }

    fn on_rpc(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        match event {
            request_response::Event::Message {
                peer,
                connection_id,
                message,
            } => match message {
                request_response::Message::Request {
                    request,
                    channel,
                    request_id,
                } => {
                    let id = self.next_reply;
                    self.next_reply += 1;
                    self.inbound.insert(request_id, id);
                    self.waiting.insert(id, channel);
                    if self.stopping.is_some() {
                        // Intake has stopped: say so rather than drop it.
                        return self.busy(id);
                    }
                    self.emit(NetworkEvent::Request {
                        peer,
                        from: self.remote_ips.get(&connection_id).copied(),
                        bytes: request,
                        reply: ReplyTo {
                            id,
                            received: Instant::now(),
                        },
                    });
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.requests.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some(reply) = self.requests.remove(&request_id) {
                    let _ = reply.send(Err(NetError::Request {
                        peer,
                        reason: error.to_string(),
                    }));
                }
            }
            request_response::Event::InboundFailure {
                peer,
                error,
                request_id,
                ..
            } => {
                if let Some(id) = self.inbound.remove(&request_id) {
                    self.waiting.remove(&id);
                }
                let reason = match error {
                    request_response::InboundFailure::Io(_) => "malformed_frame",
                    request_response::InboundFailure::Timeout => "timeout",
                    request_response::InboundFailure::UnsupportedProtocols => {
                        "unsupported_protocol"
                    }
                    request_response::InboundFailure::ResponseOmission => "no_response",
                    request_response::InboundFailure::ConnectionClosed => "connection_closed",
                };
                debug!(target: "net", %peer, reason, "inbound request failed");
                self.emit(NetworkEvent::InboundFailure { peer, reason });
            }
            request_response::Event::ResponseSent { request_id, .. } => {
                self.inbound.remove(&request_id);
            }
        }
    }

    /// Answers the request waiting under `id` with `busy` (the overflow
    /// policy; a stopping network).
    fn busy(&mut self, id: u64) {
        let Some(channel) = self.waiting.remove(&id) else {
            return;
        };
        self.metrics.overflowed("request_busy");
        let busy = Rejected {
            reason: "busy".into(),
        };
        let bytes = envelope::seal_now(&busy, &self.secret);
        let _ = self.swarm.behaviour_mut().rpc.send_response(channel, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_provider_key_is_the_sha256_multihash_of_the_name() {
        let key = provider_key().to_vec();
        assert_eq!(key.len(), 34);
        assert_eq!(&key[..2], &[0x12, 0x20], "sha2-256, 32 bytes");
        // The same bytes libp2p's own multihash type writes.
        let multihash = libp2p::multihash::Multihash::<64>::wrap(0x12, &key[2..]).unwrap();
        assert_eq!(multihash.to_bytes(), key);
        assert_eq!(
            &key[2..],
            &protocol::ContentHash::of(DISTRIBUTOR_KEY).0,
            "sha2-256 of the name"
        );
    }

    #[test]
    fn peer_ids_and_node_keys_convert_both_ways() {
        let secret = SecretKey::from_seed([9; 32]);
        let peer = peer_id_of(&secret.public());
        assert_eq!(public_key_of(&peer), Some(secret.public()));
        let keypair = identity::Keypair::ed25519_from_bytes(secret.seed()).unwrap();
        assert_eq!(keypair.public().to_peer_id(), peer);
        for n in 0..64u8 {
            let key = SecretKey::from_seed([n; 32]).public();
            let libp2p_own = identity::PublicKey::from(
                identity::ed25519::PublicKey::try_from_bytes(&key.0).unwrap(),
            );
            assert_eq!(peer_id_of(&key), libp2p_own.to_peer_id());
        }
    }

    #[test]
    fn bytes_that_are_no_key_have_a_peer_id_and_no_panic() {
        // y = 2 is no point on the curve; this panicked before.
        let mut off_curve = [0u8; 32];
        off_curve[0] = 2;
        let off_curve = PublicKey(off_curve);
        let peer = peer_id_of(&off_curve);
        assert_eq!(public_key_of(&peer), None, "it names no ed25519 key");
        assert_eq!(
            peer_id_of(&PublicKey([0xff; 32])),
            peer_id_of(&PublicKey([0xff; 32]))
        );
    }
}
