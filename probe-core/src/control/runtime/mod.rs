//! The control plane over quinn: the responder's listener and the client.

mod client;
mod error;
mod frame_io;
mod mesh_links;
mod server;
mod test_service;
mod tls;

pub use client::{ClientConfig, ControlClient, connect};
pub use error::ControlError;
pub use mesh_links::{MeshLinks, MeshTestError, serve_member};
pub use server::{ControlCounters, ControlServer, ServerConfig};
pub use test_service::TestsConfig;
