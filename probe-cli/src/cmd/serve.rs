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
    if let Some(n) = args.rate_limit_sources
        && usize::try_from(n).is_ok_and(|n| n < args.max_sessions)
        && args.rate_limit > 0
    {
        eprintln!(
            "probe serve: warning: --rate-limit-sources {n} is below --max-sessions {}: \
             senders beyond {n} sources share one rate bucket",
            args.max_sessions
        );
    }
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn config(argv: &[&str]) -> anyhow::Result<ReflectorConfig> {
        let mut all = vec!["probe", "serve"];
        all.extend_from_slice(argv);
        match Cli::parse_from(all).command {
            Command::Serve(a) => reflector_config(&a),
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn defaults_give_every_session_a_bucket_and_answer_everyone() {
        let c = config(&[]).expect("config");
        assert_eq!((c.max_sessions, c.max_sources), (65_536, 65_536));
        assert_eq!((c.rate_limit_pps, c.rate_limit_burst), (200_000, 20_000));
        assert!(c.allow.is_open());
        let c = config(&["--max-sessions", "100", "--rate-limit", "50"]).expect("config");
        assert_eq!((c.max_sources, c.rate_limit_burst), (100, 100));
    }

    #[test]
    fn policy_flags() {
        let c = config(&[
            "--rate-limit-sources",
            "10",
            "--rate-limit-burst",
            "7",
            "--allow",
            "192.0.2.0/24",
            "--allow",
            "2001:db8::1",
        ])
        .expect("config");
        assert_eq!((c.max_sources, c.rate_limit_burst), (10, 7));
        assert_eq!(
            c.allow
                .prefixes()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["192.0.2.0/24", "2001:db8::1/128"]
        );
        let many: Vec<String> = (0..33).map(|i| format!("10.0.{i}.0/24")).collect();
        let mut argv = Vec::new();
        for p in &many {
            argv.extend(["--allow", p.as_str()]);
        }
        let e = config(&argv).expect_err("33 prefixes");
        assert!(format!("{e:#}").contains("at most 32"), "{e:#}");
    }
}
