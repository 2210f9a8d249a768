//! Embedding probe-core: the control plane from a program.
//!
//! `cargo run --example control -- [STATE_DIR]` runs a control responder on loopback with the
//! identity kept in `STATE_DIR` (a fresh temporary directory by default), connects to it with
//! the fingerprint pinned and a shared token, and prints what the hello returned: the
//! responder's protocol version, identity and clock facts. It then negotiates a STAMP test with
//! a STAMP responder that answers negotiated sessions only, runs it, prints the far end's view,
//! shows a request over the responder's rate limit and a wrong token being refused, and the
//! responder's counters.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use probe_core::a2a::runtime::{
    A2aOptions, Responder, ResponderConfig, local_clock_info, run_test,
};
use probe_core::a2a::{Admission, AllowList, Direction, Limit, Pace, ReflectorConfig};
use probe_core::control::messages::ClockFacts;
use probe_core::control::{
    ClientConfig, ControlServer, Identity, Limits, PinPolicy, ServerConfig, TestKind, TestRequest,
    TestsConfig, Token, connect,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let state_dir = std::env::args().nth(1).map_or_else(
        || std::env::temp_dir().join(format!("probe-control-example-{}", std::process::id())),
        Into::into,
    );
    let identity = Identity::load_or_create(&state_dir)?;
    let token = Token::new("example secret", "the example")?;
    let server = ControlServer::bind(ServerConfig {
        listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
        identity,
        token: Some(token.clone()),
        allow: AllowList::OPEN,
        clock: local_clock_info(),
        max_connections: 16,
        software: "control example".into(),
    })?;
    // The STAMP responder answers only sessions negotiated over the control plane.
    let admission = Arc::new(Admission::new(true));
    let reflector = ReflectorConfig::builder()
        .clock(local_clock_info())
        .build()?;
    let stamp = Responder::bind(&ResponderConfig::new(
        [SocketAddr::from(([127, 0, 0, 1], 0))],
        reflector,
    )?)?
    .with_admission(Arc::clone(&admission));
    let stamp_addr = stamp.local_addrs()[0];
    // Under require-auth each grant carries a fresh session key, registered in the
    // responder's keyring; the test then runs in authenticated mode (RFC 8762).
    let keyring = stamp.stamp_keys();
    let server = server.serve_tests(TestsConfig {
        limits: Limits {
            max_rate_pps: Some(1000.0),
            ..Limits::default()
        },
        admission,
        stamp_port: stamp_addr.port(),
        clock: local_clock_info(),
        stamp_keys: Some(keyring),
    });
    let (stamp_stop, stamp_stopped) = tokio::sync::oneshot::channel::<()>();
    let stamp_task = tokio::spawn(stamp.run(async move {
        let _ = stamp_stopped.await;
    }));
    let addr = server.local_addrs()[0];
    let fingerprint = server.fingerprint();
    eprintln!("responder on {addr}/udp, identity {fingerprint}");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));

    let mut config = ClientConfig::new(addr, addr.to_string(), PinPolicy::Fingerprint(fingerprint));
    config.token = Some(token);
    let client = connect(config.clone()).await?;
    let peer = client.hello().await?;
    println!(
        "welcome: protocol {}, identity {}, boot id {}, synchronized {}, max error {:?}",
        peer.version,
        peer.fingerprint,
        peer.clock.boot_id,
        peer.clock.synchronized,
        peer.clock.max_error
    );

    // Negotiate 20 packets every 10 ms toward the responder, run them, read its view.
    let ssid = probe_core::control::negotiation::random_ssid();
    let mut request = TestRequest {
        kind: TestKind::Stamp,
        direction: Direction::To,
        interval_ns: Some(10_000_000),
        count: Some(20),
        duration_ms: Some(200),
        size: 44,
        dscp: None,
        ssid,
        port: None,
        clock: Some(ClockFacts::from_info(&local_clock_info())),
        auth: false,
    };
    let granted = client.request_test(&request).await?;
    let opts = A2aOptions::builder(SocketAddr::new(stamp_addr.ip(), granted.stamp_port))
        .ssid(ssid)
        .peer_clock(peer.clock)
        .pace(Pace::Interval(Duration::from_millis(10)))
        .limit(Limit::Count(20))
        .wait(Duration::from_millis(300))
        .stamp_key(granted.session_key()?)
        .build()?;
    let near = run_test(opts).await?;
    let far = client
        .results(granted.session, true, Duration::from_secs(5))
        .await?;
    let seen = far.reflector.unwrap_or_default();
    println!(
        "session {:016x}: sent {}, answered {}; the far end received {}, reflected {}",
        granted.session, near.report.sent, near.report.received, seen.received, seen.reflected
    );
    request.interval_ns = Some(100_000);
    match client.request_test(&request).await {
        Ok(_) => anyhow::bail!("a request over --max-rate was granted"),
        Err(e) => println!("10000 pps: {e}"),
    }
    client.close().await;

    config.token = Some(Token::new("wrong", "the example")?);
    let client = connect(config).await?;
    match client.hello().await {
        Ok(_) => anyhow::bail!("a wrong token was accepted"),
        Err(e) => println!("wrong token: {e}"),
    }
    client.close().await;

    let _ = stop.send(());
    let _ = stamp_stop.send(());
    let stamp_counters = stamp_task.await??;
    println!(
        "STAMP: received {}, reflected {}, not negotiated {}",
        stamp_counters.received, stamp_counters.reflected, stamp_counters.not_negotiated
    );
    let counters = task.await?;
    println!("{}", serde_json::to_string(&counters)?);
    if std::env::args().nth(1).is_none() {
        let _ = std::fs::remove_dir_all(&state_dir);
    }
    Ok(())
}
