//! Embedding probe-core: ping many targets at once and read the per-target statistics.
//!
//! `cargo run --example ping -- [TARGET...]` (default: `127.0.0.1 127.0.0.2 ::1`). As root, or
//! with `CAP_NET_RAW`, probes go out on raw sockets; without it on ICMP datagram sockets. Three
//! probes per target, 10 ms apart, at most 1000 probes per second over all targets. Prints the
//! fping-like summary, then the report as JSON on the last line.

use std::time::Duration;

use probe_core::ping::PingConfig;
use probe_core::ping::runtime::{PingOptions, run_ping};
use probe_core::report::ping::render_summary;
use probe_core::trace::Protocol;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut targets: Vec<String> = std::env::args().skip(1).collect();
    if targets.is_empty() {
        targets = ["127.0.0.1", "127.0.0.2", "::1"].map(String::from).to_vec();
    }
    let config = PingConfig::builder(Protocol::Icmp)
        .count(3)
        .interval(Duration::from_millis(10))
        .timeout(Duration::from_millis(500))
        .rate_pps(1000)
        .build()?;
    let opts = PingOptions::builder(targets, config).build()?;
    let report = run_ping(&opts).await?;
    print!("{}", render_summary(&report));
    let answered = report.targets.iter().filter(|t| t.reachable()).count();
    println!(
        "{answered}/{} targets answered, {} sockets",
        report.targets.len(),
        report.privilege.as_deref().unwrap_or("no")
    );
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
