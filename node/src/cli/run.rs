//! `crowdprove run`: a distributor or a prover node.

use std::path::PathBuf;

use clap::Args;
use node::config::Config;

/// `crowdprove run`: settings come from the config file (if any), then
/// these flags; each flag is the config key of the same name.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// A TOML config file; flags override it. Every setting has a default
    /// that serves local development.
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: Config,
}

/// Runs the node `args` and the command line (`matches`) describe, until it
/// stops.
pub(crate) fn run(args: RunArgs, matches: &clap::ArgMatches) -> anyhow::Result<()> {
    let config = run_config(args, matches)?;
    init_tracing();
    tokio::runtime::Runtime::new()?.block_on(node::node::run(config))?;
    Ok(())
}

/// The settings of `crowdprove run`: the file's, with the flags given on the
/// command line (`matches`) laid over them.
fn run_config(args: RunArgs, matches: &clap::ArgMatches) -> anyhow::Result<Config> {
    Config::with_flags(args.config.as_deref(), &args.settings, |id| {
        node::config::given(matches, id)
    })
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info,libp2p=warn`).
pub(crate) fn init_tracing() {
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
