//! Starting and stopping a node: identity, data dir, metrics, the network,
//! the HTTP API, the role, and shutdown on ctrl-c or SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use libp2p::multiaddr::Protocol;
use protocol::SecretKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::config::{Config, Role};
use crate::distributor::Distributor;
use crate::metrics::Metrics;
use crate::{api, network, prover};

/// What a running node tells the world about itself; also written to
/// `<data dir>/node.json` so scripts and tests find its addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// `distributor` or `prover`.
    pub role: Role,
    /// The node's public key (hex).
    pub public_key: String,
    /// Short node id.
    pub node_id: String,
    /// libp2p peer id.
    pub peer_id: String,
    /// Listen addresses, each ending in `/p2p/<peer id>`: ready to use as
    /// another node's bootstrap address.
    pub listen: Vec<String>,
    /// The HTTP API address.
    pub api: SocketAddr,
    /// The process id.
    pub pid: u32,
}

/// The file a running node describes itself in.
pub const NODE_INFO_FILE: &str = "node.json";

impl NodeInfo {
    /// As JSON, for `/status`.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("serializable")
    }

    /// Reads `<data_dir>/node.json`.
    pub fn read(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join(NODE_INFO_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}; is a node running there?", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not node info", path.display()))
    }

    fn write(&self, data_dir: &Path) -> anyhow::Result<()> {
        let path = data_dir.join(NODE_INFO_FILE);
        let tmp = data_dir.join(format!("{NODE_INFO_FILE}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }
}

/// Runs a node with `config` until ctrl-c / SIGTERM, or until its role ends.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let data_dir: PathBuf = config.node.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create the data dir {}", data_dir.display()))?;
    let secret =
        SecretKey::load_or_generate(&config.node.key).context("cannot load the node identity")?;
    let distributor_key = match config.node.role {
        Role::Prover => Some(config.distributor_key()?),
        Role::Distributor => None,
    };
    let metrics = Arc::new(Metrics::new());
    metrics.set_role(match config.node.role {
        Role::Distributor => "distributor",
        Role::Prover => "prover",
    });
    let (stop_tx, stop_rx) = watch::channel(false);

    let (net, events, net_task) = network::start(&secret, config.network()?).await?;
    let (api_tx, api_rx) = mpsc::channel(64);
    let (api_addr, api_task) =
        api::serve(config.node.api, metrics.clone(), api_tx, stop_rx.clone()).await?;
    let peer = net.local_peer_id();
    let listen = net
        .listen_addrs()
        .await?
        .into_iter()
        .map(|a| a.with(Protocol::P2p(peer)).to_string())
        .collect();
    let public = secret.public();
    let info = NodeInfo {
        role: config.node.role,
        public_key: public.to_hex(),
        node_id: public.node_id().to_string(),
        peer_id: peer.to_string(),
        listen,
        api: api_addr,
        pid: std::process::id(),
    };
    info!(
        target: "node",
        role = ?info.role,
        node_id = %info.node_id,
        peer_id = %info.peer_id,
        listen = ?info.listen,
        api = %api_addr,
        data_dir = %data_dir.display(),
        "node started"
    );

    tokio::spawn(watch_signals(stop_tx.clone()));
    let result = match config.node.role {
        Role::Distributor => {
            let (local_tx, local_rx) = mpsc::channel(4);
            let distributor = Distributor::open(
                &config,
                secret,
                net.clone(),
                metrics,
                info.clone(),
                local_tx,
            )?;
            // Announced only once the state opened: a node.json means a
            // working node.
            info.write(&data_dir)?;
            distributor.run(events, api_rx, local_rx, stop_rx).await
        }
        Role::Prover => {
            info.write(&data_dir)?;
            prover::run(
                config.prover.clone(),
                distributor_key.expect("checked above"),
                secret,
                data_dir.clone(),
                net.clone(),
                events,
                api_rx,
                metrics,
                info,
                stop_rx,
            )
            .await
        }
    };
    let _ = stop_tx.send(true);
    let _ = api_task.await;
    drop(net);
    net_task.abort();
    let _ = std::fs::remove_file(data_dir.join(NODE_INFO_FILE));
    result
}

async fn watch_signals(stop: watch::Sender<bool>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            warn!(target: "node", "cannot watch SIGTERM");
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => info!(target: "node", "ctrl-c: shutting down"),
            _ = term.recv() => info!(target: "node", "SIGTERM: shutting down"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        info!(target: "node", "ctrl-c: shutting down");
    }
    let _ = stop.send(true);
}
