//! Named network namespaces (`ip netns`) with RAII deletion, stale-namespace cleanup and
//! thread-level `setns`.
//!
//! Every namespace this crate creates is named `pl<pid>-<n>-<role>`: `pid` is the creating
//! process, `n` a per-process counter (so tests in one process never collide) and `role` a short
//! word such as `agent`. Namespaces whose `pid` is no longer alive were left behind by a killed
//! run; [`cleanup_stale`] removes them, and the first namespace created by a process calls it.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// Prefix of every namespace name this crate creates.
pub const NAME_PREFIX: &str = "pl";

/// Directory where `ip netns` keeps its namespace handles.
const NETNS_DIR: &str = "/run/netns";

static NEXT_INDEX: AtomicU64 = AtomicU64::new(0);
static STALE_CLEANUP: Once = Once::new();

/// Renders a command line for error messages.
fn describe(cmd: &Command) -> String {
    let mut line = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Runs `cmd` to completion, feeding `stdin` if given; fails unless it exits with status 0.
/// Returns its standard output.
pub(crate) fn run(cmd: &mut Command, stdin: Option<&str>) -> Result<String> {
    let command = describe(cmd);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().map_err(|source| Error::Spawn {
        command: command.clone(),
        source,
    })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())
            .map_err(|e| Error::io(format!("writing stdin of `{command}`"), e))?;
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child
        .wait_with_output()
        .map_err(|e| Error::io(format!("waiting for `{command}`"), e))?;
    if status.success() {
        Ok(String::from_utf8_lossy(&stdout).into_owned())
    } else {
        Err(Error::Command {
            command,
            status: status.to_string(),
            stderr: String::from_utf8_lossy(&stderr).trim().to_owned(),
        })
    }
}

/// Runs `ip` with the given arguments in the root namespace context (used for `ip netns`).
pub(crate) fn ip<I, S>(args: I) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run(Command::new("ip").args(args), None)
}

/// Makes a fresh, unique namespace name for `role`.
fn fresh_name(role: &str) -> String {
    let n = NEXT_INDEX.fetch_add(1, Ordering::Relaxed);
    format!("{NAME_PREFIX}{}-{n}-{role}", std::process::id())
}

/// The pid encoded in one of our namespace names, or `None` for foreign names.
fn owner_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix(NAME_PREFIX)?;
    let (pid, tail) = rest.split_once('-')?;
    if tail.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether a process with this pid exists (EPERM counts as existing).
fn pid_alive(pid: i32) -> bool {
    !matches!(kill(Pid::from_raw(pid), None), Err(nix::Error::ESRCH))
}

/// Names of all namespaces created by this crate (any process), as listed in `/run/netns`.
pub fn list_testbed_namespaces() -> Result<Vec<String>> {
    let dir = match std::fs::read_dir(NETNS_DIR) {
        Ok(dir) => dir,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("reading {NETNS_DIR}"), e)),
    };
    let mut names: Vec<String> = dir
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| owner_pid(name).is_some())
        .collect();
    names.sort();
    Ok(names)
}

/// Removes testbed namespaces whose creating process is gone (left by a killed run), killing
/// any process still inside them. Returns the names removed. Namespaces of live processes
/// (for example tests running in parallel elsewhere) are left alone.
pub fn cleanup_stale() -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for name in list_testbed_namespaces()? {
        if owner_pid(&name).is_some_and(|pid| !pid_alive(pid)) {
            destroy(&name)?;
            removed.push(name);
        }
    }
    Ok(removed)
}

/// Removes every testbed namespace, including those of live processes. Only for manual use
/// (`probe-lab clean --all`): it breaks testbeds other processes are still using.
pub fn cleanup_all() -> Result<Vec<String>> {
    let names = list_testbed_namespaces()?;
    for name in &names {
        destroy(name)?;
    }
    Ok(names)
}

/// Kills every process whose network namespace is `name` (except this process), then deletes
/// the namespace.
fn destroy(name: &str) -> Result<()> {
    let me = std::process::id();
    if let Ok(pids) = ip(["netns", "pids", name]) {
        for pid in pids
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
        {
            if pid != me {
                // The process may exit by itself meanwhile; ESRCH is fine.
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
    }
    ip(["netns", "del", name]).map(|_| ())
}

/// Path of the handle `ip netns` keeps for `name`.
fn handle_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Moves the calling thread into the network namespace whose handle is open as `handle`.
pub(crate) fn enter(handle: &File, name: &str) -> Result<()> {
    nix::sched::setns(handle, CloneFlags::CLONE_NEWNET)
        .map_err(|e| Error::sys(format!("setns into {name}"), e))
}

/// Opens the handle of namespace `name` (for [`enter`]).
pub(crate) fn open_handle(name: &str) -> Result<File> {
    File::open(handle_path(name)).map_err(|e| Error::io(format!("opening netns {name}"), e))
}

/// A network namespace created by this process; deleted (after killing the processes inside)
/// when dropped.
#[derive(Debug)]
pub(crate) struct Namespace {
    name: String,
}

impl Namespace {
    /// Creates a fresh namespace for `role`.
    pub(crate) fn create(role: &str) -> Result<Self> {
        STALE_CLEANUP.call_once(|| match cleanup_stale() {
            Ok(removed) if !removed.is_empty() => {
                tracing::info!(?removed, "removed namespaces left by dead testbed runs");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("stale namespace cleanup failed: {e}"),
        });
        let name = fresh_name(role);
        ip(["netns", "add", &name])?;
        Ok(Self { name })
    }

    /// The namespace's name (as used by `ip netns`).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Err(e) = destroy(&self.name) {
            tracing::warn!("cannot delete namespace {}: {e}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_parses_only_our_names() {
        assert_eq!(owner_pid("pl1234-0-agent"), Some(1234));
        assert_eq!(owner_pid("pl77-12-r3"), Some(77));
        assert_eq!(owner_pid("pl77-"), None);
        assert_eq!(owner_pid("plx-1-a"), None);
        assert_eq!(owner_pid("mdxr1"), None);
        assert_eq!(owner_pid("pl"), None);
    }

    #[test]
    fn fresh_names_are_unique_and_carry_our_pid() {
        let a = fresh_name("a");
        let b = fresh_name("a");
        assert_ne!(a, b);
        assert_eq!(owner_pid(&a), Some(std::process::id() as i32));
    }

    #[test]
    fn this_process_is_alive() {
        assert!(pid_alive(std::process::id() as i32));
    }
}
