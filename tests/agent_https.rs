//! The agent's exports to `https://` URLs, in the testbed: a collector in `b` speaks TLS with a
//! certificate from a CA the test makes (rcgen), and the agent in `a` trusts that CA through
//! `export.ca_file`. The results upload and remote write arrive over TLS, directly and through
//! `HTTPS_PROXY` (tinyproxy in `b`, CONNECT); without the CA file nothing is sent and the agent
//! logs the TLS failure.

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::agent::{Agent, Scratch, write};
use common::collector::{self, Collector};
use common::wait_tcp_listening;
use probe_lab::{Background, Host};

/// A CA (its PEM) and a TLS server configuration with a certificate it signed for `ip`.
fn tls_for(ip: Ipv4Addr) -> (String, Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "probe test CA");
    let ca_pem = ca.self_signed(&ca_key).expect("CA certificate").pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("server key");
    let cert = CertificateParams::new(vec![ip.to_string()])
        .expect("server params")
        .signed_by(&key, &issuer)
        .expect("server certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("server config");
    (ca_pem, Arc::new(config))
}

/// tinyproxy in `host` on 8888, allowing CONNECT to `port` only.
fn start_tinyproxy(host: &Host, dir: &Path, port: u16) -> Background {
    let conf = dir.join("tinyproxy.conf");
    write(
        &conf,
        &format!(
            "Port 8888\nListen {}\nTimeout 10\nMaxClients 16\nLogLevel Error\nConnectPort {port}\n",
            host.ipv4()
        ),
    );
    let mut cmd = host.command("tinyproxy");
    cmd.args(["-d", "-c"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let bg = host.spawn(&mut cmd).expect("start tinyproxy");
    wait_tcp_listening(host, 8888);
    bg
}

fn wait_for(secs: u64, what: &str, agent: &Agent, cond: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(
            Instant::now() < until,
            "{what}: not within {secs} s\nlog:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn config(b: Ipv4Addr, c: &Collector, ca_file: Option<&Path>) -> String {
    let ca = ca_file.map_or(String::new(), |p| {
        format!("[export]\nca_file = \"{}\"\n", p.display())
    });
    format!(
        "{ca}[export.upload]\nurl = \"https://{addr}/ingest\"\n[export.remote_write]\nurl = \"https://{addr}/api/v1/write\"\n[[tests]]\nname = \"t\"\nkind = \"a2a\"\ntarget = \"{b}\"\ninterval = \"1s\"\ncount = 5\npacket_interval = \"10ms\"\n",
        addr = c.addr
    )
}

#[test]
fn uploads_and_remote_write_reach_an_https_collector_directly_and_through_a_proxy() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = probe_lab::topology::direct().expect("direct topology");
    let (a_ip, b_ip) = (lab.a.ipv4(), lab.b.ipv4());
    let _peer = common::serve(&lab.b, 49153, &["--no-control"]);
    let s = Scratch::new("https");
    let (ca_pem, server) = tls_for(b_ip);
    let ca_file = s.0.join("ca.pem");
    write(&ca_file, &ca_pem);

    // Without the CA the collector's certificate is refused: nothing arrives.
    let c = collector::start(&lab.b, 0, Some(server.clone()));
    let file = s.0.join("untrusted.toml");
    write(&file, &config(b_ip, &c, None));
    let mut agent = Agent::start(&lab.a, &s.0, "untrusted", &file, "127.0.0.1");
    wait_for(20, "a refused TLS handshake logged", &agent, || {
        agent.log().contains("upload failed") && agent.log().contains("TLS with")
    });
    assert_eq!(agent.stop(), Some(0), "{}", agent.log());
    assert_eq!(
        c.received() + c.others.load(std::sync::atomic::Ordering::SeqCst),
        0
    );

    // With export.ca_file: records and remote-write snapshots arrive, straight from `a`.
    let file = s.0.join("direct.toml");
    write(&file, &config(b_ip, &c, Some(&ca_file)));
    let mut agent = Agent::start(&lab.a, &s.0, "direct", &file, "127.0.0.1");
    wait_for(
        30,
        "3 records and a remote-write push over TLS",
        &agent,
        || c.received() >= 3 && c.others.load(std::sync::atomic::Ordering::SeqCst) >= 1,
    );
    assert_eq!(agent.stop(), Some(0), "{}", agent.log());
    let seqs: Vec<u64> = c
        .records
        .lock()
        .expect("records")
        .iter()
        .filter_map(|r| r["seq"].as_u64())
        .collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    assert!(
        c.sources
            .lock()
            .expect("sources")
            .iter()
            .all(|ip| *ip == a_ip),
        "straight from a"
    );

    // Through HTTPS_PROXY: the connections come from the proxy, the TLS is end to end.
    let proxied = collector::start(&lab.b, 0, Some(server));
    let _proxy = start_tinyproxy(&lab.b, &s.0, proxied.addr.port());
    let file = s.0.join("proxied.toml");
    write(&file, &config(b_ip, &proxied, Some(&ca_file)));
    let proxy = format!("http://{b_ip}:8888");
    let env = [("HTTPS_PROXY", proxy.as_str())];
    let mut agent = Agent::start_with(&lab.a, &s.0, "proxied", &file, "127.0.0.1", &env);
    wait_for(30, "3 records through the proxy", &agent, || {
        proxied.received() >= 3
    });
    assert_eq!(agent.stop(), Some(0), "{}", agent.log());
    let sources = proxied.sources.lock().expect("sources").clone();
    assert!(
        !sources.is_empty() && sources.iter().all(|ip| *ip == b_ip),
        "every connection through the proxy in b: {sources:?}"
    );
}
