//! The exit-code contract and the one error type every step returns.
//!
//! | code | meaning |
//! |------|---------|
//! | 0    | success |
//! | 1    | the remote outcome was a failure (e.g. the KFP run FAILED) |
//! | 2    | bad usage or input (flags, files, values) |
//! | 3    | remote, auth, network or local I/O error |
//! | 143  | terminated by SIGTERM/SIGINT (remote work was cancelled first) |

use std::fmt;

/// What went wrong, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The remote work ran and failed (exit 1).
    Failed,
    /// A flag, file or value is wrong (exit 2).
    Usage,
    /// The remote system, auth, network or local I/O failed (exit 3).
    Remote,
    /// Stopped by SIGTERM/SIGINT (exit 143).
    Terminated,
}

impl ErrorKind {
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Failed => 1,
            ErrorKind::Usage => 2,
            ErrorKind::Remote => 3,
            ErrorKind::Terminated => 143,
        }
    }
}

/// One-line error with an exit-code class. Context is prepended as `context: cause`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepError {
    kind: ErrorKind,
    message: String,
}

pub type Result<T, E = StepError> = std::result::Result<T, E>;

impl StepError {
    pub fn new(kind: ErrorKind, message: impl fmt::Display) -> Self {
        // Errors are printed on one line: fold any newline a server put in its message.
        let message = message
            .to_string()
            .split(['\n', '\r'])
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        StepError { kind, message }
    }
    pub fn usage(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Usage, message)
    }
    pub fn remote(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Remote, message)
    }
    pub fn failed(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Failed, message)
    }
    pub fn terminated() -> Self {
        Self::new(ErrorKind::Terminated, "terminated by signal")
    }
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn exit_code(&self) -> u8 {
        self.kind.exit_code()
    }
    /// Prepend context, keeping the kind.
    pub fn context(self, context: impl fmt::Display) -> Self {
        StepError {
            kind: self.kind,
            message: format!("{context}: {}", self.message),
        }
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StepError {}

/// Add context to a `Result<T, StepError>`.
pub trait Context<T> {
    fn context(self, context: impl fmt::Display) -> Result<T>;
    fn with_context<C: fmt::Display>(self, f: impl FnOnce() -> C) -> Result<T>;
}

impl<T> Context<T> for Result<T> {
    fn context(self, context: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.context(context))
    }
    fn with_context<C: fmt::Display>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| e.context(f()))
    }
}

/// Classify a foreign error (io, serde, git2, …) while adding context.
pub trait ResultExt<T> {
    /// A wrong input: exit 2.
    fn usage_err(self, context: impl fmt::Display) -> Result<T>;
    /// A remote, network or I/O failure: exit 3.
    fn remote_err(self, context: impl fmt::Display) -> Result<T>;
}

impl<T, E: fmt::Display> ResultExt<T> for std::result::Result<T, E> {
    fn usage_err(self, context: impl fmt::Display) -> Result<T> {
        self.map_err(|e| StepError::usage(format!("{context}: {e}")))
    }
    fn remote_err(self, context: impl fmt::Display) -> Result<T> {
        self.map_err(|e| StepError::remote(format!("{context}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_contract() {
        assert_eq!(StepError::failed("x").exit_code(), 1);
        assert_eq!(StepError::usage("x").exit_code(), 2);
        assert_eq!(StepError::remote("x").exit_code(), 3);
        assert_eq!(StepError::terminated().exit_code(), 143);
    }

    #[test]
    fn messages_are_one_line_and_context_is_prepended() {
        let e = StepError::remote("HTTP 500\n  <html>\r\n boom").context("GET /runs/1");
        assert_eq!(e.message(), "GET /runs/1: HTTP 500 <html> boom");
        assert_eq!(e.kind(), ErrorKind::Remote);
        let r: Result<()> = Err::<(), _>("nope").usage_err("--param x");
        assert_eq!(r.unwrap_err().to_string(), "--param x: nope");
    }
}
