//! The KFP emulator's own `/_emulator` routes (beside the shared `faults` and `requests`), for
//! processes that cannot hold a [`crate::KfpEmulator`]:
//!
//! - `POST /_emulator/scripts` `{"outcome","pending_ms","running_ms","error"}`: the next run's
//!   script;
//! - `PUT /_emulator/default-script` (same body): the script of runs with none queued;
//! - `GET /_emulator/runs`: every run as the API shows it, plus `terminate_calls`;
//! - `POST /_emulator/runs/{id}/state` `{"state":"CANCELED"}`: force a run's state.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use ct_kfp::RunState;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Shared;
use crate::http::Reply;
use crate::run::RunScriptJson;

/// The routes, relative to `/_emulator`.
pub fn routes(shared: Shared) -> Router {
    Router::new()
        .route("/scripts", post(push_script))
        .route("/default-script", put(default_script))
        .route("/runs", get(runs))
        .route("/runs/{id}/state", post(set_state))
        .with_state(shared)
}

async fn push_script(State(s): State<Shared>, Json(j): Json<RunScriptJson>) -> StatusCode {
    s.lock().queue_script(j.into());
    StatusCode::NO_CONTENT
}

async fn default_script(State(s): State<Shared>, Json(j): Json<RunScriptJson>) -> StatusCode {
    s.lock().set_default_script(j.into());
    StatusCode::NO_CONTENT
}

async fn runs(State(s): State<Shared>) -> Json<Value> {
    let runs: Vec<Value> = s
        .lock()
        .runs
        .iter()
        .map(|r| {
            let mut v = r.view();
            v["terminate_calls"] = json!(r.terminate_calls);
            v
        })
        .collect();
    Json(json!({ "runs": runs }))
}

#[derive(Deserialize)]
struct SetState {
    state: String,
}

async fn set_state(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Json(b): Json<SetState>,
) -> Reply {
    s.lock()
        .set_run_state(&id, RunState::parse(&b.state))
        .map_err(|_| ct_emulator::Error::not_found(format!("run {id} not found")))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
