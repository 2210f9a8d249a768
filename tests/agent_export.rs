//! The agent's HTTP endpoint and its exports, in the testbed: agents in a `chain` of three
//! namespaces measure each other while `r1` drops every fifth test packet from `src` toward
//! `dst` (forward loss 0.2 for `src` toward `dst`, none elsewhere). The endpoints are read with
//! curl inside the namespaces; a real Prometheus in `r1` scrapes three agents and answers a
//! `PromQL` query with each agent's per-direction loss toward each peer; remote write queues
//! across an agent restart and arrives in that Prometheus; the NDJSON upload resumes after a
//! restart without losing or repeating a record.
// Counts and loss ratios from the agent are exact in f64 (integers, and 10 of 50 packets).
#![allow(clippy::float_cmp)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{output, probe, wait_tcp_listening};
use probe_lab::{Background, Host};
use serde_json::Value;

/// A scratch directory removed at the end of the test (also on failure).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("probe-export-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).expect("scratch dir");
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Starts an agent in `host` with `config`, its HTTP endpoint on the host's address port 8000.
fn start_agent(host: &Host, dir: &Path, name: &str, config: &str) -> (Background, PathBuf) {
    let file = dir.join(format!("{name}.toml"));
    fs::write(&file, config).expect("config");
    let log = dir.join(format!("{name}.out"));
    let out = fs::File::create(&log).expect("log file");
    let mut cmd = probe(host, &["agent", "--config"]);
    cmd.arg(&file)
        .env("PROBE_NAME", name)
        .env("PROBE_STATE_DIR", dir.join(format!("{name}-state")))
        .env("PROBE_HTTP", format!("{}:8000", host.ipv4()))
        .env("PROBE_INET", "4")
        .env_remove("RUST_LOG")
        .stdout(Stdio::from(out.try_clone().expect("dup")))
        .stderr(Stdio::from(out));
    let bg = host.spawn(&mut cmd).expect("start probe agent");
    wait_tcp_listening(host, 8000);
    (bg, log)
}

/// `curl` inside `host`: (HTTP status, body).
fn curl(host: &Host, url: &str, headers: &[&str]) -> (u16, String) {
    let mut cmd = host.command("curl");
    cmd.args(["-s", "-m", "5", "-w", "\n%{http_code}"]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = output(cmd.arg(url));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// The value of the series `name` whose labels include every `labels` pair, if exposed.
fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let rest = series.strip_prefix(name)?;
            if !(rest.is_empty() || rest.starts_with('{')) {
                return None;
            }
            labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
                .then(|| value.parse().ok())?
        })
}

fn wait_until<T>(secs: u64, what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) => assert!(
                Instant::now() < deadline,
                "{what}: not within {secs} s; last: {last}"
            ),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn a2a_config(test: &str, target: std::net::Ipv4Addr, extra: &str) -> String {
    format!(
        "[[tests]]\nname = \"{test}\"\nkind = \"a2a\"\ntarget = \"{target}\"\ninterval = \"4s\"\njitter = \"100ms\"\ncount = 50\npacket_interval = \"10ms\"\n{extra}"
    )
}

/// Drops every fifth STAMP test packet that `r1` forwards from `src` to `dst`.
fn drop_every_fifth(r1: &Host, src: std::net::Ipv4Addr, dst: std::net::Ipv4Addr) {
    r1.nft(&format!(
        "table inet lossy {{ chain drops {{ type filter hook forward priority 0; ip saddr {src} ip daddr {dst} udp dport 49153 numgen inc mod 5 == 0 drop;\n }}\n }}\n"
    ))
    .expect("nft loss rule");
}

#[test]
fn the_endpoints_report_identity_readiness_results_and_per_direction_metrics() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = probe_lab::topology::chain(1, &[]).expect("chain topology");
    let r1 = &lab.routers[0];
    let (src_ip, dst_ip) = (lab.src.ipv4(), lab.dst.ipv4());
    drop_every_fifth(r1, src_ip, dst_ip);
    let s = Scratch::new("endpoints");
    let (_src, _) = start_agent(&lab.src, &s.0, "src", &a2a_config("to-dst", dst_ip, ""));
    // src's first run cannot be over yet: with loss it waits 3 s for the lost replies.
    let (code, body) = curl(&lab.src, &format!("http://{src_ip}:8000/readyz"), &[]);
    assert_eq!(code, 503, "{body}");
    assert_eq!(
        body.trim(),
        "not ready: the first scheduled runs have not finished yet"
    );
    // dst also measures r1, where nothing answers: a failing test with a failure class.
    let dst_cfg =
        a2a_config("to-src", src_ip, "") + &a2a_config("to-r1", r1.ipv4(), "deadline = \"1s\"\n");
    let (_dst, dst_log) = start_agent(&lab.dst, &s.0, "dst", &dst_cfg);
    let base = format!("http://{src_ip}:8000");

    let (code, text) = curl(&lab.src, &base, &[]);
    assert_eq!(code, 200, "{text}");
    let (code, json) = curl(&lab.src, &base, &["Accept: application/json"]);
    assert_eq!(code, 200, "{json}");
    let info: Value = serde_json::from_str(&json).expect("GET / as JSON");
    let fingerprint = info["fingerprint"].as_str().expect("fingerprint");
    assert_eq!(
        text.lines().next(),
        Some(fingerprint),
        "the first line is the fingerprint"
    );
    assert!(fingerprint.len() >= 64, "{fingerprint}");
    assert_eq!(info["name"], "src");
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        text.contains(&format!("id: {}", info["id"].as_str().expect("id"))),
        "{text}"
    );
    assert_eq!(curl(&lab.src, &format!("{base}/healthz"), &[]).0, 200);
    assert_eq!(curl(&lab.src, &format!("{base}/nope"), &[]).0, 404);

    wait_until(15, "src ready", || {
        let (code, body) = curl(&lab.src, &format!("{base}/readyz"), &[]);
        if code == 200 {
            Ok(())
        } else {
            assert_eq!(code, 503, "{body}");
            assert!(body.contains("not ready: "), "{body}");
            Err(body)
        }
    });

    // A successful run toward dst, then the numbers.
    let peer_dst = format!("{dst_ip}:49153");
    let metrics = wait_until(20, "a run of src toward dst", || {
        let (_, m) = curl(&lab.src, &format!("{base}/metrics"), &[]);
        let runs = sample(
            &m,
            "probe_runs_total",
            &[("test", "to-dst"), ("peer", &peer_dst)],
        );
        if runs.unwrap_or(0.0) >= 1.0 {
            Ok(m)
        } else {
            Err(m)
        }
    });
    let labels = |d: &'static str| {
        [
            ("test", "to-dst"),
            ("peer", peer_dst.as_str()),
            ("direction", d),
        ]
    };
    let loss = |d| sample(&metrics, "probe_loss_ratio", &labels(d));
    assert_eq!(loss("forward"), Some(0.2), "{metrics}");
    assert_eq!(loss("reverse"), Some(0.0), "{metrics}");
    assert_eq!(loss("round_trip"), Some(0.2), "{metrics}");
    let ok = [
        ("test", "to-dst"),
        ("peer", peer_dst.as_str()),
        ("reason", ""),
    ];
    assert_eq!(
        sample(&metrics, "probe_success", &ok),
        Some(1.0),
        "{metrics}"
    );
    // Every received packet is observed once: 40 of 50 come back in each run.
    let runs = sample(&metrics, "probe_runs_total", &[("test", "to-dst")]).expect("runs");
    let rtt_count =
        sample(&metrics, "probe_rtt_seconds_count", &[("test", "to-dst")]).expect("rtt");
    assert_eq!(rtt_count, 40.0 * runs, "{metrics}");
    let fwd_count = sample(
        &metrics,
        "probe_one_way_delay_seconds_count",
        &labels("forward"),
    )
    .expect("forward delay histogram");
    assert_eq!(fwd_count, 40.0 * runs, "{metrics}");
    let inf = sample(
        &metrics,
        "probe_one_way_delay_seconds_bucket",
        &[("direction", "forward"), ("le", "+Inf")],
    );
    assert_eq!(inf, Some(fwd_count), "{metrics}");
    assert!(
        sample(&metrics, "probe_jitter_seconds", &labels("forward")).is_some(),
        "{metrics}"
    );

    // /results: the recorded runs, and a bad `since` is a 400 naming the problem.
    let (code, body) = curl(&lab.src, &format!("{base}/results?since=1h"), &[]);
    assert_eq!(code, 200, "{body}");
    let results: Vec<Value> = serde_json::from_str(&body).expect("results JSON");
    let to_dst = results.iter().filter(|r| r["test"] == "to-dst").count();
    assert!(to_dst as f64 >= runs, "{body}");
    let (code, body) = curl(
        &lab.src,
        &format!("{base}/results?since=yesterday-ish"),
        &[],
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("since"), "{body}");

    // The failing test toward r1: up = 0 with the class of its record as the reason.
    let dst_base = format!("http://{dst_ip}:8000");
    let (class, m) = wait_until(20, "a failed run toward r1", || {
        let (_, body) = curl(&lab.dst, &format!("{dst_base}/results"), &[]);
        let rs: Vec<Value> = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        let class = rs
            .iter()
            .rfind(|r| r["test"] == "to-r1" && r["ok"] == false)
            .and_then(|r| r["error_class"].as_str().map(str::to_owned))
            .ok_or_else(|| {
                format!(
                    "{body}\n{}",
                    fs::read_to_string(&dst_log).unwrap_or_default()
                )
            })?;
        let (_, m) = curl(&lab.dst, &format!("{dst_base}/metrics"), &[]);
        Ok((class, m))
    });
    let down = sample(
        &m,
        "probe_success",
        &[("test", "to-r1"), ("reason", &class)],
    );
    assert_eq!(down, Some(0.0), "{m}");
}

/// A Prometheus server in `host` listening on `listen` (port 9090) with `config`; killed on
/// drop.
fn start_prometheus(
    host: &Host,
    dir: &Path,
    config: &str,
    listen: &str,
    extra: &[&str],
) -> Background {
    let file = dir.join("prometheus.yml");
    fs::write(&file, config).expect("prometheus config");
    let log = fs::File::create(dir.join("prometheus.out")).expect("log");
    let mut cmd = host.command("prometheus");
    cmd.arg(format!("--config.file={}", file.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={listen}"))
        .args(extra)
        .stdout(Stdio::from(log.try_clone().expect("dup")))
        .stderr(Stdio::from(log));
    let bg = host
        .spawn(&mut cmd)
        .expect("start prometheus (Debian package `prometheus`)");
    wait_tcp_listening(host, 9090);
    bg
}

/// A `PromQL` instant query through the Prometheus HTTP API in `host`: the result vector.
fn promql(host: &Host, query: &str) -> Result<Vec<Value>, String> {
    promql_at(host, "127.0.0.1", query, None)
}

/// A `PromQL` instant query to the Prometheus at `ip`:9090 in `host`, at Unix time `at`.
fn promql_at(host: &Host, ip: &str, query: &str, at: Option<f64>) -> Result<Vec<Value>, String> {
    let mut cmd = host.command("curl");
    cmd.args(["-s", "-m", "5", "-G", "--data-urlencode"])
        .arg(format!("query={query}"))
        .arg(format!("http://{ip}:9090/api/v1/query"));
    if let Some(t) = at {
        cmd.arg("--data-urlencode").arg(format!("time={t:.3}"));
    }
    let out = output(&mut cmd);
    let body = String::from_utf8_lossy(&out.stdout).into_owned();
    let v: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    if v["status"] != "success" {
        return Err(body);
    }
    Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
}

fn has_prometheus() -> bool {
    Command::new("prometheus")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_real_prometheus_scrapes_each_agents_per_direction_loss_toward_its_peer() {
    if !probe_lab::require_root() {
        return;
    }
    assert!(
        has_prometheus(),
        "the Debian package `prometheus` is needed (scripts/test-all.sh installs it)"
    );
    let lab = probe_lab::topology::chain(1, &[]).expect("chain topology");
    let r1 = &lab.routers[0];
    let ips = [lab.src.ipv4(), r1.ipv4(), lab.dst.ipv4()];
    drop_every_fifth(r1, ips[0], ips[2]);
    let s = Scratch::new("prometheus");
    // Three agents, each with one test toward each of the two others.
    let hosts = [&lab.src, r1, &lab.dst];
    let names = ["src", "r1", "dst"];
    let mut agents = Vec::new();
    let mut want = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let mut config = String::new();
        for (j, &peer) in ips.iter().enumerate().filter(|(j, _)| *j != i) {
            config += &a2a_config(&format!("mesh-{}", names[j]), peer, "");
            for d in ["forward", "reverse"] {
                // Only src's packets toward dst cross the dropping rule.
                let loss = if i == 0 && j == 2 && d == "forward" {
                    0.2
                } else {
                    0.0
                };
                want.push((format!("{}:8000", ips[i]), format!("{peer}:49153"), d, loss));
            }
        }
        agents.push(start_agent(host, &s.0, names[i], &config));
    }
    let targets: Vec<String> = ips.iter().map(|ip| format!("'{ip}:8000'")).collect();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: probe\n    static_configs:\n      - targets: [{}]\n",
        targets.join(", ")
    );
    let _prom = start_prometheus(r1, &s.0, &config, "127.0.0.1:9090", &[]);
    want.sort_by(|a, b| (&a.0, &a.1, a.2).cmp(&(&b.0, &b.1, b.2)));
    let query = "probe_loss_ratio{job=\"probe\",test=~\"mesh-.*\",direction!=\"round_trip\"}";
    wait_until(
        20,
        "Prometheus answers the loss of all three agents",
        || {
            let result = promql(r1, query)?;
            let mut got: Vec<(String, String, String, f64)> = result
                .iter()
                .map(|r| {
                    let m = &r["metric"];
                    let s = |k: &str| m[k].as_str().unwrap_or_default().to_owned();
                    let v = r["value"][1]
                        .as_str()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(f64::NAN);
                    (s("instance"), s("peer"), s("direction"), v)
                })
                .collect();
            got.sort_by(|a, b| (&a.0, &a.1, &a.2).cmp(&(&b.0, &b.1, &b.2)));
            let ok = got.len() == want.len()
                && got.iter().zip(&want).all(|(g, w)| {
                    g.0 == w.0 && g.1 == w.1 && g.2 == w.2 && (g.3 - w.3).abs() < 1e-9
                });
            if ok { Ok(()) } else { Err(format!("{got:?}")) }
        },
    );
}

fn queued(state: &Path) -> usize {
    fs::read_dir(state.join("remote-write")).map_or(0, |d| {
        d.filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".snappy"))
            .count()
    })
}

#[test]
fn remote_write_buffers_across_a_restart_and_arrives_in_prometheus() {
    if !probe_lab::require_root() {
        return;
    }
    assert!(
        has_prometheus(),
        "the Debian package `prometheus` is needed"
    );
    let lab = probe_lab::topology::chain(1, &[]).expect("chain topology");
    let r1 = &lab.routers[0];
    let (src_ip, dst_ip, r1_ip) = (lab.src.ipv4(), lab.dst.ipv4(), r1.ipv4());
    drop_every_fifth(r1, src_ip, dst_ip);
    let s = Scratch::new("remote-write");
    let state = s.0.join("src-state");
    let config = a2a_config(
        "mesh",
        dst_ip,
        &format!("[export.remote_write]\nurl = \"http://{r1_ip}:9090/api/v1/write\"\n"),
    );
    let (_dst, _) = start_agent(&lab.dst, &s.0, "dst", &a2a_config("mesh", src_ip, ""));
    // No receiver yet: snapshots with a result in them wait on disk.
    let (src, src_log) = start_agent(&lab.src, &s.0, "src", &config);
    let base = format!("http://{src_ip}:8000");
    wait_until(20, "a result in src's metrics", || {
        let (_, m) = curl(&lab.src, &format!("{base}/metrics"), &[]);
        sample(&m, "probe_runs_total", &[("test", "mesh")])
            .map(|_| ())
            .ok_or(m)
    });
    let before = queued(&state);
    wait_until(15, "a snapshot with the result queued", || {
        if queued(&state) > before {
            Ok(())
        } else {
            Err(fs::read_to_string(&src_log).unwrap_or_default())
        }
    });
    #[allow(clippy::cast_precision_loss)]
    let queued_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let out = src.terminate(Duration::from_secs(10)).expect("stop src");
    assert_eq!(out.status.code(), Some(0));
    let waiting = queued(&state);
    assert!(waiting >= 1, "{waiting} snapshots queued");

    let _prom = start_prometheus(
        r1,
        &s.0,
        "global:\n  scrape_interval: 1m\n",
        &format!("{r1_ip}:9090"),
        &["--web.enable-remote-write-receiver"],
    );
    let (_src, _) = start_agent(&lab.src, &s.0, "src", &config);
    // The sample from before the restart is in Prometheus: the queue survived it.
    let query = "probe_loss_ratio{job=\"probe-agent\",instance=\"src\",test=\"mesh\",direction=\"forward\"}";
    wait_until(20, "the queued snapshots arrive", || {
        let r = promql_at(r1, &r1_ip.to_string(), query, Some(queued_at))?;
        let v: Vec<f64> = r
            .iter()
            .filter_map(|x| x["value"][1].as_str().and_then(|v| v.parse().ok()))
            .collect();
        if v == [0.2] {
            Ok(())
        } else {
            Err(format!("{r:?}"))
        }
    });
    wait_until(15, "the queue drained", || {
        if queued(&state) == 0 {
            Ok(())
        } else {
            Err(format!("{} left", queued(&state)))
        }
    });
}

fn seqs(records: &[Value]) -> Vec<u64> {
    records.iter().filter_map(|r| r["seq"].as_u64()).collect()
}

#[test]
fn the_upload_retries_and_resumes_after_a_restart_without_loss_or_repeats() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = probe_lab::topology::chain(1, &[]).expect("chain topology");
    let (src_ip, dst_ip) = (lab.src.ipv4(), lab.dst.ipv4());
    let s = Scratch::new("upload");
    let collector = common::collector::start(&lab.dst, 2, None);
    let config = a2a_config(
        "mesh",
        dst_ip,
        &format!(
            "[export.upload]\nurl = \"http://{}/ingest\"\n",
            collector.addr
        ),
    )
    .replace("interval = \"4s\"", "interval = \"1s\"");
    let (_dst, _) = start_agent(&lab.dst, &s.0, "dst", &a2a_config("mesh", src_ip, ""));
    let (src, log) = start_agent(&lab.src, &s.0, "src", &config);
    let received = |n: usize| {
        wait_until(20, &format!("{n} records uploaded"), || {
            let got = collector.records.lock().expect("records").len();
            if got >= n {
                Ok(())
            } else {
                Err(format!(
                    "{got}: {}",
                    fs::read_to_string(&log).unwrap_or_default()
                ))
            }
        });
    };
    received(3);
    assert!(
        collector.requests.load(std::sync::atomic::Ordering::SeqCst) > 2,
        "the refused batches were retried"
    );
    let out = src.terminate(Duration::from_secs(10)).expect("stop src");
    assert_eq!(out.status.code(), Some(0));
    let before = collector.records.lock().expect("records").len();
    let (src, _) = start_agent(&lab.src, &s.0, "src", &config);
    received(before + 3);
    let out = src.terminate(Duration::from_secs(10)).expect("stop src");
    assert_eq!(out.status.code(), Some(0));
    // Every spooled record arrived exactly once, in order.
    let spooled = output(
        Command::new(probe_suite::probe_bin())
            .args(["results", "--json", "--state-dir"])
            .arg(s.0.join("src-state")),
    );
    let spooled: Vec<Value> = String::from_utf8_lossy(&spooled.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("record"))
        .collect();
    let got = seqs(&collector.records.lock().expect("records"));
    let want: Vec<u64> = seqs(&spooled).into_iter().take(got.len()).collect();
    assert_eq!(got, want, "each record once, oldest first");
    assert_eq!(got, (0..got.len() as u64).collect::<Vec<_>>());
}
