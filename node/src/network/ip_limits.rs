//! Caps on inbound connections per remote address and per subnet (/24 for
//! IPv4, /48 for IPv6): a peer id costs nothing, an address does, so one
//! machine (or one small network) cannot bring a crowd of identities past
//! these. libp2p's `connection_limits` counts per peer id and in all, not
//! per address; this behaviour adds the rest. A cap of 0 means none.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::convert::Infallible;
use std::hash::Hash;
use std::net::IpAddr;
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::{ConnectedPoint, Endpoint};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
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
}

/// Why an inbound connection was refused.
#[derive(Debug, Error)]
#[error("{count} connections from {what} already (cap {cap})")]
pub struct OverCap {
    what: String,
    count: u32,
    cap: u32,
}

/// A /24 of IPv4 or a /48 of IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// The behaviour: counts established inbound connections by address and by
/// subnet, and denies one past either cap (checked before the handshake, and
/// again once it is established, so pending ones cannot slip past).
#[derive(Debug)]
pub struct Behaviour {
    caps: IpCaps,
    by_ip: HashMap<IpAddr, u32>,
    by_subnet: HashMap<Subnet, u32>,
    inbound: HashMap<ConnectionId, IpAddr>,
}

impl Behaviour {
    /// A behaviour enforcing `caps`.
    pub fn new(caps: IpCaps) -> Self {
        Self {
            caps,
            by_ip: HashMap::new(),
            by_subnet: HashMap::new(),
            inbound: HashMap::new(),
        }
    }

    /// Whether one more inbound connection from `remote` is within the caps.
    fn check(&self, remote: &Multiaddr) -> Result<(), ConnectionDenied> {
        let Some(ip) = ip_of(remote) else {
            return Ok(());
        };
        let over = |count: u32, cap: u32, what: String| {
            (cap > 0 && count >= cap).then(|| ConnectionDenied::new(OverCap { what, count, cap }))
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
        Ok(())
    }

    fn opened(&mut self, id: ConnectionId, ip: IpAddr) {
        *self.by_ip.entry(ip).or_default() += 1;
        *self.by_subnet.entry(Subnet::of(ip)).or_default() += 1;
        self.inbound.insert(id, ip);
    }

    fn closed(&mut self, id: ConnectionId) {
        let Some(ip) = self.inbound.remove(&id) else {
            return;
        };
        release(&mut self.by_ip, ip);
        release(&mut self.by_subnet, Subnet::of(ip));
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
    type ToSwarm = Infallible;

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
                    self.opened(established.connection_id, ip);
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

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn caps_count_per_address_and_per_subnet_and_free_on_close() {
        let mut limits = Behaviour::new(IpCaps {
            per_ip: 2,
            per_subnet: 3,
        });
        let a = addr("/ip4/10.0.0.1/tcp/5000");
        let b = addr("/ip4/10.0.0.2/tcp/5000");
        let elsewhere = addr("/ip4/10.0.1.1/tcp/5000");
        let ip = |m: &Multiaddr| ip_of(m).unwrap();
        limits.opened(ConnectionId::new_unchecked(1), ip(&a));
        limits.opened(ConnectionId::new_unchecked(2), ip(&a));
        assert!(limits.check(&a).is_err(), "third from one address");
        assert!(limits.check(&b).is_ok());
        limits.opened(ConnectionId::new_unchecked(3), ip(&b));
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
        });
        assert!(open.check(&a).is_ok());
    }
}
