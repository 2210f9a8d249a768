//! `chain`: a line of routers with per-link MTUs, for traceroute and PMTUD tests.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::{Error, Result};
use crate::host::Host;
use crate::topology::{LinkNet, Topology, addr_lines, default_route_lines, route_lines, veth};

/// Default MTU of a link.
pub const DEFAULT_MTU: u32 = 1500;

/// `src — r1 — … — rn — dst`. Link `k` (0 ≤ k ≤ n) joins the k-th and (k+1)-th node and uses
/// [`LinkNet`]`(k)`: its left end (towards `src`) has `.1`/`::1` on interface `eth1` (`eth0`
/// on `src`), its right end `.2`/`::2` on `eth0`. So router `r_i` faces `src` with
/// 198.18.(i-1).2 and `dst` is 198.18.n.2. Every router forwards, has ICMP rate limiting off
/// and routes for every link in both families; ICMP errors are sourced from the inbound
/// (src-facing) interface.
///
/// IPv6 needs an MTU of at least 1280 on a link; a smaller MTU disables IPv6 on that link.
#[derive(Debug)]
pub struct Chain {
    /// The source host (198.18.0.1).
    pub src: Host,
    /// Routers `r1..rn`, in order from `src`.
    pub routers: Vec<Host>,
    /// The destination host (198.18.n.2).
    pub dst: Host,
    /// MTU of each link, `mtus[k]` for link k.
    pub mtus: Vec<u32>,
}

impl Chain {
    /// The IPv4 addresses a traceroute from `src` to `dst` shows, router by router (each
    /// router's src-facing interface); `dst` itself is not included.
    pub fn hops_v4(&self) -> Vec<Ipv4Addr> {
        self.routers.iter().map(Host::ipv4).collect()
    }

    /// The IPv6 addresses a traceroute from `src` to `dst` shows (routers only).
    pub fn hops_v6(&self) -> Vec<Ipv6Addr> {
        self.routers.iter().map(Host::ipv6).collect()
    }
}

/// Builds a [`Chain`] of `routers` routers. `link_mtus` is either empty (every link
/// [`DEFAULT_MTU`]) or has `routers + 1` entries, one per link from `src` onward.
pub fn chain(routers: usize, link_mtus: &[u32]) -> Result<Chain> {
    if routers > 250 {
        return Err(Error::Invalid(format!(
            "chain of {routers} routers: at most 250"
        )));
    }
    let links = routers + 1;
    let mtus = if link_mtus.is_empty() {
        vec![DEFAULT_MTU; links]
    } else if link_mtus.len() == links {
        link_mtus.to_vec()
    } else {
        return Err(Error::Invalid(format!(
            "chain of {routers} routers has {links} links but {} MTUs were given",
            link_mtus.len()
        )));
    };
    if let Some(bad) = mtus.iter().find(|&&m| !(68..=65535).contains(&m)) {
        return Err(Error::Invalid(format!("link MTU {bad} outside 68..=65535")));
    }
    let net = |k: usize| LinkNet::new(k as u8);

    let src = Host::create("src", net(0).left_v4(), net(0).left_v6())?;
    let mut nodes = Vec::with_capacity(routers);
    for i in 1..=routers {
        let router = Host::create(
            &format!("r{i}"),
            net(i - 1).right_v4(),
            net(i - 1).right_v6(),
        )?;
        router.make_router()?;
        nodes.push(router);
    }
    let dst = Host::create("dst", net(routers).right_v4(), net(routers).right_v6())?;

    // Node j (0 = src, routers + 1 = dst); link k joins node k (its eth1, or eth0 on src)
    // and node k+1 (its eth0).
    let node = |j: usize| match j {
        0 => &src,
        j if j == routers + 1 => &dst,
        j => &nodes[j - 1],
    };
    let right_if = |j: usize| if j == 0 { "eth0" } else { "eth1" };
    for (k, &mtu) in mtus.iter().enumerate() {
        let (left, right) = (node(k), node(k + 1));
        veth(left, right_if(k), right, "eth0")?;
        for (host, ifname, v4, v6) in [
            (left, right_if(k), net(k).left_v4(), net(k).left_v6()),
            (right, "eth0", net(k).right_v4(), net(k).right_v6()),
        ] {
            let mut lines = vec![format!("link set {ifname} mtu {mtu}")];
            lines.extend(addr_lines(ifname, v4, 24, v6));
            host.ip_batch(&lines)?;
        }
    }

    src.ip_batch(&default_route_lines(net(0).right_v4(), net(0).right_v6()))?;
    dst.ip_batch(&default_route_lines(
        net(routers).left_v4(),
        net(routers).left_v6(),
    ))?;
    for (idx, router) in nodes.iter().enumerate() {
        let i = idx + 1; // router r_i: link i-1 on eth0, link i on eth1
        let mut lines = Vec::new();
        for k in 0..links {
            let gateway = if k + 1 < i {
                Some((net(i - 1).left_v4(), net(i - 1).left_v6()))
            } else if k > i {
                Some((net(i).right_v4(), net(i).right_v6()))
            } else {
                None
            };
            if let Some((gw4, gw6)) = gateway {
                lines.extend(route_lines(net(k), gw4, gw6));
            }
        }
        router.ip_batch(&lines)?;
    }
    Ok(Chain {
        src,
        routers: nodes,
        dst,
        mtus,
    })
}

impl Topology for Chain {
    fn hosts(&self) -> Vec<&Host> {
        let mut hosts = vec![&self.src];
        hosts.extend(self.routers.iter());
        hosts.push(&self.dst);
        hosts
    }

    fn notes(&self) -> Vec<String> {
        vec![format!("link MTUs from src: {:?}", self.mtus)]
    }
}
