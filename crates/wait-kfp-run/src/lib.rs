//! `wait-kfp-run`: wait for a Kubeflow Pipelines run; terminate it on timeout or SIGTERM.
//!
//! Unlike `kfp.Client.wait_for_run_completion`, a FAILED or CANCELED run fails the step, a
//! CANCELED run is not polled until the timeout, transient API errors are retried, and the run
//! is terminated when the step times out or is cancelled.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use ct_kfp::client::KfpClient;
use ct_kfp::wait::{Finish, WaitConfig, wait_for_run};
use ct_step::cli::{CommonArgs, HttpArgs, parse_duration};
use ct_step::http::{ApiClient, ClientConfig};
use ct_step::{Result, ResultExt, Results, StepError};

const LONG_ABOUT: &str = "\
Wait for a Kubeflow Pipelines (v2beta1 API) run to finish.

Polls GET /apis/v2beta1/runs/{id} over one keep-alive connection: at once, then every \
--poll-interval. State changes and per-task progress (run_details.task_details) are logged once \
per change. Transient API errors (network, 429, 5xx) are retried.

Result: KFP_RUN_STATE (the last state seen: SUCCEEDED, SKIPPED, FAILED, CANCELED, or the state \
at the timeout).

Exit codes: 0 the run SUCCEEDED or was SKIPPED (or any terminal state with --allow-failed-run); \
1 the run FAILED or was CANCELED (the run's error is printed), or --timeout passed (the run is \
terminated unless --no-terminate-on-timeout); 2 bad flag or run id; 3 KFP, auth or network \
error; 143 SIGTERM/SIGINT (the run is terminated first, within 20 s).";

/// Flags of `wait-kfp-run` (every flag also reads `CT_<FLAG>`).
#[derive(Debug, Clone, Parser)]
#[command(name = "wait-kfp-run", version, about = "Wait for a Kubeflow Pipelines run; terminate it on timeout or SIGTERM", long_about = LONG_ABOUT)]
pub struct Args {
    /// KFP API URL. Default: https://ds-pipeline-dspa.<namespace>.svc:8443.
    #[arg(long, env = "CT_KFP_URL", value_name = "URL")]
    pub kfp_url: Option<String>,

    /// Namespace of the DSPA (for the default --kfp-url). Default: the pod's namespace.
    #[arg(long, env = "CT_NAMESPACE", value_name = "NS")]
    pub namespace: Option<String>,

    /// The run to wait for.
    #[arg(
        long,
        env = "CT_RUN_ID",
        value_name = "ID",
        required_unless_present = "run_id_file",
        conflicts_with = "run_id_file"
    )]
    pub run_id: Option<String>,

    /// File holding the run id (e.g. execute-ds-pipeline's KFP_RUN_ID result).
    #[arg(long, env = "CT_RUN_ID_FILE", value_name = "FILE")]
    pub run_id_file: Option<PathBuf>,

    /// Time between polls.
    #[arg(long, env = "CT_POLL_INTERVAL", default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub poll_interval: Duration,

    /// Give up after this long (then terminate the run, unless --no-terminate-on-timeout).
    #[arg(long, env = "CT_TIMEOUT", default_value = "2h", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,

    /// Leave the run running when --timeout passes.
    #[arg(long, env = "CT_NO_TERMINATE_ON_TIMEOUT")]
    pub no_terminate_on_timeout: bool,

    /// Exit 0 whatever the terminal state (the legacy behaviour); KFP_RUN_STATE still tells.
    #[arg(long, env = "CT_ALLOW_FAILED_RUN")]
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

/// Time the terminate request gets (the whole SIGTERM grace is 20 s).
const TERMINATE_TIMEOUT: Duration = Duration::from_secs(10);

fn run_id(args: &Args) -> Result<String> {
    let (id, source) = match (&args.run_id, &args.run_id_file) {
        (Some(id), _) => (id.trim().to_string(), "--run-id".to_string()),
        (None, Some(f)) => (
            std::fs::read_to_string(f)
                .usage_err(format!("--run-id-file {}: cannot read", f.display()))?
                .trim()
                .to_string(),
            format!("--run-id-file {}", f.display()),
        ),
        (None, None) => return Err(StepError::usage("pass --run-id or --run-id-file")),
    };
    if id.is_empty() || id.len() > 256 || id.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(StepError::usage(format!(
            "{source}: `{id}` is not a run id; pass the KFP_RUN_ID result of execute-ds-pipeline"
        )));
    }
    Ok(id)
}

/// The step.
pub async fn run(args: Args) -> Result<()> {
    let run_id = run_id(&args)?;
    if args.poll_interval.is_zero() {
        return Err(StepError::usage("--poll-interval must be above 0, e.g. 5s"));
    }
    let (url, namespace) = ct_kfp::endpoint(args.kfp_url.as_deref(), args.namespace.as_deref())?;
    let mut results = Results::new(&args.common.results_dir, &["KFP_RUN_STATE"])?;
    let api = ApiClient::new(ClientConfig::from_args(&url, "--kfp-url", &args.http)?)?;
    let client = KfpClient::new(api, namespace, args.http.max_retries);
    let cfg = WaitConfig {
        poll_interval: args.poll_interval,
        timeout: args.timeout,
        terminate_on_timeout: !args.no_terminate_on_timeout,
        max_poll_errors: args.max_poll_errors,
        terminate_timeout: TERMINATE_TIMEOUT,
    };
    tracing::info!("waiting for run {run_id} (timeout {:?})", args.timeout);
    let finish = tokio::select! {
        r = wait_for_run(&client, &run_id, &cfg) => r?,
        _ = ct_step::signal::cancelled() => {
            tracing::warn!("terminating run {run_id}");
            match client.terminate_run(&run_id, TERMINATE_TIMEOUT).await {
                Ok(()) => tracing::warn!("terminated run {run_id}"),
                Err(e) => tracing::error!("terminating run {run_id} failed: {e}"),
            }
            return Err(StepError::terminated());
        }
    };
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

fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
