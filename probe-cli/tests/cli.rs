//! Command-line surface: help, version, completions, and honest refusals.

use std::process::Command;

fn probe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_probe"))
}

#[test]
fn version_and_help() {
    let out = probe().arg("--version").output().expect("run probe");
    assert!(out.status.success());
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(v.starts_with("probe "), "{v}");
    let out = probe().arg("--help").output().expect("run probe");
    let h = String::from_utf8_lossy(&out.stdout);
    for sub in [
        "serve",
        "a2a",
        "trace",
        "ping",
        "dns",
        "agent",
        "completions",
    ] {
        assert!(h.contains(sub), "help lacks {sub}: {h}");
    }
}

#[test]
fn completions_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_probe()"),
        ("zsh", "#compdef probe"),
        ("fish", "complete -c probe"),
    ] {
        let out = probe()
            .args(["completions", shell])
            .output()
            .expect("run probe");
        assert!(out.status.success(), "{shell}");
        let s = String::from_utf8_lossy(&out.stdout);
        assert!(s.contains(marker), "{shell} completions lack {marker}");
        assert!(s.contains("a2a"), "{shell} completions lack a2a");
    }
}

/// Runs `probe ARGS` and returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = probe().args(args).output().expect("run probe");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Out-of-range rates and durations are refused at the edge (exit 2, naming the flag and
/// the range), not a panic or an overflow inside.
#[test]
fn a2a_bad_rates_and_durations_are_refused() {
    for (args, flag, range) in [
        (vec!["a2a", "--rate", "1e-30"], "--rate", "outside"),
        (vec!["a2a", "--rate", "1e30"], "--rate", "outside"),
        (vec!["a2a", "--wait", "530y"], "--wait", "outside 0s..=1h"),
        (vec!["a2a", "-d", "530y"], "--duration", "outside"),
        (vec!["a2a", "-i", "530y"], "--interval", "outside"),
        (
            vec!["a2a", "--report-interval", "1ms"],
            "--report-interval",
            "outside",
        ),
        (
            vec!["trace", "127.0.0.1", "-w", "530y"],
            "--wait",
            "outside 0s..=1h",
        ),
    ] {
        let (code, _, err) = run(&args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(flag) && err.contains(range), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// `--report-interval` prints a line per interval, and `--json` carries them in `intervals`,
/// with the schedule error's median and 99th percentile.
#[test]
fn a2a_interval_reports() {
    let args = [
        "a2a",
        "-c",
        "60",
        "-i",
        "10ms",
        "--report-interval",
        "200ms",
    ];
    let (code, out, err) = run(&args);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("interval (s)"), "{out}");
    let interval_lines = lines.iter().filter(|l| l.starts_with("0.")).count();
    assert!((3..=4).contains(&interval_lines), "{out}");
    assert!(out.contains("schedule error: mean"), "{out}");
    assert!(out.contains("p99"), "{out}");

    let (code, out, err) = run(&[&args[..], &["--json"]].concat());
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let intervals = v["intervals"].as_array().expect("intervals");
    assert!((3..=4).contains(&intervals.len()), "{v}");
    let sent: u64 = intervals.iter().filter_map(|i| i["sent"].as_u64()).sum();
    assert_eq!(sent, 60);
    assert!(v["schedule_error_us"]["p50"].is_number(), "{v}");
    assert!(v["schedule_error_us"]["p99"].is_number(), "{v}");

    // A flood has no schedule: null.
    let (code, out, err) = run(&["a2a", "-c", "2000", "--rate", "max", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert!(v["schedule_error_us"]["p50"].is_null(), "{v}");
    assert!(v["intervals"].as_array().is_some_and(Vec::is_empty));
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// The largest count floods in constant memory: the resident size after 1 s and after 3 s
/// of sending are the same within 4 MiB (per-packet state would add megabytes a second).
#[test]
fn a2a_largest_count_floods_in_constant_memory() {
    let mut child = probe()
        .args(["a2a", "--count", "4294967294", "--rate", "max", "--quiet"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn probe");
    std::thread::sleep(std::time::Duration::from_secs(1));
    let early = rss_kib(child.id());
    std::thread::sleep(std::time::Duration::from_secs(2));
    let late = rss_kib(child.id());
    let still_running = child.try_wait().expect("wait").is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(still_running, "the flood ended early");
    assert!(
        late < early + 4 * 1024,
        "resident size grew from {early} KiB to {late} KiB"
    );
}
