//! Caps on inbound connections per remote address and per subnet (/24 for
//! IPv4, /48 for IPv6): a peer id costs nothing, an address does, so one
//! machine (or one small network) cannot bring a crowd of identities past
//! these. libp2p's `connection_limits` counts per peer id and in all, not
//! per address; this behaviour adds the rest. A cap of 0 means none.
//!
//! With every inbound place taken ([`IpCaps::total`]), a newcomer is not
//! simply refused: one from a less crowded subnet takes the place of the
//! newest connection from the most crowded subnet, so strangers holding a
//! few subnets cannot keep everyone else out. One from a subnet that would
//! then be (one of) the most crowded is refused, so connecting more never
//! evicts anyone from a smaller subnet. Crowding is judged by network
//! first (/16 of IPv4, /32 of IPv6: about what one provider holds), then by
//! subnet: a /48 is free for the asking from tunnel brokers, so strangers
//! with hundreds of /48s of one /32 crowd as one network, and a newcomer
//! from another network takes their place.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::hash::Hash;
use std::net::IpAddr;
use std::task::{Context, Poll, Waker};

use libp2p::core::transport::PortUse;
use libp2p::core::{ConnectedPoint, Endpoint};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    CloseConnection, ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour,
    THandler, THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};
use thiserror::Error;

/// The caps, each 0 for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpCaps {
    /// Inbound connections from one address.
    pub per_ip: u32,
    /// Inbound connections from one /24 (IPv4) or /48 (IPv6).
    pub per_subnet: u32,
    /// Inbound connections in all; past it the most crowded subnet makes
    /// room for a newcomer from a less crowded one.
    pub total: u32,
}

/// Why an inbound connection was refused.
#[derive(Debug, Error)]
pub enum OverCap {
    /// Past the cap on one address or one subnet.
    #[error("{count} connections from {what} already (cap {cap})")]
    Source {
        /// The address or subnet.
        what: String,
        /// Its connections open.
        count: u32,
        /// Its cap.
        cap: u32,
    },
    /// Every inbound place taken, and no subnet more crowded than the
    /// newcomer's own would be with it (by network, then by subnet).
    #[error(
        "all {total} inbound places taken and {subnet} would be the most crowded subnet, or in \
         the most crowded network ({count} connections)"
    )]
    Full {
        /// The newcomer's subnet.
        subnet: Subnet,
        /// Its connections, the newcomer counted.
        count: u32,
        /// The total cap.
        total: u32,
    },
}

/// An inbound connection closed to make room for a newcomer at the total cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evicted {
    /// The connection's peer.
    pub peer: PeerId,
    /// The connection.
    pub connection: ConnectionId,
    /// Its subnet, the most crowded.
    pub subnet: Subnet,
    /// Inbound connections from that subnet, this one still counted.
    pub count: u32,
    /// The subnet of the connection it made room for.
    pub newcomer: Subnet,
}

/// A /24 of IPv4 or a /48 of IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subnet {
    /// The first three octets.
    V4([u8; 3]),
    /// The first six octets.
    V6([u8; 6]),
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Self::V4([a, b, c]) => write!(f, "{a}.{b}.{c}.0/24"),
            Self::V6(o) => {
                let mut full = [0u8; 16];
                full[..6].copy_from_slice(&o);
                write!(f, "{}/48", std::net::Ipv6Addr::from(full))
            }
        }
    }
}

impl Subnet {
    /// The subnet `ip` is in (an IPv4-mapped IPv6 address: its IPv4 one's).
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                Self::V4([o[0], o[1], o[2]])
            }
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::of(IpAddr::V4(v4)),
                None => {
                    let o = v6.octets();
                    Self::V6([o[0], o[1], o[2], o[3], o[4], o[5]])
                }
            },
        }
    }
}

/// The address a multiaddr dials or was dialled from, if it names one.
pub fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(match ip.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(ip),
        }),
        _ => None,
    })
}

/// A /16 of IPv4 or a /32 of IPv6: the first level crowding is judged at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Network {
    /// The first two octets.
    V4([u8; 2]),
    /// The first four octets.
    V6([u8; 4]),
}

impl Subnet {
    /// The network this subnet is in.
    pub fn network(self) -> Network {
        match self {
            Self::V4([a, b, _]) => Network::V4([a, b]),
            Self::V6([a, b, c, d, ..]) => Network::V6([a, b, c, d]),
        }
    }
}

/// Who gives up a place when an inbound connection arrives with every
/// place taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loser {
    /// The newcomer: its subnet, counting it, is as crowded as any other.
    Newcomer,
    /// The newest connection from this subnet, the most crowded.
    Newest(Subnet),
}

/// At the total cap, who makes room for a newcomer from `newcomer`, given
/// the inbound connections open per subnet (the newcomer not yet counted):
/// the newest connection of a subnet more crowded than the newcomer's would
/// be, counting it. Subnets of another network compare by their networks'
/// counts, those of the newcomer's own network by their own; of all such,
/// the one in the most crowded network, then the most crowded subnet. A
/// tie goes against the newcomer, so that two equal subnets do not trade a
/// place back and forth, and between other subnets against the lowest,
/// whatever the map's order.
fn loser(counts: &HashMap<Subnet, u32>, newcomer: Subnet) -> Loser {
    let mut networks: HashMap<Network, u32> = HashMap::new();
    for (subnet, count) in counts {
        *networks.entry(subnet.network()).or_default() += count;
    }
    let home = newcomer.network();
    let own_network = networks.get(&home).copied().unwrap_or(0) + 1;
    let own_subnet = counts.get(&newcomer).copied().unwrap_or(0) + 1;
    counts
        .iter()
        .map(|(&subnet, &count)| (subnet, networks[&subnet.network()], count))
        .filter(|&(subnet, network, count)| {
            if subnet.network() == home {
                subnet != newcomer && count > own_subnet
            } else {
                network > own_network
            }
        })
        .max_by_key(|&(subnet, network, count)| (network, count, Reverse(subnet)))
        .map_or(Loser::Newcomer, |(subnet, ..)| Loser::Newest(subnet))
}

/// An established inbound connection.
#[derive(Debug, Clone, Copy)]
struct Inbound {
    peer: PeerId,
    ip: IpAddr,
    /// Establishment order: the newest has the highest.
    seq: u64,
}

/// The behaviour: counts established inbound connections by address and by
/// subnet, and denies one past either cap (checked before the handshake, and
/// again once it is established, so pending ones cannot slip past). At the
/// total cap it closes the most crowded subnet's newest connection to make
/// room, or denies the newcomer if its own subnet is the most crowded.
#[derive(Debug)]
pub struct Behaviour {
    caps: IpCaps,
    by_ip: HashMap<IpAddr, u32>,
    by_subnet: HashMap<Subnet, u32>,
    inbound: HashMap<ConnectionId, Inbound>,
    next_seq: u64,
    events: VecDeque<ToSwarm<Evicted, Infallible>>,
    waker: Option<Waker>,
}

impl Behaviour {
    /// A behaviour enforcing `caps`.
    pub fn new(caps: IpCaps) -> Self {
        Self {
            caps,
            by_ip: HashMap::new(),
            by_subnet: HashMap::new(),
            inbound: HashMap::new(),
            next_seq: 0,
            events: VecDeque::new(),
            waker: None,
        }
    }

    /// Whether one more inbound connection from `remote` is within the caps.
    fn check(&self, remote: &Multiaddr) -> Result<(), ConnectionDenied> {
        let Some(ip) = ip_of(remote) else {
            return Ok(());
        };
        let over = |count: u32, cap: u32, what: String| {
            (cap > 0 && count >= cap)
                .then(|| ConnectionDenied::new(OverCap::Source { what, count, cap }))
        };
        let from_ip = self.by_ip.get(&ip).copied().unwrap_or(0);
        if let Some(denied) = over(from_ip, self.caps.per_ip, ip.to_string()) {
            return Err(denied);
        }
        let subnet = Subnet::of(ip);
        let from_subnet = self.by_subnet.get(&subnet).copied().unwrap_or(0);
        if let Some(denied) = over(from_subnet, self.caps.per_subnet, subnet.to_string()) {
            return Err(denied);
        }
        if self.full() && loser(&self.by_subnet, subnet) == Loser::Newcomer {
            return Err(ConnectionDenied::new(OverCap::Full {
                subnet,
                count: from_subnet + 1,
                total: self.caps.total,
            }));
        }
        Ok(())
    }

    /// Whether every inbound place is taken.
    fn full(&self) -> bool {
        self.caps.total > 0 && self.inbound.len() >= self.caps.total as usize
    }

    /// Counts an established inbound connection; at the total cap, makes room.
    fn established(&mut self, id: ConnectionId, peer: PeerId, ip: IpAddr) {
        let newcomer = Subnet::of(ip);
        let loser = self.full().then(|| loser(&self.by_subnet, newcomer));
        self.opened(id, peer, ip);
        let victim = match loser {
            None => return,
            // Denied before it was established, unless the crowd moved since.
            Some(Loser::Newcomer) => Some(id),
            Some(Loser::Newest(crowded)) => self.newest(crowded),
        };
        if let Some(victim) = victim {
            self.evict(victim, newcomer);
        }
    }

    /// The newest inbound connection from `subnet`.
    fn newest(&self, subnet: Subnet) -> Option<ConnectionId> {
        self.inbound
            .iter()
            .filter(|(_, conn)| Subnet::of(conn.ip) == subnet)
            .max_by_key(|(_, conn)| conn.seq)
            .map(|(&id, _)| id)
    }

    /// Closes `victim` to make room for one from `newcomer`. Its place is
    /// free at once: it may take a moment to close, and must not be chosen
    /// twice meanwhile.
    fn evict(&mut self, victim: ConnectionId, newcomer: Subnet) {
        let Some(conn) = self.inbound.get(&victim).copied() else {
            return;
        };
        let subnet = Subnet::of(conn.ip);
        let count = self.by_subnet.get(&subnet).copied().unwrap_or(0);
        self.closed(victim);
        self.events.push_back(ToSwarm::GenerateEvent(Evicted {
            peer: conn.peer,
            connection: victim,
            subnet,
            count,
            newcomer,
        }));
        self.events.push_back(ToSwarm::CloseConnection {
            peer_id: conn.peer,
            connection: CloseConnection::One(victim),
        });
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    fn opened(&mut self, id: ConnectionId, peer: PeerId, ip: IpAddr) {
        *self.by_ip.entry(ip).or_default() += 1;
        *self.by_subnet.entry(Subnet::of(ip)).or_default() += 1;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.inbound.insert(id, Inbound { peer, ip, seq });
    }

    fn closed(&mut self, id: ConnectionId) {
        let Some(conn) = self.inbound.remove(&id) else {
            return;
        };
        release(&mut self.by_ip, conn.ip);
        release(&mut self.by_subnet, Subnet::of(conn.ip));
    }
}

/// One connection fewer under `key`; the entry goes at zero.
fn release<K: Hash + Eq>(counts: &mut HashMap<K, u32>, key: K) {
    if let Entry::Occupied(mut count) = counts.entry(key) {
        *count.get_mut() -= 1;
        if *count.get() == 0 {
            count.remove();
        }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Evicted;

    fn handle_pending_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.check(remote)
    }

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check(remote)?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(established) => {
                if let ConnectedPoint::Listener { send_back_addr, .. } = established.endpoint
                    && let Some(ip) = ip_of(send_back_addr)
                {
                    self.established(established.connection_id, established.peer_id, ip);
                }
            }
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. }) => {
                self.closed(connection_id)
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        if let Some(event) = self.events.pop_front() {
            return Poll::Ready(event);
        }
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn subnet(s: &str) -> Subnet {
        Subnet::of(ip(s))
    }

    #[test]
    fn caps_count_per_address_and_per_subnet_and_free_on_close() {
        let mut limits = Behaviour::new(IpCaps {
            per_ip: 2,
            per_subnet: 3,
            total: 0,
        });
        let a = addr("/ip4/10.0.0.1/tcp/5000");
        let b = addr("/ip4/10.0.0.2/tcp/5000");
        let elsewhere = addr("/ip4/10.0.1.1/tcp/5000");
        let ip = |m: &Multiaddr| ip_of(m).unwrap();
        let peer = PeerId::random();
        limits.opened(ConnectionId::new_unchecked(1), peer, ip(&a));
        limits.opened(ConnectionId::new_unchecked(2), peer, ip(&a));
        assert!(limits.check(&a).is_err(), "third from one address");
        assert!(limits.check(&b).is_ok());
        limits.opened(ConnectionId::new_unchecked(3), peer, ip(&b));
        let denied = limits.check(&b).unwrap_err();
        let err = denied.downcast_ref::<OverCap>().unwrap().to_string();
        assert_eq!(err, "3 connections from 10.0.0.0/24 already (cap 3)");
        assert!(limits.check(&elsewhere).is_ok(), "another /24");
        limits.closed(ConnectionId::new_unchecked(1));
        assert!(
            limits.check(&a).is_ok(),
            "a closed connection frees its place"
        );
        for id in 1..=3 {
            limits.closed(ConnectionId::new_unchecked(id));
        }
        assert!(limits.by_ip.is_empty() && limits.by_subnet.is_empty());
        // IPv6: one /48; an IPv4-mapped address counts as its IPv4 one.
        let v6 = |s: &str| ip_of(&addr(s)).unwrap();
        assert_eq!(
            Subnet::of(v6("/ip6/2001:db8:1:2::1/tcp/1")),
            Subnet::of(v6("/ip6/2001:db8:1:ffff::9/tcp/1"))
        );
        assert_ne!(
            Subnet::of(v6("/ip6/2001:db8:1::1/tcp/1")),
            Subnet::of(v6("/ip6/2001:db8:2::1/tcp/1"))
        );
        assert_eq!(v6("/ip6/::ffff:10.0.0.1/tcp/1"), ip(&a));
        assert_eq!(
            Subnet::of(v6("/ip6/2001:db8:1:2::1/tcp/1")).to_string(),
            "2001:db8:1::/48"
        );
        // No caps: anything goes.
        let open = Behaviour::new(IpCaps {
            per_ip: 0,
            per_subnet: 0,
            total: 0,
        });
        assert!(open.check(&a).is_ok());
    }

    /// Four attacker /24s at the per-subnet cap fill all 512 places.
    fn four_full_subnets() -> HashMap<Subnet, u32> {
        (1..=4)
            .map(|i| (subnet(&format!("10.0.{i}.1")), 128))
            .collect()
    }

    #[test]
    fn at_the_total_cap_a_newcomer_from_a_fresh_subnet_evicts_an_attacker() {
        let mut counts = four_full_subnets();
        let honest = subnet("192.168.7.20");
        // The lowest of the four tied subnets, whatever the map's order.
        assert_eq!(loser(&counts, honest), Loser::Newest(subnet("10.0.1.1")));
        // That subnet gave one up; the next newcomer takes from another.
        *counts.get_mut(&subnet("10.0.1.1")).unwrap() -= 1;
        counts.insert(honest, 1);
        assert_eq!(
            loser(&counts, subnet("172.16.0.1")),
            Loser::Newest(subnet("10.0.2.1"))
        );
    }

    #[test]
    fn an_attacker_reconnecting_loses_its_own_connection() {
        let mut counts = four_full_subnets();
        *counts.get_mut(&subnet("10.0.1.1")).unwrap() -= 1;
        counts.insert(subnet("192.168.7.20"), 1);
        // Back to 128, level with the other three: a tie goes against it.
        assert_eq!(loser(&counts, subnet("10.0.1.99")), Loser::Newcomer);
        // From a full subnet: it would be the most crowded.
        assert_eq!(loser(&counts, subnet("10.0.2.99")), Loser::Newcomer);
    }

    #[test]
    fn subnets_of_one_are_never_chosen_while_a_larger_one_exists() {
        // Each alone in its network too.
        let mut counts: HashMap<Subnet, u32> = (1..=255u8)
            .map(|i| (subnet(&format!("{i}.16.0.1")), 1))
            .collect();
        // All alone: a newcomer from a fresh subnet is refused, nobody goes.
        assert_eq!(loser(&counts, subnet("192.168.0.1")), Loser::Newcomer);
        // One subnet of two: it, and only it, gives way to a fresh one.
        counts.insert(subnet("10.9.9.1"), 2);
        assert_eq!(
            loser(&counts, subnet("192.168.0.1")),
            Loser::Newest(subnet("10.9.9.1"))
        );
        // ... but not to a newcomer from a subnet of one (two against two).
        assert_eq!(loser(&counts, subnet("172.16.0.9")), Loser::Newcomer);
        for newcomer in ["192.168.0.1", "172.16.0.9", "10.9.9.2", "10.0.0.1"] {
            if let Loser::Newest(chosen) = loser(&counts, subnet(newcomer)) {
                assert!(counts[&chosen] > 1, "{chosen} chosen for {newcomer}");
            }
        }
    }

    #[test]
    fn ipv6_slash_48s_are_chosen_the_same_way() {
        let counts: HashMap<Subnet, u32> = [
            ("2001:db8:1::1", 128),
            ("2001:db8:2::1", 128),
            ("2001:db8:3::1", 128),
            ("10.0.0.1", 128),
        ]
        .into_iter()
        .map(|(ip, count)| (subnet(ip), count))
        .collect();
        // Three /48s of one /32 are a network of 384: the most crowded.
        assert_eq!(
            loser(&counts, subnet("2a00:1450:4001::5")),
            Loser::Newest(subnet("2001:db8:1::1"))
        );
        let mut counts = counts;
        counts.remove(&subnet("10.0.0.1"));
        assert_eq!(
            loser(&counts, subnet("2a00:1450:4001::5")),
            Loser::Newest(subnet("2001:db8:1::1"))
        );
        // Another /64 of a full /48 is the same /48: refused.
        assert_eq!(
            loser(&counts, subnet("2001:db8:1:ffff::7")),
            Loser::Newcomer
        );
    }

    #[test]
    fn many_subnets_of_one_network_crowd_as_one() {
        // 512 /48s of one /32 (a tunnel broker's, say), one connection each.
        let counts: HashMap<Subnet, u32> = (0..512u32)
            .map(|i| (subnet(&format!("2001:470:{:x}::1", i + 1)), 1))
            .collect();
        // A newcomer from another network takes the place of one of them ...
        assert_eq!(
            loser(&counts, subnet("2a00:1450:4001::5")),
            Loser::Newest(subnet("2001:470:1::1"))
        );
        assert_eq!(
            loser(&counts, subnet("192.0.2.7")),
            Loser::Newest(subnet("2001:470:1::1"))
        );
        // ... one from yet another /48 of theirs does not.
        assert_eq!(loser(&counts, subnet("2001:470:ffff::1")), Loser::Newcomer);
        // The same holds for /24s of one IPv4 /16.
        let counts: HashMap<Subnet, u32> = (0..=255u8)
            .map(|i| (subnet(&format!("172.16.{i}.1")), 1))
            .collect();
        assert_eq!(
            loser(&counts, subnet("192.168.0.1")),
            Loser::Newest(subnet("172.16.0.1"))
        );
        assert_eq!(loser(&counts, subnet("172.16.5.9")), Loser::Newcomer);
        // Within the newcomer's own network, subnets compare as before.
        let mut counts = counts;
        counts.insert(subnet("10.9.1.1"), 3);
        counts.insert(subnet("10.9.2.1"), 1);
        assert_eq!(
            loser(&counts, subnet("10.9.7.7")),
            Loser::Newest(subnet("172.16.0.1")),
            "another network of 256 first"
        );
        counts.retain(|s, _| s.network() != subnet("172.16.0.1").network());
        assert_eq!(
            loser(&counts, subnet("10.9.7.7")),
            Loser::Newest(subnet("10.9.1.1"))
        );
        assert_eq!(
            loser(&counts, subnet("10.9.2.7")),
            Loser::Newest(subnet("10.9.1.1"))
        );
        assert_eq!(loser(&counts, subnet("10.9.1.7")), Loser::Newcomer);
    }

    #[test]
    fn the_behaviour_closes_the_newest_of_the_most_crowded_subnet() {
        let mut limits = Behaviour::new(IpCaps {
            per_ip: 0,
            per_subnet: 0,
            total: 4,
        });
        let crowd = PeerId::random();
        for (id, host) in [(1, "10.0.1.1"), (2, "10.0.1.2"), (3, "10.0.1.3")] {
            limits.established(ConnectionId::new_unchecked(id), crowd, ip(host));
        }
        let honest = PeerId::random();
        limits.established(ConnectionId::new_unchecked(4), honest, ip("10.0.2.1"));
        assert!(limits.events.is_empty(), "within the total");

        // Full: another from the crowded /24 is refused before the handshake.
        let denied = limits.check(&addr("/ip4/10.0.1.9/tcp/1")).unwrap_err();
        let err = denied.downcast_ref::<OverCap>().unwrap().to_string();
        assert_eq!(
            err,
            "all 4 inbound places taken and 10.0.1.0/24 would be the most crowded subnet, or in \
             the most crowded network (4 connections)"
        );
        // One from a fresh /24 is let in, and the crowd's newest makes room.
        let newcomer = addr("/ip4/10.0.3.1/tcp/1");
        assert!(limits.check(&newcomer).is_ok());
        limits.established(ConnectionId::new_unchecked(5), honest, ip("10.0.3.1"));
        let evicted = Evicted {
            peer: crowd,
            connection: ConnectionId::new_unchecked(3),
            subnet: subnet("10.0.1.1"),
            count: 3,
            newcomer: subnet("10.0.3.1"),
        };
        assert!(matches!(
            limits.events.pop_front(),
            Some(ToSwarm::GenerateEvent(e)) if e == evicted
        ));
        assert!(matches!(
            limits.events.pop_front(),
            Some(ToSwarm::CloseConnection { peer_id, connection: CloseConnection::One(id) })
                if peer_id == crowd && id == ConnectionId::new_unchecked(3)
        ));
        assert!(limits.events.is_empty());
        assert_eq!(limits.inbound.len(), 4);
        assert_eq!(limits.by_subnet[&subnet("10.0.1.1")], 2);
        // Its close arriving later frees nothing twice.
        limits.closed(ConnectionId::new_unchecked(3));
        assert_eq!(limits.inbound.len(), 4);
        assert_eq!(limits.by_subnet[&subnet("10.0.1.1")], 2);
        // Now 2, 1, 1: one more from a fresh /24 still takes the crowd's newest;
        // then it is 1, 1, 1, 1 and nobody makes room.
        limits.established(ConnectionId::new_unchecked(6), honest, ip("10.0.4.1"));
        assert!(matches!(
            limits.events.pop_front(),
            Some(ToSwarm::GenerateEvent(Evicted { connection, .. }))
                if connection == ConnectionId::new_unchecked(2)
        ));
        limits.events.clear();
        assert!(limits.check(&addr("/ip4/10.0.5.1/tcp/1")).is_err());
        assert!(limits.check(&addr("/ip4/10.0.1.1/tcp/1")).is_err());
    }
}
