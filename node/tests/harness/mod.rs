//! An in-process distributor: the real role with real keys, real Groth16
//! proofs and a real job store and ledger in a temp dir, driven through its
//! edge ([`node::distributor::wire`]) with signed messages and no sockets.
//! Every wait has a deadline.

#![allow(dead_code, unreachable_pub)]

pub mod prover;

// One copy of the helper the prover-core tests use.
#[path = "../../../prover-core/tests/common/built_once.rs"]
mod built_once;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use node::api::{ApiRequest, Rejection};
use node::config::Config;
use node::distributor::Distributor;
use node::distributor::status::StatusBoard;
use node::distributor::wire::{Edge, Inbound, Lanes, Outgoing, ReplyTo, Request};
use node::metrics::Metrics;
use node::node_info::NodeInfo;
use protocol::envelope::{self, Freshness};
use protocol::messages::{
    AnyMessage, Assignment, JobRequest, Message, NoWork, ProofSubmission, Verdict,
};
use protocol::{CircuitId, ContentHash, JobId, PublicKey, SecretKey, Timestamp};
use prover_core::{AnyProvingKey, ProvingKey};
use serde_json::Value;

use built_once::built_once;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// The circuit the harness proves: Merkle depth 4, one transfer per job.
pub const CIRCUIT: &str = "transfer-d4-k1";
/// How long any one wait may take.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The seeded keys of [`CIRCUIT`]: made once per build of the tests and
/// kept in the target's temp dir for every test process ([`built_once`]).
pub fn keys_dir() -> &'static Path {
    static KEYS: OnceLock<PathBuf> = OnceLock::new();
    KEYS.get_or_init(|| {
        built_once(&format!("harness-keys-{CIRCUIT}-seed-1"), &[], |dir| {
            let id = CircuitId::new(CIRCUIT).unwrap();
            let config = prover_core::CircuitConfig::from_circuit_id(&id).unwrap();
            let (pk, vk) = prover_core::setup_insecure(config, 1).unwrap();
            let (pk_path, vk_path) = node::distributor::key_paths(dir, &id);
            pk.save(&pk_path).unwrap();
            vk.save(&vk_path).unwrap();
            pk.save_expanded(dir.join(EXPANDED_KEY)).unwrap();
        })
    })
}

/// The proving key's expanded form in [`keys_dir`], which a test process
/// reads in milliseconds (decompressing the key file takes most of a second).
const EXPANDED_KEY: &str = "expanded";

/// The proving key, loaded once per test process from its expanded form
/// (as a prover keeps the key it proves with).
pub fn proving_key() -> &'static AnyProvingKey {
    static KEY: OnceLock<AnyProvingKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let id = CircuitId::new(CIRCUIT).unwrap();
        let (pk_path, _) = node::distributor::key_paths(keys_dir(), &id);
        let hash = ContentHash::of(&std::fs::read(&pk_path).unwrap());
        let expanded = keys_dir().join(EXPANDED_KEY);
        AnyProvingKey::Transfer(ProvingKey::load_expanded(expanded, &id, hash).unwrap())
    })
}

/// A prover identity from a seed byte.
pub fn prover(seed: u8) -> SecretKey {
    SecretKey::from_seed([seed; 32])
}

/// The test settings: dev keys, small batches, short re-serve ages.
pub fn test_config(data_dir: &Path) -> Config {
    let mut config = Config::default();
    config.node.data_dir = data_dir.to_path_buf();
    let d = &mut config.distributor;
    d.circuit = CIRCUIT.into();
    d.keys_dir = keys_dir().to_path_buf();
    d.accounts = 16;
    d.batch_txs = 4;
    d.reward_per_job = 100;
    d.block_interval_ms = 300;
    d.dev = true;
    d.batch_interval_secs = 0;
    d.rate_limit_per_ip_per_sec = 0;
    d.rate_limit_per_subnet_per_sec = 0;
    config.scheduler.min_reserve_age_ms = 1_500;
    config.scheduler.lease_ms = 3_000;
    config
}

/// What the distributor sent: the answers by request id (each request
/// should get one), the gossip in order. An answer someone awaits
/// ([`Door::exchange`]) goes to them instead of being kept.
#[derive(Default)]
struct Sent {
    replies: std::collections::HashMap<u64, Vec<Vec<u8>>>,
    awaited: std::collections::HashMap<u64, oneshot::Sender<Vec<u8>>>,
    published: Vec<Vec<u8>>,
}

/// The way into a running distributor and back, cheap to clone: what
/// [`Harness::send_bytes`] sends through, and what an in-process prover's
/// link ([`prover::DistributorLink`]) holds.
#[derive(Clone)]
pub struct Door {
    proofs: mpsc::Sender<Inbound>,
    requests: mpsc::Sender<Inbound>,
    sent: Arc<Mutex<Sent>>,
    next_reply: Arc<AtomicU64>,
    /// What the distributor gossips, as it gossips it.
    gossip: broadcast::Sender<Vec<u8>>,
}

impl Door {
    /// A request of `bytes` from the peer with key `sender`, and the lane
    /// its kind goes down (proof submissions have their own).
    fn request(
        &self,
        sender: Option<PublicKey>,
        bytes: Vec<u8>,
    ) -> (&mpsc::Sender<Inbound>, Inbound, ReplyTo) {
        let reply = ReplyTo {
            id: self.next_reply.fetch_add(1, Ordering::Relaxed),
            received: Instant::now(),
        };
        let proof = envelope::peek_kind(&bytes) == Ok(protocol::messages::Kind::ProofSubmission);
        let lane = if proof { &self.proofs } else { &self.requests };
        let request = Inbound::Request(Request {
            sender,
            from: None,
            bytes,
            reply,
        });
        (lane, request, reply)
    }

    /// Sends request `bytes` from `sender`; the reply id to wait on, or
    /// `None` once the distributor has stopped.
    pub async fn send(&self, sender: Option<PublicKey>, bytes: Vec<u8>) -> Option<ReplyTo> {
        let (lane, request, reply) = self.request(sender, bytes);
        lane.send(request).await.ok().map(|()| reply)
    }

    /// Sends request `bytes` from `sender` and waits for its answer, for up
    /// to [`DEADLINE`]; `None` when the distributor stopped (or never
    /// answered), as a peer gone away.
    pub async fn exchange(&self, sender: PublicKey, bytes: Vec<u8>) -> Option<Vec<u8>> {
        let (lane, request, reply) = self.request(Some(sender), bytes);
        let (answer_tx, answer) = oneshot::channel();
        self.sent
            .lock()
            .unwrap()
            .awaited
            .insert(reply.id, answer_tx);
        lane.send(request).await.ok()?;
        tokio::time::timeout(DEADLINE, answer).await.ok()?.ok()
    }

    /// Sends request `bytes` from `sender` and blocks the thread until the
    /// answer comes, for up to [`DEADLINE`]; `None` when the distributor
    /// stopped (or never answered), as a peer gone away.
    pub fn exchange_blocking(&self, sender: PublicKey, bytes: Vec<u8>) -> Option<Vec<u8>> {
        let (lane, request, reply) = self.request(Some(sender), bytes);
        lane.blocking_send(request).ok()?;
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline && !self.is_closed() {
            // Taken, not kept: a link's thousands of requests leave nothing.
            let answers = self.sent.lock().unwrap().replies.remove(&reply.id);
            if let Some(answer) = answers.and_then(|answers| answers.into_iter().next()) {
                return Some(answer);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        None
    }

    /// The (first) answer to `reply`, if it was sent.
    pub fn reply(&self, reply: ReplyTo) -> Option<Vec<u8>> {
        let sent = self.sent.lock().unwrap();
        sent.replies.get(&reply.id)?.first().cloned()
    }

    /// What the distributor gossips from now on; closed once it stopped
    /// and every door to it is gone.
    pub fn gossip(&self) -> broadcast::Receiver<Vec<u8>> {
        self.gossip.subscribe()
    }

    /// Whether the distributor behind it has stopped.
    pub fn is_closed(&self) -> bool {
        self.requests.is_closed()
    }
}

/// A running in-process distributor.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub config: Config,
    pub secret: SecretKey,
    pub metrics: Arc<Metrics>,
    pub status: StatusBoard,
    door: Door,
    api: mpsc::Sender<ApiRequest>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Harness {
    /// A distributor with the test settings.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A distributor with the test settings changed by `tune`.
    pub async fn start_with(tune: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        tune(&mut config);
        Self::open(dir, config).await.unwrap()
    }

    /// Opens a distributor on `config`'s data dir.
    pub async fn open(dir: tempfile::TempDir, config: Config) -> anyhow::Result<Self> {
        let secret = SecretKey::from_seed([200; 32]);
        let metrics = Arc::new(Metrics::new());
        let status = StatusBoard::default();
        let sent = Arc::new(Mutex::new(Sent::default()));
        let (gossip, _) = broadcast::channel(64);
        let edge = {
            let (sent, gossip) = (sent.clone(), gossip.clone());
            Edge {
                transmit: Arc::new(move |outgoing| {
                    let mut sent = sent.lock().unwrap();
                    match outgoing {
                        Outgoing::Reply { to, bytes } => match sent.awaited.remove(&to.id) {
                            Some(awaiting) => {
                                let _ = awaiting.send(bytes);
                            }
                            None => sent.replies.entry(to.id).or_default().push(bytes),
                        },
                        Outgoing::Publish(bytes) => {
                            let _ = gossip.send(bytes.clone());
                            sent.published.push(bytes)
                        }
                    }
                }),
                stats: Arc::new(node::network::NetStats::default),
            }
        };
        let info = NodeInfo {
            role: node::config::Role::Distributor,
            public_key: secret.public().to_hex(),
            node_id: secret.public().node_id().to_string(),
            peer_id: String::new(),
            listen: Vec::new(),
            api: "127.0.0.1:0".parse().unwrap(),
            pid: std::process::id(),
        };
        let distributor = Distributor::open(
            &config,
            secret.clone(),
            edge,
            metrics.clone(),
            info,
            status.clone(),
        )?;
        let (proofs_tx, proofs) = mpsc::channel(1024);
        let (requests_tx, requests) = mpsc::channel(1024);
        let (api_tx, api) = mpsc::channel(64);
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(distributor.run(Lanes { proofs, requests }, api, stop_rx));
        Ok(Self {
            dir,
            config,
            secret,
            metrics,
            status,
            door: Door {
                proofs: proofs_tx,
                requests: requests_tx,
                sent,
                next_reply: Arc::new(AtomicU64::new(0)),
                gossip,
            },
            api: api_tx,
            stop,
            task: Some(task),
        })
    }

    /// The way in, for a prover's link.
    pub fn door(&self) -> Door {
        self.door.clone()
    }

    /// The distributor's public key.
    pub fn public(&self) -> PublicKey {
        self.secret.public()
    }

    /// Sends raw request bytes as if from the peer with key `sender`;
    /// returns the reply id to wait on.
    pub async fn send_bytes(&mut self, sender: Option<PublicKey>, bytes: Vec<u8>) -> ReplyTo {
        self.door
            .send(sender, bytes)
            .await
            .expect("the distributor is running")
    }

    /// Sends `message` signed by `key`, from `key`'s own peer.
    pub async fn send<M: Message>(&mut self, key: &SecretKey, message: &M) -> ReplyTo {
        let bytes = envelope::seal_now(message, key);
        self.send_bytes(Some(key.public()), bytes).await
    }

    /// The answer to `reply`, opened and checked to be the distributor's.
    pub async fn answer(&self, reply: ReplyTo) -> AnyMessage {
        let bytes = self
            .wait_for(&format!("an answer to request {}", reply.id), || {
                self.door.reply(reply)
            })
            .await;
        let signed = envelope::open_any(&bytes, Timestamp::now(), Freshness::default())
            .expect("a valid envelope");
        assert_eq!(signed.signer(), self.public(), "signed by the distributor");
        signed.body
    }

    /// How many answers `reply` got so far (each request gets at most one).
    pub fn answers_to(&self, reply: ReplyTo) -> usize {
        let sent = self.door.sent.lock().unwrap();
        sent.replies.get(&reply.id).map_or(0, Vec::len)
    }

    /// Sends `message` from `key` and waits for its answer.
    pub async fn ask<M: Message>(&mut self, key: &SecretKey, message: &M) -> AnyMessage {
        let reply = self.send(key, message).await;
        self.answer(reply).await
    }

    /// The refusal reason of `answer`, or a panic naming what it was.
    pub fn refusal(answer: &AnyMessage) -> &str {
        match answer {
            AnyMessage::Rejected(r) => &r.reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// A job request from `key`: an assignment, or the reason there is none.
    pub async fn request_job(&mut self, key: &SecretKey) -> Result<Assignment, NoWork> {
        match self.ask(key, &JobRequest { circuits: vec![] }).await {
            AnyMessage::Assignment(a) => Ok(a),
            AnyMessage::NoWork(no) => Err(no),
            other => panic!("a job request answered with {other:?}"),
        }
    }

    /// An assignment for `key`, asking until there is one.
    pub async fn claim(&mut self, key: &SecretKey) -> Assignment {
        let deadline = Instant::now() + DEADLINE;
        loop {
            match self.request_job(key).await {
                Ok(assignment) => return assignment,
                Err(no) => {
                    assert!(Instant::now() < deadline, "no assignment in time: {no:?}");
                    tokio::time::sleep(Duration::from_millis(no.retry_after_ms.min(100))).await;
                }
            }
        }
    }

    /// Submits `proof` for `assignment` from `key`; returns the reply id.
    pub async fn submit(
        &mut self,
        key: &SecretKey,
        assignment: &Assignment,
        proof: Vec<u8>,
    ) -> ReplyTo {
        self.submit_with(key, assignment, proof, None).await
    }

    /// Submits `proof` for `assignment` from `key` with a payout binding;
    /// returns the reply id.
    pub async fn submit_with(
        &mut self,
        key: &SecretKey,
        assignment: &Assignment,
        proof: Vec<u8>,
        payout: Option<protocol::PayoutBinding>,
    ) -> ReplyTo {
        let submission = ProofSubmission {
            job: assignment.job,
            request: assignment.request,
            proof,
            payout,
        };
        self.send(key, &submission).await
    }

    /// The verdict on the submission behind `reply`; panics on a refusal.
    pub async fn verdict(&self, reply: ReplyTo) -> Verdict {
        match self.answer(reply).await {
            AnyMessage::Verdict(v) => v,
            other => panic!("a submission answered with {other:?}"),
        }
    }

    /// Asks the API for a generated batch; returns its answer document.
    pub async fn submit_batch(&self) -> Value {
        self.api_call(|reply| ApiRequest::SubmitBatch(Vec::new(), reply))
            .await
            .expect("the batch is accepted")
    }

    /// One API call, answered within the deadline.
    pub async fn api_call(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<Value, Rejection>>) -> ApiRequest,
    ) -> Result<Value, Rejection> {
        let (tx, rx) = oneshot::channel();
        self.api
            .send(make(tx))
            .await
            .expect("the distributor is running");
        tokio::time::timeout(DEADLINE, rx)
            .await
            .expect("an API answer in time")
            .expect("the distributor answers")
    }

    /// Messages gossiped so far, opened.
    pub fn published(&self) -> Vec<AnyMessage> {
        let sent = self.door.sent.lock().unwrap();
        sent.published
            .iter()
            .map(|b| {
                envelope::open_any(b, Timestamp::now(), Freshness::default())
                    .expect("a valid envelope")
                    .body
            })
            .collect()
    }

    /// Waits until the status document satisfies `ready`; returns it.
    pub async fn status_until(&self, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
        self.wait_for(what, || {
            let doc = (*self.status.read()).clone();
            ready(&doc).then_some(doc)
        })
        .await
    }

    /// Polls `probe` every 10 ms until it yields, or panics after
    /// [`DEADLINE`] naming `what`.
    pub async fn wait_for<T>(&self, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(found) = probe() {
                return found;
            }
            assert!(Instant::now() < deadline, "waited {DEADLINE:?} for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the distributor (the services drain) and returns how it ended.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let task = self.task.take().expect("running");
        tokio::time::timeout(DEADLINE, task)
            .await
            .expect("stopped in time")
            .expect("the run loop did not panic")
    }

    /// Stops the distributor (if it still runs) and opens it again on the
    /// same data dir.
    pub async fn restart(self) -> Self {
        self.restart_with(|_| {}).await
    }

    /// Stops the distributor (if it still runs) and opens it again on the
    /// same data dir with `tune`d settings.
    pub async fn restart_with(mut self, tune: impl FnOnce(&mut Config)) -> Self {
        if self.task.is_some() {
            self.stop().await.unwrap();
        }
        let Self {
            dir, mut config, ..
        } = self;
        tune(&mut config);
        Self::open(dir, config).await.unwrap()
    }

    /// The ledger on disk, read after [`Harness::stop`].
    pub fn ledger(&self) -> ledger::Ledger {
        assert!(self.task.is_none(), "stop the distributor first");
        ledger::Ledger::open(
            self.config.node.data_dir.join("ledger"),
            &self.secret,
            ledger::LedgerConfig::default(),
        )
        .unwrap()
    }
}

/// A proof of `assignment`'s job, made with the real proving key.
pub fn prove(assignment: &Assignment) -> Vec<u8> {
    let protocol::messages::Witness::Inline(witness) = &assignment.witness else {
        panic!("the test circuit's witnesses travel inline")
    };
    proving_key()
        .prove(witness)
        .expect("the witness proves")
        .to_bytes()
        .to_vec()
}

/// The job id `index` of batch `batch`.
pub fn job(batch: u64, index: u32) -> JobId {
    JobId::new(protocol::BatchId(batch), index)
}
