//! Kubeflow Pipelines v2beta1 API emulator, close enough to the real server (behind the DSPA
//! auth proxy) that the official `kfp` 2.x Python client works against it unchanged.
//!
//! Serves `healthz`, experiments (list with filter, create, get, archive, delete), runs
//! (create, get, list with filter, terminate, archive, delete), pipelines (upload (multipart),
//! JSON create, get, get by name, list with filter, delete) and their versions (upload, create,
//! get, list, delete). Field names are proto (snake_case) names, defaults are omitted, empty
//! lists answer `{}`, errors are `googleRpcStatus` with the HTTP status of the gRPC code, and
//! unknown request fields are rejected as a KFP ≥ 2.14 server does.
//!
//! Runs follow a scripted timeline ([`store::RunScript`]: outcome, time PENDING, time RUNNING)
//! with `run_details.task_details` progressing through the root DAG's tasks. Tests script it
//! through [`Emulator`] (or `/_emulator/...` admin endpoints for other processes): queue per-run
//! outcomes, require a bearer token (401/403 in plain text like kube-rbac-proxy), inject faults
//! (5xx bursts, 429, latency, dropped connections, answers lost after processing; see
//! [`crate::faults`]) and read the request log.

pub mod api;
pub mod filter;
pub mod store;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

pub use ct_emulator::{Fault, FaultAction, LoggedRequest};
use ct_emulator::{Front as Faults, Style};
use ct_step::cli::parse_duration;
use store::{ExperimentRec, PipelineRec, RunRec, VersionRec};
pub use store::{Outcome, RunScript};

/// Errors are `googleRpcStatus`; the DSPA auth proxy lets only the v1beta1 health check through.
const STYLE: Style = Style {
    error: |status, message| rpc_error(status, message),
    forbidden: "Forbidden (user=system:serviceaccount:sandbox:pipeline, verb=get, resource=datasciencepipelinesapplications, subresource=api)\n",
    open_paths: &["/apis/v1beta1/healthz"],
};

/// Flags for `ct-sandbox serve`.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "KFP emulator")]
pub struct Options {
    /// Require `Authorization: Bearer <TOKEN>` on the API (401 otherwise, like the DSPA auth
    /// proxy). Default: no auth.
    #[arg(long, env = "CT_SANDBOX_KFP_REQUIRE_TOKEN", value_name = "TOKEN")]
    pub kfp_require_token: Option<String>,
    /// A token that authenticates but lacks RBAC: answered 403.
    #[arg(long, env = "CT_SANDBOX_KFP_FORBIDDEN_TOKEN", value_name = "TOKEN")]
    pub kfp_forbidden_token: Option<String>,
    /// Time a new run stays PENDING.
    #[arg(long, env = "CT_SANDBOX_KFP_PENDING", default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub kfp_pending: Duration,
    /// Time a new run stays RUNNING; its tasks progress evenly over it.
    #[arg(long, env = "CT_SANDBOX_KFP_RUNNING", default_value = "4s", value_parser = parse_duration, value_name = "DURATION")]
    pub kfp_running: Duration,
    /// How new runs end (RUNNING = never, until terminated).
    #[arg(long, env = "CT_SANDBOX_KFP_OUTCOME", value_enum, default_value_t = Outcome::Succeeded)]
    pub kfp_outcome: Outcome,
    /// Time from terminate (CANCELING) to CANCELED.
    #[arg(long, env = "CT_SANDBOX_KFP_CANCEL_DELAY", default_value = "200ms", value_parser = parse_duration, value_name = "DURATION")]
    pub kfp_cancel_delay: Duration,
    /// Latency added to every API answer.
    #[arg(long, env = "CT_SANDBOX_KFP_LATENCY", default_value = "0s", value_parser = parse_duration, value_name = "DURATION")]
    pub kfp_latency: Duration,
    /// A fault to inject, as JSON (repeatable), e.g.
    /// `{"method":"GET","path":"/apis/v2beta1/runs/*","times":3,"action":{"status":503}}`.
    #[arg(
        long,
        env = "CT_SANDBOX_KFP_FAULT",
        value_name = "JSON",
        value_delimiter = '\n'
    )]
    pub kfp_fault: Vec<Fault>,
}

pub(crate) struct StateData {
    pub experiments: Vec<ExperimentRec>,
    pub pipelines: Vec<PipelineRec>,
    pub versions: Vec<VersionRec>,
    pub runs: Vec<RunRec>,
    pub scripts: VecDeque<RunScript>,
    pub default_script: RunScript,
    pub seq: u64,
    pub cancel_delay: Duration,
}

impl StateData {
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

struct Inner {
    state: Mutex<StateData>,
    faults: Faults,
    base_url: String,
}

/// Handle on the emulator (cheap to clone).
#[derive(Clone)]
pub struct Emulator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("kfp::Emulator")
            .field("base_url", &self.inner.base_url)
            .finish()
    }
}

impl Emulator {
    pub fn new(options: Options, base_url: &str) -> Self {
        let state = StateData {
            experiments: Vec::new(),
            pipelines: Vec::new(),
            versions: Vec::new(),
            runs: Vec::new(),
            scripts: VecDeque::new(),
            default_script: RunScript::new(
                options.kfp_outcome,
                options.kfp_pending,
                options.kfp_running,
            ),
            seq: 0,
            cancel_delay: options.kfp_cancel_delay,
        };
        let faults = Faults::new(STYLE);
        for fault in options.kfp_fault {
            faults.push(fault);
        }
        faults.set_latency(options.kfp_latency);
        let forbidden = options.kfp_forbidden_token.as_deref();
        faults.set_tokens(options.kfp_require_token.as_deref(), forbidden);
        Emulator {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                faults,
                base_url: base_url.to_string(),
            }),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, StateData> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Request log, latency, faults and tokens (shared with the other emulators).
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// The API (with auth, faults and the request log) plus the `/_emulator` admin endpoints.
    pub fn router(&self) -> Router {
        let api = self.faults().layer(api::routes()).with_state(self.clone());
        let admin = Router::new()
            .route("/scripts", post(admin_push_script))
            .route("/default-script", put(admin_default_script))
            .route("/runs", get(admin_runs))
            .route("/runs/{id}/state", post(admin_set_state))
            .with_state(self.clone());
        api.merge(self.faults().admin_routes(admin))
    }

    // ---- test-facing API ----

    /// The next created run follows `script` (queued, first in first out).
    pub fn push_run_script(&self, script: RunScript) {
        self.lock().scripts.push_back(script);
    }

    /// Runs created with no queued script follow this one.
    pub fn set_default_script(&self, script: RunScript) {
        self.lock().default_script = script;
    }

    /// Queue a fault ([`Faults::push`]).
    pub fn push_fault(&self, fault: Fault) {
        self.faults().push(fault);
    }

    pub fn clear_faults(&self) {
        self.faults().clear();
    }

    /// Require this bearer token (None: no auth); `forbidden` authenticates but gets 403.
    pub fn set_tokens(&self, required: Option<&str>, forbidden: Option<&str>) {
        self.faults().set_tokens(required, forbidden);
    }

    /// Every API request so far, oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.faults().requests()
    }

    /// Every run as `GET /runs/{id}` would answer now, oldest first.
    pub fn runs(&self) -> Vec<Value> {
        self.lock().runs.iter().map(RunRec::view).collect()
    }

    /// How many times `:terminate` was called on the run.
    pub fn terminate_calls(&self, run_id: &str) -> u32 {
        self.lock()
            .runs
            .iter()
            .find(|r| r.id == run_id)
            .map(|r| r.terminate_calls)
            .unwrap_or(0)
    }

    /// Every experiment as the API shows it.
    pub fn experiments(&self) -> Vec<Value> {
        self.lock()
            .experiments
            .iter()
            .map(ExperimentRec::view)
            .collect()
    }

    /// Create an experiment directly; returns its id.
    pub fn add_experiment(&self, name: &str) -> String {
        api::insert_experiment(&mut self.lock(), name, "")
    }

    /// Upload a pipeline package directly; returns (pipeline_id, pipeline_version_id).
    pub fn add_pipeline(&self, name: &str, yaml: &str) -> Result<(String, String), String> {
        let mut s = self.lock();
        let spec = api::spec_from_yaml(yaml)?;
        let p = api::insert_pipeline(&mut s, name, name, "")?;
        let v = api::insert_version(&mut s, &p, name, name, "", spec)?;
        Ok((p, v))
    }

    /// Add a version to a pipeline directly; returns its id.
    pub fn add_pipeline_version(
        &self,
        pipeline_id: &str,
        name: &str,
        yaml: &str,
    ) -> Result<String, String> {
        let mut s = self.lock();
        let spec = api::spec_from_yaml(yaml)?;
        api::insert_version(&mut s, pipeline_id, name, name, "", spec)
    }

    /// Create a run directly (in the `Default` experiment) following `script`; returns its id.
    pub fn add_run(&self, display_name: &str, pipeline_spec: Value, script: RunScript) -> String {
        let mut s = self.lock();
        s.scripts.push_front(script);
        api::insert_run(&mut s, display_name, pipeline_spec)
    }

    /// Force a run into `state` now (e.g. a CANCELED run someone else stopped).
    pub fn set_run_state(&self, run_id: &str, state: &str) -> bool {
        let mut s = self.lock();
        match s.runs.iter_mut().find(|r| r.id == run_id) {
            Some(r) => {
                r.cut(&[(Duration::ZERO, leak_state(state))]);
                true
            }
            None => false,
        }
    }
}

fn leak_state(s: &str) -> &'static str {
    match s {
        "PENDING" => "PENDING",
        "RUNNING" => "RUNNING",
        "SUCCEEDED" => "SUCCEEDED",
        "SKIPPED" => "SKIPPED",
        "FAILED" => "FAILED",
        "CANCELING" => "CANCELING",
        "CANCELED" => "CANCELED",
        "PAUSED" => "PAUSED",
        _ => "RUNTIME_STATE_UNSPECIFIED",
    }
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

async fn admin_push_script(
    State(emu): State<Emulator>,
    axum::Json(s): axum::Json<store::RunScriptJson>,
) -> StatusCode {
    emu.push_run_script(s.into());
    StatusCode::NO_CONTENT
}

async fn admin_default_script(
    State(emu): State<Emulator>,
    axum::Json(s): axum::Json<store::RunScriptJson>,
) -> StatusCode {
    emu.set_default_script(s.into());
    StatusCode::NO_CONTENT
}

async fn admin_runs(State(emu): State<Emulator>) -> axum::Json<Value> {
    let s = emu.lock();
    let runs: Vec<Value> = s
        .runs
        .iter()
        .map(|r| {
            let mut v = r.view();
            v["terminate_calls"] = json!(r.terminate_calls);
            v
        })
        .collect();
    axum::Json(json!({ "runs": runs }))
}

#[derive(Deserialize)]
struct SetState {
    state: String,
}

async fn admin_set_state(
    State(emu): State<Emulator>,
    Path(id): Path<String>,
    axum::Json(b): axum::Json<SetState>,
) -> Response {
    if emu.set_run_state(&id, &b.state) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        rpc_error(StatusCode::NOT_FOUND, format!("run {id} not found"))
    }
}
