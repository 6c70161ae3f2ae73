//! What a person sees while a pipeline runs (`demo` and `run`): task progress on stderr, and
//! Ctrl-C as a PipelineRun cancel.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ct_tekton_interpreter::{Observer, TaskRunReport, TaskStatus};

/// Prints task progress (and step lines with `verbose`) on stderr.
pub struct ConsoleObserver {
    pub verbose: bool,
}

impl Observer for ConsoleObserver {
    fn task_started(&self, task: &str, stand_in: Option<&str>) {
        match stand_in {
            Some(s) => eprintln!("▶ {task}  ({s})"),
            None => eprintln!("▶ {task}"),
        }
    }

    fn line(&self, task: &str, step: &str, line: &str) {
        if self.verbose {
            eprintln!("  [{task}/{step}] {line}");
        }
    }

    fn task_finished(&self, r: &TaskRunReport) {
        match &r.status {
            TaskStatus::Succeeded => {
                let results: Vec<String> =
                    r.results.iter().map(|(k, v)| format!("{k}={v}")).collect();
                eprintln!("✔ {}  {}", r.name, results.join(" "));
            }
            TaskStatus::Failed(_) => eprintln!(
                "✘ {}  {}  (logs: {})",
                r.name,
                r.status,
                r.dir.join("logs").display()
            ),
            TaskStatus::Skipped(_) => eprintln!("↷ {}  {}", r.name, r.status),
            TaskStatus::NotRun => eprintln!("· {}  {}", r.name, r.status),
        }
    }
}

/// First Ctrl-C: cancel the run (the running step gets SIGTERM, finally tasks still run), like
/// a PipelineRun's CancelledRunFinally. Second Ctrl-C: exit at once.
pub fn cancel_on_ctrl_c(rt: &tokio::runtime::Runtime, flag: Arc<AtomicBool>) {
    rt.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::SeqCst);
            eprintln!("cancelling the run: stopping the running step, then the finally tasks (Ctrl-C again to quit now)");
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
}

/// Wait for SIGTERM or SIGINT (`serve`).
pub async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! { _ = t.recv() => {}, _ = i.recv() => {} }
        }
        _ => std::future::pending::<()>().await,
    }
}
