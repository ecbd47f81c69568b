//! A multi-process test network: real `crowdprove` processes on loopback,
//! driven and observed through their HTTP API, with deadlines instead of
//! sleeps.

#![allow(dead_code, unreachable_pub)]

pub mod browser;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use node::node_info::NodeInfo;
use node::status_doc::{DistributorStatus, ProverStatus};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The tiny circuit the tests prove: Merkle depth 4, one transfer per job.
pub const CIRCUIT: &str = "transfer-d4-k1";
/// How long any one wait may take.
pub const DEADLINE: Duration = Duration::from_secs(180);

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_crowdprove")
}

/// One test network's folder, keys and processes.
pub struct Net {
    pub dir: tempfile::TempDir,
    pub keys: PathBuf,
    nodes: Vec<Node>,
}

/// One running (or stopped) node process.
pub struct Node {
    pub name: String,
    pub data_dir: PathBuf,
    pub key: PathBuf,
    pub args: Vec<String>,
    /// Extra environment variables of the process.
    pub env: Vec<(String, String)>,
    pub child: Option<Child>,
    pub info: Option<NodeInfo>,
}

impl Node {
    pub fn info(&self) -> &NodeInfo {
        self.info.as_ref().expect("node started")
    }

    pub fn public_key(&self) -> String {
        self.info().public_key.clone()
    }

    pub fn bootstrap(&self) -> String {
        self.info().listen[0].clone()
    }
}

impl Net {
    /// A folder with keys for [`CIRCUIT`], from the seeded (insecure,
    /// reproducible) setup: the test distributor runs `--dev`.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let out = Command::new(binary())
            .args([
                "setup",
                "--circuit",
                CIRCUIT,
                "--insecure-seed",
                "1",
                "--out",
            ])
            .arg(&keys)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "setup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self {
            dir,
            keys,
            nodes: Vec::new(),
        }
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    /// Writes a config file for a distributor: the test settings, with
    /// `overrides` (`key = value` lines of the `[distributor]` section)
    /// replacing them.
    pub fn distributor_config(&self, overrides: &str) -> PathBuf {
        let path = self.dir.path().join("distributor.toml");
        let mut settings: Vec<(String, String)> = [
            ("circuit", format!("\"{CIRCUIT}\"")),
            ("keys_dir", format!("\"{}\"", self.keys.display())),
            ("accounts", "16".into()),
            ("batch_txs", "4".into()),
            ("reward_per_job", "100".into()),
            ("block_interval_ms", "300".into()),
            ("dev", "true".into()),
            // Every test client sends from 127.0.0.1: the per-address limits
            // would meter them together (a test sets them to see that).
            ("rate_limit_per_ip_per_sec", "0".into()),
            ("rate_limit_per_subnet_per_sec", "0".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let mut scheduler: Vec<(String, String)> = vec![
            ("min_reserve_age_ms".into(), "1500".into()),
            ("lease_ms".into(), "3000".into()),
        ];
        // `key = value` lines go to [distributor], `scheduler.key = value`
        // lines to [scheduler].
        for line in overrides.lines().filter(|l| l.contains('=')) {
            let (key, value) = line.split_once('=').unwrap();
            let (key, value) = (key.trim().to_string(), value.trim().to_string());
            let (section, key) = match key.strip_prefix("scheduler.") {
                Some(knob) => (&mut scheduler, knob.to_string()),
                None => (&mut settings, key),
            };
            section.retain(|(k, _)| *k != key);
            section.push((key, value));
        }
        let lines = |section: &[(String, String)]| -> String {
            section
                .iter()
                .map(|(k, v)| format!("{k} = {v}\n"))
                .collect()
        };
        let text = format!(
            "[node]\nrole = \"distributor\"\n\n[distributor]\n{}\n[scheduler]\n{}",
            lines(&settings),
            lines(&scheduler)
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Starts a node named `name` with `args` after `run`; returns its index.
    pub fn start(&mut self, name: &str, args: Vec<String>) -> usize {
        let data_dir = self.dir.path().join(name);
        let key = self.dir.path().join(format!("{name}.key"));
        let mut node = Node {
            name: name.to_string(),
            data_dir,
            key,
            args,
            env: Vec::new(),
            child: None,
            info: None,
        };
        self.spawn(&mut node);
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn spawn(&self, node: &mut Node) {
        if let Err(status) = self.try_spawn(node) {
            panic!(
                "{} exited with {status} at start:\n{}",
                node.name,
                self.log(&node.name)
            );
        }
    }

    /// Starts `node`'s process and waits for its `node.json`; `Err` with
    /// the exit status if it died first.
    fn try_spawn(&self, node: &mut Node) -> Result<(), std::process::ExitStatus> {
        let _ = std::fs::remove_file(node.data_dir.join("node.json"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(&node.name))
            .unwrap();
        let child = Command::new(binary())
            .arg("run")
            .arg("--data-dir")
            .arg(&node.data_dir)
            .arg("--key")
            .arg(&node.key)
            .args(["--api", "127.0.0.1:0"])
            .args(&node.args)
            .env("RUST_LOG", "info,libp2p=warn")
            .envs(node.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        node.child = Some(child);
        let started = Instant::now();
        loop {
            if let Ok(info) = NodeInfo::read(&node.data_dir)
                && info.pid == node.child.as_ref().unwrap().id()
            {
                node.info = Some(info);
                return Ok(());
            }
            if let Some(status) = node.child.as_mut().unwrap().try_wait().unwrap() {
                node.child = None;
                return Err(status);
            }
            assert!(
                started.elapsed() < DEADLINE,
                "{} did not start:\n{}",
                node.name,
                self.log(&node.name)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts a distributor with the test config plus `extra` config lines
    /// and `args`; returns its index, public key and bootstrap address.
    pub fn start_distributor(&mut self, extra: &str, args: &[&str]) -> (usize, String, String) {
        let config = self.distributor_config(extra);
        let mut all = vec!["--config".to_string(), config.display().to_string()];
        all.extend(args.iter().map(|s| s.to_string()));
        let d = self.start("distributor", all);
        (d, self.node(d).public_key(), self.node(d).bootstrap())
    }

    /// Starts a prover bootstrapping from `bootstrap`, trusting `distributor`.
    pub fn start_prover(
        &mut self,
        name: &str,
        distributor: &str,
        bootstrap: &str,
        args: &[&str],
    ) -> usize {
        let mut all: Vec<String> = [
            "--role",
            "prover",
            "--distributor",
            distributor,
            "--bootstrap",
            bootstrap,
            "--threads",
            "1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        all.extend(args.iter().map(|s| s.to_string()));
        self.start(name, all)
    }

    pub fn node(&self, index: usize) -> &Node {
        &self.nodes[index]
    }

    pub fn node_mut(&mut self, index: usize) -> &mut Node {
        &mut self.nodes[index]
    }

    /// The node's log so far.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_path(name)).unwrap_or_default()
    }

    /// Every node's log, for a failure message.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("===== {} =====\n{}", n.name, tail(&self.log(&n.name), 60)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// GET a JSON document from node `index`'s API, waiting (up to
    /// [`DEADLINE`]) while the node answers that it is still starting.
    pub fn get(&self, index: usize, path: &str) -> Value {
        let api = self.nodes[index].info().api;
        let what = format!("{} to answer GET {path}", self.nodes[index].name);
        eventually(&what, DEADLINE, || {
            match runtime().block_on(node::api::get_json(api, path)) {
                Ok(document) => Some(document),
                Err(e) if e.to_string().contains("the node is starting") => None,
                Err(e) => panic!("GET {path}: {e:#}"),
            }
        })
    }

    /// The raw `/metrics` text of node `index`.
    pub fn metrics(&self, index: usize) -> String {
        let api = self.nodes[index].info().api;
        let (code, body) = runtime()
            .block_on(node::api::request(api, "GET", "/metrics", &[]))
            .unwrap();
        assert_eq!(code, 200);
        String::from_utf8(body).unwrap()
    }

    /// The API token of node `index`.
    pub fn api_token(&self, index: usize) -> node::api::Token {
        node::api::Token::read(&self.nodes[index].data_dir).unwrap()
    }

    /// `POST /batch` with `body` to node `index`, with its API token; the
    /// status code and the body of the answer.
    pub fn post_batch(&self, index: usize, body: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
        let api = self.nodes[index].info().api;
        let token = node::api::Token::read(&self.nodes[index].data_dir)?;
        runtime().block_on(node::api::request_with(
            api,
            "POST",
            "/batch",
            body,
            Some(&token),
        ))
    }

    /// POST /batch to node `index`; returns the answer.
    pub fn submit_batch(&self, index: usize) -> Value {
        let (code, body) = self.post_batch(index, &[]).unwrap();
        let answer: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(code, 200, "{answer}");
        answer
    }

    /// POST /batch to node `index`; `None` if it gave no answer (it died
    /// on the way, as a crash test may want).
    pub fn try_submit_batch(&self, index: usize) -> Option<Value> {
        let (code, body) = self.post_batch(index, &[]).ok()?;
        (code == 200).then(|| serde_json::from_slice(&body).ok())?
    }

    /// The `/status` of node `index`, `None` if it does not answer.
    pub fn try_status(&self, index: usize) -> Option<Value> {
        let api = self.nodes[index].info().api;
        runtime().block_on(node::api::get_json(api, "/status")).ok()
    }

    /// Distributor `index`'s `/status`, typed.
    pub fn distributor_status(&self, index: usize) -> DistributorStatus {
        typed(index, self.get(index, "/status"))
    }

    /// Distributor `index`'s `/status`, typed; `None` if it does not answer.
    pub fn try_distributor_status(&self, index: usize) -> Option<DistributorStatus> {
        self.try_status(index).map(|s| typed(index, s))
    }

    /// Prover `index`'s `/status`, typed.
    pub fn prover_status(&self, index: usize) -> ProverStatus {
        typed(index, self.get(index, "/status"))
    }

    /// Prover `index`'s `/status`, typed; `None` if it does not answer.
    pub fn try_prover_status(&self, index: usize) -> Option<ProverStatus> {
        self.try_status(index).map(|s| typed(index, s))
    }

    /// [`Self::wait_status`] for distributor `index`, typed.
    pub fn wait_distributor(
        &self,
        index: usize,
        what: &str,
        done: impl Fn(&DistributorStatus) -> bool,
    ) -> DistributorStatus {
        let status = self.wait_status(index, what, |s| done(&typed(index, s.clone())));
        typed(index, status)
    }

    /// [`Self::wait_status`] for prover `index`, typed.
    pub fn wait_prover(
        &self,
        index: usize,
        what: &str,
        done: impl Fn(&ProverStatus) -> bool,
    ) -> ProverStatus {
        let status = self.wait_status(index, what, |s| done(&typed(index, s.clone())));
        typed(index, status)
    }

    /// Whether node `index` has exited (its status is kept for
    /// [`Self::wait_exit`]).
    pub fn has_exited(&mut self, index: usize) -> bool {
        self.nodes[index]
            .child
            .as_mut()
            .is_none_or(|c| c.try_wait().unwrap().is_some())
    }

    /// Waits for node `index` to exit on its own, failing after
    /// [`DEADLINE`] with `what` and every log.
    pub fn wait_exit(&mut self, index: usize, what: &str) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            let child = self.nodes[index].child.as_mut().expect("running");
            if let Some(status) = child.try_wait().unwrap() {
                self.nodes[index].child = None;
                return status;
            }
            if started.elapsed() > DEADLINE {
                panic!("timed out waiting for {what}\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls node `index`'s status until `done` holds, failing after
    /// [`DEADLINE`] with every log.
    pub fn wait_status(&self, index: usize, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let api = self.nodes[index].info().api;
            if let Ok(status) = runtime().block_on(node::api::get_json(api, "/status")) {
                if done(&status) {
                    return status;
                }
                if started.elapsed() > DEADLINE {
                    panic!(
                        "timed out waiting for {what}; last status:\n{status:#}\n{}",
                        self.logs()
                    );
                }
            } else if started.elapsed() > DEADLINE {
                panic!(
                    "timed out waiting for {what}; node unreachable\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGKILLs node `index` (no chance to clean up).
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.nodes[index].child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Asks node `index` to shut down (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self, index: usize) -> std::process::ExitStatus {
        let mut child = self.nodes[index].child.take().expect("running");
        let pid = child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if started.elapsed() > DEADLINE {
                child.kill().unwrap();
                panic!(
                    "{} ignored SIGTERM\n{}",
                    self.nodes[index].name,
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts node `index` again with the same identity, data and `args`
    /// (replacing the old arguments when given).
    pub fn restart(&mut self, index: usize, args: Option<Vec<String>>) {
        if let Err(status) = self.try_restart(index, args) {
            panic!(
                "{} exited with {status} at start:\n{}",
                self.nodes[index].name,
                self.log(&self.nodes[index].name)
            );
        }
    }

    /// [`Net::restart`], but a node that dies before it is up is an `Err`
    /// with its exit status, not a failure.
    pub fn try_restart(
        &mut self,
        index: usize,
        args: Option<Vec<String>>,
    ) -> Result<(), std::process::ExitStatus> {
        let mut node = std::mem::replace(
            &mut self.nodes[index],
            Node {
                name: String::new(),
                data_dir: PathBuf::new(),
                key: PathBuf::new(),
                args: Vec::new(),
                env: Vec::new(),
                child: None,
                info: None,
            },
        );
        if let Some(args) = args {
            node.args = args;
        }
        let started = self.try_spawn(&mut node);
        self.nodes[index] = node;
        started
    }

    /// Runs `crowdprove <args>` to completion.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(binary()).args(args).output().unwrap()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The ledger's balances (prover hex → balance) as of its tip, read by
/// `crowdprove ledger export`.
pub fn ledger_balances(net: &Net, data_dir: &Path) -> std::collections::BTreeMap<String, u64> {
    let out = net.cli(&["ledger", "export", "--data-dir", data_dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["prover"].as_str().unwrap().to_string(),
                a["balance"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Checks the distributor's ledger after it stopped: the chain verifies,
/// every job of batches `1..=batches` (with `jobs` each) has a receipt that
/// checks offline, and the balances add up to exactly one reward per job.
pub fn check_ledger(net: &Net, distributor: &Node, batches: u64, jobs: u64, reward: u64) {
    let dir = distributor.data_dir.to_str().unwrap();
    let key = distributor.public_key();
    let out = net.cli(&["ledger", "verify", "--data-dir", dir, "--distributor", &key]);
    assert!(
        out.status.success(),
        "ledger verify failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for batch in 1..=batches {
        for index in 0..jobs {
            let job = format!("b{batch}/j{index}");
            let file = net.dir.path().join(format!("receipt-{batch}-{index}"));
            let out = net.cli(&[
                "ledger",
                "receipt",
                "--data-dir",
                dir,
                "--job",
                &job,
                "--out",
                file.to_str().unwrap(),
            ]);
            assert!(
                out.status.success(),
                "no receipt for {job}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let out = net.cli(&[
                "ledger",
                "check-receipt",
                "--receipt",
                file.to_str().unwrap(),
                "--distributor",
                &key,
            ]);
            assert!(
                out.status.success(),
                "receipt for {job} does not check: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let total: u64 = ledger_balances(net, &distributor.data_dir).values().sum();
    assert_eq!(
        total,
        batches * jobs * reward,
        "paid {total}, expected one reward per job"
    );
}

/// Polls `check` until it gives a value, failing after `within` with
/// `what` — the one place a test waits by polling.
pub fn eventually<T>(what: &str, within: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let mut found = None;
    let done = settles(within, || {
        found = check();
        found.is_some()
    });
    assert!(done, "timed out waiting for {what}");
    found.expect("settled")
}

/// Polls `check` until it holds or `within` passes; says which.
pub fn settles(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A bare protocol client: its own libp2p swarm and key, connected to the
/// distributor, sending signed requests and reading checked answers.
pub struct Client {
    /// The client's network.
    pub net: node::network::NetworkHandle,
    distributor: protocol::PublicKey,
    _events: tokio::sync::mpsc::Receiver<node::network::NetworkEvent>,
    _task: tokio::task::JoinHandle<()>,
}

impl Client {
    /// Starts a swarm for `key`, bootstraps from `boot` and finds the
    /// distributor `distributor`.
    pub async fn connect(
        key: &protocol::SecretKey,
        boot: &str,
        distributor: protocol::PublicKey,
    ) -> Self {
        let config = node::network::NetworkConfig {
            bootstrap: vec![boot.parse().unwrap()],
            ..node::network::NetworkConfig::default()
        };
        let metrics = std::sync::Arc::new(node::metrics::Metrics::new());
        let (net, node::network::Inbox { events, .. }, task) =
            node::network::start(key, config, metrics).await.unwrap();
        net.locate(node::network::peer_id_of(&distributor))
            .await
            .unwrap();
        Self {
            net,
            distributor,
            _events: events,
            _task: task,
        }
    }

    /// Sends `bytes` (an envelope) and returns the answer's message, checked
    /// to be signed by the distributor.
    pub async fn ask(&self, bytes: Vec<u8>) -> protocol::messages::AnyMessage {
        let peer = node::network::peer_id_of(&self.distributor);
        let answer = self.net.request(peer, bytes).await.unwrap();
        let signed =
            protocol::envelope::open_any(&answer, protocol::Timestamp::now(), Default::default())
                .unwrap();
        assert_eq!(
            signed.signer(),
            self.distributor,
            "answers are signed by the distributor"
        );
        signed.body
    }

    /// Asks until `accept` takes the answer, failing after [`DEADLINE`].
    pub async fn ask_until<T>(
        &self,
        what: &str,
        mut bytes: impl FnMut() -> Vec<u8>,
        mut accept: impl FnMut(protocol::messages::AnyMessage) -> Option<T>,
    ) -> T {
        let asking = async {
            loop {
                if let Some(value) = accept(self.ask(bytes()).await) {
                    return value;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(DEADLINE, asking)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }
}

/// Node `index`'s status document `status` as a `T`; a document that does not
/// read as one fails the test at once.
fn typed<T: DeserializeOwned>(index: usize, status: Value) -> T {
    serde_json::from_value(status.clone()).unwrap_or_else(|e| {
        panic!(
            "node {index}'s /status is not a {}: {e}\n{status:#}",
            std::any::type_name::<T>()
        )
    })
}
