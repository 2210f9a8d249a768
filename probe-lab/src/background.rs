//! [`Background`]: a child process that is killed when its guard is dropped.

use std::process::{Child, Command, ExitStatus, Output};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// How often [`Background::terminate`] checks whether the process has exited.
const EXIT_POLL: Duration = Duration::from_millis(5);

/// A background process started by [`crate::Host::spawn`]. Dropping the guard kills the process
/// (SIGKILL) and reaps it.
#[derive(Debug)]
pub struct Background {
    child: Option<Child>,
    command: String,
}

impl Background {
    /// Starts `cmd`.
    pub(crate) fn spawn(cmd: &mut Command) -> Result<Self> {
        let command = format!("{cmd:?}");
        let child = cmd.spawn().map_err(|source| Error::Spawn {
            command: command.clone(),
            source,
        })?;
        Ok(Self {
            child: Some(child),
            command,
        })
    }

    fn child_ref(&self) -> &Child {
        // `child` is only taken by methods that consume `self`.
        self.child.as_ref().unwrap_or_else(|| unreachable!())
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child_ref().id()
    }

    /// The underlying child, e.g. to take its piped stdout.
    pub fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().unwrap_or_else(|| unreachable!())
    }

    /// The exit status if the process has already exited.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        let command = self.command.clone();
        self.child_mut()
            .try_wait()
            .map_err(|e| Error::io(format!("checking `{command}`"), e))
    }

    /// Asks the process to stop with SIGTERM, waits up to `grace` for it, then SIGKILLs it,
    /// and returns its exit status and whatever it wrote to piped stdout/stderr.
    pub fn terminate(mut self, grace: Duration) -> Result<Output> {
        let mut child = self.child.take().unwrap_or_else(|| unreachable!());
        let pid = Pid::from_raw(child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) => std::thread::sleep(EXIT_POLL),
                Err(e) => return Err(Error::io(format!("waiting for `{}`", self.command), e)),
            }
        }
        let _ = child.kill();
        child
            .wait_with_output()
            .map_err(|e| Error::io(format!("collecting `{}`", self.command), e))
    }

    /// Waits for the process to exit by itself and returns its status and piped output.
    pub fn wait(mut self) -> Result<Output> {
        let child = self.child.take().unwrap_or_else(|| unreachable!());
        child
            .wait_with_output()
            .map_err(|e| Error::io(format!("waiting for `{}`", self.command), e))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
