//! The long-running probe agent, as its own crate so that embedding `probe-core` never pulls an
//! HTTP server or exporters.
//!
//! The agent runs the responder and the scheduled tests, keeps every result in a crash-safe
//! spool and exports them. Every test run ends as one [`ResultRecord`]: the spool stores these
//! records, the metrics and the HTTP endpoints read them.
#![warn(missing_docs, unreachable_pub)]

pub mod config;
mod config_env;
mod config_kinds;
mod config_toml;
mod config_values;
pub mod export;
pub mod http;
pub mod identity;
pub mod log_file;
pub mod mesh;
pub mod mesh_nat;
pub mod record;
pub mod run_loop;
pub mod runner;
mod runner_quic;
pub mod schedule;
pub mod spool;
pub mod state;
pub mod targets;

pub use config::{Config, Problems};
pub use record::{ErrorClass, ResultRecord};
pub use state::{AgentInfo, AgentShared, Readiness};
