//! The REST routes, mounted under each served prefix, and the wire format of errors:
//! `{"code": <reason phrase>, "message": …}` with 400/404/409/422.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use ct_emulator::{Error, ErrorKind, HttpError, WireFormat};
use serde_json::{Value, json};

use crate::Shared;
use crate::schema::{Kind, decode, parse_id};
use crate::store::{Entity, Store};

/// The query parameters of a request.
type Params = Query<HashMap<String, String>>;

/// The status the server answers `e` with.
pub fn status_of(e: &Error) -> StatusCode {
    match e.kind() {
        ErrorKind::Invalid => StatusCode::BAD_REQUEST,
        ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::AlreadyExists | ErrorKind::FailedPrecondition => StatusCode::CONFLICT,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The body's `code`: the status's reason phrase, except that a 422 says "Bad Request", like
/// the real server.
pub fn code_of(e: &Error) -> &'static str {
    match e.kind() {
        ErrorKind::Unprocessable => "Bad Request",
        _ => status_of(e).canonical_reason().unwrap_or(""),
    }
}

/// The server's wire format: `{"code", "message"}`.
pub struct CodeMessage;

impl WireFormat for CodeMessage {
    fn answer(e: &Error) -> Response {
        let body = json!({"code": code_of(e), "message": e.message()});
        json_response(status_of(e), &body)
    }
}

/// A handler's answer.
type Reply = Result<Response, HttpError<CodeMessage>>;

/// Routes relative to one prefix.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/registered_models", get(list_models).post(create_model))
        .route("/registered_model", get(find_model))
        .route("/registered_models/{id}", get(get_model).patch(patch_model))
        .route(
            "/registered_models/{id}/versions",
            get(list_model_versions).post(create_model_version),
        )
        .route("/model_versions", get(list_versions).post(create_version))
        .route("/model_version", get(find_version))
        .route(
            "/model_versions/{id}",
            get(get_version).patch(patch_version),
        )
        .route(
            "/model_versions/{id}/artifacts",
            get(list_version_artifacts).post(upsert_version_artifact),
        )
        .route(
            "/model_artifacts",
            get(list_artifacts).post(create_artifact),
        )
        .route("/model_artifact", get(find_artifact))
        .route(
            "/model_artifacts/{id}",
            get(get_artifact).patch(patch_artifact),
        )
}

/// A JSON answer with the real server's content type.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

fn ok(e: &Entity) -> Response {
    json_response(StatusCode::OK, &e.to_json())
}
fn created(e: &Entity) -> Response {
    json_response(StatusCode::CREATED, &e.to_json())
}

// ---- registered models ----

async fn list_models(State(emu): State<Shared>, q: Params) -> Reply {
    let s = emu.store();
    let items: Vec<&Entity> = s.models.values().collect();
    Ok(list(items, &q.0)?)
}

async fn create_model(State(emu): State<Shared>, body: Bytes) -> Reply {
    let fields = decode(Kind::RegisteredModel, true, &body, &[])?;
    Ok(created(&emu.store().create_model(fields)?))
}

async fn find_model(State(emu): State<Shared>, q: Params) -> Reply {
    let name = q.get("name");
    let ext = q.get("externalId");
    if name.is_none() && ext.is_none() {
        return Err(Error::invalid(
            "invalid parameters used to retrieve registered model: name or externalId is required: bad request",
        ).into());
    }
    let s = emu.store();
    let hits: Vec<&Entity> = s
        .models
        .values()
        .filter(|m| matches(m, name, ext))
        .collect();
    Ok(one(hits, || {
        format!(
            "no registered models found for name={}, externalId={}: not found",
            or_empty(name),
            or_empty(ext)
        )
    })?)
}

async fn get_model(State(emu): State<Shared>, Path(id): Path<String>) -> Reply {
    Ok(ok(emu.store().get(Kind::RegisteredModel, &id)?))
}

async fn patch_model(State(emu): State<Shared>, Path(id): Path<String>, body: Bytes) -> Reply {
    let mut s = emu.store();
    s.get(Kind::RegisteredModel, &id)?;
    let fields = decode(Kind::RegisteredModel, false, &body, &[])?;
    Ok(ok(&s.update(Kind::RegisteredModel, &id, fields)?))
}

async fn list_model_versions(
    State(emu): State<Shared>,
    Path(id): Path<String>,
    q: Params,
) -> Reply {
    let s = emu.store();
    let model = s.get(Kind::RegisteredModel, &id)?.id;
    let name = q.get("name");
    let ext = q.get("externalId");
    let items: Vec<&Entity> = s
        .versions
        .values()
        .filter(|v| v.parent == Some(model) && matches(v, name, ext))
        .collect();
    Ok(list(items, &q.0)?)
}

async fn create_model_version(
    State(emu): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let mut s = emu.store();
    let model = s.get(Kind::RegisteredModel, &id)?.id;
    let mut fields = decode(Kind::ModelVersion, true, &body, &[])?;
    fields.insert("registeredModelId".into(), Value::String(model.to_string()));
    Ok(created(&s.create_version(fields)?))
}

// ---- model versions ----

async fn list_versions(State(emu): State<Shared>, q: Params) -> Reply {
    let s = emu.store();
    Ok(list(s.versions.values().collect(), &q.0)?)
}

async fn create_version(State(emu): State<Shared>, body: Bytes) -> Reply {
    let fields = decode(Kind::ModelVersion, true, &body, &[])?;
    Ok(created(&emu.store().create_version(fields)?))
}

async fn find_version(State(emu): State<Shared>, q: Params) -> Reply {
    Ok(find_child(&emu.store(), Kind::ModelVersion, &q.0)?)
}

async fn get_version(State(emu): State<Shared>, Path(id): Path<String>) -> Reply {
    Ok(ok(emu.store().get(Kind::ModelVersion, &id)?))
}

async fn patch_version(State(emu): State<Shared>, Path(id): Path<String>, body: Bytes) -> Reply {
    let mut s = emu.store();
    s.get(Kind::ModelVersion, &id)?;
    let fields = decode(Kind::ModelVersion, false, &body, &[])?;
    Ok(ok(&s.update(Kind::ModelVersion, &id, fields)?))
}

async fn list_version_artifacts(
    State(emu): State<Shared>,
    Path(id): Path<String>,
    q: Params,
) -> Reply {
    let s = emu.store();
    let version = s.get(Kind::ModelVersion, &id)?.id;
    let name = q.get("name");
    let ext = q.get("externalId");
    let kind = q.get("artifactType").filter(|t| !t.is_empty());
    if let Some(t) = kind
        && ![
            "model-artifact",
            "doc-artifact",
            "dataset-artifact",
            "metric",
            "parameter",
        ]
        .contains(&t.as_str())
    {
        return Err(Error::invalid(format!("invalid artifact type {t}: bad request")).into());
    }
    let items: Vec<&Entity> = s
        .artifacts
        .values()
        .filter(|a| {
            a.parent == Some(version)
                && matches(a, name, ext)
                && kind.is_none_or(|t| a.str("artifactType") == Some(t.as_str()))
        })
        .collect();
    Ok(list(items, &q.0)?)
}

async fn upsert_version_artifact(
    State(emu): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let mut s = emu.store();
    let version = s.get(Kind::ModelVersion, &id)?.id;
    let fields = decode(Kind::Artifact, true, &body, &["id"])?;
    let (e, was_created) = s.upsert_artifact(Some(version), fields)?;
    Ok(if was_created { created(&e) } else { ok(&e) })
}

// ---- model artifacts ----

async fn list_artifacts(State(emu): State<Shared>, q: Params) -> Reply {
    let s = emu.store();
    let items: Vec<&Entity> = s
        .artifacts
        .values()
        .filter(|a| a.str("artifactType") == Some("model-artifact"))
        .collect();
    Ok(list(items, &q.0)?)
}

async fn create_artifact(State(emu): State<Shared>, body: Bytes) -> Reply {
    let fields = decode(Kind::Artifact, true, &body, &[])?;
    if fields
        .get("artifactType")
        .and_then(Value::as_str)
        .unwrap_or("model-artifact")
        != "model-artifact"
    {
        return Err(Error::invalid("artifactType must be model-artifact here").into());
    }
    let (e, _) = emu.store().upsert_artifact(None, fields)?;
    Ok(created(&e))
}

async fn find_artifact(State(emu): State<Shared>, q: Params) -> Reply {
    Ok(find_child(&emu.store(), Kind::Artifact, &q.0)?)
}

async fn get_artifact(State(emu): State<Shared>, Path(id): Path<String>) -> Reply {
    Ok(ok(emu.store().get(Kind::Artifact, &id)?))
}

async fn patch_artifact(State(emu): State<Shared>, Path(id): Path<String>, body: Bytes) -> Reply {
    let mut s = emu.store();
    s.get(Kind::Artifact, &id)?;
    let fields = decode(Kind::Artifact, false, &body, &[])?;
    Ok(ok(&s.update(Kind::Artifact, &id, fields)?))
}

// ---- helpers ----

fn or_empty(v: Option<&String>) -> &str {
    v.map_or("", String::as_str)
}

fn matches(e: &Entity, name: Option<&String>, ext: Option<&String>) -> bool {
    name.is_none_or(|n| e.str("name") == Some(n.as_str()))
        && ext.is_none_or(|x| e.str("externalId") == Some(x.as_str()))
}

/// Exactly one hit → 200; none or several → 404, as the real server.
fn one(hits: Vec<&Entity>, msg: impl FnOnce() -> String) -> Result<Response, Error> {
    match hits.as_slice() {
        [e] => Ok(ok(e)),
        _ => Err(Error::not_found(msg())),
    }
}

/// `model_version?name=&parentResourceId=` / `model_artifact?...`: a name needs a parent.
fn find_child(s: &Store, kind: Kind, q: &HashMap<String, String>) -> Result<Response, Error> {
    let name = q.get("name");
    let ext = q.get("externalId");
    let parent = q.get("parentResourceId");
    let plural = match kind {
        Kind::ModelVersion => "model versions",
        _ => "model artifacts",
    };
    if ext.is_none() && (name.is_none() || parent.is_none()) {
        return Err(Error::invalid(format!(
            "invalid parameters used to retrieve {}: name and parentResourceId, or externalId, are required: bad request",
            kind.words()
        )));
    }
    let parent_id = match parent {
        Some(p) => Some(parse_id(p).ok_or_else(|| {
            Error::invalid(format!("invalid parentResourceId {p:?}: bad request"))
        })?),
        None => None,
    };
    let hits: Vec<&Entity> = s
        .table(kind)
        .values()
        .filter(|e| matches(e, name, ext) && parent_id.is_none_or(|p| e.parent == Some(p)))
        .filter(|e| kind != Kind::Artifact || e.str("artifactType") == Some("model-artifact"))
        .collect();
    one(hits, || {
        format!(
            "no {plural} found for name={}, parentResourceId={}, externalId={}: not found",
            or_empty(name),
            or_empty(parent),
            or_empty(ext)
        )
    })
}

/// A list answer with `pageSize`, `orderBy`, `sortOrder` and an opaque `nextPageToken`
/// (always present, `""` on the last page; `pageSize` 0 when none was asked).
fn list(mut items: Vec<&Entity>, q: &HashMap<String, String>) -> Result<Response, Error> {
    if q.get("filterQuery").is_some_and(|f| !f.is_empty()) {
        return Err(Error::invalid(
            "filterQuery is not supported by this emulator",
        ));
    }
    let page_size = match q.get("pageSize").filter(|s| !s.is_empty()) {
        None => 0usize,
        Some(s) => match s.parse::<i32>() {
            Ok(n) if n > 0 => n as usize,
            _ => {
                return Err(Error::invalid(format!(
                    "invalid pageSize {s:?}: must be a positive integer: bad request"
                )));
            }
        },
    };
    let order = q
        .get("orderBy")
        .map(String::as_str)
        .filter(|s| !s.is_empty());
    match order {
        None | Some("ID") => items.sort_by_key(|e| e.id),
        Some("CREATE_TIME") => items.sort_by_key(|e| (e.created, e.id)),
        Some("LAST_UPDATE_TIME") => items.sort_by_key(|e| (e.updated, e.id)),
        Some(o) => {
            return Err(Error::invalid(format!(
                "invalid orderBy {o:?}: must be one of CREATE_TIME, LAST_UPDATE_TIME, ID: bad request"
            )));
        }
    }
    match q
        .get("sortOrder")
        .map(String::as_str)
        .filter(|s| !s.is_empty())
    {
        None | Some("ASC") => {}
        Some("DESC") => items.reverse(),
        Some(o) => {
            return Err(Error::invalid(format!(
                "invalid sortOrder {o:?}: must be ASC or DESC: bad request"
            )));
        }
    }
    let start = match q.get("nextPageToken").filter(|s| !s.is_empty()) {
        None => 0,
        Some(t) => decode_token(t)
            .filter(|&n| n <= items.len())
            .ok_or_else(|| Error::invalid(format!("invalid nextPageToken {t:?}: bad request")))?,
    };
    let end = if page_size == 0 {
        items.len()
    } else {
        (start + page_size).min(items.len())
    };
    let page: Vec<Value> = items[start..end].iter().map(|e| e.to_json()).collect();
    let next = if end < items.len() {
        encode_token(end)
    } else {
        String::new()
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "items": page,
            "nextPageToken": next,
            "pageSize": page_size,
            "size": end - start,
        }),
    ))
}

fn encode_token(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("offset:{offset}"))
}

fn decode_token(t: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("offset:")?
        .parse()
        .ok()
}
