//! `probe dns`: resolution latency per server, the answers with their TTLs, and failures
//! classified per server (NXDOMAIN, NODATA, SERVFAIL, REFUSED, timeout).

use std::process::ExitCode;

use probe_core::dns::{DnsTest, RecordType, Resolver};
use probe_core::report::dns::render_text;

use crate::cli::{DnsArgs, DnsType};

/// Runs `probe dns`. Exit status 0 when every server answered every query with records, 1 when
/// any did not (the report says which and why), 2 for bad input.
pub fn main(args: &DnsArgs, global_dns: &[String]) -> anyhow::Result<ExitCode> {
    // The servers measured: --server, else the global --dns, else resolv.conf.
    let servers = if args.server.is_empty() {
        global_dns
    } else {
        &args.server
    };
    let mut config = super::dns_config(servers)?;
    config.timeout = args.timeout;
    config.attempts = 1;
    config.tcp = args.tcp;
    let resolver = Resolver::new(&config)?;
    let test = DnsTest {
        count: args.count,
        interval: args.interval,
        ..DnsTest::new(args.name.clone(), record_type(args.record_type))
    };
    let report = super::current_thread()?.block_on(resolver.run_test(&test))?;
    super::print_report(args.json, &report, render_text, report.all_ok())
}

fn record_type(t: DnsType) -> RecordType {
    match t {
        DnsType::A => RecordType::A,
        DnsType::Aaaa => RecordType::AAAA,
        DnsType::Mx => RecordType::MX,
        DnsType::Txt => RecordType::TXT,
        DnsType::Ns => RecordType::NS,
        DnsType::Soa => RecordType::SOA,
        DnsType::Ptr => RecordType::PTR,
        DnsType::Srv => RecordType::SRV,
        DnsType::Caa => RecordType::CAA,
    }
}
