//! Embedding probe-core: the control plane from a program.
//!
//! `cargo run --example control -- [STATE_DIR]` runs a control responder on loopback with the
//! identity kept in `STATE_DIR` (a fresh temporary directory by default), connects to it with
//! the fingerprint pinned and a shared token, and prints what the hello returned: the
//! responder's protocol version, identity and clock facts. It then shows a wrong token being
//! refused, and the responder's counters.

use std::net::SocketAddr;

use probe_core::a2a::AllowList;
use probe_core::a2a::runtime::local_clock_info;
use probe_core::control::{
    ClientConfig, ControlServer, Identity, PinPolicy, ServerConfig, Token, connect,
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
    client.close().await;
    println!(
        "welcome: protocol {}, identity {}, boot id {}, synchronized {}, max error {:?}",
        peer.version,
        peer.fingerprint,
        peer.clock.boot_id,
        peer.clock.synchronized,
        peer.clock.max_error
    );

    config.token = Some(Token::new("wrong", "the example")?);
    let client = connect(config).await?;
    match client.hello().await {
        Ok(_) => anyhow::bail!("a wrong token was accepted"),
        Err(e) => println!("wrong token: {e}"),
    }
    client.close().await;

    let _ = stop.send(());
    let counters = task.await?;
    println!("{}", serde_json::to_string(&counters)?);
    if std::env::args().nth(1).is_none() {
        let _ = std::fs::remove_dir_all(&state_dir);
    }
    Ok(())
}
