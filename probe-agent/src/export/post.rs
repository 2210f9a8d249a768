//! One HTTP/1.1 `POST` for the exporters, to an `http://` or `https://` URL, direct or
//! through the proxy `HTTP_PROXY` / `HTTPS_PROXY` name (`NO_PROXY` honoured; `https` through a
//! CONNECT tunnel). TLS trusts the system's CA certificates and `export.ca_file`.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{CONTENT_LENGTH, HOST, HeaderName, HeaderValue};
use hyper_util::rt::TokioIo;
use probe_core::http::{ClientTls, ProxyConfig, TlsOptions};
use url::Url;

/// Checks that `url` is one the exporters can `POST` to.
///
/// # Errors
/// Not `http://` or `https://`, or no host.
pub fn check_url(url: &str) -> Result<Url, String> {
    let u = Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(format!("`{url}`: export URLs are http:// or https://"));
    }
    if u.host_str().is_none() {
        return Err(format!("`{url}` has no host"));
    }
    Ok(u)
}

/// How the exporters reach their URLs: the proxies and the TLS trust.
#[derive(Clone, Debug)]
pub struct Client {
    proxy: ProxyConfig,
    tls: ClientTls,
}

impl Client {
    /// A client through `proxy`, trusting the system's CA certificates and those of `ca_file`.
    ///
    /// # Errors
    /// `ca_file` cannot be read or holds no certificate.
    pub fn new(proxy: ProxyConfig, ca_file: Option<&Path>) -> Result<Client, String> {
        let opts = TlsOptions {
            insecure: false,
            ca_file: ca_file.map(Path::to_path_buf),
        };
        let tls = ClientTls::new(&opts).map_err(|e| e.to_string())?;
        Ok(Client { proxy, tls })
    }
}

/// `POST`s `body` to `url` with `headers`; returns the response status and body.
///
/// # Errors
/// The connection or the exchange failed, or took longer than `timeout`.
pub async fn post(
    url: &Url,
    client: &Client,
    headers: &[(&'static str, &str)],
    body: Bytes,
    timeout: Duration,
) -> Result<(u16, Bytes), String> {
    tokio::time::timeout(timeout, exchange(url, client, headers, body))
        .await
        .map_err(|_| format!("no answer from {url} within {timeout:?}"))?
}

async fn exchange(
    url: &Url,
    client: &Client,
    headers: &[(&'static str, &str)],
    body: Bytes,
) -> Result<(u16, Bytes), String> {
    let conn = probe_core::http::connect(url, &client.proxy, Some(&client.tls))
        .await
        .map_err(|f| f.message)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(conn.stream))
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    tokio::spawn(connection);
    let host = url.host_str().unwrap_or_default();
    // Through a forward proxy the request line carries the absolute URL.
    let target = if conn.forward_proxy.is_some() {
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
    if let Some(auth) = conn
        .forward_proxy
        .as_ref()
        .and_then(|p| p.authorization.as_deref())
    {
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
