//! `nat_mesh`: the [`Nat`] topology with nothing published and a second peer, so that an
//! agent behind the masquerade has two peers beyond it that reach each other but not it.

use super::{LinkNet, Nat, Topology, addr_lines, nat_with, route_lines, veth};
use crate::error::Result;
use crate::host::Host;

/// [`Nat`] without published ports (`nat.agent` cannot be reached from beyond `nat.host`),
/// plus `peer2` on a second uplink of the host (`eth1`: host 198.18.1.1, peer2 198.18.1.2,
/// `fd00:2::/64`). The host routes between its two uplinks; traffic of the agent leaving
/// through either is masqueraded. `nat.peer` and `peer2` have routes to each other's link,
/// none to the bridge.
#[derive(Debug)]
pub struct NatMesh {
    /// The NAT topology (agent, host, peer).
    pub nat: Nat,
    /// The second peer beyond the host.
    pub peer2: Host,
}

/// Builds [`NatMesh`].
pub fn nat_mesh() -> Result<NatMesh> {
    let nat = nat_with(&[])?;
    let (uplink, second) = (LinkNet::new(0), LinkNet::new(1));
    let peer2 = Host::create("peer2", second.right_v4(), second.right_v6())?;
    veth(&nat.host, "eth1", &peer2, "eth0")?;
    nat.host
        .ip_batch(&addr_lines("eth1", second.left_v4(), 24, second.left_v6()))?;
    let mut lines = addr_lines("eth0", peer2.ipv4(), 24, peer2.ipv6());
    lines.extend(route_lines(uplink, second.left_v4(), second.left_v6()));
    peer2.ip_batch(&lines)?;
    nat.peer
        .ip_batch(&route_lines(second, uplink.left_v4(), uplink.left_v6()))?;
    Ok(NatMesh { nat, peer2 })
}

impl Topology for NatMesh {
    fn hosts(&self) -> Vec<&Host> {
        vec![&self.nat.agent, &self.nat.host, &self.nat.peer, &self.peer2]
    }

    fn notes(&self) -> Vec<String> {
        vec!["nothing published: the agent is reachable only through mappings it opens".into()]
    }
}
