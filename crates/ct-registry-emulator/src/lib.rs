//! Kubeflow Model Registry REST emulator, close enough to the real server that the official
//! `model-registry` Python client works against it unchanged.
//!
//! Served under `/api/model_registry/v1alpha3` and `/api/model_registry/v1` (same bodies):
//! registered models, model versions, model artifacts (top level and under a version), the
//! find endpoints (`registered_model?name=`, `model_version?name=&parentResourceId=`,
//! `model_artifact?name=&parentResourceId=`), lists with `pageSize`, `nextPageToken` (always
//! present, `""` on the last page), `orderBy` and `sortOrder`. Rules follow the real server:
//! PATCH replaces `customProperties` whole when present, unknown fields are a 400, errors are
//! `{"code","message"}` with 400/404/409/422, `int_value` is a string checked as int32.
//!
//! [`start`] returns a [`RegistryEmulator`] handle (the [`ct_emulator::Emulator`] contract):
//! seed entities with the same validation as over HTTP, read them back, require a bearer token,
//! inject faults (5xx bursts, 429, latency, dropped connections, lost answers) and read the
//! request log.
//!
//! Modules: [`schema`] (request bodies: fields, types, custom properties), [`store`] (state and
//! every change to it), [`http`] (routes, paging, the error wire format).

pub mod http;
pub mod schema;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
pub use ct_emulator::{Emulator, Error, Fault, FaultAction, LoggedRequest};
use ct_emulator::{Front, Result, Served, Style, loopback};
use serde_json::{Map, Value};

use schema::{Kind, decode, parse_id};
use store::{Entity, Store};

/// Errors of the proxy in front of the real server are plain text.
const STYLE: Style = Style {
    error: |status, message| (status, format!("{message}\n")).into_response(),
    forbidden: "Forbidden (user=system:serviceaccount:ci:pipeline, verb=get, resource=services, subresource=proxy)\n",
    open_paths: &[],
};

/// `/api/model_registry/v1alpha3`.
pub const V1ALPHA3: &str = "/api/model_registry/v1alpha3";
/// `/api/model_registry/v1`.
pub const V1: &str = "/api/model_registry/v1";

/// Which API prefixes the emulator answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Prefixes {
    /// Both `/v1alpha3` and `/v1`.
    #[default]
    Both,
    /// Only `/api/model_registry/v1alpha3` (servers behind clients up to 0.3.11).
    V1alpha3,
    /// Only `/api/model_registry/v1`.
    V1,
}

/// Flags for `ct-sandbox serve`.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Model Registry emulator")]
#[group(id = "registry_options")]
pub struct Options {
    /// API prefixes served.
    #[arg(long, env = "CT_SANDBOX_REGISTRY_API", value_enum, default_value_t = Prefixes::Both)]
    pub registry_api: Prefixes,
    /// Require `Authorization: Bearer <token>` with the token in this file; others get 401.
    #[arg(long, env = "CT_SANDBOX_REGISTRY_TOKEN_FILE", value_name = "FILE")]
    pub registry_token_file: Option<PathBuf>,
    /// Delay every answer by this long (e.g. 50ms).
    #[arg(long, env = "CT_SANDBOX_REGISTRY_LATENCY", value_parser = ct_step::cli::parse_duration, value_name = "DURATION")]
    pub registry_latency: Option<Duration>,
    /// A fault to inject, as JSON (repeatable; see `--kfp-fault`), e.g.
    /// `{"method":"PATCH","path":"*/model_versions/*","times":2,"action":{"status":503}}`.
    #[arg(
        long,
        env = "CT_SANDBOX_REGISTRY_FAULT",
        value_name = "JSON",
        value_delimiter = '\n'
    )]
    pub registry_fault: Vec<Fault>,
}

/// The state the routes share (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct Shared {
    store: Arc<Mutex<Store>>,
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The handle on a Model Registry emulator: its URL, seeding and inspection.
#[derive(Debug)]
pub struct RegistryEmulator {
    shared: Shared,
    served: Served,
}

/// Start the emulator on a free loopback port.
pub async fn start(options: Options) -> Result<RegistryEmulator> {
    start_at(loopback(0), options).await
}

/// Start the emulator on `addr`.
pub async fn start_at(addr: SocketAddr, options: Options) -> Result<RegistryEmulator> {
    ct_emulator::start(addr, |url| Ok(build(options, url))).await
}

/// The handle and the router for a caller that serves it itself (at `url`).
pub fn build(options: Options, url: &str) -> (RegistryEmulator, Router) {
    let front = Front::new(STYLE);
    if let Some(f) = &options.registry_token_file {
        let token = match std::fs::read_to_string(f) {
            Ok(t) if !t.trim().is_empty() => t.trim().to_string(),
            _ => {
                // Fail closed: an unreadable token file must not leave the API open.
                tracing::error!(
                    "--registry-token-file {}: unreadable or empty; every request will get 401",
                    f.display()
                );
                format!("unusable-{}", uuid::Uuid::new_v4())
            }
        };
        front.set_tokens(Some(&token), None);
    }
    front.set_latency(options.registry_latency.unwrap_or_default());
    for fault in options.registry_fault {
        front.push(fault);
    }
    let shared = Shared::default();
    let mut api = Router::new();
    if matches!(options.registry_api, Prefixes::Both | Prefixes::V1alpha3) {
        api = api.nest(V1ALPHA3, http::routes());
    }
    if matches!(options.registry_api, Prefixes::Both | Prefixes::V1) {
        api = api.nest(V1, http::routes());
    }
    let router = front
        .layer(api.fallback(not_found_page))
        .with_state(shared.clone())
        .merge(front.admin_routes(Router::new()));
    let emu = RegistryEmulator {
        shared,
        served: Served::new(url, front),
    };
    (emu, router)
}

impl Emulator for RegistryEmulator {
    fn served(&self) -> &Served {
        &self.served
    }

    fn served_mut(&mut self) -> &mut Served {
        &mut self.served
    }
}

impl RegistryEmulator {
    fn store(&self) -> MutexGuard<'_, Store> {
        self.shared.store()
    }

    // ---- seeding (same validation as over HTTP) ----

    /// Create a registered model from a `RegisteredModelCreate` body; returns its JSON.
    pub fn create_model(&self, body: Value) -> Result<Value> {
        let f = decode_value(Kind::RegisteredModel, &body, true)?;
        Ok(self.store().create_model(f)?.to_json())
    }

    /// Create a model version (`registeredModelId` in the body); returns its JSON.
    pub fn create_version(&self, body: Value) -> Result<Value> {
        let f = decode_value(Kind::ModelVersion, &body, true)?;
        Ok(self.store().create_version(f)?.to_json())
    }

    /// Create a model artifact under a version; returns its JSON.
    pub fn create_version_artifact(&self, version_id: &str, body: Value) -> Result<Value> {
        let mut s = self.store();
        let v = s.get(Kind::ModelVersion, version_id)?.id;
        let f = decode_value(Kind::Artifact, &body, true)?;
        Ok(s.upsert_artifact(Some(v), f)?.0.to_json())
    }

    /// PATCH a model version (a `ModelVersionUpdate` body, validated as over HTTP).
    pub fn patch_version(&self, id: &str, body: Value) -> Result<Value> {
        let f = decode_value(Kind::ModelVersion, &body, false)?;
        Ok(self.store().update(Kind::ModelVersion, id, f)?.to_json())
    }

    // ---- inspection ----

    /// A model version's JSON, as the server returns it.
    pub fn version(&self, id: &str) -> Option<Value> {
        self.store()
            .get(Kind::ModelVersion, id)
            .ok()
            .map(Entity::to_json)
    }

    /// Every version of a model (by model id), ID ascending; none for an unknown model.
    pub fn versions_of(&self, model_id: &str) -> Vec<Value> {
        let Some(m) = parse_id(model_id) else {
            return Vec::new();
        };
        self.store()
            .versions
            .values()
            .filter(|v| v.parent == Some(m))
            .map(Entity::to_json)
            .collect()
    }

    /// The artifacts of a model version, ID ascending (404 for an unknown version).
    pub fn artifacts_of(&self, version_id: &str) -> Result<Vec<Value>> {
        let s = self.store();
        let v = s.get(Kind::ModelVersion, version_id)?.id;
        Ok(s.artifacts
            .values()
            .filter(|a| a.parent == Some(v))
            .map(Entity::to_json)
            .collect())
    }

    /// A model artifact's JSON.
    pub fn artifact(&self, id: &str) -> Option<Value> {
        self.store()
            .get(Kind::Artifact, id)
            .ok()
            .map(Entity::to_json)
    }
}

/// A seeding body, decoded as over HTTP (`create`: a `*Create` body, else a `*Update`).
fn decode_value(kind: Kind, body: &Value, create: bool) -> Result<Map<String, Value>> {
    decode(kind, create, body.to_string().as_bytes(), &[])
}

/// Unknown routes: the plain-text 404 of Go's mux.
async fn not_found_page() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
}
