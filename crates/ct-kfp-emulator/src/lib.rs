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
//! Runs follow a scripted timeline ([`RunScript`]: how it ends, time PENDING, time RUNNING) with
//! `run_details.task_details` progressing through the root DAG's tasks; states are `ct_kfp`'s
//! [`RunState`]. [`start`] returns a [`KfpEmulator`] handle (the [`ct_emulator::Emulator`]
//! contract): seed experiments, pipelines and runs, queue per-run scripts, force run states,
//! require a bearer token (401/403 in plain text like kube-rbac-proxy), inject faults (5xx
//! bursts, 429, latency, dropped connections, answers lost after processing) and read the
//! request log. Other processes use the same through `/_emulator/...` ([`admin`]).
//!
//! Modules: [`store`] (state and every change to it), [`records`] (experiments, pipelines,
//! versions and their views), [`run`] (scripted run timelines and the Run view), [`http`] (the v2beta1 routes), [`filter`] (the list `filter` parameter),
//! [`admin`] (the `/_emulator` routes).

pub mod admin;
pub mod filter;
pub mod http;
pub mod records;
pub mod run;
pub mod store;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
pub use ct_emulator::{Emulator, Error, Fault, FaultAction, LoggedRequest};
use ct_emulator::{Front, Result, Served, Style, loopback};
pub use ct_kfp::RunState;
use ct_step::cli::parse_duration;
use serde_json::Value;

use records::ExperimentRec;
pub use run::{RunEnd, RunScript};
use store::{NewRun, Store, spec_from_yaml};

/// Errors are `googleRpcStatus`; the DSPA auth proxy lets only the v1beta1 health check through.
const STYLE: Style = Style {
    error: |status, message| http::rpc_error(status, message),
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
    #[arg(long, env = "CT_SANDBOX_KFP_OUTCOME", value_enum, default_value_t = RunEnd::Succeeded)]
    pub kfp_outcome: RunEnd,
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

/// The state the routes share (cheap to clone).
#[derive(Clone)]
pub struct Shared {
    store: Arc<Mutex<Store>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The handle on a KFP emulator: its URL, seeding, inspection and scripting.
pub struct KfpEmulator {
    shared: Shared,
    served: Served,
}

impl std::fmt::Debug for KfpEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KfpEmulator")
            .field("url", &self.url())
            .finish()
    }
}

/// Start the emulator on a free loopback port.
pub async fn start(options: Options) -> Result<KfpEmulator> {
    start_at(loopback(0), options).await
}

/// Start the emulator on `addr`.
pub async fn start_at(addr: SocketAddr, options: Options) -> Result<KfpEmulator> {
    ct_emulator::start(addr, |url| Ok(build(options, url))).await
}

/// The handle and the router for a caller that serves it itself (at `url`), e.g. on a listener
/// that counts connections.
pub fn build(options: Options, url: &str) -> (KfpEmulator, Router) {
    let store = Store::new(
        RunScript::new(
            options.kfp_outcome,
            options.kfp_pending,
            options.kfp_running,
        ),
        options.kfp_cancel_delay,
    );
    let front = Front::new(STYLE);
    for fault in options.kfp_fault {
        front.push(fault);
    }
    front.set_latency(options.kfp_latency);
    let forbidden = options.kfp_forbidden_token.as_deref();
    front.set_tokens(options.kfp_require_token.as_deref(), forbidden);
    let shared = Shared {
        store: Arc::new(Mutex::new(store)),
    };
    let api = front.layer(http::routes()).with_state(shared.clone());
    let router = api.merge(front.admin_routes(admin::routes(shared.clone())));
    let emu = KfpEmulator {
        shared,
        served: Served::new(url, front),
    };
    (emu, router)
}

impl Emulator for KfpEmulator {
    fn served(&self) -> &Served {
        &self.served
    }

    fn served_mut(&mut self) -> &mut Served {
        &mut self.served
    }
}

impl KfpEmulator {
    fn store(&self) -> MutexGuard<'_, Store> {
        self.shared.lock()
    }

    // ---- scripting ----

    /// The next created run follows `script` (queued, first in first out).
    pub fn push_run_script(&self, script: RunScript) {
        self.store().queue_script(script);
    }

    /// Runs created with no queued script follow this one.
    pub fn set_default_script(&self, script: RunScript) {
        self.store().set_default_script(script);
    }

    /// Force a run into `state` now (e.g. a CANCELED run someone else stopped).
    pub fn set_run_state(&self, run_id: &str, state: RunState) -> Result<()> {
        self.store().set_run_state(run_id, state)
    }

    // ---- seeding (the same rules as over HTTP) ----

    /// Create an experiment; returns its id.
    pub fn add_experiment(&self, name: &str) -> Result<String> {
        Ok(self.store().create_experiment(name, "")?.id.clone())
    }

    /// Upload a pipeline package (its YAML); returns (pipeline_id, pipeline_version_id).
    pub fn add_pipeline(&self, name: &str, yaml: &str) -> Result<(String, String)> {
        let spec = spec_from_yaml(yaml)?;
        self.store().upload_pipeline(name, name, "", spec)
    }

    /// Add a version to a pipeline; returns its id.
    pub fn add_pipeline_version(
        &self,
        pipeline_id: &str,
        name: &str,
        yaml: &str,
    ) -> Result<String> {
        let spec = spec_from_yaml(yaml)?;
        let mut s = self.store();
        Ok(s.create_version(pipeline_id, name, name, "", spec)?
            .id
            .clone())
    }

    /// Create a run of `pipeline_spec` in the `Default` experiment following `script`; returns
    /// its id.
    pub fn add_run(
        &self,
        display_name: &str,
        pipeline_spec: Value,
        script: RunScript,
    ) -> Result<String> {
        let new = NewRun::of_spec(display_name, pipeline_spec);
        Ok(self.store().create_run(new, Some(script))?.id.clone())
    }

    // ---- inspection ----

    /// Every run as `GET /runs/{id}` would answer now, oldest first.
    pub fn runs(&self) -> Vec<Value> {
        self.store().runs.iter().map(run::RunRec::view).collect()
    }

    /// A run's state now.
    pub fn run_state(&self, run_id: &str) -> Result<RunState> {
        let s = self.store();
        let r = s.run(run_id)?;
        Ok(r.state_at(r.elapsed()))
    }

    /// How many times `:terminate` was called on the run (0 for an unknown run).
    pub fn terminate_calls(&self, run_id: &str) -> u32 {
        self.store().run(run_id).map_or(0, |r| r.terminate_calls)
    }

    /// Every experiment as the API shows it.
    pub fn experiments(&self) -> Vec<Value> {
        self.store()
            .experiments
            .iter()
            .map(ExperimentRec::view)
            .collect()
    }
}
