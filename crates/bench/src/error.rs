//! The error of the single-node workloads (`two-node-sends`, `memory`): a run that returns one
//! measured nothing trustworthy.

use std::fmt;

use lightning_core::node::ApiError;
use lightning_core::persist::PersistError;
use shard_engine::store::StoreError;
use shard_engine::EngineError;

/// What went wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A node refused an API call.
    Api {
        /// The call.
        call: &'static str,
        /// Why it was refused.
        source: ApiError,
    },
    /// A record could not be encoded or decoded.
    Persist(PersistError),
    /// A node's store failed (`two-node-sends --store fs`).
    Store(StoreError),
    /// Building a node's commit or checking its store's owner failed.
    Engine(EngineError),
    /// A temporary directory for a store could not be made.
    TempDir(std::io::Error),
    /// The protocol did not do what the workload expects (a missing or unexpected event or
    /// output, a disconnection, a wrong balance, a channel that did not open): a bug in
    /// lnshard.
    Protocol(String),
    /// Reading the process's memory figures failed (`/proc` is Linux-only).
    Proc(String),
    /// The options cannot be run.
    BadOptions(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Api { call, source } => write!(f, "{call} was refused: {source}"),
            Error::Persist(e) => write!(f, "persisting a record failed: {e}"),
            Error::Store(e) => write!(f, "a node's store failed: {e}"),
            Error::Engine(e) => write!(f, "committing a node's state failed: {e}"),
            Error::TempDir(e) => write!(f, "cannot make a temporary store directory: {e}"),
            Error::Protocol(what) => write!(f, "protocol check failed: {what}"),
            Error::Proc(what) => write!(f, "cannot read the process's memory use: {what}"),
            Error::BadOptions(what) => write!(f, "bad options: {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Api { source, .. } => Some(source),
            Error::Persist(e) => Some(e),
            Error::Store(e) => Some(e),
            Error::Engine(e) => Some(e),
            Error::TempDir(e) => Some(e),
            _ => None,
        }
    }
}

impl From<PersistError> for Error {
    fn from(e: PersistError) -> Self {
        Error::Persist(e)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}

impl From<EngineError> for Error {
    fn from(e: EngineError) -> Self {
        Error::Engine(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::TempDir(e)
    }
}

/// Maps a refusal of `call` to [`Error::Api`].
pub(crate) fn api(call: &'static str) -> impl FnOnce(ApiError) -> Error {
    move |source| Error::Api { call, source }
}
