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
//! (5xx bursts, 429, latency, dropped connections) and read the request log.

pub mod api;
pub mod store;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use store::{ApiResult, Entity, Kind, Store, decode};

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
    /// Answer the first N requests with 503 (a 5xx burst).
    #[arg(
        long,
        env = "CT_SANDBOX_REGISTRY_FAIL_FIRST",
        default_value_t = 0,
        value_name = "N"
    )]
    pub registry_fail_first: u32,
    /// Answer the first N requests with 429 and `Retry-After: 0`.
    #[arg(
        long,
        env = "CT_SANDBOX_REGISTRY_THROTTLE_FIRST",
        default_value_t = 0,
        value_name = "N"
    )]
    pub registry_throttle_first: u32,
    /// Drop the connection of the first N requests without answering.
    #[arg(
        long,
        env = "CT_SANDBOX_REGISTRY_DROP_FIRST",
        default_value_t = 0,
        value_name = "N"
    )]
    pub registry_drop_first: u32,
}

/// A scripted fault for the next matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status (plain-text body) without processing the request.
    Status(u16),
    /// 429 with `Retry-After: 0`, not processed.
    Throttle,
    /// Close the connection without answering; the request is not processed.
    DropBefore,
    /// Process the request, then close the connection without answering.
    DropAfter,
}

/// One request as the emulator saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedRequest {
    pub method: String,
    /// Path including the API prefix.
    pub path: String,
    /// Raw query string ("" when none).
    pub query: String,
    /// The JSON body, when there was one.
    pub body: Option<Value>,
    /// Status answered (0 when the connection was dropped before answering).
    pub status: u16,
    pub authorization: Option<String>,
}

/// A queued fault: method filter, path filter (substring), what to do.
type ScriptedFault = (Option<Method>, Option<String>, Fault);

#[derive(Debug, Default)]
struct Inner {
    store: Mutex<Store>,
    faults: Mutex<VecDeque<ScriptedFault>>,
    log: Mutex<Vec<LoggedRequest>>,
    token: Mutex<Option<String>>,
    forbidden: Mutex<Option<String>>,
    latency: Mutex<Duration>,
}

/// Handle on the emulator (cheap to clone).
#[derive(Debug, Clone)]
pub struct Emulator {
    inner: Arc<Inner>,
    prefixes: Prefixes,
    base_url: String,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Emulator {
    /// A fresh, empty registry. `base_url` is where the router will be served.
    pub fn new(options: Options, base_url: &str) -> Self {
        let emu = Emulator {
            inner: Arc::new(Inner::default()),
            prefixes: options.registry_api,
            base_url: base_url.trim_end_matches('/').to_string(),
        };
        if let Some(f) = &options.registry_token_file {
            match std::fs::read_to_string(f) {
                Ok(t) if !t.trim().is_empty() => emu.require_token(Some(t.trim())),
                _ => {
                    // Fail closed: an unreadable token file must not leave the API open.
                    tracing::error!(
                        "--registry-token-file {}: unreadable or empty; every request will get 401",
                        f.display()
                    );
                    emu.require_token(Some(&format!("unusable-{}", uuid::Uuid::new_v4())));
                }
            }
        }
        *lock(&emu.inner.latency) = options.registry_latency.unwrap_or_default();
        for (n, fault) in [
            (options.registry_fail_first, Fault::Status(503)),
            (options.registry_throttle_first, Fault::Throttle),
            (options.registry_drop_first, Fault::DropBefore),
        ] {
            emu.inject(None, fault, n as usize);
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
        r.fallback(not_found_page)
            .layer(middleware::from_fn_with_state(self.clone(), front))
            .with_state(self.clone())
    }

    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.inner.store)
    }

    // ---- scripting ----

    /// Require `Authorization: Bearer <token>` (`None`: no auth).
    pub fn require_token(&self, token: Option<&str>) {
        *lock(&self.inner.token) = token.map(str::to_string);
    }

    /// A token that authenticates but lacks permission: answered 403, like the auth proxy.
    pub fn forbid_token(&self, token: Option<&str>) {
        *lock(&self.inner.forbidden) = token.map(str::to_string);
    }

    /// Delay every answer.
    pub fn set_latency(&self, d: Duration) {
        *lock(&self.inner.latency) = d;
    }

    /// Apply `fault` to the next `count` requests with this method (any method when `None`).
    pub fn inject(&self, method: Option<Method>, fault: Fault, count: usize) {
        let mut q = lock(&self.inner.faults);
        for _ in 0..count {
            q.push_back((method.clone(), None, fault));
        }
    }

    /// Like [`Self::inject`], only for requests whose path contains `path_part` (e.g.
    /// `/model_artifacts/`).
    pub fn inject_at(&self, method: Option<Method>, path_part: &str, fault: Fault, count: usize) {
        let mut q = lock(&self.inner.faults);
        for _ in 0..count {
            q.push_back((method.clone(), Some(path_part.to_string()), fault));
        }
    }

    /// Faults not yet consumed.
    pub fn pending_faults(&self) -> usize {
        lock(&self.inner.faults).len()
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
        lock(&self.inner.log).clone()
    }

    /// Number of requests with this method (e.g. `"PATCH"`).
    pub fn count(&self, method: &str) -> usize {
        lock(&self.inner.log)
            .iter()
            .filter(|r| r.method == method)
            .count()
    }

    /// Forget the request log.
    pub fn clear_requests(&self) {
        lock(&self.inner.log).clear();
    }

    fn log(&self, r: LoggedRequest) {
        lock(&self.inner.log).push(r);
    }

    fn next_fault(&self, method: &Method, path: &str) -> Option<Fault> {
        let mut q = lock(&self.inner.faults);
        let i = q.iter().position(|(m, p, _)| {
            m.as_ref().is_none_or(|m| m == method) && p.as_ref().is_none_or(|p| path.contains(p))
        })?;
        q.remove(i).map(|(_, _, f)| f)
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

/// Everything in front of the routes: latency, request log, auth, faults.
async fn front(State(emu): State<Emulator>, req: Request, next: Next) -> Response {
    let latency = *lock(&emu.inner.latency);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (parts, body) = req.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, 16 << 20)
        .await
        .unwrap_or_default();
    let mut entry = LoggedRequest {
        method: method.to_string(),
        path,
        query,
        body: serde_json::from_slice(&bytes).ok(),
        status: 0,
        authorization: authorization.clone(),
    };

    let forbidden = lock(&emu.inner.forbidden).clone();
    if let Some(t) = forbidden
        && authorization.as_deref() == Some(format!("Bearer {t}").as_str())
    {
        entry.status = 403;
        emu.log(entry);
        return (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Forbidden (user=system:serviceaccount:ci:pipeline, verb=get, resource=services, subresource=proxy)\n",
        )
            .into_response();
    }

    let token = lock(&emu.inner.token).clone();
    if let Some(t) = token
        && authorization.as_deref() != Some(format!("Bearer {t}").as_str())
    {
        entry.status = 401;
        emu.log(entry);
        // What the auth proxy in front of the real server answers.
        return (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Unauthorized\n",
        )
            .into_response();
    }

    let fault = emu.next_fault(&method, &entry.path);
    match fault {
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            entry.status = status.as_u16();
            emu.log(entry);
            return (status, "injected fault\n").into_response();
        }
        Some(Fault::Throttle) => {
            entry.status = 429;
            emu.log(entry);
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "0")],
                "too many requests\n",
            )
                .into_response();
        }
        Some(Fault::DropBefore) => {
            emu.log(entry);
            drop_connection();
        }
        _ => {}
    }

    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if fault == Some(Fault::DropAfter) {
        emu.log(entry);
        drop_connection();
    }
    entry.status = resp.status().as_u16();
    emu.log(entry);
    resp
}

/// Abort the connection's task: hyper closes the socket without an answer. `resume_unwind`
/// skips the panic hook, so nothing is printed.
fn drop_connection() -> ! {
    std::panic::resume_unwind(Box::new("injected dropped connection"))
}
