//! Kubeflow Model Registry REST client (`/api/model_registry/v1alpha3` and `/v1`) and the
//! metadata change `write-registry-metadata` makes.
//!
//! - [`value`]: `customProperties` with every `metadataType` kept as raw JSON, so values this
//!   crate does not touch (struct, proto, unknown) go back to the server unchanged.
//! - [`types`]: the entities read and the PATCH bodies sent (PATCH replaces the whole
//!   `customProperties` map when the key is present).
//! - [`client`]: [`RegistryClient`], prefix detection, find endpoints, paging through lists.
//! - [`plan`]: look everything up and validate, then apply; re-runs send no PATCH.

pub mod client;
pub mod plan;
pub mod types;
pub mod value;

pub use client::{ApiVersion, RegistryClient};
pub use plan::{Change, Outcome, Plan, Request, apply, plan};
pub use value::{CustomProperties, MetadataValue, Typed};
