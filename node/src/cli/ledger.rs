//! `crowdprove ledger`: read the distributor's ledger (balances, history,
//! receipts, checks), and check a prover's receipts offline.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use node::config::parse_public_key;
use node::prover::anchoring::{ANCHORED_FILE, BALANCE_PROOF_FILE};
use protocol::JobId;

#[derive(Debug, Subcommand)]
pub(crate) enum LedgerCommand {
    /// A prover's balance.
    Balance {
        #[command(flatten)]
        at: LedgerAt,
        /// The prover's public key (hex).
        #[arg(long)]
        prover: String,
    },
    /// A prover's transactions, oldest first.
    History {
        #[command(flatten)]
        at: LedgerAt,
        /// The prover's public key (hex).
        #[arg(long)]
        prover: String,
    },
    /// Print the receipt of a job's credit: a file any prover can check
    /// offline with `crowdprove ledger check-receipt`.
    Receipt {
        #[command(flatten)]
        at: LedgerAt,
        /// The job, e.g. b1/j0.
        #[arg(long)]
        job: String,
        /// Write the receipt here instead of printing it as hex.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write a prover's balance proof at the last block: its account (the
    /// cumulative balance and the payout address it bound) and the path to
    /// the block's signed balance root. `crowdprove claim` pays it out on
    /// chain once that block is anchored.
    BalanceProof {
        #[command(flatten)]
        at: LedgerAt,
        /// The prover's public key (hex).
        #[arg(long)]
        prover: String,
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
    /// Re-walk the chain, recompute every hash and signature, and check that
    /// no job is credited twice.
    Verify {
        #[command(flatten)]
        at: LedgerAt,
        /// Expected distributor public key (hex); recommended, since the
        /// ledger's own record of it could have been swapped.
        #[arg(long)]
        distributor: Option<String>,
    },
    /// Check a receipt offline against the distributor's public key.
    CheckReceipt {
        /// The receipt file (from `ledger receipt --out` or a prover's receipts folder).
        #[arg(long)]
        receipt: PathBuf,
        /// The distributor's public key (hex).
        #[arg(long)]
        distributor: String,
    },
    /// A prover's own account: the receipts in its data dir, each checked
    /// against the distributor's key, the jobs whose receipts it is still
    /// owed, and its kept balance proof (what `crowdprove claim` sends).
    /// With `--rpc-url` and `--payouts`, also what is anchored and what was
    /// claimed on chain. Run it on the prover's machine; the prover may be
    /// running.
    Receipts {
        /// The prover's data dir (receipts are in <data-dir>/receipts).
        #[arg(long, default_value = "crowdprove-data")]
        data_dir: PathBuf,
        /// The distributor's public key (hex).
        #[arg(long)]
        distributor: String,
        #[command(flatten)]
        chain: OnChain,
    },
    /// Export every block and transaction.
    Export {
        #[command(flatten)]
        at: LedgerAt,
        /// Output format.
        #[arg(long, value_enum, default_value = "json")]
        format: ExportFormat,
    },
}

/// The chain a prover's pay is claimed on, if given.
#[derive(Debug, Args)]
pub(crate) struct OnChain {
    /// The chain's JSON-RPC URL.
    #[arg(long, requires = "payouts")]
    rpc_url: Option<String>,
    /// The Payouts contract's address.
    #[arg(long, requires = "rpc_url")]
    payouts: Option<String>,
}

/// Where the ledger is.
#[derive(Debug, Args)]
pub(crate) struct LedgerAt {
    /// The distributor's data dir (the ledger is <data-dir>/ledger).
    #[arg(long, default_value = "crowdprove-data")]
    data_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ExportFormat {
    Json,
    Csv,
}

/// Runs one `crowdprove ledger` subcommand.
pub(crate) fn ledger(command: LedgerCommand) -> anyhow::Result<()> {
    match command {
        LedgerCommand::Balance { at, prover } => balance(&at, &prover),
        LedgerCommand::History { at, prover } => history(&at, &prover),
        LedgerCommand::Receipt { at, job, out } => receipt(&at, &job, out.as_deref()),
        LedgerCommand::BalanceProof { at, prover, out } => balance_proof(&at, &prover, &out),
        LedgerCommand::Verify { at, distributor } => verify(&at, distributor.as_deref()),
        LedgerCommand::CheckReceipt {
            receipt,
            distributor,
        } => check_receipt(&receipt, &distributor),
        LedgerCommand::Receipts {
            data_dir,
            distributor,
            chain,
        } => receipts(&data_dir, &distributor, &chain),
        LedgerCommand::Export { at, format } => export(&at, format),
    }
}

/// Opens the ledger under `at` read-only.
fn open(at: &LedgerAt) -> anyhow::Result<::ledger::Ledger> {
    let path = at.data_dir.join("ledger");
    ::ledger::Ledger::open_read_only(&path)
        .with_context(|| format!("cannot open the ledger at {}", path.display()))
}

/// `ledger balance`: prints the balance of `prover`.
fn balance(at: &LedgerAt, prover: &str) -> anyhow::Result<()> {
    let prover = parse_public_key(prover)?;
    let ledger = open(at)?;
    println!("{}", ledger.balance(&prover));
    Ok(())
}

/// `ledger balance-proof`: writes `prover`'s balance proof at the tip to `out`.
fn balance_proof(at: &LedgerAt, prover: &str, out: &Path) -> anyhow::Result<()> {
    let prover = parse_public_key(prover)?;
    let ledger = open(at)?;
    let Some(proof) = ledger.balance_proof(&prover) else {
        bail!(
            "prover {} has no account at block {} (no credit in a block yet)",
            prover.to_hex(),
            ledger.height()
        );
    };
    std::fs::write(out, proof.encode())
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "balance {} payable to {} at block {}: written to {}",
        proof.account.balance,
        proof.account.payout,
        ledger.height(),
        out.display()
    );
    Ok(())
}

/// `ledger history`: prints the transactions of `prover`, oldest first.
fn history(at: &LedgerAt, prover: &str) -> anyhow::Result<()> {
    let prover = parse_public_key(prover)?;
    let ledger = open(at)?;
    for entry in ledger.history(&prover, ..)? {
        let at = match entry.location {
            ::ledger::TxLocation::Block { height, index } => {
                format!("block {height} #{index}")
            }
            ::ledger::TxLocation::Pending { seq } => format!("pending #{seq}"),
        };
        println!("{at:<16} {}", describe(&entry.tx));
    }
    Ok(())
}

/// One line of `ledger history` for `tx`.
fn describe(tx: &::ledger::Tx) -> String {
    match tx {
        ::ledger::Tx::Credit(c) => format!(
            "credit +{} for {} (proof {})",
            c.amount,
            c.job,
            c.proof_hash.short()
        ),
        ::ledger::Tx::BindPayout(b) => format!(
            "pay to {} from now on (binding {})",
            b.binding.address, b.binding.seq
        ),
        ::ledger::Tx::Penalty(p) => format!("penalty -{}: {}", p.amount, p.reason),
    }
}

/// `ledger receipt`: prints the receipt of `job` as hex, or writes it to
/// `out`.
fn receipt(at: &LedgerAt, job: &str, out: Option<&Path>) -> anyhow::Result<()> {
    let job: JobId = job.parse()?;
    let ledger = open(at)?;
    let receipt = ledger.receipt(job)?;
    let bytes = receipt.encode();
    match out {
        Some(path) => {
            std::fs::write(path, &bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!("receipt for {job} written to {}", path.display());
        }
        None => println!("{}", protocol::hex::encode(&bytes)),
    }
    Ok(())
}

/// `ledger verify`: re-walks the chain, signed by `distributor` if given.
fn verify(at: &LedgerAt, distributor: Option<&str>) -> anyhow::Result<()> {
    let ledger = open(at)?;
    if let Some(expected) = distributor {
        let expected = parse_public_key(expected)?;
        if ledger.distributor() != expected {
            bail!(
                "the ledger is signed by {}, not the expected distributor {}",
                ledger.distributor(),
                expected
            );
        }
    }
    let report = ledger.verify_chain()?;
    println!("ledger OK\n{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// `ledger check-receipt`: checks the receipt file (raw or hex) against
/// `distributor`.
fn check_receipt(receipt: &Path, distributor: &str) -> anyhow::Result<()> {
    let distributor = parse_public_key(distributor)?;
    let bytes =
        std::fs::read(receipt).with_context(|| format!("cannot read {}", receipt.display()))?;
    let bytes = match std::str::from_utf8(&bytes) {
        Ok(text) if protocol::hex::decode(text.trim()).is_ok() => {
            protocol::hex::decode(text.trim()).expect("checked")
        }
        _ => bytes,
    };
    let (credit, height) = node::prover::check_receipt(&bytes, &distributor)
        .with_context(|| receipt.display().to_string())?;
    println!(
        "receipt OK: job {} credited {} to {} in block {height}",
        credit.job, credit.amount, credit.prover
    );
    Ok(())
}

/// `ledger receipts`: the receipts a prover holds under `data_dir`, each
/// checked against `distributor`, the ones it is still owed, its balance
/// proof, and (with `chain`) what is anchored and claimed.
fn receipts(data_dir: &Path, distributor: &str, chain: &OnChain) -> anyhow::Result<()> {
    let distributor = parse_public_key(distributor)?;
    let dir = data_dir.join("receipts");
    let audit = node::prover::audit_receipts(&dir, &distributor)?;
    let total: u64 = audit.held.iter().map(|(c, _)| c.amount).sum();
    println!(
        "{}: {} receipt(s) held, checked against distributor {}, crediting {total} in all; {} owed",
        dir.display(),
        audit.held.len(),
        distributor.node_id(),
        audit.owed.len()
    );
    for (credit, height) in &audit.held {
        println!(
            "  held  {:<12} {:>8}  block {height}  to {}",
            credit.job.to_string(),
            credit.amount,
            credit.prover.node_id()
        );
    }
    for job in &audit.owed {
        println!("  owed  {job} (accepted; the prover asks for its receipt while it runs)");
    }
    for (path, why) in &audit.bad {
        println!("  BAD   {}: {why}", path.display());
    }
    if !audit.bad.is_empty() {
        bail!("{} receipt file(s) do not check", audit.bad.len());
    }
    let Some(proof) = kept_balance_proof(data_dir, BALANCE_PROOF_FILE, &distributor, &audit)?
    else {
        println!("no balance proof kept yet: nothing to claim on chain");
        return Ok(());
    };
    let anchored_copy = kept_balance_proof(data_dir, ANCHORED_FILE, &distributor, &audit)?;
    let shown = |p: &::ledger::BalanceProof, name: &str| {
        format!(
            "balance {} at block {}, payout {} ({})",
            p.account.balance,
            p.header.header.height,
            p.account.payout,
            data_dir.join(name).display()
        )
    };
    println!("claimable: {}", shown(&proof, BALANCE_PROOF_FILE));
    if let Some(copy) = &anchored_copy {
        println!("last seen anchored: {}", shown(copy, ANCHORED_FILE));
    }
    if let (Some(rpc), Some(payouts)) = (&chain.rpc_url, &chain.payouts) {
        let height = proof.header.header.height;
        let read = on_chain(rpc, payouts, &proof.prover, height)?;
        let state = match read.root {
            None => format!("block {height} is not anchored yet"),
            Some(root) if root == proof.header.header.balance_root.0 => format!(
                "block {height} is anchored with the root the distributor signed: {} left to claim",
                proof.account.balance.saturating_sub(read.paid)
            ),
            Some(root) => bail!(
                "block {height} is anchored with balance root {}, not the {} the distributor signed: \
                 the operator anchored a tree of its own making",
                protocol::ContentHash(root).to_hex(),
                proof.header.header.balance_root.to_hex()
            ),
        };
        println!(
            "on chain: anchored to block {}, {} claimed; {state}",
            read.anchored, read.paid
        );
    }
    Ok(())
}

/// The balance proof kept in `data_dir` under `name`, checked against
/// `distributor` and against the receipts: its balance covers every credit
/// at or below its block (less penalties, which nothing issues today).
fn kept_balance_proof(
    data_dir: &Path,
    name: &str,
    distributor: &protocol::PublicKey,
    audit: &node::prover::Audit,
) -> anyhow::Result<Option<::ledger::BalanceProof>> {
    let path = data_dir.join(name);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let proof = ::ledger::BalanceProof::decode(&bytes)
        .with_context(|| format!("{} is not a balance proof", path.display()))?;
    ::ledger::verify_balance_proof(&proof, distributor).with_context(|| {
        format!(
            "{} does not check against the distributor's key",
            path.display()
        )
    })?;
    let height = proof.header.header.height;
    let covered: u64 = audit
        .held
        .iter()
        .filter(|(credit, at)| *at <= height && credit.prover == proof.prover)
        .map(|(credit, _)| credit.amount)
        .sum();
    if proof.account.balance < covered {
        bail!(
            "{}: the distributor signed a balance of {} at block {height}, below the {covered} its receipts credit by then (penalties it recorded would explain it; it issues none today)",
            path.display(),
            proof.account.balance
        );
    }
    Ok(Some(proof))
}

/// What the Payouts contract says of a prover: its last anchored height,
/// what it paid the prover, and the root anchored at `height` (if it is).
struct OnChainView {
    anchored: u64,
    paid: u64,
    root: Option<[u8; 32]>,
}

/// Reads [`OnChainView`] from the Payouts contract at `payouts`, within 30 s.
fn on_chain(
    rpc: &str,
    payouts: &str,
    prover: &protocol::PublicKey,
    height: u64,
) -> anyhow::Result<OnChainView> {
    let address: alloy::primitives::Address = payouts
        .parse()
        .map_err(|_| anyhow::anyhow!("--payouts {payouts:?} is not an address"))?;
    let contract = node::chain::Payouts::new(address, node::chain::reading_provider(rpc)?);
    let read = async {
        let anchored = contract.lastHeight().call().await?;
        let paid = contract
            .paid(alloy::primitives::B256::from(prover.0))
            .call()
            .await?;
        let root = if height <= anchored {
            Some(contract.balanceRoots(height).call().await?.0)
        } else {
            None
        };
        Ok::<_, alloy::contract::Error>(OnChainView {
            anchored,
            paid,
            root,
        })
    };
    let within = async { tokio::time::timeout(std::time::Duration::from_secs(30), read).await };
    match tokio::runtime::Runtime::new()?.block_on(within) {
        Ok(read) => {
            read.with_context(|| format!("cannot read the Payouts contract at {address} via {rpc}"))
        }
        Err(_) => bail!("the chain at {rpc} did not answer within 30 s"),
    }
}

/// `ledger export`: every block and transaction, to stdout.
fn export(at: &LedgerAt, format: ExportFormat) -> anyhow::Result<()> {
    let ledger = open(at)?;
    let out = std::io::stdout().lock();
    match format {
        ExportFormat::Json => ledger.export_json(out)?,
        ExportFormat::Csv => ledger.export_csv(out)?,
    }
    Ok(())
}
