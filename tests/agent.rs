//! `probe agent` and `probe results`: configuration checks (no network), and in the testbed
//! three agents in a `chain` of three namespaces found through one DNS name served by hickory
//! inside `src`; each measures the two others and never itself. Restarts keep the identity,
//! `kill -9` leaves a readable spool, SIGTERM exits 0 with every result spooled, and SIGHUP
//! with a bad file keeps the running configuration.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use common::agent::{Agent, Scratch, ok_peers, serve_mesh_name, wait_for, write};
use common::output;
use serde_json::Value;

#[test]
fn a_bad_configuration_lists_every_problem_and_exits_2() {
    let s = Scratch::new("bad");
    let file = s.0.join("agent.toml");
    write(
        &file,
        "name = \"edge-1\"\ncolour = \"blue\"\n[[tests]]\nname = \"t\"\nkind = \"a2a\"\ntarget = \"192.0.2.7\"\ninterval = \"soon\"\ncuont = 10\n",
    );
    let out = output(
        Command::new(probe_suite::probe_bin())
            .args(["agent", "--check", "--config"])
            .arg(&file)
            .env("PROBE_INET", "5")
            .env("PROBE_DEBUG", "maybe")
            .env("PROBE_STATE_DIR", s.0.join("state")),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let f = file.display();
    for want in [
        "5 problem(s)".to_owned(),
        format!("{f}:2: colour: unknown key"),
        format!("{f}:7: tests[0].interval: `soon` is not a duration"),
        format!("{f}:8: tests[0].cuont: unknown key (hint: did you mean `count`?)"),
        "PROBE_INET (environment): `5` is not a family (hint: use 4, 6 or any)".to_owned(),
        "PROBE_DEBUG (environment): `maybe` is not yes or no".to_owned(),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert!(
        !s.0.join("state").exists(),
        "nothing may start on a bad configuration"
    );
}

#[test]
fn check_prints_the_effective_configuration_with_secrets_redacted() {
    let s = Scratch::new("check");
    let file = s.0.join("agent.toml");
    write(
        &file,
        "name = \"file-name\"\ntags = [\"dc1\"]\n[http]\nlisten = \"0.0.0.0:8000\"\n[[tests]]\nname = \"to-core\"\nkind = \"a2a\"\ntarget = \"core.example.net\"\ninterval = \"10s\"\ncount = 100\n",
    );
    let out = output(
        Command::new(probe_suite::probe_bin())
            .args(["agent", "--check"])
            .env("PROBE_CONFIG", &file)
            .env("PROBE_NAME", "env-name")
            .env("PROBE_TAGS", "a,b")
            .env("PROBE_TOKEN", "s3cret-token")
            .env("PROBE_HTTP", "127.0.0.1:9100")
            .env("PROBE_STATE_DIR", s.0.join("state")),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("s3cret-token"), "{text}");
    let v: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(v["name"], "env-name");
    assert_eq!(v["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(v["token"], "<redacted>");
    assert_eq!(v["http_listen"], "127.0.0.1:9100");
    assert_eq!(v["tests"][0]["interval"], "10s");
    assert_eq!(v["tests"][0]["count"], 100);
    assert!(!s.0.join("state").exists(), "--check starts nothing");
}

#[test]
fn adopting_a_fingerprint_the_state_directory_does_not_hold_is_refused() {
    let s = Scratch::new("adopt");
    let fp = format!("sha256:{}", "ab".repeat(32));
    let out = output(
        Command::new(probe_suite::probe_bin())
            .arg("agent")
            .env("PROBE_FINGERPRINT", &fp)
            .env("PROBE_STATE_DIR", s.0.join("state"))
            .env_remove("PROBE_CONFIG"),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&fp) && err.contains("control-identity.pem"),
        "{err}"
    );
    assert!(
        !s.0.join("state/control-identity.pem").exists(),
        "a new identity cannot take an old fingerprint"
    );
}

const MESH: &str = r#"
[[tests]]
name = "mesh"
kind = "a2a"
target = "mesh.lab.test"
interval = "1s"
jitter = "100ms"
count = 10
packet_interval = "10ms"
[mesh]
resolve_interval = "1s"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_agents_found_through_one_name_measure_each_other() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = probe_lab::topology::chain(1, &[]).expect("chain topology");
    let r1 = &lab.routers[0];
    let members = [lab.src.ipv4(), r1.ipv4(), lab.dst.ipv4()];
    // mesh.lab.test: the three agents' addresses, served from src's namespace.
    let (server, dns) = serve_mesh_name(&lab.src, "mesh.lab.test.", &members);

    let s = Scratch::new("mesh");
    let config = s.0.join("agent.toml");
    write(&config, MESH);
    let hosts = [&lab.src, r1, &lab.dst];
    let names = ["src", "r1", "dst"];
    let mut agents: Vec<Agent> = hosts
        .iter()
        .zip(names)
        .map(|(h, n)| Agent::start(h, &s.0, n, &config, &dns))
        .collect();
    let peer = |ip: std::net::Ipv4Addr| format!("{ip}:49153");
    // Each agent measures exactly the two others (r1 owns two addresses, one in the name).
    for (i, agent) in agents.iter().enumerate() {
        let want: BTreeSet<String> = members
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, &ip)| peer(ip))
            .collect();
        let r = tokio::task::block_in_place(|| {
            wait_for(
                agent,
                15,
                &format!("{} measures both others", names[i]),
                |r| ok_peers(r, "mesh") == want,
            )
        });
        let all: BTreeSet<String> = r
            .iter()
            .filter_map(|x| x["peer"].as_str().map(str::to_owned))
            .collect();
        assert!(
            !all.contains(&peer(members[i])),
            "{} measured itself: {all:?}",
            names[i]
        );
        for rec in r.iter().filter(|x| x["ok"] == true) {
            assert_eq!(rec["report"]["sent"], 10, "{rec}");
            assert_eq!(rec["agent"], names[i]);
        }
    }
    // `probe results` as a table, filtered by test and time.
    let out = output(
        Command::new(probe_suite::probe_bin())
            .args(["results", "--test", "mesh", "--since", "1m", "--state-dir"])
            .arg(&agents[0].state),
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains(&peer(members[1])) && table.contains(&peer(members[2])),
        "{table}"
    );
    let none = output(
        Command::new(probe_suite::probe_bin())
            .args(["results", "--test", "nope", "--json", "--state-dir"])
            .arg(&agents[0].state),
    );
    assert!(none.stdout.is_empty());

    // SIGTERM: exit 0, every record complete, numbered without gaps.
    let id = agents[0].id();
    assert_eq!(agents[0].stop(), Some(0), "{}", agents[0].log());
    let before = agents[0].records(None);
    let seqs: Vec<u64> = before
        .iter()
        .map(|r| r["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());

    // A restart keeps the id and continues the numbering.
    agents[0] = Agent::start(&lab.src, &s.0, "src", &config, &dns);
    assert_eq!(agents[0].id(), id);
    let n = before.len();
    tokio::task::block_in_place(|| {
        wait_for(&agents[0], 10, "new results after restart", |r| {
            r.len() >= n + 4
        })
    });
    // kill -9 while tests run: nothing unreadable, nothing completed lost.
    agents[0].kill9();
    let after = agents[0].records(None);
    assert!(after.len() >= n + 4);
    let text = fs::read_to_string(agents[0].state.join("results/current.jsonl")).expect("spool");
    assert!(text.is_empty() || text.ends_with('\n'));
    let seqs: Vec<u64> = after
        .iter()
        .map(|r| r["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    agents[0] = Agent::start(&lab.src, &s.0, "src", &config, &dns);
    assert_eq!(agents[0].id(), id);
    let r = tokio::task::block_in_place(|| {
        wait_for(&agents[0], 10, "results after kill -9", |r| {
            r.len() > after.len()
        })
    });
    assert_eq!(r[after.len()]["seq"].as_u64(), Some(after.len() as u64));
    for a in &mut agents {
        assert_eq!(a.stop(), Some(0), "{}", a.log());
    }
    drop(server);
}

#[test]
fn sighup_with_a_bad_file_keeps_the_running_configuration() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = probe_lab::topology::direct().expect("direct topology");
    let _peer = common::serve(&lab.b, 49153, &["--no-control"]);
    let s = Scratch::new("hup");
    let config = s.0.join("agent.toml");
    let test = |name: &str| {
        format!(
            "[[tests]]\nname = \"{name}\"\nkind = \"a2a\"\ntarget = \"{}\"\ninterval = \"500ms\"\ncount = 5\npacket_interval = \"10ms\"\n",
            lab.b.ipv4()
        )
    };
    write(&config, &test("first"));
    let mut agent = Agent::start(&lab.a, &s.0, "a", &config, "127.0.0.1");
    wait_for(&agent, 10, "first results", |r| {
        !ok_peers(r, "first").is_empty()
    });
    write(&config, "[[tests]]\nname = \"broken\"\nkind = \"a2a\"\n");
    agent.signal(nix::sys::signal::Signal::SIGHUP);
    let seen = agent.records(None).len();
    wait_for(&agent, 10, "the old test keeps running", |r| {
        r[seen..]
            .iter()
            .filter(|x| x["test"] == "first" && x["ok"] == true)
            .count()
            >= 3
    });
    let log = agent.log();
    assert!(log.contains("reload refused"), "{log}");
    assert!(log.contains("`target` is missing"), "{log}");
    write(&config, &test("second"));
    agent.signal(nix::sys::signal::Signal::SIGHUP);
    wait_for(&agent, 10, "the new test runs", |r| {
        !ok_peers(r, "second").is_empty()
    });
    assert_eq!(agent.stop(), Some(0), "{}", agent.log());
}

#[test]
fn sigterm_cuts_a_long_run_short_within_the_grace_and_exits_0() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = probe_lab::topology::direct().expect("direct topology");
    let _peer = common::serve(&lab.b, 49153, &["--no-control"]);
    let s = Scratch::new("term");
    let config = s.0.join("agent.toml");
    // One run takes 60 s: SIGTERM always finds it in flight.
    write(
        &config,
        &format!(
            "[[tests]]\nname = \"long\"\nkind = \"a2a\"\ntarget = \"{}\"\ninterval = \"500ms\"\ndeadline = \"2m\"\ncount = 6000\npacket_interval = \"10ms\"\n",
            lab.b.ipv4()
        ),
    );
    let mut agent = Agent::start(&lab.a, &s.0, "a", &config, "127.0.0.1");
    std::thread::sleep(Duration::from_millis(1500));
    let t0 = Instant::now();
    assert_eq!(agent.stop(), Some(0), "{}", agent.log());
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(8), "stopping took {took:?}");
    let all = agent.records(Some("long"));
    // The slots that came while the run went on are skipped, with the reason.
    let (skipped, r): (Vec<&Value>, Vec<&Value>) =
        all.iter().partition(|x| x["error_class"] == "skipped");
    assert!(
        !skipped.is_empty()
            && skipped
                .iter()
                .all(|x| x["error"] == "the previous run is still going"),
        "{all:#?}"
    );
    assert_eq!(r.len(), 1, "{all:#?}");
    assert_eq!(r[0]["error_class"], "cut_short", "{all:#?}");
    assert!(
        r[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("agent stopped")),
        "{all:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_tests_record_phases_and_classify_refusals() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if !probe_lab::require_root() {
        return;
    }
    let lab = probe_lab::topology::direct().expect("direct topology");
    let b_ip = lab.b.ipv4();
    let listener = lab.b.run_in(move || {
        let l = std::net::TcpListener::bind((b_ip, 8080)).expect("bind http");
        l.set_nonblocking(true).expect("nonblocking");
        l
    });
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio tcp");
    let server = tokio::spawn(async move {
        while let Ok((mut c, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = c.read(&mut buf).await;
                let _ = c
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    let s = Scratch::new("http");
    let config = s.0.join("agent.toml");
    write(
        &config,
        &format!(
            "[[tests]]\nname = \"web\"\nkind = \"http\"\ntarget = \"http://{b_ip}:8080/\"\ninterval = \"1s\"\ncount = 3\npacket_interval = \"50ms\"\n\n[[tests]]\nname = \"closed\"\nkind = \"http\"\ntarget = \"http://{b_ip}:8081/\"\ninterval = \"1s\"\ncount = 1\n"
        ),
    );
    let mut agent = Agent::start(&lab.a, &s.0, "a", &config, "127.0.0.1");
    let r = tokio::task::block_in_place(|| {
        wait_for(&agent, 10, "http results", |r| {
            r.iter().any(|x| x["test"] == "web") && r.iter().any(|x| x["test"] == "closed")
        })
    });
    let web = r.iter().find(|x| x["test"] == "web").expect("web");
    assert_eq!(web["ok"], true, "{web}");
    assert_eq!(web["report"]["succeeded"], 3, "{web}");
    assert_eq!(web["report"]["requests"][0]["status"], 200, "{web}");
    let closed = r.iter().find(|x| x["test"] == "closed").expect("closed");
    assert_eq!(closed["error_class"], "refused", "{closed}");
    assert_eq!(agent.stop(), Some(0), "{}", agent.log());
    server.abort();
}
