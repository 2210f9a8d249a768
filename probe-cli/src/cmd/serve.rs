//! `probe serve`: the STAMP responder.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use probe_core::a2a::runtime::{Responder, ResponderConfig, local_clock_info};
use probe_core::a2a::{Admission, AllowList, ReflectorConfig, StampKey, StampKeyring};
use probe_core::control::identity::IDENTITY_FILE;
use probe_core::control::{ControlServer, Identity, Limits, ServerConfig, TestsConfig};
use probe_core::tcp::runtime::{TcpServer, TcpServerConfig};
use probe_core::tcp::{Gate, LocalAdmission};

use super::control::{state_dir, token};
use crate::cli::ServeArgs;

/// The reflector settings the serve flags describe.
pub fn reflector_config(args: &ServeArgs) -> anyhow::Result<ReflectorConfig> {
    let max_sessions = args.max_sessions.max(1);
    let allow = AllowList::new(&args.allow).context("--allow")?;
    let burst = args
        .rate_limit_burst
        .unwrap_or((args.rate_limit / 10).max(100));
    let sources = args
        .rate_limit_sources
        .map_or(max_sessions, |n| usize::try_from(n).unwrap_or(usize::MAX));
    ReflectorConfig::builder()
        .max_sessions(max_sessions)
        .idle_timeout(args.idle_timeout)
        .rate_limit_pps(args.rate_limit)
        .rate_limit_burst(burst)
        .max_sources(sources)
        .allow(allow)
        .clock(local_clock_info())
        .build()
        .context("check --idle-timeout")
}

/// Binds the responder: the given addresses, or dual-stack `[::]` falling back to `0.0.0.0`
/// on hosts without IPv6.
pub fn bind(args: &ServeArgs) -> anyhow::Result<Responder> {
    let reflector = reflector_config(args)?;
    let key = args
        .stamp_key_file
        .as_deref()
        .map(StampKey::from_hex_file)
        .transpose()
        .context("--stamp-key-file")?;
    let mut responder = bind_listen(args, args.port, |listen| {
        Responder::bind(&ResponderConfig::new(listen, reflector)?.with_coalesce(args.coalesce))
    })
    .context("cannot start the STAMP responder")?;
    if let Some(key) = key {
        eprintln!(
            "probe serve: STAMP authenticated mode (RFC 8762), key id {}: unauthenticated \
             senders and wrong HMACs get no reply",
            key.id()
        );
        responder.set_stamp_keys(StampKeyring::with_default(key));
    }
    Ok(responder)
}

/// The operator's limits on negotiated tests.
pub fn limits(args: &ServeArgs) -> Limits {
    Limits {
        max_rate_pps: args.max_rate,
        max_duration: args.max_duration,
        max_sessions: args.max_sessions.max(1),
        max_bandwidth_bps: args.max_bandwidth,
    }
}

/// Binds with `bind` on `--listen` addresses at `port`, or on dual-stack `[::]` falling back
/// to `0.0.0.0` on hosts without IPv6.
fn bind_listen<T, E: std::fmt::Display>(
    args: &ServeArgs,
    port: u16,
    bind: impl Fn(Vec<SocketAddr>) -> Result<T, E>,
) -> Result<T, E> {
    if !args.listen.is_empty() {
        return bind(
            args.listen
                .iter()
                .map(|&ip| SocketAddr::new(ip, port))
                .collect(),
        );
    }
    match bind(vec![SocketAddr::new(
        IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        port,
    )]) {
        Ok(r) => Ok(r),
        Err(e6) => {
            tracing::info!("dual-stack bind failed ({e6}); trying IPv4 only");
            bind(vec![SocketAddr::new(
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                port,
            )])
        }
    }
}

/// Longest throughput test the TCP server admits when `--max-duration` is not given.
pub const TCP_MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(60);

/// Binds the TCP test server on 49153/tcp (`--port`), on the same addresses as STAMP. With
/// the control plane, tests are admitted through its sessions (cookies of negotiated tests,
/// `--require-auth`, one throughput test at a time across UDP and TCP).
pub fn bind_tcp(args: &ServeArgs, control: Option<&ControlServer>) -> anyhow::Result<TcpServer> {
    let max = args.max_duration.unwrap_or(TCP_MAX_DURATION);
    let admission: Arc<dyn probe_core::tcp::Admission> = control
        .and_then(|c| c.tcp_admission(Gate::new(max)))
        .unwrap_or_else(|| Arc::new(LocalAdmission::new(Gate::new(max))));
    bind_listen(args, args.port, |listen| {
        TcpServer::bind(TcpServerConfig {
            listen,
            admission: admission.clone(),
        })
    })
    .context("cannot start the TCP test server")
}

/// Loads (or creates) the identity and binds the control plane; `None` with `--no-control`.
/// With `tests`, the control plane grants test requests.
pub fn bind_control_granting(
    args: &ServeArgs,
    tests: Option<TestsConfig>,
) -> anyhow::Result<Option<ControlServer>> {
    if args.no_control {
        return Ok(None);
    }
    let dir = state_dir(&args.control)?;
    let identity = Identity::load_or_create(&dir)
        .context("the control plane needs its identity (or pass --no-control)")?;
    let token = token(&args.control)?;
    let allow = AllowList::new(&args.allow).context("--allow")?;
    let server = bind_listen(args, args.control_port, |listen| {
        ControlServer::bind(ServerConfig {
            listen,
            identity: identity.clone(),
            token: token.clone(),
            allow,
            clock: local_clock_info(),
            max_connections: usize::try_from(args.max_control_connections).unwrap_or(usize::MAX),
            software: concat!("probe ", env!("CARGO_PKG_VERSION")).into(),
        })
    })
    .context("cannot start the control plane (pass --control-port PORT, or --no-control)")?;
    let server = match tests {
        Some(t) => server.serve_tests(t),
        None => server,
    };
    let addrs: Vec<String> = server
        .local_addrs()
        .iter()
        .map(|a| format!("{a}/udp"))
        .collect();
    eprintln!(
        "probe serve: control plane on {} (QUIC); identity {} ({}){}",
        addrs.join(", "),
        server.fingerprint(),
        dir.join(IDENTITY_FILE).display(),
        if token.is_some() {
            ""
        } else {
            "; no token set: any client may connect (set --token-file, --token or PROBE_TOKEN)"
        }
    );
    Ok(Some(server))
}

/// The three responders `probe serve` (and `probe agent`) run, bound.
pub struct Bound {
    /// STAMP on 49153/udp.
    pub stamp: Responder,
    /// TCP tests on 49153/tcp.
    pub tcp: TcpServer,
    /// The control plane on 49152/udp, granting tests (`None` with `--no-control`).
    pub control: Option<ControlServer>,
}

/// Binds STAMP, the TCP test server and the control plane (which grants tests) as `args` say.
pub fn bind_all(args: &ServeArgs) -> anyhow::Result<Bound> {
    let admission = Arc::new(Admission::new(args.require_auth));
    let stamp = bind(args)?.with_admission(Arc::clone(&admission));
    let stamp_port = stamp
        .local_addrs()
        .first()
        .map_or(args.port, std::net::SocketAddr::port);
    let control = bind_control_granting(
        args,
        Some(TestsConfig {
            limits: limits(args),
            admission,
            stamp_port,
            clock: local_clock_info(),
            stamp_keys: Some(stamp.stamp_keys()),
        }),
    )?;
    let tcp = bind_tcp(args, control.as_ref())?;
    Ok(Bound {
        stamp,
        tcp,
        control,
    })
}

pub async fn run(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let Bound {
        stamp: responder,
        tcp,
        control,
    } = bind_all(args)?;
    if args.require_auth {
        eprintln!(
            "probe serve: --require-auth: STAMP answers only sessions negotiated over the \
             control plane (authenticated with a key of the session); TCP throughput tests need \
             the cookie of a negotiated session"
        );
    }
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
    let tcp_addrs: Vec<String> = tcp
        .local_addrs()
        .iter()
        .map(|a| format!("{a}/tcp"))
        .collect();
    eprintln!(
        "probe serve: TCP tests (connect, throughput) on {}",
        tcp_addrs.join(", ")
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
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let control_task = control.map(|c| tokio::spawn(c.run(stopped(stop_rx.clone()))));
    let tcp_task = tokio::spawn(tcp.run(stopped(stop_rx.clone())));
    let stamp = responder.run(stopped(stop_rx));
    tokio::pin!(stamp);
    let counters = tokio::select! {
        c = &mut stamp => c,
        () = shutdown_signal() => {
            let _ = stop_tx.send(true);
            stamp.await
        }
    };
    // Stops the control plane too when the reflector ended on its own (an error).
    let _ = stop_tx.send(true);
    let counters = counters?;
    let control_counters = match control_task {
        Some(task) => Some(task.await.context("control plane task")?),
        None => None,
    };
    let tcp_counters = tcp_task.await.context("TCP test server task")?;
    if args.json {
        let mut out = serde_json::to_value(counters)?;
        if let (Some(c), Some(obj)) = (control_counters, out.as_object_mut()) {
            obj.insert("control".into(), serde_json::to_value(c)?);
        }
        if let Some(obj) = out.as_object_mut() {
            obj.insert("tcp".into(), serde_json::to_value(tcp_counters)?);
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        eprintln!(
            "probe serve: received {}, reflected {}, not allowed {}, junk {}, rate-limited {}, refused {}, sessions {}, not negotiated {}",
            counters.received,
            counters.reflected,
            counters.not_allowed,
            counters.junk,
            counters.rate_limited,
            counters.refused,
            counters.sessions_created,
            counters.not_negotiated
        );
        eprintln!(
            "probe serve: tcp: connections {}, connect probes {}, tests {}, streams {}, refused {}, malformed {}",
            tcp_counters.connections,
            tcp_counters.connect_probes,
            tcp_counters.tests,
            tcp_counters.streams,
            tcp_counters.refused,
            tcp_counters.malformed
        );
        if args.stamp_key_file.is_some() {
            eprintln!(
                "probe serve: authenticated replies {}, wrong HMAC {}, unauthenticated {}",
                counters.auth_reflected, counters.auth_failed, counters.unauthenticated
            );
        }
        if let Some(c) = control_counters {
            eprintln!(
                "probe serve: control: connections {}, welcomed {}, unauthorized {}, version mismatch {}, malformed {}, not allowed {}, busy {}, failed {}, tests accepted {}, tests refused {}, bad session {}",
                c.connections,
                c.welcomed,
                c.unauthorized,
                c.version_mismatch,
                c.malformed,
                c.not_allowed,
                c.busy,
                c.failed,
                c.tests_accepted,
                c.tests_refused,
                c.bad_session
            );
        }
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
        assert_eq!((c.max_sessions(), c.max_sources()), (65_536, 65_536));
        assert_eq!(
            (c.rate_limit_pps(), c.rate_limit_burst()),
            (200_000, 20_000)
        );
        assert!(c.allow().is_open());
        let c = config(&["--max-sessions", "100", "--rate-limit", "50"]).expect("config");
        assert_eq!((c.max_sources(), c.rate_limit_burst()), (100, 100));
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
        assert_eq!((c.max_sources(), c.rate_limit_burst()), (10, 7));
        assert_eq!(
            c.allow()
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

    #[test]
    fn a_zero_idle_timeout_is_refused_with_the_flag_named() {
        let e = config(&["--idle-timeout", "0s"]).expect_err("refused");
        let msg = format!("{e:#}");
        assert!(
            msg.contains("idle timeout must be positive") && msg.contains("--idle-timeout"),
            "{msg}"
        );
        config(&["--idle-timeout", "1ms"]).expect("positive");
    }
}
