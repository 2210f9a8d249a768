//! Name resolution that probe controls: forward lookups, reverse (PTR) names of path hops, and
//! timed per-server queries for DNS tests.
//!
//! Built on `hickory-resolver` with the tokio runtime, so nothing goes through the C library's
//! resolver: the servers, the per-query timeout and the number of attempts are the ones in
//! [`DnsConfig`], nothing else.
//!
//! - [`Resolver::lookup_host`]: a host name to its addresses of one [`Family`].
//! - [`Resolver::reverse`] and [`Resolver::reverse_many`]: PTR names of addresses, the batch one
//!   concurrent, bounded, under one overall deadline, with a cache shared by clones.
//! - [`Resolver::query_each`]: one query sent to every configured server separately, each with its
//!   response code, answers and query time.
//! - [`Resolver::run_test`]: the DNS test of `probe dns`, a [`DnsTest`] repeated over rounds and
//!   folded into a [`crate::report::dns::DnsReport`].

mod config;
mod error;
mod measure;
mod query;
mod resolver;

pub use config::{DEFAULT_PORT, DnsConfig, Servers, parse_server};
pub use error::{DnsError, ServerList};
pub use hickory_resolver::proto::rr::RecordType;
pub use measure::{DnsTest, classify};
pub use query::{Answer, Rcode, Response, ServerResult};
pub use resolver::Resolver;

use std::net::IpAddr;

/// Which address family a forward lookup asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Family {
    /// Both: A and AAAA records.
    #[default]
    Any,
    /// IPv4 only: A records.
    V4,
    /// IPv6 only: AAAA records.
    V6,
}

impl Family {
    /// Whether `ip` belongs to this family.
    pub fn admits(self, ip: IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        }
    }

    /// The record types a lookup of this family asks for.
    pub fn record_types(self) -> &'static [RecordType] {
        match self {
            Family::Any => &[RecordType::A, RecordType::AAAA],
            Family::V4 => &[RecordType::A],
            Family::V6 => &[RecordType::AAAA],
        }
    }

    /// How messages name the family: `IPv4 (A)`, `IPv6 (AAAA)`, `IPv4 or IPv6 (A/AAAA)`.
    pub fn describe(self) -> &'static str {
        match self {
            Family::Any => "IPv4 or IPv6 (A/AAAA)",
            Family::V4 => "IPv4 (A)",
            Family::V6 => "IPv6 (AAAA)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_admits_and_types() {
        let v4: IpAddr = "192.0.2.1".parse().expect("v4");
        let v6: IpAddr = "2001:db8::1".parse().expect("v6");
        assert!(Family::Any.admits(v4) && Family::Any.admits(v6));
        assert!(Family::V4.admits(v4) && !Family::V4.admits(v6));
        assert!(Family::V6.admits(v6) && !Family::V6.admits(v4));
        assert_eq!(
            Family::Any.record_types(),
            &[RecordType::A, RecordType::AAAA]
        );
        assert_eq!(Family::V6.record_types(), &[RecordType::AAAA]);
    }
}
