//! GitOps repository edits for `bump-gitops-version`.
//!
//! - [`yaml`]: byte-preserving YAML scalar editor (only the changed values' bytes change).
//! - [`keypath`]: dotted key paths (`model.image.tag`, `containers[0].image`).
//! - [`paths`]: validation of app, environment and file names; safe lookup inside a tree.
//! - [`git`]: libgit2 transport: credentials, TLS, shallow fetch, push with per-ref status.
//! - [`bump`]: the whole flow: fetch, edit, commit only when bytes change, push with bounded
//!   retries on non-fast-forward, force-with-lease for the step's own branch.

pub mod bump;
pub mod git;
pub mod keypath;
pub mod paths;
pub mod yaml;
