//! Provers in-process: the real prover role (`node::prover::Prover`: its
//! workers, its key download, its receipts) against a harness distributor,
//! its link to it a pair of channels instead of libp2p.
//!
//! A request blocks a thread of the runtime's blocking pool until its
//! answer comes, so on a paused clock (`start_paused`) the provers' time
//! stands still while the distributor works, and runs ahead only while
//! every prover waits on a timer of its own: a backoff, a retry. A
//! distributor down for five minutes of the provers' time is then over in
//! a moment.

use std::sync::{Arc, Mutex};

use node::config::Config;
use node::metrics::Metrics;
use node::network::{NetError, NetworkEvent, ReplyTo, peer_id_of};
use node::prover::client::{Link, LinkFuture};
use node::prover::{Prover, Resources, Shared};
use protocol::envelope::{self, Freshness};
use protocol::{PublicKey, SecretKey, Timestamp};
use tokio::sync::{broadcast, mpsc, watch};

use super::Door;

/// Whether the in-process distributor can be reached: shared by its
/// provers' links, opened on a running distributor's [`Door`] and cut
/// while it is down. Opening it does for each prover what the network does
/// when the connection comes up: tells it `Connected` (which wakes its idle
/// workers) and from then on hands it the distributor's gossip (each
/// prover subscribed before `open` returns, so no announcement is missed).
#[derive(Clone, Default)]
pub struct Reach(Arc<Mutex<Reachable>>);

#[derive(Default)]
struct Reachable {
    door: Option<Door>,
    /// Each prover's distributor key and network events.
    provers: Vec<(PublicKey, mpsc::Sender<NetworkEvent>)>,
}

impl Reach {
    /// The distributor behind `door` can be reached. Within a runtime.
    pub fn open(&self, door: Door) {
        let mut reach = self.0.lock().unwrap();
        for (distributor, events) in &reach.provers {
            connect(&door, *distributor, events.clone());
        }
        reach.door = Some(door);
    }

    /// The distributor cannot be reached: every call fails as a call to a
    /// peer that is gone does.
    pub fn cut(&self) {
        self.0.lock().unwrap().door = None;
    }

    fn door(&self) -> Option<Door> {
        self.0.lock().unwrap().door.clone()
    }

    /// Hands a prover of `distributor` its network events through this
    /// reach, from now on.
    fn join(&self, distributor: PublicKey, events: mpsc::Sender<NetworkEvent>) {
        let mut reach = self.0.lock().unwrap();
        if let Some(door) = &reach.door {
            connect(door, distributor, events.clone());
        }
        reach.provers.push((distributor, events));
    }
}

/// A prover's connection to the distributor behind `door` comes up: it is
/// told so, then handed the distributor's gossip, checked to be the
/// distributor's as the network checks it, until that distributor stops.
fn connect(door: &Door, distributor: PublicKey, events: mpsc::Sender<NetworkEvent>) {
    let mut gossip = door.gossip();
    tokio::spawn(async move {
        let connected = NetworkEvent::Connected(peer_id_of(&distributor));
        if events.send(connected).await.is_err() {
            return;
        }
        loop {
            match gossip.recv().await {
                Ok(bytes) => {
                    let signed = envelope::open_any(&bytes, Timestamp::now(), Freshness::default())
                        .expect("the distributor's gossip opens");
                    assert_eq!(signed.signer(), distributor, "gossip from the distributor");
                    if events
                        .send(NetworkEvent::Gossip(signed.body))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

/// One identity's link to the in-process distributor.
pub struct DistributorLink {
    me: PublicKey,
    reach: Reach,
}

impl DistributorLink {
    /// The link of identity `me`, through `reach`.
    pub fn new(me: PublicKey, reach: &Reach) -> Self {
        Self {
            me,
            reach: reach.clone(),
        }
    }
}

fn unreachable(to: &PublicKey) -> NetError {
    NetError::Unreachable {
        peer: peer_id_of(to),
        reason: "the distributor is down".into(),
    }
}

impl Link for DistributorLink {
    fn request(&self, to: PublicKey, bytes: Vec<u8>) -> LinkFuture<'_, Vec<u8>> {
        let (me, door) = (self.me, self.reach.door());
        Box::pin(async move {
            let door = door.ok_or_else(|| unreachable(&to))?;
            tokio::task::spawn_blocking(move || door.exchange_blocking(me, bytes))
                .await
                .expect("the exchange does not panic")
                .ok_or_else(|| unreachable(&to))
        })
    }

    fn locate(&self, to: PublicKey) -> LinkFuture<'_, ()> {
        let up = self.reach.door().is_some_and(|door| !door.is_closed());
        Box::pin(async move { if up { Ok(()) } else { Err(unreachable(&to)) } })
    }

    /// Nothing sends these provers a request to answer.
    fn respond(&self, _: ReplyTo, _: Vec<u8>) {}
}

/// A prover running in-process.
pub struct RunningProver {
    pub public: PublicKey,
    pub shared: Arc<Shared>,
    pub metrics: Arc<Metrics>,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
    /// Its API requests: none ever come.
    _api: mpsc::Sender<node::api::ApiRequest>,
}

/// Starts prover `secret` (one job at a time, one proving thread) for the
/// distributor with key `distributor`, through `reach`; it stops when
/// `stop` fires.
pub fn start(
    secret: SecretKey,
    distributor: PublicKey,
    reach: &Reach,
    stop: watch::Receiver<bool>,
) -> RunningProver {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Config::default().prover;
    settings.jobs = 1;
    settings.threads = 1;
    let public = secret.public();
    let link = DistributorLink::new(public, reach);
    let resources = Resources::local(&settings, dir.path()).unwrap();
    let metrics = Arc::new(Metrics::new());
    let prover = Prover::new(
        settings,
        distributor,
        secret,
        dir.path(),
        link,
        metrics.clone(),
        resources,
        stop,
    )
    .unwrap();
    let shared = prover.shared();
    let (events_tx, events) = mpsc::channel(64);
    let (api_tx, api) = mpsc::channel(1);
    reach.join(distributor, events_tx);
    let task = tokio::spawn(prover.run(events, api, None));
    RunningProver {
        public,
        shared,
        metrics,
        task,
        _dir: dir,
        _api: api_tx,
    }
}

/// Identities that ask for work and never prove: each sends the request
/// `seal` makes (from its key and its count of requests) every 50 ms,
/// each after the last one's answer, until `stop` fires. What they are
/// answered is tallied by kind ([`answer_kind`]).
pub struct Askers {
    members: Vec<tokio::task::JoinHandle<PublicKey>>,
    tally: Arc<Mutex<Tally>>,
}

/// Answers by message kind (`assignment`, `no-work`, a refusal as
/// `rejected:<reason>`).
pub type Tally = std::collections::BTreeMap<String, u64>;

impl Askers {
    /// Starts one asker per key of `secrets`, asking the distributor
    /// behind `door`, whose key is `distributor`.
    pub fn start(
        secrets: Vec<SecretKey>,
        door: &Door,
        distributor: PublicKey,
        stop: watch::Receiver<bool>,
        seal: impl Fn(&SecretKey, u64) -> Vec<u8> + Send + Sync + 'static,
    ) -> Self {
        let tally = Arc::new(Mutex::new(Tally::new()));
        let seal = Arc::new(seal);
        let members = secrets
            .into_iter()
            .map(|secret| {
                let (door, stop, tally, seal) =
                    (door.clone(), stop.clone(), tally.clone(), seal.clone());
                tokio::spawn(async move {
                    for n in 0.. {
                        if *stop.borrow() {
                            break;
                        }
                        let answer = door.exchange(secret.public(), seal(&secret, n)).await;
                        let answer = answer.expect("the distributor answers");
                        let kind = answer_kind(&answer, distributor);
                        *tally.lock().unwrap().entry(kind).or_default() += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                    secret.public()
                })
            })
            .collect();
        Self { members, tally }
    }

    /// What they were answered so far.
    pub fn tally(&self) -> Tally {
        self.tally.lock().unwrap().clone()
    }

    /// Waits for every asker to finish (once `stop` fired); returns their
    /// keys and what they were answered.
    pub async fn join(self) -> (Vec<PublicKey>, Tally) {
        let mut keys = Vec::new();
        for member in self.members {
            keys.push(member.await.expect("an asker does not panic"));
        }
        let tally = self.tally.lock().unwrap().clone();
        (keys, tally)
    }
}

/// The kind of `answer`, checked to be signed by `distributor`.
pub fn answer_kind(answer: &[u8], distributor: PublicKey) -> String {
    use protocol::messages::AnyMessage;
    let signed = envelope::open_any(answer, Timestamp::now(), Freshness::default())
        .expect("a valid envelope");
    assert_eq!(signed.signer(), distributor, "signed by the distributor");
    match signed.body {
        AnyMessage::Rejected(r) => format!("rejected:{}", r.reason),
        body => body.kind().name().into(),
    }
}
