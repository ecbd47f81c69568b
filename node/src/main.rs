//! `crowdprove`: one binary for both sides of the CrowdProve network — the
//! operator's distributor and the community's prover.
//!
//! # Layout
//! - `main.rs`: the command line (clap) and dispatch to subcommands. Stays
//!   thin: parse → load → run → report.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use protocol::SecretKey;

/// CrowdProve: community proving for ZK rollups.
///
/// One binary serves both sides: the operator's distributor, which splits
/// rollup batches into Groth16 proving jobs, and the community's provers,
/// which prove them and are paid per valid proof.
#[derive(Debug, Parser)]
#[command(name = "crowdprove", version, propagate_version = true)]
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
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
    }
    Ok(())
}

fn print_identity(secret: &SecretKey, path: &std::path::Path, verb: &str) {
    let public = secret.public();
    println!("{verb} key file {}", path.display());
    println!("node id     {}", public.node_id());
    println!("public key  {public}");
}
