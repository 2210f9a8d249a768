//! The responder's side of the reverse path: runs a bounded trace toward the address a
//! control connection comes from (the client's NAT mapping, if any) and answers with its
//! report.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Semaphore;

use crate::control::handshake::error_message;
use crate::control::messages::{ErrorCode, HEADER_LEN, MAX_FRAME_LEN, Message, encode};
use crate::control::sessions::Limits;
use crate::control::trace_request::{MAX_CONCURRENT_TRACES, TraceRequest, busy};
use crate::trace::{TraceOptions, run_trace};

/// The reverse traces of one responder: a bounded number at once, counted.
pub(super) struct ReverseTraces {
    slots: Semaphore,
    pub(super) done: AtomicU64,
    pub(super) refused: AtomicU64,
}

impl ReverseTraces {
    pub(super) fn new() -> Self {
        ReverseTraces {
            slots: Semaphore::new(MAX_CONCURRENT_TRACES),
            done: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Traces toward `client` (the connection's remote address) as `req` asks, within
    /// `limits`; the report, or an error naming why not.
    pub(super) async fn answer(
        &self,
        req: &TraceRequest,
        client: IpAddr,
        limits: &Limits,
    ) -> Message {
        let refuse = |msg: Message| {
            self.refused.fetch_add(1, Ordering::Relaxed);
            msg
        };
        let plan = match req.plan(limits) {
            Ok(p) => p,
            Err(e) => return refuse(Message::Error(e)),
        };
        let Ok(_slot) = self.slots.try_acquire() else {
            return refuse(Message::Error(busy()));
        };
        let client = client.to_canonical();
        let opts = TraceOptions::builder(client)
            .protocol(plan.protocol)
            .max_ttl(plan.max_ttl)
            .queries(plan.queries)
            .wait(plan.wait)
            .rate_pps(plan.rate_pps)
            .port(plan.port)
            .build();
        let report = match opts {
            Ok(o) => run_trace(&o).await,
            Err(e) => Err(e.into()),
        };
        let answer = match report {
            Ok(r) => Message::TraceReport(Box::new(r)),
            Err(e) => {
                tracing::info!("control: reverse trace toward {client} failed: {e}");
                return refuse(error_message(
                    ErrorCode::Internal,
                    format!("the far end's trace toward {client} failed: {e}"),
                ));
            }
        };
        if encode(&answer).len() > HEADER_LEN + MAX_FRAME_LEN {
            return refuse(error_message(
                ErrorCode::Internal,
                format!(
                    "the far end's trace toward {client} is longer than a control frame \
                     ({MAX_FRAME_LEN} bytes): ask for fewer hops"
                ),
            ));
        }
        self.done.fetch_add(1, Ordering::Relaxed);
        tracing::info!("control: reverse trace toward {client} done");
        answer
    }
}
