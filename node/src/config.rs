//! Node configuration: an optional TOML file whose every field has a default
//! that serves local development; command-line flags override the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use libp2p::Multiaddr;
use protocol::PublicKey;
use protocol::lrp::{LrpConfig, ReservePolicy};
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

/// The whole configuration: an optional TOML file, then command-line flags.
///
/// Every setting is declared once, as a field below: its doc comment is both
/// the file's documentation and the flag's `--help`, its `#[arg]` default is
/// the default of both, and its name is both the TOML key and the flag
/// (`batch_txs` ⇔ `--batch-txs`). `Default` is what the flags parse to when
/// none is given. The scheduler's knobs are the LRP's own [`LrpConfig`],
/// embedded as `[scheduler]` (file only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Settings of every node.
    #[command(flatten)]
    pub node: NodeSection,
    /// Network settings.
    #[command(flatten)]
    pub network: NetworkSection,
    /// Distributor settings.
    #[command(flatten)]
    pub distributor: DistributorSection,
    /// Prover settings.
    #[command(flatten)]
    pub prover: ProverSection,
    /// The L1 chain a distributor settles on.
    #[command(flatten)]
    pub chain: ChainSection,
    /// The scheduler's knobs (docs/lrp.md explains each); file only.
    #[arg(skip)]
    pub scheduler: LrpConfig,
}

/// `[node]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub struct NodeSection {
    /// Which role to run.
    #[arg(long, value_enum, default_value = "prover")]
    pub role: Role,
    /// The node identity key file; created on first start if missing.
    #[arg(long, env = "CROWDPROVE_KEY", default_value = "crowdprove.key")]
    pub key: PathBuf,
    /// Where the node keeps its databases, caches and receipts.
    #[arg(long, default_value = "crowdprove-data")]
    pub data_dir: PathBuf,
    /// The HTTP API (dashboard, /status, /metrics, POST /batch); port 0
    /// picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub api: SocketAddr,
    /// Host names the API answers to, besides IP addresses and localhost
    /// (repeatable). A request naming any other host is refused, so a web
    /// page cannot reach the API by rebinding its own name to this node.
    #[arg(long = "api-host")]
    pub api_hosts: Vec<String>,
}

/// `[network]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
#[command(next_help_heading = "Network")]
pub struct NetworkSection {
    /// libp2p listen address, e.g. /ip4/0.0.0.0/tcp/4100 (repeatable).
    #[arg(long, default_values_t = [String::from("/ip4/127.0.0.1/tcp/0")])]
    pub listen: Vec<String>,
    /// Bootstrap peer: a multiaddr ending in /p2p/<peer id> (repeatable).
    #[arg(long)]
    pub bootstrap: Vec<String>,
    /// Most inbound connections in all (a distributor serving a large crowd
    /// needs one per prover); when all are taken, a newcomer from a less
    /// crowded /24 or /48 takes the place of the newest connection from the
    /// most crowded one. Outbound ones get a quarter more room on top.
    #[arg(long, default_value_t = 512)]
    pub max_connections: u32,
    /// Most inbound connections from one IP address (0: no cap); identities
    /// are free, addresses are not.
    #[arg(long, default_value_t = 32)]
    pub max_connections_per_ip: u32,
    /// Most inbound connections from one /24 (IPv4) or /48 (IPv6) (0: no cap).
    #[arg(long, default_value_t = 128)]
    pub max_connections_per_subnet: u32,
    /// Seconds a request waits for its answer.
    #[arg(long, default_value_t = 30)]
    pub request_timeout_secs: u64,
}

/// `[distributor]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
#[command(next_help_heading = "Distributor")]
pub struct DistributorSection {
    /// Circuit id: transfer-d<Merkle depth>-k<transfers per job>, or a
    /// registered circom circuit's circom-<zkey hash>-p<public signals>
    /// (`crowdprove setup --zkey`; its batches are witness files).
    #[arg(long, default_value = "transfer-d8-k2")]
    pub circuit: String,
    /// Folder with <circuit>.pk and <circuit>.vk, or a circom circuit's
    /// <circuit>.zkey, .r1cs and .vk (see `crowdprove setup`).
    #[arg(long, default_value = "keys")]
    pub keys_dir: PathBuf,
    /// Development mode: accept keys from an insecure seeded setup
    /// (`crowdprove setup --insecure-seed`), for which anyone can forge
    /// proofs. Testnets and tests only.
    #[arg(long)]
    pub dev: bool,
    /// Ledger units paid per accepted proof.
    #[arg(long, alias = "reward", default_value_t = 100)]
    pub reward_per_job: u64,
    /// Seed of the transaction generator.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Accounts in the generated rollup state (at most 2^depth).
    #[arg(long, default_value_t = 256)]
    pub accounts: u32,
    /// Transactions per generated batch.
    #[arg(long, default_value_t = 16)]
    pub batch_txs: usize,
    /// Seconds between generated batches; 0 generates none on its own
    /// (submit through POST /batch).
    #[arg(long, alias = "batch-interval", default_value_t = 0)]
    pub batch_interval_secs: u64,
    /// Stop generating after this many batches; 0 for no limit.
    #[arg(long, default_value_t = 0)]
    pub max_batches: u64,
    /// Prove every job here instead of handing them out: the centralized
    /// baseline.
    #[arg(long)]
    pub centralized: bool,
    /// Centralized mode: jobs proved at once, sharing the cores (1: one job
    /// on all cores; the core count: one job per core).
    #[arg(long, default_value_t = 1)]
    pub centralized_jobs: usize,
    /// Threads of the verification pool; 0 for one per core.
    #[arg(long, default_value_t = 0)]
    pub verify_threads: usize,
    /// Proofs that may wait for verification; more are answered `busy`.
    #[arg(long, default_value_t = 4096)]
    pub verify_queue: usize,
    /// Most proofs checked together in one batch verification.
    #[arg(long, default_value_t = 256)]
    pub verify_batch: usize,
    /// Key-chunk and receipt requests that may wait; more are answered `busy`.
    #[arg(long, default_value_t = 1024)]
    pub serve_queue: usize,
    /// Full copies of the proving key one prover may fetch per hour (with a
    /// burst of two); chunks go only to provers holding a job.
    #[arg(long, default_value_t = 4)]
    pub key_downloads_per_hour: u32,
    /// If not empty, only these provers (hex public keys) get work (repeatable).
    #[arg(long, alias = "allow")]
    pub allowlist: Vec<String>,
    /// Requests per second one peer may send, sustained.
    #[arg(long, default_value_t = 20)]
    pub rate_limit_per_sec: u32,
    /// Requests one peer may send in a burst.
    #[arg(long, default_value_t = 40)]
    pub rate_limit_burst: u32,
    /// Requests per second from one IP address, all its peers together
    /// (burst: two seconds' worth; 0: no limit). A new identity is free, an
    /// address is not.
    #[arg(long, default_value_t = 160)]
    pub rate_limit_per_ip_per_sec: u32,
    /// Requests per second from one /24 (IPv4) or /48 (IPv6), all its peers
    /// together (burst: two seconds' worth; 0: no limit).
    #[arg(long, default_value_t = 640)]
    pub rate_limit_per_subnet_per_sec: u32,
    /// Milliseconds between ledger blocks at most.
    #[arg(long, default_value_t = 2_000)]
    pub block_interval_ms: u64,
    /// When a held job gets another copy: `adaptive` (once its holder is
    /// overdue for its own expected time, learnt from accepted proofs, plus
    /// a few percent of backups in a batch's tail) or `lrp` (the paper's
    /// rule: once its latest hand-out is `min_reserve_age_ms` old). Sets
    /// `[scheduler] policy`; docs/lrp.md explains both.
    #[arg(long)]
    #[serde(skip)]
    pub policy: Option<ReservePolicy>,
    /// MiB the data dir's disk must keep free: below it the distributor
    /// writes nothing more and stops with a clear error (restart once space
    /// is freed; nothing is lost). 0: no check.
    #[arg(long, default_value_t = 256)]
    pub min_free_disk_mb: u64,
    /// A circom circuit: the longest witness a job may have, in MiB (1 to
    /// 256, what one POST /batch/witnesses carries). Longer witness files
    /// are refused at intake, naming them. Provers fetch a witness in 512
    /// KiB chunks and hold it while they prove; the default takes a
    /// 2^20-constraint circuit's (32 MiB) eight times.
    #[arg(long, default_value_t = 256)]
    pub max_witness_mb: u64,
}

/// `[prover]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
#[command(next_help_heading = "Prover")]
pub struct ProverSection {
    /// The distributor's public key (hex): the only signer whose jobs this
    /// prover accepts.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub distributor: String,
    /// Jobs proved at once.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Threads per proof; 0 shares all cores among the jobs.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Consecutive failures (proofs judged invalid, proving errors) before
    /// a worker stops claiming; `busy` answers, refused messages and an
    /// unreachable distributor do not count: the worker backs off and keeps
    /// trying.
    #[arg(long, default_value_t = 10)]
    pub max_failures: u32,
    /// Seconds between heartbeats while a job is held (0: none). A
    /// distributor re-serves the job of a prover silent for its
    /// `[scheduler] heartbeat_silence_ms` (30 s by default).
    #[arg(long, default_value_t = 10)]
    pub heartbeat_secs: u64,
    /// Seconds to finish held jobs on shutdown before releasing them.
    #[arg(long, default_value_t = 30)]
    pub shutdown_grace_secs: u64,
    /// The longest proving key this prover fetches, in MiB (the protocol's
    /// ceiling, 4096, at most); a distributor announcing a longer one — or
    /// one the key cache's disk has no room for — is refused before a byte
    /// is written.
    #[arg(long, default_value_t = 4096)]
    pub max_key_mb: u64,
    /// The most disk the proving-key cache keeps, in MiB: whole keys past
    /// it (or past the 3 most recently used) are removed, the least
    /// recently used first, never the key in use.
    #[arg(long, default_value_t = 16384)]
    pub key_cache_mb: u64,
    /// The Ethereum address (0x and 40 hex digits) this prover's pay goes
    /// to on chain. It is signed with the node key and recorded in the
    /// distributor's ledger with the next credit, so nobody else can
    /// redirect the pay. Empty: credits are earned but cannot be claimed
    /// until one is set.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub payout_address: String,
    /// Seconds a ledger block holding this prover's credits may wait to be
    /// anchored on chain before the prover raises the alarm (a warning,
    /// `/status` `anchoring.overdue`, `crowdprove_unanchored_credit_seconds`).
    /// Watched only with `[chain] rpc_url` and `payouts` set.
    #[arg(long, default_value_t = 600)]
    pub anchor_deadline_secs: u64,
    /// Fault injection for tests and the testnet; `none` on every real prover.
    #[arg(long, value_enum, default_value = "none")]
    pub fault: Fault,
}

impl NetworkSection {
    /// The settings as the network layer takes them; what the file and the
    /// flags do not set keeps the network's built-in values.
    pub fn parse(&self) -> anyhow::Result<NetworkConfig> {
        let parse = |list: &[String], what: &str| -> anyhow::Result<Vec<Multiaddr>> {
            list.iter()
                .map(|a| {
                    a.parse::<Multiaddr>()
                        .with_context(|| format!("invalid {what} address {a:?}"))
                })
                .collect()
        };
        Ok(NetworkConfig {
            listen: parse(&self.listen, "listen")?,
            bootstrap: parse(&self.bootstrap, "bootstrap")?,
            max_connections: self.max_connections,
            request_timeout: Duration::from_secs(self.request_timeout_secs.max(1)),
            max_connections_per_peer: 2,
            ip_caps: crate::network::ip_limits::IpCaps {
                per_ip: self.max_connections_per_ip,
                per_subnet: self.max_connections_per_subnet,
                total: self.max_connections,
            },
            idle_timeout: Duration::from_secs(300),
            gossip_signer: None,
            event_queue: crate::network::EVENT_QUEUE,
            proof_lane: 0,
        })
    }
}

/// What a settings struct parses to with no flags: its defaults.
fn defaults<T: clap::Args + clap::FromArgMatches>() -> T {
    let command = T::augment_args(clap::Command::new("defaults"));
    let matches = command
        .try_get_matches_from(["defaults"])
        .expect("every setting has a default");
    T::from_arg_matches(&matches).expect("every setting has a default")
}

impl Default for NodeSection {
    fn default() -> Self {
        defaults()
    }
}

impl Default for NetworkSection {
    fn default() -> Self {
        defaults()
    }
}

impl Default for DistributorSection {
    fn default() -> Self {
        defaults()
    }
}

impl Default for ProverSection {
    fn default() -> Self {
        defaults()
    }
}

impl Default for ChainSection {
    fn default() -> Self {
        defaults()
    }
}

/// `[chain]`: where a distributor settles its proven batches and anchors
/// its ledger blocks, and where a prover watches that anchoring
/// (docs/settlement.md). Off unless `rpc_url` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
#[command(next_help_heading = "Chain")]
pub struct ChainSection {
    /// The L1's JSON-RPC URL (e.g. http://127.0.0.1:8545). Empty: no
    /// chain; proven batches and ledger blocks stay off chain.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub rpc_url: String,
    /// File with the private key (hex) of the operator's chain account,
    /// which deploys the contracts, settles batches and anchors blocks
    /// (and pays their gas). Needed by a distributor with `rpc_url`; a
    /// prover sends nothing and needs none.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub account_key: String,
    /// The Settlement contract's address, or `deploy`: deploy one for this
    /// distributor's circuit and genesis (kept in <data-dir>/chain.json).
    #[arg(long, default_value = "deploy")]
    pub settlement: String,
    /// The Payouts contract's address, or `deploy`: deploy one paying in
    /// ETH (kept in <data-dir>/chain.json); the operator funds it. A
    /// prover names the address its distributor publishes, to watch it.
    #[arg(long, default_value = "deploy")]
    pub payouts: String,
    /// Blocks a chain transaction must be deep before the next is sent.
    #[arg(long, default_value_t = 1)]
    pub confirmations: u64,
    /// Seconds a distributor's transaction may stay pending before it is
    /// replaced: the transaction due next, at the same nonce, with twice the
    /// fees (of the stuck one if this process sent it, else of the chain's
    /// current estimate).
    #[arg(long, default_value_t = 180)]
    pub replace_after_secs: u64,
}

impl ChainSection {
    /// The contract at `field` (`settlement` or `payouts`), or `None` to deploy.
    pub fn contract(
        value: &str,
        field: &str,
    ) -> anyhow::Result<Option<alloy::primitives::Address>> {
        if value == "deploy" {
            return Ok(None);
        }
        value.parse().map(Some).map_err(|_| {
            anyhow::anyhow!("[chain] {field}: {value:?} is neither an address nor \"deploy\"")
        })
    }

    /// Checks what can be checked without the chain, for a node of `role`.
    pub fn validate(&self, role: Role) -> anyhow::Result<()> {
        if self.rpc_url.is_empty() {
            return Ok(());
        }
        crate::chain::reading_provider(&self.rpc_url)
            .map_err(|e| anyhow::anyhow!("[chain] rpc_url (--rpc-url): {e}"))?;
        if role == Role::Prover {
            return match Self::contract(&self.payouts, "payouts")? {
                Some(_) => Ok(()),
                None => bail!(
                    "[chain] payouts: a prover watches its distributor's Payouts contract; name its address (--payouts)"
                ),
            };
        }
        if self.account_key.is_empty() {
            bail!(
                "[chain] rpc_url is set but account_key is not: name the operator's chain key file (--account-key)"
            );
        }
        Self::contract(&self.settlement, "settlement")?;
        Self::contract(&self.payouts, "payouts")?;
        if self.confirmations == 0 {
            bail!("[chain] confirmations must be at least 1");
        }
        if self.replace_after_secs == 0 {
            bail!("[chain] replace_after_secs must be at least 1");
        }
        Ok(())
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
        self.network.parse()
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
            .map_err(|e| anyhow::anyhow!("--distributor (or [prover] distributor): {e:#}"))
    }

    /// The scheduler knobs.
    pub fn lrp(&self) -> LrpConfig {
        self.scheduler.clone()
    }

    /// The file's settings (defaults where it has none) with `flags` laid
    /// over them — only the flags that `given` says were on the command
    /// line. Keys are the same on both sides, so this is one generic merge.
    pub fn with_flags(
        file: Option<&Path>,
        flags: &Config,
        given: impl Fn(&str) -> bool,
    ) -> anyhow::Result<Self> {
        let base = match file {
            Some(path) => Self::load(path)?,
            None => Self::default(),
        };
        let mut merged = toml::Table::try_from(&base).context("settings do not encode")?;
        let policy = flags.distributor.policy;
        let flags = toml::Table::try_from(flags).context("flags do not encode")?;
        // The sections flags can set; `[scheduler]` is file only.
        let flagged = ["node", "network", "distributor", "prover", "chain"];
        for (section, values) in flags
            .into_iter()
            .filter(|(s, _)| flagged.contains(&s.as_str()))
        {
            let (Some(values), Some(target)) = (
                values.as_table(),
                merged.get_mut(&section).and_then(|t| t.as_table_mut()),
            ) else {
                continue;
            };
            for (key, value) in values {
                if given(key) {
                    target.insert(key.clone(), value.clone());
                }
            }
        }
        let mut config: Self = merged.try_into().context("invalid settings")?;
        if let Some(policy) = policy {
            config.scheduler.policy = policy;
        }
        config.network()?;
        config.allowlist()?;
        if !config.prover.distributor.is_empty() {
            config.distributor_key()?;
        }
        if !config.prover.payout_address.is_empty() {
            config
                .prover
                .payout_address
                .parse::<protocol::PayoutAddress>()
                .context("[prover] payout_address (--payout-address)")?;
        }
        config.scheduler.validate()?;
        config.chain.validate(config.node.role)?;
        Ok(config)
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

/// Whether the argument `id` of `matches` was given on the command line (or
/// through its environment variable), not left at its default.
pub fn given(matches: &clap::ArgMatches, id: &str) -> bool {
    use clap::parser::ValueSource;
    matches.try_get_raw(id).is_ok()
        && matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
}

/// Parses a 64-hex-digit public key: it must be a usable ed25519 key (a
/// point on the curve, not of small order), so that every key the node
/// holds can be dialled and checked against.
pub fn parse_public_key(hex: &str) -> anyhow::Result<PublicKey> {
    hex.trim()
        .parse::<PublicKey>()
        .with_context(|| format!("{hex:?} is not a public key"))
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
    fn flags_given_override_the_file_and_the_rest_keep_it() {
        use clap::{Args, FromArgMatches};
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[distributor]\nbatch_txs = 9\nseed = 3\n[scheduler]\nlease_ms = 1234\n",
        )
        .unwrap();
        let command = Config::augment_args(clap::Command::new("t"));
        let matches = command
            .try_get_matches_from(["t", "--batch-txs", "5", "--role", "distributor"])
            .unwrap();
        let flags = Config::from_arg_matches(&matches).unwrap();
        let c = Config::with_flags(Some(&file), &flags, |id| given(&matches, id)).unwrap();
        assert_eq!(c.distributor.batch_txs, 5, "the flag wins");
        assert_eq!(c.distributor.seed, 3, "the file keeps what no flag gives");
        assert_eq!(c.node.role, Role::Distributor);
        assert_eq!(c.scheduler.lease_ms, 1234);
        assert_eq!(
            c.distributor.circuit, "transfer-d8-k2",
            "defaults fill the rest"
        );
        // A typo in the scheduler's section is an error too.
        std::fs::write(&file, "[scheduler]\nlease = 1\n").unwrap();
        assert!(Config::load(&file).is_err());
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
        // 64 hex digits, but no point on the curve: refused with the flag
        // named, when the settings are read.
        c.network.bootstrap.clear();
        c.prover.distributor = format!("02{}", "0".repeat(62));
        let err = c.distributor_key().unwrap_err().to_string();
        assert!(
            err.contains("--distributor") && err.contains("no point on the ed25519 curve"),
            "{err}"
        );
        let given = |key: &str| key == "distributor";
        let err = Config::with_flags(None, &c, given).unwrap_err();
        assert!(format!("{err:#}").contains("--distributor"), "{err:#}");
    }
}
