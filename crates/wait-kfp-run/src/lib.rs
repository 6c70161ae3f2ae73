//! `wait-kfp-run`: wait for a Kubeflow Pipelines run; terminate it on timeout or SIGTERM; or,
//! with `--terminate`, stop a run (a pipeline's `finally` clean-up).
//!
//! Unlike `kfp.Client.wait_for_run_completion`, a FAILED or CANCELED run fails the step, a
//! CANCELED run is not polled until the timeout, transient API errors are retried, and the run
//! is terminated when the step times out or is cancelled.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use ct_kfp::cancel::{self, Target};
use ct_kfp::client::{KfpClient, validate_idempotency_key};
use ct_kfp::wait::{Finish, Termination, WaitConfig, terminate_and_wait, wait_for_run};
use ct_step::cli::{CommonArgs, HttpArgs, parse_positive_duration};
use ct_step::http::{ApiClient, ClientConfig};
use ct_step::input::{MAX_ID_FILE, read_text_bounded};
use ct_step::{Result, Results, StepError};

const LONG_ABOUT: &str = "\
Wait for a Kubeflow Pipelines (v2beta1 API) run to finish, or with --terminate stop it.

Polls GET /apis/v2beta1/runs/{id} over one keep-alive connection: at once, then every \
--poll-interval. State changes and per-task progress (run_details.task_details) are logged once \
per change. Transient API errors (network, 429, 5xx) are retried; --max-poll-errors failed polls \
in a row end the wait.

Result: KFP_RUN_STATE (the last state seen: SUCCEEDED, SKIPPED, FAILED, CANCELED, or the state \
at the timeout). The results directory is checked before the first request.

Exit codes: 0 the run SUCCEEDED or was SKIPPED (or any terminal state with --allow-failed-run); \
1 the run FAILED or was CANCELED (the run's error is printed), or --timeout passed (the run is \
terminated unless --no-terminate-on-timeout); 2 bad flag or run id; 3 KFP, auth or network \
error; 143 SIGTERM/SIGINT (the run is terminated first, within 20 s; when the terminate cannot \
be confirmed the last log line says the run may still be running, naming it).

--terminate (the clean-up mode of a pipeline's finally task): a run that is already terminal is \
left alone; otherwise POST /apis/v2beta1/runs/{id}:terminate is sent once and the run is polled \
until it is terminal, for at most --timeout. The run is --run-id, or the id in --run-id-file, \
or the run created with --idempotency-key in --experiment (the key execute-ds-pipeline stored): \
a timed-out or cancelled TaskRun publishes no results, so the finally task finds the run by its \
key. An empty --run-id, a --run-id-file that is missing or empty, an experiment that does not \
exist or no run with the key (the run was never created) means there is nothing to terminate: \
KFP_RUN_STATE is written empty and the exit code is 0. Exit codes: 0 the run is terminal \
(KFP_RUN_STATE: CANCELED, or the state it had already reached); 1 it was still not terminal \
(e.g. CANCELING) when --timeout passed; 2 bad flag or run id (including an unknown run); \
3 KFP, auth or network error; 143 SIGTERM/SIGINT.

Boolean flags also read their environment variable: true/false, 1/0, yes/no, on/off; an empty \
value counts as not given.";

/// Flags of `wait-kfp-run` (every flag also reads `CT_<FLAG>`).
#[derive(Debug, Clone, Parser)]
#[command(name = "wait-kfp-run", version, about = "Wait for a Kubeflow Pipelines run; terminate it on timeout or SIGTERM, or at once with --terminate", long_about = LONG_ABOUT)]
pub struct Args {
    /// KFP API URL. Default: https://ds-pipeline-dspa.<namespace>.svc:8443.
    #[arg(long, env = "CT_KFP_URL", value_name = "URL")]
    pub kfp_url: Option<String>,

    /// Namespace of the DSPA (for the default --kfp-url, and sent with the experiment lookup
    /// of --idempotency-key). Default: the pod's namespace.
    #[arg(long, env = "CT_NAMESPACE", value_name = "NS")]
    pub namespace: Option<String>,

    /// The run to wait for (or to terminate). Empty: an error, except with --terminate
    /// (nothing to terminate).
    #[arg(
        long,
        env = "CT_RUN_ID",
        value_name = "ID",
        required_unless_present_any = ["run_id_file", "idempotency_key"]
    )]
    pub run_id: Option<String>,

    /// File holding the run id (e.g. execute-ds-pipeline's KFP_RUN_ID result; at most 64 KiB).
    /// With --terminate, a missing or empty file means nothing to terminate.
    #[arg(long, env = "CT_RUN_ID_FILE", value_name = "FILE")]
    pub run_id_file: Option<PathBuf>,

    /// With --terminate and no run id: the run to stop is the one execute-ds-pipeline created
    /// with this --idempotency-key in --experiment (no such run: nothing to terminate).
    #[arg(long, env = "CT_IDEMPOTENCY_KEY", value_name = "KEY")]
    pub idempotency_key: Option<String>,

    /// Experiment (by name) holding the run of --idempotency-key.
    #[arg(long, env = "CT_EXPERIMENT", value_name = "NAME")]
    pub experiment: Option<String>,

    /// Terminate the run instead of waiting for it to finish: unless it is already terminal,
    /// send terminate, then wait (at most --timeout) until it is terminal. Exit 0 once it is
    /// (CANCELED is success here), and also when there is no run (nothing to terminate).
    #[arg(long, env = "CT_TERMINATE", value_parser = parse_bool_flag)]
    pub terminate: bool,

    /// Time between polls (above 0).
    #[arg(long, env = "CT_POLL_INTERVAL", default_value = "5s", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub poll_interval: Duration,

    /// Give up after this long (then terminate the run, unless --no-terminate-on-timeout).
    /// With --terminate: how long to wait for the terminated run to reach a terminal state.
    /// Above 0.
    #[arg(long, env = "CT_TIMEOUT", default_value = "2h", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub timeout: Duration,

    /// Leave the run running when --timeout passes.
    #[arg(long, env = "CT_NO_TERMINATE_ON_TIMEOUT", value_parser = parse_bool_flag)]
    pub no_terminate_on_timeout: bool,

    /// Exit 0 whatever the terminal state (the legacy behaviour); KFP_RUN_STATE still tells.
    #[arg(long, env = "CT_ALLOW_FAILED_RUN", value_parser = parse_bool_flag)]
    pub allow_failed_run: bool,

    /// Failed polls in a row (each after the HTTP retries) that end the wait with exit 3: N
    /// failures in a row give up (0 or 1: the first failure does).
    #[arg(
        long,
        env = "CT_MAX_POLL_ERRORS",
        default_value_t = 10,
        value_name = "N"
    )]
    pub max_poll_errors: u32,

    #[command(flatten)]
    pub http: HttpArgs,

    #[command(flatten)]
    pub common: CommonArgs,
}

pub use ct_step::cli::bool_flag as parse_bool_flag;

/// Time the terminate request gets on --timeout.
const TERMINATE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which run: by id, by idempotency key, or none (only with --terminate).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Which {
    Id(String),
    Key { experiment: String, key: String },
    Nothing,
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The run to wait for or terminate, from --run-id, --run-id-file or --idempotency-key.
fn which(args: &Args) -> Result<Which> {
    let given = nonempty(&args.run_id);
    let file = args
        .run_id_file
        .as_ref()
        .filter(|f| !f.as_os_str().is_empty());
    let key = nonempty(&args.idempotency_key);
    if key.is_some() && (given.is_some() || file.is_some()) {
        return Err(StepError::usage(
            "pass a run id (--run-id or --run-id-file) or --idempotency-key, not both",
        ));
    }
    if let Some(key) = key {
        if !args.terminate {
            return Err(StepError::usage(
                "--idempotency-key finds a run to terminate: it needs --terminate (to wait, pass --run-id)",
            ));
        }
        validate_idempotency_key(key)?;
        let experiment = nonempty(&args.experiment).ok_or_else(|| {
            StepError::usage("--idempotency-key needs --experiment, the experiment holding the run")
        })?;
        let experiment = ct_kfp::validate_name("--experiment", experiment)?;
        return Ok(Which::Key {
            experiment: experiment.to_string(),
            key: key.to_string(),
        });
    }
    let (id, source) = match (given, file) {
        (Some(_), Some(_)) => {
            return Err(StepError::usage("pass --run-id or --run-id-file, not both"));
        }
        (Some(id), None) => (id.to_string(), "--run-id".to_string()),
        (None, Some(f)) => {
            let source = format!("--run-id-file {}", f.display());
            if args.terminate && !f.exists() {
                tracing::info!("{source}: no such file: no run to terminate");
                return Ok(Which::Nothing);
            }
            let text = read_text_bounded(f, MAX_ID_FILE, "--run-id-file")?;
            (text.trim().to_string(), source)
        }
        (None, None) => (
            String::new(),
            if args.run_id.is_some() || args.run_id_file.is_none() {
                "--run-id".to_string()
            } else {
                "--run-id-file".to_string()
            },
        ),
    };
    if id.is_empty() {
        if args.terminate {
            tracing::info!("{source} is empty (the run was never created?): no run to terminate");
            return Ok(Which::Nothing);
        }
        return Err(StepError::usage(format!(
            "{source} is empty; pass the KFP_RUN_ID result of execute-ds-pipeline"
        )));
    }
    ct_kfp::validate_run_id(&source, &id)?;
    Ok(Which::Id(id))
}

/// The step.
pub async fn run(args: Args) -> Result<()> {
    for (set, flag) in [
        (args.allow_failed_run, "--allow-failed-run"),
        (args.no_terminate_on_timeout, "--no-terminate-on-timeout"),
    ] {
        if set && args.terminate {
            return Err(StepError::usage(format!(
                "{flag} has no meaning with --terminate; drop one of them"
            )));
        }
    }
    let which = which(&args)?;
    let (url, namespace) = ct_kfp::endpoint(args.kfp_url.as_deref(), args.namespace.as_deref())?;
    let mut results = Results::new(&args.common.results_dir, &["KFP_RUN_STATE"])?;
    let api = ApiClient::new(ClientConfig::from_args(&url, "--kfp-url", &args.http)?)?;
    let client = KfpClient::new(api, namespace, args.http.max_retries);
    let run_id = match which {
        Which::Id(id) => Some(id),
        Which::Nothing => None,
        Which::Key { experiment, key } => find_by_key(&client, &experiment, &key).await?,
    };
    let Some(run_id) = run_id else {
        // Only --terminate gets here: a finally task must not fail the pipeline for "no run".
        results.write("KFP_RUN_STATE", "")?;
        return results.finish();
    };
    let cfg = WaitConfig {
        poll_interval: args.poll_interval,
        timeout: args.timeout,
        terminate_on_timeout: !args.no_terminate_on_timeout,
        max_poll_errors: args.max_poll_errors,
        terminate_timeout: TERMINATE_TIMEOUT,
    };
    if args.terminate {
        tracing::info!(
            "terminating run {run_id} unless it already ended (timeout {:?})",
            args.timeout
        );
        let end =
            or_terminate_on_signal(&client, &run_id, terminate_and_wait(&client, &run_id, &cfg))
                .await?;
        return report_termination(&run_id, end, args.timeout, &mut results);
    }
    tracing::info!("waiting for run {run_id} (timeout {:?})", args.timeout);
    let finish =
        or_terminate_on_signal(&client, &run_id, wait_for_run(&client, &run_id, &cfg)).await?;
    match finish {
        Finish::Done(run) => {
            results.write("KFP_RUN_STATE", run.state.as_str())?;
            results.finish()?;
            if run.state.is_success() {
                return Ok(());
            }
            let why = run
                .error_message()
                .unwrap_or_else(|| "no error message from the server".into());
            let msg = format!("run {run_id} ended {}: {why}", run.state);
            if args.allow_failed_run {
                tracing::warn!("{msg} (--allow-failed-run: exiting 0)");
                Ok(())
            } else {
                Err(StepError::failed(msg))
            }
        }
        Finish::TimedOut { state, terminated } => {
            results.write("KFP_RUN_STATE", state.as_str())?;
            results.finish()?;
            Err(StepError::failed(format!(
                "run {run_id} did not finish within {} (last state {state}); {}",
                humanize(args.timeout),
                if terminated {
                    "terminated it"
                } else if args.no_terminate_on_timeout {
                    "left it running (--no-terminate-on-timeout)"
                } else {
                    "terminating it failed"
                }
            )))
        }
    }
}

/// The run created with `key` in the experiment named `experiment`, if any. A signal during
/// the run lookup still terminates the run it finds (within the cancel budget).
async fn find_by_key(client: &KfpClient, experiment: &str, key: &str) -> Result<Option<String>> {
    let exp = tokio::select! {
        r = client.find_experiment(experiment) => r?,
        _ = ct_step::signal::cancelled() => {
            return Err(StepError::new(
                ct_step::ErrorKind::Terminated,
                format!("terminated by signal before the run with idempotency key {key} was looked up"),
            ));
        }
    };
    let Some(exp) = exp else {
        tracing::info!("experiment {experiment} does not exist: no run to terminate");
        return Ok(None);
    };
    let found = tokio::select! {
        r = client.find_run_by_key(&exp.experiment_id, key) => r?,
        _ = ct_step::signal::cancelled() => {
            let target = Target::Key {
                experiment_id: &exp.experiment_id,
                key,
                create_in_flight: false,
            };
            return Err(cancel::cancel(client, target, ct_step::signal::CANCEL_BUDGET).await);
        }
    };
    match found {
        Some(run) => {
            tracing::info!("run {} has idempotency key {key}", run.run_id);
            Ok(Some(run.run_id))
        }
        None => {
            tracing::info!(
                "no run with idempotency key {key} in experiment {experiment} (it was never created): no run to terminate"
            );
            Ok(None)
        }
    }
}

/// Run `work`; on SIGTERM/SIGINT terminate the run first (within the cancel budget), then exit
/// 143 with the outcome as the last log line.
async fn or_terminate_on_signal<T>(
    client: &KfpClient,
    run_id: &str,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    tokio::select! {
        r = work => r,
        _ = ct_step::signal::cancelled() => {
            Err(cancel::cancel(client, Target::Run(run_id), ct_step::signal::CANCEL_BUDGET).await)
        }
    }
}

/// `--terminate`: the result, the log line and the exit code for how the run ended.
fn report_termination(
    run_id: &str,
    end: Termination,
    timeout: Duration,
    results: &mut Results,
) -> Result<()> {
    match end {
        Termination::AlreadyEnded(run) => {
            tracing::info!(
                "run {run_id} already ended {}: nothing to terminate",
                run.state
            );
            results.write("KFP_RUN_STATE", run.state.as_str())?;
            results.finish()
        }
        Termination::Ended(run) => {
            tracing::info!("run {run_id} terminated: it is {}", run.state);
            results.write("KFP_RUN_STATE", run.state.as_str())?;
            results.finish()
        }
        Termination::TimedOut { state } => {
            results.write("KFP_RUN_STATE", state.as_str())?;
            results.finish()?;
            Err(StepError::failed(format!(
                "run {run_id} was terminated but is still {state} after {}; check it on the KFP \
                 server (a longer --timeout waits more)",
                humanize(timeout)
            )))
        }
    }
}

fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bool_flags_read_common_spellings_and_empty_is_false() {
        for s in ["", " ", "false", "FALSE", "0", "no", "n", "off"] {
            assert_eq!(parse_bool_flag(s), Ok(false), "{s:?}");
        }
        for s in ["true", "True", "1", "yes", "y", "on"] {
            assert_eq!(parse_bool_flag(s), Ok(true), "{s:?}");
        }
        assert!(parse_bool_flag("maybe").is_err());
    }
}
