//! Embedding probe-core: a Paris traceroute with path MTU, then multipath discovery, from a
//! program.
//!
//! `cargo run --example trace -- [-n] TARGET [icmp|udp|tcp]` (as root, or with `CAP_NET_RAW`;
//! without it ICMP and UDP fall back to unprivileged sockets). TARGET is a host name or an
//! address; `-n` skips the reverse DNS names of the hops.

use probe_core::dns::{DnsConfig, Family, Resolver};
use probe_core::report::trace::render_table;
use probe_core::trace::{
    MdaOptions, Privilege, Protocol, TraceOptions, name_hops, resolve_target, run_mda, run_trace,
};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    let numeric = args.next_if(|a| a == "-n").is_some();
    let Some(name) = args.next() else {
        anyhow::bail!("usage: trace [-n] TARGET [icmp|udp|tcp]");
    };
    let protocol = match args.next().as_deref() {
        None | Some("icmp") => Protocol::Icmp,
        Some("udp") => Protocol::Udp,
        Some("tcp") => Protocol::Tcp,
        Some(other) => anyhow::bail!("unknown protocol {other}: icmp, udp or tcp"),
    };
    let dns = DnsConfig::default();
    let target = resolve_target(&name, Family::Any, &dns).await?;

    let opts = TraceOptions::builder(target)
        .target_name(name)
        .protocol(protocol)
        .pmtu(true)
        .build()?;
    let mut report = run_trace(&opts).await?;
    if !numeric && let Ok(resolver) = Resolver::new(&dns) {
        name_hops(&mut report, &resolver).await;
    }
    print!("{}", render_table(&report));
    println!(
        "{} probes, {} sockets, path MTU {:?}",
        report.probes_sent,
        report.privilege.map_or("?", Privilege::as_str),
        report.pmtu
    );

    let mda = run_mda(&opts, &MdaOptions::default()).await?;
    for hop in &mda.hops {
        let addrs: Vec<String> = hop.responders.iter().map(|r| r.addr.to_string()).collect();
        println!("hop {:>2}: {}", hop.ttl, addrs.join(" | "));
    }
    println!(
        "{} links, {} probes at {:?}% confidence",
        mda.links.len(),
        mda.probes_sent,
        mda.confidence_pct
    );
    Ok(())
}
