//! Small, independent probes for tests and measurements: in-process echo servers and
//! clients, paced UDP bursts, one-way delays with kernel timestamps, and TTL-limited probes.
//! They use plain sockets opened inside a [`crate::Host`]'s namespace and share no code with
//! the impairment hop they are used to check.

mod echo;
mod probe;

pub use echo::{Echo, tcp_echo, tcp_exchange, udp_echo, udp_exchange};
pub use probe::{Burst, HopReply, one_way_delays, traceroute, ttl_probe, udp_burst};
