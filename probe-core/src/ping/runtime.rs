//! The many-target ping on sockets: name resolution, source addresses, the path-test sockets
//! (raw, or ICMP datagram and UDP sockets without `CAP_NET_RAW`) and the path-test driver.
//!
//! ```no_run
//! # async fn demo() -> Result<(), probe_core::ping::runtime::PingError> {
//! use probe_core::ping::runtime::{PingOptions, run_ping};
//! use probe_core::trace::Protocol;
//! let opts = PingOptions::new(vec!["192.0.2.1".into(), "192.0.2.2".into()], Protocol::Icmp);
//! let report = run_ping(&opts).await?;
//! print!("{}", probe_core::report::ping::render_summary(&report));
//! # Ok(()) }
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use rand::Rng;
use thiserror::Error;
use tokio::task::JoinSet;

use super::config::PingConfigError;
use super::machine::{Ping, PingTarget};
pub use super::options::{PingOptions, PingOptionsBuilder};
use super::rate::TokenBucket;
use crate::dns::Resolver;
use crate::io::{SocketOptions, udp_socket};
use crate::report::ping::{PingReport, PingTargetReport};
use crate::time::Nanos;
use crate::trace::runtime::driver::{Machine, drive};
use crate::trace::runtime::transport::{Route, Transport, source_towards};
use crate::trace::{Protocol, TraceError, TraceOptions};

impl Machine for Ping {
    fn send_failed(&mut self, id: crate::trace::ProbeId, error: &std::io::Error) {
        self.note_send_error(id, error);
    }
}

/// Why a ping run could not start or went down as a whole (per-target problems are reported
/// in the target's `error` instead).
#[derive(Debug, Error)]
pub enum PingError {
    /// The settings are invalid.
    #[error("invalid ping settings: {0}")]
    Config(#[from] PingConfigError),
    /// TCP probes need raw sockets.
    #[error(
        "TCP probes need CAP_NET_RAW (raw sockets): run as root, grant it with `setcap \
         cap_net_raw+ep $(command -v probe)`, in Docker use `--cap-add NET_RAW` — or ping \
         without privileges with --proto icmp or --proto udp"
    )]
    TcpNeedsRaw,
    /// Sockets could not be opened, or sending or receiving failed for every target.
    #[error(transparent)]
    Sockets(TraceError),
}

impl From<TraceError> for PingError {
    fn from(e: TraceError) -> Self {
        match e {
            TraceError::TcpNeedsRaw => PingError::TcpNeedsRaw,
            other => PingError::Sockets(other),
        }
    }
}

/// What became of one target before probing.
enum Slot {
    /// Probed by the machine of its family, at this index.
    Probed { v6: bool, index: usize },
    /// Not probed, with the reason.
    Failed { addr: Option<IpAddr>, error: String },
}

/// Resolves every target (names concurrently); failures stay per target.
async fn resolve_all(opts: &PingOptions) -> Vec<Result<IpAddr, String>> {
    let mut out: Vec<Result<IpAddr, String>> = Vec::with_capacity(opts.targets.len());
    let mut names = Vec::new();
    for (i, name) in opts.targets.iter().enumerate() {
        match name.parse::<IpAddr>() {
            Ok(ip) if opts.family.admits(ip) => out.push(Ok(ip)),
            Ok(ip) => out.push(Err(format!(
                "{ip} is not an {} address (drop -4/-6)",
                opts.family.describe()
            ))),
            Err(_) => {
                out.push(Err(String::new()));
                names.push(i);
            }
        }
    }
    if names.is_empty() {
        return out;
    }
    let resolver = match Resolver::new(&opts.dns) {
        Ok(r) => r,
        Err(e) => {
            for i in names {
                out[i] = Err(e.to_string());
            }
            return out;
        }
    };
    let mut set = JoinSet::new();
    for i in names {
        let (r, name, family) = (resolver.clone(), opts.targets[i].clone(), opts.family);
        set.spawn(async move { (i, r.lookup_host(&name, family).await) });
    }
    while let Some(joined) = set.join_next().await {
        let Ok((i, r)) = joined else { continue };
        out[i] = match r {
            Ok(addrs) => addrs.first().copied().ok_or_else(|| {
                format!(
                    "`{}` has no {} address",
                    opts.targets[i],
                    opts.family.describe()
                )
            }),
            Err(e) => Err(e.to_string()),
        };
    }
    out
}

fn unspecified(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

/// Our source address towards `addr` for protocols whose checksums cover it (UDP, TCP); the
/// kernel fills it in for ICMP.
fn source_for(opts: &PingOptions, addr: IpAddr) -> Result<IpAddr, String> {
    if opts.config.protocol == Protocol::Icmp {
        return Ok(unspecified(addr.is_ipv6()));
    }
    let sock_opts = SocketOptions {
        device: opts.interface.clone(),
        ..SocketOptions::default()
    };
    let s = udp_socket(SocketAddr::new(unspecified(addr.is_ipv6()), 0), &sock_opts)
        .map_err(|e| e.to_string())?;
    source_towards(&s, addr, opts.config.dst_port).map_err(|e| e.to_string())
}

/// The sockets and state machine of one address family.
struct FamilyRun {
    transport: Transport,
    ping: Ping,
}

fn open_family(
    opts: &PingOptions,
    targets: Vec<PingTarget>,
    rate_pps: u32,
) -> Result<Option<FamilyRun>, PingError> {
    let Some(first) = targets.first() else {
        return Ok(None);
    };
    let v6 = first.addr.is_ipv6();
    let mut t = TraceOptions::new(first.addr);
    t.protocol = opts.config.protocol;
    t.tos = opts.config.tos;
    t.interface.clone_from(&opts.interface);
    t.privilege = opts.privilege;
    t.port = Some(opts.config.dst_port);
    let route = Route {
        src: unspecified(v6),
        mtu: 1500,
    };
    let (mut transport, mut shape) = Transport::open(&t, route)?;
    if opts.config.protocol == Protocol::Udp && shape.src_port.is_none() {
        // Raw UDP probes: a socket on their source port receives STAMP replies.
        shape.src_port = Some(transport.listen_udp()?);
    }
    let mut rng = rand::rng();
    let mut cfg = opts.config;
    cfg.rate_pps = rate_pps;
    cfg.burst = TokenBucket::default_burst(rate_pps);
    cfg.src_port = shape
        .src_port
        .unwrap_or_else(|| rng.random_range(33_000..60_000));
    cfg.icmp_ident = shape.icmp_ident.unwrap_or_else(|| rng.random());
    cfg.tcp_nonce = rng.random();
    cfg.emit = shape.emit;
    let ping = Ping::new(cfg, targets, Nanos::now_realtime())?;
    Ok(Some(FamilyRun { transport, ping }))
}

/// Splits the global rate between the families in proportion to their targets; `None` when a
/// family would get less than one probe per second (the families then run one after the
/// other at the full rate).
fn split_rate(rate: u32, n4: usize, n6: usize) -> Option<(u32, u32)> {
    if rate == 0 {
        return Some((0, 0));
    }
    let r4 = (u64::from(rate) * n4 as u64 / (n4 + n6).max(1) as u64) as u32;
    let r6 = rate - r4;
    (r4 >= 1 && r6 >= 1).then_some((r4, r6))
}

/// Runs one family to completion.
async fn drive_family(run: &mut Option<FamilyRun>) -> Result<(), PingError> {
    if let Some(r) = run {
        drive(&mut r.ping, &mut r.transport).await?;
    }
    Ok(())
}

/// Pings every target of `opts` and reports per target. Targets that do not resolve or have
/// no route are reported with their error; the others are probed.
///
/// Needs a tokio runtime with IO and time enabled.
pub async fn run_ping(opts: &PingOptions) -> Result<PingReport, PingError> {
    let started = Instant::now();
    let resolved = resolve_all(opts).await;
    let mut slots = Vec::with_capacity(resolved.len());
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for (name, r) in opts.targets.iter().zip(resolved) {
        let slot = match r.and_then(|addr| source_for(opts, addr).map(|src| (addr, src))) {
            Ok((addr, src)) => {
                let list = if addr.is_ipv6() { &mut v6 } else { &mut v4 };
                list.push(PingTarget {
                    name: name.clone(),
                    addr,
                    src,
                });
                Slot::Probed {
                    v6: addr.is_ipv6(),
                    index: list.len() - 1,
                }
            }
            Err(error) => Slot::Failed {
                addr: name.parse().ok(),
                error,
            },
        };
        slots.push(slot);
    }
    let rates = split_rate(opts.config.rate_pps, v4.len(), v6.len());
    let (r4, r6) = rates.unwrap_or((opts.config.rate_pps, opts.config.rate_pps));
    let mut run4 = open_family(opts, v4, r4)?;
    let mut run6 = open_family(opts, v6, r6)?;
    if rates.is_some() {
        let (a, b) = tokio::join!(drive_family(&mut run4), drive_family(&mut run6));
        a?;
        b?;
    } else {
        drive_family(&mut run4).await?;
        drive_family(&mut run6).await?;
    }
    let privilege = [&run4, &run6]
        .into_iter()
        .flatten()
        .map(|r| r.transport.privilege().as_str().to_string())
        .next();
    let targets = slots
        .iter()
        .map(|s| match s {
            Slot::Probed { v6, index } => {
                let run = if *v6 { &run6 } else { &run4 };
                run.as_ref()
                    .and_then(|r| r.ping.targets().get(*index))
                    .map_or_else(
                        || PingTargetReport::failed("?", None, "not probed".into()),
                        PingTargetReport::from_stats,
                    )
            }
            Slot::Failed { addr, error } => PingTargetReport::failed("", *addr, error.clone()),
        })
        .zip(&opts.targets)
        .map(|(mut t, name)| {
            t.target.clone_from(name);
            t
        })
        .collect();
    Ok(PingReport {
        protocol: opts.config.protocol.as_str().to_string(),
        privilege,
        count: opts.config.count,
        duration_ms: started.elapsed().as_secs_f64() * 1e3,
        targets,
    })
}
