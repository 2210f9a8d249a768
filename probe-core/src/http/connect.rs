//! Connections for HTTP clients other than the HTTP test (the agent's exporters): TCP to the
//! server, or to the proxy [`ProxyConfig`] picks for it (a CONNECT tunnel for `https`), then
//! TLS for `https` with the trust of [`TlsOptions`], offering HTTP/1.1 only.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::client::tunnel;
use super::error::{Failure, FailureClass, HttpError};
use super::proxy::{Proxy, ProxyConfig};
use super::tls::{self, TlsOptions};

/// A byte stream to an HTTP server: TCP, or TLS over TCP.
pub trait ClientStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ClientStream for T {}

/// The TLS settings of a client that speaks HTTP/1.1: the system's trust store (or
/// `SSL_CERT_FILE` / `SSL_CERT_DIR`) and the extra CA file of [`TlsOptions`].
#[derive(Clone, Debug)]
pub struct ClientTls(Arc<rustls::ClientConfig>);

impl ClientTls {
    /// Reads the trust `opts` describes.
    ///
    /// # Errors
    /// The CA file cannot be read or holds no certificate.
    pub fn new(opts: &TlsOptions) -> Result<ClientTls, HttpError> {
        let mut config = (*tls::client_config(opts)?).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ClientTls(Arc::new(config)))
    }
}

/// An open connection to the server of a URL.
pub struct Connection {
    /// The stream to send the request on.
    pub stream: Box<dyn ClientStream>,
    /// The proxy a plain `http` request goes through (it then takes the absolute URL as its
    /// target); `None` when the stream reaches the server itself (directly or tunnelled).
    pub forward_proxy: Option<Proxy>,
}

/// Connects to the server of `url` (`http` or `https`), through the proxy `proxy` picks for it.
///
/// # Errors
/// The connection, the proxy's tunnel or the TLS handshake failed (classified), or the URL is
/// `https` without `tls`.
pub async fn connect(
    url: &url::Url,
    proxy: &ProxyConfig,
    tls: Option<&ClientTls>,
) -> Result<Connection, Failure> {
    let https = url.scheme() == "https";
    let authority_host = url
        .host_str()
        .ok_or_else(|| Failure::new(FailureClass::Protocol, format!("`{url}` has no host")))?;
    let host = authority_host.trim_start_matches('[').trim_end_matches(']');
    let port = url
        .port_or_known_default()
        .unwrap_or(if https { 443 } else { 80 });
    let via = proxy.for_target(https, host).cloned();
    let (to_host, to_port) = via
        .as_ref()
        .map_or((host, port), |p| (p.host.as_str(), p.port));
    let mut tcp = TcpStream::connect((to_host, to_port))
        .await
        .map_err(|e| Failure::io(&e, &format!("{to_host}:{to_port}"), via.is_some()))?;
    if !https {
        return Ok(Connection {
            stream: Box::new(tcp),
            forward_proxy: via,
        });
    }
    if let Some(p) = &via {
        tunnel(&mut tcp, &format!("{authority_host}:{port}"), p).await?;
    }
    let tls = tls.ok_or_else(|| {
        Failure::new(
            FailureClass::Tls,
            format!("{url}: https without a TLS configuration"),
        )
    })?;
    let name = tls::server_name(host).map_err(|e| Failure::new(FailureClass::Tls, e))?;
    let stream = tokio_rustls::TlsConnector::from(Arc::clone(&tls.0))
        .connect(name, tcp)
        .await
        .map_err(|e| {
            Failure::new(
                FailureClass::Tls,
                format!("TLS with {authority_host}:{port}: {e}"),
            )
        })?;
    Ok(Connection {
        stream: Box::new(stream),
        forward_proxy: None,
    })
}
