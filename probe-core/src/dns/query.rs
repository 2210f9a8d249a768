//! Timed queries for DNS tests: one query sent to each configured server separately, with the
//! response code, the answers and the time each server took.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_resolver::config::{ResolveHosts, ResolverConfig};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Record, RecordType};

use super::config::{Prepared, name_server};
use super::error::answered_rcode;
use super::resolver::{build_hickory, parse_name};
use super::{DnsError, Resolver, ServerList};

/// A DNS response code (RCODE, RFC 1035 §4.1.1 and the IANA registry), shown by its mnemonic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rcode(pub u16);

impl Rcode {
    /// No error.
    pub const NOERROR: Rcode = Rcode(0);
    /// The server could not interpret the query.
    pub const FORMERR: Rcode = Rcode(1);
    /// The server failed to process the query.
    pub const SERVFAIL: Rcode = Rcode(2);
    /// The name does not exist.
    pub const NXDOMAIN: Rcode = Rcode(3);
    /// The server does not support the kind of query.
    pub const NOTIMP: Rcode = Rcode(4);
    /// The server refuses to answer.
    pub const REFUSED: Rcode = Rcode(5);

    /// The registry mnemonic (`NXDOMAIN`), or `None` for codes without one here.
    pub fn mnemonic(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "NOERROR",
            1 => "FORMERR",
            2 => "SERVFAIL",
            3 => "NXDOMAIN",
            4 => "NOTIMP",
            5 => "REFUSED",
            6 => "YXDOMAIN",
            7 => "YXRRSET",
            8 => "NXRRSET",
            9 => "NOTAUTH",
            10 => "NOTZONE",
            16 => "BADVERS",
            23 => "BADCOOKIE",
            _ => return None,
        })
    }
}

impl fmt::Display for Rcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mnemonic() {
            Some(m) => f.write_str(m),
            None => write!(f, "RCODE{}", self.0),
        }
    }
}

impl From<ResponseCode> for Rcode {
    fn from(code: ResponseCode) -> Self {
        Rcode(u16::from(code))
    }
}

/// One answer record, in presentation form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Owner name, fully qualified (`www.example.`).
    pub name: String,
    /// Time to live in seconds.
    pub ttl: u32,
    /// Record type.
    pub record_type: RecordType,
    /// Record data as in a zone file (`192.0.2.1`, `host.example.`).
    pub data: String,
}

impl From<&Record> for Answer {
    fn from(r: &Record) -> Self {
        Answer {
            name: r.name.to_string(),
            ttl: r.ttl,
            record_type: r.record_type(),
            data: r.data.to_string(),
        }
    }
}

/// What a server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The response code; `NXDOMAIN` and `SERVFAIL` answers are responses too.
    pub rcode: Rcode,
    /// The answer section (with any CNAME chain), empty for negative answers.
    pub answers: Vec<Answer>,
}

impl Response {
    fn from_lookup(lookup: &Lookup) -> Self {
        Response {
            rcode: Rcode::from(lookup.message().metadata.response_code),
            answers: lookup.answers().iter().map(Answer::from).collect(),
        }
    }
}

/// One server's result for a timed query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerResult {
    /// The server asked.
    pub server: SocketAddr,
    /// From sending the query to the answer, or to giving up, on the monotonic clock; includes
    /// the retries and a TCP retry after a truncated answer.
    pub elapsed: Duration,
    /// The response, or why none came.
    pub outcome: Result<Response, DnsError>,
}

impl Resolver {
    /// Sends the query `name` `record_type` to each configured server separately and at the
    /// same time, and returns one result per server in the configured order. The name is
    /// asked as given (fully qualified: no search list, no hosts file, no cache), with this
    /// resolver's timeout and attempts.
    ///
    /// Fails as a whole only when `name` is not a DNS name.
    pub async fn query_each(
        &self,
        name: &str,
        record_type: RecordType,
    ) -> Result<Vec<ServerResult>, DnsError> {
        let mut qname = parse_name(name)?;
        qname.set_fqdn(true);
        let mut running = Vec::new();
        for &server in self.servers() {
            let one = self.clone();
            let (qname, shown) = (qname.clone(), name.to_owned());
            running.push((
                server,
                tokio::spawn(
                    async move { one.query_one(server, qname, &shown, record_type).await },
                ),
            ));
        }
        let mut results = Vec::with_capacity(running.len());
        for (server, task) in running {
            results.push(task.await.unwrap_or_else(|e| ServerResult {
                server,
                elapsed: Duration::ZERO,
                outcome: Err(DnsError::Transport {
                    servers: ServerList(vec![server]),
                    why: format!("the query task ended abnormally: {e}"),
                }),
            }));
        }
        Ok(results)
    }

    /// One timed query to one server, through a fresh single-server resolver (so no cache).
    async fn query_one(
        &self,
        server: SocketAddr,
        qname: hickory_resolver::proto::rr::Name,
        shown: &str,
        record_type: RecordType,
    ) -> ServerResult {
        let servers = ServerList(vec![server]);
        let wanted = record_type.to_string();
        let cx = self.context(shown, &wanted, &servers);
        let mut opts = self.inner().prepared.opts.clone();
        opts.use_hosts_file = ResolveHosts::Never;
        let prepared = Prepared {
            config: ResolverConfig::from_name_servers(vec![name_server(server, self.config().tcp)]),
            opts,
            servers: vec![server],
        };
        let hickory = match build_hickory(&prepared, &servers) {
            Ok(h) => h,
            Err(e) => {
                return ServerResult {
                    server,
                    elapsed: Duration::ZERO,
                    outcome: Err(e),
                };
            }
        };
        let started = Instant::now();
        let result = tokio::time::timeout(self.guard(), hickory.lookup(qname, record_type)).await;
        let elapsed = started.elapsed();
        let outcome = match result {
            Ok(Ok(lookup)) => Ok(Response::from_lookup(&lookup)),
            Ok(Err(e)) => match answered_rcode(&e) {
                Some(rcode) => Ok(Response {
                    rcode,
                    answers: Vec::new(),
                }),
                None => Err(cx.classify(e)),
            },
            Err(_) => Err(cx.timeout()),
        };
        ServerResult {
            server,
            elapsed,
            outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rcode_names() {
        assert_eq!(Rcode::NXDOMAIN.to_string(), "NXDOMAIN");
        assert_eq!(Rcode(9).to_string(), "NOTAUTH");
        assert_eq!(Rcode(12).to_string(), "RCODE12");
        assert_eq!(Rcode(12).mnemonic(), None);
    }

    #[tokio::test]
    async fn bad_name_fails_before_any_query() {
        let r = Resolver::new(&super::super::DnsConfig::custom(vec![
            "127.0.0.1:9".parse().expect("addr"),
        ]))
        .expect("resolver");
        let e = r.query_each("", RecordType::A).await.expect_err("empty");
        assert!(matches!(e, DnsError::BadName { .. }), "{e}");
    }
}
