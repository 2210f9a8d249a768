//! The result of `probe dns`: per server, the outcome of the queries, their latency
//! distribution and the answers with their TTLs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::stats::Summary;

/// How one query to one server ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DnsStatus {
    /// NOERROR with at least one record of the asked type (or a CNAME chain to it).
    Ok,
    /// The name does not exist (NXDOMAIN).
    Nxdomain,
    /// The name exists but has no record of the asked type (NOERROR, empty answer).
    Nodata,
    /// The server could not resolve it (SERVFAIL).
    Servfail,
    /// The server refused the query (REFUSED).
    Refused,
    /// Another error response code (FORMERR, NOTIMP, ...); `rcode` names it.
    Rcode,
    /// No answer within the timeout.
    Timeout,
    /// The query could not be sent or the answer not read (for example a TCP connection
    /// refused).
    Error,
}

impl DnsStatus {
    /// The lowercase name used in JSON and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            DnsStatus::Ok => "ok",
            DnsStatus::Nxdomain => "nxdomain",
            DnsStatus::Nodata => "nodata",
            DnsStatus::Servfail => "servfail",
            DnsStatus::Refused => "refused",
            DnsStatus::Rcode => "rcode",
            DnsStatus::Timeout => "timeout",
            DnsStatus::Error => "error",
        }
    }
}

/// One answer record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsAnswerReport {
    /// Owner name, fully qualified (`www.example.`).
    pub name: String,
    /// Time to live in seconds, as the server sent it.
    pub ttl: u32,
    /// Record type (`A`, `CNAME`, `MX`, ...).
    #[serde(rename = "type")]
    pub record_type: String,
    /// Record data in zone-file form.
    pub data: String,
}

/// One server's results over the rounds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DnsServerReport {
    /// The server, `ADDR:PORT`.
    pub server: String,
    /// `ok` when every query got records; otherwise the status of the last query that did not.
    pub status: DnsStatus,
    /// The response code of the last response (`NOERROR`, `NXDOMAIN`, ...); absent when no
    /// response came.
    pub rcode: Option<String>,
    /// What went wrong, worded for people; absent when `status` is `ok`.
    pub message: Option<String>,
    /// Queries sent.
    pub queries: u32,
    /// Responses received, whatever their response code.
    pub responses: u32,
    /// How many queries ended with each status.
    pub outcomes: BTreeMap<DnsStatus, u32>,
    /// Time from sending a query to its response, over the responses (timeouts excluded).
    pub latency_ms: Option<Summary>,
    /// The answer section of the last response that had one.
    pub answers: Vec<DnsAnswerReport>,
}

/// The result of a DNS test: one query name and type, asked of each server `count` times.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DnsReport {
    /// The query name, fully qualified (an address given for PTR becomes its `.arpa` name).
    pub name: String,
    /// The record type asked for.
    pub record_type: String,
    /// `udp` (TCP after a truncated answer) or `tcp`.
    pub transport: String,
    /// Queries per server.
    pub count: u32,
    /// How long a query waits for its response.
    pub timeout_ms: f64,
    /// One entry per server, in the order given.
    pub servers: Vec<DnsServerReport>,
}

impl DnsReport {
    /// Whether every server answered every query with records.
    pub fn all_ok(&self) -> bool {
        self.servers.iter().all(|s| s.status == DnsStatus::Ok)
    }
}

/// The report as text: one block per server with its status, latency and answers.
pub fn render_text(r: &DnsReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} over {}, {} quer{} per server",
        r.name,
        r.record_type,
        r.transport,
        r.count,
        if r.count == 1 { "y" } else { "ies" }
    );
    for s in &r.servers {
        let latency = match &s.latency_ms {
            Some(l) if s.responses > 1 => format!(
                "min {:.3} / p50 {:.3} / mean {:.3} / max {:.3} ms",
                l.min, l.p50, l.mean, l.max
            ),
            Some(l) => format!("{:.3} ms", l.p50),
            None => "-".to_owned(),
        };
        let _ = writeln!(
            out,
            "{}  {}{}  {}  ({}/{} answered)",
            s.server,
            s.status.as_str(),
            s.rcode
                .as_deref()
                .map(|c| format!(" [{c}]"))
                .unwrap_or_default(),
            latency,
            s.responses,
            s.queries
        );
        if let Some(m) = &s.message {
            let _ = writeln!(out, "  {m}");
        }
        for a in &s.answers {
            let _ = writeln!(
                out,
                "  {}\t{}\t{}\t{}",
                a.name, a.ttl, a.record_type, a.data
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_field_names() {
        let mut outcomes = BTreeMap::new();
        outcomes.insert(DnsStatus::Ok, 2);
        outcomes.insert(DnsStatus::Timeout, 1);
        let r = DnsReport {
            name: "www.example.".into(),
            record_type: "A".into(),
            transport: "udp".into(),
            count: 3,
            timeout_ms: 2000.0,
            servers: vec![DnsServerReport {
                server: "192.0.2.53:53".into(),
                status: DnsStatus::Timeout,
                rcode: Some("NOERROR".into()),
                message: Some("no answer".into()),
                queries: 3,
                responses: 2,
                outcomes,
                latency_ms: Some(Summary::default()),
                answers: vec![DnsAnswerReport {
                    name: "www.example.".into(),
                    ttl: 300,
                    record_type: "A".into(),
                    data: "192.0.2.1".into(),
                }],
            }],
        };
        let v = serde_json::to_value(&r).expect("json");
        assert_eq!(v["servers"][0]["status"], "timeout");
        assert_eq!(v["servers"][0]["outcomes"]["ok"], 2);
        assert_eq!(v["servers"][0]["answers"][0]["type"], "A");
        assert_eq!(v["servers"][0]["answers"][0]["ttl"], 300);
        assert!(!r.all_ok());
        let text = render_text(&r);
        assert!(text.contains("192.0.2.53:53  timeout [NOERROR]"), "{text}");
        assert!(text.contains("www.example.\t300\tA\t192.0.2.1"), "{text}");
        let back: DnsReport = serde_json::from_value(v).expect("round trip");
        assert_eq!(back, r);
    }
}
