//! One HTTP/1.1 `POST` for the exporters, direct or through the `HTTP_PROXY` the agent was
//! given (`NO_PROXY` honoured). Plain `http://` URLs only: an `https://` export URL is refused
//! when the exporter starts.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{CONTENT_LENGTH, HOST, HeaderName, HeaderValue};
use hyper_util::rt::TokioIo;
use probe_core::http::ProxyConfig;
use tokio::net::TcpStream;
use url::Url;

/// Checks that `url` is one the exporters can `POST` to.
///
/// # Errors
/// Not `http://`, or no host.
pub fn check_url(url: &str) -> Result<Url, String> {
    let u = Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    if u.scheme() != "http" {
        return Err(format!(
            "`{url}`: only http:// export URLs are supported (terminate TLS in a local proxy)"
        ));
    }
    if u.host_str().is_none() {
        return Err(format!("`{url}` has no host"));
    }
    Ok(u)
}

/// `POST`s `body` to `url` with `headers`; returns the response status and body.
///
/// # Errors
/// The connection or the exchange failed, or took longer than `timeout`.
pub async fn post(
    url: &Url,
    proxy: &ProxyConfig,
    headers: &[(&'static str, &str)],
    body: Bytes,
    timeout: Duration,
) -> Result<(u16, Bytes), String> {
    tokio::time::timeout(timeout, exchange(url, proxy, headers, body))
        .await
        .map_err(|_| format!("no answer from {url} within {timeout:?}"))?
}

async fn exchange(
    url: &Url,
    proxy: &ProxyConfig,
    headers: &[(&'static str, &str)],
    body: Bytes,
) -> Result<(u16, Bytes), String> {
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(80);
    let via = proxy.for_target(false, host);
    let (connect_host, connect_port) = via.map_or((host, port), |p| (p.host.as_str(), p.port));
    let stream = TcpStream::connect((connect_host, connect_port))
        .await
        .map_err(|e| format!("cannot connect to {connect_host}:{connect_port}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("{connect_host}:{connect_port}: {e}"))?;
    tokio::spawn(conn);
    // Through a proxy the request line carries the absolute URL.
    let target = if via.is_some() {
        url.as_str().to_owned()
    } else {
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    };
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    let mut req = Request::post(target)
        .header(HOST, authority)
        .header(CONTENT_LENGTH, body.len());
    if let Some(auth) = via.and_then(|p| p.authorization.as_deref()) {
        req = req.header("proxy-authorization", auth);
    }
    for (k, v) in headers {
        let v = HeaderValue::from_str(v).map_err(|e| format!("header {k}: {e}"))?;
        req = req.header(HeaderName::from_static(k), v);
    }
    let req = req
        .body(Full::new(body))
        .map_err(|e| format!("request to {url}: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{url}: reading the answer: {e}"))?
        .to_bytes();
    Ok((status, body))
}

/// The next wait after a failure: doubling from one second up to a minute.
pub fn backoff(previous: Option<Duration>) -> Duration {
    previous.map_or(Duration::from_secs(1), |d| {
        (d * 2).min(Duration::from_secs(60))
    })
}
