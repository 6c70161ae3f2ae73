//! The front every emulator puts before its API routes: a request log, latency, scripted faults
//! (5xx bursts, 429, delays, dropped connections, answers lost after processing, canned answers)
//! and bearer tokens checked like the auth proxy in front of the real server (plain 401/403).
//!
//! An emulator holds one [`Front`] with its [`Style`], wraps its API routes with
//! [`Front::layer`] and serves [`Front::admin_routes`] (`/_emulator/...`) for other processes.
//! Faults are JSON too (`--kfp-fault`, `--registry-fault`), e.g.
//! `{"method":"GET","path":"/apis/v2beta1/runs/*","times":3,"action":{"status":503}}`.

use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultAction {
    /// Answer this status (the emulator's error body) without processing the request.
    Status(u16),
    /// 429 with `Retry-After: 0`, not processed.
    Throttle,
    /// Wait this many milliseconds, then process normally.
    DelayMs(u64),
    /// Process, then wait this many milliseconds before answering (a client timeout then
    /// leaves it unsure whether the request took effect).
    DelayAfterMs(u64),
    /// Answer this status and JSON body without processing the request (e.g. a stale `{}`
    /// list, to stage a race).
    Answer { status: u16, body: Value },
    /// Close the connection without answering; not processed.
    DropBefore,
    /// Process the request, then close the connection without answering.
    DropAfter,
}

/// A fault for the next `times` requests matching `method` (any when `None`) and `path` (any
/// when `None`; `*` matches any run of characters, so a trailing `*` is a prefix).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default = "one")]
    pub times: u32,
    pub action: FaultAction,
}

fn one() -> u32 {
    1
}

impl Fault {
    pub fn new(method: Option<&str>, path: Option<&str>, times: u32, action: FaultAction) -> Self {
        Fault {
            method: method.map(String::from),
            path: path.map(String::from),
            times,
            action,
        }
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        self.times > 0
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method.as_str()))
            && self.path.as_deref().is_none_or(|p| glob(p, path))
    }
}

impl FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        serde_json::from_str(s).map_err(|e| format!("not a fault JSON ({e})"))
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn glob(pattern: &str, s: &str) -> bool {
    let Some((head, tail)) = pattern.split_once('*') else {
        return pattern == s;
    };
    let Some(rest) = s.strip_prefix(head) else {
        return false;
    };
    (0..=rest.len()).any(|i| rest.is_char_boundary(i) && glob(tail, &rest[i..]))
}

/// One API request as the emulator saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedRequest {
    pub method: String,
    /// Path, including any API prefix.
    pub path: String,
    /// Raw query string ("" when none).
    pub query: String,
    /// The JSON body, when there was one.
    pub body: Option<Value>,
    /// Status answered (0 when the connection was dropped before answering).
    pub status: u16,
    pub authorization: Option<String>,
}

/// How an emulator's answers look.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// An error answer (injected statuses and 429s) in the server's format.
    pub error: fn(StatusCode, String) -> Response,
    /// The plain-text body of a 403 for the forbidden token, as the server's proxy words it.
    pub forbidden: &'static str,
    /// Paths served without a token (the proxy's allow-list).
    pub open_paths: &'static [&'static str],
}

const MAX_LOG: usize = 5000;

/// Where every emulator serves its admin routes.
pub const ADMIN: &str = "/_emulator";

#[derive(Debug, Default)]
struct Script {
    faults: Vec<Fault>,
    requests: Vec<LoggedRequest>,
    latency: Duration,
    required: Option<String>,
    forbidden: Option<String>,
}

/// Handle on an emulator's faults, tokens and request log (cheap to clone).
#[derive(Debug, Clone)]
pub struct Front {
    script: Arc<Mutex<Script>>,
    style: Style,
}

impl Front {
    /// No faults, no latency, no auth, answering in `style`.
    pub fn new(style: Style) -> Self {
        Front {
            script: Arc::default(),
            style,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queue a fault (the first matching fault applies; it is used `times` times).
    pub fn push(&self, fault: Fault) {
        if fault.times > 0 {
            self.lock().faults.push(fault);
        }
    }

    /// Drop every queued fault.
    pub fn clear(&self) {
        self.lock().faults.clear();
    }

    /// How many faulty answers are still queued.
    pub fn pending(&self) -> usize {
        self.lock().faults.iter().map(|f| f.times as usize).sum()
    }

    /// Delay every answer by `latency`.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Require `Authorization: Bearer <required>` (`None`: no auth; others get 401);
    /// `forbidden` authenticates but lacks RBAC (403).
    pub fn set_tokens(&self, required: Option<&str>, forbidden: Option<&str>) {
        let mut s = self.lock();
        (s.required, s.forbidden) = (required.map(String::from), forbidden.map(String::from));
    }

    /// Apply `action` to the next `count` requests with this method (any method when `None`).
    pub fn inject(&self, method: Option<Method>, action: FaultAction, count: u32) {
        let method = method.as_ref().map(Method::as_str);
        self.push(Fault::new(method, None, count, action));
    }

    /// Every request so far, oldest first (the latest 5000).
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.lock().requests.clone()
    }

    /// How many logged requests have this method (e.g. `"PATCH"`).
    pub fn count(&self, method: &str) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.method == method)
            .count()
    }

    /// Forget the request log.
    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// `router` behind the log, latency, faults and token check.
    pub fn layer<S: Clone + Send + Sync + 'static>(&self, router: Router<S>) -> Router<S> {
        router.layer(middleware::from_fn_with_state(self.clone(), front))
    }

    /// The admin routes under [`ADMIN`], outside the front (no auth, no faults, not logged):
    /// `POST /_emulator/faults` (a [`Fault`] as JSON), `DELETE /_emulator/faults`,
    /// `GET /_emulator/requests`, and the emulator's own `extra` routes (paths relative to
    /// `/_emulator`, e.g. `/runs/{id}/state`).
    pub fn admin_routes(&self, extra: Router) -> Router {
        let (f, g, h) = (self.clone(), self.clone(), self.clone());
        let push = move |Json(fault): Json<Fault>| async move {
            f.push(fault);
            StatusCode::NO_CONTENT
        };
        let clear = move || async move {
            g.clear();
            StatusCode::NO_CONTENT
        };
        let shared = Router::new()
            .route("/faults", post(push).delete(clear))
            .route("/requests", get(move || async move { Json(h.requests()) }));
        Router::new().nest(ADMIN, shared.merge(extra))
    }

    fn take(&self, method: &Method, path: &str) -> Option<FaultAction> {
        let mut s = self.lock();
        let f = s.faults.iter_mut().find(|f| f.matches(method, path))?;
        f.times -= 1;
        let action = f.action.clone();
        s.faults.retain(|f| f.times > 0);
        Some(action)
    }

    /// The 401/403 answer for this request, if the proxy would refuse it.
    fn refuse(&self, path: &str, authorization: Option<&str>) -> Option<Response> {
        let s = self.lock();
        if self.style.open_paths.contains(&path) {
            return None;
        }
        let token = authorization
            .and_then(|a| a.strip_prefix("Bearer "))
            .map(str::trim);
        if token.is_some() && token == s.forbidden.as_deref() {
            return Some((StatusCode::FORBIDDEN, self.style.forbidden).into_response());
        }
        let required = s.required.as_deref()?;
        (token != Some(required))
            .then(|| (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response())
    }
}

/// Close the connection without an answer: unwinding the connection task makes hyper drop
/// the socket (resume_unwind skips the panic hook, so nothing is printed).
fn drop_connection() -> ! {
    std::panic::resume_unwind(Box::new("injected dropped connection"))
}

async fn front(State(f): State<Front>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, 64 << 20).await.unwrap_or_default();
    let path = parts.uri.path().to_string();
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let (idx, latency) = {
        let mut s = f.lock();
        if s.requests.len() >= MAX_LOG {
            s.requests.remove(0);
        }
        s.requests.push(LoggedRequest {
            method: parts.method.to_string(),
            path: path.clone(),
            query: parts.uri.query().unwrap_or("").to_string(),
            body: serde_json::from_slice(&bytes).ok(),
            status: 0,
            authorization: authorization.clone(),
        });
        (s.requests.len() - 1, s.latency)
    };
    let answer = |resp: Response| {
        if let Some(r) = f.lock().requests.get_mut(idx) {
            r.status = resp.status().as_u16();
        }
        resp
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let fault = f.take(&parts.method, &path);
    match &fault {
        Some(FaultAction::Status(code)) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return answer((f.style.error)(
                status,
                format!("injected fault: HTTP {code}"),
            ));
        }
        Some(FaultAction::Throttle) => {
            let mut r = (f.style.error)(
                StatusCode::TOO_MANY_REQUESTS,
                "injected fault: too many requests".into(),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("0"));
            return answer(r);
        }
        Some(FaultAction::Answer { status, body }) => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::OK);
            return answer((status, Json(body.clone())).into_response());
        }
        Some(FaultAction::DelayMs(ms)) => tokio::time::sleep(Duration::from_millis(*ms)).await,
        Some(FaultAction::DropBefore) => drop_connection(),
        _ => {}
    }
    if let Some(refused) = f.refuse(&path, authorization.as_deref()) {
        return answer(refused);
    }
    let resp = answer(
        next.run(Request::from_parts(parts, Body::from(bytes)))
            .await,
    );
    match fault {
        Some(FaultAction::DropAfter) => drop_connection(),
        Some(FaultAction::DelayAfterMs(ms)) => tokio::time::sleep(Duration::from_millis(ms)).await,
        _ => {}
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_exactly_or_by_wildcard() {
        for (pattern, path, want) in [
            ("/runs", "/runs", true),
            ("/runs", "/runs/1", false),
            ("/runs/*", "/runs/1", true),
            ("/runs/*", "/run", false),
            ("*/model_artifacts/*", "/api/v1/model_artifacts/2", true),
            ("*/model_artifacts/*", "/api/v1/model_versions/2", false),
            ("/api/*/x/*/y", "/api/v1/x/3/y", true),
            ("/api/*/x/*/y", "/api/v1/x/3/z", false),
            ("*é*", "café", true),
        ] {
            assert_eq!(glob(pattern, path), want, "{pattern} ~ {path}");
        }
    }

    #[test]
    fn zero_times_does_nothing_and_a_forbidden_token_alone_is_refused() {
        let f = Front::new(Style {
            error: |s, m| (s, m).into_response(),
            forbidden: "Forbidden\n",
            open_paths: &[],
        });
        f.push(Fault::new(None, None, 0, FaultAction::DropBefore));
        f.push(r#"{"path":"/a/*","times":2,"action":"throttle"}"#.parse().unwrap());
        assert!(r#"{"action":"explode"}"#.parse::<Fault>().is_err());
        assert_eq!(
            (f.pending(), f.take(&Method::GET, "/a/1")),
            (2, Some(FaultAction::Throttle))
        );
        f.set_tokens(None, Some("weak"));
        let refused = f.refuse("/x", Some("Bearer weak")).map(|r| r.status());
        assert_eq!(refused, Some(StatusCode::FORBIDDEN));
        assert!(f.refuse("/x", None).is_none());
    }
}
