//! `crowdprove crowd`: many prover identities in one process.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use node::config::{Config, parse_public_key};

/// `crowdprove crowd`.
#[derive(Debug, Args)]
pub(crate) struct CrowdArgs {
    /// Prover identities to run.
    #[arg(long, default_value_t = 50)]
    provers: usize,
    /// The distributor's public key (hex).
    #[arg(long)]
    distributor: String,
    /// Bootstrap peer: a multiaddr ending in /p2p/<peer id> (repeatable).
    #[arg(long, required = true)]
    bootstrap: Vec<String>,
    /// Receipts (one folder per identity) and the shared key cache.
    #[arg(long, default_value = "crowd-data")]
    data_dir: PathBuf,
    /// HTTP API for /status (all identities summed) and /metrics.
    #[arg(long, default_value = "127.0.0.1:0")]
    api: SocketAddr,
    /// Seed the identities' keys are derived from.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Proofs made at once across the crowd (0: one per core).
    #[arg(long, default_value_t = 0)]
    parallel: usize,
    /// Threads per proof (0: share the cores among --parallel).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Seconds between each identity's heartbeats for a job it holds.
    #[arg(long, default_value_t = 10)]
    heartbeat_secs: u64,
}

/// Runs the crowd `args` describe until ctrl-c / SIGTERM.
pub(crate) fn crowd(args: CrowdArgs) -> anyhow::Result<()> {
    let config = crowd_config(args)?;
    super::run::init_tracing();
    tokio::runtime::Runtime::new()?.block_on(node::crowd::run(config))?;
    Ok(())
}

/// The crowd's settings: `args` over the defaults of a prover's config.
fn crowd_config(args: CrowdArgs) -> anyhow::Result<node::crowd::CrowdConfig> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut base = Config::default();
    base.network.bootstrap = args.bootstrap;
    base.prover.heartbeat_secs = args.heartbeat_secs;
    let bootstrap = base.network()?.bootstrap;
    Ok(node::crowd::CrowdConfig {
        provers: args.provers.max(1),
        seed: args.seed,
        parallel: if args.parallel == 0 {
            cores
        } else {
            args.parallel
        },
        threads: args.threads,
        prover: base.prover,
        distributor: parse_public_key(&args.distributor)?,
        bootstrap,
        data_dir: args.data_dir,
        api: args.api,
    })
}
