//! The control client: connects with the pinning verifier, records first-use pins, and
//! exchanges the hello.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::error::ControlError;
use super::frame_io::{ReadFrameError, read_frame};
use super::tls;
use crate::control::auth::Token;
use crate::control::handshake::kind;
use crate::control::handshake::{PeerHello, hello, read_welcome};
use crate::control::identity::Fingerprint;
use crate::control::mesh::{MeshJoin, MeshJoined};
use crate::control::messages::{Message, PROTOCOL_VERSION, decode_body, encode};
use crate::control::negotiation::{FarEndResults, ResultsRequest, TestAccepted, TestRequest};
use crate::control::pin::{KnownPeers, PinCheck, PinError, PinPolicy};
use crate::control::trace_request::TraceRequest;
use crate::control::verifier::PinVerifier;
use crate::report::trace::TraceReport;

/// The TLS server name sent (identities are pinned by key, not by name).
const SERVER_NAME: &str = "probe";

/// How to reach and trust a responder's control plane.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The responder's control address.
    pub server: SocketAddr,
    /// The responder as the user named it (`HOST:PORT`), for messages.
    pub peer_name: String,
    /// How the responder's identity is trusted.
    pub pin: PinPolicy,
    /// The shared token, when the responder requires one.
    pub token: Option<Token>,
    /// The protocol version announced ([`PROTOCOL_VERSION`]; another value only to test
    /// how peers answer other versions).
    pub version: u32,
    /// How long to wait for the connection and for each answer.
    pub timeout: Duration,
}

impl ClientConfig {
    /// A configuration with the current protocol version and a 5 s timeout.
    pub fn new(server: SocketAddr, peer_name: String, pin: PinPolicy) -> Self {
        ClientConfig {
            server,
            peer_name,
            pin,
            token: None,
            version: PROTOCOL_VERSION,
            timeout: Duration::from_secs(5),
        }
    }
}

/// An established control connection.
pub struct ControlClient {
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    config: ClientConfig,
    fingerprint: Fingerprint,
    first_use: bool,
}

/// Connects to a responder's control plane and checks its identity against the pin; on
/// first use of a known-peers pin, records the identity presented. Needs a tokio runtime.
pub async fn connect(config: ClientConfig) -> Result<ControlClient, ControlError> {
    let server = config.server;
    let pinned = match &config.pin {
        PinPolicy::Fingerprint(fp) => Some(*fp),
        PinPolicy::KnownPeers { file, key } => KnownPeers::load(file)?.get(key),
    };
    let verifier = PinVerifier::new(pinned, &tls::provider());
    let client_config = tls::client_config(verifier.clone())?;
    let local = match server.ip() {
        IpAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        IpAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    };
    let endpoint = quinn::Endpoint::client(local).map_err(|source| ControlError::Bind {
        addr: local,
        source,
    })?;
    let connecting = endpoint
        .connect_with(client_config, server, SERVER_NAME)
        .map_err(|e| ControlError::Connection {
            server,
            reason: e.to_string(),
        })?;
    let result = tokio::time::timeout(config.timeout, connecting).await;
    let presented = verifier.presented();
    if let Some((presented, PinCheck::Mismatch { expected })) = presented {
        endpoint.close(0_u32.into(), b"");
        return Err(PinError::mismatch(&config.pin, &config.peer_name, expected, presented).into());
    }
    let conn = match result {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            endpoint.close(0_u32.into(), b"");
            return Err(connection_error(server, &e));
        }
        Err(_) => {
            endpoint.close(0_u32.into(), b"");
            return Err(ControlError::Timeout {
                server,
                what: "QUIC handshake",
                secs: config.timeout.as_secs().max(1),
            });
        }
    };
    let Some((fingerprint, check)) = presented else {
        return Err(ControlError::Connection {
            server,
            reason: "the handshake completed without a server certificate".into(),
        });
    };
    let first_use = check == PinCheck::FirstUse;
    if first_use && let PinPolicy::KnownPeers { file, key } = &config.pin {
        KnownPeers::record(file, key, fingerprint)?;
        tracing::info!(
            "trusting {} on first use: {fingerprint} recorded in {}",
            config.peer_name,
            file.display()
        );
    }
    Ok(ControlClient {
        endpoint,
        conn,
        config,
        fingerprint,
        first_use,
    })
}

fn connection_error(server: SocketAddr, e: &quinn::ConnectionError) -> ControlError {
    match e {
        quinn::ConnectionError::ConnectionClosed(close)
            if close.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED =>
        {
            ControlError::Refused { server }
        }
        quinn::ConnectionError::TimedOut => ControlError::Timeout {
            server,
            what: "QUIC handshake",
            secs: tls::IDLE_TIMEOUT.as_secs(),
        },
        other => ControlError::Connection {
            server,
            reason: other.to_string(),
        },
    }
}

impl ControlClient {
    /// The responder's identity fingerprint (as verified in the handshake).
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The responder's control address.
    pub fn server(&self) -> SocketAddr {
        self.config.server
    }

    /// Whether the identity was trusted on first use (and recorded) by this connection.
    pub fn first_use(&self) -> bool {
        self.first_use
    }

    /// Sends the hello; returns what the responder told about itself, its clock in
    /// particular.
    pub async fn hello(&self) -> Result<PeerHello, ControlError> {
        let msg = hello(
            self.config.version,
            self.config.token.clone(),
            concat!("probe ", env!("CARGO_PKG_VERSION")),
        );
        let answer =
            self.exchange_raw(&encode(&msg))
                .await?
                .ok_or_else(|| ControlError::Connection {
                    server: self.config.server,
                    reason: "the server closed the stream without answering the hello".into(),
                })?;
        Ok(read_welcome(answer, self.config.version)?)
    }

    /// Opens a stream, sends `bytes` as they are (frame headers included) and reads one
    /// answer frame, `None` when the server sent none. For testing how responders handle
    /// malformed input; use [`ControlClient::hello`] otherwise.
    pub async fn exchange_raw(&self, bytes: &[u8]) -> Result<Option<Message>, ControlError> {
        self.exchange_within(bytes, self.config.timeout).await
    }

    /// Asks for a test (after [`ControlClient::hello`]); a refusal is
    /// [`ControlError::Rejected`] with the responder's code and message (the limit and its
    /// value, "busy, retry after N s", ...).
    pub async fn request_test(&self, req: &TestRequest) -> Result<TestAccepted, ControlError> {
        match self
            .request(&Message::TestRequest(req.clone()), self.config.timeout)
            .await?
        {
            Message::TestAccepted(a) => Ok(a),
            other => Err(self.unexpected(&other)),
        }
    }

    /// The far end's view of `session`; with `end`, the session ends once answered, and the
    /// responder first waits (up to `patience`) for its own Session-Sender to finish.
    pub async fn results(
        &self,
        session: u64,
        end: bool,
        patience: Duration,
    ) -> Result<FarEndResults, ControlError> {
        let msg = Message::Results(ResultsRequest { session, end });
        match self
            .request(&msg, patience.max(self.config.timeout))
            .await?
        {
            Message::FarEnd(r) => Ok(*r),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Asks the responder to trace back toward this end's address as it sees it (the
    /// reverse path); waits up to `patience` for the report. A refusal (a bound, busy) is
    /// [`ControlError::Rejected`] naming it.
    pub async fn reverse_trace(
        &self,
        req: &TraceRequest,
        patience: Duration,
    ) -> Result<TraceReport, ControlError> {
        match self
            .request(
                &Message::TraceRequest(*req),
                patience.max(self.config.timeout),
            )
            .await?
        {
            Message::TraceReport(r) => Ok(*r),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Joins (or joins again) the responder's mesh as a member behind NAT (see
    /// [`super::serve_member`]).
    pub async fn join_mesh(&self, join: &MeshJoin) -> Result<MeshJoined, ControlError> {
        match self
            .request(&Message::MeshJoin(join.clone()), self.config.timeout)
            .await?
        {
            Message::MeshJoined(j) => Ok(j),
            other => Err(self.unexpected(&other)),
        }
    }

    /// The QUIC connection (the mesh member answers the streams the responder opens).
    pub(super) fn connection(&self) -> &quinn::Connection {
        &self.conn
    }

    /// One request and its answer; an error message is [`ControlError::Rejected`].
    async fn request(&self, msg: &Message, within: Duration) -> Result<Message, ControlError> {
        match self.exchange_within(&encode(msg), within).await? {
            Some(Message::Error(e)) => Err(ControlError::Rejected {
                code: e.code,
                message: e.message,
            }),
            Some(answer) => Ok(answer),
            None => Err(ControlError::Connection {
                server: self.config.server,
                reason: "the server closed the stream without answering".into(),
            }),
        }
    }

    fn unexpected(&self, answer: &Message) -> ControlError {
        ControlError::Unexpected {
            server: self.config.server,
            what: kind(answer).into(),
        }
    }

    async fn exchange_within(
        &self,
        bytes: &[u8],
        within: Duration,
    ) -> Result<Option<Message>, ControlError> {
        let server = self.config.server;
        let stream_err = |reason: String| ControlError::Connection { server, reason };
        let work = async {
            let (mut send, mut recv) = self
                .conn
                .open_bi()
                .await
                .map_err(|e| connection_error(server, &e))?;
            send.write_all(bytes)
                .await
                .map_err(|e| stream_err(e.to_string()))?;
            let _ = send.finish();
            match read_frame(&mut recv).await {
                Ok(body) => Ok(Some(decode_body(&body)?)),
                Err(ReadFrameError::Frame(e)) => Err(e.into()),
                Err(ReadFrameError::Stream(_)) => Ok(None),
            }
        };
        tokio::time::timeout(within, work)
            .await
            .map_err(|_| ControlError::Timeout {
                server,
                what: "answer",
                secs: within.as_secs().max(1),
            })?
    }

    /// Closes the connection and waits (briefly) for the close to be sent.
    pub async fn close(self) {
        self.conn.close(0_u32.into(), b"done");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.endpoint.wait_idle()).await;
    }
}
