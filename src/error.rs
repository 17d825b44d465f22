//! The one error type of the library, and how each kind maps to an exit code.
//!
//! Variants carry their context (which file, which engine, which field), so that a
//! message printed with `{:#}` tells the user where to look and what to do.

use std::path::PathBuf;

/// Everything dbbench can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The workload file (or a flag) is wrong: bad TOML, unknown key, impossible value.
    #[error("{file}:{line}:{column}: {message}")]
    Spec { file: PathBuf, line: usize, column: usize, message: String },

    /// A value is invalid but has no position in a file (a flag, an environment variable).
    #[error("{0}")]
    Input(String),

    /// A dataset could not be read or is inconsistent.
    #[error("dataset {path}: {message}")]
    Dataset { path: PathBuf, message: String },

    /// An I/O error with the path it concerns.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// An engine failed outside the measured requests (connect, prepare, load, cleanup).
    #[error("engine '{engine}': {source}")]
    Engine {
        engine: String,
        #[source]
        source: DriverError,
    },

    /// The run was cut short (Ctrl-C, or engines failed); what was measured has been written.
    #[error("{0}")]
    Incomplete(String),

    /// Anything else at run time.
    #[error("{0}")]
    Runtime(String),
}

impl Error {
    /// The process exit code for this error: 2 for bad input, 1 for everything at run time.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Spec { .. } | Error::Input(_) | Error::Dataset { .. } => 2,
            _ => 1,
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How a driver call failed, sorted so that errors can be counted by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The driver cannot run this op at all (reported, never emulated).
    Unsupported,
    /// The engine could not be reached (connection refused, DNS, TLS handshake).
    Unreachable,
    /// The request took longer than the driver's timeout.
    Timeout,
    /// The engine refused dbbench's credentials (wrong password, token or API key): a
    /// configuration error that fails the engine, never an absent server to skip.
    Auth,
    /// The engine answered with an error (bad request, constraint, server error).
    Rejected,
    /// The engine answered something dbbench could not understand.
    Protocol,
    /// The op had nothing to act on (e.g. delete with no record inserted by this run).
    NothingToDo,
    /// Any other failure.
    Other,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Auth => "auth",
            ErrorKind::Rejected => "rejected",
            ErrorKind::Protocol => "protocol",
            ErrorKind::NothingToDo => "nothing_to_do",
            ErrorKind::Other => "other",
        }
    }
}

/// An error from a driver: its kind and the engine's own message (credentials redacted).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct DriverError {
    pub kind: ErrorKind,
    pub message: String,
}

impl DriverError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        DriverError { kind, message: message.into() }
    }
    pub fn unsupported(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, what)
    }
    pub fn unreachable(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unreachable, what)
    }
    pub fn rejected(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::Rejected, what)
    }
    pub fn protocol(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::Protocol, what)
    }
    pub fn other(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::Other, what)
    }
}

pub type DriverResult<T> = std::result::Result<T, DriverError>;
