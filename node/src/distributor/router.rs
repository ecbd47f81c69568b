//! Admission: what every request passes before any service sees it, cheapest
//! and stateless first — the rate limits of the sending peer, of its
//! address and of its subnet, the envelope (size, decoding, freshness,
//! signature), the signer being the sending peer, the allowlist — and only
//! then the replay guard, the one check that remembers. A message that fails
//! an earlier check leaves no trace in it, and each signer's share of it is
//! capped, so no sender can crowd out another. The distributor's run loop
//! then dispatches what is admitted by kind.
//!
//! Identities are free, addresses are not: the per-peer limit alone lets a
//! thousand keys on one machine send a thousand times as much, so the
//! address (and its /24 or /48) has a limit of its own.
//!
//! State here is bounded: one token bucket per peer, address and subnet that
//! sent recently — a peer's dropped when it disconnects, all swept once
//! refilled — so the maps hold about as many entries as there are
//! connections; the replay guard holds at most
//! `ReplayGuard::DEFAULT_CAPACITY` entries, and a peer whose rate limit holds
//! never reaches its quota there.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use protocol::envelope::{self, Freshness, ReplayGuard};
use protocol::messages::AnyMessage;
use protocol::{PublicKey, Timestamp};

use crate::network::ip_limits::Subnet;

/// How often idle buckets are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// Seconds of its rate an address or subnet may send at once.
const ADDRESS_BURST_SECS: u32 = 2;

/// Why a request was not admitted: a short label, for the refusal and the
/// metrics.
pub type Refusal = &'static str;

/// Requests per second, sustained; 0 for no limit on an address or subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// From one peer.
    pub per_peer: u32,
    /// From one peer at once.
    pub peer_burst: u32,
    /// From one address, all its peers together.
    pub per_ip: u32,
    /// From one /24 (IPv4) or /48 (IPv6), all its peers together.
    pub per_subnet: u32,
}

/// The admission checks and their state.
pub struct Admission {
    freshness: Freshness,
    replays: ReplayGuard,
    allowlist: HashSet<PublicKey>,
    by_peer: RateLimiter<PublicKey>,
    by_ip: Option<RateLimiter<IpAddr>>,
    by_subnet: Option<RateLimiter<Subnet>>,
}

impl Admission {
    /// Admission with the given allowlist (empty: everyone) and rate limits.
    pub fn new(allowlist: HashSet<PublicKey>, limits: RateLimits) -> Self {
        let freshness = Freshness::default();
        // The most a peer within its rate limit can have in the window: a
        // message stays remembered up to max_age + max_skew after arrival.
        let window_secs = (freshness.max_age_ms + freshness.max_skew_ms).div_ceil(1000);
        let quota = u64::from(limits.peer_burst) + u64::from(limits.per_peer) * window_secs;
        Self {
            freshness,
            replays: ReplayGuard::new(
                freshness,
                ReplayGuard::DEFAULT_CAPACITY,
                usize::try_from(quota).unwrap_or(usize::MAX),
            ),
            allowlist,
            by_peer: RateLimiter::new(limits.per_peer, limits.peer_burst),
            by_ip: RateLimiter::per_address(limits.per_ip),
            by_subnet: RateLimiter::per_address(limits.per_subnet),
        }
    }

    /// Checks one request from the peer with node key `sender` (`None`: a
    /// peer id that is no ed25519 key, so no signer can be it), which came
    /// on a connection from `from`; returns its signer and message.
    pub fn admit(
        &mut self,
        sender: Option<PublicKey>,
        from: Option<IpAddr>,
        bytes: &[u8],
        now: Timestamp,
    ) -> Result<(PublicKey, AnyMessage), Refusal> {
        let Some(peer) = sender else {
            return Err("signer_mismatch");
        };
        let at = Instant::now();
        let within = self.by_peer.allow(peer, at)
            && from.is_none_or(|ip| {
                self.by_ip.as_mut().is_none_or(|l| l.allow(ip, at))
                    && self
                        .by_subnet
                        .as_mut()
                        .is_none_or(|l| l.allow(Subnet::of(ip), at))
            });
        if !within {
            return Err("rate_limited");
        }
        let signed = envelope::open_any(bytes, now, self.freshness).map_err(|e| e.label())?;
        let signer = signed.signer();
        if signer != peer {
            return Err("signer_mismatch");
        }
        if !self.allowlist.is_empty() && !self.allowlist.contains(&signer) {
            return Err("not_admitted");
        }
        self.replays
            .check(&signed.header, now)
            .map_err(|e| e.label())?;
        Ok((signer, signed.body))
    }

    /// `peer` has gone: forget its bucket.
    pub fn disconnected(&mut self, peer: &PublicKey) {
        self.by_peer.forget(peer);
    }

    /// Periodic upkeep: drops idle buckets.
    pub fn tick(&mut self) {
        let now = Instant::now();
        self.by_peer.sweep(now);
        if let Some(l) = &mut self.by_ip {
            l.sweep(now);
        }
        if let Some(l) = &mut self.by_subnet {
            l.sweep(now);
        }
    }

    /// Peer buckets held (for tests and status).
    pub fn tracked_peers(&self) -> usize {
        self.by_peer.buckets.len()
    }

    /// Messages the replay guard remembers (for tests and status).
    pub fn remembered(&self) -> usize {
        self.replays.len()
    }

    /// The most messages the replay guard remembers.
    pub fn remembered_capacity(&self) -> usize {
        self.replays.capacity()
    }
}

/// A token bucket per key: `per_sec` sustained, `burst` at once.
struct RateLimiter<K> {
    rate: f64,
    burst: f64,
    buckets: HashMap<K, (f64, Instant)>,
    last_sweep: Option<Instant>,
}

impl<K: Hash + Eq> RateLimiter<K> {
    fn new(per_sec: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(per_sec.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: HashMap::new(),
            last_sweep: None,
        }
    }

    /// An address's or subnet's limiter; `None` for a rate of 0.
    fn per_address(rate: u32) -> Option<Self> {
        (rate > 0).then(|| Self::new(rate, rate.saturating_mul(ADDRESS_BURST_SECS)))
    }

    fn allow(&mut self, key: K, now: Instant) -> bool {
        let (tokens, at) = self.buckets.entry(key).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn forget(&mut self, key: &K) {
        self.buckets.remove(key);
    }

    /// Drops buckets that have refilled: a fresh bucket would be the same.
    fn sweep(&mut self, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|at| now.duration_since(at) < SWEEP_EVERY)
        {
            return;
        }
        self.last_sweep = Some(now);
        let refill = Duration::from_secs_f64(self.burst / self.rate);
        self.buckets
            .retain(|_, (_, at)| now.duration_since(*at) < refill);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::SecretKey;
    use protocol::envelope;
    use protocol::messages::JobRequest;

    /// Per-peer limits only.
    fn per_peer(per_sec: u32, burst: u32) -> RateLimits {
        RateLimits {
            per_peer: per_sec,
            peer_burst: burst,
            per_ip: 0,
            per_subnet: 0,
        }
    }

    fn request(key: &SecretKey, nonce: u64) -> Vec<u8> {
        envelope::seal(
            &JobRequest {
                circuits: Vec::new(),
            },
            key,
            Timestamp::now(),
            nonce,
        )
    }

    #[test]
    fn admits_the_signer_on_its_own_connection_once() {
        let key = SecretKey::from_seed([4; 32]);
        let peer = Some(key.public());
        let mut admission = Admission::new(HashSet::new(), per_peer(100, 100));
        let bytes = request(&key, 1);
        let (signer, body) = admission
            .admit(peer, None, &bytes, Timestamp::now())
            .unwrap();
        assert_eq!(signer, key.public());
        assert!(matches!(body, AnyMessage::JobRequest(_)));
        assert_eq!(
            admission
                .admit(peer, None, &bytes, Timestamp::now())
                .unwrap_err(),
            "replayed"
        );
        let other = Some(SecretKey::from_seed([5; 32]).public());
        assert_eq!(
            admission
                .admit(other, None, &request(&key, 2), Timestamp::now())
                .unwrap_err(),
            "signer_mismatch"
        );
    }

    #[test]
    fn the_allowlist_and_the_rate_limit_refuse() {
        let key = SecretKey::from_seed([6; 32]);
        let peer = Some(key.public());
        let stranger = SecretKey::from_seed([7; 32]).public();
        let mut admission = Admission::new([stranger].into_iter().collect(), per_peer(1, 2));
        assert_eq!(
            admission
                .admit(peer, None, &request(&key, 1), Timestamp::now())
                .unwrap_err(),
            "not_admitted"
        );
        // The burst of 2 is spent (one above); the next is limited.
        let _ = admission.admit(peer, None, &request(&key, 2), Timestamp::now());
        assert_eq!(
            admission
                .admit(peer, None, &request(&key, 3), Timestamp::now())
                .unwrap_err(),
            "rate_limited"
        );
    }

    #[test]
    fn refused_messages_leave_nothing_in_the_replay_guard() {
        let key = SecretKey::from_seed([8; 32]);
        let mut admission = Admission::new(HashSet::new(), per_peer(1000, 1000));
        // Signed by a key that is not the sending peer: refused before the
        // replay guard, so a flood of such messages costs it nothing.
        let impostor = Some(SecretKey::from_seed([10; 32]).public());
        for nonce in 0..100 {
            assert_eq!(
                admission
                    .admit(impostor, None, &request(&key, nonce), Timestamp::now())
                    .unwrap_err(),
                "signer_mismatch"
            );
        }
        let allowed = SecretKey::from_seed([9; 32]).public();
        let mut closed = Admission::new([allowed].into_iter().collect(), per_peer(1000, 1000));
        let peer = Some(key.public());
        for nonce in 0..100 {
            assert_eq!(
                closed
                    .admit(peer, None, &request(&key, nonce), Timestamp::now())
                    .unwrap_err(),
                "not_admitted"
            );
        }
        assert_eq!(admission.remembered() + closed.remembered(), 0);
        // A real message from the same key is still admitted, and remembered.
        assert!(
            admission
                .admit(peer, None, &request(&key, 0), Timestamp::now())
                .is_ok()
        );
        assert_eq!(admission.remembered(), 1);
    }

    #[test]
    fn many_identities_on_one_address_share_its_limit() {
        let mut admission = Admission::new(
            HashSet::new(),
            RateLimits {
                per_peer: 100,
                peer_burst: 100,
                per_ip: 5,
                per_subnet: 15,
            },
        );
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let mut admitted_from = |from: Option<IpAddr>, seed: u8| {
            // One request each from 40 fresh identities: each is within its
            // own limit, so only the address's bucket (burst 2 s × 5) holds.
            (0..40u8)
                .filter(|i| {
                    let mut bytes = [1u8; 32];
                    (bytes[0], bytes[1]) = (seed, *i);
                    let key = SecretKey::from_seed(bytes);
                    let peer = Some(key.public());
                    admission
                        .admit(peer, from, &request(&key, 1), Timestamp::now())
                        .is_ok()
                })
                .count()
        };
        assert_eq!(
            admitted_from(ip("10.0.0.1"), 1),
            10,
            "one address: its burst"
        );
        assert_eq!(
            admitted_from(ip("10.0.0.2"), 2),
            10,
            "a neighbour has its own"
        );
        assert_eq!(
            admitted_from(ip("10.0.0.3"), 3),
            10,
            "the /24's burst of 30 is now spent"
        );
        assert_eq!(admitted_from(ip("10.0.0.4"), 4), 0, "the /24 is spent");
        assert_eq!(admitted_from(ip("10.0.1.1"), 5), 10, "another /24");
        assert_eq!(
            admitted_from(None, 6),
            40,
            "no address (not TCP/IP): only the peer limit"
        );
    }

    #[test]
    fn buckets_are_bounded_by_disconnects_and_sweeps() {
        let mut limiter = RateLimiter::new(10, 20);
        let start = Instant::now();
        let peers: Vec<PublicKey> = (0..1000u16)
            .map(|i| {
                let mut seed = [3u8; 32];
                seed[..2].copy_from_slice(&i.to_le_bytes());
                SecretKey::from_seed(seed).public()
            })
            .collect();
        for p in &peers {
            assert!(limiter.allow(*p, start));
        }
        limiter.forget(&peers[0]);
        assert_eq!(limiter.buckets.len(), 999);
        // Refilled after burst/rate = 2 s: swept.
        limiter.allow(peers[1], start + Duration::from_secs(3));
        limiter.sweep(start + Duration::from_secs(3));
        assert_eq!(limiter.buckets.len(), 1);
    }
}
