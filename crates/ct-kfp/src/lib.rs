//! Kubeflow Pipelines v2beta1 client library for the ct-steps KFP binaries.
//!
//! - [`package`]: load a compiled pipeline (IR YAML) the way the kfp SDK does, and apply the
//!   SDK's caching override.
//! - [`params`]: typed run parameters from the IR's `root.inputDefinitions.parameters`.
//! - [`model`]: the v2beta1 API objects, deserialized leniently.
//! - [`client`]: experiments (get-or-create), pipelines and versions, idempotent run
//!   creation, run get/terminate.
//! - [`wait`]: the wait loop with per-task progress, timeout and cancellation.
//! - [`filter`]: the list `filter` JSON, byte-for-byte as the kfp SDK writes it.

pub mod client;
pub mod filter;
pub mod model;
pub mod package;
pub mod params;
pub mod wait;

pub use client::{CreateRun, KfpClient, RunSource};
pub use model::{Experiment, Pipeline, PipelineVersion, Run, RunState};
pub use package::PipelinePackage;
pub use params::{ParamDecl, ParamType};

/// The in-cluster API URL of the DSPA named `dspa` in `namespace` (its auth proxy on :8443).
pub fn default_kfp_url(namespace: &str) -> String {
    format!("https://ds-pipeline-dspa.{namespace}.svc:8443")
}

/// API prefix of every v2beta1 endpoint.
pub const API: &str = "/apis/v2beta1";
