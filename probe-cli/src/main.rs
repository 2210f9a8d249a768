//! `probe`: network measurement from the command line and as a long-running agent.

mod cli;
mod cmd;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // The agent logs as its configuration says (stdout, PROBE_LOG_DIR, PROBE_DEBUG, RUST_LOG).
    if !matches!(cli.command, cli::Command::Agent(_)) {
        init_tracing(cli.verbose);
    }
    match cmd::run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("probe: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("PROBE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: `docker logs` and log files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
