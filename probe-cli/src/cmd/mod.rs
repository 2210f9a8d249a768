//! Subcommand implementations.

use std::process::ExitCode;

use anyhow::bail;
use clap::CommandFactory;

use crate::cli::{Cli, Command};

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Completions { shell } => {
            let shell = *shell;
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "probe", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(_) | Command::A2a(_) => pending("serve/a2a", 3),
        Command::Trace(_) => pending("trace", 4),
        Command::Ping(_) => pending("ping", 0),
        Command::Dns(_) => pending("dns", 0),
        Command::Agent(_) => pending("agent", 0),
    }
}

fn pending(name: &str, issue: u32) -> anyhow::Result<ExitCode> {
    if issue > 0 {
        bail!(
            "`probe {name}` is not implemented yet (tracked in issue #{issue}); nothing was measured"
        )
    }
    bail!("`probe {name}` is not implemented yet; nothing was measured")
}
