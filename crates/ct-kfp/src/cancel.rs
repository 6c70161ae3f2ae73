//! Stopping a run after SIGTERM, within a fixed budget.
//!
//! Tekton SIGKILLs a step 30 s after SIGTERM. [`cancel`] runs the whole cancel path (finding
//! the run by its idempotency key when its id is unknown, the terminate request, its retries
//! and the check that the run already ended when a terminate is refused) inside one budget
//! ([`ct_step::signal::CANCEL_BUDGET`]), and returns the step's final error: exit 143, and its
//! message, the last log line, says what was done or what could not be done, naming the run
//! ("run X may still be running: terminate not confirmed after N s").

use std::time::Duration;

use ct_step::http::backoff_delay;
use ct_step::{ErrorKind, StepError};
use tokio::time::{Instant, timeout_at};

use crate::client::{KfpClient, Poll, Terminate};

/// The run to stop.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// Known by its id.
    Run(&'a str),
    /// Known by the idempotency key it was created with, in an experiment.
    Key {
        experiment_id: &'a str,
        key: &'a str,
        /// A create request was sent and not answered: the run may appear later, so the
        /// lookup is repeated until the budget ends instead of concluding "no run".
        create_in_flight: bool,
    },
}

/// Longest single terminate request (the budget may cut it shorter).
const TERMINATE_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between lookups of a run whose create is in flight.
const LOOKUP_INTERVAL: Duration = Duration::from_secs(1);
/// First pause between terminate attempts (doubles, jittered).
const RETRY_BACKOFF: Duration = Duration::from_millis(250);

fn terminated(message: String) -> StepError {
    StepError::new(ErrorKind::Terminated, message)
}

/// Whole seconds since `start`, rounded up (what a person reads in "after N s"), at most the
/// budget (the loop stops at the deadline; the last milliseconds are bookkeeping).
fn secs_since(start: Instant, budget: Duration) -> u64 {
    (start.elapsed().as_millis().div_ceil(1000) as u64).min(budget.as_secs().max(1))
}

/// Stop `target` within `budget`; see the module docs. Always returns an error of kind
/// `Terminated` (exit 143) whose message reports the outcome.
pub async fn cancel(client: &KfpClient, target: Target<'_>, budget: Duration) -> StepError {
    let start = Instant::now();
    let deadline = start + budget;
    let run_id = match target {
        Target::Run(id) => id.to_string(),
        Target::Key {
            experiment_id,
            key,
            create_in_flight,
        } => match find(client, experiment_id, key, create_in_flight, deadline).await {
            Found::Run(id) => id,
            Found::Nothing => {
                return terminated(format!(
                    "terminated by signal; no run was created (idempotency key {key})"
                ));
            }
            Found::Unknown(why) => {
                return terminated(format!(
                    "the run with idempotency key {key} (experiment {experiment_id}) may still be running: \
                     not found to terminate after {} s{why}",
                    secs_since(start, budget)
                ));
            }
        },
    };
    tracing::warn!("terminating run {run_id}");
    let mut last: Option<StepError> = None;
    let mut attempt = 0u32;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let per_request = left.min(TERMINATE_REQUEST_TIMEOUT);
        if per_request.is_zero() {
            break;
        }
        let (e, refused) =
            match timeout_at(deadline, client.request_terminate(&run_id, per_request)).await {
                Ok(Terminate::Accepted) => {
                    return terminated(format!("terminated by signal; terminated run {run_id}"));
                }
                Ok(Terminate::Refused(e)) => (e, true),
                Ok(Terminate::Transient(e)) => (e, false),
                Err(_) => {
                    last = Some(StepError::remote(
                        "the terminate request got no answer in time",
                    ));
                    break;
                }
            };
        // A server may refuse to terminate a run that has just finished: that is a success.
        if let Some(state) = ended(client, &run_id, deadline).await {
            tracing::info!("terminating run {run_id}: {e}; it had already ended");
            return terminated(format!(
                "terminated by signal; run {run_id} had already ended {state}"
            ));
        }
        last = Some(e);
        if refused {
            break;
        }
        tracing::warn!("terminating run {run_id} failed; trying again");
        let pause = backoff_delay(RETRY_BACKOFF, attempt);
        attempt += 1;
        tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
    terminated(format!(
        "run {run_id} may still be running: terminate not confirmed after {} s{}",
        secs_since(start, budget),
        last.map(|e| format!(" ({e})")).unwrap_or_default()
    ))
}

enum Found {
    Run(String),
    /// Looked up: no run has the key (and no create was in flight).
    Nothing,
    /// Not found before the deadline; the text is the last lookup error, if any.
    Unknown(String),
}

async fn find(
    client: &KfpClient,
    experiment_id: &str,
    key: &str,
    create_in_flight: bool,
    deadline: Instant,
) -> Found {
    let mut why = String::new();
    loop {
        match timeout_at(deadline, client.find_run_by_key(experiment_id, key)).await {
            Ok(Ok(Some(run))) => return Found::Run(run.run_id),
            Ok(Ok(None)) if !create_in_flight => return Found::Nothing,
            Ok(Ok(None)) => why.clear(),
            Ok(Err(e)) => why = format!(" ({e})"),
            Err(_) => return Found::Unknown(why),
        }
        if Instant::now() + LOOKUP_INTERVAL >= deadline {
            return Found::Unknown(why);
        }
        tokio::time::sleep(LOOKUP_INTERVAL).await;
    }
}

/// The run's state when it is terminal (asked once, before the deadline).
async fn ended(client: &KfpClient, run_id: &str, deadline: Instant) -> Option<String> {
    match timeout_at(deadline, client.poll_run(run_id)).await {
        Ok(Poll::Run(run)) if run.state.is_terminal() => Some(run.state.to_string()),
        _ => None,
    }
}
