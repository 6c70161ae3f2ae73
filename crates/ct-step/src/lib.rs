//! Step plumbing shared by every ct-steps binary.
//!
//! A step binary is `parse args → call its library → write results`. This crate owns
//! everything around that: the common flags ([`cli`]), logging with secret redaction
//! ([`log`]), the exit-code contract ([`error`]), Tekton results ([`results`]), in-cluster
//! defaults for token, namespace and CA ([`incluster`]), bounded reads of local input files
//! ([`input`]), the HTTP client with auth, TLS and bounded retries ([`http`]), SIGTERM handling
//! and the cancel budget ([`signal`]) and the `main` harness ([`run`]).

pub mod cli;
pub mod error;
pub mod http;
pub mod incluster;
pub mod input;
pub mod log;
pub mod results;
pub mod run;
pub mod signal;

pub use error::{Context, ErrorKind, Result, ResultExt, StepError};
pub use results::Results;
pub use run::{run_async, run_blocking};
