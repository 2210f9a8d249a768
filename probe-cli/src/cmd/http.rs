//! `probe http`: one request at a time with each phase timed, the status, HTTP and TLS
//! versions, certificate expiry and size, or the failure class.

use std::process::ExitCode;

use anyhow::Context;
use probe_core::dns::Family;
use probe_core::http::{HttpOptions, Proxy, ProxyConfig, TlsOptions, parse_no_proxy, run_http};
use probe_core::report::http::render_text;

use crate::cli::HttpArgs;

/// Runs `probe http`. Exit status 0 when every request succeeded, 1 when any failed (the
/// report says how), 2 for bad input.
pub fn main(args: &HttpArgs, global_dns: &[String]) -> anyhow::Result<ExitCode> {
    let opts = options(args, global_dns)?;
    let report = super::current_thread()?.block_on(run_http(&opts))?;
    super::print_report(args.json, &report, render_text, report.all_ok())
}

fn options(args: &HttpArgs, global_dns: &[String]) -> anyhow::Result<HttpOptions> {
    let env = |k: &str| std::env::var(k).ok();
    let mut proxy = match &args.proxy {
        Some(url) => ProxyConfig::all(Proxy::parse(url)?, Vec::new()),
        None => ProxyConfig::from_env(env)?,
    };
    if let Some(list) = &args.noproxy {
        proxy.no_proxy = parse_no_proxy(list);
    } else if args.proxy.is_some() {
        proxy.no_proxy = ProxyConfig::from_env(|k| {
            k.to_ascii_lowercase()
                .contains("no_proxy")
                .then(|| env(k))
                .flatten()
        })?
        .no_proxy;
    }
    let body = match args.data.as_deref() {
        Some(d) if d.starts_with('@') => std::fs::read(&d[1..])
            .with_context(|| format!("cannot read the request body from {}", &d[1..]))?,
        Some(d) => d.as_bytes().to_vec(),
        None => Vec::new(),
    };
    let family = match (args.family.ipv4, args.family.ipv6) {
        (true, _) => Family::V4,
        (_, true) => Family::V6,
        _ => Family::Any,
    };
    Ok(HttpOptions::builder(args.url.clone())
        .method(args.method.clone())
        .headers(args.header.iter().cloned())
        .body(body)
        .expects(args.expect.iter().cloned())
        .tls(TlsOptions {
            insecure: args.insecure,
            ca_file: args.cacert.clone(),
        })
        .proxy(proxy)
        .timeout(args.timeout)
        .count(args.count)
        .interval(args.interval)
        .dns(super::dns_config(global_dns)?)
        .family(family)
        .build()?)
}
