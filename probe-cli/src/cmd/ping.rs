//! `probe ping`: many targets at once over ICMP, UDP or TCP, fping-like output and exit codes
//! (0: every target answered, 1: some did not, 2: bad input or a name that did not resolve).

use std::io::Read as _;
use std::process::ExitCode;

use anyhow::{Context, bail};
use probe_core::dns::{DnsConfig, Family};
use probe_core::ping::runtime::{PingOptions, run_ping};
use probe_core::ping::{PingConfig, is_valid_target, parse_target_list};
use probe_core::report::ping::{PingReport, render_per_probe, render_summary};
use probe_core::trace::{PrivilegeChoice, Protocol};

use crate::cli::{PingArgs, TraceProto};

/// Runs `probe ping` on a single-threaded runtime: one task drives every socket.
pub fn main(args: &PingArgs, dns: DnsConfig) -> anyhow::Result<ExitCode> {
    let opts = options_from(args, dns)?;
    let report = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(run_ping(&opts))
        .context("the ping failed")?;
    print(args, &report)?;
    Ok(exit_code(&report))
}

/// fping's exit status: 2 when a name did not resolve, 1 when a target never answered.
fn exit_code(r: &PingReport) -> ExitCode {
    if r.targets.iter().any(|t| t.addr.is_none()) {
        ExitCode::from(2)
    } else if r.all_reachable() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The targets of the command line, then those of `-f FILE`.
fn targets(args: &PingArgs) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for t in &args.targets {
        if !is_valid_target(t) {
            bail!(
                "`{t}` is not an address or host name: give targets like 192.0.2.1, 2001:db8::1 or host.example"
            );
        }
        out.push(t.clone());
    }
    if let Some(path) = &args.file {
        let (text, name) = if path.as_os_str() == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("cannot read targets from stdin")?;
            (s, "stdin".to_string())
        } else {
            let s = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the target file {}", path.display()))?;
            (s, path.display().to_string())
        };
        out.extend(parse_target_list(&text, &name)?);
    }
    if out.is_empty() {
        bail!(
            "no targets: give them as arguments (probe ping 192.0.2.1 192.0.2.2) or in a file (-f FILE)"
        );
    }
    Ok(out)
}

fn options_from(args: &PingArgs, dns: DnsConfig) -> anyhow::Result<PingOptions> {
    let protocol = match args.proto {
        TraceProto::Icmp => Protocol::Icmp,
        TraceProto::Udp => Protocol::Udp,
        TraceProto::Tcp => Protocol::Tcp,
    };
    let mut c = PingConfig::builder(protocol)
        .count(args.count)
        .interval(args.interval)
        .timeout(args.timeout)
        .rate_pps(args.rate)
        .size(args.size)
        .tos(args.dscp << 2)
        .per_probe(args.per_probe);
    if let Some(p) = args.port {
        c = c.dst_port(p);
    }
    let mut o = PingOptions::builder(targets(args)?, c.build()?)
        .family(match (args.family.ipv4, args.family.ipv6) {
            (true, _) => Family::V4,
            (_, true) => Family::V6,
            _ => Family::Any,
        })
        .dns(dns)
        .privilege(if args.unprivileged {
            PrivilegeChoice::Unprivileged
        } else {
            PrivilegeChoice::Auto
        });
    if let Some(dev) = &args.interface {
        o = o.interface(dev.clone());
    }
    Ok(o.build()?)
}

fn print(args: &PingArgs, r: &PingReport) -> anyhow::Result<()> {
    if args.json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    print!("{}", render_summary(r));
    if args.per_probe {
        println!();
        print!("{}", render_per_probe(r));
    }
    let reachable = r.targets.iter().filter(|t| t.reachable()).count();
    let sent: u64 = r.targets.iter().map(|t| u64::from(t.sent)).sum();
    println!(
        "{} targets, {reachable} reachable; {sent} {} probes in {:.1} ms, {} sockets",
        r.targets.len(),
        r.protocol,
        r.duration_ms,
        r.privilege.as_deref().unwrap_or("no")
    );
    Ok(())
}
