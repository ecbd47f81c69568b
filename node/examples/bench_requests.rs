//! Job-request latency with a crowd connected: one distributor (in this
//! process on a runtime of its own, the shipped node code), `POLLERS` prover identities each on its
//! own libp2p swarm polling for work over the real protocol, and valid
//! proofs submitted as soon as their jobs are handed out (precomputed from
//! the same generator seed the distributor uses, so the submissions are real
//! and verify). Prints p50/p90/p99/max of the job-request round trip while
//! the submissions arrive. Run through `scripts/bench-distributor`.
//!
//! The first `WARM_UP` of the run (connections settling: identify, the DHT,
//! the gossip mesh) is not measured.
//!
//! Usage: bench_requests [POLLERS] [PROOFS] [SECONDS]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use node::config::{Config, Role};
use node::metrics::Metrics;
use node::network::{self, NetworkConfig};
use node::node_info::NodeInfo;
use protocol::envelope::{open_any, seal_now};
use protocol::messages::{AnyMessage, JobRequest, ProofSubmission};
use protocol::{CircuitId, JobId, Timestamp};
use prover_core::{CircuitConfig, TxGenerator};
use tokio::sync::Mutex;

const CIRCUIT: &str = "transfer-d4-k1";
const SEED: u64 = 11;
const ACCOUNTS: u32 = 16;
const WARM_UP: Duration = Duration::from_secs(5);

/// The upper bound of the histogram bucket holding quantile `q` of
/// `crowdprove_request_seconds{kind}` in a `/metrics` text, in ms.
fn server_quantile(metrics: &str, kind: &str, q: f64) -> f64 {
    let mut buckets: Vec<(f64, f64)> = metrics
        .lines()
        .filter(|l| l.starts_with("crowdprove_request_seconds_bucket{"))
        .filter(|l| l.contains(&format!("kind=\"{kind}\"")))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let count = l.rsplit(' ').next()?.parse::<f64>().ok()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).expect("no NaN"));
    let total = buckets.last().map_or(0.0, |b| b.1);
    buckets
        .iter()
        .find(|(_, count)| *count >= q * total)
        .map_or(f64::NAN, |(le, _)| le * 1e3)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

// Long on purpose: one benchmark read top to bottom, from the distributor's
// start through the crowd's requests to the table it prints.
fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let pollers: usize = args.next().map_or(Ok(500), |a| a.parse())?;
    let proofs: usize = args.next().map_or(Ok(200), |a| a.parse())?;
    let seconds: u64 = args.next().map_or(Ok(20), |a| a.parse())?;

    let dir = tempfile::tempdir()?;
    let circuit = CircuitId::new(CIRCUIT).expect("valid id");
    let config = CircuitConfig::from_circuit_id(&circuit)?;
    eprintln!("setting up {circuit} and proving the batch's {proofs} jobs ahead ...");
    let (pk, vk) = prover_core::setup_insecure(config, 1)?;
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys)?;
    let (pk_path, vk_path) = node::distributor::key_paths(&keys, &circuit);
    pk.save(&pk_path)?;
    vk.save(&vk_path)?;
    // The distributor's own generator, run ahead: the same jobs, so the
    // proofs made here verify there.
    let mut generator = TxGenerator::new(SEED, ACCOUNTS);
    let mut rollup = generator.genesis(config, node::distributor::GENESIS_BALANCE)?;
    let txs = generator.batch(&rollup, proofs);
    let built = rollup.apply_batch(&txs)?;
    let pool =
        prover_core::ThreadPool::new(std::thread::available_parallelism().map_or(1, |n| n.get()))?;
    let ready: HashMap<u32, Vec<u8>> = built
        .jobs
        .iter()
        .enumerate()
        .map(|(i, j)| {
            let proof = pool.install(|| prover_core::prove(&pk, &j.to_bytes()));
            (i as u32, proof.expect("proves").to_bytes().to_vec())
        })
        .collect();
    let ready = Arc::new(ready);

    let mut node_config = Config::default();
    node_config.node.role = Role::Distributor;
    node_config.node.key = dir.path().join("distributor.key");
    node_config.node.data_dir = dir.path().join("distributor");
    node_config.network.max_connections = pollers as u32 + 64;
    // Every poller dials from 127.0.0.1.
    node_config.network.max_connections_per_ip = 0;
    node_config.network.max_connections_per_subnet = 0;
    let d = &mut node_config.distributor;
    d.circuit = CIRCUIT.into();
    d.keys_dir = keys;
    d.dev = true; // seeded keys
    d.seed = SEED;
    d.accounts = ACCOUNTS;
    d.batch_txs = proofs;
    d.rate_limit_per_sec = 100;
    d.rate_limit_per_ip_per_sec = 0;
    d.rate_limit_per_subnet_per_sec = 0;
    d.rate_limit_burst = 100;
    // Hand-outs are not re-served during the run: each job is proved once.
    node_config.scheduler.min_reserve_age_ms = 600_000;

    // The distributor on a runtime (and threads) of its own, as on its own
    // machine; the pollers share the other runtime.
    let data_dir = node_config.node.data_dir.clone();
    let distributor_runtime = tokio::runtime::Runtime::new()?;
    let distributor = distributor_runtime.spawn(node::node::run(node_config));
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let info = loop {
            if let Ok(info) = NodeInfo::read(&data_dir) {
                break info;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let boot: libp2p::Multiaddr = info.listen[0].parse()?;
        let distributor_key = node::config::parse_public_key(&info.public_key)?;
        let distributor_peer = network::peer_id_of(&distributor_key);
        eprintln!("connecting {pollers} pollers ...");
        let metrics = Arc::new(Metrics::new());
        let mut clients = Vec::with_capacity(pollers);
        for i in 0..pollers {
            let key = node::crowd::identity(99, i);
            let config = NetworkConfig {
                bootstrap: vec![boot.clone()],
                max_connections: 4,
                gossip_signer: Some(distributor_key),
                ..NetworkConfig::default()
            };
            let (net, network::Inbox { events, .. }, task) =
                network::start(&key, config, metrics.clone()).await?;
            clients.push((key, net, events, task));
        }
        for (_, net, _, _) in &clients {
            net.locate(distributor_peer).await?;
        }
        let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
        let submitted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let started = Instant::now();
        let measured_from = started + WARM_UP;
        let deadline = measured_from + Duration::from_secs(seconds);
        // Everyone polls; the batch of `proofs` jobs arrives once the
        // warm-up is over, so its hand-outs and submissions are measured.
        let api = info.api;
        let token = node::api::Token::read(&data_dir)?;
        let batch = tokio::spawn(async move {
            tokio::time::sleep_until(measured_from.into()).await;
            node::api::request_with(api, "POST", "/batch", &[], Some(&token)).await
        });
        let mut tasks = tokio::task::JoinSet::new();
        for (i, (key, net, events, task)) in clients.into_iter().enumerate() {
            let (latencies, ready) = (latencies.clone(), ready.clone());
            let (submitted, accepted) = (submitted.clone(), accepted.clone());
            tasks.spawn(async move {
                let _keep = (events, task);
                // Spread the first polls over the first second.
                tokio::time::sleep(Duration::from_millis((i * 1000 / pollers.max(1)) as u64)).await;
                while Instant::now() < deadline {
                    let ask = seal_now(&JobRequest { circuits: vec![] }, &key);
                    let sent = Instant::now();
                    let Ok(answer) = net.request(distributor_peer, ask).await else {
                        continue;
                    };
                    if sent >= measured_from {
                        latencies.lock().await.push(sent.elapsed().as_secs_f64() * 1e3);
                    }
                    let body = open_any(&answer, Timestamp::now(), Default::default())
                        .map(|s| s.body);
                    if let Ok(AnyMessage::Assignment(a)) = body
                        && let Some(proof) = ready.get(&a.job.index)
                    {
                        let submission = ProofSubmission {
                            job: JobId::new(a.job.batch, a.job.index),
                            request: a.request,
                            proof: proof.clone(),
                            payout: None,
                        };
                        submitted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if let Ok(verdict) = net.request(distributor_peer, seal_now(&submission, &key)).await
                            && let Ok(AnyMessage::Verdict(v)) = open_any(&verdict, Timestamp::now(), Default::default()).map(|s| s.body)
                            && matches!(v.outcome, protocol::messages::Outcome::Accepted { .. })
                        {
                            accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    // About one poll per prover every 2.5 s.
                    tokio::time::sleep(Duration::from_millis(2_500)).await;
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        let (code, body) = batch.await??;
        anyhow::ensure!(code == 200, "POST /batch: {}", String::from_utf8_lossy(&body));
        let (_, metrics) = node::api::request(api, "GET", "/metrics", &[]).await?;
        let metrics = String::from_utf8_lossy(&metrics).to_string();
        let elapsed = measured_from.elapsed().as_secs_f64();
        let mut all = latencies.lock().await.clone();
        all.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
        let submitted = submitted.load(std::sync::atomic::Ordering::Relaxed);
        let accepted = accepted.load(std::sync::atomic::Ordering::Relaxed);
        println!("| pollers | job requests | requests/s | proofs submitted | accepted | p50 | p90 | p99 | max | in the distributor: p50 ≤ | p99 ≤ |");
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        println!(
            "| {pollers} | {} | {:.0} | {submitted} | {accepted} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
            all.len(),
            all.len() as f64 / elapsed,
            percentile(&all, 0.5),
            percentile(&all, 0.9),
            percentile(&all, 0.99),
            all.last().copied().unwrap_or(f64::NAN),
            server_quantile(&metrics, "job_request", 0.5),
            server_quantile(&metrics, "job_request", 0.99),
        );
        distributor.abort();
        Ok::<(), anyhow::Error>(())
    })
}
