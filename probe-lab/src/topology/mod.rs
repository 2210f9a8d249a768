//! Ready-made topologies. Each is a function returning a struct of named [`Host`]s plus the
//! addresses tests need; dropping the struct deletes every namespace (also on panic).
//!
//! Addressing (only ever inside our namespaces): point-to-point link `k` uses
//! `198.18.k.0/24` and `fd00:<k+1>::/64` (see [`LinkNet`]), the Docker-like bridge uses
//! `172.17.0.0/16` and `fd00:ac11::/64`. Interfaces are created directly inside their
//! namespaces, so no name ever appears in the root namespace.

mod chain;
mod direct;
mod ecmp;
mod impaired;
mod macvlan;
mod nat;
mod nat_mesh;

pub use chain::{Chain, DEFAULT_MTU, chain};
pub use direct::{Direct, direct};
pub use ecmp::{COUNTER_NAME, COUNTER_TABLE, Ecmp, ecmp};
pub use impaired::{Impaired, TUN_FORWARD, TUN_REVERSE, impaired, impaired_with};
pub use macvlan::{Macvlan, macvlan};
pub use nat::{
    AGENT_V4, AGENT_V6, BRIDGE_V4, BRIDGE_V6, DEFAULT_PUBLISHED, Nat, PublishedPort, Transport,
    nat, nat_with,
};
pub use nat_mesh::{NatMesh, nat_mesh};

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::Result;
use crate::host::Host;

/// Addresses of point-to-point link number `index`: `198.18.<index>.0/24` and
/// `fd00:<index+1>::/64`. By convention the end nearer the source ("left") gets `.1`/`::1` and
/// the other end `.2`/`::2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkNet {
    /// The link number (third octet of the IPv4 prefix).
    pub index: u8,
}

impl LinkNet {
    /// Link number `index`.
    pub const fn new(index: u8) -> Self {
        Self { index }
    }

    /// The IPv4 address `.host` on this link.
    pub const fn v4(self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.index, host)
    }

    /// The IPv6 address `::host` on this link.
    pub const fn v6(self, host: u16) -> Ipv6Addr {
        Ipv6Addr::new(0xfd00, self.index as u16 + 1, 0, 0, 0, 0, 0, host)
    }

    /// Address of the left (source-side) end.
    pub const fn left_v4(self) -> Ipv4Addr {
        self.v4(1)
    }

    /// Address of the right end.
    pub const fn right_v4(self) -> Ipv4Addr {
        self.v4(2)
    }

    /// IPv6 address of the left end.
    pub const fn left_v6(self) -> Ipv6Addr {
        self.v6(1)
    }

    /// IPv6 address of the right end.
    pub const fn right_v6(self) -> Ipv6Addr {
        self.v6(2)
    }

    /// The IPv4 prefix in CIDR notation.
    pub fn prefix_v4(self) -> String {
        format!("{}/24", self.v4(0))
    }

    /// The IPv6 prefix in CIDR notation.
    pub fn prefix_v6(self) -> String {
        format!("{}/64", self.v6(0))
    }
}

/// Something made of hosts, printable by `probe-lab up`.
pub trait Topology {
    /// Every host, in a sensible reading order.
    fn hosts(&self) -> Vec<&Host>;

    /// Extra facts worth printing (published ports, hop lists, ...).
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A human-readable listing of a topology's hosts, addresses and notes.
pub fn describe(topology: &dyn Topology) -> String {
    let mut out = String::new();
    for host in topology.hosts() {
        let _ = writeln!(
            out,
            "{:<7} {:<24} {:<15} {}",
            host.role(),
            host.name(),
            host.ipv4(),
            host.ipv6()
        );
    }
    for note in topology.notes() {
        let _ = writeln!(out, "{note}");
    }
    out
}

/// Creates a veth pair with one end `a_if` in `a` and the other `b_if` in `b`.
pub(crate) fn veth(a: &Host, a_if: &str, b: &Host, b_if: &str) -> Result<()> {
    a.ip([
        "link",
        "add",
        a_if,
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "netns",
        b.name(),
    ])
    .map(|_| ())
}

/// `ip -batch` lines that bring `ifname` up with the given IPv4 (/`v4_len`) and IPv6 (/64)
/// addresses (IPv6 without duplicate address detection).
pub(crate) fn addr_lines(ifname: &str, v4: Ipv4Addr, v4_len: u8, v6: Ipv6Addr) -> Vec<String> {
    vec![
        format!("addr add {v4}/{v4_len} dev {ifname}"),
        format!("addr add {v6}/64 dev {ifname} nodad"),
        format!("link set {ifname} up"),
    ]
}

/// `ip -batch` lines for default routes via the given gateways.
pub(crate) fn default_route_lines(gw4: Ipv4Addr, gw6: Ipv6Addr) -> Vec<String> {
    vec![
        format!("route add default via {gw4}"),
        format!("-6 route add default via {gw6}"),
    ]
}

/// `ip -batch` lines routing link `to` (both families) via the given gateways.
pub(crate) fn route_lines(to: LinkNet, gw4: Ipv4Addr, gw6: Ipv6Addr) -> [String; 2] {
    [
        format!("route add {} via {gw4}", to.prefix_v4()),
        format!("-6 route add {} via {gw6}", to.prefix_v6()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_addresses_follow_the_plan() {
        let link = LinkNet::new(3);
        assert_eq!(link.left_v4(), Ipv4Addr::new(198, 18, 3, 1));
        assert_eq!(link.right_v4(), Ipv4Addr::new(198, 18, 3, 2));
        assert_eq!(link.left_v6().to_string(), "fd00:4::1");
        assert_eq!(link.prefix_v4(), "198.18.3.0/24");
        assert_eq!(link.prefix_v6(), "fd00:4::/64");
    }
}
