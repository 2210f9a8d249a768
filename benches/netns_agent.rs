//! The agent at data-centre mesh scale in the netns testbed: one `probe agent` measuring 4000
//! peers at one STAMP packet per second each while its own responder answers the same load.
//!
//! `cargo bench --bench netns_agent` (as root) builds the direct topology, makes 10.80.0.0/20
//! local in `b` (`ip route add local 10.80.0.0/20 dev lo`: every one of its 4096 addresses
//! answers) with `probe serve` bound to all of them, and routes the /20 there from `a`. In `a`
//! it starts `probe agent` with one a2a test whose `targets` are 4000 of those addresses (one
//! packet per second to each: `packet_interval = "1s"`, runs of 55 packets every 60 s, each
//! peer starting at its own point of the first second), and from `b` a `probe a2a` sends the
//! agent's responder 4000 STAMP packets per second (the load runs past the window; its report
//! says how many were sent and answered, and the bench fails unless 95% of the packets planned
//! were sent and 95% of those answered). Once every peer's first run has ended
//! (the spool has a successful record of each: every peer measured, with packets answered) it
//! reads the agent's CPU time (`utime + stime` of `/proc/PID/stat`) over 75 s, a whole run
//! and its end, and then its resident set (`VmRSS`, and the peak since the start, `VmHWM`,
//! of `/proc/PID/status`).
//!
//! With `--bench` it checks the targets of the agent at this scale: under 10% of one core and
//! under 64 MB resident (`VmRSS` and the peak `VmHWM`); a target missed is printed as MISSED
//! and the bench fails. The load average and the binary measured are printed with the table
//! (the machine may be shared: the agent's own CPU time is what counts).
//!
//! Run without `--bench` (as `cargo test --benches` does) it makes one short bounded run: 200
//! peers, 8 packets every 10 s, the responder loaded at 200 packets per second.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use probe_lab::topology;

const PREFIX: &str = "10.80.0.0/20";

/// The agent's CPU target at full scale, percent of one core.
const MAX_CPU_PCT: f64 = 10.0;
/// The agent's memory target at full scale (resident and peak), MB.
const MAX_RSS_MB: f64 = 64.0;

/// One steady measurement: CPU seconds used over the window, and memory.
struct Sample {
    cpu_pct: f64,
    rss_mb: f64,
    hwm_mb: f64,
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    if !probe_lab::require_root() {
        return;
    }
    // The window is one interval and a quarter: it holds a whole run and its end, when the
    // run's reports are stored, exported and kept.
    let (peers, interval, count, window) = if full {
        (4000, 60, 55, 75)
    } else {
        (200, 10, 8, 12)
    };
    let lab = topology::direct().expect("direct");
    lab.b
        .ip(["route", "add", "local", PREFIX, "dev", "lo"])
        .expect("local route");
    lab.a
        .ip(["route", "add", PREFIX, "via", &lab.b.ipv4().to_string()])
        .expect("route");
    let dir = std::env::temp_dir().join(format!("probe-netns-agent-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("temp dir");
    let probe = probe_suite::probe_bin();

    // The peers' side: one responder bound to every address of the /20, holding requests
    // as the peers' agents do (`responder.coalesce`): on veth the sender's send call also
    // delivers into the peer, and would otherwise pay for waking its responder each time.
    let mut serve = lab.b.command(&probe);
    serve
        .args(["serve", "--no-control", "--coalesce", "1ms"])
        .env("PROBE_STATE_DIR", dir.join("serve-state"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _serve = lab.b.spawn(&mut serve).expect("probe serve");

    let targets: Vec<String> = (0..peers)
        .map(|i| format!("\"10.80.{}.{}\"", i / 256, i % 256))
        .collect();
    let config = dir.join("agent.toml");
    fs::write(
        &config,
        format!(
            "name = \"bench\"\n[http]\nlisten = \"127.0.0.1:8000\"\n[[tests]]\nname = \"mesh\"\nkind = \"a2a\"\ntargets = [{}]\ninterval = \"{interval}s\"\ncount = {count}\npacket_interval = \"1s\"\njitter = \"0s\"\n",
            targets.join(", ")
        ),
    )
    .expect("config");
    let state = dir.join("agent-state");
    let log = fs::File::create(dir.join("agent.out")).expect("log");
    let mut cmd = lab.a.command(&probe);
    cmd.args(["agent", "--config"])
        .arg(&config)
        .env("PROBE_STATE_DIR", &state)
        .env_remove("RUST_LOG")
        .stdout(Stdio::from(log.try_clone().expect("dup")))
        .stderr(Stdio::from(log));
    let mut agent = lab.a.spawn(&mut cmd).expect("probe agent");
    let pid = agent.pid();

    // The load starts once the agent's responder listens (else the first packet meets a
    // closed port and the load gives up).
    let bound = Instant::now() + Duration::from_secs(30);
    while !listening(&lab.a, 49153) {
        assert!(Instant::now() < bound, "no responder\n{}", agent_log(&dir));
        std::thread::sleep(Duration::from_millis(100));
    }
    // The agent's own responder gets the same load: `peers` packets per second, until after
    // the window (the first run ends within two intervals of the start).
    let duration = 2 * interval + window + 10;
    let mut load = lab.b.command(&probe);
    load.args([
        "a2a",
        "--no-control",
        "--quiet",
        "--json",
        "--spin",
        "0",
        "--peer",
    ])
    .arg(lab.a.ipv4().to_string())
    .args(["--rate", &peers.to_string(), "-d", &format!("{duration}s")])
    .stdout(Stdio::from(
        fs::File::create(dir.join("load.json")).expect("load report"),
    ))
    .stderr(Stdio::from(
        fs::File::create(dir.join("load.err")).expect("load log"),
    ));
    let mut load = lab.b.spawn(&mut load).expect("probe a2a load");

    // The warm-up: every peer's first run has ended (the test's random start offset puts it
    // anywhere within two intervals of the start); the window then holds the second run.
    let until = Instant::now() + Duration::from_secs(2 * interval);
    let mut measured = measured_peers(&probe, &state);
    while measured.len() < peers && Instant::now() < until {
        std::thread::sleep(Duration::from_secs(1));
        measured = measured_peers(&probe, &state);
    }
    let sample = measure(pid, Duration::from_secs(window));
    let gone = load.try_wait().expect("wait load");
    assert!(
        gone.is_none(),
        "the load on the agent's responder ended early ({gone:?}): {}",
        fs::read_to_string(dir.join("load.err")).unwrap_or_default()
    );
    let out = agent
        .try_wait()
        .expect("wait")
        .map(|s| format!("the agent exited early: {s}"));
    assert!(out.is_none(), "{out:?}\n{}", agent_log(&dir));
    println!(
        "## probe agent: {peers} peers x 1 STAMP packet/s, responder answering {peers} packets/s\n"
    );
    println!("| peers | CPU % of one core | RSS MB | peak RSS MB | peers with answers |");
    println!("|---|---|---|---|---|");
    println!(
        "| {peers} | {:.1} | {:.1} | {:.1} | {} |",
        sample.cpu_pct,
        sample.rss_mb,
        sample.hwm_mb,
        measured.len()
    );
    println!(
        "\nbinary: {}; load average (1, 5, 15 min): {}",
        probe.display(),
        load_average()
    );
    assert_eq!(
        measured.len(),
        peers,
        "every peer measured with answers\n{}",
        agent_log(&dir)
    );
    // The responder carried its load: the load's own report, once it has ended.
    let (sent, answered) = load_report(&mut load, &dir, duration);
    println!("responder: answered {answered} of {sent} packets sent over the load's {duration} s");
    let planned = peers as u64 * duration;
    assert!(
        sent as f64 >= 0.95 * planned as f64 && answered as f64 >= 0.95 * sent as f64,
        "the load on the agent's responder: {sent} sent of {planned} planned, {answered} answered"
    );
    drop(agent);
    let _ = fs::remove_dir_all(&dir);
    if full {
        let missed = check_targets(&sample);
        assert!(missed.is_empty(), "targets MISSED: {}", missed.join("; "));
    }
}

/// Prints each target as met or MISSED; returns the missed ones.
fn check_targets(s: &Sample) -> Vec<String> {
    let checks = [
        ("CPU", s.cpu_pct, MAX_CPU_PCT, "% of one core"),
        ("RSS", s.rss_mb, MAX_RSS_MB, " MB"),
        ("peak RSS", s.hwm_mb, MAX_RSS_MB, " MB"),
    ];
    let mut missed = Vec::new();
    for (what, got, max, unit) in checks {
        let verdict = if got < max { "met" } else { "MISSED" };
        println!("{what}: {got:.1}{unit} (target under {max}{unit}): {verdict}");
        if got >= max {
            missed.push(format!("{what} {got:.1}{unit} >= {max}{unit}"));
        }
    }
    missed
}

/// The first three fields of `/proc/loadavg`.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".into(),
        |l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

/// CPU time of `pid` over `window` as a percentage of one core, and its memory at the end.
fn measure(pid: u32, window: Duration) -> Sample {
    let t0 = Instant::now();
    let c0 = cpu_ticks(pid);
    std::thread::sleep(window);
    let c1 = cpu_ticks(pid);
    let secs = t0.elapsed().as_secs_f64();
    let tick = ticks_per_second();
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kb = |key: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {status}"))
    };
    Sample {
        cpu_pct: (c1 - c0) as f64 / tick / secs * 100.0,
        rss_mb: kb("VmRSS:") / 1024.0,
        hwm_mb: kb("VmHWM:") / 1024.0,
    }
}

/// `utime + stime` of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // The fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

fn ticks_per_second() -> f64 {
    let out = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(100.0)
}

/// The peers with at least one successful record in the agent's spool.
fn measured_peers(probe: &Path, state: &Path) -> BTreeSet<String> {
    let out = Command::new(probe)
        .args(["results", "--json", "--state-dir"])
        .arg(state)
        .output()
        .expect("probe results");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["ok"] == true)
        .filter_map(|r| r["peer"].as_str().map(str::to_owned))
        .collect()
}

/// Whether a UDP socket in `host` is bound to `port`.
fn listening(host: &probe_lab::Host, port: u16) -> bool {
    let out = host
        .command("ss")
        .args(["-Hlun", &format!("sport = :{port}")])
        .output()
        .expect("ss");
    !String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

/// Waits for the load (bounded) and reads its report: packets sent and answered.
fn load_report(load: &mut probe_lab::Background, dir: &Path, duration: u64) -> (u64, u64) {
    let until = Instant::now() + Duration::from_secs(duration + 30);
    while load.try_wait().expect("wait load").is_none() {
        assert!(Instant::now() < until, "the load did not end");
        std::thread::sleep(Duration::from_millis(500));
    }
    let text = fs::read_to_string(dir.join("load.json")).unwrap_or_default();
    let r: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "no report from the load ({e}): {text}\n{}",
            fs::read_to_string(dir.join("load.err")).unwrap_or_default()
        )
    });
    let n = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("no {k} in {r}"));
    (n("sent"), n("received"))
}

fn agent_log(dir: &Path) -> String {
    let text = fs::read_to_string(dir.join("agent.out")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
