//! `probe healthcheck URL`: one plain-HTTP GET with a deadline, exit 0 on a 2xx answer.
//!
//! The container image has no shell and no curl (its root holds only the static `probe`), so
//! its `HEALTHCHECK` asks the agent's `/healthz` through this command.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::cli::HealthcheckArgs;

/// The parts of an `http://HOST[:PORT][/PATH]` URL the check needs.
#[derive(Debug, PartialEq)]
struct Target {
    host: String,
    port: u16,
    path: String,
}

fn parse(url: &str) -> anyhow::Result<Target> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!(
            "healthcheck URL {url:?} must start with http:// (e.g. http://127.0.0.1:8000/healthz)"
        )
    };
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, tail) = v6
            .split_once(']')
            .with_context(|| format!("healthcheck URL {url:?}: unclosed `[` in the host"))?;
        (host, tail.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        bail!("healthcheck URL {url:?} has no host (e.g. http://127.0.0.1:8000/healthz)");
    }
    let port = match port {
        None => 80,
        Some(p) => p
            .parse()
            .with_context(|| format!("healthcheck URL {url:?}: port {p:?} is not a number"))?,
    };
    Ok(Target {
        host: host.to_owned(),
        port,
        path: path.to_owned(),
    })
}

/// The status code of an HTTP/1.x status line.
fn status(head: &str) -> Option<u16> {
    let line = head.lines().next()?;
    let mut words = line.split_whitespace();
    if !words.next()?.starts_with("HTTP/1.") {
        return None;
    }
    words.next()?.parse().ok()
}

fn get(target: &Target, timeout: Duration) -> anyhow::Result<u16> {
    let deadline = Instant::now() + timeout;
    let addrs: Vec<_> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {}", target.host))?
        .collect();
    let addr = addrs
        .first()
        .with_context(|| format!("{} has no address", target.host))?;
    let mut stream = TcpStream::connect_timeout(addr, timeout)
        .with_context(|| format!("cannot connect to {addr}"))?;
    let left = deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .context("timed out")?;
    stream.set_read_timeout(Some(left))?;
    stream.set_write_timeout(Some(left))?;
    let host = if target.host.contains(':') {
        format!("[{}]", target.host)
    } else {
        target.host.clone()
    };
    write!(
        stream,
        "GET {} HTTP/1.1\r\nHost: {host}:{}\r\nUser-Agent: probe-healthcheck\r\nConnection: close\r\n\r\n",
        target.path, target.port
    )?;
    // The status line is all the check reads; a body, however long, is not waited for.
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 4096 {
        let n = stream.read(&mut buf).context("no answer")?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    status(&String::from_utf8_lossy(&head)).with_context(|| format!("{addr} did not answer HTTP"))
}

/// Runs the check: prints `healthy` or the reason on stderr; exit 0 when healthy, 1 otherwise.
pub fn main(args: &HealthcheckArgs) -> anyhow::Result<ExitCode> {
    let target = parse(&args.url)?;
    match get(&target, args.timeout) {
        Ok(code) if (200..300).contains(&code) => {
            eprintln!("probe healthcheck: {}: HTTP {code}: healthy", args.url);
            Ok(ExitCode::SUCCESS)
        }
        Ok(code) => {
            eprintln!("probe healthcheck: {}: HTTP {code}: unhealthy", args.url);
            Ok(ExitCode::from(1))
        }
        Err(e) => {
            eprintln!("probe healthcheck: {}: unhealthy: {e:#}", args.url);
            Ok(ExitCode::from(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let t = parse("http://127.0.0.1:8000/healthz").expect("valid");
        assert_eq!(
            t,
            Target {
                host: "127.0.0.1".into(),
                port: 8000,
                path: "/healthz".into()
            }
        );
        let t = parse("http://[::1]:8000/readyz").expect("valid");
        assert_eq!((t.host.as_str(), t.port), ("::1", 8000));
        let t = parse("http://localhost").expect("valid");
        assert_eq!((t.port, t.path.as_str()), (80, "/"));
        assert!(parse("https://x/").is_err());
        assert!(parse("http://:80/").is_err());
        assert!(parse("http://h:port/").is_err());
    }

    #[test]
    fn reads_the_status_line() {
        assert_eq!(status("HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(status("HTTP/1.0 503 Service Unavailable\r\n"), Some(503));
        assert_eq!(status("SSH-2.0-x\r\n"), None);
        assert_eq!(status(""), None);
    }
}
