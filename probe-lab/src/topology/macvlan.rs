//! `macvlan`: the agent on a macvlan child of the container host's uplink.

use crate::error::Result;
use crate::host::Host;
use crate::topology::{LinkNet, Topology, addr_lines};

/// Docker's macvlan network: `host` (the container host) has its uplink `eth0`, a veth whose
/// other end is `peer`'s `eth0`; `agent`'s `eth0` is a macvlan child (mode bridge) of the
/// host's uplink, created directly in the agent namespace, so the agent sits on the peer's L2
/// segment with its own MAC. Addresses on 198.18.0.0/24 and `fd00:1::/64`: host `.1`/`::1`,
/// peer `.2`/`::2`, agent `.3`/`::3`.
///
/// As with any macvlan, the host itself cannot reach the agent through its parent interface;
/// agent and peer reach each other both ways.
#[derive(Debug)]
pub struct Macvlan {
    /// The container namespace.
    pub agent: Host,
    /// The container host owning the uplink.
    pub host: Host,
    /// The peer on the far end of the uplink.
    pub peer: Host,
}

/// Builds the [`Macvlan`] topology.
pub fn macvlan() -> Result<Macvlan> {
    let link = LinkNet::new(0);
    let host = Host::create("host", link.v4(1), link.v6(1))?;
    let peer = Host::create("peer", link.v4(2), link.v6(2))?;
    let agent = Host::create("agent", link.v4(3), link.v6(3))?;
    super::veth(&host, "eth0", &peer, "eth0")?;
    host.ip([
        "link",
        "add",
        "link",
        "eth0",
        "name",
        "eth0",
        "netns",
        agent.name(),
        "type",
        "macvlan",
        "mode",
        "bridge",
    ])?;
    for h in [&host, &peer, &agent] {
        h.ip_batch(&addr_lines("eth0", h.ipv4(), 24, h.ipv6()))?;
    }
    Ok(Macvlan { agent, host, peer })
}

impl Topology for Macvlan {
    fn hosts(&self) -> Vec<&Host> {
        vec![&self.agent, &self.host, &self.peer]
    }
}
