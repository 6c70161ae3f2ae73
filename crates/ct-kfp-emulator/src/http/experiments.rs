//! `/experiments`: list, create, get, delete, `:archive` / `:unarchive`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use serde_json::json;

use super::{
    API, Reply, body_object, during, list, method_not_allowed, not_found, ok, query, str_field,
};
use crate::Shared;
use crate::records::ExperimentRec;

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route(
            &format!("{API}/experiments"),
            get(list_experiments).post(create_experiment),
        )
        .route(
            &format!("{API}/experiments/{{id}}"),
            get(get_experiment)
                .delete(delete_experiment)
                .post(experiment_action),
        )
}

const FILTER_KEYS: &[&str] = &[
    "experiment_id",
    "display_name",
    "description",
    "created_at",
    "storage_state",
    "namespace",
];

const FIELDS: &[&str] = &[
    "experiment_id",
    "display_name",
    "description",
    "created_at",
    "namespace",
    "storage_state",
    "last_run_created_at",
];

async fn list_experiments(State(s): State<Shared>, RawQuery(q): RawQuery) -> Reply {
    let items = s
        .lock()
        .experiments
        .iter()
        .map(ExperimentRec::view)
        .collect();
    list(items, &query(q), FILTER_KEYS, "experiments")
}

async fn create_experiment(State(s): State<Shared>, body: Bytes) -> Reply {
    let m = body_object(&body, FIELDS)?;
    let mut store = s.lock();
    let e = store.create_experiment(
        &str_field(&m, "display_name"),
        &str_field(&m, "description"),
    )?;
    Ok(ok(e.view()))
}

async fn get_experiment(State(s): State<Shared>, Path(id): Path<String>) -> Reply {
    let store = s.lock();
    let e = store
        .experiment(&id)
        .map_err(during("Failed to get experiment"))?;
    Ok(ok(e.view()))
}

async fn delete_experiment(State(s): State<Shared>, Path(id): Path<String>) -> Reply {
    s.lock()
        .delete_experiment(&id)
        .map_err(during("Failed to delete experiment"))?;
    Ok(ok(json!({})))
}

async fn experiment_action(State(s): State<Shared>, Path(id_action): Path<String>) -> Reply {
    let Some((id, action)) = id_action.split_once(':') else {
        return Ok(method_not_allowed());
    };
    let mut store = s.lock();
    store.experiment(id)?;
    match action {
        "archive" => store.set_experiment_archived(id, true)?,
        "unarchive" => store.set_experiment_archived(id, false)?,
        _ => return Ok(not_found()),
    }
    Ok(ok(json!({})))
}
