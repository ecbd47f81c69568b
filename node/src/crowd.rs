//! `crowdprove crowd`: many prover identities in one process, for load and
//! scale tests on one machine. Each identity has its own key and its own
//! libp2p swarm — to the distributor it is one more stranger on the network
//! — while all share one set of proving slots and one key cache, so a
//! two-core machine can host hundreds of provers and still prove one job
//! per core at a time.
//!
//! Identities are derived from `--seed` and their index: throwaway test
//! keys, reproducible from run to run. Never use a crowd to earn anything.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use libp2p::Multiaddr;
use protocol::{PublicKey, SecretKey};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::config::{ProverSection, Role};
use crate::metrics::Metrics;
use crate::network::{self, NetworkConfig, NetworkHandle};
use crate::node_info::{NODE_INFO_FILE, NodeInfo};
use crate::prover::keys::KeyCache;
use crate::prover::worker::ProvingPools;
use crate::prover::{Prover, Resources, Shared};
use crate::{api, node};

/// Most connections of one identity: the distributor and a few peers.
const CONNECTIONS_PER_IDENTITY: u32 = 16;

/// A crowd's settings.
#[derive(Debug, Clone)]
pub struct CrowdConfig {
    /// Identities to run.
    pub provers: usize,
    /// Seed the identities' keys are derived from.
    pub seed: u64,
    /// Proofs made at once, across all identities.
    pub parallel: usize,
    /// Threads per proof (0: share the cores among `parallel`).
    pub threads: usize,
    /// Each identity's prover settings (`jobs` per identity, faults...).
    pub prover: ProverSection,
    /// The distributor every identity works for.
    pub distributor: PublicKey,
    /// Where the identities find the network.
    pub bootstrap: Vec<Multiaddr>,
    /// Receipts (per identity) and the shared key cache.
    pub data_dir: PathBuf,
    /// The crowd's HTTP API (`/status` sums every identity).
    pub api: SocketAddr,
}

/// The key of identity `index` of a crowd seeded with `seed`.
pub fn identity(seed: u64, index: usize) -> SecretKey {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&(index as u64).to_le_bytes());
    bytes[16..].copy_from_slice(b"crowdprove-crowd");
    SecretKey::from_seed(bytes)
}

/// Runs the crowd until ctrl-c / SIGTERM.
pub async fn run(config: CrowdConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create the data dir {}", config.data_dir.display()))?;
    let metrics = Arc::new(Metrics::new());
    metrics.set_role("crowd");
    let (stop_tx, stop_rx) = watch::channel(false);
    let resources = Resources {
        pools: ProvingPools::new(config.parallel, config.threads)?,
        keys: Arc::new(KeyCache::new(config.data_dir.join("keys"))),
    };
    let mut members = Vec::with_capacity(config.provers);
    let mut tasks = tokio::task::JoinSet::new();
    let mut networks = Vec::with_capacity(config.provers);
    for index in 0..config.provers {
        let (member, network) =
            start_identity(&config, index, &metrics, &resources, &stop_rx, &mut tasks).await?;
        members.push(member);
        networks.push(network);
    }
    let (api_addr, api_task, mut api_rx) = serve_api(&config, &members, &metrics, &stop_rx).await?;
    let first = identity(config.seed, 0).public();
    let info = NodeInfo::describe(Role::Prover, &first, &networks[0].0, api_addr).await?;
    info.write(&config.data_dir)?;
    info!(
        target: "crowd",
        provers = config.provers,
        parallel = resources.pools.slots(),
        threads = resources.pools.threads(),
        api = %api_addr,
        "crowd started"
    );
    tokio::spawn(node::watch_signals(stop_tx.clone()));
    serve_until_stopped(stop_rx.clone(), &mut api_rx, &mut tasks).await;
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    let _ = api_task.await;
    for (net, task) in networks {
        net.stop().await;
        drop(net);
        let _ = task.await;
    }
    let _ = std::fs::remove_file(config.data_dir.join(NODE_INFO_FILE));
    info!(target: "crowd", "crowd stopped");
    Ok(())
}

/// The provers' tasks, each an identity's `Prover::run`.
type Identities = tokio::task::JoinSet<anyhow::Result<()>>;

/// Starts identity `index`: its network, and its prover as one of `tasks`.
/// Returns its prover's state and its network (with the network's task).
async fn start_identity(
    config: &CrowdConfig,
    index: usize,
    metrics: &Arc<Metrics>,
    resources: &Resources,
    stop_rx: &watch::Receiver<bool>,
    tasks: &mut Identities,
) -> anyhow::Result<(Arc<Shared>, (NetworkHandle, tokio::task::JoinHandle<()>))> {
    let secret = identity(config.seed, index);
    // A few connections each: identities would otherwise find and dial
    // each other through the DHT, hundreds of sockets apiece.
    let net_config = NetworkConfig {
        bootstrap: config.bootstrap.clone(),
        gossip_signer: Some(config.distributor),
        max_connections: CONNECTIONS_PER_IDENTITY,
        ..NetworkConfig::default()
    };
    let (net, inbox, task) = network::start(&secret, net_config, metrics.clone())
        .await
        .with_context(|| format!("cannot start identity {index}'s network"))?;
    let dir = config.data_dir.join(format!("p{index}"));
    let prover = Prover::new(
        config.prover.clone(),
        config.distributor,
        secret,
        &dir,
        net.clone(),
        metrics.clone(),
        resources.clone(),
        stop_rx.clone(),
    )?;
    let member = prover.shared();
    // Identities take no API requests of their own: the crowd answers.
    let (_api_tx, api_rx) = mpsc::channel(1);
    tasks.spawn(async move {
        let _keep = _api_tx;
        prover.run(inbox.events, api_rx, None).await
    });
    Ok((member, (net, task)))
}

/// Serves the crowd's HTTP API: `/status` sums `members`. Returns its
/// address, its task and the requests it passes on.
async fn serve_api(
    config: &CrowdConfig,
    members: &[Arc<Shared>],
    metrics: &Arc<Metrics>,
    stop_rx: &watch::Receiver<bool>,
) -> anyhow::Result<(
    SocketAddr,
    tokio::task::JoinHandle<()>,
    mpsc::Receiver<api::ApiRequest>,
)> {
    let status: api::StatusSource = {
        let members = members.to_vec();
        Arc::new(move || crowd_status(&members))
    };
    let (api_tx, api_rx) = mpsc::channel(16);
    let access = api::Access {
        token: api::Token::load_or_create(&config.data_dir)?,
        hosts: Vec::new(),
    };
    let (api_addr, api_task) = api::serve(
        config.api,
        access,
        metrics.clone(),
        status,
        api_tx,
        stop_rx.clone(),
    )
    .await?;
    Ok((api_addr, api_task, api_rx))
}

/// Answers the API's requests until `stop` fires or every identity has
/// stopped, logging each that stops with an error.
async fn serve_until_stopped(
    mut stop: watch::Receiver<bool>,
    api_rx: &mut mpsc::Receiver<api::ApiRequest>,
    tasks: &mut Identities,
) {
    loop {
        tokio::select! {
            Some(request) = api_rx.recv() => answer(request),
            done = tasks.join_next() => match done {
                Some(Ok(Err(e))) => warn!(target: "crowd", error = %format!("{e:#}"), "an identity stopped"),
                Some(_) => {}
                None => break,
            },
            _ = stop.changed() => break,
        }
    }
}

fn answer(request: api::ApiRequest) {
    request.not_served("crowd");
}

/// The crowd's `/status`: every counter summed, and each identity's line.
fn crowd_status(members: &[Arc<Shared>]) -> Value {
    let docs: Vec<Value> = members.iter().map(|m| m.status()).collect();
    let sum = |path: &[&str]| -> u64 {
        docs.iter()
            .map(|d| path.iter().fold(d, |v, k| &v[*k]).as_u64().unwrap_or(0))
            .sum()
    };
    let identities: Vec<Value> = docs
        .iter()
        .map(|d| {
            json!({
                "public_key": d["public_key"],
                "accepted": d["jobs"]["accepted"],
                "late": d["jobs"]["late"],
                "invalid": d["jobs"]["invalid"],
                "earned": d["earned"],
                "receipts": d["receipts"],
                "last_error": d["last_error"],
            })
        })
        .collect();
    json!({
        "role": "crowd",
        "provers": members.len(),
        "jobs": {
            "active": sum(&["jobs", "active"]),
            "accepted": sum(&["jobs", "accepted"]),
            "late": sum(&["jobs", "late"]),
            "invalid": sum(&["jobs", "invalid"]),
            "released": sum(&["jobs", "released"]),
            "dropped": sum(&["jobs", "dropped"]),
            "failed": sum(&["jobs", "failed"]),
        },
        "earned": sum(&["earned"]),
        "receipts": sum(&["receipts"]),
        "awaiting_receipts": sum(&["awaiting_receipts"]),
        "workers_stopped": sum(&["workers_stopped"]),
        "identities": identities,
    })
}
