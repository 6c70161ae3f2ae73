//! The local sandbox: emulators of the systems the CT steps talk to, close enough to the real
//! servers that the official Python clients work against them, plus the pieces the local demo
//! needs.
//!
//! - [`kfp`]: Kubeflow Pipelines v2beta1 API server.
//! - [`registry`]: Kubeflow Model Registry REST API (v1alpha3 and v1 prefixes).
//! - [`forge`]: Gitea-compatible forge: repositories over git smart HTTP, the API subset the
//!   PR step and a workshop user need, and signed push webhooks.
//! - [`git_http`]: `git http-backend` behind axum with Basic auth (used by the forge and tests).
//! - [`serve`]: `ct-sandbox serve`, all emulators on loopback.
//!
//! Every emulator follows one contract: `Options` (clap flags for `ct-sandbox serve`),
//! `Emulator::new(options, base_url)` (a cheap clonable handle with a test-facing API) and
//! `Emulator::router()`.

pub mod demo;
pub mod serve;
pub mod tekton;

pub use ct_emulator::{Server, loopback};
