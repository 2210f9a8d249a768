//! The DNS test behind `probe dns`: one query asked of each server `count` times, folded into a
//! [`DnsReport`] with a latency distribution, an outcome class and the answers per server.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::proto::rr::Name;

use super::query::{Rcode, ServerResult};
use super::{DnsError, RecordType, Resolver, ServerList};
use crate::report::dns::{DnsAnswerReport, DnsReport, DnsServerReport, DnsStatus};
use crate::stats::Distribution;

/// What to ask and how often.
#[derive(Clone, Debug)]
pub struct DnsTest {
    /// The name; for PTR an IPv4 or IPv6 address is turned into its `.arpa` name.
    pub name: String,
    /// The record type.
    pub record_type: RecordType,
    /// Queries per server (at least one).
    pub count: u32,
    /// Time between the starts of rounds (every server is asked once per round, at the same
    /// time).
    pub interval: Duration,
}

impl DnsTest {
    /// One query of `record_type` for `name`.
    pub fn new(name: impl Into<String>, record_type: RecordType) -> Self {
        DnsTest {
            name: name.into(),
            record_type,
            count: 1,
            interval: Duration::from_millis(100),
        }
    }

    /// The name actually asked: the `.arpa` name of an address for PTR, else the name as given.
    pub fn query_name(&self) -> String {
        match self.name.parse::<IpAddr>() {
            Ok(ip) if self.record_type == RecordType::PTR => Name::from(ip).to_ascii(),
            _ => self.name.clone(),
        }
    }
}

/// The outcome class of one result, with the response code when a response came.
pub fn classify(result: &ServerResult) -> (DnsStatus, Option<Rcode>) {
    match &result.outcome {
        Ok(resp) => {
            let status = match resp.rcode {
                Rcode::NOERROR if resp.answers.is_empty() => DnsStatus::Nodata,
                Rcode::NOERROR => DnsStatus::Ok,
                Rcode::NXDOMAIN => DnsStatus::Nxdomain,
                Rcode::SERVFAIL => DnsStatus::Servfail,
                Rcode::REFUSED => DnsStatus::Refused,
                _ => DnsStatus::Rcode,
            };
            (status, Some(resp.rcode))
        }
        Err(DnsError::Timeout { .. }) => (DnsStatus::Timeout, None),
        Err(_) => (DnsStatus::Error, None),
    }
}

/// Accumulates one server's results over the rounds.
#[derive(Debug)]
struct ServerAcc {
    server: SocketAddr,
    queries: u32,
    latency: Distribution,
    outcomes: BTreeMap<DnsStatus, u32>,
    last_rcode: Option<Rcode>,
    failure: Option<(DnsStatus, String)>,
    answers: Vec<DnsAnswerReport>,
}

impl ServerAcc {
    fn new(server: SocketAddr) -> Self {
        ServerAcc {
            server,
            queries: 0,
            latency: Distribution::new(),
            outcomes: BTreeMap::new(),
            last_rcode: None,
            failure: None,
            answers: Vec::new(),
        }
    }

    fn add(&mut self, r: &ServerResult, resolver: &Resolver, name: &str, rtype: RecordType) {
        self.queries += 1;
        let (status, rcode) = classify(r);
        *self.outcomes.entry(status).or_default() += 1;
        if let Ok(resp) = &r.outcome {
            self.latency
                .record(i64::try_from(r.elapsed.as_nanos()).unwrap_or(i64::MAX));
            self.last_rcode = rcode;
            if !resp.answers.is_empty() {
                self.answers = resp
                    .answers
                    .iter()
                    .map(|a| DnsAnswerReport {
                        name: a.name.clone(),
                        ttl: a.ttl,
                        record_type: a.record_type.to_string(),
                        data: a.data.clone(),
                    })
                    .collect();
            }
        }
        if status != DnsStatus::Ok {
            let message = match (&r.outcome, rcode) {
                (Err(e), _) => e.to_string(),
                (Ok(_), Some(code)) => {
                    let servers = ServerList(vec![self.server]);
                    let wanted = rtype.to_string();
                    resolver
                        .context(name, &wanted, &servers)
                        .negative(code)
                        .to_string()
                }
                (Ok(_), None) => String::new(),
            };
            self.failure = Some((status, message));
        }
    }

    fn finish(self) -> DnsServerReport {
        let (status, message) = match self.failure {
            Some((s, m)) => (s, Some(m)),
            None => (DnsStatus::Ok, None),
        };
        DnsServerReport {
            server: self.server.to_string(),
            status,
            rcode: self.last_rcode.map(|c| c.to_string()),
            message,
            queries: self.queries,
            responses: u32::try_from(self.latency.count()).unwrap_or(u32::MAX),
            outcomes: self.outcomes,
            latency_ms: self.latency.summary_ms(),
            answers: self.answers,
        }
    }
}

impl Resolver {
    /// Runs a DNS test: `test.count` rounds, each asking every configured server once at the
    /// same time (fresh resolver per query: no cache), one round every `test.interval`.
    ///
    /// Fails as a whole only when the name is not a DNS name; each server's failures are in
    /// its entry of the report.
    pub async fn run_test(&self, test: &DnsTest) -> Result<DnsReport, DnsError> {
        let qname = test.query_name();
        let mut accs: Vec<ServerAcc> = self.servers().iter().map(|&s| ServerAcc::new(s)).collect();
        let start = tokio::time::Instant::now();
        let mut shown = qname.clone();
        for round in 0..test.count.max(1) {
            tokio::time::sleep_until(start + test.interval * round).await;
            let results = self.query_each(&qname, test.record_type).await?;
            for (acc, r) in accs.iter_mut().zip(&results) {
                acc.add(r, self, &qname, test.record_type);
            }
        }
        if !shown.ends_with('.') {
            shown.push('.');
        }
        Ok(DnsReport {
            name: shown,
            record_type: test.record_type.to_string(),
            transport: if self.config().tcp { "tcp" } else { "udp" }.to_owned(),
            count: test.count.max(1),
            timeout_ms: self.config().timeout.as_secs_f64() * 1e3,
            servers: accs.into_iter().map(ServerAcc::finish).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::query::{Answer, Response};

    fn result(outcome: Result<Response, DnsError>) -> ServerResult {
        ServerResult {
            server: "127.0.0.1:53".parse().expect("addr"),
            elapsed: Duration::from_millis(1),
            outcome,
        }
    }

    fn response(rcode: Rcode, answers: usize) -> Response {
        let a = Answer {
            name: "x.test.".into(),
            ttl: 60,
            record_type: RecordType::A,
            data: "192.0.2.1".into(),
        };
        Response {
            rcode,
            answers: vec![a; answers],
        }
    }

    #[test]
    fn classes() {
        let cases = [
            (Ok(response(Rcode::NOERROR, 1)), DnsStatus::Ok),
            (Ok(response(Rcode::NOERROR, 0)), DnsStatus::Nodata),
            (Ok(response(Rcode::NXDOMAIN, 0)), DnsStatus::Nxdomain),
            (Ok(response(Rcode::SERVFAIL, 0)), DnsStatus::Servfail),
            (Ok(response(Rcode::REFUSED, 0)), DnsStatus::Refused),
            (Ok(response(Rcode::NOTIMP, 0)), DnsStatus::Rcode),
            (
                Err(DnsError::Timeout {
                    servers: ServerList(vec![]),
                    timeout: Duration::from_secs(1),
                    attempts: 1,
                }),
                DnsStatus::Timeout,
            ),
            (
                Err(DnsError::Transport {
                    servers: ServerList(vec![]),
                    why: "refused".into(),
                }),
                DnsStatus::Error,
            ),
        ];
        for (outcome, want) in cases {
            assert_eq!(classify(&result(outcome)).0, want);
        }
    }

    #[test]
    fn ptr_of_an_address_asks_the_arpa_name() {
        let t = DnsTest::new("192.0.2.10", RecordType::PTR);
        assert_eq!(t.query_name(), "10.2.0.192.in-addr.arpa.");
        let t = DnsTest::new("2001:db8::1", RecordType::PTR);
        assert!(t.query_name().ends_with(".8.b.d.0.1.0.0.2.ip6.arpa."));
        let t = DnsTest::new("192.0.2.10", RecordType::A);
        assert_eq!(t.query_name(), "192.0.2.10");
    }
}
