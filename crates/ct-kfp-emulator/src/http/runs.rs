//! `/runs`: create (inline spec or pipeline version), get, list, delete, `:terminate`,
//! `:archive` / `:unarchive`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use ct_emulator::Error;
use serde_json::{Map, Value, json};

use super::{
    API, Reply, body_object, during, list, method_not_allowed, not_found, ok, query, str_field,
};
use crate::Shared;
use crate::run::RunRec;
use crate::store::{NewRun, RunSource, check_run_name};

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route(&format!("{API}/runs"), get(list_runs).post(create_run))
        .route(
            &format!("{API}/runs/{{id}}"),
            get(get_run).delete(delete_run).post(run_action),
        )
}

const FIELDS: &[&str] = &[
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

const FILTER_KEYS: &[&str] = &[
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
];

/// Exactly one of `pipeline_spec` and `pipeline_version_reference`.
fn source(m: &Map<String, Value>) -> Result<RunSource, Error> {
    match (m.get("pipeline_spec"), m.get("pipeline_version_reference")) {
        (Some(Value::Object(spec)), None) => Ok(RunSource::Spec(Value::Object(spec.clone()))),
        (None, Some(Value::Object(r))) => Ok(RunSource::Version(
            r.get("pipeline_version_id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        )),
        (Some(_), Some(_)) => Err(Error::invalid(
            "Invalid input error: Failed to create a run: pipeline_spec and pipeline_version_reference are mutually exclusive",
        )),
        _ => Err(Error::invalid(
            "Invalid input error: Failed to create a run: the pipeline spec is missing; set pipeline_spec or pipeline_version_reference",
        )),
    }
}

/// `POST /runs` (its optional `experiment_id` query parameter is ignored, as by the server when
/// the body has one).
async fn create_run(State(s): State<Shared>, body: Bytes) -> Reply {
    let m = body_object(&body, FIELDS)?;
    let display_name = str_field(&m, "display_name");
    check_run_name(&display_name)?;
    let new = NewRun {
        display_name,
        description: str_field(&m, "description"),
        experiment_id: Some(str_field(&m, "experiment_id")).filter(|e| !e.is_empty()),
        source: source(&m)?,
        runtime_config: m.get("runtime_config").cloned(),
        service_account: Some(str_field(&m, "service_account")),
    };
    let mut store = s.lock();
    Ok(ok(store.create_run(new, None)?.view()))
}

async fn get_run(State(s): State<Shared>, Path(id): Path<String>) -> Reply {
    let store = s.lock();
    let r = store.run(&id).map_err(during("Failed to get a run"))?;
    Ok(ok(r.view()))
}

async fn list_runs(State(s): State<Shared>, RawQuery(q): RawQuery) -> Reply {
    let q = query(q);
    let exp = q.get("experiment_id").filter(|e| !e.is_empty());
    let items = s
        .lock()
        .runs
        .iter()
        .filter(|r| exp.is_none_or(|e| &r.experiment_id == e))
        .map(RunRec::view)
        .collect();
    list(items, &q, FILTER_KEYS, "runs")
}

async fn delete_run(State(s): State<Shared>, Path(id): Path<String>) -> Reply {
    s.lock()
        .delete_run(&id)
        .map_err(during("Failed to delete a run"))?;
    Ok(ok(json!({})))
}

async fn run_action(State(s): State<Shared>, Path(id_action): Path<String>) -> Reply {
    let Some((id, action)) = id_action.split_once(':') else {
        return Ok(method_not_allowed());
    };
    let mut store = s.lock();
    store
        .run(id)
        .map_err(during(&format!("Failed to {action} a run")))?;
    match action {
        "terminate" => store.terminate_run(id)?,
        "archive" => store.set_run_archived(id, true)?,
        "unarchive" => store.set_run_archived(id, false)?,
        _ => return Ok(not_found()),
    }
    Ok(ok(json!({})))
}
