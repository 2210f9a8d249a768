//! The agent container as the README runs it, and the testbed around it: a `direct` topology
//! whose host `a` is the container host (podman runs in its namespace, so the bridge,
//! masquerade and published ports are there) and whose host `b` is the peer on the far end of
//! the host's uplink (198.18.0.1 <-> 198.18.0.2).

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

use probe_lab::Host;
use probe_lab::topology::{self, Direct};
use serde_json::Value;

use super::podman::{Container, Podman, Volume, ensure_image, seccomp_profile};
use crate::common::{TempDir, num, output};

/// Host `a`'s uplink address: what the peer sees as the source of the container's traffic,
/// and where the published ports are.
pub const HOST_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The peer `b`.
pub const PEER_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// The tag the run line gives the agent (`PROBE_TAGS`).
pub const TAG: &str = "container";

/// The testbed with podman in its container host.
pub struct Lab {
    /// The namespaces (`a` the container host, `b` the peer).
    pub net: Direct,
    /// podman in `a`.
    pub podman: Podman,
}

/// The testbed, podman in its host namespace and the image; `None` when not root.
pub fn setup() -> Option<Lab> {
    if !probe_lab::require_root() {
        return None;
    }
    let net = topology::direct().expect("testbed");
    // The container host routes between its bridge and the uplink.
    net.a
        .sysctl("net.ipv4.ip_forward", "1")
        .expect("ip_forward");
    ensure_image();
    let podman = Podman::in_host(&net.a);
    Some(Lab { net, podman })
}

/// Where a container's network is.
#[derive(Clone, Copy, Debug)]
pub enum Net<'a> {
    /// podman's default bridge behind NAT, with the four ports published.
    Published,
    /// A named network (macvlan), without published ports.
    Named(&'a str),
}

/// The state and log volumes of an agent.
pub struct Volumes {
    /// `/var/lib/probe`: the identity and the results spool.
    pub state: Volume,
    /// `/var/log/probe`: `probe-agent.log` and its rotated files.
    pub logs: Volume,
}

impl Volumes {
    /// Two fresh volumes.
    pub fn new(podman: &Podman) -> Volumes {
        Volumes {
            state: podman.volume(),
            logs: podman.volume(),
        }
    }
}

/// The README's run line (podman for docker), without `--detach --name` and the image: the
/// options of an agent container named `name` with its volumes, `--dns` server and network.
pub fn run_line(name: &str, volumes: &Volumes, dns: Ipv4Addr, net: Net<'_>) -> Vec<String> {
    let mut line: Vec<String> = vec![
        format!("--hostname={name}"),
        "--restart=unless-stopped".into(),
        "--read-only".into(),
        "--cap-drop=ALL".into(),
        "--cap-add=NET_RAW".into(),
        format!("--security-opt=seccomp={}", seccomp_profile().display()),
        "--security-opt=no-new-privileges".into(),
        format!("--volume={}:/var/lib/probe", volumes.state.name),
        format!("--volume={}:/var/log/probe", volumes.logs.name),
        format!("--dns={dns}"),
        format!("--env=PROBE_TAGS={TAG}"),
        "--log-opt=max-size=10mb".into(),
    ];
    match net {
        Net::Published => line.extend(
            [
                "49152:49152/udp",
                "49153:49153/udp",
                "49153:49153/tcp",
                "8000:8000/tcp",
            ]
            .map(|p| format!("--publish={p}")),
        ),
        Net::Named(net) => line.push(format!("--network={net}")),
    }
    line
}

/// Adds a configuration file (`agent.toml` in `dir`, mounted read-only as
/// `/etc/probe/agent.toml`, named by `PROBE_CONFIG`) to a run line.
pub fn with_config(line: &mut Vec<String>, dir: &TempDir, toml: &str) {
    let file = dir.join("agent.toml");
    std::fs::write(&file, toml).expect("write agent.toml");
    line.push(format!(
        "--volume={}:/etc/probe/agent.toml:ro",
        file.display()
    ));
    line.push("--env=PROBE_CONFIG=/etc/probe/agent.toml".into());
}

/// Starts the image's own command (`probe agent`) with `options` and waits until its
/// `HEALTHCHECK` passes.
pub fn start(podman: &Podman, name: &str, options: &[String]) -> Container {
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let c = podman.run(name, &options, &[]);
    c.wait_healthy(Duration::from_secs(30));
    c
}

/// `curl URL` from `from` (5 s at most), which must answer 2xx; the body.
pub fn http_get(from: &Host, url: &str, accept: &str) -> String {
    let mut cmd: Command = from.command("curl");
    cmd.args(["--silent", "--show-error", "--fail", "--max-time", "5"])
        .args(["--header", &format!("Accept: {accept}"), url]);
    let out = output(&mut cmd);
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The agent's fingerprint as `curl http://ADDR:8000/` prints it (the first line), checking
/// the JSON form of the same page agrees and carries the tag its `PROBE_TAGS` gave it.
pub fn fingerprint(from: &Host, addr: Ipv4Addr, tag: &str) -> String {
    let url = format!("http://{addr}:8000/");
    let text = http_get(from, &url, "*/*");
    let first = text.lines().next().unwrap_or_default().trim().to_owned();
    assert!(first.starts_with("sha256:"), "GET /: {text}");
    let json: Value =
        serde_json::from_str(&http_get(from, &url, "application/json")).expect("GET / as JSON");
    assert_eq!(json["fingerprint"].as_str(), Some(first.as_str()), "{json}");
    assert_eq!(json["tags"], serde_json::json!([tag]), "PROBE_TAGS: {json}");
    first
}

/// `probe ARGS` in the container (`podman exec`), which must succeed; its JSON output.
pub fn exec_json(c: &Container, args: &[&str]) -> Value {
    let mut all = vec!["/probe"];
    all.extend_from_slice(args);
    let out = c.exec(&all, Duration::from_mins(1));
    assert!(
        out.status.success(),
        "podman exec {all:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bad JSON from {all:?} ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A STAMP run of `count` packets without a loss either way.
pub fn assert_clean_run(v: &Value, count: f64, what: &str) {
    assert_eq!(num(v, "sent"), count, "{what}: {v}");
    assert_eq!(num(v, "received"), count, "{what}: {v}");
    assert_eq!(num(v, "forward.loss_pct"), 0.0, "{what}: {v}");
    assert_eq!(num(v, "reverse.loss_pct"), 0.0, "{what}: {v}");
}

/// Counts in `host` the packets of `proto` (`udp`, `tcp`) to `port` from `src`
/// (`from_src`), and from anyone else (`from_other`).
pub fn count_sources(host: &Host, proto: &str, port: u16, src: Ipv4Addr) {
    host.nft(&format!(
        "table inet src {{\n counter from_src {{ }}\n counter from_other {{ }}\n chain c {{\n type filter hook input priority 0;\n {proto} dport {port} ip saddr {src} counter name from_src\n {proto} dport {port} ip saddr != {src} counter name from_other\n }}\n}}\n"
    ))
    .expect("nft");
}

/// A counter of [`count_sources`].
pub fn counted(host: &Host, name: &str) -> u64 {
    host.nft_counter("inet", "src", name)
        .expect("counter")
        .packets
}
