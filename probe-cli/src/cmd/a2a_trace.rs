//! `probe a2a --trace`: the path toward the peer, traced from this end, and the path back,
//! traced by the far end (over its control plane) toward this end's address as the far end
//! sees it, so a NAT in front of this end shows as the reverse trace's target. Every test
//! protocol traces once its test is over: the UDP tests (STAMP, UDP throughput) and the QUIC
//! test with ICMP echo, the TCP tests with TCP SYNs toward the test's port.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use probe_core::control::{ControlClient, TraceRequest};
use probe_core::report::trace::{TraceReport, render_table};
use probe_core::trace::{Protocol, TraceOptions, run_trace};
use serde_json::{Value, json};

use super::a2a_control::connect_peer;
use crate::cli::A2aArgs;

/// How long the far end may take to answer a reverse trace (its operator's `--max-rate` may
/// slow it down).
const REVERSE_PATIENCE: Duration = Duration::from_secs(60);

/// Both directions' paths, or why each is missing.
pub struct Paths {
    /// What both traces probed.
    pub probed: TraceRequest,
    /// This end toward the peer.
    pub forward: Result<TraceReport, String>,
    /// The far end toward this end.
    pub reverse: Result<TraceReport, String>,
}

/// The traces of a UDP or QUIC test: ICMP echo both ways. A UDP probe toward the test's port
/// would land on the far end's test socket (an open port answers no port unreachable), so
/// the path is traced with the protocol every router and NAT box answers.
pub fn icmp() -> TraceRequest {
    TraceRequest::default()
}

/// The traces of a TCP test toward `peer`: TCP SYNs toward the test's port, this end toward
/// the peer's and the far end back toward the same port number here (a closed port answers
/// RST, which tells the trace it arrived), so firewalls that treat TCP on that port apart
/// show on the path.
pub fn tcp(peer: SocketAddr) -> TraceRequest {
    TraceRequest {
        protocol: Protocol::Tcp,
        port: Some(peer.port()),
        ..TraceRequest::default()
    }
}

/// With `--trace`, traces both ways at once as `req` says: this end toward `peer`, and the
/// far end back through `control` (or the note saying why there is no control plane);
/// `None` without `--trace`.
pub async fn trace_if_asked(
    args: &A2aArgs,
    req: TraceRequest,
    peer: IpAddr,
    control: Result<&ControlClient, &str>,
) -> Option<Paths> {
    if !args.trace {
        return None;
    }
    Some(trace_both(args, req, peer, control).await)
}

/// Traces both ways at once (see [`trace_if_asked`]).
async fn trace_both(
    args: &A2aArgs,
    req: TraceRequest,
    peer: IpAddr,
    control: Result<&ControlClient, &str>,
) -> Paths {
    let forward = async {
        let mut b = TraceOptions::builder(peer)
            .protocol(req.protocol)
            .port(req.port)
            .max_ttl(req.max_hops)
            .queries(req.queries)
            .wait(Duration::from_millis(u64::from(req.wait_ms)))
            .source(args.source);
        if let Some(dev) = &args.interface {
            b = b.interface(dev);
        }
        match b.build() {
            Ok(opts) => run_trace(&opts)
                .await
                .map_err(|e| format!("the trace toward {peer} failed: {e}")),
            Err(e) => Err(format!("invalid trace settings: {e}")),
        }
    };
    let reverse = async {
        match control {
            Ok(client) => client
                .reverse_trace(&req, REVERSE_PATIENCE)
                .await
                .map_err(|e| format!("the far end's trace back toward this end: {e}")),
            Err(note) => Err(format!(
                "the reverse path needs the peer's control plane ({note})"
            )),
        }
    };
    let (forward, reverse) = tokio::join!(forward, reverse);
    Paths {
        probed: req,
        forward,
        reverse,
    }
}

/// [`trace_if_asked`] for a test that holds no control connection of its own (the TCP
/// connect test): the reverse trace gets one to the peer's control plane, closed once it is
/// done.
/// `host` is the peer as given (`None`: the embedded server, which has no control plane).
/// A control plane that cannot be reached or trusted leaves the reverse path missing, saying
/// why; the test's measurements stand.
pub async fn trace_if_asked_connecting(
    args: &A2aArgs,
    req: TraceRequest,
    peer: SocketAddr,
    host: Option<&str>,
) -> Option<Paths> {
    if !args.trace {
        return None;
    }
    let connected = match host {
        None => Err("the embedded server has no control plane".to_owned()),
        Some(_) if args.no_control => Err("--no-control".to_owned()),
        Some(host) => connect_peer(args, host, peer)
            .await
            .unwrap_or_else(|e| Err(format!("{e:#}"))),
    };
    let client = connected
        .as_ref()
        .map(|(c, _, _)| c)
        .map_err(String::as_str);
    let paths = trace_both(args, req, peer.ip(), client).await;
    if let Ok((client, _, _)) = connected {
        client.close().await;
    }
    Some(paths)
}

impl Paths {
    /// The `path` object of the JSON: `forward` and `reverse` trace reports,
    /// `forward_error` / `reverse_error` for a missing one, and the destination `port` of
    /// UDP and TCP probes.
    pub fn json(&self) -> Value {
        let mut v = json!({});
        for (name, r) in [("forward", &self.forward), ("reverse", &self.reverse)] {
            v[name] = match r {
                Ok(report) => serde_json::to_value(report).unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
            if let Err(e) = r {
                v[format!("{name}_error")] = e.clone().into();
            }
        }
        if let Some(port) = self.probed.port {
            v["port"] = port.into();
        }
        v
    }

    /// Two trace tables, as `probe trace` prints them, each under a heading.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let probes = match self.probed.port {
            Some(port) => format!("{} to port {port}", self.probed.protocol.as_str()),
            None => self.probed.protocol.as_str().to_owned(),
        };
        let _ = writeln!(
            out,
            "\npath toward the peer (forward, traced from this end, {probes}):"
        );
        match &self.forward {
            Ok(r) => out.push_str(&render_table(r)),
            Err(e) => {
                let _ = writeln!(out, "  missing: {e}");
            }
        }
        match &self.reverse {
            Ok(r) => {
                let _ = writeln!(
                    out,
                    "\npath back toward this end (reverse, traced by the far end toward {}, this \
                     end's address as the far end sees it, {probes}):",
                    r.target
                );
                out.push_str(&render_table(r));
            }
            Err(e) => {
                let _ = writeln!(out, "\npath back toward this end (reverse): missing: {e}");
            }
        }
        out
    }

    /// The errors of the traces that failed.
    pub fn errors(&self) -> impl Iterator<Item = &str> {
        [&self.forward, &self.reverse]
            .into_iter()
            .filter_map(|r| r.as_ref().err().map(String::as_str))
    }

    /// Says each missing path on stderr; whether both are there.
    pub fn complete(&self) -> bool {
        let mut complete = true;
        for e in self.errors() {
            eprintln!("probe: --trace: {e}");
            complete = false;
        }
        complete
    }
}

/// Prints a test's `report` as [`super::print_report`] does, with the paths when traced: the
/// JSON object gains `path`, the text the two trace tables. The exit status is 1 when the
/// test failed (`ok` false) or a path is missing.
pub fn print_report<T: serde::Serialize>(
    json: bool,
    report: &T,
    text: impl FnOnce(&T) -> String,
    ok: bool,
    paths: Option<&Paths>,
) -> anyhow::Result<ExitCode> {
    let Some(paths) = paths else {
        return super::print_report(json, report, text, ok);
    };
    if json {
        let mut v = serde_json::to_value(report)?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert("path".into(), paths.json());
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}{}", text(report), paths.table());
    }
    Ok(if paths.complete() && ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
