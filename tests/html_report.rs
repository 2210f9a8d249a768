//! The HTML reports in headless Chromium: an a2a test over an impaired path and an MDA trace
//! of the testbed's ECMP diamond. Each page is loaded once (`--dump-dom` and `--screenshot`
//! in one run, a fresh profile each time) and checked:
//!
//! - no console message and no request: the page carries a Content-Security-Policy of
//!   `default-src 'none'` (inline styles only), so any load it attempted would be blocked,
//!   and Chromium reports every blocked load (and every console message) on stderr as a
//!   `CONSOLE` line with `--enable-logging=stderr`; a canary page proves that this detection
//!   sees both;
//! - the DOM holds what the JSON says (a point per bucket on the delay plots, a node per
//!   responder and an edge per MDA link);
//! - the screenshot, written to `$PROBE_ARTIFACTS_DIR` (default `target/artifacts`), is not
//!   blank. With `PROBE_UPDATE_SCREENSHOTS=1` it is also copied to `docs/` for the README.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::browser::{self, Loaded, artifacts_dir, check_screenshot};
use common::{json_ok, output, probe, serve};
use probe_lab::impair::ImpairConfig;
use probe_lab::topology;
use serde_json::Value;

/// A scratch directory of this test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("probe-html-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Loads the file `page` in Chromium.
fn chromium(page: &Path, png: &Path, size: (u32, u32), scratch: &Scratch) -> Loaded {
    browser::chromium(
        None,
        &format!("file://{}", page.display()),
        png,
        size,
        &scratch.0,
    )
}

/// The markup of the figure `id` in `dom`.
fn figure<'a>(dom: &'a str, id: &str) -> &'a str {
    browser::element(dom, "figure", id)
}

fn assert_quiet_and_self_contained(l: &Loaded, html: &str) {
    assert!(l.console.is_empty(), "console messages: {:#?}", l.console);
    assert!(
        l.dom.contains("Content-Security-Policy") && l.dom.contains("default-src 'none'"),
        "the page lost its CSP"
    );
    // The only URL in the file is the SVG namespace.
    let urls = html.matches("http://").count() + html.matches("https://").count();
    assert_eq!(urls, html.matches("http://www.w3.org/2000/svg").count());
}

/// The detection itself: a page that loads an image from another origin and logs an error
/// must be caught.
#[test]
fn the_console_check_catches_blocked_requests_and_errors() {
    if !probe_lab::require_root() {
        return;
    }
    let scratch = Scratch::new("canary");
    let page = scratch.0.join("canary.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" \
         content=\"default-src 'none'; style-src 'unsafe-inline'\"></head><body><p>canary</p>\
         <img src=\"http://127.0.0.1:9/x.png\"></body></html>",
    )
    .expect("write");
    let l = chromium(&page, &scratch.0.join("canary.png"), (400, 300), &scratch);
    assert!(l.dom.contains("canary"));
    assert!(
        l.console.iter().any(|c| c.contains("127.0.0.1:9")),
        "the blocked request was not seen: {:#?}",
        l.console
    );
}

#[test]
fn a2a_report_in_chromium() {
    if !probe_lab::require_root() {
        return;
    }
    let fwd = ImpairConfig {
        delay: Duration::from_millis(4),
        every_nth: 10,
        ..ImpairConfig::default()
    };
    let rev = ImpairConfig {
        delay: Duration::from_millis(1),
        ..ImpairConfig::default()
    };
    let lab = topology::impaired(fwd, rev).expect("impaired topology");
    let _srv = serve(&lab.b, 49153, &[]);
    let scratch = Scratch::new("a2a");
    let page = scratch.0.join("a2a.html");
    let page_s = page.display().to_string();
    let peer = lab.b.ipv4().to_string();
    // Plain STAMP (the `from` direction of a negotiated test would share the impaired forward
    // link): one hello, then 400 packets, and the impairer drops every 10th forward one (40).
    let v = json_ok(&mut probe(
        &lab.a,
        &[
            "a2a",
            "--peer",
            &peer,
            "--no-control",
            "-c",
            "400",
            "-i",
            "2ms",
            "--json",
            "--html",
            &page_s,
        ],
    ));
    assert_eq!(v["lost"], 40, "{v}");
    let t = &v["timeline"];
    let buckets = t["buckets"].as_array().expect("timeline with --html");
    assert_eq!(t["bucket_packets"], 1);
    assert_eq!(buckets.len(), 400);
    let sum = |k: &str| buckets.iter().filter_map(|b| b[k].as_u64()).sum::<u64>();
    assert_eq!((sum("sent"), sum("lost")), (400, 40));
    let with = |k: &str| buckets.iter().filter(|b| !b[k].is_null()).count();
    let (fwd_points, rev_points, rtt_points) =
        (with("forward_ms"), with("reverse_ms"), with("rtt_ms"));
    assert_eq!((fwd_points, rtt_points), (360, 360));

    // `probe report` renders the saved JSON into the same page.
    let json = scratch.0.join("a2a.json");
    std::fs::write(&json, v.to_string()).expect("write json");
    let again = scratch.0.join("again.html");
    let out = output(Command::new(probe_suite::probe_bin()).args([
        "report".as_ref(),
        json.as_os_str(),
        "-o".as_ref(),
        again.as_os_str(),
    ]));
    assert!(out.status.success(), "{out:?}");
    let html = std::fs::read_to_string(&page).expect("html");
    assert_eq!(std::fs::read_to_string(&again).expect("report"), html);
    assert!(html.len() < 500_000);

    let png = artifacts_dir().join("a2a-report.png");
    let l = chromium(&page, &png, (1280, 2400), &scratch);
    assert_quiet_and_self_contained(&l, &html);
    let circles = |id: &str| figure(&l.dom, id).matches("<circle").count();
    assert_eq!(circles("owd-forward"), fwd_points);
    assert_eq!(circles("owd-reverse"), rev_points);
    assert_eq!(circles("rtt"), rtt_points);
    assert!(figure(&l.dom, "loss").contains("(40 in all)"));
    assert!(l.dom.contains("Clock: shared"));
    check_screenshot(&png, "report-a2a.png");
}

#[test]
fn trace_report_of_the_ecmp_diamond_in_chromium() {
    if !probe_lab::require_root() {
        return;
    }
    let lab = topology::ecmp().expect("ecmp");
    for r in [&lab.r1, &lab.r2] {
        r.sysctl("net.ipv4.fib_multipath_hash_seed", "20260101")
            .expect("hash seed");
    }
    let scratch = Scratch::new("trace");
    let page = scratch.0.join("trace.html");
    let page_s = page.display().to_string();
    let dst = lab.dst.ipv4().to_string();
    let base = ["trace", "-n", "--mda", "--source-port", "41000"];
    let mut args = base.to_vec();
    args.extend(["--json", "--html", &page_s, &dst]);
    let v: Value = json_ok(&mut probe(&lab.src, &args));
    let hops = v["hops"].as_array().expect("hops");
    let responders: usize = hops
        .iter()
        .map(|h| h["responders"].as_array().map_or(0, Vec::len))
        .sum();
    let links = v["links"].as_array().expect("links").len();
    // The diamond: r1, two branches, the merge router seen from both, the target.
    assert_eq!((responders, links), (6, 6), "{v}");

    let html = std::fs::read_to_string(&page).expect("html");
    let png = artifacts_dir().join("trace-report.png");
    let l = chromium(&page, &png, (1280, 900), &scratch);
    assert_quiet_and_self_contained(&l, &html);
    let path = figure(&l.dom, "path");
    assert_eq!(path.matches("<g class=\"node").count(), responders);
    assert_eq!(path.matches("class=\"edge link\"").count(), links);
    assert_eq!(path.matches("class=\"edge inferred\"").count(), 0);
    assert_eq!(
        figure(&l.dom, "hop-rtt").matches("<circle").count(),
        responders
    );
    check_screenshot(&png, "report-trace.png");

    // The same path for Graphviz: `dot -Tsvg` draws a node per responder, an edge per link.
    let mut args = base.to_vec();
    args.extend(["--format", "dot", &dst]);
    let out = output(&mut probe(&lab.src, &args));
    assert!(out.status.success(), "{out:?}");
    let mut dot = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run dot (Debian package `graphviz`)");
    std::io::Write::write_all(&mut dot.stdin.take().expect("stdin"), &out.stdout)
        .expect("feed dot");
    let svg = dot.wait_with_output().expect("dot");
    assert!(svg.status.success(), "{svg:?}");
    let svg = String::from_utf8_lossy(&svg.stdout);
    assert_eq!(svg.matches("class=\"node\"").count(), responders, "{svg}");
    assert_eq!(svg.matches("class=\"edge\"").count(), links, "{svg}");

    // And as CSV: a header and a row per responder.
    let mut args = base.to_vec();
    args.extend(["--format", "csv", &dst]);
    let out = output(&mut probe(&lab.src, &args));
    assert!(out.status.success(), "{out:?}");
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(csv.starts_with("ttl,addr,hostname,sent,received,loss_pct,"));
    assert_eq!(csv.lines().count(), 1 + responders, "{csv}");
}
