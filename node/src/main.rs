//! `crowdprove`: one binary for both sides of the CrowdProve network — the
//! operator's distributor and the community's prover.
//!
//! # Layout
//! - `main.rs`: the command line (clap) and dispatch to subcommands. Stays
//!   thin: parse → load → run → report. Everything else is the `node` library.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use node::config::{Config, parse_public_key};
use node::node_info::NodeInfo;
use protocol::{CircuitId, JobId, SecretKey};

/// CrowdProve: community proving for ZK rollups.
///
/// One binary serves both sides: the operator's distributor, which splits
/// rollup batches into Groth16 proving jobs, and the community's provers,
/// which prove them and are paid per valid proof.
///
/// Quick start on one machine:
///   crowdprove setup --out keys
///   crowdprove run --role distributor --data-dir d --batch-interval-secs 10
///   crowdprove run --role prover --data-dir p --distributor <key> --bootstrap <addr>
#[derive(Debug, Parser)]
#[command(
    name = "crowdprove",
    version,
    propagate_version = true,
    verbatim_doc_comment
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a node identity: a new ed25519 key file (mode 0600).
    ///
    /// The key is the node's identity on the network; a prover's earnings are
    /// credited to it. Refuses to overwrite an existing file.
    Keygen {
        /// Where to write the key file.
        #[arg(long, default_value = "crowdprove.key", env = "CROWDPROVE_KEY")]
        key: PathBuf,
    },
    /// Print the public key and short node id of a key file.
    Identity {
        /// The key file to read.
        #[arg(long, default_value = "crowdprove.key", env = "CROWDPROVE_KEY")]
        key: PathBuf,
    },
    /// Create the proving and verifying keys of a circuit and print their
    /// hashes, or register a circom circuit's snarkjs zkey.
    ///
    /// Writes <out>/<circuit>.pk and <out>/<circuit>.vk. The setup draws its
    /// secret randomness from the OS and keeps none of it. It is still one
    /// party's setup: whoever ran it must be trusted not to have kept it.
    ///
    /// With --zkey, checks the zkey (every point), names the circuit after
    /// its hash (circom-<hash>-p<public signals>) and writes
    /// <out>/<circuit>.zkey and <out>/<circuit>.vk; run the distributor with
    /// that circuit id.
    Setup {
        /// Circuit id: transfer-d<merkle depth>-k<transfers per job>.
        #[arg(long, default_value = "transfer-d8-k2", conflicts_with = "zkey")]
        circuit: String,
        /// Register this snarkjs Groth16 zkey (BN254) instead of running a
        /// setup: its ceremony is the setup.
        #[arg(long, value_name = "FILE", conflicts_with = "insecure_seed")]
        zkey: Option<PathBuf>,
        /// The circuit's constraint system (circom --r1cs), registered with
        /// the zkey: the distributor checks every witness against it.
        #[arg(long, value_name = "FILE", requires = "zkey")]
        r1cs: Option<PathBuf>,
        /// Output folder.
        #[arg(long, default_value = "keys")]
        out: PathBuf,
        /// INSECURE, testnets only: draw the setup's randomness from this
        /// seed, so anyone who knows it can forge proofs. The key files say
        /// so, and a distributor refuses them unless run with --dev.
        #[arg(long, value_name = "SEED")]
        insecure_seed: Option<u64>,
        /// Overwrite existing key files.
        #[arg(long)]
        force: bool,
    },
    /// Submit circom witness files to a running distributor as one batch.
    ///
    /// Each `.wtns` file (from `snarkjs wtns calculate` or circom's witness
    /// generator) is one job. The distributor checks every file against its
    /// circuit and refuses the whole batch, naming the file, if one is bad.
    Submit {
        /// The witness files, one per job.
        #[arg(required = true, value_name = "WTNS")]
        witnesses: Vec<PathBuf>,
        #[command(flatten)]
        at: ApiAt,
    },
    /// Download a job's accepted proof in snarkjs JSON.
    ///
    /// Writes proof.json, public.json and verification_key.json into --out,
    /// so `snarkjs groth16 verify verification_key.json public.json
    /// proof.json` checks it (and `snarkjs zkey export soliditycalldata
    /// public.json proof.json` gives the on-chain verifier's arguments).
    Proof {
        /// The job, e.g. b1/j0.
        #[arg(long)]
        job: String,
        /// Output folder (created if missing).
        #[arg(long, default_value = ".")]
        out: PathBuf,
        #[command(flatten)]
        at: ApiAt,
    },
    /// Run a node: a distributor or a prover.
    Run(Box<RunArgs>),
    /// Run many prover identities in one process, for load and scale tests.
    ///
    /// Each identity has its own key (derived from --seed) and its own
    /// libp2p swarm; all share one set of proving slots and one key cache,
    /// so one machine can host hundreds of provers. Test identities only.
    Crowd(CrowdArgs),
    /// Simulate a proving crowd in virtual time, driving the real scheduler.
    ///
    /// Compares the scheduling policies (ours, the paper's LRP, LRP with a
    /// 30 s re-serve age, zkSync-style 10-minute timeouts, Aztec-style 30 s
    /// heartbeat leases) on the same seeds over crowd sizes and fault mixes (sitters, hung machines,
    /// liars, slow machines), reproduces the paper's runs, and times the
    /// paper's 17,188-job batch on a big crowd. Prints Markdown; --out also
    /// writes simulation.md and simulation.svg; --check exits 1 naming any
    /// goal the adaptive policy misses (docs/lrp.md).
    Simulate(SimulateArgs),
    /// Show a running node's status (from its HTTP API).
    Status {
        #[command(flatten)]
        at: ApiAt,
        /// Print the raw JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Lift a prover's ban: clear its strikes in a stopped distributor's log.
    ///
    /// A prover is banned after `max_strikes` invalid proofs (see `crowdprove
    /// run --help`). Stop the distributor first; the pardon is logged and
    /// replayed like every scheduler event, so it holds across restarts.
    Pardon {
        /// The distributor's data dir.
        #[arg(long, default_value = "crowdprove-data")]
        data_dir: PathBuf,
        /// The prover's public key (hex).
        #[arg(long)]
        prover: String,
    },
    /// Read the distributor's ledger: balances, history, receipts, checks.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
}

/// `crowdprove run`: settings come from the config file (if any), then
/// these flags; each flag is the config key of the same name.
#[derive(Debug, Args)]
struct RunArgs {
    /// A TOML config file; flags override it. Every setting has a default
    /// that serves local development.
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: Config,
}

/// `crowdprove crowd`.
#[derive(Debug, Args)]
struct CrowdArgs {
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

/// `crowdprove simulate`.
#[derive(Debug, Args)]
struct SimulateArgs {
    /// Crowd sizes of the comparison (machines, faulty ones included).
    #[arg(long, value_delimiter = ',', default_values_t = [20, 100, 500, 2_000])]
    sizes: Vec<u32>,
    /// Jobs per batch per machine of the crowd.
    #[arg(long, default_value_t = 10)]
    jobs_per_prover: u32,
    /// Provers of the scale run (the paper's 17,188-job batch); 0 skips it.
    #[arg(long, default_value_t = 3_000)]
    scale_provers: u32,
    /// Skip the paper's runs.
    #[arg(long)]
    no_paper: bool,
    /// Seed of every run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Exit 1, naming each, if the adaptive policy misses a goal: useful
    /// work ≥ 0.97 and fairness ≥ 0.99 fault-free; latency ≤ 1.3× with 25%
    /// sitting or hanging, ≤ 1.2× with 10% liars or slow machines.
    #[arg(long)]
    check: bool,
    /// Also write simulation.md and simulation.svg here.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Where a running node's API is.
#[derive(Debug, Args)]
struct ApiAt {
    /// The node's API address; default: read it from <data-dir>/node.json.
    #[arg(long)]
    api: Option<SocketAddr>,
    /// The node's data dir: its API address (and a distributor's API token).
    #[arg(long, default_value = "crowdprove-data")]
    data_dir: PathBuf,
}

impl ApiAt {
    fn addr(&self) -> anyhow::Result<SocketAddr> {
        match self.api {
            Some(api) => Ok(api),
            None => Ok(NodeInfo::read(&self.data_dir)?.api),
        }
    }
}

#[derive(Debug, Subcommand)]
enum LedgerCommand {
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
    /// against the distributor's key, and the jobs whose receipts it is
    /// still owed. Run it on the prover's machine; the prover may be running.
    Receipts {
        /// The prover's data dir (receipts are in <data-dir>/receipts).
        #[arg(long, default_value = "crowdprove-data")]
        data_dir: PathBuf,
        /// The distributor's public key (hex).
        #[arg(long)]
        distributor: String,
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

/// Where the ledger is.
#[derive(Debug, Args)]
struct LedgerAt {
    /// The distributor's data dir (the ledger is <data-dir>/ledger).
    #[arg(long, default_value = "crowdprove-data")]
    data_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ExportFormat {
    Json,
    Csv,
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let run_matches = matches.subcommand_matches("run").cloned();
    match run(cli.command, run_matches) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command, run_matches: Option<clap::ArgMatches>) -> anyhow::Result<()> {
    match command {
        Command::Keygen { key } => {
            let secret = SecretKey::generate();
            secret
                .save(&key)
                .context("could not create the node identity")?;
            print_identity(&secret, &key, "created");
        }
        Command::Identity { key } => {
            let secret = SecretKey::load(&key)?;
            print_identity(&secret, &key, "loaded");
        }
        Command::Setup {
            zkey: Some(zkey),
            r1cs,
            out,
            force,
            ..
        } => {
            let r1cs = r1cs.context(
                "--zkey needs --r1cs: the circuit's constraint system, from `circom --r1cs`",
            )?;
            register_zkey(&zkey, &r1cs, &out, force)?
        }
        Command::Setup {
            circuit,
            out,
            insecure_seed,
            force,
            zkey: None,
            ..
        } => setup(&circuit, &out, insecure_seed, force)?,
        Command::Submit { witnesses, at } => submit(&witnesses, &at)?,
        Command::Proof { job, out, at } => download_proof(&job, &out, &at)?,
        Command::Run(args) => {
            let matches = run_matches.expect("the run subcommand's matches");
            let config = run_config(*args, &matches)?;
            init_tracing();
            tokio::runtime::Runtime::new()?.block_on(node::node::run(config))?;
        }
        Command::Crowd(args) => {
            let config = crowd_config(args)?;
            init_tracing();
            tokio::runtime::Runtime::new()?.block_on(node::crowd::run(config))?;
        }
        Command::Simulate(args) => simulate(&args)?,
        Command::Status { at, json } => {
            let data_dir = &at.data_dir;
            let status = tokio::runtime::Runtime::new()?
                .block_on(node::api::get_json(at.addr()?, "/status"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!(
                    "{}",
                    node::status_text::render(&status, protocol::Timestamp::now().0)
                );
                // For the operator's own calls (POST /batch).
                if let Ok(token) = node::api::Token::read(data_dir) {
                    println!(
                        "API token: {}  (send as `Authorization: Bearer <token>`; kept in {})",
                        token.as_str(),
                        node::api::Token::path(data_dir).display()
                    );
                }
            }
        }
        Command::Pardon { data_dir, prover } => {
            let key = parse_public_key(&prover)?;
            match node::distributor::pardon::pardon(&data_dir, key)? {
                0 => println!("prover {} has no strikes; nothing written", key.node_id()),
                n => println!(
                    "prover {}: {n} strike(s) cleared; it may take work again once the distributor restarts",
                    key.node_id()
                ),
            }
        }
        Command::Ledger { command } => ledger(command)?,
    }
    Ok(())
}

fn init_tracing() {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p=warn"));
    // arkworks instruments every gadget call with an INFO span whose fields
    // Debug-format the whole constraint system: enabled, they make proving
    // tens of times slower. They are never wanted in a node's log.
    for directive in ["gr1cs=off", "r1cs=off"] {
        filter = filter.add_directive(directive.parse().expect("valid directive"));
    }
    tracing_subscriber::fmt().with_env_filter(filter).init();
}

/// The settings of `crowdprove run`: the file's, with the flags given on the
/// command line (`matches`) laid over them.
fn run_config(args: RunArgs, matches: &clap::ArgMatches) -> anyhow::Result<Config> {
    Config::with_flags(args.config.as_deref(), &args.settings, |id| {
        node::config::given(matches, id)
    })
}

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

fn setup(circuit: &str, out: &Path, seed: Option<u64>, force: bool) -> anyhow::Result<()> {
    let id =
        CircuitId::new(circuit).map_err(|e| anyhow::anyhow!("invalid circuit {circuit:?}: {e}"))?;
    let config = prover_core::CircuitConfig::from_circuit_id(&id)
        .with_context(|| format!("unsupported circuit {id}"))?;
    let (pk_path, vk_path) = node::distributor::key_paths(out, &id);
    if !force && (pk_path.exists() || vk_path.exists()) {
        bail!(
            "{} already has keys for {id}; pass --force to replace them (provers holding the old key must fetch the new one)",
            out.display()
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let started = std::time::Instant::now();
    let (pk, vk) = match seed {
        Some(seed) => {
            eprintln!("running the INSECURE setup for {id} from seed {seed} (testnets only) ...");
            prover_core::setup_insecure(config, seed)?
        }
        None => {
            eprintln!("running the setup for {id} from the OS's randomness ...");
            prover_core::setup(prover_core::Circuit::Transfer(config))?
        }
    };
    pk.save(&pk_path)?;
    vk.save(&vk_path)?;
    println!("circuit        {id}");
    println!(
        "proving key    {}  {} ({} bytes)",
        pk.hash(),
        pk_path.display(),
        pk.size()
    );
    println!("verifying key  {}  {}", vk.hash(), vk_path.display());
    println!("setup          {}", pk.setup());
    println!("setup took     {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn register_zkey(zkey: &Path, r1cs: &Path, out: &Path, force: bool) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    eprintln!(
        "checking {} (every point; large keys take a while) ...",
        zkey.display()
    );
    let key = prover_core::CircomKey::load(zkey)?;
    let constraints = prover_core::CircomR1cs::load(r1cs)?;
    constraints.check_matches(&key).with_context(|| {
        format!(
            "{} is not the circuit of {}",
            r1cs.display(),
            zkey.display()
        )
    })?;
    let id = key.circuit().id();
    let (zkey_path, vk_path) = node::distributor::key_paths(out, &id);
    let r1cs_path = node::distributor::r1cs_path(out, &id);
    if !force && (zkey_path.exists() || vk_path.exists()) {
        bail!(
            "{} already has keys for {id}; pass --force to replace them",
            out.display()
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (from, to) in [(zkey, &zkey_path), (r1cs, &r1cs_path)] {
        let tmp = to.with_extension("tmp");
        std::fs::copy(from, &tmp)
            .and_then(|_| std::fs::rename(&tmp, to))
            .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    }
    let vk = key.to_verifying_key();
    vk.save(&vk_path)?;
    println!("circuit        {id}");
    println!(
        "zkey           {}  {} ({} constraints, {} public signals)",
        key.hash(),
        zkey_path.display(),
        key.num_constraints(),
        key.num_public()
    );
    println!(
        "r1cs           {}  {}",
        constraints.hash(),
        r1cs_path.display()
    );
    println!("verifying key  {}  {}", vk.hash(), vk_path.display());
    println!("setup          {}", vk.setup());
    println!("checked in     {:.1} s", started.elapsed().as_secs_f64());
    println!(
        "run the distributor with --circuit {id} --keys-dir {}",
        out.display()
    );
    Ok(())
}

fn submit(witnesses: &[PathBuf], at: &ApiAt) -> anyhow::Result<()> {
    // Sizes first, so a huge file is refused before it is read.
    let mut total = 0u64;
    for path in witnesses {
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        total = total.saturating_add(meta.len());
    }
    if total > node::api::MAX_BODY as u64 {
        bail!(
            "{} witness files are {total} bytes, over the API's {}-byte limit; submit them in smaller batches",
            witnesses.len(),
            node::api::MAX_BODY
        );
    }
    let mut body = Vec::with_capacity(total as usize);
    for path in witnesses {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        body.extend_from_slice(&bytes);
    }
    if body.len() > node::api::MAX_BODY {
        bail!(
            "the witness files grew to {} bytes while being read, over the API's {}-byte limit",
            body.len(),
            node::api::MAX_BODY
        );
    }
    let addr = at.addr()?;
    let token = node::api::Token::read(&at.data_dir)?;
    let (code, answer) = tokio::runtime::Runtime::new()?.block_on(node::api::request_with(
        addr,
        "POST",
        "/batch/witnesses",
        &body,
        Some(&token),
    ))?;
    if code != 200 {
        bail!(
            "the distributor refused the batch ({code}): {}",
            node::api::error_text(&answer)
        );
    }
    let answer: serde_json::Value =
        serde_json::from_slice(&answer).context("the distributor's answer is not JSON")?;
    println!(
        "batch {}: {} jobs, one per witness file; `crowdprove status` follows it",
        answer["batch"], answer["jobs"]
    );
    Ok(())
}

/// `crowdprove simulate`: the comparison, the paper's runs and the scale
/// run, printed as Markdown (and written to --out).
fn simulate(args: &SimulateArgs) -> anyhow::Result<()> {
    use node::simulate::{report, study};
    if args.sizes.contains(&0) || args.jobs_per_prover == 0 {
        bail!("--sizes and --jobs-per-prover must be at least 1");
    }
    let setup = study::Study {
        sizes: args.sizes.clone(),
        jobs_per_prover: args.jobs_per_prover,
        seed: args.seed,
    };
    let command = format!(
        "crowdprove simulate --sizes {} --jobs-per-prover {} --scale-provers {} --seed {}{}",
        args.sizes
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(","),
        args.jobs_per_prover,
        args.scale_provers,
        args.seed,
        if args.no_paper { " --no-paper" } else { "" },
    );
    let mut md = format!(
        "# Scheduling policies in simulation\n\nMade by `{command}`: one batch of \
         {} jobs per machine, the paper's hardware mix (40% 8-core, 30% 16-core, 20% M3 Max, \
         10% L4), ±10% proving-time jitter, 50 ms latency; every policy on the same seeds. \
         Latency is against the crowd's fault-free provers alone (same policy and seed).\n\n",
        args.jobs_per_prover
    );
    let rows = study::grid(&setup);
    md.push_str(&report::grid_table(&rows));
    if !args.no_paper {
        md.push_str("\n## The paper's runs\n\n");
        md.push_str(&report::paper_table(&study::paper(args.seed)));
    }
    if args.scale_provers > 0 {
        let scale = study::scale(args.scale_provers, args.seed);
        md.push_str("\n## Scale\n\n");
        md.push_str(&report::scale_line(&scale));
        md.push('\n');
    }
    print!("{md}");
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let files = [
            ("simulation.md", md.clone()),
            ("simulation.svg", report::chart(&rows)),
        ];
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        eprintln!(
            "wrote {0}/simulation.md and {0}/simulation.svg",
            dir.display()
        );
    }
    if args.check {
        let failures = study::check(&rows);
        if !failures.is_empty() {
            bail!(
                "the adaptive policy missed {} goal(s): {}",
                failures.len(),
                failures.join("; ")
            );
        }
        eprintln!("every goal met");
    }
    Ok(())
}

fn download_proof(job: &str, out: &Path, at: &ApiAt) -> anyhow::Result<()> {
    let job: protocol::JobId = job.parse()?;
    let bundle = tokio::runtime::Runtime::new()?
        .block_on(node::api::get_json(at.addr()?, &format!("/proofs/{job}")))?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    prover_core::snarkjs::write_bundle(out, &bundle)?;
    println!(
        "wrote proof.json, public.json and verification_key.json of {job} (circuit {}) to {}",
        bundle["circuit"].as_str().unwrap_or("?"),
        out.display()
    );
    Ok(())
}

fn ledger(command: LedgerCommand) -> anyhow::Result<()> {
    let open = |at: &LedgerAt| {
        let path = at.data_dir.join("ledger");
        ledger::Ledger::open_read_only(&path)
            .with_context(|| format!("cannot open the ledger at {}", path.display()))
    };
    match command {
        LedgerCommand::Balance { at, prover } => {
            let prover = parse_public_key(&prover)?;
            let ledger = open(&at)?;
            println!("{}", ledger.balance(&prover));
        }
        LedgerCommand::History { at, prover } => {
            let prover = parse_public_key(&prover)?;
            let ledger = open(&at)?;
            for entry in ledger.history(&prover, ..)? {
                let at = match entry.location {
                    ledger::TxLocation::Block { height, index } => {
                        format!("block {height} #{index}")
                    }
                    ledger::TxLocation::Pending { seq } => format!("pending #{seq}"),
                };
                let what = match &entry.tx {
                    ledger::Tx::Credit(c) => format!(
                        "credit +{} for {} (proof {})",
                        c.amount,
                        c.job,
                        c.proof_hash.short()
                    ),
                    ledger::Tx::Withdraw(w) => format!(
                        "withdraw -{} to {} (nonce {})",
                        w.amount, w.destination, w.nonce
                    ),
                    ledger::Tx::Penalty(p) => format!("penalty -{}: {}", p.amount, p.reason),
                };
                println!("{at:<16} {what}");
            }
        }
        LedgerCommand::Receipt { at, job, out } => {
            let job: JobId = job.parse()?;
            let ledger = open(&at)?;
            let receipt = ledger.receipt(job)?;
            let bytes = receipt.encode();
            match out {
                Some(path) => {
                    std::fs::write(&path, &bytes)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    println!("receipt for {job} written to {}", path.display());
                }
                None => println!("{}", protocol::hex::encode(&bytes)),
            }
        }
        LedgerCommand::Verify { at, distributor } => {
            let ledger = open(&at)?;
            if let Some(expected) = distributor {
                let expected = parse_public_key(&expected)?;
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
        }
        LedgerCommand::CheckReceipt {
            receipt,
            distributor,
        } => {
            let distributor = parse_public_key(&distributor)?;
            let bytes = std::fs::read(&receipt)
                .with_context(|| format!("cannot read {}", receipt.display()))?;
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
        }
        LedgerCommand::Receipts {
            data_dir,
            distributor,
        } => {
            let distributor = parse_public_key(&distributor)?;
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
        }
        LedgerCommand::Export { at, format } => {
            let ledger = open(&at)?;
            let out = std::io::stdout().lock();
            match format {
                ExportFormat::Json => ledger.export_json(out)?,
                ExportFormat::Csv => ledger.export_csv(out)?,
            }
        }
    }
    Ok(())
}

fn print_identity(secret: &SecretKey, path: &std::path::Path, verb: &str) {
    let public = secret.public();
    println!("{verb} key file {}", path.display());
    println!("node id     {}", public.node_id());
    println!("public key  {public}");
}
