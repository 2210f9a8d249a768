//! `probe-lab`: build testbed topologies by hand, clean up stale namespaces, run one
//! impairment direction, or measure the impairment hop's accuracy. Needs root.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use nix::sys::signal::{SigSet, Signal};
use probe_lab::check::accuracy::measure_delay_accuracy;
use probe_lab::impair::spec::{parse_duration, parse_probability, parse_rate};
use probe_lab::impair::{ImpairConfig, ImpairReport, ImpairerThread, Timing};
use probe_lab::topology::{self, Topology};

#[derive(Parser)]
#[command(
    name = "probe-lab",
    version,
    about = "Network-namespace testbed for probe"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build a topology, print its hosts and addresses, and hold it until Ctrl-C.
    Up(UpArgs),
    /// Remove testbed namespaces left behind by runs that are no longer alive.
    Clean {
        /// Remove every testbed namespace, also those of live processes.
        #[arg(long)]
        all: bool,
    },
    /// Run one impairment direction on a TUN device of the current namespace until Ctrl-C
    /// (e.g. `ip netns exec NS probe-lab impair --tun tun-fwd --delay 10ms`).
    Impair(ImpairArgs),
    /// Measure the impairment hop's added-delay error from outside and print a table.
    Accuracy(AccuracyArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    Direct,
    Nat,
    Macvlan,
    Chain,
    Ecmp,
    Impaired,
}

#[derive(Args)]
struct UpArgs {
    /// Which topology.
    topology: Kind,
    /// chain: number of routers.
    #[arg(long, default_value_t = 3)]
    routers: usize,
    /// chain: MTU of each link from src on, comma separated (routers + 1 values).
    #[arg(long, value_delimiter = ',')]
    mtus: Vec<u32>,
    /// impaired: a->b impairment, e.g. "delay=10ms,jitter=1ms,loss=1%".
    #[arg(long, default_value = "")]
    forward: ImpairConfig,
    /// impaired: b->a impairment.
    #[arg(long, default_value = "")]
    reverse: ImpairConfig,
    /// impaired: busy-wait this many µs before each release (accuracy for CPU).
    #[arg(long, default_value_t = probe_lab::impair::runner::DEFAULT_SPIN_US)]
    spin_us: u64,
}

#[derive(Args)]
struct ImpairArgs {
    /// TUN device to serve (attached if it exists, else created).
    #[arg(long)]
    tun: String,
    /// Fixed delay, e.g. 10ms.
    #[arg(long, value_parser = duration, default_value = "0ms")]
    delay: Duration,
    /// Jitter (uniform ±), e.g. 1ms; never reorders.
    #[arg(long, value_parser = duration, default_value = "0ms")]
    jitter: Duration,
    /// Random loss of data packets, e.g. 5% or 0.05.
    #[arg(long, value_parser = probability, default_value = "0")]
    loss: f64,
    /// Drop data packets N, 2N, 3N, ... (0: off).
    #[arg(long, default_value_t = 0)]
    every_nth: u64,
    /// Duplication probability.
    #[arg(long, value_parser = probability, default_value = "0")]
    duplicate: f64,
    /// Probability that a data packet skips the delay (overtakes held packets).
    #[arg(long, value_parser = probability, default_value = "0")]
    reorder: f64,
    /// Rate limit, e.g. 10mbit (default: none).
    #[arg(long, value_parser = rate)]
    rate: Option<u64>,
    /// Packets the rate limiter may queue before tail drop.
    #[arg(long, default_value_t = 1000)]
    queue: usize,
    /// Seed for the random decisions.
    #[arg(long)]
    seed: Option<u64>,
    /// Busy-wait this many µs before each release.
    #[arg(long, default_value_t = probe_lab::impair::runner::DEFAULT_SPIN_US)]
    spin_us: u64,
}

#[derive(Args)]
struct AccuracyArgs {
    /// Packet rates to measure, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    pps: Vec<u32>,
    /// Configured delay.
    #[arg(long, value_parser = duration, default_value = "10ms")]
    delay: Duration,
    /// Measuring time per rate (and again for the baseline).
    #[arg(long, value_parser = duration, default_value = "2s")]
    duration: Duration,
    /// Busy-wait this many µs before each release.
    #[arg(long, default_value_t = probe_lab::impair::runner::DEFAULT_SPIN_US)]
    spin_us: u64,
}

fn duration(text: &str) -> Result<Duration, String> {
    parse_duration(text).map_err(|e| e.to_string())
}

fn probability(text: &str) -> Result<f64, String> {
    parse_probability(text).map_err(|e| e.to_string())
}

fn rate(text: &str) -> Result<u64, String> {
    parse_rate(text).map_err(|e| e.to_string())
}

impl ImpairArgs {
    fn config(&self) -> ImpairConfig {
        ImpairConfig {
            delay: self.delay,
            jitter: self.jitter,
            loss: self.loss,
            every_nth: self.every_nth,
            duplicate: self.duplicate,
            reorder: self.reorder,
            rate_bps: self.rate.unwrap_or(0),
            queue_limit: self.queue,
            seed: self.seed,
        }
    }
}

fn timing(spin_us: u64) -> Timing {
    Timing {
        spin: Duration::from_micros(spin_us),
        ..Timing::default()
    }
}

/// Blocks SIGINT/SIGTERM/SIGHUP in this thread (and so in every thread started later) and
/// returns the set, to be waited for with `sigwait`.
fn block_stop_signals() -> Result<SigSet> {
    let mut set = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(signal);
    }
    set.thread_block().context("blocking signals")?;
    Ok(set)
}

fn wait_for_stop(set: &SigSet) -> Result<()> {
    let signal = set.wait().context("waiting for a signal")?;
    eprintln!("{signal}: cleaning up");
    Ok(())
}

fn hold(topology: &dyn Topology, signals: &SigSet) -> Result<()> {
    println!("{:<7} {:<24} {:<15} IPv6", "ROLE", "NAMESPACE", "IPv4");
    print!("{}", topology::describe(topology));
    println!("run programs inside with: ip netns exec <NAMESPACE> <program>");
    println!("Ctrl-C tears the testbed down");
    wait_for_stop(signals)
}

fn up(args: &UpArgs, signals: &SigSet) -> Result<()> {
    match args.topology {
        Kind::Direct => hold(&topology::direct()?, signals),
        Kind::Nat => hold(&topology::nat()?, signals),
        Kind::Macvlan => hold(&topology::macvlan()?, signals),
        Kind::Chain => hold(&topology::chain(args.routers, &args.mtus)?, signals),
        Kind::Ecmp => hold(&topology::ecmp()?, signals),
        Kind::Impaired => {
            let t = topology::impaired_with(args.forward, args.reverse, timing(args.spin_us))?;
            hold(&t, signals)?;
            print_report("a->b", &t.forward_report());
            print_report("b->a", &t.reverse_report());
            Ok(())
        }
    }
}

fn print_report(label: &str, report: &ImpairReport) {
    let s = report.stats;
    let l = report.lateness;
    println!(
        "{label}: received {} (data {}), released {}, dropped nth {} random {} queue {}, \
         duplicated {}, reordered {}, write errors {}; lateness mean {:.1} µs p99 {:.1} µs max {:.1} µs",
        s.received,
        s.data,
        s.released,
        s.dropped_nth,
        s.dropped_random,
        s.dropped_queue,
        s.duplicated,
        s.reordered,
        report.write_errors,
        l.mean_ns / 1e3,
        l.p99_ns as f64 / 1e3,
        l.max_ns as f64 / 1e3
    );
}

fn accuracy(args: &AccuracyArgs) -> Result<()> {
    println!(
        "| pps | sent | received | baseline OWD µs | error mean µs | error p99 µs | error max µs | error min µs | hop lateness mean / p99 / max µs |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &pps in &args.pps {
        if pps == 0 {
            bail!("--pps must be positive");
        }
        let row = measure_delay_accuracy(pps, args.delay, args.duration, timing(args.spin_us))?;
        let l = row.lateness;
        println!(
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} / {:.1} / {:.1} |",
            row.pps,
            row.sent,
            row.received,
            row.baseline_us,
            row.mean_us,
            row.p99_us,
            row.max_us,
            row.min_us,
            l.mean_ns / 1e3,
            l.p99_ns as f64 / 1e3,
            l.max_ns as f64 / 1e3
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if !nix::unistd::geteuid().is_root() {
        bail!("probe-lab needs root (network namespaces, TUN devices)");
    }
    // Before any thread exists, so all threads keep these signals blocked for sigwait.
    let signals = block_stop_signals()?;
    match cli.command {
        Command::Up(args) => up(&args, &signals),
        Command::Clean { all } => {
            let removed = if all {
                probe_lab::cleanup_all()?
            } else {
                probe_lab::cleanup_stale()?
            };
            for name in &removed {
                println!("removed {name}");
            }
            println!("{} namespace(s) removed", removed.len());
            Ok(())
        }
        Command::Impair(args) => {
            let thread =
                ImpairerThread::start_here(&args.tun, args.config(), timing(args.spin_us))?;
            eprintln!("impairing {}; Ctrl-C stops", args.tun);
            wait_for_stop(&signals)?;
            print_report(&args.tun, &thread.stop()?);
            Ok(())
        }
        Command::Accuracy(args) => accuracy(&args),
    }
}
