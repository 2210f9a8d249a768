//! Subcommand implementations.

mod a2a;
mod a2a_control;
mod a2a_intervals;
mod a2a_quic;
mod a2a_stamp_options;
mod a2a_table;
mod a2a_tcp;
mod a2a_trace;
mod a2a_udp_throughput;
mod a2a_views;
mod agent;
mod control;
mod control_ping;
mod dns;
mod healthcheck;
mod http;
mod ping;
mod report;
mod serve;
mod trace;

use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;
use probe_core::dns::{DnsConfig, parse_server};

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
        // One thread: the test's own (SCHED_FIFO) thread waits in epoll for the pacer's
        // timerfd itself, instead of being woken by a worker thread at normal priority.
        Command::A2a(args) => current_thread()?.block_on(a2a::run(args)),
        Command::Trace(args) => trace::main(args, dns_config(&cli.dns)?),
        Command::ControlPing(args) => runtime()?.block_on(control_ping::run(args)),
        Command::Ping(args) => ping::main(args, dns_config(&cli.dns)?),
        Command::Dns(args) => dns::main(args, &cli.dns),
        Command::Http(args) => http::main(args, &cli.dns),
        Command::Healthcheck(args) => healthcheck::main(args),
        Command::Report(args) => report::run(args),
        Command::Agent(args) => agent::main(args),
        Command::Results(args) => agent::results(args),
    }
}

/// The resolver settings of every command: the global `--dns` servers, else the system
/// configuration.
pub(crate) fn dns_config(servers: &[String]) -> anyhow::Result<DnsConfig> {
    if servers.is_empty() {
        return Ok(DnsConfig::default());
    }
    let servers = servers
        .iter()
        .map(|s| parse_server(s))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DnsConfig::custom(servers))
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

/// A single-threaded runtime, for the commands whose work is one task at a time.
pub(crate) fn current_thread() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Prints a report as pretty JSON or as `text`, and turns `ok` into the exit status (0, or 1
/// when something measured failed).
pub(crate) fn print_report<T: serde::Serialize>(
    json: bool,
    report: &T,
    text: impl FnOnce(&T) -> String,
    ok: bool,
) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", text(report));
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
