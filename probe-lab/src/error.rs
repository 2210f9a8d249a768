//! Error type of the testbed library.

use std::io;

/// Everything that can go wrong while building or driving a testbed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An external command (`ip`, `nft`, ...) ran but reported failure.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line, for the reader.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on standard error.
        stderr: String,
    },
    /// An external command could not be started at all.
    #[error("cannot start `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why it did not start.
        source: io::Error,
    },
    /// A file or device operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// A system call made through `nix` failed.
    #[error("{context}: {source}")]
    Sys {
        /// What was being done.
        context: String,
        /// The errno.
        source: nix::Error,
    },
    /// A command printed something this library does not understand.
    #[error("cannot parse output of `{command}`: {detail}")]
    Parse {
        /// The command line.
        command: String,
        /// What was wrong.
        detail: String,
    },
    /// A topology or impairment was asked for with parameters that cannot work.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Error {
    /// Wraps an I/O error with a description of what was being done.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// Wraps an errno with a description of what was being done.
    pub(crate) fn sys(context: impl Into<String>, source: nix::Error) -> Self {
        Self::Sys {
            context: context.into(),
            source,
        }
    }
}

/// Result alias of the testbed library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
