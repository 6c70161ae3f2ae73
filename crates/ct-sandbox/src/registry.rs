//! Kubeflow Model Registry REST emulator, close enough to the real server that the official
//! `model-registry` Python client works against it unchanged.
//!
//! Served under `/api/model_registry/v1alpha3` and `/api/model_registry/v1` (same bodies):
//! registered models, model versions, model artifacts (top level and under a version), the
//! find endpoints (`registered_model?name=`, `model_version?name=&parentResourceId=`,
//! `model_artifact?name=&parentResourceId=`), lists with `pageSize`, `nextPageToken` (always
//! present, `""` on the last page), `orderBy` and `sortOrder`. Rules follow the real server
//! (see [`store`]): PATCH replaces `customProperties` whole when present, unknown fields are a
//! 400, errors are `{"code","message"}` with 400/404/409/422, `int_value` is a string checked
//! as int32.
//!
//! Tests script it through [`Emulator`]: seed entities, require a bearer token, inject faults
//! (5xx bursts, 429, latency, dropped connections, lost answers; see [`crate::faults`]) and read
//! the request log.

pub mod api;
pub mod store;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

pub use ct_emulator::{Fault, FaultAction, LoggedRequest};
use ct_emulator::{Front as Faults, Style};
use store::{ApiResult, Entity, Kind, Store, decode};

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

#[derive(Debug)]
struct Inner {
    store: Mutex<Store>,
    faults: Faults,
}

/// Handle on the emulator (cheap to clone).
#[derive(Debug, Clone)]
pub struct Emulator {
    inner: Arc<Inner>,
    prefixes: Prefixes,
    base_url: String,
}

impl Emulator {
    /// A fresh, empty registry. `base_url` is where the router will be served.
    pub fn new(options: Options, base_url: &str) -> Self {
        let emu = Emulator {
            inner: Arc::new(Inner {
                store: Mutex::default(),
                faults: Faults::new(STYLE),
            }),
            prefixes: options.registry_api,
            base_url: base_url.trim_end_matches('/').to_string(),
        };
        let faults = emu.faults();
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
            faults.set_tokens(Some(&token), None);
        }
        faults.set_latency(options.registry_latency.unwrap_or_default());
        for fault in options.registry_fault {
            faults.push(fault);
        }
        emu
    }

    /// Base URL (no prefix).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The axum router serving every enabled prefix.
    pub fn router(&self) -> Router {
        let mut r = Router::new();
        if matches!(self.prefixes, Prefixes::Both | Prefixes::V1alpha3) {
            r = r.nest(V1ALPHA3, api::routes());
        }
        if matches!(self.prefixes, Prefixes::Both | Prefixes::V1) {
            r = r.nest(V1, api::routes());
        }
        let faults = self.faults();
        faults
            .layer(r.fallback(not_found_page))
            .with_state(self.clone())
            .merge(faults.admin_routes(Router::new()))
    }

    /// Request log, latency, faults and tokens (shared with the other emulators).
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        (self.inner.store.lock()).unwrap_or_else(|p| p.into_inner())
    }

    // ---- scripting (and [`Self::faults`]) ----

    /// Apply `action` to the next `count` requests with this method (any method when `None`).
    pub fn inject(&self, method: Option<Method>, action: FaultAction, count: u32) {
        let method = method.as_ref().map(Method::as_str);
        self.faults().push(Fault::new(method, None, count, action));
    }

    // ---- seeding (same validation as over HTTP) ----

    /// Create a registered model from a `RegisteredModelCreate` body; returns its JSON.
    pub fn create_model(&self, body: Value) -> ApiResult<Value> {
        let f = decode_value(Kind::RegisteredModel, &body, &[])?;
        Ok(self.store().create_model(f)?.to_json())
    }

    /// Create a model version (`registeredModelId` in the body); returns its JSON.
    pub fn create_version(&self, body: Value) -> ApiResult<Value> {
        let f = decode_value(Kind::ModelVersion, &body, &[])?;
        Ok(self.store().create_version(f)?.to_json())
    }

    /// Create a model artifact under a version; returns its JSON.
    pub fn create_version_artifact(&self, version_id: &str, body: Value) -> ApiResult<Value> {
        let mut s = self.store();
        let v = s.get(Kind::ModelVersion, version_id)?.id;
        let f = decode_value(Kind::Artifact, &body, &[])?;
        Ok(s.upsert_artifact(Some(v), f)?.0.to_json())
    }

    /// PATCH a model version (a `ModelVersionUpdate` body, validated as over HTTP).
    pub fn patch_version(&self, id: &str, body: Value) -> ApiResult<Value> {
        let f = decode_value_update(Kind::ModelVersion, &body)?;
        Ok(self.store().update(Kind::ModelVersion, id, f)?.to_json())
    }

    /// A model version's JSON, as the server returns it.
    pub fn version(&self, id: &str) -> Option<Value> {
        self.store()
            .get(Kind::ModelVersion, id)
            .ok()
            .map(Entity::to_json)
    }

    /// Every version of a model (by model id), ID ascending.
    pub fn versions_of(&self, model_id: &str) -> Vec<Value> {
        let s = self.store();
        let Some(m) = store::parse_id(model_id) else {
            return Vec::new();
        };
        s.versions
            .values()
            .filter(|v| v.parent == Some(m))
            .map(Entity::to_json)
            .collect()
    }

    /// A model artifact's JSON.
    pub fn artifact(&self, id: &str) -> Option<Value> {
        self.store()
            .get(Kind::Artifact, id)
            .ok()
            .map(Entity::to_json)
    }

    // ---- request log ----

    /// Every request served so far.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.faults().requests()
    }

    /// Number of requests with this method (e.g. `"PATCH"`).
    pub fn count(&self, method: &str) -> usize {
        let log = self.requests();
        log.iter().filter(|r| r.method == method).count()
    }
}

fn decode_value(kind: Kind, body: &Value, extra: &[&str]) -> ApiResult<Map<String, Value>> {
    decode(kind, true, body.to_string().as_bytes(), extra)
}

fn decode_value_update(kind: Kind, body: &Value) -> ApiResult<Map<String, Value>> {
    decode(kind, false, body.to_string().as_bytes(), &[])
}

/// Unknown routes: the plain-text 404 of Go's mux.
async fn not_found_page() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
}
