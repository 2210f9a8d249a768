//! Tests for [`super`]: the builders keep the defaults and refuse settings that cannot work,
//! naming the setting.

use super::*;

fn v4() -> IpAddr {
    "192.0.2.1".parse().expect("addr")
}

fn v6() -> IpAddr {
    "2001:db8::1".parse().expect("addr")
}

#[test]
fn builder_defaults_are_new() {
    let built = TraceOptions::builder(v4())
        .build()
        .expect("defaults are valid");
    assert_eq!(built, TraceOptions::new(v4()));
    assert_eq!(built.protocol(), Protocol::Icmp);
    assert_eq!(built.mode(), FlowMode::Paris);
    assert_eq!((built.first_ttl, built.max_ttl, built.queries), (1, 30, 3));
    assert_eq!(built.size, 60);
}

#[test]
fn builder_sets_every_field() {
    let src: IpAddr = "192.0.2.9".parse().expect("addr");
    let o = TraceOptions::builder(v4())
        .target_name("dst.example")
        .protocol(Protocol::Tcp)
        .mode(FlowMode::Classic)
        .first_ttl(2)
        .max_ttl(9)
        .queries(1)
        .count(4)
        .interval(Duration::from_millis(200))
        .wait(Duration::from_millis(300))
        .rate_pps(50)
        .port(443)
        .source_port(40_000)
        .source(src)
        .interface("eth1")
        .size(80)
        .tos(0x20)
        .privilege(PrivilegeChoice::Raw)
        .pmtu(true)
        .build()
        .expect("valid");
    assert_eq!(o.target_name(), Some("dst.example"));
    assert_eq!((o.protocol, o.mode), (Protocol::Tcp, FlowMode::Classic));
    assert_eq!((o.first_ttl, o.max_ttl, o.queries, o.count), (2, 9, 1, 4));
    assert_eq!(o.interval, Duration::from_millis(200));
    assert_eq!(o.wait, Duration::from_millis(300));
    assert_eq!(o.rate_pps, 50);
    assert_eq!((o.port, o.source_port), (Some(443), Some(40_000)));
    assert_eq!(o.source, Some(src));
    assert_eq!(o.interface.as_deref(), Some("eth1"));
    assert_eq!((o.size, o.tos), (80, 0x20));
    assert_eq!(o.privilege, PrivilegeChoice::Raw);
    assert!(o.pmtu());
    // `None` clears an optional setting again.
    let cleared = TraceOptions::builder(v4()).port(80).port(None).build();
    assert_eq!(cleared.expect("valid").port, None);
}

#[test]
fn ttl_range_and_zero_counts_are_refused() {
    let b = || TraceOptions::builder(v4());
    assert_eq!(
        b().first_ttl(9).max_ttl(4).build(),
        Err(ConfigError::TtlRange {
            first_ttl: 9,
            max_ttl: 4
        })
    );
    assert_eq!(
        b().first_ttl(0).build(),
        Err(ConfigError::TtlRange {
            first_ttl: 0,
            max_ttl: 30
        })
    );
    assert_eq!(
        b().queries(0).build(),
        Err(ConfigError::Zero(Setting::Queries))
    );
    assert_eq!(b().count(0).build(), Err(ConfigError::Zero(Setting::Count)));
    // One TTL is a valid range.
    assert!(b().first_ttl(5).max_ttl(5).build().is_ok());
}

#[test]
fn size_must_hold_the_protocol_headers() {
    // Paris: IPv4 20 + ICMP or UDP 8 + 2 checksum-steering payload bytes = 30, TCP 20 + 20 =
    // 40 (its probe id is the sequence number); IPv6 headers are 20 bytes longer.
    for (target, protocol, min) in [
        (v4(), Protocol::Icmp, 30),
        (v4(), Protocol::Udp, 30),
        (v4(), Protocol::Tcp, 40),
        (v6(), Protocol::Icmp, 50),
        (v6(), Protocol::Udp, 50),
        (v6(), Protocol::Tcp, 60),
    ] {
        let b = || TraceOptions::builder(target).protocol(protocol);
        assert!(b().size(min).build().is_ok(), "{protocol:?} {target} {min}");
        match b().size(min - 1).build() {
            Err(ConfigError::SizeTooSmall { size, min: m, .. }) => {
                assert_eq!((size, m), (min - 1, min), "{protocol:?} {target}");
            }
            other => panic!("{protocol:?} {target}: {other:?}"),
        }
    }
}

#[test]
fn source_of_the_other_family_is_refused() {
    let err = TraceOptions::builder(v6()).source(v4()).build();
    assert_eq!(
        err,
        Err(ConfigError::MixedFamilies {
            src: v4(),
            dst: v6()
        })
    );
}

#[test]
fn mda_builder_checks_confidence_budget_and_retries() {
    assert_eq!(MdaOptions::builder().build(), Ok(MdaOptions::default()));
    let m = MdaOptions::builder()
        .confidence(0.99)
        .max_probes(500)
        .retries(3)
        .build()
        .expect("valid");
    assert_eq!(
        (m.confidence(), m.max_probes(), m.retries()),
        (0.99, 500, 3)
    );
    for c in [0.0, 1.0, 95.0, -0.5, f64::NAN] {
        assert!(
            matches!(
                MdaOptions::builder().confidence(c).build(),
                Err(ConfigError::Confidence(_))
            ),
            "{c}"
        );
    }
    assert_eq!(
        MdaOptions::builder().max_probes(0).build(),
        Err(ConfigError::Zero(Setting::MaxProbes))
    );
    assert_eq!(
        MdaOptions::builder().retries(0).build(),
        Err(ConfigError::Zero(Setting::Retries))
    );
}
