//! Waiting for a run: poll, log each change once, stop at a terminal state or the deadline.
//!
//! Differences from `kfp.Client.wait_for_run_completion` (deliberate fixes):
//! CANCELED is terminal; a terminal state seen on the last poll wins over the deadline;
//! transient poll errors (network, 429, 5xx) are tolerated up to a bound; and on timeout the
//! run is terminated unless the caller opts out.
//!
//! [`terminate_and_wait`] is the same loop for a caller whose goal is to stop the run (a
//! pipeline's `finally` clean-up): terminate it unless it already ended, then wait until it has.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use ct_step::Result;

use crate::client::{KfpClient, Poll};
use crate::model::{Run, RunState};

/// How to wait.
#[derive(Debug, Clone)]
pub struct WaitConfig {
    pub poll_interval: Duration,
    pub timeout: Duration,
    pub terminate_on_timeout: bool,
    /// Consecutive failed polls (after the HTTP client's own retries) that end the wait: the
    /// wait gives up on the `max_poll_errors`-th failure in a row (at the first with 0).
    pub max_poll_errors: u32,
    /// Timeout of the terminate request.
    pub terminate_timeout: Duration,
}

/// How the wait ended.
#[derive(Debug)]
pub enum Finish {
    /// The run reached a terminal state.
    Done(Box<Run>),
    /// The deadline passed first.
    TimedOut {
        /// The last state seen.
        state: RunState,
        /// Whether the run was terminated.
        terminated: bool,
    },
}

/// Remembers what was already logged, so each change is logged once.
#[derive(Debug, Default)]
pub struct Progress {
    state: Option<RunState>,
    tasks: HashMap<String, RunState>,
}

impl Progress {
    /// The log lines for what changed since the previous poll (empty when nothing did).
    pub fn update(&mut self, run: &Run) -> Vec<String> {
        let mut lines = Vec::new();
        let tasks = run.tasks();
        let done = tasks.iter().filter(|t| t.state.is_terminal()).count();
        for t in tasks {
            let id = if t.task_id.is_empty() {
                t.display_name.clone()
            } else {
                t.task_id.clone()
            };
            if self.tasks.get(&id) != Some(&t.state) {
                self.tasks.insert(id, t.state.clone());
                lines.push(format!(
                    "task {}: {} ({done}/{} tasks done)",
                    t.display_name,
                    t.state,
                    tasks.len()
                ));
            }
        }
        if self.state.as_ref() != Some(&run.state) {
            self.state = Some(run.state.clone());
            lines.push(format!("run {} is {}", run.run_id, run.state));
        }
        lines
    }
}

/// How [`terminate_and_wait`] ended.
#[derive(Debug)]
pub enum Termination {
    /// The run was already terminal (or ended on its own before a terminate took effect):
    /// nothing was terminated.
    AlreadyEnded(Box<Run>),
    /// Terminate was sent and the run then reached this terminal state: CANCELED, or another
    /// one when it finished on its own meanwhile.
    Ended(Box<Run>),
    /// Terminate was sent, but the run was still not terminal when `cfg.timeout` passed.
    TimedOut {
        /// The last state seen (typically CANCELING).
        state: RunState,
    },
}

/// Poll `run_id` until it is terminal or `cfg.timeout` has passed.
pub async fn wait_for_run(client: &KfpClient, run_id: &str, cfg: &WaitConfig) -> Result<Finish> {
    poll_until_terminal(client, run_id, cfg, false)
        .await
        .map(|(finish, _)| finish)
}

/// Stop `run_id`: when its first poll shows it live, send `POST /runs/{id}:terminate` once, then
/// poll (as [`wait_for_run`] does) until it is terminal or `cfg.timeout` has passed. A run that
/// is already terminal is left alone. `cfg.terminate_on_timeout` is not used (the terminate was
/// already sent).
pub async fn terminate_and_wait(
    client: &KfpClient,
    run_id: &str,
    cfg: &WaitConfig,
) -> Result<Termination> {
    Ok(
        match poll_until_terminal(client, run_id, cfg, true).await? {
            (Finish::Done(run), false) => Termination::AlreadyEnded(run),
            (Finish::Done(run), true) => Termination::Ended(run),
            (Finish::TimedOut { state, .. }, _) => Termination::TimedOut { state },
        },
    )
}

/// The one polling loop. With `terminate`, the first poll that shows the run live is followed
/// by a terminate request. Returns how it ended and whether a terminate was sent (at once or
/// at the deadline).
async fn poll_until_terminal(
    client: &KfpClient,
    run_id: &str,
    cfg: &WaitConfig,
    terminate: bool,
) -> Result<(Finish, bool)> {
    let deadline = Instant::now() + cfg.timeout;
    let mut progress = Progress::default();
    let mut errors = 0u32;
    let mut last_state = RunState::Unspecified;
    let mut terminated = false;
    loop {
        match client.poll_run(run_id).await {
            Poll::Run(run) => {
                errors = 0;
                for line in progress.update(&run) {
                    tracing::info!("{line}");
                }
                if run.state.is_terminal() {
                    return Ok((Finish::Done(run), terminated));
                }
                last_state = run.state.clone();
                if terminate && !terminated {
                    tracing::info!("terminating run {run_id} (it is {})", run.state);
                    if let Err(e) = client.terminate_run(run_id, cfg.terminate_timeout).await {
                        // It may have finished meanwhile (a server may refuse to terminate a
                        // finished run): that is not an error.
                        if let Poll::Run(run) = client.poll_run(run_id).await
                            && run.state.is_terminal()
                        {
                            for line in progress.update(&run) {
                                tracing::info!("{line}");
                            }
                            return Ok((Finish::Done(run), false));
                        }
                        return Err(e.context(format!("terminating run {run_id}")));
                    }
                    terminated = true;
                }
            }
            Poll::Transient(e) => {
                errors += 1;
                if errors >= cfg.max_poll_errors {
                    return Err(e.context(format!("{errors} polls in a row failed")));
                }
                tracing::warn!(
                    "polling run {run_id} failed ({errors}/{}): {e}; trying again",
                    cfg.max_poll_errors
                );
            }
            Poll::Fatal(e) => return Err(e),
        }
        let now = Instant::now();
        if now >= deadline {
            if cfg.terminate_on_timeout && !terminated {
                match client.terminate_run(run_id, cfg.terminate_timeout).await {
                    Ok(()) => {
                        tracing::warn!("timeout: terminated run {run_id}");
                        terminated = true;
                    }
                    Err(e) => tracing::error!("timeout: terminating run {run_id} failed: {e}"),
                }
            }
            return Ok((
                Finish::TimedOut {
                    state: last_state,
                    terminated,
                },
                terminated,
            ));
        }
        tokio::time::sleep(cfg.poll_interval.min(deadline - now)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(state: &str, tasks: &[(&str, &str)]) -> Run {
        let tasks: Vec<_> = tasks
            .iter()
            .map(|(n, s)| serde_json::json!({"task_id": n, "display_name": n, "state": s}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "run_id": "r", "state": state, "run_details": {"task_details": tasks}
        }))
        .unwrap()
    }

    #[test]
    fn each_change_is_logged_once() {
        let mut p = Progress::default();
        assert_eq!(p.update(&run("PENDING", &[])), ["run r is PENDING"]);
        assert!(p.update(&run("PENDING", &[])).is_empty());
        assert_eq!(
            p.update(&run("RUNNING", &[("fetch", "RUNNING")])),
            ["task fetch: RUNNING (0/1 tasks done)", "run r is RUNNING"]
        );
        assert!(
            p.update(&run("RUNNING", &[("fetch", "RUNNING")]))
                .is_empty()
        );
        assert_eq!(
            p.update(&run(
                "RUNNING",
                &[("fetch", "SUCCEEDED"), ("train", "RUNNING")]
            )),
            [
                "task fetch: SUCCEEDED (1/2 tasks done)",
                "task train: RUNNING (1/2 tasks done)"
            ]
        );
    }
}
