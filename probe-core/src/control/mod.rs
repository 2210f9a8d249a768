//! The control plane on 49152/udp: QUIC (quinn) with TLS 1.3 (rustls), between two probes.
//!
//! A responder (`probe serve`) holds a persistent [`Identity`] (a key pair and a self-signed
//! certificate in its state directory); clients pin it by [`Fingerprint`], given explicitly or
//! learnt on first use and kept in their [`KnownPeers`] file. The first message on a control
//! connection is a [`Hello`] carrying the protocol version and the shared token; the
//! responder answers [`Welcome`] (its fingerprint and clock facts) or an [`ErrorMessage`].
//!
//! Everything except [`runtime`] is sans-IO: message types and framing ([`messages`]), token
//! checks ([`auth`]), the handshake decisions ([`handshake`]), identity files ([`identity`]),
//! pinning ([`pin`]) and the rustls certificate verifier ([`verifier`]).

pub mod auth;
pub mod handshake;
pub mod identity;
pub mod mesh;
pub mod messages;
pub mod negotiation;
pub mod pin;
pub mod runtime;
pub mod sessions;
pub mod state_dir;
pub mod trace_request;
pub mod verifier;

pub use auth::Token;
pub use handshake::{HelloOutcome, PeerHello, ServerFacts};
pub use identity::{Fingerprint, Identity, IdentityError};
pub use messages::{ErrorCode, ErrorMessage, Hello, Message, PROTOCOL_VERSION, Welcome};
pub use negotiation::{FarEndResults, ResultsRequest, TestAccepted, TestKind, TestRequest};
pub use pin::{KnownPeers, PinError, PinPolicy};
pub use runtime::{
    ClientConfig, ControlClient, ControlCounters, ControlError, ControlServer, MeshLinks,
    MeshTestError, ServerConfig, TestsConfig, connect, serve_member,
};
pub use sessions::{Limits, SessionTable};
pub use state_dir::default_state_dir;
pub use trace_request::TraceRequest;

/// The control plane's UDP port.
pub const CONTROL_PORT: u16 = 49152;

/// The TLS application protocol (ALPN) of the control plane.
pub const ALPN: &[u8] = b"probe-control/1";
