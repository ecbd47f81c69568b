//! `crowdprove`: one binary for both sides of the CrowdProve network — the
//! operator's distributor and the community's prover.
//!
//! # Layout
//! - `main.rs`: parse the command line and dispatch to a subcommand. Stays
//!   thin; everything else is the `node` library.
//! - `cli/mod.rs`: the clap definition (`Cli`, its `Command` enum) and
//!   `ApiAt`, where a running node's API is.
//! - One module per subcommand, named after it: `cli/keygen.rs`,
//!   `cli/identity.rs`, `cli/setup.rs`, `cli/submit.rs`, `cli/proof.rs`,
//!   `cli/run.rs`, `cli/crowd.rs`, `cli/simulate.rs`, `cli/status.rs`,
//!   `cli/pardon.rs`, `cli/ledger.rs`, `cli/claim.rs`.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

mod cli;

use cli::{Cli, Command};

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
            eprintln!("error: {}", one_line(&error));
            ExitCode::FAILURE
        }
    }
}

/// `error` and its causes on one line, each said once: an error whose
/// message ends with its cause's (`{path}: {source}`) does not repeat it.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Runs `command`; `run_matches` are the `run` subcommand's matches (its
/// flags override its config file's settings).
fn run(command: Command, run_matches: Option<clap::ArgMatches>) -> anyhow::Result<()> {
    match command {
        Command::Keygen { key } => cli::keygen::keygen(&key),
        Command::Identity { key } => cli::identity::identity(&key),
        Command::Setup {
            zkey: Some(zkey),
            r1cs,
            out,
            force,
            ..
        } => cli::setup::register_zkey(&zkey, r1cs.as_deref(), &out, force),
        Command::Setup {
            r1cs: Some(r1cs),
            out,
            insecure_seed,
            force,
            ..
        } => cli::setup::setup_circom(&r1cs, &out, insecure_seed, force),
        Command::Setup {
            circuit,
            out,
            insecure_seed,
            force,
            zkey: None,
            ..
        } => cli::setup::setup(&circuit, &out, insecure_seed, force),
        Command::Submit { witnesses, at } => cli::submit::submit(&witnesses, &at),
        Command::Proof { job, out, at } => cli::proof::download_proof(&job, &out, &at),
        Command::Run(args) => {
            let matches = run_matches.expect("the run subcommand's matches");
            cli::run::run(*args, &matches)
        }
        Command::Crowd(args) => cli::crowd::crowd(args),
        Command::Simulate(args) => cli::simulate::simulate(&args),
        Command::Status { at, json } => cli::status::status(&at, json),
        Command::Pardon { data_dir, prover } => cli::pardon::pardon(&data_dir, &prover),
        Command::Claim(args) => cli::claim::claim(&args),
        Command::Ledger { command } => cli::ledger::ledger(command),
    }
}
