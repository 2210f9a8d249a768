//! Embedding probe-core: an HTTP test from a program, the library side of `probe http`.
//!
//! `cargo run --example http -- URL` measures that URL (proxies from the environment); with no
//! argument it starts a small HTTP/1.1 server on loopback and measures three requests to it.

use std::time::Duration;

use probe_core::http::{HttpOptions, ProxyConfig, run_http};
use probe_core::report::http::render_text;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the local server answers.
const BODY: &str = "hello from the example server\n";

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let (url, proxy) = match std::env::args().nth(1) {
        Some(url) => (url, ProxyConfig::from_env(|k| std::env::var(k).ok())?),
        None => (local_server().await?, ProxyConfig::none()),
    };
    let opts = HttpOptions::builder(url)
        .count(3)
        .interval(Duration::from_millis(50))
        .timeout(Duration::from_secs(5))
        .proxy(proxy)
        .expect("2xx")
        .build()?;
    let report = run_http(&opts).await?;
    print!("{}", render_text(&report));
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// A server on 127.0.0.1 that answers every request with [`BODY`] and closes; returns its URL.
async fn local_server() -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hello", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = 0;
                // Read the request head.
                while let Ok(n) = conn.read(&mut buf[got..]).await {
                    if n == 0 {
                        return;
                    }
                    got += n;
                    if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") || got == buf.len() {
                        break;
                    }
                }
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n{BODY}",
                    BODY.len()
                );
                let _ = conn.write_all(resp.as_bytes()).await;
            });
        }
    });
    Ok(url)
}
