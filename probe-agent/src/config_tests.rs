use super::*;

fn write(text: &str) -> (tempdir::Dir, PathBuf) {
    let dir = tempdir::Dir::new();
    let path = dir.0.join("agent.toml");
    std::fs::write(&path, text).expect("write");
    (dir, path)
}

mod tempdir {
    /// A directory removed on drop.
    pub(super) struct Dir(pub(super) std::path::PathBuf);
    impl Dir {
        pub(super) fn new() -> Self {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "probe-agent-config-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&p).expect("mkdir");
            Self(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn env(pairs: &[(&str, &str)]) -> Env {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const GOOD: &str = r#"
name = "edge-1"
tags = ["dc1", "rack7"]
[http]
listen = "127.0.0.1:8001"
[mesh]
max_peers = 5
[[tests]]
name = "to-core"
kind = "a2a"
target = "core.example.net"
interval = "10s"
count = 100
"#;

#[test]
fn a_good_file_with_env_overrides() {
    let (_d, path) = write(GOOD);
    let cfg = Config::load(
        Some(&path),
        &env(&[
            ("PROBE_TAGS", "a, b"),
            ("PROBE_INET", "6"),
            ("PROBE_TOKEN", "s3cret"),
            ("PROBE_DEBUG", "yes"),
        ]),
    )
    .expect("valid");
    assert_eq!(cfg.name, "edge-1");
    assert_eq!(cfg.tags, ["a", "b"]);
    assert_eq!(cfg.inet, Inet::V6);
    assert!(cfg.debug);
    assert_eq!(cfg.http_listen, "127.0.0.1:8001".parse().expect("addr"));
    assert_eq!(cfg.mesh.max_peers, Some(5));
    let t = &cfg.tests[0];
    assert_eq!(
        (t.kind, t.count, t.interval),
        (Kind::A2a, 100, Duration::from_secs(10))
    );
    assert_eq!(
        (t.deadline, t.jitter),
        (Duration::from_secs(10), Duration::from_secs(1))
    );
    let json = serde_json::to_string(&cfg).expect("json");
    assert!(
        !json.contains("s3cret") && json.contains("<redacted>"),
        "{json}"
    );
}

#[test]
fn every_problem_is_listed_with_its_line_or_variable() {
    let (_d, path) = write(
        r#"name = "x"
colour = "blue"
[[tests]]
name = "t"
kind = "a2z"
target = "h:0"
intervall = "10s"
count = -3
[mesh]
max_peers = "many"
"#,
    );
    let p = Config::load(
        Some(&path),
        &env(&[("PROBE_INET", "5"), ("PROBE_HTTP", "nowhere")]),
    )
    .expect_err("invalid");
    let text = p.to_string();
    let file = path.display().to_string();
    for want in [
        format!("{file}:2: colour: unknown key"),
        format!("{file}:7: tests[0].intervall: unknown key (hint: did you mean `interval`?)"),
        format!("{file}:5: tests[0].kind: the agent cannot run kind `a2z`"),
        format!("{file}:8: tests[0].count: expected a whole number"),
        "`interval` is missing".to_owned(),
        format!("{file}:10: mesh.max_peers: expected a whole number"),
        format!("{file}:6: tests[0].target: `h:0` is not HOST[:PORT]"),
        "PROBE_INET (environment): `5` is not a family".to_owned(),
        "PROBE_HTTP (environment): `nowhere` is not ADDRESS:PORT".to_owned(),
    ] {
        assert!(text.contains(&want), "missing {want:?} in\n{text}");
    }
    assert_eq!(p.0.len(), 9, "{text}");
}

#[test]
fn the_responders_hold_from_file_and_environment() {
    let (_d, path) = write(GOOD);
    let default = Config::load(Some(&path), &Env::new()).expect("valid");
    assert_eq!(default.responder_coalesce, Duration::from_millis(1));
    let (_d, path) = write(&format!("{GOOD}[responder]\ncoalesce = \"250us\"\n"));
    let file = Config::load(Some(&path), &Env::new()).expect("valid");
    assert_eq!(file.responder_coalesce, Duration::from_micros(250));
    let json = serde_json::to_value(&file).expect("json");
    assert_eq!(json["responder_coalesce"], "250us", "{json}");
    let env_wins =
        Config::load(Some(&path), &env(&[("PROBE_RESPONDER_COALESCE", "0s")])).expect("valid");
    assert_eq!(env_wins.responder_coalesce, Duration::ZERO);
    let (_d, bad) = write(&format!("{GOOD}[responder]\ncoalesce = \"1s\"\n"));
    let p = Config::load(Some(&bad), &env(&[("PROBE_RESPONDER_COALESCE", "soon")]))
        .expect_err("invalid");
    let text = p.to_string();
    for want in [
        format!(
            "{}:{}: responder.coalesce: `1s` is longer than the 10ms the responder may hold requests",
            bad.display(),
            GOOD.lines().count() + 2
        ),
        "PROBE_RESPONDER_COALESCE (environment): `soon` is not a duration".to_owned(),
    ] {
        assert!(text.contains(&want), "missing {want:?} in\n{text}");
    }
    assert_eq!(p.0.len(), 2, "{text}");
}

#[test]
fn syntax_errors_name_the_line() {
    let (_d, path) = write("name = \"x\"\n[http\nlisten = 1\n");
    let p = Config::load(Some(&path), &Env::new()).expect_err("invalid");
    assert_eq!(p.0.len(), 1, "{p}");
    assert!(matches!(p.0[0].at, Where::File { line: 2, .. }), "{p}");
}

#[test]
fn ping_and_dns_tests_with_their_keys() {
    let (_d, path) = write(
        r#"[[tests]]
name = "ping-both"
kind = "ping"
targets = ["10.0.0.2", "mesh.lab.test"]
interval = "5s"
count = 20
timeout = "500ms"
[[tests]]
name = "ping-tcp"
kind = "ping"
target = "10.0.0.3"
protocol = "tcp"
interval = "5s"
[[tests]]
name = "resolve"
kind = "dns"
target = "www.lab.test"
record_type = "aaaa"
servers = ["10.0.0.53", "10.0.0.54:5353"]
tcp = true
interval = "30s"
"#,
    );
    let cfg = Config::load(Some(&path), &Env::new()).expect("valid");
    let [both, tcp, dns] = &cfg.tests[..] else {
        panic!("three tests: {:?}", cfg.tests);
    };
    assert_eq!(both.kind, Kind::Ping);
    assert_eq!(both.all_targets(), ["10.0.0.2", "mesh.lab.test"]);
    assert_eq!(both.protocol, PingProtocol::Icmp);
    assert_eq!((both.count, both.timeout), (20, Duration::from_millis(500)));
    assert_eq!(tcp.all_targets(), ["10.0.0.3"]);
    assert_eq!((tcp.protocol, tcp.port), (PingProtocol::Tcp, 80));
    assert_eq!(dns.kind, Kind::Dns);
    assert_eq!(dns.record_type, "AAAA");
    assert_eq!(dns.servers, ["10.0.0.53", "10.0.0.54:5353"]);
    assert!(dns.tcp);
    assert_eq!((dns.count, dns.timeout), (1, Duration::from_secs(2)));
    let json = serde_json::to_value(&cfg).expect("json");
    assert_eq!(json["tests"][0]["targets"][1], "mesh.lab.test");
    assert_eq!(json["tests"][2]["record_type"], "AAAA");
}

#[test]
fn ping_and_dns_keys_are_checked_with_the_rest() {
    let (_d, path) = write(
        r#"[[tests]]
name = "p"
kind = "ping"
target = "10.0.0.2"
targets = ["10.0.0.3", "h:0"]
protocol = "sctp"
interval = "5s"
timeout = "soon"
[[tests]]
name = "d"
kind = "dns"
target = "not a name"
record_type = "AXFR"
servers = ["10.0.0.53:99999"]
protocol = "udp"
interval = "5s"
[[tests]]
name = "a"
kind = "a2a"
target = "10.0.0.2"
interval = "5s"
record_type = "A"
"#,
    );
    let p = Config::load(Some(&path), &Env::new()).expect_err("invalid");
    let text = p.to_string();
    let file = path.display().to_string();
    for want in [
        format!("{file}:5: tests[0].targets: both `target` and `targets` are given"),
        format!("{file}:5: tests[0].targets: `h:0` is not HOST[:PORT]"),
        format!(
            "{file}:6: tests[0].protocol: unknown protocol `sctp` (hint: use icmp, udp or tcp)"
        ),
        format!("{file}:8: tests[0].timeout: `soon` is not a duration"),
        format!("{file}:12: tests[1].target: `not a name` is not a name to look up"),
        format!("{file}:13: tests[1].record_type: `AXFR` is not a record type"),
        format!("{file}:14: tests[1].servers: `10.0.0.53:99999`"),
        format!(
            "{file}:15: tests[1].protocol: a dns test does not take `protocol` (hint: `protocol` is for ping tests"
        ),
        format!("{file}:22: tests[2].record_type: a a2a test does not take `record_type`"),
    ] {
        assert!(text.contains(&want), "missing {want:?} in\n{text}");
    }
    assert_eq!(p.0.len(), 9, "{text}");
}

#[test]
fn log_rotation_limits_from_the_file_and_the_environment() {
    let defaults = Config::load(None, &Env::new()).expect("valid");
    assert_eq!(
        (defaults.log_max_file_bytes, defaults.log_keep_files),
        (16 << 20, 4)
    );
    let (_d, path) = write("log_max_file_bytes = 4096\nlog_keep_files = 2\n");
    let cfg = Config::load(Some(&path), &Env::new()).expect("valid");
    assert_eq!((cfg.log_max_file_bytes, cfg.log_keep_files), (4096, 2));
    let cfg = Config::load(
        Some(&path),
        &env(&[
            ("PROBE_LOG_MAX_FILE_BYTES", "65536"),
            ("PROBE_LOG_KEEP_FILES", "9"),
        ]),
    )
    .expect("valid");
    assert_eq!((cfg.log_max_file_bytes, cfg.log_keep_files), (65_536, 9));

    let (_d, zero) = write("log_keep_files = 0\n");
    let p = Config::load(Some(&zero), &env(&[("PROBE_LOG_MAX_FILE_BYTES", "10mb")]))
        .expect_err("invalid");
    let text = p.to_string();
    for want in [
        "log_keep_files: must be at least 1".to_owned(),
        "PROBE_LOG_MAX_FILE_BYTES (environment): `10mb` is not a whole number".to_owned(),
    ] {
        assert!(text.contains(&want), "missing {want:?} in\n{text}");
    }
    assert_eq!(p.0.len(), 2, "{text}");
}

#[test]
fn behind_nat_from_the_file_and_the_environment() {
    let (_d, path) = write(
        &format!("{GOOD}\n[mesh]\nbehind_nat = true\n").replace("[mesh]\nmax_peers = 5\n", ""),
    );
    let cfg = Config::load(Some(&path), &env(&[])).expect("valid");
    assert!(cfg.mesh.behind_nat);
    let cfg = Config::load(Some(&path), &env(&[("PROBE_BEHIND_NAT", "no")])).expect("valid");
    assert!(!cfg.mesh.behind_nat);
    let (_d2, plain) = write(GOOD);
    let cfg = Config::load(Some(&plain), &env(&[("PROBE_BEHIND_NAT", "yes")])).expect("valid");
    assert!(cfg.mesh.behind_nat);
    let p =
        Config::load(Some(&plain), &env(&[("PROBE_BEHIND_NAT", "perhaps")])).expect_err("invalid");
    assert!(
        p.to_string()
            .contains("PROBE_BEHIND_NAT (environment): `perhaps` is not yes or no"),
        "{p}"
    );
}

#[test]
fn a2a_proto_picks_quic_on_the_control_port_and_is_checked() {
    let (_d, path) = write(
        r#"[[tests]]
name = "q"
kind = "a2a"
proto = "QUIC"
target = "10.0.0.2"
interval = "5s"
[[tests]]
name = "s"
kind = "a2a"
target = "10.0.0.2"
interval = "5s"
"#,
    );
    let cfg = Config::load(Some(&path), &Env::new()).expect("valid");
    assert_eq!(
        (cfg.tests[0].proto, cfg.tests[0].port),
        (A2aProto::Quic, 49152)
    );
    assert_eq!(
        (cfg.tests[1].proto, cfg.tests[1].port),
        (A2aProto::Udp, 49153)
    );
    let json = serde_json::to_value(&cfg).expect("json");
    assert_eq!(json["tests"][0]["proto"], "quic");
    let (_d, path) = write(
        r#"[[tests]]
name = "q"
kind = "a2a"
proto = "tcp"
target = "10.0.0.2"
interval = "5s"
[[tests]]
name = "p"
kind = "ping"
proto = "quic"
target = "10.0.0.2"
interval = "5s"
"#,
    );
    let text = Config::load(Some(&path), &Env::new())
        .expect_err("invalid")
        .to_string();
    let file = path.display().to_string();
    for want in [
        format!(
            "{file}:4: tests[0].proto: unknown a2a proto `tcp` (hint: use udp (STAMP) or quic)"
        ),
        format!("{file}:10: tests[1].proto: a ping test does not take `proto`"),
    ] {
        assert!(text.contains(&want), "missing {want:?} in\n{text}");
    }
}
