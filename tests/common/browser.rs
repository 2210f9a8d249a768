//! Headless Chromium for the page tests (Debian's `chromium`): load a page once with a fresh
//! profile, dump its DOM, take a screenshot, collect every console line (blocked loads and
//! console messages come out as `CONSOLE` lines with `--enable-logging=stderr`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use probe_lab::Host;

/// Where screenshots go: `$PROBE_ARTIFACTS_DIR`, default `target/artifacts`.
pub fn artifacts_dir() -> PathBuf {
    let dir = std::env::var_os("PROBE_ARTIFACTS_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/artifacts"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

/// What one Chromium run saw.
pub struct Loaded {
    /// The DOM after load.
    pub dom: String,
    /// Every console line (messages and blocked loads).
    pub console: Vec<String>,
}

/// Loads `url` in headless Chromium (inside `host`'s namespace when given) with a fresh
/// profile under `scratch`, dumps its DOM and writes a screenshot of `size` to `png`.
pub fn chromium(
    host: Option<&Host>,
    url: &str,
    png: &Path,
    size: (u32, u32),
    scratch: &Path,
) -> Loaded {
    let profile = scratch.join("profile");
    let _ = std::fs::remove_dir_all(&profile);
    let mut cmd = match host {
        Some(h) => h.command("timeout"),
        None => Command::new("timeout"),
    };
    let out = cmd
        .arg("90")
        .arg("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--enable-logging=stderr",
            "--v=0",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size={},{}", size.0, size.1))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--dump-dom")
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("run chromium (Debian package `chromium`)");
    assert!(out.status.success(), "chromium failed: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    Loaded {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        console: stderr
            .lines()
            .filter(|l| l.contains(":CONSOLE"))
            .map(str::to_owned)
            .collect(),
    }
}

/// Checks the screenshot decodes and is not blank: enough pixels away from the background
/// and a spread of brightness. With `PROBE_UPDATE_SCREENSHOTS=1` it is also copied to
/// `docs/docs_name` for the README.
pub fn check_screenshot(png: &Path, docs_name: &str) {
    let decoder = png::Decoder::new(std::fs::File::open(png).expect("screenshot written"));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    let samples = info.color_type.samples();
    assert!(samples >= 3, "colour screenshot: {:?}", info.color_type);
    let px = &buf[..info.buffer_size()];
    let lum: Vec<f64> = px
        .chunks_exact(samples)
        .map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
        .collect();
    let n = lum.len() as f64;
    let mean = lum.iter().sum::<f64>() / n;
    let var = lum.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / n;
    let inked = lum.iter().filter(|&&l| l < 200.0).count() as f64 / n;
    assert!(
        var > 100.0 && inked > 0.01,
        "{} looks blank: luminance variance {var:.1}, {:.2}% dark pixels",
        png.display(),
        inked * 100.0
    );
    if std::env::var_os("PROBE_UPDATE_SCREENSHOTS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
        std::fs::create_dir_all(&docs).expect("docs dir");
        std::fs::copy(png, docs.join(docs_name)).expect("copy screenshot");
    }
}

/// The markup of the element `<TAG id="ID"` ... `</TAG>` in `dom`.
pub fn element<'a>(dom: &'a str, tag: &str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("<{tag} id=\"{id}\""))
        .unwrap_or_else(|| panic!("no {tag} {id} in the page"));
    let end = dom[start..]
        .find(&format!("</{tag}>"))
        .unwrap_or_else(|| panic!("no end of {tag} {id}"))
        + start;
    &dom[start..end]
}
