//! The userspace impairment hop (this kernel has no netem).
//!
//! In the hop's namespace, policy routing sends every packet arriving from one side into a
//! TUN device (`ip rule add iif eth0 lookup 100`, table 100: `default dev tun-fwd`). A thread
//! reads each packet, holds it as the [`logic`] state machine decides (delay, jitter, loss,
//! duplication, reordering, rate limit) and writes it back into the same TUN device, from
//! where the kernel routes it onward by the main table (`rp_filter` off).
//!
//! **TTL:** a packet crossing the hop is forwarded twice (into the TUN and out of it), so the
//! hop costs two TTL/hop-limit units and a traceroute shows the hop's address twice.

pub mod logic;
pub mod runner;
pub mod spec;
mod tun;

pub use logic::{
    DropReason, ImpairConfig, ImpairStats, Impairer, PacketClass, Released, Verdict, classify,
};
pub use runner::{ImpairReport, ImpairerThread, Lateness, Timing, monotonic_ns};
