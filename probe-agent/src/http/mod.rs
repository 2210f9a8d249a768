//! The agent's HTTP endpoint: `/` (who the agent is; a browser gets the dashboard),
//! `/healthz`, `/readyz`, `/metrics` (Prometheus text format) and `/results?since=T`.
//!
//! A plain hyper 1 HTTP/1.1 server: five read-only routes need no framework.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ACCEPT, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

mod dashboard;
pub mod dashboard_model;

use crate::export::Metrics;
use crate::state::AgentShared;

/// The content type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Binds the endpoint's listener (before the agent reports itself started, so that a busy
/// port is an error at start-up).
///
/// # Errors
/// The address cannot be bound.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let std = std::net::TcpListener::bind(addr)?;
    std.set_nonblocking(true)?;
    TcpListener::from_std(std)
}

/// Serves `listener` until `stop` completes.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<AgentShared>,
    metrics: Arc<Metrics>,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        let (stream, from) = tokio::select! {
            () = &mut stop => return,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("http: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (shared, metrics) = (Arc::clone(&shared), Arc::clone(&metrics));
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let resp = route(&req, &shared, &metrics);
                async move { Ok::<_, Infallible>(resp) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!(%from, "http: connection ended: {e}");
            }
        });
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json(status: StatusCode, v: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut body = v.to_string();
    body.push('\n');
    reply(status, "application/json", body)
}

/// Whether the client is a browser (its `Accept` names `text/html`).
fn wants_html(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

fn wants_json(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

/// The value of `name` in a query string, percent-decoded.
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn route(
    req: &Request<Incoming>,
    shared: &AgentShared,
    metrics: &Metrics,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "only GET is served here\n".into(),
        );
    }
    let text = "text/plain; charset=utf-8";
    match req.uri().path() {
        "/" => {
            let info = shared.info();
            if wants_json(req) {
                return json(StatusCode::OK, &serde_json::json!(info));
            }
            if wants_html(req) {
                let page = dashboard::render(shared, req.uri().query(), crate::run_loop::unix_ns());
                let mut r = reply(StatusCode::OK, "text/html; charset=utf-8", page);
                r.headers_mut().insert(
                    CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(probe_core::report::html::CONTENT_SECURITY_POLICY),
                );
                return r;
            }
            let body = format!(
                "{}\nid: {}\nname: {}\ntags: {}\nversion: {}\n",
                info.fingerprint,
                info.id,
                info.name,
                info.tags.join(","),
                info.version
            );
            reply(StatusCode::OK, text, body)
        }
        "/healthz" => reply(StatusCode::OK, text, "ok\n".into()),
        "/readyz" => {
            let r = shared.readiness();
            let mut missing = Vec::new();
            if !r.responder_bound {
                missing.push("the responder is not bound yet");
            }
            if !r.config_loaded {
                missing.push("no configuration is loaded yet");
            }
            if !r.first_schedule_run {
                missing.push("the first scheduled runs have not finished yet");
            }
            if missing.is_empty() {
                reply(StatusCode::OK, text, "ready\n".into())
            } else {
                let body = format!("not ready: {}\n", missing.join("; "));
                reply(StatusCode::SERVICE_UNAVAILABLE, text, body)
            }
        }
        "/metrics" => reply(StatusCode::OK, PROMETHEUS_TEXT, metrics.encode()),
        "/results" => {
            let since = match query_param(req.uri().query(), "since") {
                None => 0,
                Some(s) => match crate::spool::parse_since(&s, crate::run_loop::unix_ns()) {
                    Ok(ns) => ns,
                    Err(e) => {
                        return json(
                            StatusCode::BAD_REQUEST,
                            &serde_json::json!({ "error": format!("since: {e}") }),
                        );
                    }
                },
            };
            json(
                StatusCode::OK,
                &serde_json::json!(shared.recent_since(since)),
            )
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            text,
            "not found: the endpoints are /, /healthz, /readyz, /metrics and /results?since=T\n"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_parameters_are_percent_decoded() {
        let q = Some("a=1&since=2026-12-01T10%3A00%3A00Z");
        assert_eq!(
            super::query_param(q, "since").as_deref(),
            Some("2026-12-01T10:00:00Z")
        );
        assert_eq!(super::query_param(q, "b"), None);
        assert_eq!(super::query_param(None, "since"), None);
    }
}
