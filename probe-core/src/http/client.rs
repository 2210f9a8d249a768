//! The IO of one HTTP test request: resolve (hickory), TCP connect, CONNECT through a proxy,
//! TLS (rustls), then one request over hyper's connection API, each step timed into a
//! [`Timeline`].

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HOST, HeaderValue, PROXY_AUTHORIZATION, USER_AGENT};
use hyper::{Request, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::error::{Failure, FailureClass};
use super::phases::Timeline;
use super::proxy::{Proxy, connect_request, parse_connect_response};
use super::{Prepared, cert, tls};
use crate::dns::{DnsError, Resolver};
use crate::report::http::{HttpRequestReport, TlsReport};

/// The HTTP/1.1 read buffer: large reads keep the transfer phase about the network, not about
/// the number of reads.
const READ_BUF: usize = 64 * 1024;

/// Any stream a request can run over: TCP, or TLS over TCP.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Records when the first byte arrives after [`FirstRead::arm`]: the response's first byte.
struct FirstRead {
    inner: Box<dyn Stream>,
    mark: Arc<Mutex<Mark>>,
}

#[derive(Default)]
struct Mark {
    armed: bool,
    at: Option<Instant>,
}

impl AsyncRead for FirstRead {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let mut m = self.mark.lock().unwrap_or_else(PoisonError::into_inner);
            if m.armed && m.at.is_none() {
                m.at = Some(Instant::now());
            }
        }
        r
    }
}

impl AsyncWrite for FirstRead {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// One request's running state.
struct Attempt<'a> {
    p: &'a Prepared,
    resolver: &'a Resolver,
    start: Instant,
    deadline: Instant,
    tl: Timeline,
    rep: HttpRequestReport,
}

impl Attempt<'_> {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Runs `fut` unless the deadline passes first; `doing` says what was going on.
    async fn within<T>(&self, doing: &str, fut: impl Future<Output = T>) -> Result<T, Failure> {
        tokio::time::timeout_at(self.deadline, fut)
            .await
            .map_err(|_| {
                Failure::new(
                    FailureClass::Timeout,
                    format!("timed out after {:?} while {doing}", self.p.timeout),
                )
            })
    }
}

/// Runs one request and reports it.
pub(super) async fn one_request(p: &Prepared, resolver: &Resolver) -> HttpRequestReport {
    let start = Instant::now();
    let mut a = Attempt {
        p,
        resolver,
        start,
        deadline: start + p.timeout,
        tl: Timeline::default(),
        rep: HttpRequestReport {
            ok: false,
            address: None,
            phases: crate::report::http::HttpPhases::default(),
            status: None,
            http_version: None,
            tls: None,
            size_bytes: None,
            error: None,
        },
    };
    let result = run(&mut a).await;
    // A request ends with its last byte; a failed one when its failure was known.
    a.tl.end = a.tl.done.unwrap_or_else(|| start.elapsed());
    a.rep.phases = a.tl.phases();
    match result {
        Ok(()) => a.rep.ok = true,
        Err(f) => a.rep.error = Some(f),
    }
    a.rep
}

async fn run(a: &mut Attempt<'_>) -> Result<(), Failure> {
    let t = &a.p.target;
    let proxy = a.p.proxy.for_target(t.https, &t.host).cloned();
    let (host, port) = match &proxy {
        Some(px) => (px.host.clone(), px.port),
        None => (t.host.clone(), t.port),
    };
    let via = proxy
        .as_ref()
        .map(|px| format!("the proxy {}", px.display()));

    // Resolve.
    let addrs = a
        .within(
            &format!("resolving {host}"),
            a.resolver.lookup_host(&host, a.p.family),
        )
        .await?
        .map_err(|e| dns_failure(&e, via.as_deref()))?;
    a.tl.resolved = Some(a.now());

    // TCP connect, address after address.
    let mut last_err = None;
    let mut stream = None;
    for ip in addrs {
        let sa = std::net::SocketAddr::new(ip, port);
        let what = via.clone().unwrap_or_else(|| sa.to_string());
        match a
            .within(&format!("connecting to {what}"), TcpStream::connect(sa))
            .await?
        {
            Ok(s) => {
                a.rep.address = Some(sa.to_string());
                stream = Some(s);
                break;
            }
            Err(e) => last_err = Some(Failure::io(&e, &what, via.is_some())),
        }
    }
    let Some(tcp) = stream else {
        return Err(last_err.unwrap_or_else(|| {
            Failure::new(FailureClass::NameNotFound, format!("{host} has no address"))
        }));
    };
    a.tl.connected = Some(a.now());
    let _ = tcp.set_nodelay(true);
    let mut tcp = tcp;

    // The tunnel through the proxy.
    if t.https
        && let Some(px) = &proxy
    {
        a.within(
            &format!("asking {} for a tunnel", via.as_deref().unwrap_or_default()),
            tunnel(&mut tcp, &t.authority, px),
        )
        .await??;
        a.tl.tunneled = Some(a.now());
    }

    // TLS.
    let (io, h2): (Box<dyn Stream>, bool) = if t.https {
        let connector = tokio_rustls::TlsConnector::from(
            a.p.tls
                .clone()
                .ok_or_else(|| Failure::new(FailureClass::Tls, "no TLS configuration"))?,
        );
        let name = tls::server_name(&t.host).map_err(|e| Failure::new(FailureClass::Tls, e))?;
        let tls_stream = a
            .within("in the TLS handshake", connector.connect(name, tcp))
            .await?
            .map_err(|e| tls_failure(&e))?;
        a.tl.tls_done = Some(a.now());
        let (_, conn) = tls_stream.get_ref();
        let alpn = conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        let validity = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| cert::validity(c.as_ref()));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        a.rep.tls = Some(TlsReport {
            version: conn
                .protocol_version()
                .map(|v| match v {
                    rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
                    rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default(),
            cipher: conn
                .negotiated_cipher_suite()
                .map(|c| format!("{:?}", c.suite()))
                .unwrap_or_default(),
            cert_not_after: validity.map(|(_, after)| cert::rfc3339(after)),
            cert_expires_in_days: validity.map(|(_, after)| (after - now).div_euclid(86_400)),
            alpn: alpn.clone(),
        });
        (Box::new(tls_stream), alpn.as_deref() == Some("h2"))
    } else {
        (Box::new(tcp), false)
    };

    // The request.
    let forward_proxy = if t.https { None } else { proxy.as_ref() };
    let req = build_request(a.p, forward_proxy, h2)?;
    let mark = Arc::new(Mutex::new(Mark::default()));
    let io = TokioIo::new(FirstRead {
        inner: io,
        mark: mark.clone(),
    });
    let response = if h2 {
        let (mut sender, conn) = a
            .within(
                "starting HTTP/2",
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io),
            )
            .await?
            .map_err(|e| http_failure(&e))?;
        tokio::spawn(conn);
        a.within("waiting for the response", sender.send_request(req))
            .await?
    } else {
        let (mut sender, conn) = a
            .within(
                "starting HTTP/1.1",
                hyper::client::conn::http1::Builder::new()
                    .read_buf_exact_size(Some(READ_BUF))
                    .handshake(io),
            )
            .await?
            .map_err(|e| http_failure(&e))?;
        tokio::spawn(conn);
        mark.lock().unwrap_or_else(PoisonError::into_inner).armed = true;
        a.within("waiting for the response", sender.send_request(req))
            .await?
    }
    .map_err(|e| http_failure(&e))?;
    let first = mark.lock().unwrap_or_else(PoisonError::into_inner).at;
    a.tl.first_byte = Some(first.unwrap_or_else(Instant::now).duration_since(a.start));
    let status = response.status().as_u16();
    a.rep.status = Some(status);
    a.rep.http_version = Some(
        match response.version() {
            Version::HTTP_2 => "HTTP/2",
            Version::HTTP_10 => "HTTP/1.0",
            Version::HTTP_3 => "HTTP/3",
            _ => "HTTP/1.1",
        }
        .to_owned(),
    );
    // The body is counted as it arrives and kept only when an expression must match it (as
    // `curl -o /dev/null`): the transfer phase times the network, not copies into new memory.
    let keep = !a.p.expect.body.is_empty();
    let (size, body) = a
        .within("reading the body", drain(response.into_body(), keep))
        .await?
        .map_err(|e| http_failure(&e))?;
    a.tl.done = Some(a.now());
    a.rep.size_bytes = Some(size);

    if let Some(px) = forward_proxy
        && matches!(status, 407 | 502 | 503)
    {
        return Err(Failure::proxy_status(&px.display(), status));
    }
    let expect = &a.p.expect;
    if !expect.status.contains(status) {
        return Err(Failure::new(
            FailureClass::HttpStatus,
            format!(
                "the server answered {status}, expected {} (set --expect)",
                expect.status.describe()
            ),
        ));
    }
    if let Some(re) = expect.body_mismatch(&body) {
        return Err(Failure::new(
            FailureClass::HttpBody,
            format!(
                "the body ({} bytes) does not match `{}`",
                body.len(),
                re.as_str()
            ),
        ));
    }
    Ok(())
}

/// Reads a body to its end: its size, and its bytes when `keep`.
async fn drain(
    mut body: hyper::body::Incoming,
    keep: bool,
) -> Result<(u64, Vec<u8>), hyper::Error> {
    let (mut size, mut kept) = (0u64, Vec::new());
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            size += data.len() as u64;
            if keep {
                kept.extend_from_slice(&data);
            }
        }
    }
    Ok((size, kept))
}

/// Opens a CONNECT tunnel to `target` through the proxy on `tcp`.
pub(super) async fn tunnel(
    tcp: &mut TcpStream,
    target: &str,
    proxy: &Proxy,
) -> Result<(), Failure> {
    let shown = proxy.display();
    let io_err = |e: std::io::Error| {
        Failure::new(
            FailureClass::Proxy,
            format!("the proxy {shown} dropped the CONNECT exchange: {e}"),
        )
    };
    tcp.write_all(&connect_request(target, proxy))
        .await
        .map_err(io_err)?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = tcp.read(&mut chunk).await.map_err(io_err)?;
        if n == 0 {
            return Err(Failure::new(
                FailureClass::Proxy,
                format!("the proxy {shown} closed the connection instead of answering CONNECT"),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        match parse_connect_response(&buf) {
            Ok(None) => {}
            Ok(Some((200, len))) if len == buf.len() => return Ok(()),
            Ok(Some((200, _))) => {
                return Err(Failure::new(
                    FailureClass::Proxy,
                    format!("the proxy {shown} sent data after its answer to CONNECT"),
                ));
            }
            Ok(Some((status, _))) => return Err(Failure::proxy_status(&shown, status)),
            Err(why) => return Err(Failure::new(FailureClass::Proxy, format!("{shown}: {why}"))),
        }
    }
}

/// The request as it goes on the wire.
fn build_request(
    p: &Prepared,
    forward_proxy: Option<&Proxy>,
    h2: bool,
) -> Result<Request<Full<Bytes>>, Failure> {
    let t = &p.target;
    // Absolute form to a forward proxy and over HTTP/2 (where it becomes :authority).
    let uri = if forward_proxy.is_some() || h2 {
        t.url.clone()
    } else {
        t.path_and_query.clone()
    };
    let mut req = Request::builder()
        .method(p.method.clone())
        .uri(uri)
        .version(if h2 {
            Version::HTTP_2
        } else {
            Version::HTTP_11
        });
    let headers = req
        .headers_mut()
        .ok_or_else(|| Failure::new(FailureClass::Protocol, "cannot build the request"))?;
    if !h2 && let Ok(v) = HeaderValue::from_str(&t.authority_header) {
        headers.insert(HOST, v);
    }
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("probe/", env!("CARGO_PKG_VERSION"))),
    );
    if let Some(auth) = forward_proxy.and_then(|px| px.authorization.as_deref())
        && let Ok(v) = HeaderValue::from_str(auth)
    {
        headers.insert(PROXY_AUTHORIZATION, v);
    }
    for (name, value) in &p.headers {
        headers.insert(name.clone(), value.clone());
    }
    req.body(Full::new(p.body.clone())).map_err(|e| {
        Failure::new(
            FailureClass::Protocol,
            format!("cannot build the request: {e}"),
        )
    })
}

fn dns_failure(e: &DnsError, via: Option<&str>) -> Failure {
    let class = match e {
        DnsError::Timeout { .. } => FailureClass::Timeout,
        DnsError::Transport { .. } => FailureClass::Network,
        _ => FailureClass::NameNotFound,
    };
    let mut f = Failure::new(class, e.to_string());
    if let Some(via) = via {
        f.message = format!("{via}: {}", f.message);
    }
    f
}

fn tls_failure(e: &std::io::Error) -> Failure {
    let text = e.to_string();
    let hint = if text.contains("certificate") || text.contains("Certificate") {
        " (trust its CA with --cacert FILE, or skip the checks with --insecure)"
    } else {
        ""
    };
    Failure::new(
        FailureClass::Tls,
        format!("TLS handshake failed: {text}{hint}"),
    )
}

fn http_failure(e: &hyper::Error) -> Failure {
    let class = if e.is_parse() || e.is_parse_status() || e.is_user() {
        FailureClass::Protocol
    } else {
        FailureClass::Network
    };
    let mut message = format!("HTTP exchange failed: {e}");
    if e.is_incomplete_message() {
        message.push_str(" (the server closed the connection before a complete response)");
    }
    Failure::new(class, message)
}
