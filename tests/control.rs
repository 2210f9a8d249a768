//! The control plane (49152/udp, QUIC) end to end on loopback: `probe serve` with its control
//! listener, `probe control-ping` (hidden client subcommand) and the library client.
//!
//! Each loopback test runs its own responder on its own pair of loopback ports, with temporary
//! state directories for the server (identity) and the client (known peers). One test runs in
//! the netns testbed, to check the default dual-stack listener on 49152 over IPv4 and IPv6.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use probe_core::control::messages::{ErrorCode, HEADER_LEN, MAX_FRAME_LEN, Message, encode};
use probe_core::control::{ClientConfig, Fingerprint, PinPolicy, Token, connect, handshake};
use serde_json::Value;

/// A temporary directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("probe-control-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `probe serve` on 127.0.0.1, killed when dropped.
struct Server {
    child: Option<Child>,
    fingerprint: Fingerprint,
    control: SocketAddr,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `probe serve --json` with the STAMP port `port + 1` and the control port `port`,
    /// and waits for the control plane's start line.
    fn start(port: u16, state: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(probe_suite::probe_bin())
            .args(["serve", "--json", "--listen", "127.0.0.1", "--port"])
            .arg((port + 1).to_string())
            .arg("--control-port")
            .arg(port.to_string())
            .arg("--state-dir")
            .arg(state)
            .args(extra)
            .env_remove("PROBE_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start probe serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let fingerprint = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(10))
                .expect("probe serve prints its control plane within 10 s");
            if let Some(rest) = line.split("identity ").nth(1) {
                let fp = rest.split_whitespace().next().expect("fingerprint");
                break fp.parse::<Fingerprint>().expect("fingerprint parses");
            }
        };
        Server {
            child: Some(child),
            fingerprint,
            control: SocketAddr::from(([127, 0, 0, 1], port)),
            stderr: rx,
        }
    }

    /// A library client configuration for this server, its identity pinned.
    fn client_config(&self) -> ClientConfig {
        ClientConfig::new(
            self.control,
            self.control.to_string(),
            PinPolicy::Fingerprint(self.fingerprint),
        )
    }

    /// Stops with SIGTERM; returns the `--json` counters.
    fn stop(mut self) -> Value {
        let child = self.child.take().expect("running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "probe serve failed: {out:?}");
        serde_json::from_slice(&out.stdout).expect("counters JSON")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        while self.stderr.try_recv().is_ok() {}
    }
}

/// A runtime for the library client.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// `probe control-ping 127.0.0.1:PORT ARGS` with the client state directory `state`.
fn ping(port: u16, state: &Path, args: &[&str]) -> Output {
    Command::new(probe_suite::probe_bin())
        .arg("control-ping")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--state-dir")
        .arg(state)
        .args(["--json", "--timeout", "5s"])
        .args(args)
        .env_remove("PROBE_TOKEN")
        .output()
        .expect("run probe control-ping")
}

fn ping_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "control-ping failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn identity_persists_and_a_changed_one_is_refused_naming_both() {
    const PORT: u16 = 42_110;
    let (srv_state, cli_state) = (TempDir::new("id-srv"), TempDir::new("id-cli"));
    let server = Server::start(PORT, &srv_state.0, &[]);
    let first = server.fingerprint;
    let v = ping_json(&ping(PORT, &cli_state.0, &[]));
    assert_eq!(v["fingerprint"], first.to_string());
    assert_eq!(v["first_use"], true);
    assert_eq!(v["version"], 1);
    let known = cli_state.0.join("known-peers");
    let text = std::fs::read_to_string(&known).expect("known-peers written on first use");
    assert!(
        text.contains(&format!("127.0.0.1:{PORT} {first}")),
        "{text}"
    );
    server.stop();

    // Restart on the same state directory: same identity, and the pin is honoured.
    let server = Server::start(PORT, &srv_state.0, &[]);
    assert_eq!(server.fingerprint, first);
    let v = ping_json(&ping(PORT, &cli_state.0, &[]));
    assert_eq!(
        (v["fingerprint"].as_str(), v["first_use"].as_bool()),
        (Some(&*first.to_string()), Some(false))
    );
    // An explicit pin of the right key works without the known-peers file.
    let other_cli = TempDir::new("id-cli2");
    let fp = first.to_string();
    ping_json(&ping(PORT, &other_cli.0, &["--peer-fingerprint", &fp]));
    assert!(!other_cli.0.join("known-peers").exists());
    server.stop();

    // The state directory is lost: a new identity, refused by the client that pinned the old.
    std::fs::remove_dir_all(&srv_state.0).expect("remove server state");
    let server = Server::start(PORT, &srv_state.0, &[]);
    let second = server.fingerprint;
    assert_ne!(second, first);
    let out = ping(PORT, &cli_state.0, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(
        e.contains(&first.to_string()) && e.contains(&second.to_string()),
        "{e}"
    );
    assert!(e.contains(&known.display().to_string()), "{e}");
    // The known-peers file still holds the old pin.
    assert!(
        std::fs::read_to_string(&known)
            .expect("kept")
            .contains(&first.to_string())
    );
    // An explicit wrong pin names both too.
    let out = ping(PORT, &other_cli.0, &["--peer-fingerprint", &fp]);
    assert_eq!(out.status.code(), Some(4));
    let e = stderr(&out);
    assert!(e.contains(&fp) && e.contains(&second.to_string()), "{e}");
    let counters = server.stop();
    assert_eq!(counters["control"]["welcomed"], 0);
}

#[test]
fn corrupted_identity_stops_the_server_naming_the_file() {
    let state = TempDir::new("corrupt");
    std::fs::create_dir_all(&state.0).expect("dir");
    let file = state.0.join("control-identity.pem");
    std::fs::write(&file, "not a key\n").expect("write");
    let out = Command::new(probe_suite::probe_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1",
            "--port",
            "42121",
            "--control-port",
            "42120",
        ])
        .arg("--state-dir")
        .arg(&state.0)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(
        e.contains(&file.display().to_string()) && e.contains("corrupted"),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&file).expect("kept"), "not a key\n");
}

#[test]
fn token_is_required_and_refusals_are_counted() {
    const PORT: u16 = 42_130;
    let (srv_state, cli_state) = (TempDir::new("tok-srv"), TempDir::new("tok-cli"));
    let token_file = srv_state.0.with_extension("token");
    std::fs::write(&token_file, "s3cret\n").expect("token file");
    let server = Server::start(
        PORT,
        &srv_state.0,
        &["--token-file", token_file.to_str().expect("utf8")],
    );
    for args in [&[][..], &["--token", "wrong"][..]] {
        let out = ping(PORT, &cli_state.0, args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
        let e = stderr(&out);
        assert!(e.contains("unauthorized"), "{e}");
        assert!(e.contains("--token") && e.contains("PROBE_TOKEN"), "{e}");
    }
    ping_json(&ping(PORT, &cli_state.0, &["--token", "s3cret"]));
    let out = Command::new(probe_suite::probe_bin())
        .args([
            "control-ping",
            &format!("127.0.0.1:{PORT}"),
            "--json",
            "--state-dir",
        ])
        .arg(&cli_state.0)
        .env("PROBE_TOKEN", "s3cret")
        .output()
        .expect("run");
    ping_json(&out);
    let counters = server.stop();
    let c = &counters["control"];
    assert_eq!(
        (c["unauthorized"].as_u64(), c["welcomed"].as_u64()),
        (Some(2), Some(2)),
        "{c}"
    );
    let _ = std::fs::remove_file(&token_file);
}

#[test]
fn another_protocol_version_gets_an_error_naming_both() {
    const PORT: u16 = 42_140;
    let (srv_state, cli_state) = (TempDir::new("ver-srv"), TempDir::new("ver-cli"));
    let server = Server::start(PORT, &srv_state.0, &[]);
    let out = ping(PORT, &cli_state.0, &["--protocol-version", "7"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(
        e.contains("client speaks version 7") && e.contains("server 1"),
        "{e}"
    );
    let counters = server.stop();
    assert_eq!(counters["control"]["version_mismatch"], 1);
}

#[test]
fn source_outside_the_allow_list_is_refused_and_counted() {
    const PORT: u16 = 42_150;
    let (srv_state, cli_state) = (TempDir::new("allow-srv"), TempDir::new("allow-cli"));
    let server = Server::start(PORT, &srv_state.0, &["--allow", "192.0.2.0/24"]);
    let out = ping(PORT, &cli_state.0, &[]);
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(
        e.contains("refused the connection") && e.contains("--allow"),
        "{e}"
    );
    assert!(
        !cli_state.0.join("known-peers").exists(),
        "nothing learnt from a refusal"
    );
    let counters = server.stop();
    assert_eq!(counters["control"]["not_allowed"], 1);
    assert_eq!(counters["control"]["welcomed"], 0);
}

#[test]
fn malformed_frames_are_answered_and_do_not_stop_the_server() {
    const PORT: u16 = 42_160;
    let srv_state = TempDir::new("junk-srv");
    let server = Server::start(PORT, &srv_state.0, &["--token", "k"]);
    runtime().block_on(async {
        let mut config = server.client_config();
        config.token = Some(Token::new("k", "test").expect("token"));
        let framed = |body: &[u8]| {
            let mut v = (body.len() as u32).to_be_bytes().to_vec();
            v.extend_from_slice(body);
            v
        };
        let oversized = ((MAX_FRAME_LEN + 1) as u32).to_be_bytes().to_vec();
        let welcome_first = encode(&Message::Error(probe_core::control::ErrorMessage {
            code: ErrorCode::Internal,
            message: "x".into(),
            version: None,
        }));
        for (bytes, what) in [
            (framed(b"{\"type\":\"hello\""), "truncated JSON"),
            (framed(&[0xff; 40]), "binary junk"),
            (oversized, "oversized frame"),
            (welcome_first, "an error as the first message"),
        ] {
            let client = connect(config.clone()).await.expect("connect");
            let answer = client.exchange_raw(&bytes).await.expect(what);
            match answer {
                Some(Message::Error(e)) => assert_eq!(e.code, ErrorCode::BadMessage, "{what}"),
                other => panic!("{what}: {other:?}"),
            }
            client.close().await;
        }
        // A frame cut short (the header promises more than is sent): no answer, no crash.
        let client = connect(config.clone()).await.expect("connect");
        let mut cut = framed(&[b'{'; 100]);
        cut.truncate(HEADER_LEN + 3);
        assert_eq!(client.exchange_raw(&cut).await.expect("cut"), None);
        client.close().await;
        // The server still welcomes a well-formed hello.
        let client = connect(config.clone()).await.expect("connect");
        let peer = client.hello().await.expect("welcome after junk");
        assert_eq!(peer.fingerprint, server.fingerprint.to_string());
        assert_eq!(client.fingerprint(), server.fingerprint);
        client.close().await;
        // A second hello on an established session is a bad message; the session stays up.
        let client = connect(config).await.expect("connect");
        client.hello().await.expect("welcome");
        let again = client
            .exchange_raw(&encode(&handshake::hello(1, None, "t")))
            .await
            .expect("answer");
        assert!(
            matches!(&again, Some(Message::Error(e)) if e.code == ErrorCode::BadMessage),
            "{again:?}"
        );
        client.close().await;
    });
    let counters = server.stop();
    let c = &counters["control"];
    assert_eq!(c["malformed"].as_u64(), Some(6), "{c}");
    assert_eq!(c["welcomed"].as_u64(), Some(2), "{c}");
}

#[test]
fn default_listener_is_dual_stack_on_49152_in_the_testbed() {
    let lab = probe_lab::topology::direct().expect("direct topology");
    let (srv_state, cli_state) = (TempDir::new("ds-srv"), TempDir::new("ds-cli"));
    let state = srv_state.0.to_str().expect("utf8");
    let _server = common::serve(&lab.b, 49153, &["--state-dir", state]);
    common::wait_udp_listening(&lab.b, probe_core::control::CONTROL_PORT);
    common::wait_path(&lab.a, lab.b.ipv6().into());
    let fingerprint = probe_core::control::Identity::load_or_create(&srv_state.0)
        .expect("identity written by probe serve")
        .fingerprint()
        .to_string();
    for peer in [lab.b.ipv4().to_string(), format!("[{}]", lab.b.ipv6())] {
        let v = common::json_ok(
            common::probe(&lab.a, &["control-ping", &peer, "--json", "--state-dir"])
                .arg(&cli_state.0)
                .env_remove("PROBE_TOKEN"),
        );
        assert_eq!(v["fingerprint"], fingerprint.as_str(), "{peer}");
        assert_eq!(v["first_use"], true, "{peer}");
        assert_eq!(v["peer"], format!("{peer}:49152"));
    }
    let known = std::fs::read_to_string(cli_state.0.join("known-peers")).expect("known peers");
    assert_eq!(known.matches(&fingerprint).count(), 2, "{known}");
}

#[test]
fn library_example_runs_a_responder_and_a_client() {
    let out = Command::new(probe_suite::example_bin("control"))
        .output()
        .expect("run the control example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}: {}", out.status, stderr(&out));
    assert!(
        stdout.contains("welcome: protocol 1, identity sha256:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("wrong token: unauthorized: wrong token"),
        "{stdout}"
    );
    // The negotiated test ran in authenticated mode with the session's key: all answered.
    assert!(
        stdout.contains("sent 20, answered 20; the far end received 20, reflected 20"),
        "{stdout}"
    );
    let json = stdout.lines().last().expect("output");
    let v: Value = serde_json::from_str(json).expect("json");
    assert_eq!(
        (v["welcomed"].as_u64(), v["unauthorized"].as_u64()),
        (Some(1), Some(1)),
        "{v}"
    );
}

#[test]
fn connections_beyond_the_limit_are_refused_and_counted() {
    const PORT: u16 = 42_170;
    let srv_state = TempDir::new("busy-srv");
    let server = Server::start(PORT, &srv_state.0, &["--max-control-connections", "1"]);
    runtime().block_on(async {
        let config = server.client_config();
        let first = connect(config.clone()).await.expect("first connection");
        first.hello().await.expect("welcome");
        let second = connect(config.clone()).await;
        assert!(
            matches!(
                second,
                Err(probe_core::control::ControlError::Refused { .. })
            ),
            "second connection: {:?}",
            second.err()
        );
        first.close().await;
        // The slot is free again once the first session has ended.
        let mut third = None;
        for _ in 0..50 {
            if let Ok(c) = connect(config.clone()).await {
                third = Some(c);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let third = third.expect("a connection after the first closed");
        third.hello().await.expect("welcome");
        third.close().await;
    });
    let counters = server.stop();
    let c = &counters["control"];
    assert!(c["busy"].as_u64() >= Some(1), "{c}");
    assert_eq!(c["welcomed"].as_u64(), Some(2), "{c}");
}
