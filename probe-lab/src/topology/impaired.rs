//! `impaired`: two hosts with the userspace impairment hop between them.

use crate::error::Result;
use crate::host::Host;
use crate::impair::{ImpairConfig, ImpairReport, ImpairerThread, Timing};
use crate::topology::{LinkNet, Topology, addr_lines, default_route_lines, veth};

/// TUN device carrying `a` → `b` traffic inside `imp`.
pub const TUN_FORWARD: &str = "tun-fwd";
/// TUN device carrying `b` → `a` traffic inside `imp`.
pub const TUN_REVERSE: &str = "tun-rev";
/// Policy-routing table sending `a`'s side into [`TUN_FORWARD`].
const TABLE_FORWARD: u32 = 100;
/// Policy-routing table sending `b`'s side into [`TUN_REVERSE`].
const TABLE_REVERSE: u32 = 101;

/// `a — imp — b`: `a` = 198.18.0.1 / `fd00:1::1` and `b` = 198.18.1.2 / `fd00:2::2`, each with a
/// default route through `imp` (198.18.0.2 on `eth0` facing `a`, 198.18.1.1 on `eth1` facing
/// `b`). Inside `imp`, packets arriving on `eth0` are routed into [`TUN_FORWARD`] and those
/// arriving on `eth1` into [`TUN_REVERSE`], each served by an [`ImpairerThread`] of this
/// process. Packets to `imp`'s own addresses are not impaired.
///
/// A packet from `a` to `b` is forwarded twice by `imp` and so loses 2 from its TTL.
#[derive(Debug)]
pub struct Impaired {
    // Declared first so the threads stop before the namespaces are deleted.
    forward: ImpairerThread,
    reverse: ImpairerThread,
    /// The host on the left.
    pub a: Host,
    /// The impairment hop.
    pub imp: Host,
    /// The host on the right.
    pub b: Host,
}

impl Impaired {
    /// Changes the `a` → `b` impairment.
    pub fn set_forward(&self, config: ImpairConfig) -> Result<()> {
        self.forward.set_config(config)
    }

    /// Changes the `b` → `a` impairment.
    pub fn set_reverse(&self, config: ImpairConfig) -> Result<()> {
        self.reverse.set_config(config)
    }

    /// Counters and release lateness of the `a` → `b` direction.
    pub fn forward_report(&self) -> ImpairReport {
        self.forward.report()
    }

    /// Counters and release lateness of the `b` → `a` direction.
    pub fn reverse_report(&self) -> ImpairReport {
        self.reverse.report()
    }
}

/// Builds [`Impaired`] with the given per-direction impairments and default [`Timing`].
pub fn impaired(forward: ImpairConfig, reverse: ImpairConfig) -> Result<Impaired> {
    impaired_with(forward, reverse, Timing::default())
}

/// Builds [`Impaired`] with explicit runner timing.
pub fn impaired_with(
    forward: ImpairConfig,
    reverse: ImpairConfig,
    timing: Timing,
) -> Result<Impaired> {
    forward.validate()?;
    reverse.validate()?;
    let (left, right) = (LinkNet::new(0), LinkNet::new(1));
    let a = Host::create("a", left.left_v4(), left.left_v6())?;
    let imp = Host::create("imp", left.right_v4(), left.right_v6())?;
    let b = Host::create("b", right.right_v4(), right.right_v6())?;
    imp.make_router()?;
    veth(&a, "eth0", &imp, "eth0")?;
    veth(&imp, "eth1", &b, "eth0")?;

    let mut a_lines = addr_lines("eth0", a.ipv4(), 24, a.ipv6());
    a_lines.extend(default_route_lines(left.right_v4(), left.right_v6()));
    a.ip_batch(&a_lines)?;
    let mut b_lines = addr_lines("eth0", b.ipv4(), 24, b.ipv6());
    b_lines.extend(default_route_lines(right.left_v4(), right.left_v6()));
    b.ip_batch(&b_lines)?;

    let mut imp_lines = addr_lines("eth0", left.right_v4(), 24, left.right_v6());
    imp_lines.extend(addr_lines("eth1", right.left_v4(), 24, right.left_v6()));
    for tun in [TUN_FORWARD, TUN_REVERSE] {
        imp_lines.push(format!("tuntap add dev {tun} mode tun"));
        imp_lines.push(format!("link set {tun} up"));
    }
    imp.ip_batch(&imp_lines)?;

    let forward = ImpairerThread::start_in(&imp, TUN_FORWARD, forward, timing)?;
    let reverse = ImpairerThread::start_in(&imp, TUN_REVERSE, reverse, timing)?;

    let mut policy = Vec::new();
    for (iif, tun, table) in [
        ("eth0", TUN_FORWARD, TABLE_FORWARD),
        ("eth1", TUN_REVERSE, TABLE_REVERSE),
    ] {
        for family in ["", "-6 "] {
            policy.push(format!("{family}rule add iif {iif} lookup {table}"));
            policy.push(format!("{family}route add default dev {tun} table {table}"));
        }
    }
    imp.ip_batch(&policy)?;
    Ok(Impaired {
        forward,
        reverse,
        a,
        imp,
        b,
    })
}

impl Topology for Impaired {
    fn hosts(&self) -> Vec<&Host> {
        vec![&self.a, &self.imp, &self.b]
    }

    fn notes(&self) -> Vec<String> {
        vec![format!(
            "impairment: a->b via {TUN_FORWARD}, b->a via {TUN_REVERSE} (in {})",
            self.imp.name()
        )]
    }
}
