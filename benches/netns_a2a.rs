//! The A2A benchmark runner in the netns testbed, beside peer tools measured in the same run.
//!
//! `cargo bench --bench netns_a2a` (as root) measures, on the direct, nat and macvlan
//! topologies:
//! - reflected round trips per second with 64-byte packets (`probe a2a --rate max`), next to
//!   iperf3's received UDP packets per second (`-u -l 64 -b 0`) on the same path;
//! - the RTT median on direct veth next to sockperf ping-pong;
//! - the schedule error at a 1 ms interval next to irtt's timer error.
//!
//! It prints a Markdown table (the README's). Run without `--bench` (as `cargo test
//! --all-targets` does) it makes one short smoke run of probe only.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use probe_lab::{Background, Host, topology};
use serde_json::Value;

const SECONDS: u64 = 3;
const RUNS: usize = 3;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    if !probe_lab::require_root() {
        return;
    }
    if !full {
        smoke();
        return;
    }
    let mut rows = Vec::new();
    {
        let lab = topology::direct().expect("direct");
        rows.push(rate_row(
            "direct",
            &lab.a,
            &lab.b,
            &lab.b.ipv4().to_string(),
        ));
        rtt_and_schedule(&lab.a, &lab.b);
    }
    {
        let lab = topology::nat().expect("nat");
        rows.push(rate_row(
            "nat (agent → peer)",
            &lab.agent,
            &lab.peer,
            &lab.peer.ipv4().to_string(),
        ));
    }
    {
        let lab = topology::macvlan().expect("macvlan");
        rows.push(rate_row(
            "macvlan (agent → peer)",
            &lab.agent,
            &lab.peer,
            &lab.peer.ipv4().to_string(),
        ));
    }
    println!("\n| path | probe reflected round trips/s | iperf3 UDP received packets/s | ratio |");
    println!("|---|---|---|---|");
    for (name, p, i) in rows {
        println!("| {name} | {p:.0} | {i:.0} | {:.2} |", p / i);
    }
}

fn smoke() {
    let lab = topology::direct().expect("direct");
    let _srv = serve(&lab.b);
    let v = a2a_json(
        &lab.a,
        &lab.b.ipv4().to_string(),
        &["--rate", "max", "-c", "5000", "--size", "64"],
    );
    let pps =
        v["received"].as_f64().unwrap_or(0.0) / v["duration_s"].as_f64().unwrap_or(1.0).max(1e-9);
    println!("netns_a2a smoke: {pps:.0} reflected round trips/s (debug build, 5000 packets)");
    assert!(v["received"].as_f64().unwrap_or(0.0) > 4500.0, "{v}");
}

fn probe(host: &Host, args: &[&str]) -> Command {
    let mut c = host.command(probe_suite::probe_bin());
    c.args(args);
    c
}

fn serve(host: &Host) -> Background {
    let mut c = probe(host, &["serve", "--rate-limit", "0"]);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let bg = host.spawn(&mut c).expect("probe serve");
    std::thread::sleep(Duration::from_millis(300));
    bg
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn a2a_json(from: &Host, peer: &str, extra: &[&str]) -> Value {
    let mut args = vec!["a2a", "--peer", peer, "--json"];
    args.extend_from_slice(extra);
    serde_json::from_slice(&run(&mut probe(from, &args)).stdout).expect("probe json")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// (name, probe reflected pps, iperf3 received pps), medians of `RUNS`.
fn rate_row(
    name: &'static str,
    client: &Host,
    server: &Host,
    addr: &str,
) -> (&'static str, f64, f64) {
    let secs = format!("{SECONDS}s");
    let mut probe_pps = Vec::new();
    {
        let _srv = serve(server);
        for _ in 0..RUNS {
            let v = a2a_json(
                client,
                addr,
                &["--rate", "max", "-d", &secs, "--size", "64"],
            );
            let rx = v["received"].as_f64().unwrap_or(0.0);
            probe_pps.push(rx / v["duration_s"].as_f64().unwrap_or(1.0).max(1e-9));
        }
    }
    let mut iperf_pps = Vec::new();
    for _ in 0..RUNS {
        let mut s = server.command("iperf3");
        s.args(["-s", "-1", "-p", "5201"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _srv = server.spawn(&mut s).expect("iperf3 -s");
        std::thread::sleep(Duration::from_millis(300));
        let out = run(client.command("iperf3").args([
            "-c",
            addr,
            "-p",
            "5201",
            "-u",
            "-l",
            "64",
            "-b",
            "0",
            "-t",
            &SECONDS.to_string(),
            "--json",
        ]));
        let v: Value = serde_json::from_slice(&out.stdout).expect("iperf3 json");
        let sum = &v["end"]["sum"];
        let got =
            sum["packets"].as_f64().unwrap_or(0.0) - sum["lost_packets"].as_f64().unwrap_or(0.0);
        iperf_pps.push(got / sum["seconds"].as_f64().unwrap_or(1.0).max(1e-9));
    }
    let (p, i) = (median(probe_pps), median(iperf_pps));
    eprintln!("{name}: probe {p:.0} reflected/s, iperf3 {i:.0} received/s");
    (name, p, i)
}

fn rtt_and_schedule(client: &Host, server: &Host) {
    let addr = server.ipv4().to_string();
    let mut probe_rtt = Vec::new();
    let mut sched = Vec::new();
    {
        let _srv = serve(server);
        for _ in 0..RUNS {
            let v = a2a_json(client, &addr, &["-c", "3000", "-i", "1ms", "--size", "64"]);
            probe_rtt.push(v["rtt_ms"]["p50"].as_f64().unwrap_or(f64::NAN) * 1000.0);
            sched.push(v["schedule_error_us"]["mean"].as_f64().unwrap_or(f64::NAN));
        }
    }
    let mut sockperf_rtt = Vec::new();
    {
        let mut s = server.command("sockperf");
        s.args(["sr", "-i", &addr, "-p", "11111", "--msg-size", "64"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _srv = server.spawn(&mut s).expect("sockperf sr");
        std::thread::sleep(Duration::from_millis(500));
        for _ in 0..RUNS {
            let out = run(client.command("sockperf").args([
                "pp",
                "-i",
                &addr,
                "-p",
                "11111",
                "-t",
                &SECONDS.to_string(),
                "--msg-size",
                "64",
            ]));
            let text = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            // "... percentile 50.000 =    12.345" (one-way latency = RTT/2, in usec)
            let p50 = text
                .lines()
                .find(|l| l.contains("percentile 50.000"))
                .and_then(|l| l.rsplit('=').next())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(f64::NAN);
            sockperf_rtt.push(p50 * 2.0);
        }
    }
    let mut irtt_err = Vec::new();
    {
        let mut s = server.command("irtt");
        s.args(["server", "-i", "0", "-b", &format!("{addr}:2112")])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _srv = server.spawn(&mut s).expect("irtt server");
        std::thread::sleep(Duration::from_millis(300));
        for _ in 0..RUNS {
            let out = run(client.command("irtt").args([
                "client",
                "-i",
                "1ms",
                "-d",
                &format!("{SECONDS}s"),
                "-l",
                "64",
                "-Q",
                "-o",
                "-",
                &format!("{addr}:2112"),
            ]));
            let v: Value = serde_json::from_slice(&out.stdout).expect("irtt json");
            // irtt reports its timer error in ns.
            irtt_err.push(
                v["stats"]["timer_error"]["mean"]
                    .as_f64()
                    .unwrap_or(f64::NAN)
                    / 1000.0,
            );
        }
    }
    println!("\n| direct veth | probe | peer tool | ratio |");
    println!("|---|---|---|---|");
    let (pr, sr) = (median(probe_rtt), median(sockperf_rtt));
    println!(
        "| RTT median, µs (peer: sockperf ping-pong) | {pr:.1} | {sr:.1} | {:.2} |",
        pr / sr
    );
    let (ps, is) = (median(sched), median(irtt_err));
    println!(
        "| schedule error at 1 ms, mean µs (peer: irtt timer error) | {ps:.1} | {is:.1} | {:.2} |",
        ps / is
    );
}
