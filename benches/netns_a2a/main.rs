//! The A2A benchmark runner in the netns testbed, beside peer tools measured in the same run.
//!
//! `cargo bench --bench netns_a2a` (as root) measures, on the direct, nat and macvlan
//! topologies, with 64-byte UDP payloads:
//! - reflected round trips per second (`probe a2a --rate max`) next to the one-way packets per
//!   second of a minimal `sendmmsg`/`recvmmsg` blaster ([`blaster`]) and iperf3's received
//!   UDP packets per second (`-u -l 64 -b 0`) on the same path; the three take turns, run
//!   after run, so machine load hits them alike;
//! - on direct veth, the RTT in user space (probe's `rtt_user_ms`) next to sockperf
//!   ping-pong, the kernel-timestamped RTT minimum next to `ping`'s minimum, and the schedule
//!   error at a 1 ms interval next to irtt's timer error.
//!
//! - UDP throughput (`probe a2a --throughput --direction to --rate max`, 64-byte datagrams)
//!   next to iperf3's and the blaster's received packets per second ([`udp`]; `-- --bench
//!   --udp` runs only this);
//! - TCP throughput each way (`probe a2a --proto tcp --throughput`) next to `iperf3 -c` and
//!   `iperf3 -c -R` on the same three paths ([`tcp`]; `-- --bench --tcp` runs only this).
//!
//! It prints Markdown tables (the README's). A peer tool whose output does not parse fails
//! the run. Without `--bench` (as `cargo test --all-targets` runs it) it checks the output
//! readers and makes one short smoke run of probe and of the blaster.

mod blaster;
mod peers;
mod tcp;
mod turns;
mod udp;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use probe_lab::{Background, Host, topology};
use serde_json::Value;
use turns::{median, median_and_runs, ratios, take_turns};

const SECONDS: u64 = 3;
/// Runs of each tool; rates take turns run by run and ratios are medians of per-run ratios,
/// which machine load moves less than the rates themselves.
const RUNS: usize = 5;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    peers::self_test();
    tcp::self_test();
    turns::self_test();
    if !probe_lab::require_root() {
        return;
    }
    if !full {
        smoke();
        udp::smoke();
        return;
    }
    // `-- --bench --tcp`: the TCP throughput section only.
    if std::env::args().any(|a| a == "--tcp") {
        tcp::table();
        return;
    }
    // `-- --bench --udp`: the UDP throughput section only.
    if std::env::args().any(|a| a == "--udp") {
        udp::table();
        return;
    }
    // `--delays`: only the RTT and schedule rows (a quick run for the pacer).
    let only_delays = std::env::args().any(|a| a == "--delays");
    let rows = if only_delays {
        Vec::new()
    } else {
        turns::paths(rate_row)
    };
    let delays = {
        let lab = topology::direct().expect("direct");
        delay_rows(&lab.a, &lab.b)
    };
    println!(
        "\n| path | probe reflected round trips/s | blaster one-way packets/s | iperf3 received packets/s | probe ÷ blaster: median (runs) | iperf3 ÷ blaster |"
    );
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        r.print();
    }
    println!("\n| direct veth | probe | peer tool | ratio |");
    println!("|---|---|---|---|");
    for (what, p, peer) in delays {
        match p {
            Some(p) => println!("| {what} | {p:.1} | {peer:.1} | {:.2} |", p / peer),
            None => println!("| {what} | not reported by this probe | {peer:.1} | |"),
        }
    }
    tcp::table();
    udp::table();
}

/// A few seconds: the readers, a 5000-packet flood and a 0.2 s blast on direct veth.
fn smoke() {
    let lab = topology::direct().expect("direct");
    let _srv = serve(&lab.b);
    let v = a2a_json(
        &lab.a,
        &lab.b.ipv4().to_string(),
        &["--rate", "max", "-c", "5000", "--size", "64"],
    );
    let received = number("probe", &v, "received");
    let pps = received / number("probe", &v, "duration_s").max(1e-9);
    println!("netns_a2a smoke: {pps:.0} reflected round trips/s (5000 packets)");
    assert!(received > 4500.0, "{v}");
    let b = blaster::blast(&lab.a, &lab.b, lab.b.ipv4(), Duration::from_millis(200));
    println!(
        "netns_a2a smoke: blaster {:.0} packets/s received ({} of {} sent)",
        b.received_pps(),
        b.received,
        b.sent
    );
    assert!(
        b.sent > 0 && b.received > 0 && b.received <= b.sent,
        "{b:?}"
    );
}

/// A number from a tool's JSON, or the benchmark fails naming what is missing.
fn number(tool: &str, v: &Value, path: &str) -> f64 {
    peers::json_number(tool, v, path).unwrap_or_else(|e| panic!("{e}: {v}"))
}

fn probe(host: &Host, args: &[&str]) -> Command {
    let mut c = host.command(probe_suite::probe_bin());
    c.args(args);
    c
}

/// A state directory removed on drop, so the server's control identity does not stay behind
/// in `/var/lib/probe`.
struct StateDir(std::path::PathBuf);

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `probe serve` in `host`, with a temporary `--state-dir` that lives as long as the server.
fn serve(host: &Host) -> (Background, StateDir) {
    let dir = std::env::temp_dir().join(format!(
        "probe-bench-state-{}-{}",
        std::process::id(),
        host.name()
    ));
    let state = StateDir(dir);
    let dir_s = state.0.display().to_string();
    let mut c = probe(host, &["serve", "--rate-limit", "0", "--state-dir", &dir_s]);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let bg = host.spawn(&mut c).expect("probe serve");
    std::thread::sleep(Duration::from_millis(300));
    (bg, state)
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
    // Plain STAMP: the rows measure one stream, not a negotiated test in both directions.
    let mut args = vec!["a2a", "--peer", peer, "--json", "--no-control"];
    args.extend_from_slice(extra);
    let out = run(&mut probe(from, &args));
    peers::json("probe", &out.stdout).unwrap_or_else(|e| panic!("{e}"))
}

/// One topology's rates, medians of `RUNS`, and probe ÷ blaster of each run.
struct RateRow {
    name: &'static str,
    probe: f64,
    blaster: f64,
    iperf3: f64,
    ratios: Vec<f64>,
    iperf3_ratios: Vec<f64>,
}

impl RateRow {
    fn print(&self) {
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {} | {:.2} |",
            self.name,
            self.probe,
            self.blaster,
            self.iperf3,
            median_and_runs(&self.ratios),
            median(&self.iperf3_ratios)
        );
    }
}

/// Reflected round trips/s of probe, the blaster's and iperf3's received packets/s, in turns.
fn rate_row(name: &'static str, client: &Host, server: &Host) -> RateRow {
    let secs = format!("{SECONDS}s");
    let peer = server.ipv4().to_string();
    let _srv = serve(server);
    let [p, b, i] = take_turns(
        name,
        [
            ("probe round trips/s", &|| {
                let v = a2a_json(
                    client,
                    &peer,
                    &["--rate", "max", "-d", &secs, "--size", "64"],
                );
                number("probe", &v, "received") / number("probe", &v, "duration_s").max(1e-9)
            }),
            ("blaster received/s", &|| {
                blaster::blast(client, server, server.ipv4(), Duration::from_secs(SECONDS))
                    .received_pps()
            }),
            ("iperf3 received/s", &|| iperf3_pps(client, server, &peer)),
        ],
    );
    RateRow {
        name,
        ratios: ratios(&p, &b),
        iperf3_ratios: ratios(&i, &b),
        probe: median(&p),
        blaster: median(&b),
        iperf3: median(&i),
    }
}

fn iperf3_pps(client: &Host, server: &Host, addr: &str) -> f64 {
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
    peers::json("iperf3", &out.stdout)
        .and_then(|v| peers::iperf3_received_pps(&v))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The RTT and schedule rows on one path: (what, probe's median or `None` when probe does
/// not report it, the peer tool's median).
fn delay_rows(client: &Host, server: &Host) -> Vec<(String, Option<f64>, f64)> {
    let addr = server.ipv4().to_string();
    let (mut user_rtt, mut kernel_rtt_min) = (Vec::new(), Vec::new());
    let (mut sched_mean, mut sched_p50, mut sched_p99) = (Vec::new(), Vec::new(), Vec::new());
    {
        let _srv = serve(server);
        for _ in 0..RUNS {
            let v = a2a_json(client, &addr, &["-c", "3000", "-i", "1ms", "--size", "64"]);
            kernel_rtt_min.push(number("probe", &v, "rtt_ms.min") * 1000.0);
            sched_mean.push(number("probe", &v, "schedule_error_us.mean"));
            // Reported by newer probes; absent keys are shown as "not reported".
            let optional = |path| peers::json_number("probe", &v, path).ok();
            user_rtt.extend(optional("rtt_user_ms.p50").map(|ms| ms * 1000.0));
            sched_p50.extend(optional("schedule_error_us.p50"));
            sched_p99.extend(optional("schedule_error_us.p99"));
        }
    }
    let sockperf = sockperf_rtt_us(client, server, &addr);
    let ping = ping_min_us(client, &addr);
    let irtt_runs = irtt_timer_error_us(client, server, &addr);
    // The spread behind the medians of the table.
    println!("\nper run: probe rtt_user_ms.p50 µs {user_rtt:.1?}");
    println!("per run: probe schedule error mean µs {sched_mean:.1?}, p99 µs {sched_p99:.1?}");
    println!("per run: irtt timer error mean µs {irtt_runs:.1?}");
    let irtt = median(&irtt_runs);
    let some = |v: Vec<f64>| (!v.is_empty()).then(|| median(&v));
    vec![
        (
            "RTT median, user space to user space, µs (peer: sockperf ping-pong)".into(),
            some(user_rtt),
            sockperf,
        ),
        (
            "RTT minimum, kernel timestamps, µs (peer: ping minimum)".into(),
            some(kernel_rtt_min),
            ping,
        ),
        (
            "schedule error at 1 ms, mean µs (peer: irtt timer error mean)".into(),
            some(sched_mean),
            irtt,
        ),
        (
            "schedule error at 1 ms, median µs (peer: irtt timer error mean)".into(),
            some(sched_p50),
            irtt,
        ),
        (
            "schedule error at 1 ms, p99 µs (peer: irtt timer error mean)".into(),
            some(sched_p99),
            irtt,
        ),
    ]
}

/// sockperf ping-pong round trip median, µs (median of `RUNS`).
fn sockperf_rtt_us(client: &Host, server: &Host, addr: &str) -> f64 {
    let mut s = server.command("sockperf");
    s.args(["sr", "-i", addr, "-p", "11111", "--msg-size", "64"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _srv = server.spawn(&mut s).expect("sockperf sr");
    std::thread::sleep(Duration::from_millis(500));
    let runs = (0..RUNS)
        .map(|_| {
            let out = run(client.command("sockperf").args([
                "pp",
                "-i",
                addr,
                "-p",
                "11111",
                "-t",
                &SECONDS.to_string(),
                "--msg-size",
                "64",
            ]));
            let text = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            peers::sockperf_rtt_p50_us(&text).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect::<Vec<_>>();
    median(&runs)
}

/// `ping`'s minimum round trip at a 1 ms interval with 64 bytes of data, µs (median of
/// `RUNS` runs of 3000).
fn ping_min_us(client: &Host, addr: &str) -> f64 {
    let runs = (0..RUNS)
        .map(|_| {
            let out = run(client
                .command("ping")
                .args(["-q", "-c", "3000", "-i", "0.001", "-s", "64", addr]));
            peers::ping_min_us(&String::from_utf8_lossy(&out.stdout))
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect::<Vec<_>>();
    median(&runs)
}

/// irtt's mean timer error at `-i 1ms`, µs, of each of `RUNS` runs.
fn irtt_timer_error_us(client: &Host, server: &Host, addr: &str) -> Vec<f64> {
    let mut s = server.command("irtt");
    s.args(["server", "-i", "0", "-b", &format!("{addr}:2112")])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _srv = server.spawn(&mut s).expect("irtt server");
    std::thread::sleep(Duration::from_millis(300));
    (0..RUNS)
        .map(|_| {
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
            peers::json("irtt", &out.stdout)
                .and_then(|v| peers::irtt_timer_error_mean_us(&v))
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect()
}
