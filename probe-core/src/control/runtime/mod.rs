//! The control plane over quinn: the responder's listener and the client.

mod client;
mod error;
mod frame_io;
mod mesh_links;
mod server;
mod tcp_gate;
mod test_service;
mod throughput_service;
pub(crate) mod tls;
mod trace_service;

pub use client::{ClientConfig, ControlClient, connect};
pub use error::ControlError;
pub use mesh_links::{MeshLinks, MeshTestError, serve_member};
pub use server::{ControlCounters, ControlServer, ServerConfig};
pub use tcp_gate::ControlTcpAdmission;
pub use test_service::TestsConfig;
