//! What a running node tells the world about itself: `NodeInfo`, in
//! `/status` and in `<data dir>/node.json`, where scripts and tests find its
//! addresses.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::Role;

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
    /// This process, as a node of `role` with identity `public` on `net`,
    /// serving its API at `api`: its listen addresses end in `/p2p/<peer id>`.
    pub async fn describe(
        role: Role,
        public: &protocol::PublicKey,
        net: &crate::network::NetworkHandle,
        api: SocketAddr,
    ) -> anyhow::Result<Self> {
        let peer = net.local_peer_id();
        let listen = net
            .listen_addrs()
            .await?
            .into_iter()
            .map(|a| a.with(libp2p::multiaddr::Protocol::P2p(peer)).to_string())
            .collect();
        Ok(Self {
            role,
            public_key: public.to_hex(),
            node_id: public.node_id().to_string(),
            peer_id: peer.to_string(),
            listen,
            api,
            pid: std::process::id(),
        })
    }

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

    /// Writes `<data_dir>/node.json` atomically (a temporary file, renamed).
    pub fn write(&self, data_dir: &Path) -> anyhow::Result<()> {
        let path = data_dir.join(NODE_INFO_FILE);
        let tmp = data_dir.join(format!("{NODE_INFO_FILE}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }
}
