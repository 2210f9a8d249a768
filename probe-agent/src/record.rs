//! One scheduled test run as the agent keeps it: what ran, toward whom, when, whether it
//! succeeded (and if not, the machine-readable class of the failure) and the test's own
//! report as JSON.

use serde::{Deserialize, Serialize};

/// Why a test run failed, as a machine-readable class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorClass {
    /// The peer refused (ECONNREFUSED, ICMP port unreachable).
    Refused,
    /// Nothing answered in time (ETIMEDOUT, all probes lost).
    Timeout,
    /// No route or the network is unreachable (EHOSTUNREACH, ENETUNREACH).
    Unreachable,
    /// The target's name does not resolve (ENOTFOUND).
    NameNotFound,
    /// The peer refused our token or identity.
    Unauthorized,
    /// The request exceeded one of the peer's limits, or the peer was busy.
    Limit,
    /// A proxy refused or failed the request.
    Proxy,
    /// TLS failed (certificate, handshake).
    Tls,
    /// The server's HTTP status or body did not match what was expected.
    HttpStatus,
    /// The run was cut short (the agent stopped, the deadline passed).
    CutShort,
    /// The run was skipped (its slot was missed or an exclusive test held the line).
    Skipped,
    /// Anything else; the message says what.
    Other,
}

impl ErrorClass {
    /// The class's name as it appears in JSON and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Refused => "refused",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Unreachable => "unreachable",
            ErrorClass::NameNotFound => "name_not_found",
            ErrorClass::Unauthorized => "unauthorized",
            ErrorClass::Limit => "limit",
            ErrorClass::Proxy => "proxy",
            ErrorClass::Tls => "tls",
            ErrorClass::HttpStatus => "http_status",
            ErrorClass::CutShort => "cut_short",
            ErrorClass::Skipped => "skipped",
            ErrorClass::Other => "other",
        }
    }
}

/// One completed (or failed, or skipped) test run. One spool line holds one record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultRecord {
    /// The record's number in this agent's spool, increasing by one per record.
    pub seq: u64,
    /// When the run started, Unix time in nanoseconds.
    pub start_unix_ns: u64,
    /// How long the run took, nanoseconds.
    pub duration_ns: u64,
    /// The agent's name.
    pub agent: String,
    /// The test's name from the configuration.
    pub test: String,
    /// The test kind: `a2a`, `trace`, `ping`, `dns` or `http`.
    pub kind: String,
    /// The target as configured (address, HOST:PORT, name or URL).
    pub target: String,
    /// The peer actually measured, when the target resolved to one or more addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// Whether the run succeeded.
    pub ok: bool,
    /// The failure class, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<ErrorClass>,
    /// The failure for people, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The test's own report (the same JSON `probe <kind> --json` prints), when it produced one.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub report: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_record_round_trips_with_its_class_name() {
        let r = ResultRecord {
            seq: 7,
            start_unix_ns: 1_700_000_000_000_000_000,
            duration_ns: 2_000_000,
            agent: "edge-1".into(),
            test: "to-core".into(),
            kind: "a2a".into(),
            target: "core.example.net".into(),
            peer: Some("192.0.2.7:49153".into()),
            ok: false,
            error_class: Some(ErrorClass::NameNotFound),
            error: Some("core.example.net: no such name".into()),
            report: serde_json::Value::Null,
        };
        let line = serde_json::to_string(&r).expect("serialize");
        assert!(line.contains(r#""error_class":"name_not_found""#), "{line}");
        assert!(!line.contains("report"), "{line}");
        let back: ResultRecord = serde_json::from_str(&line).expect("parse");
        assert_eq!(back, r);
        for c in [
            ErrorClass::Refused,
            ErrorClass::Limit,
            ErrorClass::HttpStatus,
        ] {
            let json = serde_json::to_string(&c).expect("class");
            assert_eq!(json, format!("\"{}\"", c.as_str()));
        }
    }
}
