//! Command-line definitions (clap).

use clap::{Parser, Subcommand};
use clap_complete::Shell;

/// Network measurement probe: agent-to-agent, path and network tests.
#[derive(Debug, Parser)]
#[command(name = "probe", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace). `PROBE_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the responder: STAMP reflector on 49153/udp (RFC 8762).
    Serve(ServeArgs),
    /// Agent-to-agent test against a peer's responder (embedded responder when no --peer).
    A2a(A2aArgs),
    /// Path test: traceroute with Paris flow ids, MDA, MPLS and PMTU.
    Trace(PendingArgs),
    /// Many-target ping over ICMP, UDP or TCP.
    Ping(PendingArgs),
    /// DNS resolution test against system or custom servers.
    Dns(PendingArgs),
    /// Long-running agent that runs scheduled tests and answers peers.
    Agent(PendingArgs),
    /// Print shell completions for bash, zsh, fish, elvish or powershell.
    Completions {
        /// The shell to generate completions for.
        shell: Shell,
    },
}

/// Arguments of a subcommand that has not landed yet (accepted and ignored).
#[derive(Debug, clap::Args)]
pub struct PendingArgs {
    /// Anything; the subcommand is not available yet.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub rest: Vec<String>,
}

/// `probe serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

/// `probe a2a`.
#[derive(Debug, clap::Args)]
pub struct A2aArgs {}
