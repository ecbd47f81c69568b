//! Node configuration: an optional TOML file whose every field has a default
//! that serves local development; command-line flags override the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use libp2p::Multiaddr;
use protocol::PublicKey;
use protocol::lrp::LrpConfig;
use serde::{Deserialize, Serialize};

use crate::network::NetworkConfig;

/// Which side of the network a node serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The operator: cuts batches into jobs, assigns, verifies, pays.
    Distributor,
    /// A community prover: claims jobs, proves them, is paid.
    Prover,
}

/// Misbehaviour a prover can be told to show, for fault-injection tests and
/// the testnet. Never set this on a real prover: it loses money by design.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// Honest.
    None,
    /// Claims jobs and never answers (a straggler).
    Stall,
    /// Byzantine: submits corrupted proofs, proofs bound to request ids it
    /// was not given, and replays of its own submissions.
    Byzantine,
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Settings of every node.
    pub node: NodeSection,
    /// Network settings.
    pub network: NetworkSection,
    /// Distributor settings.
    pub distributor: DistributorSection,
    /// Prover settings.
    pub prover: ProverSection,
}

/// `[node]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeSection {
    /// Which role to run.
    pub role: Role,
    /// The node identity key file; created on first start if missing.
    pub key: PathBuf,
    /// Where the node keeps its databases, caches and receipts.
    pub data_dir: PathBuf,
    /// The HTTP status API (`/status`, `/metrics`); port 0 picks a free one.
    pub api: SocketAddr,
}

/// `[network]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkSection {
    /// Listen addresses (libp2p multiaddrs).
    pub listen: Vec<String>,
    /// Bootstrap peers: multiaddrs ending in `/p2p/<peer id>`.
    pub bootstrap: Vec<String>,
    /// Most connections in all.
    pub max_connections: u32,
    /// Seconds a request waits for its answer.
    pub request_timeout_secs: u64,
}

/// `[distributor]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DistributorSection {
    /// Circuit id, e.g. `transfer-d8-k2` (Merkle depth 8, 2 transfers per job).
    pub circuit: String,
    /// Folder with `<circuit>.pk` and `<circuit>.vk` (see `crowdprove setup`).
    pub keys_dir: PathBuf,
    /// Ledger units paid per accepted proof.
    pub reward_per_job: u64,
    /// Seed of the transaction generator.
    pub seed: u64,
    /// Accounts in the generated rollup state.
    pub accounts: u32,
    /// Transactions per generated batch.
    pub batch_txs: usize,
    /// Seconds between generated batches; 0 generates none on its own (submit
    /// through `POST /batch`).
    pub batch_interval_secs: u64,
    /// Stop generating after this many batches; 0 for no limit.
    pub max_batches: u64,
    /// Prove every job locally instead of handing them out: the
    /// centralized baseline.
    pub centralized: bool,
    /// Centralized mode: jobs proved at once, sharing the cores (1: one job
    /// on all cores; the core count: one job per core).
    pub centralized_jobs: usize,
    /// Threads of the verification pool; 0 for one per core.
    pub verify_threads: usize,
    /// Proofs that may wait for verification; more are answered `busy`.
    pub verify_queue: usize,
    /// Most proofs checked together in one batch verification.
    pub verify_batch: usize,
    /// Key-chunk and receipt requests that may wait; more are answered `busy`.
    pub serve_queue: usize,
    /// If not empty, only these provers (hex public keys) get work.
    pub allowlist: Vec<String>,
    /// Requests per second one peer may send, sustained.
    pub rate_limit_per_sec: u32,
    /// Requests one peer may send in a burst.
    pub rate_limit_burst: u32,
    /// Milliseconds before a handed-out job may be re-served.
    pub reserve_after_ms: u64,
    /// Milliseconds a hand-out counts against a prover's capacity.
    pub lease_ms: u64,
    /// Most live hand-outs of one job.
    pub max_holders: u32,
    /// Most live hand-outs per prover.
    pub max_held_per_prover: u32,
    /// Invalid proofs before a prover is refused for good.
    pub max_strikes: u32,
    /// Milliseconds between ledger blocks at most.
    pub block_interval_ms: u64,
}

/// `[prover]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProverSection {
    /// The distributor's public key (hex): the only signer whose jobs this
    /// prover accepts.
    pub distributor: String,
    /// Jobs proved at once.
    pub jobs: usize,
    /// Threads per proof; 0 shares all cores among the jobs.
    pub threads: usize,
    /// Consecutive failures (unreachable distributor, rejected proofs) before
    /// the prover stops claiming.
    pub max_failures: u32,
    /// Seconds to finish held jobs on shutdown before releasing them.
    pub shutdown_grace_secs: u64,
    /// Fault injection for tests; `none` on every real prover.
    pub fault: Fault,
}

impl Default for NodeSection {
    fn default() -> Self {
        Self {
            role: Role::Prover,
            key: PathBuf::from("crowdprove.key"),
            data_dir: PathBuf::from("crowdprove-data"),
            api: "127.0.0.1:0".parse().expect("valid address"),
        }
    }
}

impl Default for NetworkSection {
    fn default() -> Self {
        let net = NetworkConfig::default();
        Self {
            listen: net.listen.iter().map(|a| a.to_string()).collect(),
            bootstrap: Vec::new(),
            max_connections: net.max_connections,
            request_timeout_secs: net.request_timeout.as_secs(),
        }
    }
}

impl Default for DistributorSection {
    fn default() -> Self {
        let lrp = LrpConfig::default();
        Self {
            circuit: "transfer-d8-k2".into(),
            keys_dir: PathBuf::from("keys"),
            reward_per_job: 100,
            seed: 7,
            accounts: 256,
            batch_txs: 16,
            batch_interval_secs: 0,
            max_batches: 0,
            centralized: false,
            centralized_jobs: 1,
            verify_threads: 0,
            verify_queue: 4096,
            verify_batch: 256,
            serve_queue: 1024,
            allowlist: Vec::new(),
            rate_limit_per_sec: 20,
            rate_limit_burst: 40,
            reserve_after_ms: lrp.min_reserve_age_ms,
            lease_ms: lrp.lease_ms,
            max_holders: lrp.max_live_holders,
            max_held_per_prover: lrp.max_held_per_prover,
            max_strikes: lrp.max_strikes,
            block_interval_ms: 2_000,
        }
    }
}

impl Default for ProverSection {
    fn default() -> Self {
        Self {
            distributor: String::new(),
            jobs: 1,
            threads: 0,
            max_failures: 10,
            shutdown_grace_secs: 30,
            fault: Fault::None,
        }
    }
}

impl Config {
    /// Reads a TOML file; unknown keys are errors (a typo must not pass silently).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    /// The network settings, parsed.
    pub fn network(&self) -> anyhow::Result<NetworkConfig> {
        let parse = |list: &[String], what: &str| -> anyhow::Result<Vec<Multiaddr>> {
            list.iter()
                .map(|a| {
                    a.parse::<Multiaddr>()
                        .with_context(|| format!("invalid {what} address {a:?}"))
                })
                .collect()
        };
        Ok(NetworkConfig {
            listen: parse(&self.network.listen, "listen")?,
            bootstrap: parse(&self.network.bootstrap, "bootstrap")?,
            max_connections: self.network.max_connections,
            request_timeout: Duration::from_secs(self.network.request_timeout_secs.max(1)),
            ..NetworkConfig::default()
        })
    }

    /// The distributor's trust anchor, parsed.
    pub fn distributor_key(&self) -> anyhow::Result<PublicKey> {
        if self.prover.distributor.is_empty() {
            bail!(
                "a prover needs the distributor's public key: pass --distributor <hex> \
                 or set [prover] distributor in the config file"
            );
        }
        parse_public_key(&self.prover.distributor)
    }

    /// The scheduler knobs, from the distributor section.
    pub fn lrp(&self) -> LrpConfig {
        let d = &self.distributor;
        LrpConfig {
            min_reserve_age_ms: d.reserve_after_ms,
            lease_ms: d.lease_ms,
            max_live_holders: d.max_holders,
            max_held_per_prover: d.max_held_per_prover,
            max_strikes: d.max_strikes,
            ..LrpConfig::default()
        }
    }

    /// The allowlist, parsed.
    pub fn allowlist(&self) -> anyhow::Result<Vec<PublicKey>> {
        self.distributor
            .allowlist
            .iter()
            .map(|k| parse_public_key(k))
            .collect()
    }
}

/// Parses a 64-hex-digit public key.
pub fn parse_public_key(hex: &str) -> anyhow::Result<PublicKey> {
    let bytes = protocol::hex::decode(hex.trim())
        .ok()
        .filter(|b| b.len() == 32)
        .with_context(|| format!("{hex:?} is not a public key (64 hex digits)"))?;
    let mut key = [0u8; 32];
    key.copy_from_slice(&bytes);
    Ok(PublicKey(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_toml() {
        let text = toml::to_string(&Config::default()).unwrap();
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back, Config::default());
    }

    #[test]
    fn a_partial_file_keeps_defaults_and_typos_are_errors() {
        let c: Config = toml::from_str("[node]\nrole = \"distributor\"\n").unwrap();
        assert_eq!(c.node.role, Role::Distributor);
        assert_eq!(c.distributor, DistributorSection::default());
        assert!(toml::from_str::<Config>("[node]\nrol = \"prover\"\n").is_err());
    }

    #[test]
    fn bad_addresses_and_keys_are_named() {
        let mut c = Config::default();
        c.network.bootstrap = vec!["not-an-address".into()];
        let err = c.network().unwrap_err().to_string();
        assert!(err.contains("not-an-address"), "{err}");
        c.prover.distributor = "abcd".into();
        assert!(
            c.distributor_key()
                .unwrap_err()
                .to_string()
                .contains("abcd")
        );
    }
}
