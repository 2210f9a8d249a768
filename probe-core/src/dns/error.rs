//! Errors of the DNS module, worded for the person at the command line: what went wrong, with
//! which server, and what to try.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::Rcode;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError, NoRecords};

/// The servers a lookup went to, shown as `DNS server 192.0.2.53:53` or
/// `DNS servers 192.0.2.53:53, 192.0.2.54:53`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerList(pub Vec<SocketAddr>);

impl fmt::Display for ServerList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.len() == 1 {
            "DNS server "
        } else {
            "DNS servers "
        })?;
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

/// Why a DNS setup, lookup or query failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// A `--dns` value is not `ADDR[:PORT]`.
    #[error(
        "`{spec}` is not a DNS server ADDR[:PORT]: {why} (examples: 192.0.2.53, 192.0.2.53:5353, [2001:db8::53]:53)"
    )]
    BadServer {
        /// What the user wrote.
        spec: String,
        /// What is wrong with it.
        why: String,
    },
    /// The resolver configuration file cannot be read or names no server.
    #[error("cannot use the resolver configuration {path}: {why}; name a server with --dns ADDR")]
    Config {
        /// The file (normally `/etc/resolv.conf`).
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// An explicit server list was empty.
    #[error("no DNS server to ask: give at least one --dns ADDR")]
    NoServers,
    /// The name cannot be a DNS name.
    #[error("`{name}` is not a valid DNS name: {why}")]
    BadName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        why: String,
    },
    /// An address literal was given where the other family was asked for.
    #[error("`{addr}` is not an {wanted} address: drop -4/-6 or give an address of that family")]
    WrongFamily {
        /// The literal.
        addr: IpAddr,
        /// The family asked for, as [`super::Family::describe`] words it.
        wanted: &'static str,
    },
    /// The server says the name does not exist.
    #[error("cannot resolve `{name}`: no such name (NXDOMAIN) from {servers}")]
    NxDomain {
        /// The name asked for.
        name: String,
        /// Who answered.
        servers: ServerList,
    },
    /// The name exists but has no record of the wanted type.
    #[error(
        "cannot resolve `{name}`: it has no {wanted} record (NOERROR, empty answer) from {servers}"
    )]
    NoData {
        /// The name asked for.
        name: String,
        /// The record kind asked for, for example `IPv6 (AAAA)`.
        wanted: String,
        /// Who answered.
        servers: ServerList,
    },
    /// The server answered with an error response code.
    #[error("cannot resolve `{name}`: {servers} answered {rcode}{}", rcode_hint(*.rcode))]
    Rcode {
        /// The name asked for.
        name: String,
        /// The response code.
        rcode: Rcode,
        /// Who answered.
        servers: ServerList,
    },
    /// Nothing came back in time.
    #[error(
        "no answer from {servers} within {timeout:?} ({attempts} attempt{}): is a resolver reachable? set --dns ADDR",
        if *.attempts == 1 { "" } else { "s" }
    )]
    Timeout {
        /// Who was asked.
        servers: ServerList,
        /// The per-attempt timeout.
        timeout: Duration,
        /// How many attempts were made.
        attempts: usize,
    },
    /// The query could not be sent or the answer not read.
    #[error("cannot query {servers}: {why}")]
    Transport {
        /// Who was asked.
        servers: ServerList,
        /// The underlying failure.
        why: String,
    },
}

fn rcode_hint(rcode: Rcode) -> &'static str {
    match rcode {
        Rcode::SERVFAIL => " (the server could not resolve it; its upstream may be unreachable)",
        Rcode::REFUSED => " (the server refuses this client or name; try another --dns)",
        _ => "",
    }
}

/// What the name, wanted record kind and server context of a failed lookup were.
pub(super) struct LookupContext<'a> {
    pub name: &'a str,
    pub wanted: &'a str,
    pub servers: &'a ServerList,
    pub timeout: Duration,
    pub attempts: usize,
}

impl LookupContext<'_> {
    /// The error for a server's answer that carries no records.
    pub(super) fn negative(&self, rcode: Rcode) -> DnsError {
        let (name, servers) = (self.name.to_owned(), self.servers.clone());
        match rcode {
            Rcode::NXDOMAIN => DnsError::NxDomain { name, servers },
            Rcode::NOERROR => DnsError::NoData {
                name,
                wanted: self.wanted.to_owned(),
                servers,
            },
            rcode => DnsError::Rcode {
                name,
                rcode,
                servers,
            },
        }
    }

    /// The error for a lookup that got no usable answer at all.
    pub(super) fn timeout(&self) -> DnsError {
        DnsError::Timeout {
            servers: self.servers.clone(),
            timeout: self.timeout,
            attempts: self.attempts,
        }
    }

    /// Maps a hickory failure to ours.
    pub(super) fn classify(&self, err: NetError) -> DnsError {
        if let Some(rcode) = answered_rcode(&err) {
            return self.negative(rcode);
        }
        match err {
            NetError::Timeout => self.timeout(),
            NetError::Io(e) if e.kind() == io::ErrorKind::TimedOut => self.timeout(),
            other => DnsError::Transport {
                servers: self.servers.clone(),
                why: other.to_string(),
            },
        }
    }
}

/// The response code when the failure is a server's answer (negative or an error code), `None`
/// when no answer came.
pub(super) fn answered_rcode(err: &NetError) -> Option<Rcode> {
    match err {
        NetError::Dns(HickoryDnsError::NoRecordsFound(NoRecords { response_code, .. })) => {
            Some(Rcode::from(*response_code))
        }
        NetError::Dns(HickoryDnsError::ResponseCode(code)) => Some(Rcode::from(*code)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::op::{Query, ResponseCode};

    fn servers() -> ServerList {
        ServerList(vec!["127.0.0.1:53".parse().expect("addr")])
    }

    fn cx(servers: &ServerList) -> LookupContext<'_> {
        LookupContext {
            name: "gone.example",
            wanted: "IPv4 (A)",
            servers,
            timeout: Duration::from_secs(2),
            attempts: 2,
        }
    }

    fn no_records(code: ResponseCode) -> NetError {
        NetError::Dns(HickoryDnsError::NoRecordsFound(NoRecords::new(
            Query::default(),
            code,
        )))
    }

    #[test]
    fn texts_name_problem_server_and_fix() {
        let s = servers();
        let c = cx(&s);
        assert_eq!(
            c.classify(no_records(ResponseCode::NXDomain)).to_string(),
            "cannot resolve `gone.example`: no such name (NXDOMAIN) from DNS server 127.0.0.1:53"
        );
        assert_eq!(
            c.classify(no_records(ResponseCode::NoError)).to_string(),
            "cannot resolve `gone.example`: it has no IPv4 (A) record (NOERROR, empty answer) from DNS server 127.0.0.1:53"
        );
        assert_eq!(
            c.classify(NetError::Timeout).to_string(),
            "no answer from DNS server 127.0.0.1:53 within 2s (2 attempts): is a resolver reachable? set --dns ADDR"
        );
        let refused = c.classify(NetError::Dns(HickoryDnsError::ResponseCode(
            ResponseCode::Refused,
        )));
        assert_eq!(
            refused,
            DnsError::Rcode {
                name: "gone.example".into(),
                rcode: Rcode::REFUSED,
                servers: s.clone()
            }
        );
        assert!(refused.to_string().ends_with(
            "answered REFUSED (the server refuses this client or name; try another --dns)"
        ));
        let io = NetError::from(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert!(matches!(c.classify(io), DnsError::Transport { .. }));
    }

    #[test]
    fn server_list_wording() {
        let two = ServerList(vec![
            "192.0.2.1:53".parse().expect("a"),
            "[2001:db8::1]:5353".parse().expect("b"),
        ]);
        assert_eq!(
            two.to_string(),
            "DNS servers 192.0.2.1:53, [2001:db8::1]:5353"
        );
        let one_try = DnsError::Timeout {
            servers: servers(),
            timeout: Duration::from_millis(300),
            attempts: 1,
        };
        assert!(one_try.to_string().contains("within 300ms (1 attempt):"));
    }
}
