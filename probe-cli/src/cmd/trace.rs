//! `probe trace`: traceroute (Paris or classic), MDA multipath discovery, per-hop statistics
//! over rounds, MPLS labels and path MTU.

use std::process::ExitCode;

use anyhow::Context;
use probe_core::dns::{DnsConfig, Family, Resolver};
use probe_core::report::trace::{TraceReport, render_table};
use probe_core::trace::runtime::{
    MdaOptions, PrivilegeChoice, TraceOptions, name_hops, resolve_target, run_mda, run_trace,
};
use probe_core::trace::{FlowMode, Protocol};

use crate::cli::{TraceArgs, TraceProto};

/// Runs `probe trace` on a single-threaded runtime: one task drives the sockets, and a
/// short trace is over before worker threads would have started.
pub fn main(args: &TraceArgs, dns: DnsConfig) -> anyhow::Result<ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(run(args, dns))
}

async fn run(args: &TraceArgs, dns: DnsConfig) -> anyhow::Result<ExitCode> {
    let family = match (args.family.ipv4, args.family.ipv6) {
        (true, _) => Family::V4,
        (_, true) => Family::V6,
        _ => Family::Any,
    };
    let target = resolve_target(&args.target, family, &dns).await?;
    let opts = options_from(args, target)?;
    let mut report = if args.mda {
        let mda = MdaOptions {
            confidence: args.confidence / 100.0,
            max_probes: args.max_probes,
            ..MdaOptions::default()
        };
        run_mda(&opts, &mda).await
    } else {
        run_trace(&opts).await
    }
    .with_context(|| format!("the trace to {} failed", args.target))?;
    if !args.numeric {
        match Resolver::new(&dns) {
            Ok(resolver) => name_hops(&mut report, &resolver).await,
            Err(e) => tracing::warn!("no host names for the hops: {e}"),
        }
    }
    print(args, &report)?;
    Ok(ExitCode::SUCCESS)
}

fn options_from(args: &TraceArgs, target: std::net::IpAddr) -> anyhow::Result<TraceOptions> {
    if args.first_ttl > args.max_ttl {
        anyhow::bail!(
            "--first-ttl {} is above --max-ttl {}",
            args.first_ttl,
            args.max_ttl
        );
    }
    let mut o = TraceOptions::new(target);
    o.target_name = (args.target.parse::<std::net::IpAddr>().is_err()).then(|| args.target.clone());
    o.protocol = match args.proto {
        TraceProto::Icmp => Protocol::Icmp,
        TraceProto::Udp => Protocol::Udp,
        TraceProto::Tcp => Protocol::Tcp,
    };
    o.mode = if args.classic {
        FlowMode::Classic
    } else {
        FlowMode::Paris
    };
    o.first_ttl = args.first_ttl;
    o.max_ttl = args.max_ttl;
    o.queries = args.queries;
    o.count = args.count;
    o.interval = args.interval;
    o.wait = args.wait;
    o.rate_pps = args.rate.unwrap_or(0);
    o.port = args.port;
    o.source_port = args.source_port;
    o.source = args.source;
    o.interface.clone_from(&args.interface);
    o.size = args.size;
    o.tos = args.dscp.map_or(0, |d| d << 2);
    o.pmtu = args.pmtu;
    o.privilege = if args.unprivileged {
        PrivilegeChoice::Unprivileged
    } else {
        PrivilegeChoice::Auto
    };
    Ok(o)
}

fn print(args: &TraceArgs, report: &TraceReport) -> anyhow::Result<()> {
    if args.json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    print!("{}", render_table(report));
    println!(
        "{} probes in {:.1} ms, {} sockets",
        report.probes_sent,
        report.duration_ms,
        report.privilege.as_deref().unwrap_or("unknown")
    );
    Ok(())
}
