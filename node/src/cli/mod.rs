//! The command line: the clap definition of every subcommand, and one module
//! per subcommand with its implementation (see `main.rs`'s "# Layout").

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use node::node_info::NodeInfo;

pub(crate) mod claim;
pub(crate) mod crowd;
pub(crate) mod identity;
pub(crate) mod keygen;
pub(crate) mod ledger;
pub(crate) mod pardon;
pub(crate) mod proof;
pub(crate) mod run;
pub(crate) mod setup;
pub(crate) mod simulate;
pub(crate) mod status;
pub(crate) mod submit;

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
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
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
    /// that circuit id. With --r1cs alone, runs the setup of that circom
    /// circuit instead of a ceremony and registers the zkey it makes.
    Setup {
        /// Circuit id: transfer-d<merkle depth>-k<transfers per job>.
        #[arg(long, default_value = "transfer-d8-k2", conflicts_with_all = ["zkey", "r1cs"])]
        circuit: String,
        /// Register this snarkjs Groth16 zkey (BN254) instead of running a
        /// setup: its ceremony is the setup.
        #[arg(long, value_name = "FILE", conflicts_with = "insecure_seed")]
        zkey: Option<PathBuf>,
        /// A circom circuit's constraint system (circom --r1cs), registered
        /// with the zkey: the distributor checks every witness against it.
        /// Without --zkey, runs a Groth16 setup of it (seconds, no powers of
        /// tau) and writes the zkey: one party's setup, like the transfer
        /// circuit's.
        #[arg(long, value_name = "FILE")]
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
    Run(Box<run::RunArgs>),
    /// Run many prover identities in one process, for load and scale tests.
    ///
    /// Each identity has its own key (derived from --seed) and its own
    /// libp2p swarm; all share one set of proving slots and one key cache,
    /// so one machine can host hundreds of provers. Test identities only.
    Crowd(crowd::CrowdArgs),
    /// Simulate a proving crowd in virtual time, driving the real scheduler.
    ///
    /// Compares the scheduling policies (ours, the paper's LRP, LRP with a
    /// 30 s re-serve age, zkSync-style 10-minute timeouts, Aztec-style 30 s
    /// heartbeat leases) on the same seeds over crowd sizes and fault mixes (sitters, hung machines,
    /// liars, slow machines), reproduces the paper's runs, and times the
    /// paper's 17,188-job batch on a big crowd. Prints Markdown; --out also
    /// writes simulation.md and simulation.svg; --check exits 1 naming any
    /// goal the adaptive policy misses (docs/lrp.md).
    Simulate(simulate::SimulateArgs),
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
    /// Pay a prover's ledger balance out on chain from a balance proof.
    ///
    /// Checks the proof against the distributor's key, then sends the
    /// Payouts contract's `claim`: it pays the address the prover bound the
    /// balance less what it paid before, so claiming twice pays once. Get
    /// the proof with `crowdprove ledger balance-proof`; its block must be
    /// anchored on chain (docs/settlement.md).
    Claim(claim::ClaimArgs),
    /// Read the distributor's ledger: balances, history, receipts, checks.
    Ledger {
        #[command(subcommand)]
        command: ledger::LedgerCommand,
    },
}

/// Where a running node's API is.
#[derive(Debug, Args)]
pub(crate) struct ApiAt {
    /// The node's API address; default: read it from <data-dir>/node.json.
    #[arg(long)]
    pub(crate) api: Option<SocketAddr>,
    /// The node's data dir: its API address (and a distributor's API token).
    #[arg(long, default_value = "crowdprove-data")]
    pub(crate) data_dir: PathBuf,
}

impl ApiAt {
    pub(crate) fn addr(&self) -> anyhow::Result<SocketAddr> {
        match self.api {
            Some(api) => Ok(api),
            None => Ok(NodeInfo::read(&self.data_dir)?.api),
        }
    }
}
