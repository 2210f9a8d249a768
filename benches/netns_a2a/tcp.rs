//! The TCP throughput section: `probe a2a --proto tcp --throughput` next to `iperf3 -c`
//! (client sends) and `iperf3 -c -R` (server sends) on the same path, taking turns run by run.

use std::process::Stdio;

use probe_lab::Host;
use serde_json::Value;

use super::turns::{median, median_and_runs, paths, ratios, take_turns};
use super::{SECONDS, a2a_json, number, peers, run, serve};

/// One path's medians (Gbit/s) and the per-run ratios probe ÷ iperf3, per direction.
pub struct TcpRow {
    name: &'static str,
    to: (f64, f64, Vec<f64>),
    from: (f64, f64, Vec<f64>),
}

/// `iperf3 … --json` (TCP, client side): bits/s the receiver counted.
pub fn iperf3_received_bps(v: &Value) -> Result<f64, String> {
    let sum = v
        .get("end")
        .and_then(|e| e.get("sum_received"))
        .ok_or("iperf3 JSON has no `end.sum_received`")?;
    peers::json_number("iperf3", sum, "bits_per_second")
}

/// The reader on a fixed document (runs without root).
pub fn self_test() {
    let v: Value = serde_json::from_str(
        r#"{"end":{"sum_sent":{"bits_per_second":2e9},"sum_received":{"bits_per_second":1.5e9}}}"#,
    )
    .expect("fixture");
    assert_eq!(iperf3_received_bps(&v), Ok(1.5e9));
    assert!(iperf3_received_bps(&serde_json::json!({"end": {}})).is_err());
}

fn iperf3_bps(client: &Host, server: &Host, addr: &str, reverse: bool) -> f64 {
    let mut s = server.command("iperf3");
    s.args(["-s", "-1", "-p", "5201"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _srv = server.spawn(&mut s).expect("iperf3 -s");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let secs = SECONDS.to_string();
    let mut args = vec!["-c", addr, "-p", "5201", "-t", &secs, "--json"];
    if reverse {
        args.push("-R");
    }
    let out = run(client.command("iperf3").args(&args));
    peers::json("iperf3", &out.stdout)
        .and_then(|v| iperf3_received_bps(&v))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn probe_bps(client: &Host, addr: &str, direction: &str) -> f64 {
    let secs = format!("{SECONDS}s");
    let v = a2a_json(
        client,
        addr,
        &[
            "--proto",
            "tcp",
            "--throughput",
            "--direction",
            direction,
            "-d",
            &secs,
        ],
    );
    number("probe", &v, &format!("{direction}.bits_per_second"))
}

/// Bits/s of probe and iperf3 each way, in turns.
fn row(name: &'static str, client: &Host, server: &Host) -> TcpRow {
    let addr = server.ipv4().to_string();
    let _srv = serve(server);
    let [p_to, i_to, p_from, i_from] = take_turns(
        name,
        [
            ("to: probe Gbit/s", &|| probe_bps(client, &addr, "to") / 1e9),
            ("iperf3 Gbit/s", &|| {
                iperf3_bps(client, server, &addr, false) / 1e9
            }),
            ("from: probe Gbit/s", &|| {
                probe_bps(client, &addr, "from") / 1e9
            }),
            ("iperf3 -R Gbit/s", &|| {
                iperf3_bps(client, server, &addr, true) / 1e9
            }),
        ],
    );
    TcpRow {
        name,
        to: (median(&p_to), median(&i_to), ratios(&p_to, &i_to)),
        from: (median(&p_from), median(&i_from), ratios(&p_from, &i_from)),
    }
}

/// Measures direct, nat (agent → peer, through masquerade) and macvlan and prints the table.
pub fn table() {
    let rows = paths(row);
    println!(
        "\n| path | direction | probe Gbit/s | iperf3 Gbit/s | probe ÷ iperf3: median (runs) |"
    );
    println!("|---|---|---|---|---|");
    for r in &rows {
        for (dir, peer, (p, i, ratios)) in [("to", "`-c`", &r.to), ("from", "`-c -R`", &r.from)] {
            println!(
                "| {} | {dir} (iperf3 {peer}) | {p:.2} | {i:.2} | {} |",
                r.name,
                median_and_runs(ratios)
            );
        }
    }
}
