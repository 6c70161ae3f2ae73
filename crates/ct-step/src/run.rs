//! The `main` harness: logging, runtime, signals, one-line error, exit code.
//!
//! A step's `main.rs` is a few lines:
//! ```ignore
//! fn main() -> std::process::ExitCode {
//!     let args = <my_step::Args as clap::Parser>::parse();
//!     ct_step::run_async(&args.common.clone(), my_step::run(args))
//! }
//! ```

use std::future::Future;
use std::process::ExitCode;

use tokio::signal::unix::{SignalKind, signal};

use crate::cli::CommonArgs;
use crate::error::{ErrorKind, Result, StepError};
use crate::{log, signal as sig};

/// Run an async step on a single-threaded runtime (one keep-alive connection, small RSS).
pub fn run_async<F: Future<Output = Result<()>>>(common: &CommonArgs, step: F) -> ExitCode {
    log::init(common);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return report(Err(StepError::remote(format!(
                "cannot start the async runtime: {e}"
            ))));
        }
    };
    let result = rt.block_on(async move {
        let (mut term, mut int) = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(t), Ok(i)) => (t, i),
            _ => return Err(StepError::remote("cannot install the SIGTERM handler")),
        };
        tokio::pin!(step);
        tokio::select! {
            r = &mut step => r,
            _ = async { tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} } } => {
                tracing::warn!("received termination signal: stopping");
                sig::trigger();
                if !sig::has_watchers() {
                    return Err(StepError::terminated());
                }
                // The step is cancelling its remote work; give it the grace period, and stop at
                // once on a second signal. Its own account of the cancel is the last line.
                tokio::select! {
                    r = tokio::time::timeout(sig::GRACE, &mut step) => match r {
                        Ok(Err(e)) if e.kind() == ErrorKind::Terminated => Err(e),
                        Ok(_) => Err(StepError::terminated()),
                        Err(_) => Err(StepError::new(ErrorKind::Terminated, format!(
                            "terminated by signal: cancelling remote work did not finish within {} s",
                            sig::GRACE.as_secs()
                        ))),
                    },
                    _ = term.recv() => Err(StepError::terminated()),
                    _ = int.recv() => Err(StepError::terminated()),
                }
            }
        }
    });
    report(result)
}

/// Run a blocking step (git2). The step polls [`sig::is_terminated`] at safe points; if it has
/// not returned [`sig::GRACE`] after the signal, or a second signal arrives, the process exits 143.
pub fn run_blocking(common: &CommonArgs, step: impl FnOnce() -> Result<()>) -> ExitCode {
    log::init(common);
    match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                let mut seen = 0;
                for _ in signals.forever() {
                    seen += 1;
                    if seen == 1 {
                        tracing::warn!("received termination signal: stopping");
                        sig::trigger();
                        std::thread::spawn(|| {
                            std::thread::sleep(sig::GRACE);
                            std::process::exit(143);
                        });
                    } else {
                        std::process::exit(143);
                    }
                }
            });
        }
        Err(e) => {
            return report(Err(StepError::remote(format!(
                "cannot install the SIGTERM handler: {e}"
            ))));
        }
    }
    let result = step();
    if sig::is_terminated() {
        return report(Err(StepError::terminated()));
    }
    report(result)
}

fn report(result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}
