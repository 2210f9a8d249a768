//! The path-test benchmark runner in the netns testbed, beside traceroute, scamper and mtr
//! measured in the same run on the same topologies.
//!
//! `cargo bench --bench netns_trace` (as root) builds a 6-hop chain (5 routers and the
//! destination) and the ECMP diamond, runs every tool `RUNS` times (`SLOW_RUNS` when a run
//! takes over a second) and prints Markdown tables:
//! median wall time of the whole command (process start to exit, `ip netns exec` included
//! for every tool alike) and the probes it sent, counted by an nftables counter on the first
//! router's prerouting hook (packets addressed to the target; scamper sends some probes on a
//! packet socket, which the source's own output hook would not see). On the diamond it also
//! says how many of the two branches each tool reported.
//!
//! Run without `--bench` (as `cargo test --all-targets` does) it makes one quick run of probe
//! only on the chain.

use std::process::Command;
use std::time::Instant;

use probe_lab::{Host, topology};

const RUNS: usize = 15;
const SLOW_RUNS: usize = 3;
const TABLE: &str = "bench";
const COUNTER: &str = "probes";

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    if !probe_lab::require_root() {
        return;
    }
    if !full {
        smoke();
        return;
    }
    let probe = probe_suite::probe_bin();
    let probe = probe.to_str().expect("utf-8 path");
    let scamper_fast = ["-O", "text", "-p", "10000", "-c"];
    println!(
        "## probe trace vs traceroute, scamper, mtr (medians of {RUNS} runs, {SLOW_RUNS} for commands over 1 s)\n"
    );
    {
        let lab = topology::chain(5, &[]).expect("chain");
        let dst = lab.dst.ipv4().to_string();
        let mut shown: Vec<String> = lab.hops_v4().iter().map(ToString::to_string).collect();
        shown.push(dst.clone());
        println!("6-hop chain (`topology::chain(5)`), target {dst}:\n");
        let bench = Bench {
            src: &lab.src,
            counter: &lab.routers[0],
            dst,
            shown,
            column: "hops shown",
        };
        bench.table(&[
            (probe, &["trace", "-n", "-q", "3", "-P", "udp"]),
            (probe, &["trace", "-n", "-q", "3", "-P", "icmp"]),
            ("traceroute", &["-n", "-q", "3"]),
            ("scamper", &["-O", "text", "-c", "trace -P udp-paris", "-i"]),
            (
                "scamper",
                &[&scamper_fast[..], &["trace -P udp-paris", "-i"]].concat(),
            ),
            ("mtr", &["-n", "-r", "-c", "3"]),
            ("mtr", &["-n", "-r", "-c", "3", "-i", "0.01", "-G", "0.1"]),
        ]);
        let mut probing: Vec<f64> = (0..RUNS)
            .map(|_| {
                trace_json(&lab.src, &bench.dst)["duration_ms"]
                    .as_f64()
                    .unwrap_or(f64::NAN)
            })
            .collect();
        probing.sort_by(f64::total_cmp);
        println!(
            "\nprobe's own probing time in that trace (first probe to last answer, JSON `duration_ms`): {:.2} ms median.",
            probing[RUNS / 2]
        );
    }
    {
        let lab = topology::ecmp().expect("ecmp");
        let dst = lab.dst.ipv4().to_string();
        println!("\nECMP diamond (`topology::ecmp()`, two branches at hop 2), target {dst}:\n");
        let bench = Bench {
            src: &lab.src,
            counter: &lab.r1,
            dst,
            shown: lab.branch_v4().map(|a| a.to_string()).to_vec(),
            column: "branches shown",
        };
        bench.table(&[
            (probe, &["trace", "-n", "--mda", "-P", "udp"]),
            (
                "scamper",
                &["-O", "text", "-c", "tracelb -P udp-sport", "-i"],
            ),
            (
                "scamper",
                &[&scamper_fast[..], &["tracelb -P udp-sport", "-i"]].concat(),
            ),
            (probe, &["trace", "-n", "-q", "3", "-P", "udp"]),
            ("traceroute", &["-n", "-q", "3"]),
            (
                "mtr",
                &["-n", "-r", "-u", "-c", "3", "-i", "0.01", "-G", "0.1"],
            ),
        ]);
    }
}

/// One topology's table: commands run from `src` to `dst`, probes counted on `counter`, and
/// how many of the `shown` addresses each command's output mentions.
struct Bench<'a> {
    src: &'a Host,
    counter: &'a Host,
    dst: String,
    shown: Vec<String>,
    column: &'static str,
}

impl Bench<'_> {
    fn table(&self, rows: &[(&str, &[&str])]) {
        wait_reachable(self.src, &self.dst);
        count_probes_to(self.counter, &self.dst);
        println!("| command | wall ms | probes sent | {} |", self.column);
        println!("|---|---|---|---|");
        for (program, args) in rows {
            let m = measure(self.src, self.counter, program, args, &self.dst);
            let seen = self
                .shown
                .iter()
                .filter(|a| m.stdout.contains(a.as_str()))
                .count();
            println!(
                "| `{}` | {:.1} | {} | {seen}/{} |",
                m.label,
                m.wall_ms,
                m.probes,
                self.shown.len()
            );
        }
    }
}

/// One quick run of probe on the chain: the 6-hop, 3-queries trace.
fn smoke() {
    let lab = topology::chain(5, &[]).expect("chain");
    let dst = lab.dst.ipv4().to_string();
    wait_reachable(&lab.src, &dst);
    let start = Instant::now();
    let v = trace_json(&lab.src, &dst);
    let wall = start.elapsed();
    assert_eq!(v["reached"], true, "{v}");
    assert_eq!(v["hops"].as_array().map(Vec::len), Some(6), "{v}");
    println!(
        "netns_trace smoke: 6-hop trace, 3 queries: {:.1} ms wall, {:.2} ms probing, {} probes",
        wall.as_secs_f64() * 1e3,
        v["duration_ms"].as_f64().unwrap_or(f64::NAN),
        v["probes_sent"]
    );
}

/// `probe trace -n --json -q 3 -P udp DST` from `src`.
fn trace_json(src: &Host, dst: &str) -> serde_json::Value {
    let out = run(src
        .command(probe_suite::probe_bin())
        .args(["trace", "-n", "--json", "-q", "3", "-P", "udp", dst]));
    serde_json::from_str(&out).expect("probe json")
}

/// Waits until the target answers (IPv4 is ready as soon as the topology is, but the tools
/// are compared from their first run).
fn wait_reachable(src: &Host, dst: &str) {
    let to = std::net::SocketAddr::new(dst.parse().expect("address"), 33434);
    for _ in 0..50 {
        let reply =
            probe_lab::check::ttl_probe(src, to, 64, 33999, std::time::Duration::from_millis(100))
                .expect("ttl probe");
        if reply.is_some_and(|r| r.reached) {
            return;
        }
    }
    panic!("{dst} not reachable");
}

/// Installs, on the first router, the counter of packets arriving for `dst`.
fn count_probes_to(router: &Host, dst: &str) {
    router
        .nft(&format!(
            "table inet {TABLE} {{\n counter {COUNTER} {{ }}\n chain pre {{ type filter hook prerouting priority -300; policy accept;\n  ip daddr {dst} counter name {COUNTER}\n }}\n}}\n"
        ))
        .expect("nft counter");
}

struct Measured {
    label: String,
    wall_ms: f64,
    probes: u64,
    stdout: String,
}

/// Runs `program args dst` in `src` `RUNS` times (`SLOW_RUNS` if the first run takes over a
/// second): median wall time and probes (counted on `counter`), last output.
fn measure(src: &Host, counter: &Host, program: &str, args: &[&str], dst: &str) -> Measured {
    let mut walls = Vec::new();
    let mut probes = Vec::new();
    let mut stdout = String::new();
    let mut runs = RUNS;
    while walls.len() < runs {
        let before = packets(counter);
        let start = Instant::now();
        stdout = run(src.command(program).args(args).arg(dst));
        walls.push(start.elapsed().as_secs_f64() * 1e3);
        probes.push(packets(counter) - before);
        if walls[0] > 1000.0 {
            runs = SLOW_RUNS;
        }
    }
    walls.sort_by(f64::total_cmp);
    probes.sort_unstable();
    let name = if program.ends_with("/probe") {
        "probe"
    } else {
        program
    };
    let quoted: Vec<String> = args
        .iter()
        .map(|a| {
            if a.contains(' ') {
                format!("\"{a}\"")
            } else {
                (*a).to_string()
            }
        })
        .collect();
    Measured {
        label: format!("{name} {} TARGET", quoted.join(" ")),
        wall_ms: walls[runs / 2],
        probes: probes[runs / 2],
        stdout,
    }
}

fn packets(router: &Host) -> u64 {
    router
        .nft_counter("inet", TABLE, COUNTER)
        .expect("counter")
        .packets
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
