//! `probe report RESULT.json [-o FILE]`: a saved result as a self-contained HTML report,
//! and the file writing that `--html` shares.

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use probe_core::report::A2aReport;
use probe_core::report::html::{a2a_page, trace_page};
use probe_core::report::trace::TraceReport;

use crate::cli::ReportArgs;

/// Which test a saved result is from, told by its fields.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    A2a,
    Trace,
}

fn kind_of(v: &serde_json::Value) -> Option<Kind> {
    let has = |k: &str| v.get(k).is_some();
    if has("hops") && has("target") {
        Some(Kind::Trace)
    } else if has("ssid") && has("forward") && has("reverse") {
        Some(Kind::A2a)
    } else {
        None
    }
}

/// Renders the HTML page of the result `text` (JSON of `probe a2a` or `probe trace`).
fn render(text: &str, source: &str) -> anyhow::Result<String> {
    let v: serde_json::Value = serde_json::from_str(text)
        .with_context(|| format!("{source} is not JSON: save a result with --json first"))?;
    let html = match kind_of(&v) {
        Some(Kind::Trace) => {
            let r: TraceReport = serde_json::from_value(v).with_context(|| {
                format!("{source} looks like a trace result but does not parse")
            })?;
            trace_page(&r)?
        }
        Some(Kind::A2a) => {
            let r: A2aReport = serde_json::from_value(v)
                .with_context(|| format!("{source} looks like an a2a result but does not parse"))?;
            a2a_page(&r)?
        }
        None => bail!(
            "{source} is neither a `probe a2a --json` nor a `probe trace --json` result (no \
             `ssid`/`forward` or `hops`/`target` fields)"
        ),
    };
    Ok(html)
}

/// Writes `html` to `path`, naming the file in the error.
pub(crate) fn write_html(path: &Path, html: &str) -> anyhow::Result<()> {
    std::fs::write(path, html)
        .with_context(|| format!("cannot write the HTML report to {}", path.display()))
}

/// Runs `probe report`.
pub fn run(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let (text, source) = if args.input.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the result from stdin")?;
        (s, "stdin".to_owned())
    } else {
        let s = std::fs::read_to_string(&args.input)
            .with_context(|| format!("cannot read {}", args.input.display()))?;
        (s, args.input.display().to_string())
    };
    let html = render(&text, &source)?;
    match &args.output {
        Some(path) => write_html(path, &html)?,
        None => std::io::stdout()
            .write_all(html.as_bytes())
            .context("cannot write the HTML to stdout")?,
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_results_apart_and_refuses_others() {
        let trace = serde_json::json!({"target": "10.0.0.1", "hops": []});
        let a2a = serde_json::json!({"ssid": 1, "forward": {}, "reverse": {}});
        assert_eq!(kind_of(&trace), Some(Kind::Trace));
        assert_eq!(kind_of(&a2a), Some(Kind::A2a));
        assert_eq!(kind_of(&serde_json::json!({"servers": []})), None);
        let e = render("{\"servers\": []}", "x.json").expect_err("not a result");
        assert!(e.to_string().contains("neither"), "{e}");
        let e = render("nope", "x.json").expect_err("not json");
        assert!(e.to_string().contains("not JSON"), "{e}");
    }
}
