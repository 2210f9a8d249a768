//! The TCP throughput section: `probe a2a --proto tcp --throughput` next to `iperf3 -c`
//! (client sends) and `iperf3 -c -R` (server sends) on the same path, taking turns run by run.

use std::process::Stdio;

use probe_lab::Host;
use serde_json::Value;

use super::{RUNS, SECONDS, a2a_json, median, number, peers, run, serve};

/// One path's medians (bits/s) and the per-run ratios probe ÷ iperf3, per direction.
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

fn row(name: &'static str, client: &Host, server: &Host) -> TcpRow {
    let addr = server.ipv4().to_string();
    let _srv = serve(server);
    let (mut p_to, mut i_to, mut r_to) = (Vec::new(), Vec::new(), Vec::new());
    let (mut p_from, mut i_from, mut r_from) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let (p, i) = (
            probe_bps(client, &addr, "to"),
            iperf3_bps(client, server, &addr, false),
        );
        eprintln!(
            "{name} to: probe {:.2} Gbit/s, iperf3 {:.2} Gbit/s",
            p / 1e9,
            i / 1e9
        );
        p_to.push(p);
        i_to.push(i);
        r_to.push(p / i);
        let (p, i) = (
            probe_bps(client, &addr, "from"),
            iperf3_bps(client, server, &addr, true),
        );
        eprintln!(
            "{name} from: probe {:.2} Gbit/s, iperf3 -R {:.2} Gbit/s",
            p / 1e9,
            i / 1e9
        );
        p_from.push(p);
        i_from.push(i);
        r_from.push(p / i);
    }
    TcpRow {
        name,
        to: (median(p_to), median(i_to), r_to),
        from: (median(p_from), median(i_from), r_from),
    }
}

/// Measures direct, nat (agent → peer, through masquerade) and macvlan and prints the table.
pub fn table() {
    let rows = super::paths(row);
    println!(
        "\n| path | direction | probe Gbit/s | iperf3 Gbit/s | probe ÷ iperf3: median (runs) |"
    );
    println!("|---|---|---|---|---|");
    for r in &rows {
        for (dir, peer, (p, i, ratios)) in [("to", "`-c`", &r.to), ("from", "`-c -R`", &r.from)] {
            let runs: Vec<String> = ratios.iter().map(|x| format!("{x:.2}")).collect();
            println!(
                "| {} | {dir} (iperf3 {peer}) | {:.2} | {:.2} | {:.2} ({}) |",
                r.name,
                p / 1e9,
                i / 1e9,
                median(ratios.clone()),
                runs.join(", ")
            );
        }
    }
}
