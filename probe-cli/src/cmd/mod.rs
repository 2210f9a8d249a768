//! Subcommand implementations.

mod a2a;
mod a2a_table;
mod control;
mod control_ping;
mod ping;
mod serve;
mod trace;

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::CommandFactory;

use crate::cli::{Cli, Command};

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(*shell, &mut cmd, "probe", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => runtime()?.block_on(serve::run(args)),
        Command::A2a(args) => runtime()?.block_on(a2a::run(args)),
        Command::Trace(args) => trace::main(args),
        Command::ControlPing(args) => runtime()?.block_on(control_ping::run(args)),
        Command::Ping(args) => ping::main(args),
        Command::Dns(_) => pending("dns", 0),
        Command::Agent(_) => pending("agent", 0),
    }
}

/// The tokio runtime for the network commands: two workers (receive and error-queue tasks),
/// plus blocking threads for precise pacing.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn pending(name: &str, issue: u32) -> anyhow::Result<ExitCode> {
    if issue > 0 {
        bail!(
            "`probe {name}` is not implemented yet (tracked in issue #{issue}); nothing was measured"
        )
    }
    bail!("`probe {name}` is not implemented yet; nothing was measured")
}
