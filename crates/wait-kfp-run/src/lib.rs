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

use ct_kfp::client::KfpClient;
use ct_kfp::wait::{Finish, Termination, WaitConfig, terminate_and_wait, wait_for_run};
use ct_step::cli::{CommonArgs, HttpArgs, parse_duration};
use ct_step::http::{ApiClient, ClientConfig};
use ct_step::{Result, ResultExt, Results, StepError};

const LONG_ABOUT: &str = "\
Wait for a Kubeflow Pipelines (v2beta1 API) run to finish, or with --terminate stop it.

Polls GET /apis/v2beta1/runs/{id} over one keep-alive connection: at once, then every \
--poll-interval. State changes and per-task progress (run_details.task_details) are logged once \
per change. Transient API errors (network, 429, 5xx) are retried.

Result: KFP_RUN_STATE (the last state seen: SUCCEEDED, SKIPPED, FAILED, CANCELED, or the state \
at the timeout).

Exit codes: 0 the run SUCCEEDED or was SKIPPED (or any terminal state with --allow-failed-run); \
1 the run FAILED or was CANCELED (the run's error is printed), or --timeout passed (the run is \
terminated unless --no-terminate-on-timeout); 2 bad flag or run id; 3 KFP, auth or network \
error; 143 SIGTERM/SIGINT (the run is terminated first, within 20 s).

--terminate (the clean-up mode of a pipeline's finally task): a run that is already terminal is \
left alone; otherwise POST /apis/v2beta1/runs/{id}:terminate is sent once and the run is polled \
until it is terminal, for at most --timeout. An empty --run-id, or a --run-id-file that is \
missing or empty (the run was never created), means there is nothing to terminate: \
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

    /// Namespace of the DSPA (for the default --kfp-url). Default: the pod's namespace.
    #[arg(long, env = "CT_NAMESPACE", value_name = "NS")]
    pub namespace: Option<String>,

    /// The run to wait for (or to terminate). Empty: an error, except with --terminate
    /// (nothing to terminate).
    #[arg(
        long,
        env = "CT_RUN_ID",
        value_name = "ID",
        required_unless_present = "run_id_file"
    )]
    pub run_id: Option<String>,

    /// File holding the run id (e.g. execute-ds-pipeline's KFP_RUN_ID result). With
    /// --terminate, a missing or empty file means nothing to terminate.
    #[arg(long, env = "CT_RUN_ID_FILE", value_name = "FILE")]
    pub run_id_file: Option<PathBuf>,

    /// Terminate the run instead of waiting for it to finish: unless it is already terminal,
    /// send terminate, then wait (at most --timeout) until it is terminal. Exit 0 once it is
    /// (CANCELED is success here), and also when there is no run id (nothing to terminate).
    #[arg(long, env = "CT_TERMINATE", value_parser = parse_bool_flag)]
    pub terminate: bool,

    /// Time between polls.
    #[arg(long, env = "CT_POLL_INTERVAL", default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub poll_interval: Duration,

    /// Give up after this long (then terminate the run, unless --no-terminate-on-timeout).
    /// With --terminate: how long to wait for the terminated run to reach a terminal state.
    #[arg(long, env = "CT_TIMEOUT", default_value = "2h", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,

    /// Leave the run running when --timeout passes.
    #[arg(long, env = "CT_NO_TERMINATE_ON_TIMEOUT", value_parser = parse_bool_flag)]
    pub no_terminate_on_timeout: bool,

    /// Exit 0 whatever the terminal state (the legacy behaviour); KFP_RUN_STATE still tells.
    #[arg(long, env = "CT_ALLOW_FAILED_RUN", value_parser = parse_bool_flag)]
    pub allow_failed_run: bool,

    /// Failed polls in a row (after the HTTP retries) before giving up.
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

/// Time the terminate request gets (the whole SIGTERM grace is 20 s).
const TERMINATE_TIMEOUT: Duration = Duration::from_secs(10);

/// The run id, or `None` when `--terminate` has no run to stop (an empty id, or a run-id file
/// that is missing or empty).
fn run_id(args: &Args) -> Result<Option<String>> {
    let given = args
        .run_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let file = args
        .run_id_file
        .as_ref()
        .filter(|f| !f.as_os_str().is_empty());
    let (id, source) = match (given, file) {
        (Some(_), Some(_)) => {
            return Err(StepError::usage("pass --run-id or --run-id-file, not both"));
        }
        (Some(id), None) => (id.to_string(), "--run-id".to_string()),
        (None, Some(f)) => {
            let source = format!("--run-id-file {}", f.display());
            match std::fs::read_to_string(f) {
                Ok(text) => (text.trim().to_string(), source),
                Err(e) if args.terminate && e.kind() == std::io::ErrorKind::NotFound => {
                    tracing::info!("{source}: no such file: no run to terminate");
                    return Ok(None);
                }
                Err(e) => return Err(e).usage_err(format!("{source}: cannot read")),
            }
        }
        (None, None) => (
            String::new(),
            if args.run_id.is_some() {
                "--run-id".to_string()
            } else {
                "--run-id-file".to_string()
            },
        ),
    };
    if id.is_empty() {
        if args.terminate {
            tracing::info!("{source} is empty (the run was never created?): no run to terminate");
            return Ok(None);
        }
        return Err(StepError::usage(format!(
            "{source} is empty; pass the KFP_RUN_ID result of execute-ds-pipeline"
        )));
    }
    if id.len() > 256 || id.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(StepError::usage(format!(
            "{source}: `{id}` is not a run id; pass the KFP_RUN_ID result of execute-ds-pipeline"
        )));
    }
    Ok(Some(id))
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
    let run_id = run_id(&args)?;
    if args.poll_interval.is_zero() {
        return Err(StepError::usage("--poll-interval must be above 0, e.g. 5s"));
    }
    let (url, namespace) = ct_kfp::endpoint(args.kfp_url.as_deref(), args.namespace.as_deref())?;
    let mut results = Results::new(&args.common.results_dir, &["KFP_RUN_STATE"])?;
    let api = ApiClient::new(ClientConfig::from_args(&url, "--kfp-url", &args.http)?)?;
    let Some(run_id) = run_id else {
        // Only --terminate gets here: a finally task must not fail the pipeline for "no run".
        results.write("KFP_RUN_STATE", "")?;
        return results.finish();
    };
    let client = KfpClient::new(api, namespace, args.http.max_retries);
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

/// Run `work`; on SIGTERM/SIGINT terminate the run first (within the grace), then exit 143.
async fn or_terminate_on_signal<T>(
    client: &KfpClient,
    run_id: &str,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    tokio::select! {
        r = work => r,
        _ = ct_step::signal::cancelled() => {
            tracing::warn!("terminating run {run_id}");
            match client.terminate_run(run_id, TERMINATE_TIMEOUT).await {
                Ok(()) => tracing::warn!("terminated run {run_id}"),
                Err(e) => tracing::error!("terminating run {run_id} failed: {e}"),
            }
            Err(StepError::terminated())
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
