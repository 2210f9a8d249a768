//! The public entry points: a trace, multipath discovery, path MTU discovery.

use std::net::IpAddr;

use rand::Rng;

use super::driver::drive;
use super::error::TraceError;
use super::options::{MdaOptions, Privilege, TraceOptions};
use super::transport::{Route, Shape, Transport, route};
use crate::dns::{DnsConfig, Family, Resolver};
use crate::report::trace::TraceReport;
use crate::time::Nanos;
use crate::trace::{
    Mda, MdaConfig, Pmtu, PmtuConfig, PmtuOutcome, ProbeConfig, Trace, TraceConfig,
};

/// Opens the sockets and builds the probe configuration they call for. Identifiers that keep
/// our answers apart from those of other probe runs on the host (ICMP identifier, TCP
/// sequence nonce, raw source port) are random unless given.
fn prepare(opts: &TraceOptions) -> Result<(Transport, ProbeConfig, Route), TraceError> {
    let route = route(opts)?;
    let (transport, shape) = Transport::open(opts, route)?;
    let probe = probe_config(opts, route.src, shape);
    Ok((transport, probe, route))
}

fn probe_config(opts: &TraceOptions, src: IpAddr, shape: Shape) -> ProbeConfig {
    let mut rng = rand::rng();
    let mut p = ProbeConfig::new(opts.protocol, src, opts.target);
    p.mode = opts.mode;
    if let Some(port) = opts.port {
        p.dst_port = port;
    }
    // Source ports from 33000 up leave room for the flows MDA adds above the base.
    p.src_port = shape
        .src_port
        .or(opts.source_port)
        .unwrap_or_else(|| rng.random_range(33_000..60_000));
    p.icmp_ident = shape.icmp_ident.unwrap_or_else(|| rng.random());
    p.tcp_nonce = rng.random();
    p.size = opts.size;
    p.emit = shape.emit;
    p.tos = opts.tos;
    p.dont_fragment = true;
    p.wait = opts.wait;
    p.rate_pps = opts.rate_pps;
    p
}

/// Fills in what the state machine cannot know.
fn finish(report: &mut TraceReport, opts: &TraceOptions, privilege: Privilege) {
    report.target_name.clone_from(&opts.target_name);
    report.privilege = Some(privilege);
    if privilege == Privilege::Unprivileged {
        // The error queue does not hand over the quoted IP header.
        for r in report.hops.iter_mut().flat_map(|h| h.responders.iter_mut()) {
            r.quoted_ttl = None;
        }
    }
}

/// Runs a traceroute (Paris by default, all TTLs in parallel, `count` rounds) and, with
/// `opts.pmtu`, path MTU discovery once the target answered.
///
/// Needs a tokio runtime with IO and time enabled.
///
/// ```no_run
/// use std::net::Ipv4Addr;
/// use probe_core::trace::{TraceOptions, run_trace};
///
/// # async fn demo() -> Result<(), probe_core::trace::TraceError> {
/// let opts = TraceOptions::builder(Ipv4Addr::new(192, 0, 2, 1).into())
///     .count(10)
///     .pmtu(true)
///     .build()?;
/// let report = run_trace(&opts).await?;
/// for hop in &report.hops {
///     let addrs: Vec<String> = hop.responders.iter().map(|r| r.addr.to_string()).collect();
///     println!("{:>2} {} ({:.0} % loss)", hop.ttl, addrs.join(" "), hop.loss_pct);
/// }
/// println!("reached: {}, path MTU: {:?}", report.reached, report.pmtu);
/// # Ok(()) }
/// ```
pub async fn run_trace(opts: &TraceOptions) -> Result<TraceReport, TraceError> {
    let (mut transport, probe, _) = prepare(opts)?;
    let mut cfg = TraceConfig::new(probe);
    cfg.first_ttl = opts.first_ttl;
    cfg.max_ttl = opts.max_ttl;
    cfg.queries = opts.queries;
    cfg.count = opts.count;
    cfg.interval = opts.interval;
    let mut trace = Trace::new(cfg, Nanos::now_realtime())?;
    drive(&mut trace, &mut transport).await?;
    complete(trace.report(), opts, transport).await
}

/// Fills in what the state machine cannot know, closes the sockets and, with `opts.pmtu`,
/// measures the path MTU if the target answered.
async fn complete(
    mut report: TraceReport,
    opts: &TraceOptions,
    transport: Transport,
) -> Result<TraceReport, TraceError> {
    finish(&mut report, opts, transport.privilege());
    drop(transport);
    if opts.pmtu && report.reached {
        report.pmtu = run_pmtu(opts).await?.pmtu.map(u32::from);
    }
    Ok(report)
}

/// Runs multipath discovery (MDA): every responder per hop behind per-flow load balancers and
/// the links between them, then path MTU discovery with `opts.pmtu`. `opts.mode`, `queries`,
/// `count` and `interval` do not apply. UDP probes explore the most: per-flow balancers hash
/// their ports, which ICMP echo lacks.
///
/// ```no_run
/// use std::net::Ipv4Addr;
/// use probe_core::trace::{MdaOptions, Protocol, TraceOptions, run_mda};
///
/// # async fn demo() -> Result<(), probe_core::trace::TraceError> {
/// let opts = TraceOptions::builder(Ipv4Addr::new(192, 0, 2, 1).into())
///     .protocol(Protocol::Udp)
///     .build()?;
/// let mda = MdaOptions::builder().confidence(0.99).build()?;
/// let report = run_mda(&opts, &mda).await?;
/// for link in &report.links {
///     println!("ttl {}: {} -> {}", link.ttl, link.from, link.to);
/// }
/// # Ok(()) }
/// ```
pub async fn run_mda(opts: &TraceOptions, mda: &MdaOptions) -> Result<TraceReport, TraceError> {
    let (mut transport, probe, _) = prepare(opts)?;
    let mut cfg = MdaConfig::new(probe);
    cfg.first_ttl = opts.first_ttl;
    cfg.max_ttl = opts.max_ttl;
    cfg.confidence = mda.confidence;
    cfg.max_probes = mda.max_probes;
    cfg.retries = mda.retries;
    let mut m = Mda::new(cfg, Nanos::now_realtime())?;
    drive(&mut m, &mut transport).await?;
    complete(m.report(), opts, transport).await
}

/// Discovers the path MTU to `opts.target` with probes of `opts.protocol` carrying DF, from
/// the route's MTU down (router reports, then bisection where routers stay silent).
///
/// ```no_run
/// use std::net::Ipv6Addr;
/// use probe_core::trace::{TraceOptions, run_pmtu};
///
/// # async fn demo() -> Result<(), probe_core::trace::TraceError> {
/// let outcome = run_pmtu(&TraceOptions::new(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).into())).await?;
/// match outcome.pmtu {
///     Some(mtu) => println!("path MTU {mtu} bytes, limited at {:?}", outcome.bottleneck),
///     None => println!("no answer at any size"),
/// }
/// if outcome.black_hole {
///     println!("some sizes vanished without an ICMP error: a PMTU black hole");
/// }
/// # Ok(()) }
/// ```
pub async fn run_pmtu(opts: &TraceOptions) -> Result<PmtuOutcome, TraceError> {
    let (mut transport, probe, route) = prepare(opts)?;
    let mut cfg = PmtuConfig::new(probe);
    cfg.max_size = u16::try_from(route.mtu).unwrap_or(u16::MAX);
    if cfg.max_size < cfg.min_size {
        cfg.min_size = cfg.max_size;
    }
    let mut m = Pmtu::new(cfg)?;
    drive(&mut m, &mut transport).await?;
    Ok(m.outcome())
}

/// Resolves a target given as an address or a host name, in `family` (IPv4 first for
/// [`Family::Any`]), with `dns` (the system resolver configuration by default). An address
/// literal is used as it is, without a query.
///
/// ```no_run
/// use probe_core::dns::{DnsConfig, Family};
/// use probe_core::trace::resolve_target;
///
/// # async fn demo() -> Result<(), probe_core::trace::TraceError> {
/// let target = resolve_target("example.net", Family::V6, &DnsConfig::default()).await?;
/// assert!(target.is_ipv6());
/// # Ok(()) }
/// ```
pub async fn resolve_target(
    name: &str,
    family: Family,
    dns: &DnsConfig,
) -> Result<IpAddr, TraceError> {
    if let Ok(ip) = name.parse::<IpAddr>()
        && family.admits(ip)
    {
        return Ok(ip);
    }
    let addrs = Resolver::new(dns)?.lookup_host(name, family).await?;
    addrs.first().copied().ok_or_else(|| TraceError::NoAddress {
        name: name.to_string(),
        family,
    })
}

/// Fills in the responders' host names with reverse (PTR) lookups, all at once under the
/// resolver's batch deadline; addresses without a name (or not answered in time) keep `None`.
///
/// ```no_run
/// use probe_core::dns::{DnsConfig, Resolver};
/// use probe_core::trace::{TraceOptions, name_hops, run_trace};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let mut report = run_trace(&TraceOptions::new("192.0.2.1".parse()?)).await?;
/// name_hops(&mut report, &Resolver::new(&DnsConfig::default())?).await;
/// # Ok(()) }
/// ```
pub async fn name_hops(report: &mut TraceReport, resolver: &Resolver) {
    let mut addrs: Vec<IpAddr> = report
        .hops
        .iter()
        .flat_map(|h| h.responders.iter().map(|r| r.addr))
        .collect();
    addrs.sort_unstable();
    addrs.dedup();
    let names = resolver.reverse_many(&addrs).await;
    for r in report.hops.iter_mut().flat_map(|h| h.responders.iter_mut()) {
        r.hostname = names.get(&r.addr).cloned().flatten();
    }
}
