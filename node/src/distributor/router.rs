//! Admission: what every request passes before any service sees it, cheapest
//! and stateless first — the sending peer's rate limit, the envelope
//! (size, decoding, freshness, signature), the signer being the sending
//! peer, the allowlist — and only then the replay guard, the one check that
//! remembers. A message that fails an earlier check leaves no trace in it,
//! and each signer's share of it is capped, so no sender can crowd out
//! another. The distributor's run loop then dispatches what is admitted by
//! kind.
//!
//! State here is bounded: one token bucket per peer that sent recently,
//! dropped when the peer disconnects and swept when idle, so the map holds
//! about as many entries as there are connections; the replay guard holds
//! at most `ReplayGuard::DEFAULT_CAPACITY` entries, and a peer whose rate
//! limit holds never reaches its quota there.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use protocol::envelope::{self, Freshness, ReplayGuard};
use protocol::messages::AnyMessage;
use protocol::{PublicKey, Timestamp};

use crate::network::peer_id_of;

/// How often idle buckets are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// Why a request was not admitted: a short label, for the refusal and the
/// metrics.
pub type Refusal = &'static str;

/// The admission checks and their state.
pub struct Admission {
    freshness: Freshness,
    replays: ReplayGuard,
    allowlist: HashSet<PublicKey>,
    limiter: RateLimiter,
}

impl Admission {
    /// Admission with the given allowlist (empty: everyone) and rate limit.
    pub fn new(allowlist: HashSet<PublicKey>, per_sec: u32, burst: u32) -> Self {
        let freshness = Freshness::default();
        // The most a peer within its rate limit can have in the window: a
        // message stays remembered up to max_age + max_skew after arrival.
        let window_secs = (freshness.max_age_ms + freshness.max_skew_ms).div_ceil(1000);
        let quota = u64::from(burst) + u64::from(per_sec) * window_secs;
        Self {
            freshness,
            replays: ReplayGuard::new(
                freshness,
                ReplayGuard::DEFAULT_CAPACITY,
                usize::try_from(quota).unwrap_or(usize::MAX),
            ),
            allowlist,
            limiter: RateLimiter::new(per_sec, burst),
        }
    }

    /// Checks one request from `peer`; returns its signer and message.
    pub fn admit(
        &mut self,
        peer: PeerId,
        bytes: &[u8],
        now: Timestamp,
    ) -> Result<(PublicKey, AnyMessage), Refusal> {
        if !self.limiter.allow(peer, Instant::now()) {
            return Err("rate_limited");
        }
        let signed = envelope::open_any(bytes, now, self.freshness).map_err(|e| e.label())?;
        let signer = signed.signer();
        if peer_id_of(&signer) != peer {
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
    pub fn disconnected(&mut self, peer: &PeerId) {
        self.limiter.forget(peer);
    }

    /// Periodic upkeep: drops idle buckets.
    pub fn tick(&mut self) {
        self.limiter.sweep(Instant::now());
    }

    /// Buckets held (for tests and status).
    pub fn tracked_peers(&self) -> usize {
        self.limiter.buckets.len()
    }

    /// Messages the replay guard remembers (for tests and status).
    pub fn remembered(&self) -> usize {
        self.replays.len()
    }
}

/// A token bucket per peer: `per_sec` sustained, `burst` at once.
struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: HashMap<PeerId, (f64, Instant)>,
    last_sweep: Option<Instant>,
}

impl RateLimiter {
    fn new(per_sec: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(per_sec.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: HashMap::new(),
            last_sweep: None,
        }
    }

    fn allow(&mut self, peer: PeerId, now: Instant) -> bool {
        let (tokens, at) = self.buckets.entry(peer).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn forget(&mut self, peer: &PeerId) {
        self.buckets.remove(peer);
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
        let peer = peer_id_of(&key.public());
        let mut admission = Admission::new(HashSet::new(), 100, 100);
        let bytes = request(&key, 1);
        let (signer, body) = admission.admit(peer, &bytes, Timestamp::now()).unwrap();
        assert_eq!(signer, key.public());
        assert!(matches!(body, AnyMessage::JobRequest(_)));
        assert_eq!(
            admission.admit(peer, &bytes, Timestamp::now()).unwrap_err(),
            "replayed"
        );
        let other = peer_id_of(&SecretKey::from_seed([5; 32]).public());
        assert_eq!(
            admission
                .admit(other, &request(&key, 2), Timestamp::now())
                .unwrap_err(),
            "signer_mismatch"
        );
    }

    #[test]
    fn the_allowlist_and_the_rate_limit_refuse() {
        let key = SecretKey::from_seed([6; 32]);
        let peer = peer_id_of(&key.public());
        let stranger = SecretKey::from_seed([7; 32]).public();
        let mut admission = Admission::new([stranger].into_iter().collect(), 1, 2);
        assert_eq!(
            admission
                .admit(peer, &request(&key, 1), Timestamp::now())
                .unwrap_err(),
            "not_admitted"
        );
        // The burst of 2 is spent (one above); the next is limited.
        let _ = admission.admit(peer, &request(&key, 2), Timestamp::now());
        assert_eq!(
            admission
                .admit(peer, &request(&key, 3), Timestamp::now())
                .unwrap_err(),
            "rate_limited"
        );
    }

    #[test]
    fn refused_messages_leave_nothing_in_the_replay_guard() {
        let key = SecretKey::from_seed([8; 32]);
        let mut admission = Admission::new(HashSet::new(), 1000, 1000);
        // Signed by a key that is not the sending peer: refused before the
        // replay guard, so a flood of such messages costs it nothing.
        let impostor = PeerId::random();
        for nonce in 0..100 {
            assert_eq!(
                admission
                    .admit(impostor, &request(&key, nonce), Timestamp::now())
                    .unwrap_err(),
                "signer_mismatch"
            );
        }
        let allowed = SecretKey::from_seed([9; 32]).public();
        let mut closed = Admission::new([allowed].into_iter().collect(), 1000, 1000);
        let peer = peer_id_of(&key.public());
        for nonce in 0..100 {
            assert_eq!(
                closed
                    .admit(peer, &request(&key, nonce), Timestamp::now())
                    .unwrap_err(),
                "not_admitted"
            );
        }
        assert_eq!(admission.remembered() + closed.remembered(), 0);
        // A real message from the same key is still admitted, and remembered.
        assert!(
            admission
                .admit(peer, &request(&key, 0), Timestamp::now())
                .is_ok()
        );
        assert_eq!(admission.remembered(), 1);
    }

    #[test]
    fn buckets_are_bounded_by_disconnects_and_sweeps() {
        let mut limiter = RateLimiter::new(10, 20);
        let start = Instant::now();
        let peers: Vec<PeerId> = (0..1000).map(|_| PeerId::random()).collect();
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
