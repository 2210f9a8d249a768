//! `probe serve`: the STAMP responder.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;

use anyhow::Context;
use probe_core::a2a::runtime::{Responder, ResponderConfig, local_clock_info};
use probe_core::a2a::{AllowList, ReflectorConfig};

use crate::cli::ServeArgs;

/// The reflector settings the serve flags describe.
pub fn reflector_config(args: &ServeArgs) -> anyhow::Result<ReflectorConfig> {
    let max_sessions = args.max_sessions.max(1);
    let allow = AllowList::new(&args.allow).context("--allow")?;
    Ok(ReflectorConfig {
        max_sessions,
        idle_timeout: args.idle_timeout,
        rate_limit_pps: args.rate_limit,
        rate_limit_burst: args
            .rate_limit_burst
            .unwrap_or((args.rate_limit / 10).max(100)),
        max_sources: args
            .rate_limit_sources
            .map_or(max_sessions, |n| usize::try_from(n).unwrap_or(usize::MAX)),
        allow,
        clock: local_clock_info(),
        ..ReflectorConfig::default()
    })
}

/// Binds the responder: the given addresses, or dual-stack `[::]` falling back to `0.0.0.0`
/// on hosts without IPv6.
pub fn bind(args: &ServeArgs) -> anyhow::Result<Responder> {
    let reflector = reflector_config(args)?;
    let bind = |listen: Vec<SocketAddr>| Responder::bind(&ResponderConfig { listen, reflector });
    if !args.listen.is_empty() {
        let listen = args
            .listen
            .iter()
            .map(|&ip| SocketAddr::new(ip, args.port))
            .collect();
        return bind(listen).context("cannot start the STAMP responder");
    }
    match bind(vec![SocketAddr::new(
        IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        args.port,
    )]) {
        Ok(r) => Ok(r),
        Err(e6) => {
            tracing::info!("dual-stack bind failed ({e6}); trying IPv4 only");
            bind(vec![SocketAddr::new(
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                args.port,
            )])
            .context("cannot start the STAMP responder")
        }
    }
}

pub async fn run(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let responder = bind(args)?;
    let addrs: Vec<String> = responder
        .local_addrs()
        .iter()
        .map(|a| format!("{a}/udp"))
        .collect();
    eprintln!(
        "probe serve: STAMP reflector on {} ({} timestamps); Ctrl-C to stop",
        addrs.join(", "),
        if responder.kernel_timestamps() {
            "kernel"
        } else {
            "user"
        }
    );
    if !args.allow.is_empty() {
        let nets: Vec<String> = args.allow.iter().map(ToString::to_string).collect();
        eprintln!("probe serve: answering only {}", nets.join(", "));
    }
    let counters = responder.run(shutdown_signal()).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&counters)?);
    } else {
        eprintln!(
            "probe serve: received {}, reflected {}, not allowed {}, junk {}, rate-limited {}, refused {}, sessions {}",
            counters.received,
            counters.reflected,
            counters.not_allowed,
            counters.junk,
            counters.rate_limited,
            counters.refused,
            counters.sessions_created
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            tracing::warn!("cannot watch SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
