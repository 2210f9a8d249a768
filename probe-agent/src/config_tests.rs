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
fn syntax_errors_name_the_line() {
    let (_d, path) = write("name = \"x\"\n[http\nlisten = 1\n");
    let p = Config::load(Some(&path), &Env::new()).expect_err("invalid");
    assert_eq!(p.0.len(), 1, "{p}");
    assert!(matches!(p.0[0].at, Where::File { line: 2, .. }), "{p}");
}
