//! The UDP throughput section: `probe a2a --throughput --direction to --rate max` (64-byte
//! datagrams, counted by the far end's STAMP port) next to `iperf3 -u -l 64 -b 0` and the
//! minimal `sendmmsg` blaster on the same path, taking turns run by run; `-- --bench --udp`
//! runs only this.

use std::time::Duration;

use probe_lab::{Host, topology};
use serde_json::Value;

use super::turns::{median, median_and_runs, paths, ratios, take_turns};
use super::{SECONDS, blaster, iperf3_pps, number, peers, probe, run, serve};

/// `probe a2a --throughput --direction to --rate max` from `client` to `addr` for `secs`:
/// the JSON report.
fn probe_json(client: &Host, addr: &str, secs: &str) -> Value {
    let state = std::env::temp_dir().join(format!(
        "probe-bench-client-{}-{}",
        std::process::id(),
        client.name()
    ));
    let state_s = state.display().to_string();
    let out = run(&mut probe(
        client,
        &[
            "a2a",
            "--peer",
            addr,
            "--json",
            "--state-dir",
            &state_s,
            "--throughput",
            "--direction",
            "to",
            "--rate",
            "max",
            "-d",
            secs,
            "--size",
            "64",
        ],
    ));
    let _ = std::fs::remove_dir_all(&state);
    peers::json("probe", &out.stdout).unwrap_or_else(|e| panic!("{e}"))
}

/// Distinct datagrams the far end counted per second of sending.
fn probe_pps(client: &Host, addr: &str, secs: &str) -> f64 {
    number(
        "probe",
        &probe_json(client, addr, secs),
        "throughput.to.received_pps",
    )
}

/// One path's medians (received packets/s) and the per-run ratios of probe to each peer.
struct UdpRow {
    name: &'static str,
    probe: f64,
    iperf3: f64,
    blaster: f64,
    vs_iperf3: Vec<f64>,
    vs_blaster: Vec<f64>,
}

/// Received packets/s of probe, iperf3 and the blaster, in turns.
fn row(name: &'static str, client: &Host, server: &Host) -> UdpRow {
    let addr = server.ipv4().to_string();
    let secs = format!("{SECONDS}s");
    let _srv = serve(server);
    let [p, i, b] = take_turns(
        name,
        [
            ("probe received/s", &|| probe_pps(client, &addr, &secs)),
            ("iperf3 received/s", &|| iperf3_pps(client, server, &addr)),
            ("blaster received/s", &|| {
                blaster::blast(client, server, server.ipv4(), Duration::from_secs(SECONDS))
                    .received_pps()
            }),
        ],
    );
    UdpRow {
        name,
        vs_iperf3: ratios(&p, &i),
        vs_blaster: ratios(&p, &b),
        probe: median(&p),
        iperf3: median(&i),
        blaster: median(&b),
    }
}

/// Measures direct, nat (agent → peer) and macvlan and prints the table.
pub fn table() {
    let rows = paths(row);
    println!(
        "\n| path | probe UDP throughput received packets/s | iperf3 -u -l 64 -b 0 received packets/s | blaster received packets/s | probe ÷ iperf3: median (runs) | probe ÷ blaster: median (runs) |"
    );
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {} | {} |",
            r.name,
            r.probe,
            r.iperf3,
            r.blaster,
            median_and_runs(&r.vs_iperf3),
            median_and_runs(&r.vs_blaster)
        );
    }
}

/// A short run on direct veth (the bench in test mode): a 0.3 s flood counted by the far end.
pub fn smoke() {
    let lab = topology::direct().expect("direct");
    let _srv = serve(&lab.b);
    let v = probe_json(&lab.a, &lab.b.ipv4().to_string(), "300ms");
    let sent = number("probe", &v, "throughput.to.sent");
    let received = number("probe", &v, "throughput.to.received");
    let pps = number("probe", &v, "throughput.to.received_pps");
    println!("netns_a2a smoke: UDP throughput {pps:.0} packets/s received ({received} of {sent})");
    assert!(sent > 0.0 && received > 0.0 && received <= sent, "{v}");
}
