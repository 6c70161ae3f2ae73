//! `execute-ds-pipeline`: submit a Kubeflow Pipelines v2 run and record its id.
//!
//! Replaces the Python step that pip-installed kfp on every run. Sends the same requests as
//! `kfp.Client().create_run_from_pipeline_package(...)` (kfp 2.9.0) plus the run's idempotency
//! key in its `description`, validates parameters against the pipeline before any request, and
//! never creates a second run when retried with the same `--idempotency-key`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use clap::Parser;
use serde_json::{Map, Value};

use ct_kfp::cancel::{self, Target};
use ct_kfp::client::{CreateRun, KfpClient, RunSource, validate_idempotency_key};
use ct_kfp::package::PipelinePackage;
use ct_kfp::params::{self, ParamDecl};
use ct_step::cli::{CommonArgs, HttpArgs};
use ct_step::http::{ApiClient, ClientConfig};
use ct_step::{Result, Results, StepError};

const LONG_ABOUT: &str = "\
Submit a Kubeflow Pipelines (v2beta1 API) run and write its id as a Tekton result.

The pipeline is either a compiled IR YAML (--pipeline-package: first YAML document = the \
PipelineSpec, later documents = the platform spec, sent inline as kfp 2.9.0 sends it) \
or an uploaded pipeline (--pipeline-name, optionally --pipeline-version; default: its newest \
version). Parameters come from --parameters-file (JSON object, at most 4 MiB) and repeatable \
--param KEY=VALUE, coerced to the types the pipeline declares; an unknown key, a value of the \
wrong type or a required parameter left unset fails before the run is created (with \
--pipeline-package: before any request). Names (experiment, run, pipeline, version) are single \
lines; every flag and file is checked before any request. Each --param on the \
command line is exactly one parameter, whatever its value holds; only the CT_PARAM variable is \
a list (one KEY=VALUE per line). The package is read with a 32 MiB limit. The experiment \
(--experiment) is looked up by name and created when missing.

Every run carries an idempotency key in its description (the one field the create body has \
beyond kfp 2.9.0's): --idempotency-key (the kfp-training Task passes one derived from the \
PipelineRun), else a key generated for this process. A retried step with the same key, or a \
create request whose answer was lost after the server created the run, finds and reuses that run \
instead of starting a second one (an ambiguous create is retried up to --max-retries times, each \
after checking by the key that no run exists); a SIGTERM while the create \
request is unanswered finds the run by its key and terminates it; and wait-kfp-run --terminate \
(the pipeline's finally task) finds the run by the same key when this TaskRun was killed.

The results directory is checked before the first request: a result that cannot be written \
fails the step before any run is created.

Results: KFP_RUN_ID, KFP_EXPERIMENT_ID (written as soon as the run exists).

Exit codes: 0 run created (or reused); 2 bad flag, file or parameter, or no such pipeline or \
version; 3 KFP, auth, network or local I/O error; 143 SIGTERM/SIGINT (a run this step created is terminated first, within 20 s; the last \
log line names a run that may still be running when the terminate could not be confirmed).";

/// Flags of `execute-ds-pipeline` (every flag also reads `CT_<FLAG>`).
#[derive(Debug, Clone, Parser)]
#[command(name = "execute-ds-pipeline", version, about = "Submit a Kubeflow Pipelines v2 run and record its id", long_about = LONG_ABOUT)]
pub struct Args {
    /// KFP API URL. Default: https://ds-pipeline-dspa.<namespace>.svc:8443 (the DSPA's
    /// auth proxy).
    #[arg(long, env = "CT_KFP_URL", value_name = "URL")]
    pub kfp_url: Option<String>,

    /// Namespace of the DSPA (a namespace name); sent with experiment and pipeline lookups as
    /// the kfp SDK does.
    /// Default: the pod's namespace (service-account namespace file).
    #[arg(long, env = "CT_NAMESPACE", value_name = "NS")]
    pub namespace: Option<String>,

    /// Compiled pipeline (KFP IR YAML, e.g. from kfp.compiler.Compiler().compile; at most
    /// 32 MiB).
    #[arg(long, env = "CT_PIPELINE_PACKAGE", value_name = "FILE")]
    pub pipeline_package: Option<String>,

    /// Run an uploaded pipeline by name instead of a package.
    #[arg(long, env = "CT_PIPELINE_NAME", value_name = "NAME")]
    pub pipeline_name: Option<String>,

    /// Version of --pipeline-name to run. Default: its newest version.
    #[arg(long, env = "CT_PIPELINE_VERSION", value_name = "VERSION")]
    pub pipeline_version: Option<String>,

    /// JSON object of run parameters (e.g. default_parameters.json; at most 4 MiB); --param
    /// values override it.
    #[arg(long, env = "CT_PARAMETERS_FILE", value_name = "FILE")]
    pub parameters_file: Option<String>,

    /// A run parameter, coerced to the type the pipeline declares (repeatable; each is one
    /// parameter, whatever its value holds; in CT_PARAM, one KEY=VALUE per line).
    #[arg(long = "param", env = "CT_PARAM", value_name = "KEY=VALUE")]
    pub params: Vec<String>,

    /// Set caching on every task of the pipeline's root DAG, as kfp's enable_caching does.
    /// Default: keep what the pipeline was compiled with.
    #[arg(long, env = "CT_ENABLE_CACHING", value_name = "true|false")]
    pub enable_caching: Option<String>,

    /// Apply --enable-caching to the tasks of nested DAGs (conditions, loops, sub-pipelines)
    /// too; the kfp SDK changes root tasks only.
    #[arg(long, env = "CT_CACHING_NESTED", value_parser = ct_step::cli::bool_flag)]
    pub caching_nested: bool,

    /// Experiment name (one line); created when it does not exist.
    #[arg(
        long,
        env = "CT_EXPERIMENT",
        value_name = "NAME",
        default_value = "Default"
    )]
    pub experiment: String,

    /// Run display name (one line). Default: "<pipelineInfo.name> <UTC %Y-%m-%d %H-%M-%S>".
    #[arg(long, env = "CT_RUN_NAME", value_name = "NAME")]
    pub run_name: Option<String>,

    /// Key stored with the run (1-128 of A-Z a-z 0-9 . _ : -): a run already created with it
    /// is reused, so a retried step creates no second run, and wait-kfp-run --terminate can find
    /// the run by it. Default: a key generated for this process (it still finds the run after a
    /// lost answer or a SIGTERM, but a retried step creates a new run).
    #[arg(long, env = "CT_IDEMPOTENCY_KEY", value_name = "KEY")]
    pub idempotency_key: Option<String>,

    #[command(flatten)]
    pub http: HttpArgs,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// Parameter resolution against the declarations of the chosen pipeline.
type Resolve<'a> = &'a dyn Fn(&[ParamDecl]) -> Result<Map<String, Value>>;

/// What a SIGTERM must clean up.
#[derive(Default)]
struct Progress {
    experiment_id: Option<String>,
    run_id: Option<String>,
    /// A create request was sent: a run may exist even without an answer.
    posted: Arc<AtomicBool>,
}

/// The step.
pub async fn run(mut args: Args) -> Result<()> {
    args.idempotency_key = nonempty(&args.idempotency_key);
    args.run_name = nonempty(&args.run_name);
    // Everything local first: nothing is sent until all inputs are valid.
    let flags = args
        .params
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| params::parse_param_flag(s))
        .collect::<Result<Vec<_>>>()?;
    // Tekton passes unset params as empty env values: empty means "not given".
    let package_path = nonempty(&args.pipeline_package).map(PathBuf::from);
    let pipeline_name = nonempty(&args.pipeline_name);
    match (&package_path, &pipeline_name) {
        (Some(_), Some(_)) => {
            return Err(StepError::usage(
                "pass --pipeline-package or --pipeline-name, not both",
            ));
        }
        (None, None) => {
            return Err(StepError::usage(
                "pass --pipeline-package FILE (compiled pipeline YAML) or --pipeline-name NAME",
            ));
        }
        _ => {}
    }
    if nonempty(&args.pipeline_version).is_some() && pipeline_name.is_none() {
        return Err(StepError::usage("--pipeline-version needs --pipeline-name"));
    }
    let enable_caching = match nonempty(&args.enable_caching).as_deref() {
        None => None,
        Some(v) if v.eq_ignore_ascii_case("true") => Some(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Some(false),
        Some(v) => {
            return Err(StepError::usage(format!(
                "--enable-caching {v}: pass true or false"
            )));
        }
    };
    if args.caching_nested && enable_caching.is_none() {
        return Err(StepError::usage(
            "--caching-nested needs --enable-caching true|false",
        ));
    }
    let file = match nonempty(&args.parameters_file).map(PathBuf::from) {
        Some(p) => Some((
            format!("--parameters-file {}", p.display()),
            params::load_parameters_file(&p)?,
        )),
        None => None,
    };
    if let Some(k) = &args.idempotency_key {
        validate_idempotency_key(k)?;
    }
    let experiment = ct_kfp::validate_name("--experiment", &args.experiment)?.to_string();
    for (flag, v) in [
        ("--run-name", &args.run_name),
        ("--pipeline-name", &pipeline_name),
        ("--pipeline-version", &nonempty(&args.pipeline_version)),
    ] {
        if let Some(v) = v {
            ct_kfp::validate_name(flag, v)?;
        }
    }
    if pipeline_name.is_some() && enable_caching.is_some() {
        return Err(StepError::usage(
            "--enable-caching works with --pipeline-package only: a stored pipeline version keeps its compiled caching",
        ));
    }
    let resolve = |decls: &[ParamDecl]| {
        params::resolve(
            decls,
            file.as_ref().map(|(l, m)| (l.as_str(), m.clone())),
            &flags,
        )
    };
    let package = match &package_path {
        Some(path) => {
            let mut pkg = PipelinePackage::load(path)?;
            if let Some(enable) = enable_caching {
                let n = pkg.override_caching(enable, args.caching_nested);
                tracing::info!("caching set to {enable} on {n} tasks");
            }
            let parameters = resolve(&pkg.parameters()?)?;
            Some((pkg, parameters))
        }
        None => None,
    };
    let (url, namespace) = ct_kfp::endpoint(args.kfp_url.as_deref(), args.namespace.as_deref())?;
    let mut results = Results::new(
        &args.common.results_dir,
        &["KFP_RUN_ID", "KFP_EXPERIMENT_ID"],
    )?;
    let api = ApiClient::new(ClientConfig::from_args(&url, "--kfp-url", &args.http)?)?;
    let client = KfpClient::new(api, namespace, args.http.max_retries);
    let key = match &args.idempotency_key {
        Some(k) => k.clone(),
        None => {
            let k = format!("generated-{}", uuid::Uuid::new_v4());
            tracing::info!(
                "no --idempotency-key: using {k} (finds the run after a lost answer or a SIGTERM; a retried step creates a new run)"
            );
            k
        }
    };

    let progress = Arc::new(Mutex::new(Progress::default()));
    let work = submit(
        &client, &args, &key, experiment, package, &resolve, &progress,
    );
    let (run_id, experiment_id) = tokio::select! {
        r = work => r?,
        _ = ct_step::signal::cancelled() => {
            return Err(cancel(&client, &key, &progress).await);
        }
    };
    results.write("KFP_RUN_ID", &run_id)?;
    results.write("KFP_EXPERIMENT_ID", &experiment_id)?;
    results.finish()
}

async fn submit(
    client: &KfpClient,
    args: &Args,
    key: &str,
    experiment: String,
    package: Option<(PipelinePackage, Map<String, Value>)>,
    resolve: Resolve<'_>,
    progress: &Mutex<Progress>,
) -> Result<(String, String)> {
    let (source, pipeline_name, parameters) = match package {
        Some((pkg, parameters)) => (
            RunSource::Spec(pkg.pipeline_spec()),
            pkg.name().to_string(),
            parameters,
        ),
        None => {
            let name = nonempty(&args.pipeline_name).unwrap_or_default();
            let name = name.as_str();
            let pipeline = client.find_pipeline(name).await?;
            let version = client
                .pipeline_version(&pipeline, nonempty(&args.pipeline_version).as_deref())
                .await?;
            let label = format!("pipeline {name} version {}", version.display_name);
            let spec = version.pipeline_spec.clone().ok_or_else(|| {
                StepError::remote(format!("{label}: the server returned no pipeline_spec"))
            })?;
            let pkg = PipelinePackage::from_api_spec(spec, &label)?;
            let parameters = resolve(&pkg.parameters()?)?;
            tracing::info!("running {label} ({})", version.pipeline_version_id);
            (
                RunSource::Version {
                    pipeline_id: version.pipeline_id.clone(),
                    pipeline_version_id: version.pipeline_version_id.clone(),
                },
                pkg.name().to_string(),
                parameters,
            )
        }
    };
    let exp = client.get_or_create_experiment(&experiment).await?;
    lock(progress).experiment_id = Some(exp.experiment_id.clone());
    tracing::info!("experiment {experiment}: {}", exp.experiment_id);
    let display_name = args
        .run_name
        .clone()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| {
            format!(
                "{pipeline_name} {}",
                chrono::Utc::now().format("%Y-%m-%d %H-%M-%S")
            )
        });
    let req = CreateRun {
        experiment_id: exp.experiment_id.clone(),
        display_name,
        source,
        parameters,
        idempotency_key: Some(key.to_string()),
    };
    let posted = lock(progress).posted.clone();
    let (run, reused) = client.create_run(&req, &posted).await?;
    lock(progress).run_id = Some(run.run_id.clone());
    tracing::info!(
        "{} run {} ({}) in experiment {experiment}",
        if reused { "reusing" } else { "created" },
        run.run_id,
        req.display_name
    );
    Ok((run.run_id, exp.experiment_id))
}

/// The trimmed value, or None when absent or empty.
fn nonempty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

fn lock(p: &Mutex<Progress>) -> std::sync::MutexGuard<'_, Progress> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

/// On SIGTERM: terminate the run this step created (found by its key when the create request
/// was in flight), within the cancel budget, so a cancelled PipelineRun does not leave training
/// running. Returns the step's final error (exit 143).
async fn cancel(client: &KfpClient, key: &str, progress: &Mutex<Progress>) -> StepError {
    let (exp, run, posted) = {
        let p = lock(progress);
        (
            p.experiment_id.clone(),
            p.run_id.clone(),
            p.posted.load(Ordering::SeqCst),
        )
    };
    let budget = ct_step::signal::CANCEL_BUDGET;
    match (run, exp) {
        (Some(run), _) => cancel::cancel(client, Target::Run(&run), budget).await,
        (None, Some(exp)) if posted => {
            let target = Target::Key {
                experiment_id: &exp,
                key,
                create_in_flight: true,
            };
            cancel::cancel(client, target, budget).await
        }
        _ => StepError::new(
            ct_step::ErrorKind::Terminated,
            "terminated by signal before a run was created",
        ),
    }
}
