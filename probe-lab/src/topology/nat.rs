//! `nat`: Docker's default bridge network, with published ports.

use std::fmt;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::Result;
use crate::host::Host;
use crate::topology::{LinkNet, Topology, addr_lines, default_route_lines, veth};

/// Address of the bridge `docker0` on the container host (Docker's default).
pub const BRIDGE_V4: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 1);
/// Address of the container (Docker gives the first container `.2`).
pub const AGENT_V4: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 2);
/// IPv6 address of `docker0` (ULA; Docker with IPv6 enabled uses NAT66 the same way).
pub const BRIDGE_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xac11, 0, 0, 0, 0, 0, 1);
/// IPv6 address of the container.
pub const AGENT_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xac11, 0, 0, 0, 0, 0, 2);

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
        })
    }
}

/// A port published like `docker run --publish HOST:CONTAINER/PROTO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishedPort {
    /// Transport protocol.
    pub transport: Transport,
    /// Port on the container host's addresses.
    pub host_port: u16,
    /// Port in the container.
    pub container_port: u16,
}

impl PublishedPort {
    /// `--publish port:port/transport`.
    pub const fn same(transport: Transport, port: u16) -> Self {
        Self {
            transport,
            host_port: port,
            container_port: port,
        }
    }
}

/// The ports [`nat`] publishes: `--publish 49152:49152/udp --publish 49153:49153/udp
/// --publish 49153:49153/tcp`.
pub const DEFAULT_PUBLISHED: [PublishedPort; 3] = [
    PublishedPort::same(Transport::Udp, 49152),
    PublishedPort::same(Transport::Udp, 49153),
    PublishedPort::same(Transport::Tcp, 49153),
];

/// Docker's default network: `agent` is a container whose `eth0` sits on the bridge `docker0`
/// (172.17.0.1/16, `fd00:ac11::1/64`) of `host`, the container host; `host` reaches `peer` over
/// its uplink `eth0` (host 198.18.0.1 / `fd00:1::1`, peer 198.18.0.2 / `fd00:1::2`). Traffic from
/// 172.17.0.0/16 leaving through the uplink is masqueraded, and the published ports are
/// translated by DNAT from any of the host's local addresses to the agent, exactly like Docker's rules
/// (IPv6 too, with NAT66). The peer has no route to 172.17.0.0/16: it only ever sees the host.
///
/// `host.ipv4()` is the uplink address (what the peer sees as source and connects to),
/// `agent.ipv4()` is 172.17.0.2.
#[derive(Debug)]
pub struct Nat {
    /// The container (agent) namespace.
    pub agent: Host,
    /// The container host (bridge, NAT).
    pub host: Host,
    /// The peer beyond the uplink.
    pub peer: Host,
    /// The published ports.
    pub published: Vec<PublishedPort>,
}

/// Builds [`Nat`] with Docker's default published ports ([`DEFAULT_PUBLISHED`]).
pub fn nat() -> Result<Nat> {
    nat_with(&DEFAULT_PUBLISHED)
}

/// Builds [`Nat`] publishing the given ports.
pub fn nat_with(published: &[PublishedPort]) -> Result<Nat> {
    let uplink = LinkNet::new(0);
    let agent = Host::create("agent", AGENT_V4, AGENT_V6)?;
    let host = Host::create("host", uplink.left_v4(), uplink.left_v6())?;
    let peer = Host::create("peer", uplink.right_v4(), uplink.right_v6())?;
    host.make_router()?;

    veth(&host, "veth0", &agent, "eth0")?;
    veth(&host, "eth0", &peer, "eth0")?;

    let mut host_lines = vec!["link add docker0 type bridge".to_owned()];
    host_lines.extend(addr_lines("docker0", BRIDGE_V4, 16, BRIDGE_V6));
    host_lines.push("link set veth0 master docker0".into());
    host_lines.push("link set veth0 up".into());
    host_lines.extend(addr_lines("eth0", host.ipv4(), 24, host.ipv6()));
    host.ip_batch(&host_lines)?;

    let mut agent_lines = addr_lines("eth0", AGENT_V4, 16, AGENT_V6);
    agent_lines.extend(default_route_lines(BRIDGE_V4, BRIDGE_V6));
    agent.ip_batch(&agent_lines)?;

    peer.ip_batch(&addr_lines("eth0", peer.ipv4(), 24, peer.ipv6()))?;

    host.nft(&docker_ruleset(published))?;
    Ok(Nat {
        agent,
        host,
        peer,
        published: published.to_vec(),
    })
}

/// The nftables equivalent of Docker's iptables rules for the default bridge: MASQUERADE of
/// the bridge subnet out of any other interface, and a DNAT per published port for packets to
/// a local address that did not come from the bridge (plus locally generated ones).
fn docker_ruleset(published: &[PublishedPort]) -> String {
    let mut out = String::new();
    for (family, subnet, agent) in [
        ("ip", "172.17.0.0/16", AGENT_V4.to_string()),
        ("ip6", "fd00:ac11::/64", format!("[{AGENT_V6}]")),
    ] {
        let saddr = if family == "ip" { "ip" } else { "ip6" };
        let _ = writeln!(out, "table {family} probe_lab_nat {{");
        let _ = writeln!(out, "  chain published {{");
        for port in published {
            let _ = writeln!(
                out,
                "    {t} dport {h} dnat to {agent}:{c}",
                t = port.transport,
                h = port.host_port,
                c = port.container_port
            );
        }
        let _ = writeln!(out, "  }}");
        let _ = writeln!(
            out,
            "  chain prerouting {{ type nat hook prerouting priority dstnat; policy accept;\n    \
             iifname != \"docker0\" fib daddr type local jump published\n  }}"
        );
        let _ = writeln!(
            out,
            "  chain output {{ type nat hook output priority -100; policy accept;\n    \
             fib daddr type local jump published\n  }}"
        );
        let _ = writeln!(
            out,
            "  chain postrouting {{ type nat hook postrouting priority srcnat; policy accept;\n    \
             {saddr} saddr {subnet} oifname != \"docker0\" masquerade\n  }}"
        );
        let _ = writeln!(out, "}}");
    }
    out
}

impl Topology for Nat {
    fn hosts(&self) -> Vec<&Host> {
        vec![&self.agent, &self.host, &self.peer]
    }

    fn notes(&self) -> Vec<String> {
        self.published
            .iter()
            .map(|p| {
                format!(
                    "published {}:{} -> {}:{}/{}",
                    self.host.ipv4(),
                    p.host_port,
                    AGENT_V4,
                    p.container_port,
                    p.transport
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruleset_publishes_each_port_for_both_families() {
        let rules = docker_ruleset(&DEFAULT_PUBLISHED);
        assert!(rules.contains("udp dport 49152 dnat to 172.17.0.2:49152"));
        assert!(rules.contains("tcp dport 49153 dnat to [fd00:ac11::2]:49153"));
        assert!(rules.contains("ip saddr 172.17.0.0/16 oifname != \"docker0\" masquerade"));
        assert_eq!(rules.matches("masquerade").count(), 2);
    }
}
