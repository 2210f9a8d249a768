//! `probe a2a --trace`: the path toward the peer, traced from this end, and the path back,
//! traced by the far end (over its control plane) toward this end's address as the far end
//! sees it, so a NAT in front of this end shows as the reverse trace's target.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use probe_core::control::{ControlClient, TraceRequest};
use probe_core::report::trace::{TraceReport, render_table};
use probe_core::trace::{TraceOptions, run_trace};
use serde_json::{Value, json};

use crate::cli::A2aArgs;

/// How long the far end may take to answer a reverse trace (its operator's `--max-rate` may
/// slow it down).
const REVERSE_PATIENCE: Duration = Duration::from_secs(60);

/// Both directions' paths, or why each is missing.
pub struct Paths {
    /// This end toward the peer.
    pub forward: Result<TraceReport, String>,
    /// The far end toward this end.
    pub reverse: Result<TraceReport, String>,
}

/// Traces both ways at once: this end toward `peer`, and the far end back through
/// `control` (or the note saying why there is no control plane).
pub async fn trace_both(
    args: &A2aArgs,
    peer: IpAddr,
    control: Result<&ControlClient, &str>,
) -> Paths {
    let req = TraceRequest::default();
    let forward = async {
        let mut b = TraceOptions::builder(peer)
            .protocol(req.protocol)
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
    Paths { forward, reverse }
}

impl Paths {
    /// The `path` object of the JSON: `forward` and `reverse` trace reports, and
    /// `forward_error` / `reverse_error` for a missing one.
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
        v
    }

    /// Two trace tables, as `probe trace` prints them, each under a heading.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\npath toward the peer (forward, traced from this end):"
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
                     end's address as the far end sees it):",
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
}
