//! Result types (serde) shared by the CLI, the agent and library users: the JSON schema.

mod a2a;
mod rtt;
mod voice;

pub use a2a::{
    A2aReport, ClockBasis, ClockReport, DirectionReport, IntervalDirection, IntervalReport,
    ScheduleErrorReport, TimestampSource,
};
pub mod dns;
#[cfg(feature = "html")]
pub mod html;
pub mod http;
pub mod ping;
pub mod tcp;
pub mod timeline;
pub mod trace;
pub mod trace_export;
pub mod trace_graph;
pub mod udp_throughput;
pub use timeline::{Spread, Timeline, TimelineBucket};
pub use voice::{VoiceDirection, VoiceReport};
