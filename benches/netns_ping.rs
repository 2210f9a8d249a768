//! The many-target ping benchmark in the netns testbed, beside fping in the same run.
//!
//! `cargo bench --bench netns_ping` (as root, with `fping` and GNU `time` installed) builds
//! the direct topology, makes 10.80.0.0/20 local in the target's namespace (`ip route add
//! local 10.80.0.0/20 dev lo`: every one of its 4096 addresses answers) and routes it there
//! from the source. Then, `RUNS` times alternately, one ICMP echo to each of the 4096
//! addresses with the same settings for both tools: 1000 probes per second (fping `-i 1`,
//! probe `--rate 1000`), one probe per target without retries (`-c 1 -r 0`), 500 ms timeout,
//! 56 data bytes (both tools' default). It prints the median wall time of the whole command
//! (process start to exit, `ip netns exec` and `/usr/bin/time` included for both alike), the
//! median maximum resident set size (`/usr/bin/time -f %M`) and the targets that answered.
//!
//! Run without `--bench` (as `cargo test --all-targets` does) it makes one quick run of probe
//! only, to 256 of the addresses.

use std::collections::BTreeSet;
use std::time::Instant;

use probe_lab::{Host, topology};

const RUNS: usize = 3;
const PREFIX: &str = "10.80.0.0/20";

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::direct().expect("direct");
    lab.b
        .ip(["route", "add", "local", PREFIX, "dev", "lo"])
        .expect("local route");
    lab.a
        .ip(["route", "add", PREFIX, "via", &lab.b.ipv4().to_string()])
        .expect("route");
    let n = if full { 4096 } else { 256 };
    let targets: Vec<String> = (0..n)
        .map(|i| format!("10.80.{}.{}", i / 256, i % 256))
        .collect();
    let dir = std::env::temp_dir().join(format!("probe-netns-ping-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("targets.txt");
    std::fs::write(&file, targets.join("\n") + "\n").expect("target file");
    let file = file.to_str().expect("utf-8 path").to_string();
    let probe = probe_suite::probe_bin();
    let probe = probe.to_str().expect("utf-8 path").to_string();
    let probe_args = [
        "ping", "-c", "1", "--rate", "1000", "-t", "500ms", "--size", "56", "-f", &file,
    ];
    if !full {
        let start = Instant::now();
        let out = lab
            .a
            .command(&probe)
            .args(probe_args)
            .output()
            .expect("run");
        let wall = start.elapsed().as_secs_f64() * 1e3;
        let alive = answered(&String::from_utf8_lossy(&out.stdout));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(alive.len(), n, "every address answers");
        println!("netns_ping smoke: {n} targets x 1 ICMP echo at 1000/s: {wall:.0} ms wall");
        std::fs::remove_dir_all(&dir).ok();
        return;
    }
    let fping_args = [
        "-q", "-c", "1", "-i", "1", "-r", "0", "-t", "500", "-b", "56", "-f", &file,
    ];
    let mut probe_runs = Vec::new();
    let mut fping_runs = Vec::new();
    for _ in 0..RUNS {
        fping_runs.push(measure(&lab.a, "fping", &fping_args));
        probe_runs.push(measure(&lab.a, &probe, &probe_args));
    }
    let fping_seen: BTreeSet<String> = fping_runs.iter().flat_map(|r| r.alive.clone()).collect();
    println!("## probe ping vs fping: {n} targets x 1 ICMP echo (medians of {RUNS} runs)\n");
    println!("| command | wall ms | max RSS MB | targets answered |");
    println!("|---|---|---|---|");
    let rows = [
        (format!("probe {}", probe_args.join(" ")), &probe_runs),
        (format!("fping {}", fping_args.join(" ")), &fping_runs),
    ];
    for (label, runs) in rows {
        let label = label.replace(&file, "FILE");
        let (wall, rss, alive) = medians(runs);
        println!("| `{label}` | {wall:.0} | {:.1} | {alive} |", rss / 1024.0);
    }
    let (probe_wall, probe_rss, _) = medians(&probe_runs);
    let (fping_wall, _, _) = medians(&fping_runs);
    let lost: usize = probe_runs
        .iter()
        .map(|r| fping_seen.difference(&r.alive).count())
        .max()
        .unwrap_or(0);
    println!(
        "\nprobe / fping wall time: {:.2}x; probe max RSS {:.1} MB; targets fping saw that a probe run missed: {lost}",
        probe_wall / fping_wall,
        probe_rss / 1024.0
    );
    std::fs::remove_dir_all(&dir).ok();
}

struct Run {
    wall_ms: f64,
    rss_kb: f64,
    alive: BTreeSet<String>,
}

/// Runs `program args` in `host` under `/usr/bin/time -f %M`.
fn measure(host: &Host, program: &str, args: &[&str]) -> Run {
    let mut cmd = host.command("/usr/bin/time");
    cmd.args(["-f", "rss_kb=%M", program]).args(args);
    let start = Instant::now();
    let out = cmd.output().expect("run");
    let wall_ms = start.elapsed().as_secs_f64() * 1e3;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let rss_kb = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("rss_kb="))
        .next_back()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{program}: no RSS in {stderr}"));
    // Both print fping's summary line per target (fping on stderr with -q).
    let alive = answered(&format!("{stdout}\n{stderr}"));
    Run {
        wall_ms,
        rss_kb,
        alive,
    }
}

/// Targets whose summary line says the probe was answered (`xmt/rcv/%loss = 1/1/0%`).
fn answered(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.contains("xmt/rcv/%loss = 1/1/"))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}

/// Median wall time, median RSS, fewest targets answered.
fn medians(runs: &[Run]) -> (f64, f64, usize) {
    let mut wall: Vec<f64> = runs.iter().map(|r| r.wall_ms).collect();
    let mut rss: Vec<f64> = runs.iter().map(|r| r.rss_kb).collect();
    wall.sort_by(f64::total_cmp);
    rss.sort_by(f64::total_cmp);
    let alive = runs.iter().map(|r| r.alive.len()).min().unwrap_or(0);
    (wall[runs.len() / 2], rss[runs.len() / 2], alive)
}
