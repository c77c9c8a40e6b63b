//! Errors that end a command, each mapped to its exit code. (Config errors end it before
//! logging starts and are reported by `cli` directly, with exit 78.)

use crate::exit::Exit;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("another neon-watchdog holds the lock {}{holder}; exiting without a pass (if no other instance runs, the lock is free again: it is released when its holder exits)", path.display())]
    Locked { path: PathBuf, holder: String },
    /// A command-line argument that names something that does not exist (exit 64).
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Other(#[from] anyhow::Error),
}

impl Error {
    pub fn exit(&self) -> Exit {
        match self {
            Error::Locked { .. } => Exit::Locked,
            Error::Usage(_) => Exit::Usage,
            Error::Other(_) => Exit::Internal,
        }
    }
}
