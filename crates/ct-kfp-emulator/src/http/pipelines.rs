//! `/pipelines` and their versions: multipart upload (pipeline and version), JSON create, get,
//! get by name, list, delete.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Multipart, Path, RawQuery, State};
use axum::routing::{get, post};
use ct_emulator::Error;
use serde_json::{Value, json};

use super::{API, Reply, body_object, during, list, name_and_display, ok, query, str_field};
use crate::Shared;
use crate::records::{PipelineRec, VersionRec};
use crate::store::spec_from_yaml;

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route(
            &format!("{API}/pipelines"),
            get(list_pipelines).post(create_pipeline),
        )
        .route(&format!("{API}/pipelines/upload"), post(upload_pipeline))
        .route(
            &format!("{API}/pipelines/upload_version"),
            post(upload_version),
        )
        .route(
            &format!("{API}/pipelines/names/{{name}}"),
            get(get_pipeline_by_name),
        )
        .route(
            &format!("{API}/pipelines/{{id}}"),
            get(get_pipeline).delete(delete_pipeline),
        )
        .route(
            &format!("{API}/pipelines/{{id}}/versions"),
            get(list_versions).post(create_version),
        )
        .route(
            &format!("{API}/pipelines/{{id}}/versions/{{vid}}"),
            get(get_version).delete(delete_version),
        )
}

const PIPELINE_FILTER_KEYS: &[&str] = &[
    "pipeline_id",
    "name",
    "display_name",
    "description",
    "created_at",
    "namespace",
];

const VERSION_FILTER_KEYS: &[&str] = &[
    "pipeline_version_id",
    "name",
    "display_name",
    "description",
    "created_at",
];

/// The `uploadfile` part of a multipart upload: (file name, text).
async fn upload_file(mut mp: Multipart) -> Result<(String, String), Error> {
    let bad = |e: axum::extract::multipart::MultipartError| {
        Error::invalid(format!("Invalid input error: bad multipart body: {e}"))
    };
    while let Some(field) = mp.next_field().await.map_err(bad)? {
        if field.name() == Some("uploadfile") {
            let file_name = field.file_name().unwrap_or("pipeline.yaml").to_string();
            let bytes = field.bytes().await.map_err(bad)?;
            let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                Error::invalid("Invalid input error: the pipeline file is not UTF-8")
            })?;
            return Ok((file_name, text));
        }
    }
    Err(Error::invalid(
        "Invalid input error: Failed to read pipeline from file: uploadfile is missing",
    ))
}

/// An upload's (name, display name, description): `name` or `display_name` from the query,
/// else the file name.
fn upload_names(q: &HashMap<String, String>, file_name: String) -> (String, String, String) {
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
    (name, display, description)
}

async fn upload_pipeline(State(s): State<Shared>, RawQuery(q): RawQuery, mp: Multipart) -> Reply {
    let q = query(q);
    let (file_name, text) = upload_file(mp).await?;
    let spec = spec_from_yaml(&text)
        .map_err(during("Invalid input error: Failed to create a pipeline"))?;
    let (name, display, description) = upload_names(&q, file_name);
    let mut store = s.lock();
    let (id, _) = store.upload_pipeline(&name, &display, &description, spec)?;
    Ok(ok(store.pipeline(&id)?.view()))
}

async fn upload_version(State(s): State<Shared>, RawQuery(q): RawQuery, mp: Multipart) -> Reply {
    let q = query(q);
    let (file_name, text) = upload_file(mp).await?;
    let spec = spec_from_yaml(&text).map_err(during(
        "Invalid input error: Failed to create a pipeline version",
    ))?;
    let Some(pid) = q.get("pipelineid").filter(|s| !s.is_empty()).cloned() else {
        return Err(Error::invalid(
            "Invalid input error: Failed to create a pipeline version: pipelineid is missing",
        )
        .into());
    };
    let (name, display, description) = upload_names(&q, file_name);
    let mut store = s.lock();
    let v = store.create_version(&pid, &name, &display, &description, spec)?;
    Ok(ok(v.view()))
}

async fn create_pipeline(State(s): State<Shared>, body: Bytes) -> Reply {
    let m = body_object(
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
    )?;
    let (name, display) = name_and_display(str_field(&m, "name"), str_field(&m, "display_name"));
    if name.is_empty() {
        return Err(Error::invalid(
            "Invalid input error: Pipeline name is empty. Please specify a valid name",
        )
        .into());
    }
    let mut store = s.lock();
    let p = store.create_pipeline(&name, &display, &str_field(&m, "description"))?;
    Ok(ok(p.view()))
}

async fn list_pipelines(State(s): State<Shared>, RawQuery(q): RawQuery) -> Reply {
    let items = s.lock().pipelines.iter().map(PipelineRec::view).collect();
    list(items, &query(q), PIPELINE_FILTER_KEYS, "pipelines")
}

async fn get_pipeline(State(s): State<Shared>, Path(id): Path<String>) -> Reply {
    let store = s.lock();
    let p = store
        .pipeline(&id)
        .map_err(during("Failed to get a pipeline"))?;
    Ok(ok(p.view()))
}

async fn get_pipeline_by_name(State(s): State<Shared>, Path(name): Path<String>) -> Reply {
    let store = s.lock();
    let p = store
        .pipeline_named(&name)
        .map_err(during("Failed to get a pipeline by name"))?;
    Ok(ok(p.view()))
}

async fn delete_pipeline(State(s): State<Shared>, Path(id): Path<String>) -> Reply {
    s.lock().delete_pipeline(&id)?;
    Ok(ok(json!({})))
}

async fn list_versions(
    State(s): State<Shared>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Reply {
    let items: Vec<Value> = s
        .lock()
        .versions_of(&id)?
        .into_iter()
        .map(VersionRec::view)
        .collect();
    list(items, &query(q), VERSION_FILTER_KEYS, "pipeline_versions")
}

async fn create_version(State(s): State<Shared>, Path(id): Path<String>, body: Bytes) -> Reply {
    let m = body_object(
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
    )?;
    let Some(spec) = m.get("pipeline_spec").filter(|s| s.is_object()).cloned() else {
        return Err(Error::invalid(
            "Invalid input error: Failed to create a pipeline version: pipeline_spec is required (package_url is not supported by the emulator)",
        )
        .into());
    };
    let (name, display) = name_and_display(str_field(&m, "name"), str_field(&m, "display_name"));
    if name.is_empty() {
        return Err(Error::invalid(
            "Invalid input error: Pipeline version name is empty. Please specify a valid name",
        )
        .into());
    }
    let mut store = s.lock();
    let v = store.create_version(&id, &name, &display, &str_field(&m, "description"), spec)?;
    Ok(ok(v.view()))
}

async fn get_version(State(s): State<Shared>, Path((id, vid)): Path<(String, String)>) -> Reply {
    let store = s.lock();
    let v = store
        .version(&id, &vid)
        .map_err(during("Failed to get a pipeline version"))?;
    Ok(ok(v.view()))
}

async fn delete_version(State(s): State<Shared>, Path((id, vid)): Path<(String, String)>) -> Reply {
    s.lock().delete_version(&id, &vid)?;
    Ok(ok(json!({})))
}
