//! One anvil process: started on a free port, killed on drop.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use alloy::primitives::Address;
use alloy::providers::DynProvider;
use alloy::signers::local::PrivateKeySigner;

/// The provider type the tests use.
pub type Dyn = DynProvider;

/// anvil's first dev accounts' keys (its default mnemonic).
const KEYS: [&str; 3] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
];

/// How long anvil may take to listen.
const START_DEADLINE: Duration = Duration::from_secs(20);

/// A running anvil.
pub struct Anvil {
    child: Child,
    /// The arguments it was started with beyond the defaults.
    extra: Vec<String>,
    /// One provider per dev account, made once: each keeps its account's
    /// nonce, so two providers of one account would collide.
    providers: Vec<Dyn>,
    /// Its JSON-RPC URL.
    pub url: String,
}

/// The anvil binary from `@foundry-rs/anvil` in scripts/chain-tools.
pub fn anvil_binary() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts/chain-tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    assert!(
        path.exists(),
        "no anvil at {}: run scripts/setup (or npm ci --prefix scripts/chain-tools)",
        path.display()
    );
    path
}

impl Anvil {
    /// Starts anvil on a free port and waits until it listens.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts anvil with `extra` arguments (e.g. `--block-time 1`).
    pub fn start_with(extra: &[&str]) -> Self {
        let extra: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
        let (child, url) = spawn("0", &extra);
        let providers = KEYS.iter().map(|key| provider_for(&url, key)).collect();
        Self {
            child,
            extra,
            providers,
            url,
        }
    }

    /// Stops the chain: SIGTERM, and waits for the process to exit (an
    /// anvil started with `--state FILE` writes its state there first).
    pub fn stop(&mut self) {
        let terminated = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(terminated.success(), "anvil could not be signalled");
        self.child.wait().expect("anvil exits");
    }

    /// Starts the chain again on the same address with the same arguments
    /// (with `--state FILE`, where it stood when stopped). An anvil another
    /// test started meanwhile on a free port could have taken this one (the
    /// kernel hands ephemeral ports out in rotation, so it is unlikely);
    /// then this panics saying so, not a wrong result.
    pub fn resume(&mut self) {
        let port = self.url.rsplit(':').next().expect("a port").to_string();
        let (child, url) = spawn(&port, &self.extra);
        assert_eq!(url, self.url, "anvil came back elsewhere");
        self.child = child;
    }

    /// Mines a block every `seconds` from now on; with 0, none until this
    /// is called again (transactions wait in the pool).
    pub async fn mine_every(&self, seconds: u64) {
        use alloy::providers::Provider;
        self.providers[0]
            .raw_request::<_, serde_json::Value>("evm_setIntervalMining".into(), (seconds,))
            .await
            .expect("anvil sets its mining interval");
    }

    /// How many of dev account `account`'s transactions wait for a block.
    pub async fn pending_of(&self, account: usize) -> u64 {
        use alloy::providers::Provider;
        let provider = &self.providers[account];
        let address = self.address(account);
        let sent = provider.get_transaction_count(address).pending();
        let mined = provider.get_transaction_count(address).latest();
        sent.await.expect("a nonce") - mined.await.expect("a nonce")
    }

    /// The provider that signs with dev account `account`.
    pub fn provider(&self, account: usize) -> Dyn {
        self.providers[account].clone()
    }

    /// Dev account `account`'s private key (hex).
    pub fn key(&self, account: usize) -> &'static str {
        KEYS[account]
    }

    /// Dev account `account`'s address.
    pub fn address(&self, account: usize) -> Address {
        KEYS[account]
            .parse::<PrivateKeySigner>()
            .expect("a valid key")
            .address()
    }
}

fn provider_for(url: &str, key: &str) -> Dyn {
    node::chain::signing_provider(url, key).expect("a valid URL and key")
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts anvil on `port` (0: a free one) with `extra` arguments; returns
/// the process and its URL once it listens.
fn spawn(port: &str, extra: &[String]) -> (Child, String) {
    let mut child = Command::new(anvil_binary())
        .args(["--port", port, "--accounts", "3", "--host", "127.0.0.1"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("anvil starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    // Reads every line until anvil exits, so its pipe never fills.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(address) = line.strip_prefix("Listening on ") {
                let _ = tx.send(address.trim().to_string());
            }
        }
    });
    let address = rx.recv_timeout(START_DEADLINE).unwrap_or_else(|_| {
        let _ = child.kill();
        panic!("anvil did not listen within {START_DEADLINE:?}")
    });
    (child, format!("http://{address}"))
}
