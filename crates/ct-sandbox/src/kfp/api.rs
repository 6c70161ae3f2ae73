//! The v2beta1 endpoints.
//!
//! Helpers return `Result<_, Response>` so an error answer short-circuits with `?`.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Multipart, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::store::{ExperimentRec, PipelineRec, RunRec, VersionRec, task_names};
use super::{Emulator, StateData, filter, rpc_error};

pub const API: &str = "/apis/v2beta1";

type ApiResult = Result<Response, Response>;

/// Every API route (without state).
pub fn routes() -> Router<Emulator> {
    Router::new()
        .route("/apis/v2beta1/healthz", get(healthz))
        .route("/apis/v1beta1/healthz", get(healthz_v1))
        .route(
            "/apis/v2beta1/experiments",
            get(list_experiments).post(create_experiment),
        )
        .route(
            "/apis/v2beta1/experiments/{id}",
            get(get_experiment)
                .delete(delete_experiment)
                .post(experiment_action),
        )
        .route("/apis/v2beta1/runs", get(list_runs).post(create_run))
        .route(
            "/apis/v2beta1/runs/{id}",
            get(get_run).delete(delete_run).post(run_action),
        )
        .route(
            "/apis/v2beta1/pipelines",
            get(list_pipelines).post(create_pipeline),
        )
        .route(
            "/apis/v2beta1/pipelines/upload",
            axum::routing::post(upload_pipeline),
        )
        .route(
            "/apis/v2beta1/pipelines/upload_version",
            axum::routing::post(upload_version),
        )
        .route(
            "/apis/v2beta1/pipelines/names/{name}",
            get(get_pipeline_by_name),
        )
        .route(
            "/apis/v2beta1/pipelines/{id}",
            get(get_pipeline).delete(delete_pipeline),
        )
        .route(
            "/apis/v2beta1/pipelines/{id}/versions",
            get(list_versions).post(create_version),
        )
        .route(
            "/apis/v2beta1/pipelines/{id}/versions/{vid}",
            get(get_version).delete(delete_version),
        )
        .fallback(not_found)
}

fn ok(v: Value) -> Response {
    (StatusCode::OK, axum::Json(v)).into_response()
}

fn bad(msg: impl Into<String>) -> Response {
    rpc_error(StatusCode::BAD_REQUEST, msg)
}

fn missing(msg: impl Into<String>) -> Response {
    rpc_error(StatusCode::NOT_FOUND, msg)
}

async fn not_found() -> Response {
    rpc_error(StatusCode::NOT_FOUND, "Not Found")
}

fn query(raw: Option<String>) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// A JSON body with proto semantics: unknown fields are rejected (DiscardUnknown: false).
fn body_object(body: &Bytes, known: &[&str]) -> Result<Map<String, Value>, Response> {
    if body.is_empty() {
        return Ok(Map::new());
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("proto: syntax error (line 1:1): {e}")))?;
    let Value::Object(m) = v else {
        return Err(bad(
            "proto: syntax error (line 1:1): unexpected token, want {",
        ));
    };
    if let Some(k) = m.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(bad(format!("proto: (line 1:2): unknown field \"{k}\"")));
    }
    Ok(m)
}

fn str_field(m: &Map<String, Value>, k: &str) -> String {
    m.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

/// Filter, sort and page a list, answering `{<field>: [...], total_size, next_page_token}` with
/// empty values omitted (an empty list is `{}`).
fn list(items: Vec<Value>, q: &HashMap<String, String>, keys: &[&str], field: &str) -> ApiResult {
    let mut items = items;
    if let Some(f) = q.get("filter").filter(|f| !f.is_empty()) {
        let preds = filter::parse(f, keys).map_err(bad)?;
        items.retain(|v| filter::matches(&preds, v));
    }
    if let Some(sort) = q.get("sort_by").filter(|s| !s.is_empty()) {
        let mut it = sort.split_whitespace();
        let key = it.next().unwrap_or("");
        let desc = match it.next() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                return Err(bad(format!(
                    "Invalid input error: invalid sort order {other:?}"
                )));
            }
        };
        if !keys.contains(&key) {
            return Err(bad(format!(
                "Invalid input error: cannot sort by unrecognized field {key:?}"
            )));
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
        None => 20,
        Some(Ok(0)) => 20,
        Some(Ok(n)) => n.min(200),
        Some(Err(_)) => return Err(bad("Invalid input error: page_size is not a number")),
    };
    let start = match q.get("page_token").filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| bad(format!("Invalid input error: invalid page token {t:?}")))?,
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

fn flatten(r: ApiResult) -> Response {
    r.unwrap_or_else(|e| e)
}

// ---- healthz ----

async fn healthz() -> Response {
    ok(json!({"multi_user": false}))
}

async fn healthz_v1() -> Response {
    ok(json!({"multi_user": false}))
}

// ---- experiments ----

pub(crate) fn insert_experiment(s: &mut StateData, name: &str, description: &str) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    s.experiments.push(ExperimentRec {
        id: id.clone(),
        display_name: name.to_string(),
        description: description.to_string(),
        created: Utc::now(),
        archived: false,
        last_run: None,
    });
    id
}

async fn list_experiments(State(emu): State<Emulator>, RawQuery(q): RawQuery) -> Response {
    let q = query(q);
    let items = emu
        .lock()
        .experiments
        .iter()
        .map(ExperimentRec::view)
        .collect();
    flatten(list(
        items,
        &q,
        &[
            "experiment_id",
            "display_name",
            "description",
            "created_at",
            "storage_state",
            "namespace",
        ],
        "experiments",
    ))
}

async fn create_experiment(State(emu): State<Emulator>, body: Bytes) -> Response {
    flatten((|| {
        let m = body_object(
            &body,
            &[
                "experiment_id",
                "display_name",
                "description",
                "created_at",
                "namespace",
                "storage_state",
                "last_run_created_at",
            ],
        )?;
        let name = str_field(&m, "display_name");
        if name.trim().is_empty() {
            return Err(bad(
                "Invalid input error: Experiment display name is empty. Please specify a valid experiment name",
            ));
        }
        let mut s = emu.lock();
        if s.experiments.iter().any(|e| e.display_name == name) {
            return Err(rpc_error(
                StatusCode::CONFLICT,
                format!(
                    "Failed to create a new experiment: Already exist error: Failed to create a new experiment. The name {name} already exists. Please specify a new name"
                ),
            ));
        }
        let id = insert_experiment(&mut s, &name, &str_field(&m, "description"));
        let e = s
            .experiments
            .iter()
            .find(|e| e.id == id)
            .map(ExperimentRec::view);
        Ok(ok(e.unwrap_or_default()))
    })())
}

async fn get_experiment(State(emu): State<Emulator>, Path(id): Path<String>) -> Response {
    match emu.lock().experiments.iter().find(|e| e.id == id) {
        Some(e) => ok(e.view()),
        None => missing(format!(
            "Failed to get experiment: ResourceNotFoundError: Experiment {id} not found"
        )),
    }
}

async fn delete_experiment(State(emu): State<Emulator>, Path(id): Path<String>) -> Response {
    let mut s = emu.lock();
    let before = s.experiments.len();
    s.experiments.retain(|e| e.id != id);
    if s.experiments.len() == before {
        return missing(format!(
            "Failed to delete experiment: ResourceNotFoundError: Experiment {id} not found"
        ));
    }
    ok(json!({}))
}

async fn experiment_action(State(emu): State<Emulator>, Path(id_action): Path<String>) -> Response {
    let Some((id, action)) = id_action.split_once(':') else {
        return rpc_error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    };
    let mut s = emu.lock();
    let Some(e) = s.experiments.iter_mut().find(|e| e.id == id) else {
        return missing(format!("ResourceNotFoundError: Experiment {id} not found"));
    };
    match action {
        "archive" => e.archived = true,
        "unarchive" => e.archived = false,
        _ => return not_found_sync(),
    }
    ok(json!({}))
}

fn not_found_sync() -> Response {
    rpc_error(StatusCode::NOT_FOUND, "Not Found")
}

// ---- runs ----

const RUN_FIELDS: &[&str] = &[
    "experiment_id",
    "run_id",
    "display_name",
    "storage_state",
    "description",
    "pipeline_version_id",
    "pipeline_spec",
    "pipeline_version_reference",
    "runtime_config",
    "service_account",
    "created_at",
    "scheduled_at",
    "finished_at",
    "state",
    "error",
    "run_details",
    "recurring_run_id",
    "state_history",
    "plugins_input",
];

/// `POST /runs` (its optional `experiment_id` query parameter is ignored, as by the server when
/// the body has one).
async fn create_run(State(emu): State<Emulator>, body: Bytes) -> Response {
    flatten((|| {
        let m = body_object(&body, RUN_FIELDS)?;
        let display_name = str_field(&m, "display_name");
        if display_name.trim().is_empty() {
            return Err(bad(
                "Invalid input error: The run name is empty. Please specify a valid name",
            ));
        }
        let mut s = emu.lock();
        let (spec, version_ref) = match (
            m.get("pipeline_spec"),
            m.get("pipeline_version_reference"),
        ) {
            (Some(Value::Object(spec)), None) => (Value::Object(spec.clone()), None),
            (None, Some(Value::Object(r))) => {
                let vid = r
                    .get("pipeline_version_id")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let Some(v) = s.versions.iter().find(|v| v.id == vid) else {
                    return Err(missing(format!(
                        "Failed to create a run: ResourceNotFoundError: PipelineVersion {vid} not found"
                    )));
                };
                (
                    v.spec.clone(),
                    Some(json!({"pipeline_id": v.pipeline_id, "pipeline_version_id": v.id})),
                )
            }
            (Some(_), Some(_)) => {
                return Err(bad(
                    "Invalid input error: Failed to create a run: pipeline_spec and pipeline_version_reference are mutually exclusive",
                ));
            }
            _ => {
                return Err(bad(
                    "Invalid input error: Failed to create a run: the pipeline spec is missing; set pipeline_spec or pipeline_version_reference",
                ));
            }
        };
        if super::store::ir_of(&spec).get("root").is_none() {
            return Err(bad(
                "Invalid input error: Failed to create a run: invalid pipeline spec (no root)",
            ));
        }
        if let Some(rc) = m.get("runtime_config")
            && (!rc.is_object() || rc.get("parameters").is_some_and(|p| !p.is_object()))
        {
            return Err(bad("proto: (line 1:2): invalid value for runtime_config"));
        }
        let mut experiment_id = str_field(&m, "experiment_id");
        if experiment_id.is_empty() {
            experiment_id = match s.experiments.iter().find(|e| e.display_name == "Default") {
                Some(e) => e.id.clone(),
                None => insert_experiment(
                    &mut s,
                    "Default",
                    "All runs created without specifying an experiment will be grouped here.",
                ),
            };
        }
        let now = Utc::now();
        let Some(exp) = s.experiments.iter_mut().find(|e| e.id == experiment_id) else {
            return Err(missing(format!(
                "Failed to create a run: ResourceNotFoundError: Experiment {experiment_id} not found"
            )));
        };
        exp.last_run = Some(now);
        let script = s
            .scripts
            .pop_front()
            .unwrap_or_else(|| s.default_script.clone());
        let seq = s.next_seq();
        let rec = RunRec {
            id: uuid::Uuid::new_v4().to_string(),
            seq,
            experiment_id,
            display_name,
            description: str_field(&m, "description"),
            tasks: task_names(&spec),
            pipeline_spec: version_ref.is_none().then_some(spec),
            version_ref,
            runtime_config: m.get("runtime_config").cloned(),
            service_account: Some(str_field(&m, "service_account"))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "pipeline-runner-dspa".into()),
            created: Instant::now(),
            created_wall: now,
            timeline: RunRec::timeline_for(&script),
            script,
            archived: false,
            terminate_calls: 0,
        };
        let view = rec.view();
        s.runs.push(rec);
        Ok(ok(view))
    })())
}

/// Create a run in the `Default` experiment (test API), with the next queued script.
pub(crate) fn insert_run(s: &mut StateData, display_name: &str, spec: Value) -> String {
    let experiment_id = match s.experiments.iter().find(|e| e.display_name == "Default") {
        Some(e) => e.id.clone(),
        None => insert_experiment(s, "Default", ""),
    };
    let script = s
        .scripts
        .pop_front()
        .unwrap_or_else(|| s.default_script.clone());
    let seq = s.next_seq();
    let id = uuid::Uuid::new_v4().to_string();
    s.runs.push(RunRec {
        id: id.clone(),
        seq,
        experiment_id,
        display_name: display_name.into(),
        description: String::new(),
        tasks: task_names(&spec),
        pipeline_spec: Some(spec),
        version_ref: None,
        runtime_config: None,
        service_account: "pipeline-runner-dspa".into(),
        created: Instant::now(),
        created_wall: Utc::now(),
        timeline: RunRec::timeline_for(&script),
        script,
        archived: false,
        terminate_calls: 0,
    });
    id
}

async fn get_run(State(emu): State<Emulator>, Path(id): Path<String>) -> Response {
    match emu.lock().runs.iter().find(|r| r.id == id) {
        Some(r) => ok(r.view()),
        None => missing(format!(
            "Failed to get a run: ResourceNotFoundError: Run {id} not found"
        )),
    }
}

async fn list_runs(State(emu): State<Emulator>, RawQuery(q): RawQuery) -> Response {
    let q = query(q);
    let exp = q.get("experiment_id").filter(|e| !e.is_empty()).cloned();
    let items = emu
        .lock()
        .runs
        .iter()
        .filter(|r| exp.as_ref().is_none_or(|e| &r.experiment_id == e))
        .map(RunRec::view)
        .collect();
    flatten(list(
        items,
        &q,
        &[
            "run_id",
            "display_name",
            "description",
            "created_at",
            "finished_at",
            "scheduled_at",
            "storage_state",
            "state",
            "experiment_id",
            "namespace",
            "recurring_run_id",
        ],
        "runs",
    ))
}

async fn delete_run(State(emu): State<Emulator>, Path(id): Path<String>) -> Response {
    let mut s = emu.lock();
    let before = s.runs.len();
    s.runs.retain(|r| r.id != id);
    if s.runs.len() == before {
        return missing(format!(
            "Failed to delete a run: ResourceNotFoundError: Run {id} not found"
        ));
    }
    ok(json!({}))
}

async fn run_action(State(emu): State<Emulator>, Path(id_action): Path<String>) -> Response {
    let Some((id, action)) = id_action.split_once(':') else {
        return rpc_error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    };
    let mut s = emu.lock();
    let delay = s.cancel_delay;
    let Some(r) = s.runs.iter_mut().find(|r| r.id == id) else {
        return missing(format!(
            "Failed to {action} a run: ResourceNotFoundError: Run {id} not found"
        ));
    };
    match action {
        "terminate" => r.terminate(delay),
        "archive" => r.archived = true,
        "unarchive" => r.archived = false,
        _ => return not_found_sync(),
    }
    ok(json!({}))
}

// ---- pipelines ----

/// A compiled pipeline YAML as the server stores it: the IR, wrapped with the merged platform
/// spec when later documents exist.
pub(crate) fn spec_from_yaml(text: &str) -> Result<Value, String> {
    let mut docs = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let v = Value::deserialize(doc).map_err(|e| format!("invalid YAML: {e}"))?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    let mut it = docs.into_iter();
    let ir = it.next().ok_or("the pipeline file is empty")?;
    if ir.get("root").is_none() || ir.pointer("/pipelineInfo/name").is_none() {
        return Err("invalid pipeline spec: no root or pipelineInfo.name".into());
    }
    let mut platform = Map::new();
    for d in it {
        if let Value::Object(m) = d {
            platform.extend(m);
        }
    }
    Ok(if platform.is_empty() {
        ir
    } else {
        json!({"pipeline_spec": ir, "platform_spec": platform})
    })
}

pub(crate) fn insert_pipeline(
    s: &mut StateData,
    name: &str,
    display_name: &str,
    description: &str,
) -> Result<String, String> {
    if s.pipelines.iter().any(|p| p.name == name) {
        return Err(format!(
            "Already exist error: Failed to create a new pipeline. The name {name} already exists. Please specify a new name"
        ));
    }
    let id = uuid::Uuid::new_v4().to_string();
    s.pipelines.push(PipelineRec {
        id: id.clone(),
        name: name.into(),
        display_name: display_name.into(),
        description: description.into(),
        created: Utc::now(),
    });
    Ok(id)
}

pub(crate) fn insert_version(
    s: &mut StateData,
    pipeline_id: &str,
    name: &str,
    display_name: &str,
    description: &str,
    spec: Value,
) -> Result<String, String> {
    if !s.pipelines.iter().any(|p| p.id == pipeline_id) {
        return Err(format!(
            "ResourceNotFoundError: Pipeline {pipeline_id} not found"
        ));
    }
    if s.versions
        .iter()
        .any(|v| v.pipeline_id == pipeline_id && v.name == name)
    {
        return Err(format!(
            "Already exist error: Failed to create a new pipeline version. The name {name} already exists. Please specify a new name"
        ));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let seq = s.next_seq();
    s.versions.push(VersionRec {
        id: id.clone(),
        pipeline_id: pipeline_id.into(),
        name: name.into(),
        display_name: display_name.into(),
        description: description.into(),
        created: Utc::now(),
        spec,
        seq,
    });
    Ok(id)
}

fn store_error(e: String) -> Response {
    if e.starts_with("Already exist") {
        rpc_error(StatusCode::CONFLICT, e)
    } else if e.starts_with("ResourceNotFound") {
        missing(e)
    } else {
        bad(format!("Invalid input error: {e}"))
    }
}

/// The `uploadfile` part of a multipart upload: (file name, text).
async fn upload_file(mut mp: Multipart) -> Result<(String, String), Response> {
    while let Some(field) = mp
        .next_field()
        .await
        .map_err(|e| bad(format!("Invalid input error: bad multipart body: {e}")))?
    {
        if field.name() == Some("uploadfile") {
            let file_name = field.file_name().unwrap_or("pipeline.yaml").to_string();
            let bytes = field
                .bytes()
                .await
                .map_err(|e| bad(format!("Invalid input error: bad multipart body: {e}")))?;
            let text = String::from_utf8(bytes.to_vec())
                .map_err(|_| bad("Invalid input error: the pipeline file is not UTF-8"))?;
            return Ok((file_name, text));
        }
    }
    Err(bad(
        "Invalid input error: Failed to read pipeline from file: uploadfile is missing",
    ))
}

async fn upload_pipeline(
    State(emu): State<Emulator>,
    RawQuery(q): RawQuery,
    mp: Multipart,
) -> Response {
    let q = query(q);
    let (file_name, text) = match upload_file(mp).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let spec = match spec_from_yaml(&text) {
        Ok(s) => s,
        Err(e) => {
            return bad(format!(
                "Invalid input error: Failed to create a pipeline: {e}"
            ));
        }
    };
    let name = q
        .get("name")
        .or(q.get("display_name"))
        .filter(|s| !s.is_empty())
        .cloned()
        .unwrap_or(file_name);
    let display = q
        .get("display_name")
        .filter(|s| !s.is_empty())
        .cloned()
        .unwrap_or(name.clone());
    let description = q.get("description").cloned().unwrap_or_default();
    let mut s = emu.lock();
    let id = match insert_pipeline(&mut s, &name, &display, &description) {
        Ok(id) => id,
        Err(e) => return store_error(e),
    };
    if let Err(e) = insert_version(&mut s, &id, &name, &display, &description, spec) {
        return store_error(e);
    }
    ok(s.pipelines
        .iter()
        .find(|p| p.id == id)
        .map(PipelineRec::view)
        .unwrap_or_default())
}

async fn upload_version(
    State(emu): State<Emulator>,
    RawQuery(q): RawQuery,
    mp: Multipart,
) -> Response {
    let q = query(q);
    let (file_name, text) = match upload_file(mp).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let spec = match spec_from_yaml(&text) {
        Ok(s) => s,
        Err(e) => {
            return bad(format!(
                "Invalid input error: Failed to create a pipeline version: {e}"
            ));
        }
    };
    let Some(pid) = q.get("pipelineid").filter(|s| !s.is_empty()).cloned() else {
        return bad(
            "Invalid input error: Failed to create a pipeline version: pipelineid is missing",
        );
    };
    let name = q
        .get("name")
        .or(q.get("display_name"))
        .filter(|s| !s.is_empty())
        .cloned()
        .unwrap_or(file_name);
    let display = q
        .get("display_name")
        .filter(|s| !s.is_empty())
        .cloned()
        .unwrap_or(name.clone());
    let description = q.get("description").cloned().unwrap_or_default();
    let mut s = emu.lock();
    match insert_version(&mut s, &pid, &name, &display, &description, spec) {
        Ok(id) => ok(s
            .versions
            .iter()
            .find(|v| v.id == id)
            .map(VersionRec::view)
            .unwrap_or_default()),
        Err(e) => store_error(e),
    }
}

async fn create_pipeline(State(emu): State<Emulator>, body: Bytes) -> Response {
    let m = match body_object(
        &body,
        &[
            "pipeline_id",
            "display_name",
            "name",
            "description",
            "created_at",
            "namespace",
            "error",
            "tags",
        ],
    ) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let display = str_field(&m, "display_name");
    let name = Some(str_field(&m, "name"))
        .filter(|s| !s.is_empty())
        .unwrap_or(display.clone());
    if name.is_empty() {
        return bad("Invalid input error: Pipeline name is empty. Please specify a valid name");
    }
    let display = if display.is_empty() {
        name.clone()
    } else {
        display
    };
    let mut s = emu.lock();
    match insert_pipeline(&mut s, &name, &display, &str_field(&m, "description")) {
        Ok(id) => ok(s
            .pipelines
            .iter()
            .find(|p| p.id == id)
            .map(PipelineRec::view)
            .unwrap_or_default()),
        Err(e) => store_error(e),
    }
}

async fn list_pipelines(State(emu): State<Emulator>, RawQuery(q): RawQuery) -> Response {
    let q = query(q);
    let items = emu.lock().pipelines.iter().map(PipelineRec::view).collect();
    flatten(list(
        items,
        &q,
        &[
            "pipeline_id",
            "name",
            "display_name",
            "description",
            "created_at",
            "namespace",
        ],
        "pipelines",
    ))
}

async fn get_pipeline(State(emu): State<Emulator>, Path(id): Path<String>) -> Response {
    match emu.lock().pipelines.iter().find(|p| p.id == id) {
        Some(p) => ok(p.view()),
        None => missing(format!(
            "Failed to get a pipeline: ResourceNotFoundError: Pipeline {id} not found"
        )),
    }
}

async fn get_pipeline_by_name(State(emu): State<Emulator>, Path(name): Path<String>) -> Response {
    match emu.lock().pipelines.iter().find(|p| p.name == name) {
        Some(p) => ok(p.view()),
        None => missing(format!(
            "Failed to get a pipeline by name: ResourceNotFoundError: Pipeline {name} not found"
        )),
    }
}

async fn delete_pipeline(State(emu): State<Emulator>, Path(id): Path<String>) -> Response {
    let mut s = emu.lock();
    if !s.pipelines.iter().any(|p| p.id == id) {
        return missing(format!("ResourceNotFoundError: Pipeline {id} not found"));
    }
    if s.versions.iter().any(|v| v.pipeline_id == id) {
        return rpc_error(
            StatusCode::PRECONDITION_FAILED,
            format!("Failed to delete pipeline {id}: it has pipeline versions; delete them first"),
        );
    }
    s.pipelines.retain(|p| p.id != id);
    ok(json!({}))
}

async fn list_versions(
    State(emu): State<Emulator>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = query(q);
    let s = emu.lock();
    if !s.pipelines.iter().any(|p| p.id == id) {
        return missing(format!("ResourceNotFoundError: Pipeline {id} not found"));
    }
    let mut versions: Vec<&VersionRec> =
        s.versions.iter().filter(|v| v.pipeline_id == id).collect();
    versions.sort_by_key(|v| v.seq);
    let items = versions.into_iter().map(VersionRec::view).collect();
    drop(s);
    flatten(list(
        items,
        &q,
        &[
            "pipeline_version_id",
            "name",
            "display_name",
            "description",
            "created_at",
        ],
        "pipeline_versions",
    ))
}

async fn create_version(
    State(emu): State<Emulator>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let m = match body_object(
        &body,
        &[
            "pipeline_id",
            "pipeline_version_id",
            "display_name",
            "name",
            "description",
            "created_at",
            "package_url",
            "code_source_url",
            "pipeline_spec",
            "error",
            "tags",
        ],
    ) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let Some(spec) = m.get("pipeline_spec").filter(|s| s.is_object()).cloned() else {
        return bad(
            "Invalid input error: Failed to create a pipeline version: pipeline_spec is required (package_url is not supported by the emulator)",
        );
    };
    let display = str_field(&m, "display_name");
    let name = Some(str_field(&m, "name"))
        .filter(|s| !s.is_empty())
        .unwrap_or(display.clone());
    if name.is_empty() {
        return bad(
            "Invalid input error: Pipeline version name is empty. Please specify a valid name",
        );
    }
    let display = if display.is_empty() {
        name.clone()
    } else {
        display
    };
    let mut s = emu.lock();
    match insert_version(
        &mut s,
        &id,
        &name,
        &display,
        &str_field(&m, "description"),
        spec,
    ) {
        Ok(vid) => ok(s
            .versions
            .iter()
            .find(|v| v.id == vid)
            .map(VersionRec::view)
            .unwrap_or_default()),
        Err(e) => store_error(e),
    }
}

async fn get_version(
    State(emu): State<Emulator>,
    Path((id, vid)): Path<(String, String)>,
) -> Response {
    match emu
        .lock()
        .versions
        .iter()
        .find(|v| v.id == vid && v.pipeline_id == id)
    {
        Some(v) => ok(v.view()),
        None => missing(format!(
            "Failed to get a pipeline version: ResourceNotFoundError: PipelineVersion {vid} not found"
        )),
    }
}

async fn delete_version(
    State(emu): State<Emulator>,
    Path((id, vid)): Path<(String, String)>,
) -> Response {
    let mut s = emu.lock();
    let before = s.versions.len();
    s.versions.retain(|v| !(v.id == vid && v.pipeline_id == id));
    if s.versions.len() == before {
        return missing(format!(
            "ResourceNotFoundError: PipelineVersion {vid} not found"
        ));
    }
    ok(json!({}))
}
