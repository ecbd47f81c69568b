#![allow(missing_docs)] // `#[derive(NetworkBehaviour)]` adds an undocumented event enum
//! The libp2p behaviour the node runs: every protocol it speaks, in one
//! struct, built from the node's identity.

use std::time::Duration;

use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    StreamProtocol, connection_limits, gossipsub, identify, identity::Keypair, kad, ping,
    request_response,
};

use super::codec::{EnvelopeCodec, RPC_PROTOCOL};
use super::dht_store::DhtStore;
use super::ip_limits;
use super::{JOBS_TOPIC, NetworkConfig};

/// Kademlia protocol name: our own DHT, apart from any public one.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/crowdprove/1/kad");
/// Identify protocol version string.
pub const IDENTIFY_VERSION: &str = "/crowdprove/1/id";

/// Everything the node speaks.
///
/// - `limits`: caps on pending and established connections, per peer and in all;
/// - `ip_limits`: caps on inbound connections per address and per subnet, and
///   at the total cap the most crowded subnet making room for a less crowded one;
/// - `identify`: peers tell each other their listen addresses, which feed Kademlia;
/// - `kad`: the DHT: bootstrap, the distributor's provider record, peer lookup;
/// - `gossipsub`: signed job announcements and batch results, each validated by
///   the role before it is forwarded;
/// - `rpc`: request-response carrying signed envelopes (jobs, proofs, keys,
///   receipts) with the [`EnvelopeCodec`] size limits;
/// - `ping`: liveness.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Connection limits.
    pub limits: connection_limits::Behaviour,
    /// Connection limits per address and subnet.
    pub ip_limits: ip_limits::Behaviour,
    /// Address exchange.
    pub identify: identify::Behaviour,
    /// The DHT.
    pub kad: kad::Behaviour<DhtStore>,
    /// Announcements.
    pub gossipsub: gossipsub::Behaviour,
    /// Requests and responses.
    pub rpc: request_response::Behaviour<EnvelopeCodec>,
    /// Liveness.
    pub ping: ping::Behaviour,
}

impl Behaviour {
    /// Builds the behaviour for `key` under `config`.
    pub fn new(
        key: &Keypair,
        config: &NetworkConfig,
        codec: EnvelopeCodec,
    ) -> Result<Self, String> {
        let peer_id = key.public().to_peer_id();

        // ip_limits keeps inbound connections within `max_connections` and
        // makes room there for a newcomer from a less crowded subnet by
        // closing one, which takes a moment: libp2p's cap sits a quarter
        // above, or it would refuse the newcomer first. The rest of that
        // room is for outbound connections. Clamped, so a config that lowers
        // `max_connections` alone still evicts below libp2p's cap.
        let ip_caps = ip_limits::IpCaps {
            total: config.ip_caps.total.min(config.max_connections),
            ..config.ip_caps
        };
        let max_established = match ip_caps.total {
            0 => config.max_connections,
            _ => config
                .max_connections
                .saturating_add((config.max_connections / 4).max(8)),
        };
        let limits = connection_limits::ConnectionLimits::default()
            .with_max_established(Some(max_established))
            .with_max_established_per_peer(Some(config.max_connections_per_peer))
            .with_max_pending_incoming(Some(config.max_connections.min(128)));

        let identify = identify::Behaviour::new(identify::Config::new(
            IDENTIFY_VERSION.to_string(),
            key.public(),
        ));

        let kad = kademlia(peer_id);
        let gossipsub = gossip(key)?;

        let rpc = request_response::Behaviour::with_codec(
            codec,
            [(RPC_PROTOCOL, request_response::ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(config.request_timeout)
                .with_max_concurrent_streams(256),
        );

        Ok(Self {
            limits: connection_limits::Behaviour::new(limits),
            ip_limits: ip_limits::Behaviour::new(ip_caps),
            identify,
            kad,
            gossipsub,
            rpc,
            ping: ping::Behaviour::default(),
        })
    }
}

/// Kademlia, serving the DHT on every node, storing only the distributors'
/// provider records ([`DhtStore`]).
fn kademlia(peer_id: libp2p::PeerId) -> kad::Behaviour<DhtStore> {
    let mut kad_config = kad::Config::new(KAD_PROTOCOL);
    kad_config.set_query_timeout(Duration::from_secs(30));
    let store = DhtStore::new(peer_id);
    let mut kad = kad::Behaviour::with_config(peer_id, store, kad_config);
    // Loopback and LAN addresses are never "confirmed external", so Kademlia
    // would stay a client and answer no one: every node serves the DHT.
    kad.set_mode(Some(kad::Mode::Server));
    kad
}

/// Gossipsub on the jobs topic: validated before forwarding, scored.
fn gossip(key: &Keypair) -> Result<gossipsub::Behaviour, String> {
    let gossip_config = gossipsub::ConfigBuilder::default()
        .validate_messages()
        .validation_mode(gossipsub::ValidationMode::Strict)
        .max_transmit_size(96 << 10)
        .heartbeat_interval(Duration::from_secs(1))
        .message_id_fn(|message: &gossipsub::Message| {
            // Content-addressed: the same envelope relayed twice is one message.
            gossipsub::MessageId::from(protocol::ContentHash::of(&message.data).0.to_vec())
        })
        .build()
        .map_err(|e| format!("gossipsub config: {e}"))?;
    let mut gossipsub = gossipsub::Behaviour::new(
        gossipsub::MessageAuthenticity::Signed(key.clone()),
        gossip_config,
    )
    .map_err(|e| format!("gossipsub: {e}"))?;
    let topic = gossipsub::IdentTopic::new(JOBS_TOPIC);
    let mut score = gossipsub::PeerScoreParams {
        // No penalty for peers sharing an IP: many honest provers do (one
        // NAT, one cloud host, the testnet's loopback), and the default
        // (-5 per extra peer past 10, squared) left a crowd of 500 on one
        // address so far below the publish threshold that the
        // distributor's gossip never reached it. Gossip carries only
        // distributor-signed messages, checked before forwarding, so
        // colocation guards nothing the signature does not.
        ip_colocation_factor_weight: 0.0,
        ..Default::default()
    };
    score.topics.insert(
        topic.hash(),
        gossipsub::TopicScoreParams {
            // A rejected message costs its sender hard.
            invalid_message_deliveries_weight: -100.0,
            ..Default::default()
        },
    );
    gossipsub
        .with_peer_score(score, gossipsub::PeerScoreThresholds::default())
        .map_err(|e| format!("gossipsub scoring: {e}"))?;
    gossipsub
        .subscribe(&topic)
        .map_err(|e| format!("gossipsub subscribe: {e}"))?;
    Ok(gossipsub)
}
