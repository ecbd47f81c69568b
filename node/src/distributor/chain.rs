//! The chain client: every proven batch settled and every ledger block
//! anchored on L1, in order, one transaction at a time (docs/settlement.md).
//!
//! Its outbox is state the node keeps anyway: the job store's proven
//! batches and the ledger's signed blocks, against the contracts'
//! `lastBatch` and `lastHeight`. Each step reads the contracts and sends the
//! one transaction due next (a batch before blocks; the blocks cut since the
//! last anchored one, up to 64, go in one), then waits for it to
//! be mined and confirmed. A transaction of the operator's account still
//! pending — sent by this process, or before a crash — is waited for, so a
//! restart neither skips nor repeats one; a duplicate would revert on
//! estimation anyway, since the contracts refuse a replayed batch or
//! height. One pending past `replace_after` (fees too low for the chain) is
//! replaced: the transaction due next, computed from the chain's state as
//! always, sent at the stuck nonce with twice the fees; whichever of the
//! two is mined, the next step reads what it did. The chain being down or
//! slow delays this task only: proving and the ledger go on, and it catches
//! up once the chain is back.
//!
//! The contracts are deployed on first use unless the operator names them
//! (`[chain] settlement`, `payouts`); their addresses are kept in
//! `<data-dir>/chain.json`. A crash between a deployment and that write
//! deploys once more on restart: an orphan contract, never a lost batch.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, anyhow, bail};
use protocol::BatchId;
use prover_core::{Proof, VerifyingKey};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{info, warn};

use super::payout::SharedLedger;
use super::scheduler::Clock;
use super::store::JobStore;
use crate::chain::Payouts::PayoutsInstance;
use crate::chain::Settlement::SettlementInstance;
use crate::chain::calldata::root_word;
use crate::chain::{self, ChainError, SettlementMode};
use crate::metrics::Metrics;
use crate::status_doc::ChainView;

/// How often the client looks for work.
const POLL: Duration = Duration::from_millis(500);
/// The longest one step (a transaction sent and mined) may take before it
/// is looked at again from the chain's state.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest a step waits for its transaction's receipt; past it the
/// transaction is left pending (and replaced if it stays so).
const RECEIPT_WAIT: Duration = Duration::from_secs(30);

/// Most ledger blocks anchored in one transaction (about 50,000 gas each):
/// a ledger cutting blocks faster than the chain mines them catches up
/// instead of falling further behind.
const ANCHOR_MAX_BLOCKS: u64 = 64;
/// Where the deployed contracts' addresses are kept.
pub const CONTRACTS_FILE: &str = "chain.json";

/// What the client needs, parsed from `[chain]`.
#[derive(Debug, Clone)]
pub struct ChainSettings {
    /// The chain's JSON-RPC URL.
    pub rpc: String,
    /// The operator account's private key (hex).
    pub key: String,
    /// The Settlement contract; `None`: deploy one.
    pub settlement: Option<Address>,
    /// The Payouts contract; `None`: deploy one (paying in ETH).
    pub payouts: Option<Address>,
    /// Blocks a transaction must be deep before the next is sent.
    pub confirmations: u64,
    /// How long a transaction may stay pending before it is replaced.
    pub replace_after: Duration,
    /// The node's data dir (`chain.json`).
    pub data_dir: PathBuf,
    /// The circuit's verifying key, for the Settlement contract.
    pub verifying_key: VerifyingKey,
    /// A circom circuit: its batches settle their statements, no roots.
    pub statements: bool,
}

/// The contracts' addresses as deployed on one chain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Deployed {
    chain_id: u64,
    settlement: Option<Address>,
    payouts: Option<Address>,
}

/// The running client: its view for `/status`, and its task.
pub struct ChainClient {
    view: Arc<Mutex<ChainView>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ChainClient {
    /// Starts the client's task on the current runtime.
    pub fn start(
        settings: ChainSettings,
        store: Arc<JobStore>,
        ledger: SharedLedger,
        cut_clock: Clock,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let account = settings
            .key
            .trim()
            .parse::<PrivateKeySigner>()
            .map_err(|_| anyhow!("[chain] account_key: not a 32-byte hex private key"))?
            .address();
        let view = Arc::new(Mutex::new(ChainView {
            rpc: settings.rpc.clone(),
            account: account.to_string(),
            ..ChainView::default()
        }));
        let (stop, stopped) = watch::channel(false);
        let client = Client {
            settings,
            account,
            store,
            ledger,
            cut_clock,
            metrics,
            view: view.clone(),
            contracts: None,
            last_mined: None,
            reading: None,
            stuck: None,
            fees: None,
            last_fees: None,
        };
        let task = tokio::spawn(client.run(stopped));
        Ok(Self { view, stop, task })
    }

    /// What `/status` shows.
    pub fn view(&self) -> ChainView {
        self.view.lock().expect("chain view lock").clone()
    }

    /// Stops the task; a transaction in flight stays in the chain's pool
    /// and is found pending on restart.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// The contracts, connected.
struct Contracts {
    provider: DynProvider,
    settlement: Option<SettlementInstance<DynProvider>>,
    payouts: PayoutsInstance<DynProvider>,
    deployed: Deployed,
}

struct Client {
    settings: ChainSettings,
    account: Address,
    store: Arc<JobStore>,
    ledger: SharedLedger,
    /// The payout writer's clock, which dates ledger blocks.
    cut_clock: Clock,
    metrics: Arc<Metrics>,
    view: Arc<Mutex<ChainView>>,
    contracts: Option<Contracts>,
    /// The block the last transaction was mined in.
    last_mined: Option<u64>,
    /// A read of the job store in flight on a blocking thread: awaited
    /// before the task ends, so no store handle outlives the client.
    reading: Option<tokio::task::JoinHandle<anyhow::Result<Proven>>>,
    /// The nonce seen pending, and since when.
    stuck: Option<(u64, std::time::Instant)>,
    /// The fees (and, replacing, the nonce) the step's transaction goes with.
    fees: Option<Fees>,
    /// The fees of the last transaction this process sent.
    last_fees: Option<Fees>,
}

/// EIP-1559 fees for one transaction, and its nonce (`None`: the next
/// free one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fees {
    nonce: Option<u64>,
    max_fee: u128,
    priority: u128,
    /// Whether it replaces the transaction pending at `nonce`.
    replaces: bool,
}

impl Fees {
    /// Fees to replace the transaction pending at `nonce`: twice those of
    /// `last` (the last one this process sent, if it is that one), else
    /// twice the chain's estimate `now`; never below `now`.
    fn replacing(nonce: u64, last: Option<Fees>, now: Fees) -> Self {
        let base = last.filter(|f| f.nonce == Some(nonce)).unwrap_or(now);
        Self {
            nonce: Some(nonce),
            max_fee: base.max_fee.saturating_mul(2).max(now.max_fee),
            priority: base.priority.saturating_mul(2).max(now.priority),
            replaces: true,
        }
    }
}

/// A batch's chunks ready to settle, and how many batches wait.
type Proven = (Option<Vec<(prover_core::PublicSignals, Proof)>>, u64);

impl Client {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => break,
            }
            let result = tokio::select! {
                result = tokio::time::timeout(STEP_TIMEOUT, self.step()) => {
                    result.unwrap_or_else(|_| Err(anyhow!("no answer from the chain within {STEP_TIMEOUT:?}")))
                }
                _ = stop.changed() => break,
            };
            self.report(result);
        }
        if let Some(reading) = self.reading.take() {
            let _ = reading.await;
        }
    }

    /// Records the step's error, logged when it changes.
    fn report(&mut self, result: anyhow::Result<()>) {
        let mut view = self.view.lock().expect("chain view lock");
        match result {
            Ok(()) => view.last_error = None,
            Err(e) => {
                let text = format!("{e:#}");
                if view.last_error.as_deref() != Some(text.as_str()) {
                    warn!(target: "chain", error = %text, "chain step failed; retrying");
                }
                self.metrics.chain_errors.inc();
                view.last_error = Some(text);
                if self.contracts.is_some() && is_connection(&e) {
                    // Reconnect from scratch: a restarted chain may have
                    // lost the contracts.
                    self.contracts = None;
                }
            }
        }
    }

    /// One step: connect if needed; wait while a transaction is pending or
    /// unconfirmed; otherwise send the next one due.
    async fn step(&mut self) -> anyhow::Result<()> {
        self.fees = None;
        if self.contracts.is_none() {
            self.contracts = Some(self.connect().await?);
        }
        let provider = self.contracts.as_ref().expect("connected").provider.clone();
        let mined = provider
            .get_transaction_count(self.account)
            .latest()
            .await?;
        let sent = provider
            .get_transaction_count(self.account)
            .pending()
            .await?;
        let pending = sent.saturating_sub(mined);
        let was = std::mem::replace(
            &mut self.view.lock().expect("chain view lock").pending_txs,
            pending,
        );
        if pending == 0 {
            self.stuck = None;
            if let Some(at) = self.last_mined {
                let head = provider.get_block_number().await?;
                if head + 1 < at + self.settings.confirmations {
                    return Ok(());
                }
            }
            self.fees = Some(Fees {
                nonce: Some(mined),
                ..fee_estimate(&provider).await?
            });
        } else {
            let since = match self.stuck {
                Some((nonce, since)) if nonce == mined => since,
                _ => self.stuck.insert((mined, std::time::Instant::now())).1,
            };
            if since.elapsed() < self.settings.replace_after {
                if was == 0 {
                    info!(target: "chain", pending, "operator transaction(s) pending: waiting for them, sending nothing new");
                }
                return Ok(());
            }
            let fees = Fees::replacing(mined, self.last_fees, fee_estimate(&provider).await?);
            warn!(target: "chain", nonce = mined, pending_s = since.elapsed().as_secs(), max_fee = fees.max_fee, priority = fees.priority, "a transaction pending too long: replacing it with higher fees");
            self.fees = Some(fees);
            self.stuck = Some((mined, std::time::Instant::now()));
        }
        if !self.settle_next().await? {
            self.anchor_next().await?;
        }
        Ok(())
    }

    /// Sends `call` with the step's fees (and, replacing, its nonce); waits
    /// up to [`RECEIPT_WAIT`] (or `replace_after`, if shorter) for its
    /// receipt: `None` if it is still pending then (the next steps wait for
    /// it, or replace it).
    async fn send<D: alloy::contract::CallDecoder>(
        &mut self,
        call: alloy::contract::CallBuilder<&DynProvider, D>,
    ) -> anyhow::Result<Option<TransactionReceipt>> {
        let fees = self.fees.expect("a step's fees");
        let mut call = call
            .max_fee_per_gas(fees.max_fee)
            .max_priority_fee_per_gas(fees.priority);
        if let Some(nonce) = fees.nonce {
            call = call.nonce(nonce);
        }
        let pending = call.send().await.map_err(ChainError::from)?;
        self.last_fees = Some(fees);
        if fees.replaces {
            self.metrics.chain_replaced.inc();
            self.view.lock().expect("chain view lock").replaced += 1;
        }
        crate::crash::at(crate::crash::Point::ChainSent);
        let hash = *pending.tx_hash();
        let wait = RECEIPT_WAIT.min(self.settings.replace_after);
        match tokio::time::timeout(wait, chain::receipt(pending)).await {
            Ok(receipt) => {
                let receipt = receipt?;
                self.mined(&receipt);
                Ok(Some(receipt))
            }
            Err(_) => {
                info!(target: "chain", tx = %hash, wait_s = wait.as_secs(), "transaction sent, not mined yet: left pending");
                Ok(None)
            }
        }
    }

    /// Reaches the chain and the contracts, deploying Payouts (and, in
    /// statements mode, Settlement) if they are to be deployed and are not.
    async fn connect(&mut self) -> anyhow::Result<Contracts> {
        let s = &self.settings;
        let provider = chain::signing_provider(&s.rpc, &s.key)?;
        let chain_id = provider
            .get_chain_id()
            .await
            .with_context(|| format!("cannot reach the chain at {}", s.rpc))?;
        let mut deployed = load_deployed(&s.data_dir, chain_id)?;
        let payouts = match s.payouts.or(deployed.payouts) {
            Some(at) => {
                has_code(&provider, at, "Payouts").await?;
                at
            }
            None => {
                let contract = chain::deploy_payouts(provider.clone(), None, None).await?;
                info!(target: "chain", address = %contract.address(), "Payouts deployed");
                *contract.address()
            }
        };
        deployed.payouts = Some(payouts);
        save_deployed(&s.data_dir, &deployed)?;
        let mut contracts = Contracts {
            payouts: chain::Payouts::new(payouts, provider.clone()),
            settlement: None,
            provider,
            deployed,
        };
        if let Some(at) = s.settlement.or(contracts.deployed.settlement) {
            has_code(&contracts.provider, at, "Settlement").await?;
            contracts.settlement = Some(chain::Settlement::new(at, contracts.provider.clone()));
        }
        let view = &mut self.view.lock().expect("chain view lock");
        view.chain_id = Some(chain_id);
        view.payouts = Some(payouts.to_string());
        view.settlement = contracts
            .settlement
            .as_ref()
            .map(|c| c.address().to_string());
        info!(target: "chain", rpc = %s.rpc, chain_id, account = %self.account, "chain connected");
        Ok(contracts)
    }

    /// Deploys Settlement once its genesis root is known (batch 1 stored);
    /// then sends the next batch due if it is proven. Whether it sent one
    /// (or deployed).
    async fn settle_next(&mut self) -> anyhow::Result<bool> {
        if self
            .contracts
            .as_ref()
            .expect("connected")
            .settlement
            .is_none()
            && !self.deploy_settlement().await?
        {
            return Ok(false);
        }
        let contracts = self.contracts.as_ref().expect("connected");
        let settlement = contracts.settlement.as_ref().expect("deployed");
        let settled = settlement.lastBatch().call().await?;
        let next = BatchId(settled + 1);
        let store = self.store.clone();
        let reading = self.reading.insert(tokio::task::spawn_blocking(move || {
            proven_after(&store, settled)
        }));
        let read = reading.await;
        self.reading = None;
        let (ready, unsettled) = read??;
        {
            let mut view = self.view.lock().expect("chain view lock");
            view.settled_batch = settled;
            view.batches_unsettled = unsettled;
        }
        self.metrics.chain_settled_batch.set(settled as i64);
        self.metrics.chain_batches_unsettled.set(unsettled as i64);
        let Some(chunks) = ready else {
            return Ok(false);
        };
        let calldata = chain::batch_calldata(&chunks)?;
        let settlement = settlement.clone();
        let call = settlement.settle(next.0, calldata.proofs, calldata.inputs);
        if let Some(receipt) = self.send(call).await? {
            info!(target: "chain", batch = %next, chunks = chunks.len(), gas = receipt.gas_used, "batch settled");
        }
        Ok(true)
    }

    /// Deploys the Settlement contract if its genesis is known. Whether it
    /// is deployed now.
    async fn deploy_settlement(&mut self) -> anyhow::Result<bool> {
        let mode = if self.settings.statements {
            SettlementMode::Statements
        } else {
            match self.store.batch(BatchId(1))? {
                Some(first) => SettlementMode::Roots {
                    genesis: root_word(&first.old_root),
                },
                None => return Ok(false),
            }
        };
        let contracts = self.contracts.as_mut().expect("connected");
        let contract = chain::deploy_settlement(
            contracts.provider.clone(),
            &self.settings.verifying_key,
            mode,
        )
        .await?;
        info!(target: "chain", address = %contract.address(), "Settlement deployed");
        // The deployment took the step's nonce: the settlement takes the next.
        self.fees = self.fees.map(|f| Fees {
            nonce: None,
            replaces: false,
            ..f
        });
        contracts.deployed.settlement = Some(*contract.address());
        save_deployed(&self.settings.data_dir, &contracts.deployed)?;
        self.view.lock().expect("chain view lock").settlement =
            Some(contract.address().to_string());
        contracts.settlement = Some(contract);
        Ok(true)
    }

    /// Anchors the ledger blocks cut after the last anchored one, up to
    /// [`ANCHOR_MAX_BLOCKS`] in one transaction.
    async fn anchor_next(&mut self) -> anyhow::Result<()> {
        let contracts = self.contracts.as_ref().expect("connected");
        let anchored = contracts.payouts.lastHeight().call().await?;
        let (blocks, height) = {
            let ledger = self.ledger.read().expect("ledger lock");
            let height = ledger.height();
            let last = height.min(anchored.saturating_add(ANCHOR_MAX_BLOCKS));
            let blocks = (anchored + 1..=last)
                .map(|h| {
                    ledger
                        .header(h)?
                        .with_context(|| format!("ledger block {h} is missing"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            (blocks, height)
        };
        {
            let mut view = self.view.lock().expect("chain view lock");
            view.anchored_height = anchored;
            view.blocks_unanchored = height.saturating_sub(anchored);
        }
        self.metrics.chain_anchored_height.set(anchored as i64);
        self.metrics
            .chain_blocks_unanchored
            .set(height.saturating_sub(anchored) as i64);
        let (Some(first), Some(last)) = (blocks.first(), blocks.last()) else {
            return Ok(());
        };
        let (first, last) = (first.header.height, last.header.clone());
        let (hashes, roots) = blocks
            .iter()
            .map(|b| (B256::from(b.hash().0), B256::from(b.header.balance_root.0)))
            .unzip();
        let payouts = contracts.payouts.clone();
        if let Some(receipt) = self.send(payouts.anchor(first, hashes, roots)).await? {
            // Their credits are claimable from now: this long after the last
            // was cut, on the clock that dated it.
            let after_cut_ms = self.cut_clock.now().millis_since(last.timestamp);
            info!(target: "chain", from = first, to = last.height, gas = receipt.gas_used, after_cut_ms, "ledger blocks anchored");
        }
        Ok(())
    }

    /// Counts a mined transaction.
    fn mined(&mut self, receipt: &TransactionReceipt) {
        self.last_mined = receipt.block_number;
        self.metrics.chain_gas_used.inc_by(receipt.gas_used);
        let mut view = self.view.lock().expect("chain view lock");
        view.txs_sent += 1;
        view.gas_used += receipt.gas_used;
        view.last_tx = Some(receipt.transaction_hash.to_string());
    }
}

/// The chunks of batch `settled + 1` if it is proven (each job's statement
/// and proof, in order), and how many batches after `settled` are proven.
fn proven_after(store: &JobStore, settled: u64) -> anyhow::Result<Proven> {
    let proven = |n: u64| -> anyhow::Result<bool> {
        Ok(store
            .batch(BatchId(n))?
            .is_some_and(|record| record.proven.is_some()))
    };
    let mut unsettled = 0;
    while unsettled < 10_000 && proven(settled + 1 + unsettled)? {
        unsettled += 1;
    }
    if unsettled == 0 {
        return Ok((None, 0));
    }
    let batch = BatchId(settled + 1);
    let chunks = store
        .batch_jobs(batch)?
        .into_iter()
        .map(|job| {
            let done = job
                .done
                .ok_or_else(|| anyhow!("batch {batch} is proven but a job has no proof"))?;
            Ok((job.public, Proof::from_bytes(&done.proof)?))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((Some(chunks), unsettled))
}

/// The chain's EIP-1559 fee estimate for the next block.
async fn fee_estimate(provider: &DynProvider) -> anyhow::Result<Fees> {
    let estimate = provider.estimate_eip1559_fees().await?;
    Ok(Fees {
        nonce: None,
        max_fee: estimate.max_fee_per_gas,
        priority: estimate.max_priority_fee_per_gas,
        replaces: false,
    })
}

/// Whether `e` says the chain could not be reached.
fn is_connection(e: &anyhow::Error) -> bool {
    let text = format!("{e:#}").to_lowercase();
    text.contains("connect") || text.contains("no code at")
}

/// Fails unless a contract is deployed at `at`.
async fn has_code(provider: &DynProvider, at: Address, name: &str) -> anyhow::Result<()> {
    if provider.get_code_at(at).await?.is_empty() {
        bail!(
            "no code at {at}, where {name} should be: another chain, or one restarted \
             from scratch? (name the contract in [chain], or delete {CONTRACTS_FILE} to deploy anew)"
        );
    }
    Ok(())
}

/// The addresses kept for chain `chain_id` (none for another chain).
fn load_deployed(data_dir: &Path, chain_id: u64) -> anyhow::Result<Deployed> {
    let path = data_dir.join(CONTRACTS_FILE);
    let kept: Deployed = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is damaged; delete it to deploy anew", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Deployed::default(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if kept.chain_id != chain_id {
        return Ok(Deployed {
            chain_id,
            ..Deployed::default()
        });
    }
    Ok(kept)
}

/// Keeps the deployed addresses (written durably).
fn save_deployed(data_dir: &Path, deployed: &Deployed) -> anyhow::Result<()> {
    let path = data_dir.join(CONTRACTS_FILE);
    crate::disk::write_durably(data_dir, &path, |file| {
        std::io::Write::write_all(file, &serde_json::to_vec_pretty(deployed)?)
    })
    .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fees(nonce: Option<u64>, max_fee: u128, priority: u128, replaces: bool) -> Fees {
        Fees {
            nonce,
            max_fee,
            priority,
            replaces,
        }
    }

    #[test]
    fn a_replacement_doubles_the_stuck_fees_and_never_goes_below_the_chains() {
        let now = fees(None, 100, 10, false);
        let replaced = |last| Fees::replacing(7, last, now);
        let mine = fees(Some(7), 300, 20, false);
        assert_eq!(replaced(Some(mine)), fees(Some(7), 600, 40, true));
        let other = fees(Some(6), 300, 20, false);
        assert_eq!(
            replaced(Some(other)),
            fees(Some(7), 200, 20, true),
            "not this nonce's: the estimate, doubled"
        );
        assert_eq!(replaced(None), fees(Some(7), 200, 20, true));
        let cheap = fees(Some(7), 10, 1, false);
        assert_eq!(
            replaced(Some(cheap)),
            fees(Some(7), 100, 10, true),
            "never below the chain's estimate"
        );
    }
}
