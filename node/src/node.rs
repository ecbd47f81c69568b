//! Starting and stopping a node: identity, data dir, metrics, the network,
//! the HTTP API, the role, and shutdown on ctrl-c or SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use protocol::SecretKey;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::config::{ChainSection, Config, Role};
use crate::distributor::Distributor;
use crate::distributor::status::StatusBoard;
use crate::distributor::wire::{Edge, Inbound, Lane, Lanes, Outgoing, Request};
use crate::metrics::Metrics;
use crate::network::{NetworkConfig, NetworkEvent, NetworkHandle, public_key_of};
use crate::node_info::{NODE_INFO_FILE, NodeInfo};
use crate::{api, network, prover};

/// Runs a node with `config` until ctrl-c / SIGTERM, or until its role ends.
/// Shutdown runs in order: the role stops taking work and drains its
/// services (answers included), then the network sends what is queued and
/// stops.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let data_dir: PathBuf = config.node.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create the data dir {}", data_dir.display()))?;
    let secret =
        SecretKey::load_or_generate(&config.node.key).context("cannot load the node identity")?;
    let distributor_key = match config.node.role {
        Role::Prover => config.distributor_key()?,
        Role::Distributor => secret.public(),
    };
    if let Some((point, n)) = crate::crash::arm()? {
        warn!(target: "node", point = point.name(), pass = n, "crash point armed (testing only): this node will kill itself");
    }
    let metrics = Arc::new(Metrics::new());
    metrics.set_role(match config.node.role {
        Role::Distributor => "distributor",
        Role::Prover => "prover",
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let network_config = NetworkConfig {
        gossip_signer: Some(distributor_key),
        proof_lane: match config.node.role {
            Role::Distributor => network::EVENT_QUEUE,
            Role::Prover => 0,
        },
        ..config.network()?
    };
    let (net, inbox, net_task) = network::start(&secret, network_config, metrics.clone()).await?;
    let board = StatusBoard::default();
    let (api_addr, api_task, api) = start_api(&config, &metrics, &board, &stop_rx).await?;
    let info = NodeInfo::describe(config.node.role, &secret.public(), &net, api_addr).await?;
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
    let running = Running {
        secret,
        net: net.clone(),
        inbox,
        metrics,
        info,
        board,
        api,
        stop: stop_rx,
    };
    let result = match config.node.role {
        Role::Distributor => run_distributor(&config, running).await,
        Role::Prover => run_prover(&config, distributor_key, running).await,
    };
    let _ = stop_tx.send(true);
    let _ = api_task.await;
    net.stop().await;
    drop(net);
    let _ = net_task.await;
    let _ = std::fs::remove_file(data_dir.join(NODE_INFO_FILE));
    result
}

/// What a role runs on.
struct Running {
    secret: SecretKey,
    net: NetworkHandle,
    inbox: network::Inbox,
    metrics: Arc<Metrics>,
    info: NodeInfo,
    board: StatusBoard,
    api: mpsc::Receiver<api::ApiRequest>,
    stop: watch::Receiver<bool>,
}

/// Serves the HTTP API; its requests come out of the returned receiver.
async fn start_api(
    config: &Config,
    metrics: &Arc<Metrics>,
    board: &StatusBoard,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<(
    std::net::SocketAddr,
    tokio::task::JoinHandle<()>,
    mpsc::Receiver<api::ApiRequest>,
)> {
    let status: api::StatusSource = {
        let board = board.clone();
        Arc::new(move || (*board.read()).clone())
    };
    let (api_tx, api_rx) = mpsc::channel(64);
    let access = api::Access {
        token: api::Token::load_or_create(&config.node.data_dir)?,
        hosts: config.node.api_hosts.clone(),
    };
    let (addr, task) = api::serve(
        config.node.api,
        access,
        metrics.clone(),
        status,
        api_tx,
        stop.clone(),
    )
    .await?;
    Ok((addr, task, api_rx))
}

async fn run_distributor(config: &Config, r: Running) -> anyhow::Result<()> {
    let distributor = Distributor::open(
        config,
        r.secret,
        edge(&r.net),
        r.metrics,
        r.info.clone(),
        r.board,
    )?;
    // Announced only once the state opened: a node.json means a working node.
    r.info.write(&config.node.data_dir)?;
    r.net.provide()?;
    let lanes = Lanes {
        proofs: FromNetwork(r.inbox.proofs),
        requests: FromNetwork(r.inbox.events),
    };
    distributor.run(lanes, r.api, r.stop).await
}

async fn run_prover(
    config: &Config,
    distributor: protocol::PublicKey,
    r: Running,
) -> anyhow::Result<()> {
    let data_dir = &config.node.data_dir;
    r.info.write(data_dir)?;
    let resources = prover::Resources::local(&config.prover, data_dir)?;
    let prover = prover::Prover::new(
        config.prover.clone(),
        distributor,
        r.secret,
        data_dir,
        r.net,
        r.metrics,
        resources,
        r.stop,
    )?;
    let prover = match anchor_watch(config)? {
        Some(settings) => prover.watch_anchoring(settings),
        None => prover,
    };
    prover
        .run(r.inbox.events, r.api, Some((r.board, r.info)))
        .await
}

/// Fires `stop` on ctrl-c or SIGTERM.
pub async fn watch_signals(stop: watch::Sender<bool>) {
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

/// The distributor's way out: answers and gossip to the network.
fn edge(net: &NetworkHandle) -> Edge {
    let (out, stats) = (net.clone(), net.clone());
    Edge {
        transmit: Arc::new(move |outgoing| match outgoing {
            Outgoing::Reply { to, bytes } => out.respond(to, bytes),
            Outgoing::Publish(bytes) => out.publish(bytes),
        }),
        stats: Arc::new(move || stats.stats()),
    }
}

/// One of the network's queues, read as a distributor's lane: libp2p's
/// peer ids become node keys here, at the edge.
struct FromNetwork(mpsc::Receiver<NetworkEvent>);

impl FromNetwork {
    fn inbound(event: NetworkEvent) -> Option<Inbound> {
        match event {
            NetworkEvent::Request {
                peer,
                from,
                bytes,
                reply,
            } => Some(Inbound::Request(Request {
                sender: public_key_of(&peer),
                from,
                bytes,
                reply,
            })),
            NetworkEvent::InboundFailure { reason, .. } => Some(Inbound::Failed(reason)),
            NetworkEvent::Disconnected(peer) => public_key_of(&peer).map(Inbound::Gone),
            NetworkEvent::Gossip(_) | NetworkEvent::Connected(_) => None,
        }
    }
}

impl Lane for FromNetwork {
    async fn recv(&mut self) -> Option<Inbound> {
        loop {
            if let Some(inbound) = Self::inbound(self.0.recv().await?) {
                return Some(inbound);
            }
        }
    }

    fn depth(&self) -> usize {
        self.0.len()
    }

    fn capacity(&self) -> usize {
        self.0.max_capacity()
    }
}

/// What a prover watches on chain: `[chain] rpc_url` and `payouts`, if set.
fn anchor_watch(config: &Config) -> anyhow::Result<Option<prover::anchoring::WatchSettings>> {
    let chain = &config.chain;
    if chain.rpc_url.is_empty() {
        return Ok(None);
    }
    let payouts = ChainSection::contract(&chain.payouts, "payouts")?
        .context("[chain] payouts: name the Payouts contract's address")?;
    Ok(Some(prover::anchoring::WatchSettings {
        rpc_url: chain.rpc_url.clone(),
        payouts,
        deadline: Duration::from_secs(config.prover.anchor_deadline_secs),
    }))
}
