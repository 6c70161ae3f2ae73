//! The v2beta1 endpoints: request decoding and wire format. Every change goes through
//! [`crate::store::Store`]; errors are `googleRpcStatus` bodies with the HTTP status of the
//! gRPC code.

mod experiments;
mod pipelines;
mod runs;

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ct_emulator::{Error, ErrorKind, HttpError, WireFormat};
use serde_json::{Map, Value, json};

use crate::{Shared, filter};

/// Prefix of every v2beta1 route.
pub const API: &str = "/apis/v2beta1";

/// The server's wire format: a `googleRpcStatus` with the HTTP status of the gRPC code.
pub struct Rpc;

impl WireFormat for Rpc {
    fn answer(e: &Error) -> Response {
        let status = match e.kind() {
            ErrorKind::Invalid | ErrorKind::Unprocessable => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::AlreadyExists => StatusCode::CONFLICT,
            ErrorKind::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        rpc_error(status, e.message())
    }
}

/// A handler's answer.
pub type Reply = Result<Response, HttpError<Rpc>>;

/// `e` with the operation in front, as the server words it (`Failed to get a run: …`).
fn during(operation: &str) -> impl FnOnce(Error) -> Error + '_ {
    move |e| Error::new(e.kind(), format!("{operation}: {}", e.message()))
}

/// A `googleRpcStatus` error answer with the HTTP status matching the gRPC code.
pub fn rpc_error(status: StatusCode, message: impl Into<String>) -> Response {
    let message = message.into();
    let code = match status.as_u16() {
        400 => 3,
        401 => 16,
        403 => 7,
        404 => 5,
        409 => 6,
        412 => 9,
        429 => 8,
        501 => 12,
        503 => 14,
        504 => 4,
        _ => 13,
    };
    let body = json!({
        "code": code,
        "message": message,
        "details": [{"@type": "type.googleapis.com/google.rpc.Status", "code": code, "message": message}]
    });
    (status, axum::Json(body)).into_response()
}

/// Every API route (the state is bound by the caller).
pub fn routes() -> Router<Shared> {
    let (e, r, p) = (experiments::routes(), runs::routes(), pipelines::routes());
    Router::new()
        .route(&format!("{API}/healthz"), get(healthz))
        .route("/apis/v1beta1/healthz", get(healthz))
        .merge(e)
        .merge(r)
        .merge(p)
        .fallback(|| async { not_found() })
}

/// The answer to a `POST /{collection}/{id}` without a `:{action}`.
fn method_not_allowed() -> Response {
    rpc_error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

fn ok(v: Value) -> Response {
    (StatusCode::OK, axum::Json(v)).into_response()
}

/// The answer for an unknown route or action.
fn not_found() -> Response {
    rpc_error(StatusCode::NOT_FOUND, "Not Found")
}

async fn healthz() -> Response {
    ok(json!({"multi_user": false}))
}

fn query(raw: Option<String>) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// A JSON body with proto semantics: unknown fields are rejected (DiscardUnknown: false).
fn body_object(body: &Bytes, known: &[&str]) -> Result<Map<String, Value>, Error> {
    if body.is_empty() {
        return Ok(Map::new());
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Error::invalid(format!("proto: syntax error (line 1:1): {e}")))?;
    let Value::Object(m) = v else {
        return Err(Error::invalid(
            "proto: syntax error (line 1:1): unexpected token, want {",
        ));
    };
    if let Some(k) = m.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(Error::invalid(format!(
            "proto: (line 1:2): unknown field \"{k}\""
        )));
    }
    Ok(m)
}

fn str_field(m: &Map<String, Value>, k: &str) -> String {
    m.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

/// `name`, else `display_name`; and `display_name`, else the name.
fn name_and_display(name: String, display: String) -> (String, String) {
    let name = Some(name)
        .filter(|s| !s.is_empty())
        .unwrap_or(display.clone());
    let display = if display.is_empty() {
        name.clone()
    } else {
        display
    };
    (name, display)
}

/// Filter, sort and page a list, answering `{<field>: [...], total_size, next_page_token}` with
/// empty values omitted (an empty list is `{}`).
fn list(mut items: Vec<Value>, q: &HashMap<String, String>, keys: &[&str], field: &str) -> Reply {
    if let Some(f) = q.get("filter").filter(|f| !f.is_empty()) {
        let preds = filter::parse(f, keys).map_err(Error::invalid)?;
        items.retain(|v| filter::matches(&preds, v));
    }
    if let Some(sort) = q.get("sort_by").filter(|s| !s.is_empty()) {
        let mut it = sort.split_whitespace();
        let key = it.next().unwrap_or("");
        let desc = match it.next() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                return Err(Error::invalid(format!(
                    "Invalid input error: invalid sort order {other:?}"
                ))
                .into());
            }
        };
        if !keys.contains(&key) {
            return Err(Error::invalid(format!(
                "Invalid input error: cannot sort by unrecognized field {key:?}"
            ))
            .into());
        }
        // Stable sort: equal keys keep creation order (newest first when descending).
        if desc {
            items.reverse();
        }
        items.sort_by(|a, b| {
            let (x, y) = (
                a.get(key).map(|v| v.to_string()),
                b.get(key).map(|v| v.to_string()),
            );
            if desc { y.cmp(&x) } else { x.cmp(&y) }
        });
    }
    let size = match q.get("page_size").map(|s| s.parse::<usize>()) {
        None | Some(Ok(0)) => 20,
        Some(Ok(n)) => n.min(200),
        Some(Err(_)) => {
            return Err(Error::invalid("Invalid input error: page_size is not a number").into());
        }
    };
    let start = match q.get("page_token").filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => t.parse::<usize>().map_err(|_| {
            Error::invalid(format!("Invalid input error: invalid page token {t:?}"))
        })?,
    };
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(start).take(size).collect();
    let mut m = Map::new();
    if !page.is_empty() {
        m.insert(field.into(), Value::Array(page));
    }
    if total > 0 {
        m.insert("total_size".into(), json!(total));
    }
    if start + size < total {
        m.insert("next_page_token".into(), json!((start + size).to_string()));
    }
    Ok(ok(Value::Object(m)))
}
