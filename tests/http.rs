//! `probe http` in the testbed against real servers: a `direct` topology with `probe` and curl
//! in host `a`, and in host `b` nginx (http on 8080, https on 8443 with a certificate from a CA
//! the test generates with openssl), tinyproxy (open on 8888, `BasicAuth` on 8889) and a DNS
//! server for `lab.test` (hickory, in this process, socket in `b`). Everything the test starts
//! is killed when its guard drops; nothing leaves the testbed.

mod common;
/// `probe http` next to `curl -w` and the wire.
#[path = "http/curl.rs"]
mod curl;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{TempDir, dns_zone, num, output, probe, text, wait_tcp_listening};
use hickory_server::Server;
use hickory_server::proto::rr::RData;
use hickory_server::proto::rr::rdata::A;
use hickory_server::zone_handler::Catalog;
use probe_lab::topology::{self, Direct};
use probe_lab::{Background, Host};
use serde_json::Value;

const HTTP: u16 = 8080;
const HTTPS: u16 = 8443;
const PROXY: u16 = 8888;
const AUTH_PROXY: u16 = 8889;
const BLACKHOLE: &str = "198.18.0.99";
/// The body of `/blob`.
const BLOB_SIZE: usize = 256 * 1024;

/// `/etc/netns/NAME/resolv.conf`, which `ip netns exec` mounts over `/etc/resolv.conf` for the
/// programs the test runs in that namespace (probe and curl then ask the same server).
struct NetnsResolvConf(PathBuf);

impl NetnsResolvConf {
    fn new(host: &Host, server: &str) -> NetnsResolvConf {
        let dir = Path::new("/etc/netns").join(host.name());
        std::fs::create_dir_all(&dir).expect("/etc/netns dir");
        std::fs::write(dir.join("resolv.conf"), format!("nameserver {server}\n"))
            .expect("resolv.conf");
        NetnsResolvConf(dir)
    }
}

impl Drop for NetnsResolvConf {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA and a server certificate for `www.lab.test` and 198.18.0.2, valid 30 days.
fn make_certificates(dir: &TempDir) {
    let openssl =
        |args: &[&str]| run_ok(Command::new("openssl").args(args).current_dir(dir.path()));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=probe test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "srv.key",
        "-out",
        "srv.csr",
        "-subj",
        "/CN=www.lab.test",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:www.lab.test,DNS:warm.lab.test,IP:198.18.0.2\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.pem",
        "-days",
        "30",
        "-extfile",
        "ext.cnf",
    ]);
}

/// nginx in the foreground in `host`, with a generated configuration.
fn start_nginx(host: &Host, dir: &TempDir) -> Background {
    std::fs::write(dir.join("www/blob"), vec![b'x'; BLOB_SIZE]).expect("blob");
    let d = |n: &str| dir.s(n);
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {pid};\nerror_log {err} warn;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  default_type application/octet-stream;\n\
           client_body_temp_path {tmp}/body;\n  proxy_temp_path {tmp}/proxy;\n  fastcgi_temp_path {tmp}/fcgi;\n\
           uwsgi_temp_path {tmp}/uwsgi;\n  scgi_temp_path {tmp}/scgi;\n\
           server {{\n    listen {ip}:{HTTP};\n    listen {ip}:{HTTPS} ssl;\n\
             ssl_protocols TLSv1.2 TLSv1.3;\n    ssl_certificate {cert};\n    ssl_certificate_key {key};\n    root {www};\n\
             location = /small {{ return 200 \"hello from nginx\\n\"; }}\n\
             location = /down {{ return 503 \"down\\n\"; }}\n  }}\n}}\n",
        pid = d("nginx.pid"),
        err = d("nginx.err"),
        tmp = d(""),
        ip = host.ipv4(),
        cert = d("srv.pem"),
        key = d("srv.key"),
        www = d("www"),
    );
    std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
    let mut cmd = host.command("nginx");
    cmd.args(["-c", &d("nginx.conf"), "-p", &d(""), "-e", &d("nginx.err")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let bg = host.spawn(&mut cmd).expect("start nginx");
    wait_tcp_listening(host, HTTPS);
    bg
}

/// tinyproxy in the foreground in `host` on `port`, asking for `user:pass` when given.
fn start_tinyproxy(
    host: &Host,
    dir: &TempDir,
    port: u16,
    auth: Option<(&str, &str)>,
) -> Background {
    let auth_line = auth
        .map(|(u, p)| format!("BasicAuth {u} {p}\n"))
        .unwrap_or_default();
    let conf = format!(
        "Port {port}\nListen {}\nTimeout 10\nMaxClients 16\nLogLevel Error\nConnectPort {HTTPS}\n{auth_line}",
        host.ipv4()
    );
    let path = dir.join(&format!("tinyproxy-{port}.conf"));
    std::fs::write(&path, conf).expect("tinyproxy.conf");
    let mut cmd = host.command("tinyproxy");
    cmd.args(["-d", "-c"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let bg = host.spawn(&mut cmd).expect("start tinyproxy");
    wait_tcp_listening(host, port);
    bg
}

/// A DNS server for `lab.test` on `b` port 53: `www.lab.test` = b's address.
fn start_dns(lab: &Direct) -> Server<Catalog> {
    let zone = dns_zone(
        "lab.test.",
        vec![
            ("www.lab.test.".into(), RData::A(A(lab.b.ipv4()))),
            ("warm.lab.test.".into(), RData::A(A(lab.b.ipv4()))),
        ],
    );
    let mut catalog = Catalog::new();
    catalog.upsert(zone.origin().clone(), vec![zone]);
    let ip = lab.b.ipv4();
    let udp = lab.b.run_in(move || {
        let s = std::net::UdpSocket::bind((ip, 53)).expect("bind 53 in namespace");
        s.set_nonblocking(true).expect("nonblocking");
        s
    });
    let mut server = Server::new(catalog);
    server.register_socket(tokio::net::UdpSocket::from_std(udp).expect("tokio udp"));
    server
}

/// Everything in host `b`.
struct Bed {
    lab: Direct,
    dir: TempDir,
    _nginx: Background,
    _dns: Server<Catalog>,
}

fn bed(tag: &str) -> Bed {
    let lab = topology::direct().expect("direct");
    let dir = TempDir::new(&format!("http-{tag}"));
    std::fs::create_dir_all(dir.join("www")).expect("www dir");
    make_certificates(&dir);
    let nginx = start_nginx(&lab.b, &dir);
    let dns = start_dns(&lab);
    Bed {
        lab,
        dir,
        _nginx: nginx,
        _dns: dns,
    }
}

/// `probe http ARGS` in `a`, without the caller's proxy variables; `env` adds some.
fn http(bed: &Bed, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut all = vec!["http"];
    all.extend_from_slice(args);
    let mut cmd = probe(&bed.lab.a, &all);
    for k in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "no_proxy",
        "NO_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied());
    cmd
}

async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || output(&mut cmd))
        .await
        .expect("join")
}

fn parse(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bad JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The first request of a `--json` run, with the exit code.
async fn first(bed: &Bed, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, Value) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = run(http(bed, &all, env)).await;
    let v = parse(&out);
    (out.status.code(), v)
}

fn class(v: &Value) -> &str {
    v["requests"][0]["error"]["class"]
        .as_str()
        .unwrap_or("none")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_bodies_tls_and_names() {
    if !probe_lab::require_root() {
        return;
    }
    let bed = bed("facts");
    let dns = format!("{}:53", bed.lab.b.ipv4());
    let base = format!("http://{}:{HTTP}", bed.lab.b.ipv4());
    let tls_base = format!("https://www.lab.test:{HTTPS}");
    let ca = bed.dir.s("ca.pem");

    // Plain http, three requests, a body regex.
    let small = format!("{base}/small");
    let out = run(http(
        &bed,
        &[
            "--json",
            "-c",
            "3",
            "-i",
            "50ms",
            "--expect",
            "hello from",
            &small,
        ],
        &[],
    ))
    .await;
    assert_eq!(out.status.code(), Some(0));
    let v = parse(&out);
    assert_eq!(
        (v["count"].as_u64(), v["succeeded"].as_u64()),
        (Some(3), Some(3))
    );
    assert!(v["proxy"].is_null());
    let r = &v["requests"][2];
    assert_eq!(
        (r["status"].as_u64(), r["size_bytes"].as_u64()),
        (Some(200), Some(17))
    );
    assert_eq!(r["address"], format!("{}:{HTTP}", bed.lab.b.ipv4()));
    assert!(r["tls"].is_null() && r["phases"]["tls_ms"].is_null());
    assert!(
        num(&r["phases"], "resolve_ms") < 0.5,
        "an address needs no lookup: {r}"
    );
    assert!(num(&v["summary"], "total_ms.max") < 100.0, "{v}");
    let (code, v) = first(&bed, &["--expect", "goodbye", &small], &[]).await;
    assert_eq!((code, class(&v)), (Some(1), "http_body"));

    // http_status: 404 and 503 are failures unless expected.
    let (code, v) = first(&bed, &[&format!("{base}/missing")], &[]).await;
    assert_eq!((code, class(&v)), (Some(1), "http_status"));
    assert!(
        text(&v["requests"][0]["error"], "message").contains("answered 404, expected 200-399"),
        "{v}"
    );
    let (code, _) = first(&bed, &["--expect", "404", &format!("{base}/missing")], &[]).await;
    assert_eq!(code, Some(0));
    let (code, v) = first(&bed, &["--expect", "2xx", &format!("{base}/down")], &[]).await;
    assert_eq!((code, class(&v)), (Some(1), "http_status"));
    assert_eq!(v["requests"][0]["status"], 503);

    // https by name through the global --dns; the test CA must be trusted or checks skipped.
    let secure = format!("{tls_base}/small");
    let (code, v) = first(&bed, &["--dns", &dns, "--cacert", &ca, &secure], &[]).await;
    assert_eq!(code, Some(0), "{v}");
    let r = &v["requests"][0];
    assert_eq!(text(r, "tls.version"), "TLSv1.3");
    assert_eq!(text(r, "tls.alpn"), "http/1.1");
    assert!(num(&r["phases"], "resolve_ms") > 0.0);
    assert!(num(&r["phases"], "tls_ms") > 0.0);
    let (code, v) = first(&bed, &["--dns", &dns, &secure], &[]).await;
    assert_eq!((code, class(&v)), (Some(1), "tls"));
    let msg = text(&v["requests"][0]["error"], "message");
    assert!(
        msg.contains("UnknownIssuer") && msg.contains("--insecure"),
        "{msg}"
    );
    let (code, _) = first(&bed, &["--dns", &dns, "--insecure", &secure], &[]).await;
    assert_eq!(code, Some(0));

    // name_not_found, and bad input.
    let (code, v) = first(
        &bed,
        &["--dns", &dns, &format!("http://nope.lab.test:{HTTP}/")],
        &[],
    )
    .await;
    assert_eq!((code, class(&v)), (Some(1), "name_not_found"));
    assert!(
        text(&v["requests"][0]["error"], "message").contains("NXDOMAIN"),
        "{v}"
    );
    let out = run(http(&bed, &["www.lab.test/x"], &[])).await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`www.lab.test/x` is not an http:// or https:// URL"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_and_timeout() {
    if !probe_lab::require_root() {
        return;
    }
    let bed = bed("down");
    let (code, v) = first(&bed, &[&format!("http://{}:8081/", bed.lab.b.ipv4())], &[]).await;
    assert_eq!((code, class(&v)), (Some(1), "refused"));
    assert!(num(&v["requests"][0]["phases"], "total_ms") < 50.0, "{v}");

    // An address of b whose packets b drops.
    bed.lab
        .b
        .ip(["addr", "add", &format!("{BLACKHOLE}/32"), "dev", "eth0"])
        .expect("blackhole address");
    bed.lab
        .b
        .nft(&format!(
            "table inet blackhole {{\n chain input {{\n  type filter hook input priority 0;\n  ip daddr {BLACKHOLE} tcp dport {HTTP} drop\n }}\n}}\n"
        ))
        .expect("nft drop");
    let (code, v) = first(
        &bed,
        &["-w", "500ms", &format!("http://{BLACKHOLE}:{HTTP}/")],
        &[],
    )
    .await;
    assert_eq!((code, class(&v)), (Some(1), "timeout"));
    let total = num(&v["requests"][0]["phases"], "total_ms");
    assert!((500.0..700.0).contains(&total), "{v}");
    assert!(
        text(&v["requests"][0]["error"], "message")
            .contains("while connecting to 198.18.0.99:8080"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_plain_connect_and_authenticating() {
    if !probe_lab::require_root() {
        return;
    }
    let bed = bed("proxy");
    let _open = start_tinyproxy(&bed.lab.b, &bed.dir, PROXY, None);
    let _auth = start_tinyproxy(&bed.lab.b, &bed.dir, AUTH_PROXY, Some(("probe", "s3cret")));
    let b = bed.lab.b.ipv4();
    let plain = format!("http://{b}:{HTTP}/small");
    let secure = format!("https://{b}:{HTTPS}/small");
    let ca = bed.dir.s("ca.pem");
    let open = format!("http://{b}:{PROXY}");
    let proxy_addr = format!("{b}:{PROXY}");

    // From the environment: absolute-form for http, CONNECT for https.
    let (code, v) = first(&bed, &[&plain], &[("HTTP_PROXY", &open)]).await;
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["proxy"], proxy_addr);
    assert_eq!(v["requests"][0]["address"], proxy_addr);
    assert_eq!(v["requests"][0]["size_bytes"], 17);
    let (code, v) = first(&bed, &["--cacert", &ca, &secure], &[("https_proxy", &open)]).await;
    assert_eq!(code, Some(0), "{v}");
    let r = &v["requests"][0];
    assert_eq!(v["proxy"], proxy_addr);
    assert!(num(&r["phases"], "proxy_connect_ms") > 0.0, "{r}");
    assert_eq!(text(r, "tls.version"), "TLSv1.3");
    // NO_PROXY exempts the target: direct.
    let (code, v) = first(
        &bed,
        &[&plain],
        &[("HTTP_PROXY", &open), ("NO_PROXY", "198.18.0.0/24")],
    )
    .await;
    assert_eq!(code, Some(0));
    assert!(v["proxy"].is_null());
    assert_eq!(v["requests"][0]["address"], format!("{b}:{HTTP}"));

    // The authenticating proxy: 407 without credentials, success with them.
    let auth = format!("http://{b}:{AUTH_PROXY}");
    for url in [&plain, &secure] {
        let (code, v) = first(&bed, &["--cacert", &ca, "--proxy", &auth, url], &[]).await;
        assert_eq!((code, class(&v)), (Some(1), "proxy"), "{url}: {v}");
        let e = &v["requests"][0]["error"];
        assert_eq!(e["proxy_status"], 407, "{url}: {e}");
        assert!(text(e, "message").contains("asks for credentials"), "{e}");
        let with = format!("http://probe:s3cret@{b}:{AUTH_PROXY}");
        let (code, v) = first(&bed, &["--cacert", &ca, "--proxy", &with, url], &[]).await;
        assert_eq!(code, Some(0), "{url}: {v}");
        assert_eq!(
            v["proxy"],
            format!("{b}:{AUTH_PROXY}"),
            "no credentials shown"
        );
    }

    // A proxy that refuses the connection; --proxy overrides the environment.
    let (code, v) = first(
        &bed,
        &["--proxy", &format!("http://{b}:8890"), &plain],
        &[("HTTP_PROXY", &open)],
    )
    .await;
    assert_eq!((code, class(&v)), (Some(1), "proxy"));
    let msg = text(&v["requests"][0]["error"], "message");
    assert!(
        msg.starts_with(&format!("cannot connect to the proxy {b}:8890")),
        "{msg}"
    );
}
