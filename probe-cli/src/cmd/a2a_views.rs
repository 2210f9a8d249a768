//! What `probe a2a`'s STAMP test shows: the table or the JSON of everything one run
//! measured (both directions, the far end's view, the paths), and the exit status with the
//! reason for each failure on stderr.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use probe_core::a2a::runtime::TestOutcome;
use probe_core::a2a::{Direction, ReflectorCounters, StampKey};
use probe_core::control::FarEndResults;

use super::a2a_control;
use super::a2a_table;
use super::a2a_trace::Paths;
use crate::cli::A2aArgs;

/// Everything one run measured, for the table and the JSON.
pub(super) struct Views<'a> {
    pub(super) direction: Direction,
    /// The `to` direction (this end's Session-Sender).
    pub(super) outcome: Option<&'a TestOutcome>,
    /// The far end's view (`far_end` JSON) or why it is missing.
    pub(super) far: Option<(
        Option<&'a serde_json::Value>,
        Result<&'a FarEndResults, String>,
    )>,
    /// This end's reflector of the `from` direction.
    pub(super) near: Option<&'a ReflectorCounters>,
    pub(super) label: &'a str,
    /// Why the test ran without the control plane (against a peer).
    pub(super) control_note: Option<&'a str>,
    /// Why `from` did not run although the default (both) asked for it.
    pub(super) direction_note: Option<&'a str>,
    /// The paths both ways (`--trace`).
    pub(super) paths: Option<&'a Paths>,
}

impl Views<'_> {
    fn json(&self) -> anyhow::Result<serde_json::Value> {
        let mut v = match self.outcome {
            Some(o) => serde_json::to_value(&o.report)?,
            None => serde_json::json!({ "peer": self.label }),
        };
        let Some(obj) = v.as_object_mut() else {
            return Ok(v);
        };
        obj.insert("direction".into(), self.direction.as_str().into());
        let negotiated = self.far.is_some();
        obj.insert(
            "control".into(),
            if negotiated { "negotiated" } else { "none" }.into(),
        );
        if let Some(note) = self.direction_note {
            obj.insert("direction_note".into(), note.into());
        }
        if let Some(note) = self.control_note {
            obj.insert("control_note".into(), note.into());
        }
        if let Some((far_end, result)) = &self.far {
            match (far_end, result) {
                (Some(j), _) => {
                    obj.insert("far_end".into(), (*j).clone());
                }
                (None, Err(e)) => {
                    obj.insert("far_end_error".into(), e.clone().into());
                }
                (None, Ok(_)) => {}
            }
            if self.direction.includes_from() {
                obj.insert(
                    "from".into(),
                    a2a_control::from_json(result.as_ref().ok().copied(), self.near),
                );
            }
        }
        if let Some(p) = self.paths {
            obj.insert("path".into(), p.json());
        }
        Ok(v)
    }

    fn table(&self, note: &str) -> String {
        let mut out = String::new();
        if let Some(o) = self.outcome {
            out.push_str(&a2a_table::render(o, note));
        }
        if let Some((_, result)) = &self.far {
            match result {
                Ok(f) => {
                    if let Some(r) = &f.reflector {
                        let _ = writeln!(
                            out,
                            "\nfar end (its own view): received {}, reflected {}, rate-limited {}; clock {}{}",
                            r.received,
                            r.reflected,
                            r.rate_limited,
                            if f.clock.synced {
                                "synchronized"
                            } else {
                                "not synchronized"
                            },
                            f.clock.max_error_ns.map_or_else(String::new, |ns| format!(
                                ", max error {} us",
                                ns / 1000
                            ))
                        );
                    }
                    if let Some(r) = &f.sender {
                        let _ = writeln!(
                            out,
                            "\ndirection from: the far end sent toward this end (forward = toward this end)"
                        );
                        out.push_str(&a2a_table::render_report(r, None, ""));
                    }
                    if let Some(e) = &f.sender_error {
                        let _ = writeln!(out, "\ndirection from failed at the far end: {e}");
                    }
                }
                Err(e) => {
                    let _ = writeln!(out, "\nfar end's view missing: {e}");
                }
            }
        }
        if let Some(c) = self.near {
            let _ = writeln!(
                out,
                "this end's reflector: received {}, reflected {}",
                c.received, c.reflected
            );
        }
        if let Some(p) = self.paths {
            out.push_str(&p.table());
        }
        out
    }
}

fn embedded_note(args: &A2aArgs) -> &'static str {
    if args.peer.is_none() {
        " (embedded responder)"
    } else {
        ""
    }
}

impl Views<'_> {
    /// Writes `--html` if asked for, then prints the JSON or the table.
    pub(super) fn print(&self, args: &A2aArgs) -> anyhow::Result<()> {
        if let Some(path) = &args.html {
            if let Some(o) = self.outcome {
                super::report::write_html(path, &probe_core::report::html::a2a_page(&o.report)?)?;
            } else {
                eprintln!("probe: --html: no report of this end's test to draw (--direction from)");
            }
        }
        if args.json {
            println!("{}", serde_json::to_string_pretty(&self.json()?)?);
        } else {
            print!("{}", self.table(embedded_note(args)));
        }
        Ok(())
    }

    /// The exit status: 1, each reason on stderr, when a path is missing, nothing answered
    /// this end's test, or the far end's results or its direction failed.
    pub(super) fn exit_code(&self, peer: SocketAddr, key: Option<&StampKey>) -> ExitCode {
        let mut code = ExitCode::SUCCESS;
        if self.paths.is_some_and(|p| !p.complete()) {
            code = ExitCode::from(1);
        }
        if let Some(o) = self.outcome
            && !o.answered
        {
            eprintln!("{}", no_answer_message(self.label, peer, o, key));
            code = ExitCode::from(1);
        }
        if let Some((_, r)) = &self.far {
            match r {
                Err(e) => {
                    let label = self.label;
                    eprintln!("probe: the far end's results from {label} are missing: {e}");
                    code = ExitCode::from(1);
                }
                Ok(f) if self.direction.includes_from() => {
                    if let Some(e) = &f.sender_error {
                        eprintln!("probe: the `from` direction failed at the far end: {e}");
                        code = ExitCode::from(1);
                    } else if f.sender.as_ref().is_none_or(|r| r.received == 0) {
                        eprintln!(
                            "probe: nothing of the far end's test toward this end came back \
                             (direction from)"
                        );
                        code = ExitCode::from(1);
                    }
                }
                Ok(_) => {}
            }
        }
        code
    }
}

fn no_answer_message(
    label: &str,
    addr: SocketAddr,
    outcome: &TestOutcome,
    key: Option<&StampKey>,
) -> String {
    if let Some(key) = key {
        let mut m = format!(
            "probe: nothing answered at {label} ({addr}/udp) in STAMP authenticated mode: {} packets sent, 100% lost.\nLikely cause: authentication. The peer does not hold this key (key id {}), or does not run authenticated mode: it drops packets with a wrong HMAC without a reply. Give `probe serve` there the same --stamp-key-file (it prints its key id at start).",
            outcome.report.sent,
            key.id()
        );
        if outcome.report.auth_failed > 0 {
            let _ = write!(
                m,
                "\n{} replies came back with a wrong HMAC: the peer answers with another key.",
                outcome.report.auth_failed
            );
        }
        let _ = write!(
            m,
            "\nOtherwise: no responder runs there, or a firewall drops UDP to port {}.",
            addr.port()
        );
        return m;
    }
    let mut m = format!(
        "probe: nothing answered at {label} ({addr}/udp): {} packets sent, 100% lost.\nLikely causes:\n  - no `probe serve` (or other STAMP responder) runs there, or it listens on another port;\n  - a firewall drops UDP to port {port};\n  - the peer is behind NAT without a published port (docker run --publish {port}:{port}/udp).",
        outcome.report.sent,
        port = addr.port()
    );
    if let Some(icmp) = &outcome.icmp_error {
        let _ = write!(m, "\nThe network said: {icmp}.");
    }
    m
}
