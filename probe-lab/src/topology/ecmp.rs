//! `ecmp`: a diamond with an L4-hashed multipath route, for Paris-traceroute style tests.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::Result;
use crate::host::Host;
use crate::topology::{LinkNet, Topology, addr_lines, default_route_lines, route_lines, veth};

/// nftables table (family `inet`) holding each branch router's counter.
pub const COUNTER_TABLE: &str = "probe_lab";
/// Name of the counter, on `ra` and `rb`, of forwarded packets coming from `src`'s link.
pub const COUNTER_NAME: &str = "from_src";

/// `src — r1 — {ra | rb} — r2 — dst`. Links: 0 src–r1, 1 r1–ra, 2 r1–rb, 3 ra–r2, 4 rb–r2,
/// 5 r2–dst (addresses per [`LinkNet`], the src-side end `.1`). `r1` routes `dst`'s link over
/// both branches with a multipath route, and `r2` routes `src`'s link back the same way; both
/// use `fib_multipath_hash_policy=1` (L4 hash, IPv4 and IPv6), so one flow (5-tuple) always
/// takes one branch and different flows spread over both.
///
/// `ra` and `rb` count the packets they forward from `src`'s link (IPv4 and IPv6) in the
/// nftables counter [`COUNTER_NAME`] of table `inet` [`COUNTER_TABLE`]; see
/// [`Ecmp::branch_packets`].
#[derive(Debug)]
pub struct Ecmp {
    /// The source (198.18.0.1).
    pub src: Host,
    /// The router splitting the traffic.
    pub r1: Host,
    /// Branch A (198.18.1.2 towards `r1`).
    pub ra: Host,
    /// Branch B (198.18.2.2 towards `r1`).
    pub rb: Host,
    /// The router joining the branches.
    pub r2: Host,
    /// The destination (198.18.5.2).
    pub dst: Host,
}

impl Ecmp {
    /// The branch routers' src-facing IPv4 addresses (what a traceroute from `src` shows at
    /// hop 2), `[ra, rb]`.
    pub fn branch_v4(&self) -> [Ipv4Addr; 2] {
        [self.ra.ipv4(), self.rb.ipv4()]
    }

    /// The branch routers' src-facing IPv6 addresses, `[ra, rb]`.
    pub fn branch_v6(&self) -> [Ipv6Addr; 2] {
        [self.ra.ipv6(), self.rb.ipv6()]
    }

    /// Packets forwarded from `src`'s link so far by `[ra, rb]`.
    pub fn branch_packets(&self) -> Result<[u64; 2]> {
        Ok([
            self.ra
                .nft_counter("inet", COUNTER_TABLE, COUNTER_NAME)?
                .packets,
            self.rb
                .nft_counter("inet", COUNTER_TABLE, COUNTER_NAME)?
                .packets,
        ])
    }
}

/// Builds the [`Ecmp`] topology.
pub fn ecmp() -> Result<Ecmp> {
    let l = LinkNet::new;
    let src = Host::create("src", l(0).left_v4(), l(0).left_v6())?;
    let r1 = Host::create("r1", l(0).right_v4(), l(0).right_v6())?;
    let ra = Host::create("ra", l(1).right_v4(), l(1).right_v6())?;
    let rb = Host::create("rb", l(2).right_v4(), l(2).right_v6())?;
    let r2 = Host::create("r2", l(3).right_v4(), l(3).right_v6())?;
    let dst = Host::create("dst", l(5).right_v4(), l(5).right_v6())?;
    for router in [&r1, &ra, &rb, &r2] {
        router.make_router()?;
    }
    for router in [&r1, &r2] {
        router.sysctls(&[
            ("net.ipv4.fib_multipath_hash_policy", "1"),
            ("net.ipv6.fib_multipath_hash_policy", "1"),
        ])?;
    }

    // (link, left host, left interface, right host, right interface)
    let links = [
        (0, &src, "eth0", &r1, "eth0"),
        (1, &r1, "eth1", &ra, "eth0"),
        (2, &r1, "eth2", &rb, "eth0"),
        (3, &ra, "eth1", &r2, "eth0"),
        (4, &rb, "eth1", &r2, "eth1"),
        (5, &r2, "eth2", &dst, "eth0"),
    ];
    for (k, left, left_if, right, right_if) in links {
        veth(left, left_if, right, right_if)?;
        left.ip_batch(&addr_lines(left_if, l(k).left_v4(), 24, l(k).left_v6()))?;
        right.ip_batch(&addr_lines(right_if, l(k).right_v4(), 24, l(k).right_v6()))?;
    }

    src.ip_batch(&default_route_lines(l(0).right_v4(), l(0).right_v6()))?;
    dst.ip_batch(&default_route_lines(l(5).left_v4(), l(5).left_v6()))?;
    r1.ip_batch(&multipath_lines(
        l(5),
        [(l(1), "eth1"), (l(2), "eth2")],
        true,
    ))?;
    r2.ip_batch(&multipath_lines(
        l(0),
        [(l(3), "eth0"), (l(4), "eth1")],
        false,
    ))?;
    for (router, up, down) in [(&ra, l(1), l(3)), (&rb, l(2), l(4))] {
        let mut lines = route_lines(l(0), up.left_v4(), up.left_v6()).to_vec();
        lines.extend(route_lines(l(5), down.right_v4(), down.right_v6()));
        router.ip_batch(&lines)?;
        router.nft(&format!(
            "table inet {COUNTER_TABLE} {{\n  counter {COUNTER_NAME} {{ }}\n  \
             chain forward {{ type filter hook forward priority 0; policy accept;\n    \
             ip saddr {} counter name {COUNTER_NAME}\n    \
             ip6 saddr {} counter name {COUNTER_NAME}\n  }}\n}}\n",
            l(0).prefix_v4(),
            l(0).prefix_v6()
        ))?;
    }
    Ok(Ecmp {
        src,
        r1,
        ra,
        rb,
        r2,
        dst,
    })
}

/// Multipath routes (both families) to `target` over two branch links. `towards_right`: the
/// next hop is the right end of each branch link (else the left end).
fn multipath_lines(
    target: LinkNet,
    branches: [(LinkNet, &str); 2],
    towards_right: bool,
) -> Vec<String> {
    let hop4 = |n: LinkNet| {
        if towards_right {
            n.right_v4()
        } else {
            n.left_v4()
        }
    };
    let hop6 = |n: LinkNet| {
        if towards_right {
            n.right_v6()
        } else {
            n.left_v6()
        }
    };
    let [(a, a_if), (b, b_if)] = branches;
    vec![
        format!(
            "route add {} nexthop via {} dev {a_if} nexthop via {} dev {b_if}",
            target.prefix_v4(),
            hop4(a),
            hop4(b)
        ),
        format!(
            "-6 route add {} nexthop via {} dev {a_if} nexthop via {} dev {b_if}",
            target.prefix_v6(),
            hop6(a),
            hop6(b)
        ),
    ]
}

impl Topology for Ecmp {
    fn hosts(&self) -> Vec<&Host> {
        vec![&self.src, &self.r1, &self.ra, &self.rb, &self.r2, &self.dst]
    }

    fn notes(&self) -> Vec<String> {
        vec![format!(
            "branches (hop 2 from src): ra {} / {}, rb {} / {}",
            self.ra.ipv4(),
            self.ra.ipv6(),
            self.rb.ipv4(),
            self.rb.ipv6()
        )]
    }
}
