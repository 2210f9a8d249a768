//! The agent's dashboard (`GET /` from a browser) in headless Chromium: three agents in a
//! chain of namespaces find each other through one DNS name and measure each other (a2a,
//! and a trace toward each peer). The dashboard of each agent holds the n×(n−1) heatmap cells
//! of the mesh, with data in every cell of its own pairs (both directions of each); src's
//! page loads in Chromium with no console message and no request (the page's
//! Content-Security-Policy would block and report any), and its screenshot is not blank
//! (written to `$PROBE_ARTIFACTS_DIR`; `PROBE_UPDATE_SCREENSHOTS=1` copies it to
//! `docs/dashboard.png`). A pair's page has a point per run and the path graph; a plain client
//! still gets the fingerprint text.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};

use common::agent::{Agent, Scratch, ok_peers, serve_mesh_name, wait_for, write};
use common::browser::{artifacts_dir, check_screenshot, chromium, element};
use probe_lab::Host;

const MESH: &str = r#"
[[tests]]
name = "mesh"
kind = "a2a"
target = "mesh.lab.test"
interval = "1s"
jitter = "100ms"
count = 20
packet_interval = "5ms"
[[tests]]
name = "paths"
kind = "trace"
target = "mesh.lab.test"
interval = "2s"
count = 1
max_ttl = 4
[mesh]
resolve_interval = "1s"
"#;

/// `GET PATH` on the agent's HTTP port (8000) inside `host`, with `accept` when given:
/// the response head and body.
fn get(host: &Host, path: &str, accept: Option<&str>) -> (String, String) {
    let ip = host.ipv4();
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {ip}:8000\r\n{}\r\n",
        accept.map_or_else(String::new, |a| format!("Accept: {a}\r\n"))
    );
    let text = host.run_in(move || {
        let mut s = TcpStream::connect((ip, 8000)).expect("connect to the agent's HTTP port");
        s.write_all(request.as_bytes()).expect("send");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("read");
        text
    });
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    (head.to_owned(), body.to_owned())
}

/// Heatmap cells: `(all off-diagonal cells, cells with a value)`.
fn cells(dom: &str) -> (usize, usize) {
    let map = element(dom, "table", "heatmap");
    (
        map.matches("<td class=\"cell").count(),
        map.matches("<td class=\"cell l").count(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_of_a_three_agent_mesh_in_chromium() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = probe_lab::topology::chain(1, &[]).expect("chain topology");
    let r1 = &lab.routers[0];
    let members: [Ipv4Addr; 3] = [lab.src.ipv4(), r1.ipv4(), lab.dst.ipv4()];
    let (server, dns) = serve_mesh_name(&lab.src, "mesh.lab.test.", &members);
    let s = Scratch::new("dashboard");
    let config = s.0.join("agent.toml");
    write(&config, MESH);
    let hosts = [&lab.src, r1, &lab.dst];
    let names = ["src", "r1", "dst"];
    let mut agents: Vec<Agent> = hosts
        .iter()
        .zip(names)
        .map(|(h, n)| Agent::start(h, &s.0, n, &config, &dns))
        .collect();
    let n = members.len();
    for (i, agent) in agents.iter().enumerate() {
        let want: BTreeSet<String> = members
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, ip)| format!("{ip}:49153"))
            .collect();
        tokio::task::block_in_place(|| {
            wait_for(
                agent,
                20,
                &format!("{} measures both others", names[i]),
                |r| {
                    ok_peers(r, "mesh") == want
                        && r.iter()
                            .filter(|x| x["test"] == "paths" && x["ok"] == true)
                            .count()
                            >= 2
                },
            )
        });
    }
    tokio::task::block_in_place(|| {
        // Every agent's page: n×(n−1) cells; its own 2×(n−1) directions have values (loss),
        // the peers' pairs between themselves are on their own pages.
        for (i, h) in hosts.iter().enumerate() {
            let (head, html) = get(
                h,
                "/",
                Some("text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"),
            );
            assert!(
                head.to_lowercase()
                    .contains("content-security-policy: default-src 'none'"),
                "{head}"
            );
            assert_eq!(
                cells(&html),
                (n * (n - 1), 2 * (n - 1)),
                "{}:\n{html}",
                names[i]
            );
            let (_, by_delay) = get(h, "/?by=delay", Some("text/html"));
            assert_eq!(
                cells(&by_delay),
                (n * (n - 1), 2 * (n - 1)),
                "{}:\n{by_delay}",
                names[i]
            );
            assert!(by_delay.contains("<strong>one-way delay</strong>"));
            // A plain client (curl) still gets who the agent is.
            let (_, text) = get(h, "/", None);
            let first = text.lines().next().unwrap_or_default();
            let first = first.strip_prefix("sha256:").unwrap_or(first);
            assert!(
                first.len() == 64 && first.bytes().all(|b| b.is_ascii_hexdigit()),
                "{text}"
            );
        }

        let src_ip = lab.src.ipv4();
        let png = artifacts_dir().join("dashboard.png");
        let l = chromium(
            Some(&lab.src),
            &format!("http://{src_ip}:8000/"),
            &png,
            (1280, 1000),
            &s.0,
        );
        assert!(l.console.is_empty(), "console messages: {:#?}", l.console);
        let (total, valued) = cells(&l.dom);
        assert_eq!((total, valued), (n * (n - 1), 2 * (n - 1)), "{}", l.dom);
        let map = element(&l.dom, "table", "heatmap");
        for ip in &members[1..] {
            assert!(
                map.contains(&format!(
                    "data-from=\"src\" data-to=\"{ip}\" data-loss=\"0.000\""
                )),
                "{map}"
            );
            assert!(
                map.contains(&format!(
                    "data-from=\"{ip}\" data-to=\"src\" data-loss=\"0.000\""
                )),
                "{map}"
            );
        }
        // The only URL in the page is the SVG namespace (links are relative).
        let urls = l.dom.matches("http://").count() + l.dom.matches("https://").count();
        assert_eq!(
            urls,
            l.dom.matches("http://www.w3.org/2000/svg").count(),
            "{}",
            l.dom
        );
        check_screenshot(&png, "dashboard.png");

        // The pair src ↔ dst: a point per a2a run on the latency chart, the path graph.
        let dst = members[2];
        let runs = agents[0]
            .records(Some("mesh"))
            .iter()
            .filter(|r| r["peer"] == format!("{dst}:49153") && r["ok"] == true)
            .count();
        let png = artifacts_dir().join("dashboard-pair.png");
        let l = chromium(
            Some(&lab.src),
            &format!("http://{src_ip}:8000/?by=delay&pair={dst}"),
            &png,
            (1280, 1400),
            &s.0,
        );
        assert!(l.console.is_empty(), "console messages: {:#?}", l.console);
        let latency = element(&l.dom, "figure", "pair-latency");
        // Round trip, forward and reverse: a circle per run each (the page may see a run
        // or two more than the spool did a moment before).
        let circles = latency.matches("<circle").count();
        assert!(
            circles >= 3 * runs && circles <= 3 * (runs + 2),
            "{circles} circles, {runs} runs"
        );
        let path = element(&l.dom, "figure", "path");
        // src -> r1 -> dst: two responders.
        assert_eq!(path.matches("<g class=\"node").count(), 2, "{path}");
        check_screenshot(&png, "dashboard-pair.png");
    });
    for a in &mut agents {
        assert_eq!(a.stop(), Some(0), "{}", a.log());
    }
    drop(server);
}
