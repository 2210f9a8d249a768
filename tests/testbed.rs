//! Proves the probe-lab testbed: reachability of every topology, Docker-style NAT and
//! published ports, macvlan, exact hop lists and MTUs of a chain, ECMP spreading, the
//! impairment hop's delay and loss, and cleanup. All traffic stays inside namespaces these
//! tests create. Needs root (skips otherwise, fails with `PROBE_REQUIRE_ROOT_TESTS=1`).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use probe_lab::check::{self, Burst};
use probe_lab::impair::{ImpairConfig, Impairer, PacketClass, Verdict};
use probe_lab::topology::{self, Topology};
use probe_lab::{Host, netns};

const TIMEOUT: Duration = Duration::from_secs(2);
const PAYLOAD: &[u8] = b"probe-lab testbed";

fn sock(ip: impl Into<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(ip.into(), port)
}

fn any(v6: bool) -> SocketAddr {
    if v6 {
        sock([0u16; 8], 0)
    } else {
        sock([0, 0, 0, 0], 0)
    }
}

/// Asserts a UDP and a TCP round trip from `client` to `server`'s primary address.
fn assert_reachable(client: &Host, server: &Host, v6: bool) {
    let addr = server.addr(v6);
    let udp = check::udp_echo(server, sock(addr, 7000)).expect("udp echo");
    let (reply, from) = check::udp_exchange(client, any(v6), udp.local_addr(), PAYLOAD, TIMEOUT)
        .expect("udp exchange")
        .unwrap_or_else(|| panic!("no UDP reply from {addr}"));
    assert_eq!((reply.as_slice(), from), (PAYLOAD, udp.local_addr()));
    let tcp = check::tcp_echo(server, sock(addr, 7001)).expect("tcp echo");
    let reply = check::tcp_exchange(client, tcp.local_addr(), PAYLOAD, TIMEOUT).expect("tcp");
    assert_eq!(reply, PAYLOAD);
}

#[test]
fn direct_hosts_reach_each_other_over_ipv4_and_ipv6() {
    if !probe_lab::require_root() {
        return;
    }
    let t = topology::direct().expect("direct");
    for v6 in [false, true] {
        assert_reachable(&t.a, &t.b, v6);
        assert_reachable(&t.b, &t.a, v6);
    }
}

#[test]
fn nat_masquerades_the_agent_behind_the_host_uplink() {
    if !probe_lab::require_root() {
        return;
    }
    let t = topology::nat().expect("nat");
    for v6 in [false, true] {
        let echo = check::udp_echo(&t.peer, sock(t.peer.addr(v6), 7000)).expect("echo");
        let got = check::udp_exchange(&t.agent, any(v6), echo.local_addr(), PAYLOAD, TIMEOUT)
            .expect("exchange");
        assert!(got.is_some(), "agent got no reply through NAT (v6={v6})");
        let seen: Vec<IpAddr> = echo.peers().iter().map(SocketAddr::ip).collect();
        assert_eq!(
            seen,
            vec![t.host.addr(v6)],
            "peer must see the host's uplink address"
        );
    }
}

#[test]
fn nat_published_ports_reach_the_agent_from_the_peer() {
    if !probe_lab::require_root() {
        return;
    }
    let t = topology::nat().expect("nat");
    for v6 in [false, true] {
        let agent_any = any(v6).ip();
        let udp_a = check::udp_echo(&t.agent, sock(agent_any, 49152)).expect("udp 49152");
        let udp_b = check::udp_echo(&t.agent, sock(agent_any, 49153)).expect("udp 49153");
        let tcp = check::tcp_echo(&t.agent, sock(agent_any, 49153)).expect("tcp 49153");
        for (echo, port) in [(&udp_a, 49152), (&udp_b, 49153)] {
            let published = sock(t.host.addr(v6), port);
            let (reply, from) = check::udp_exchange(&t.peer, any(v6), published, PAYLOAD, TIMEOUT)
                .expect("exchange")
                .unwrap_or_else(|| panic!("no reply via published {published}"));
            assert_eq!((reply.as_slice(), from), (PAYLOAD, published));
            // DNAT keeps the source: the agent sees the peer itself.
            let seen: Vec<IpAddr> = echo.peers().iter().map(SocketAddr::ip).collect();
            assert_eq!(seen, vec![t.peer.addr(v6)]);
        }
        let reply = check::tcp_exchange(&t.peer, sock(t.host.addr(v6), 49153), PAYLOAD, TIMEOUT)
            .expect("tcp via published port");
        assert_eq!(reply, PAYLOAD);
        assert_eq!(tcp.peers().len(), 1);
    }
    // A port that is not published does not reach the agent.
    let _closed = check::udp_echo(&t.agent, sock([0, 0, 0, 0], 49154)).expect("udp 49154");
    let got = check::udp_exchange(
        &t.peer,
        any(false),
        sock(t.host.ipv4(), 49154),
        PAYLOAD,
        Duration::from_millis(200),
    )
    .expect("exchange");
    assert!(got.is_none());
}

#[test]
fn macvlan_agent_and_peer_reach_each_other() {
    if !probe_lab::require_root() {
        return;
    }
    let t = topology::macvlan().expect("macvlan");
    for v6 in [false, true] {
        assert_reachable(&t.agent, &t.peer, v6);
        assert_reachable(&t.peer, &t.agent, v6);
    }
}

#[test]
fn chain_hop_list_and_link_mtus_are_exact() {
    if !probe_lab::require_root() {
        return;
    }
    let mtus = [1500, 1400, 1300, 1280];
    let t = topology::chain(3, &mtus).expect("chain");
    let v4: Vec<Option<IpAddr>> = t.hops_v4().into_iter().map(|a| Some(a.into())).collect();
    let v6: Vec<Option<IpAddr>> = t.hops_v6().into_iter().map(|a| Some(a.into())).collect();
    for (v6_family, mut expected) in [(false, v4), (true, v6)] {
        expected.push(Some(t.dst.addr(v6_family)));
        let dst = sock(t.dst.addr(v6_family), 33434);
        let hops = check::traceroute(&t.src, dst, 8, 40_000, TIMEOUT).expect("traceroute");
        assert_eq!(hops, expected, "v6={v6_family}");
    }
    assert_eq!(t.src.mtu("eth0").expect("mtu"), 1500);
    for (i, router) in t.routers.iter().enumerate() {
        assert_eq!(router.mtu("eth0").expect("mtu"), mtus[i]);
        assert_eq!(router.mtu("eth1").expect("mtu"), mtus[i + 1]);
    }
    assert_eq!(t.dst.mtu("eth0").expect("mtu"), 1280);
}

#[test]
fn ecmp_spreads_flows_over_both_branches_and_pins_each_flow() {
    if !probe_lab::require_root() {
        return;
    }
    let t = topology::ecmp().expect("ecmp");
    for v6 in [false, true] {
        let branches: Vec<IpAddr> = if v6 {
            t.branch_v6().iter().map(|&a| a.into()).collect()
        } else {
            t.branch_v4().iter().map(|&a| a.into()).collect()
        };
        let dst = sock(t.dst.addr(v6), 33434);
        let mut used = [false; 2];
        for port in 41_000..41_016 {
            let mut seen = Vec::new();
            for _ in 0..3 {
                let reply = check::ttl_probe(&t.src, dst, 2, port, TIMEOUT)
                    .expect("probe")
                    .unwrap_or_else(|| panic!("hop 2 silent: v6={v6} port={port}"));
                seen.push(reply.from);
            }
            let branch = branches
                .iter()
                .position(|&b| b == seen[0])
                .unwrap_or_else(|| panic!("hop 2 {} is no branch router", seen[0]));
            assert!(
                seen.iter().all(|&s| s == seen[0]),
                "flow {port} moved: {seen:?}"
            );
            used[branch] = true;
        }
        assert_eq!(used, [true, true], "16 flows all took one branch (v6={v6})");
    }
    // Forwarded data traffic is split too, and every packet is counted once.
    let echo = check::udp_echo(&t.dst, sock(t.dst.ipv4(), 7000)).expect("echo");
    let before = t.branch_packets().expect("counters");
    for port in 42_000..42_016 {
        let got = check::udp_exchange(
            &t.src,
            sock([0, 0, 0, 0], port),
            echo.local_addr(),
            PAYLOAD,
            TIMEOUT,
        )
        .expect("exchange");
        assert!(got.is_some());
    }
    let after = t.branch_packets().expect("counters");
    let per_branch = [after[0] - before[0], after[1] - before[1]];
    assert_eq!(per_branch[0] + per_branch[1], 16);
    assert!(per_branch[0] > 0 && per_branch[1] > 0, "{per_branch:?}");
}

fn burst(t: &topology::Impaired, dst: SocketAddr, count: usize) -> Burst {
    check::udp_burst(
        &t.a,
        dst,
        count,
        Duration::from_millis(2),
        Duration::from_millis(100),
    )
    .expect("burst")
}

/// Median one-way delay in ms from `tx` to `dst` (an address of `rx`), kernel RX timestamps.
fn one_way_median_ms(tx: &probe_lab::Host, rx: &probe_lab::Host, dst: SocketAddr) -> f64 {
    let mut d: Vec<i64> = check::one_way_delays(
        tx,
        rx,
        dst,
        100,
        Duration::from_millis(2),
        Duration::from_millis(100),
    )
    .expect("one-way delays")
    .into_iter()
    .map(|d| d.expect("every datagram arrives"))
    .collect();
    d.sort_unstable();
    d[d.len() / 2] as f64 / 1e6
}

#[test]
fn impairment_hop_adds_the_configured_delay_per_direction() {
    if !probe_lab::require_root() {
        return;
    }
    let t = topology::impaired(ImpairConfig::default(), ImpairConfig::default()).expect("impaired");
    // One-way delays with kernel receive timestamps on the receiving side, so that the
    // probe's own scheduling does not count; both ends share one clock.
    let fwd_dst = sock(t.b.ipv4(), 7001);
    let rev_dst = sock(t.a.ipv4(), 7002);
    let (fwd_base, rev_base) = (
        one_way_median_ms(&t.a, &t.b, fwd_dst),
        one_way_median_ms(&t.b, &t.a, rev_dst),
    );
    t.set_forward(ImpairConfig::delay(Duration::from_millis(10)))
        .expect("fwd");
    t.set_reverse(ImpairConfig::delay(Duration::from_millis(2)))
        .expect("rev");
    let (fwd, rev) = (
        one_way_median_ms(&t.a, &t.b, fwd_dst),
        one_way_median_ms(&t.b, &t.a, rev_dst),
    );
    for (name, added, want) in [
        ("forward", fwd - fwd_base, 10.0),
        ("reverse", rev - rev_base, 2.0),
    ] {
        assert!(
            (added - want).abs() <= 0.3,
            "{name}: added {added:.3} ms, configured {want} ms"
        );
    }
}

#[test]
fn impairment_every_tenth_loss_is_exact() {
    if !probe_lab::require_root() {
        return;
    }
    let every_10th = ImpairConfig {
        every_nth: 10,
        ..ImpairConfig::default()
    };
    let t = topology::impaired(every_10th, ImpairConfig::default()).expect("impaired");
    let echo = check::udp_echo(&t.b, sock(t.b.ipv4(), 7000)).expect("echo");
    let result = burst(&t, echo.local_addr(), 200);
    assert_eq!(result.lost(), 20);
    let lost: Vec<usize> = (0..200).filter(|&i| result.rtts[i].is_none()).collect();
    assert_eq!(lost, (1..=20).map(|k| k * 10 - 1).collect::<Vec<_>>());
    assert_eq!(t.forward_report().stats.dropped_nth, 20);
}

#[test]
fn impairment_random_loss_follows_the_seeded_state_machine() {
    if !probe_lab::require_root() {
        return;
    }
    let config = ImpairConfig {
        loss: 0.2,
        seed: Some(42),
        ..ImpairConfig::default()
    };
    // What the state machine decides for 200 data packets with this seed.
    let mut model = Impairer::new(config);
    let expected: Vec<usize> = (0..200)
        .filter(|_| {
            matches!(
                model.push(0, (), 64, PacketClass::Data),
                Verdict::Dropped(_)
            )
        })
        .collect();
    // Binomial(200, 0.2): mean 40, sd 5.7.
    assert!((20..=60).contains(&expected.len()), "{}", expected.len());

    let t = topology::impaired(config, ImpairConfig::default()).expect("impaired");
    let echo = check::udp_echo(&t.b, sock(t.b.ipv4(), 7000)).expect("echo");
    let result = burst(&t, echo.local_addr(), 200);
    let lost: Vec<usize> = (0..200).filter(|&i| result.rtts[i].is_none()).collect();
    assert_eq!(lost, expected);
}

#[test]
fn impairment_hop_costs_two_ttl_units_in_both_families() {
    if !probe_lab::require_root() {
        return;
    }
    let t = topology::impaired(ImpairConfig::default(), ImpairConfig::default()).expect("impaired");
    let imp_addrs: [IpAddr; 4] =
        ["198.18.0.2", "198.18.1.1", "fd00:1::2", "fd00:2::1"].map(|a| a.parse().expect("literal"));
    for v6 in [false, true] {
        let dst = sock(t.b.addr(v6), 33434);
        let hops = check::traceroute(&t.a, dst, 6, 40_000, TIMEOUT).expect("trace");
        assert_eq!(hops.len(), 3, "{hops:?}");
        assert_eq!(hops[0], Some(t.imp.addr(v6)));
        assert!(hops[1].is_some_and(|h| imp_addrs.contains(&h)), "{hops:?}");
        assert_eq!(hops[2], Some(t.b.addr(v6)));
    }
}

#[test]
fn dropping_a_topology_removes_namespaces_and_kills_processes() {
    if !probe_lab::require_root() {
        return;
    }
    let t = topology::direct().expect("direct");
    let names: Vec<String> = t.hosts().iter().map(|h| h.name().to_owned()).collect();
    let mut stray = t.a.command("sleep").arg("30").spawn().expect("sleep");
    // Wait (bounded) until `ip netns exec` has entered the namespace: only then is the
    // process inside it for the drop to find.
    let inside = || {
        let out = std::process::Command::new("ip")
            .args(["netns", "pids", t.a.name()])
            .output()
            .expect("ip netns pids");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .any(|p| p == stray.id().to_string())
    };
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !inside() {
        assert!(
            std::time::Instant::now() < deadline,
            "sleep never entered the namespace"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let guarded = t.b.spawn(t.b.command("sleep").arg("30")).expect("spawn");
    let guarded_pid = guarded.pid();
    drop(guarded);
    assert!(!std::path::Path::new(&format!("/proc/{guarded_pid}")).exists());
    drop(t);
    let status = stray.wait().expect("wait");
    assert!(!status.success(), "stray process was not killed");
    let left = netns::list_testbed_namespaces().expect("list");
    assert!(
        names.iter().all(|n| !left.contains(n)),
        "{names:?} still in {left:?}"
    );

    // Also on panic.
    let names = std::panic::catch_unwind(|| {
        let t = topology::direct().expect("direct");
        let names: Vec<String> = t.hosts().iter().map(|h| h.name().to_owned()).collect();
        std::panic::panic_any(names);
    })
    .expect_err("panicked")
    .downcast::<Vec<String>>()
    .expect("names");
    let left = netns::list_testbed_namespaces().expect("list");
    assert!(names.iter().all(|n| !left.contains(n)));
}

#[test]
fn stale_namespaces_of_dead_runs_are_removed() {
    if !probe_lab::require_root() {
        return;
    }
    // Larger than any pid_max, so this "run" is certainly dead.
    let stale = "pl2147483000-0-stale";
    let status = std::process::Command::new("ip")
        .args(["netns", "add", stale])
        .status()
        .expect("ip");
    assert!(status.success());
    let removed = probe_lab::cleanup_stale().expect("cleanup");
    assert!(removed.contains(&stale.to_owned()), "{removed:?}");
    assert!(
        !netns::list_testbed_namespaces()
            .expect("list")
            .contains(&stale.to_owned())
    );
}
