//! The one error type emulator handles and stores return. Each server words it in its own wire
//! format (a `googleRpcStatus`, a `{"code","message"}`, Gitea's `{"message","url"}`, …) by
//! mapping the [`ErrorKind`] to its status code; the message is the server's own text.

use std::fmt;

/// What went wrong, as far as a caller can act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is malformed: a bad id, an unknown field, a value of the wrong type.
    Invalid,
    /// Well-formed, but a required field is missing or a value is refused.
    Unprocessable,
    /// The object (or its parent) does not exist.
    NotFound,
    /// An object with the same name or key exists already.
    AlreadyExists,
    /// The object's state forbids the change (a closed pull request, a pipeline with versions).
    FailedPrecondition,
    /// The emulator itself failed (I/O, a git command).
    Internal,
}

/// An emulator error: a kind and a one-line message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unprocessable, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AlreadyExists, message)
    }
    pub fn failed_precondition(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::FailedPrecondition, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        // A local file or process failing is the emulator's own failure, whatever its kind.
        Error::internal(e.to_string())
    }
}
