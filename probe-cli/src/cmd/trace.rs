//! `probe trace`: traceroute (Paris or classic), MDA multipath discovery, per-hop statistics
//! over rounds, MPLS labels and path MTU.

use std::process::ExitCode;

use anyhow::Context;
use probe_core::dns::{DnsConfig, Family, Resolver};
use probe_core::report::trace::{TraceReport, render_table};
use probe_core::report::trace_export::{render_csv, render_dot};
use probe_core::trace::{
    ConfigError, FlowMode, MdaOptions, Privilege, PrivilegeChoice, Protocol, TraceOptions,
    name_hops, resolve_target, run_mda, run_trace,
};
use serde::Serialize;

use crate::cli::{TraceArgs, TraceFormat, TraceProto};

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
    let warnings = warnings(args);
    for w in &warnings {
        eprintln!("probe trace: warning: {w}");
    }
    let mut report = if args.mda {
        run_mda(&opts, &mda_options(args)?).await
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
    print(args, &report, &warnings)?;
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
    let mut b = TraceOptions::builder(target)
        .protocol(match protocol(args) {
            TraceProto::Icmp => Protocol::Icmp,
            TraceProto::Udp => Protocol::Udp,
            TraceProto::Tcp => Protocol::Tcp,
        })
        .mode(if args.classic {
            FlowMode::Classic
        } else {
            FlowMode::Paris
        })
        .first_ttl(args.first_ttl)
        .max_ttl(args.max_ttl)
        .queries(args.queries)
        .count(args.count)
        .interval(args.interval)
        .wait(args.wait)
        .rate_pps(args.rate.unwrap_or(0))
        .port(args.port)
        .source_port(args.source_port)
        .source(args.source)
        .size(args.size)
        .tos(args.dscp.map_or(0, |d| d << 2))
        .pmtu(args.pmtu)
        .privilege(if args.unprivileged {
            PrivilegeChoice::Unprivileged
        } else {
            PrivilegeChoice::Auto
        });
    if args.target.parse::<std::net::IpAddr>().is_err() {
        b = b.target_name(&args.target);
    }
    if let Some(dev) = &args.interface {
        b = b.interface(dev);
    }
    b.build().map_err(settings_error)
}

/// An options error with the flag that fixes it.
fn settings_error(e: ConfigError) -> anyhow::Error {
    match e {
        ConfigError::SizeTooSmall { min, .. } => {
            anyhow::anyhow!("invalid trace settings: {e}: use --size {min} or more")
        }
        ConfigError::MixedFamilies { .. } => {
            anyhow::anyhow!("invalid trace settings: {e}: pick --source in the target's family")
        }
        e => anyhow::Error::new(e).context("invalid trace settings (see `probe trace --help`)"),
    }
}

/// The MDA settings: `--confidence` is in percent, the library's confidence a fraction.
fn mda_options(args: &TraceArgs) -> anyhow::Result<MdaOptions> {
    MdaOptions::builder()
        .confidence(args.confidence / 100.0)
        .max_probes(args.max_probes)
        .build()
        .context("invalid MDA settings (see `probe trace --help`)")
}

/// The probe protocol: `-P` as given; otherwise UDP for MDA (per-flow balancers hash its
/// ports, so varying the source port explores every branch) and ICMP echo for plain traces.
fn protocol(args: &TraceArgs) -> TraceProto {
    match args.proto {
        Some(p) => p,
        None if args.mda => TraceProto::Udp,
        None => TraceProto::Icmp,
    }
}

/// What the user should know about the chosen options (stderr and the JSON `warnings`).
fn warnings(args: &TraceArgs) -> Vec<String> {
    let mut w = Vec::new();
    if args.mda && protocol(args) == TraceProto::Icmp {
        w.push(
            "--mda with ICMP echo probes may miss branches: per-flow (L4-hash) load balancers \
             hash ports, which ICMP echo lacks, so every probe takes one path; use -P udp \
             (the --mda default) or -P tcp"
                .to_owned(),
        );
    }
    w
}

/// The JSON output: the report's fields plus `warnings`.
#[derive(Serialize)]
struct TraceJson<'a> {
    #[serde(flatten)]
    report: &'a TraceReport,
    warnings: &'a [String],
}

fn print(args: &TraceArgs, report: &TraceReport, warnings: &[String]) -> anyhow::Result<()> {
    if let Some(path) = &args.html {
        super::report::write_html(path, &probe_core::report::html::trace_page(report)?)?;
    }
    match args.format {
        Some(TraceFormat::Dot) => {
            print!("{}", render_dot(report));
            return Ok(());
        }
        Some(TraceFormat::Csv) => {
            print!("{}", render_csv(report));
            return Ok(());
        }
        Some(TraceFormat::Json | TraceFormat::Table) | None => {}
    }
    if args.json || args.format == Some(TraceFormat::Json) {
        let json = TraceJson { report, warnings };
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    print!("{}", render_table(report));
    println!(
        "{} probes in {:.1} ms, {} sockets",
        report.probes_sent,
        report.duration_ms,
        report.privilege.map_or("unknown", Privilege::as_str)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn trace_args(argv: &[&str]) -> TraceArgs {
        let mut all = vec!["probe", "trace"];
        all.extend_from_slice(argv);
        match Cli::parse_from(all).command {
            Command::Trace(a) => a,
            other => panic!("not a trace: {other:?}"),
        }
    }

    #[test]
    fn mda_defaults_to_udp_and_warns_only_for_icmp() {
        let cases = [
            (&["x"][..], TraceProto::Icmp, false),
            (&["--mda", "x"][..], TraceProto::Udp, false),
            (&["--mda", "-P", "icmp", "x"][..], TraceProto::Icmp, true),
            (&["--mda", "-P", "tcp", "x"][..], TraceProto::Tcp, false),
            (&["-P", "icmp", "x"][..], TraceProto::Icmp, false),
        ];
        for (argv, proto, warned) in cases {
            let a = trace_args(argv);
            assert_eq!(protocol(&a), proto, "{argv:?}");
            assert_eq!(warnings(&a).len(), usize::from(warned), "{argv:?}");
        }
    }
}
