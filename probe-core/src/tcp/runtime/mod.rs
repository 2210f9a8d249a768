//! The TCP tests on tokio: [`TcpServer`] (the `probe serve` side of 49153/tcp) and the
//! client calls [`run_connect`] and [`run_throughput`].

mod client;
mod server;
mod stream;

pub use client::{
    ConnectTest, TcpClientOptions, TcpTestError, ThroughputTest, run_connect, run_throughput,
};
pub use server::{REQUEST_WAIT, TcpServer, TcpServerConfig, TcpServerCounters};
pub use stream::BUF_LEN;
