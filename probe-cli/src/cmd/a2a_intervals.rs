//! How `probe a2a`'s interval reports show while the STAMP test runs: lines on stdout, a
//! live progress line on stderr, or nothing (kept for the JSON).

use std::io::{IsTerminal, Write as _};
use std::time::Duration;

use probe_core::a2a::runtime::Pace;
use probe_core::a2a::{Limit, planned_duration};
use probe_core::report::IntervalReport;
use tokio::sync::mpsc;

use super::a2a_table;
use crate::cli::A2aArgs;

/// How interval reports show while the test runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Show {
    /// Nowhere (collected for the JSON, if asked for).
    Nothing,
    /// A line per interval on stdout (`--report-interval` without `--json`).
    Lines,
    /// One live progress line on stderr, rewritten each second (a terminal, a long run).
    Progress,
}

impl Show {
    pub(super) fn choose(args: &A2aArgs, (pace, limit): (Pace, Limit)) -> Show {
        if args.report_interval.is_some() && !args.json {
            return Show::Lines;
        }
        let long = planned_duration(pace, limit).is_none_or(|d| d > Duration::from_secs(2));
        if !args.quiet && long && std::io::stderr().is_terminal() {
            Show::Progress
        } else {
            Show::Nothing
        }
    }

    /// The interval the engine reports at.
    pub(super) fn every(self, args: &A2aArgs) -> Option<Duration> {
        match (self, args.report_interval) {
            (_, Some(every)) => Some(every),
            (Show::Progress, None) => Some(Duration::from_secs(1)),
            _ => None,
        }
    }

    /// Shows each report as it comes; returns them all once the channel closes.
    pub(super) async fn consume(
        self,
        mut rx: mpsc::Receiver<IntervalReport>,
    ) -> Vec<IntervalReport> {
        let mut all = Vec::new();
        let mut stderr = std::io::stderr();
        if self == Show::Lines {
            println!("{}", a2a_table::interval_header());
        }
        while let Some(r) = rx.recv().await {
            match self {
                Show::Lines => println!("{}", a2a_table::interval_line(&r)),
                Show::Progress => {
                    let _ = write!(stderr, "\r\x1b[2K{}", a2a_table::progress_line(&r));
                    let _ = stderr.flush();
                }
                Show::Nothing => {}
            }
            all.push(r);
        }
        if self == Show::Progress && !all.is_empty() {
            let _ = write!(stderr, "\r\x1b[2K");
            let _ = stderr.flush();
        }
        all
    }
}
