//! `direct`: two hosts on one veth pair.

use crate::error::Result;
use crate::host::Host;
use crate::topology::{LinkNet, Topology, addr_lines, veth};

/// Two hosts `a` and `b`, each with `eth0` on one veth pair: `a` = 198.18.0.1 / `fd00:1::1`,
/// `b` = 198.18.0.2 / `fd00:1::2`.
#[derive(Debug)]
pub struct Direct {
    /// Left host.
    pub a: Host,
    /// Right host.
    pub b: Host,
}

/// Builds the [`Direct`] topology.
pub fn direct() -> Result<Direct> {
    let link = LinkNet::new(0);
    let a = Host::create("a", link.left_v4(), link.left_v6())?;
    let b = Host::create("b", link.right_v4(), link.right_v6())?;
    veth(&a, "eth0", &b, "eth0")?;
    a.ip_batch(&addr_lines("eth0", a.ipv4(), 24, a.ipv6()))?;
    b.ip_batch(&addr_lines("eth0", b.ipv4(), 24, b.ipv6()))?;
    Ok(Direct { a, b })
}

impl Topology for Direct {
    fn hosts(&self) -> Vec<&Host> {
        vec![&self.a, &self.b]
    }
}
