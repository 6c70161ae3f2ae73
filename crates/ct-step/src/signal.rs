//! SIGTERM/SIGINT handling.
//!
//! Tekton deletes the pod on cancel or timeout: the kubelet sends SIGTERM, and SIGKILL 30 s
//! later. (With the cluster flag `keep-pod-on-cancel: "true"`, or a step `timeout`, the step is
//! SIGKILLed at once and nothing here runs: a `finally` task has to clean up.) The harness in
//! [`crate::run`] catches the signal. A step with remote work to cancel awaits [`cancelled`]
//! (async) or polls [`is_terminated`] (blocking) and cancels within [`CANCEL_BUDGET`]: the
//! whole cancel path, every lookup, request, retry and confirmation included. The harness
//! waits at most [`GRACE`] for it (a backstop, in case the step overruns its budget); a step
//! that does not watch for the signal is stopped at once. Either way the exit code is 143, and
//! the last log line is the step's own account of what it could not cancel, if anything.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;

/// Time a step's whole cancel path may take after the signal (Tekton SIGKILLs at 30 s).
pub const CANCEL_BUDGET: Duration = Duration::from_secs(20);

/// Time the harness waits, after the signal, for a step that is cancelling (its
/// [`CANCEL_BUDGET`] plus a margin to report); then the process exits 143 regardless.
pub const GRACE: Duration = Duration::from_secs(25);

static TERMINATED: AtomicBool = AtomicBool::new(false);
static WATCHERS: AtomicUsize = AtomicUsize::new(0);
static CHANNEL: OnceLock<(watch::Sender<bool>, watch::Receiver<bool>)> = OnceLock::new();

fn channel() -> &'static (watch::Sender<bool>, watch::Receiver<bool>) {
    CHANNEL.get_or_init(|| watch::channel(false))
}

/// True once SIGTERM or SIGINT arrived.
pub fn is_terminated() -> bool {
    TERMINATED.load(Ordering::SeqCst)
}

/// Mark the process as terminated and wake every [`cancelled`] waiter.
pub fn trigger() {
    TERMINATED.store(true, Ordering::SeqCst);
    let _ = channel().0.send(true);
}

/// Whether some step code is waiting in [`cancelled`] and will clean up.
pub(crate) fn has_watchers() -> bool {
    WATCHERS.load(Ordering::SeqCst) > 0
}

struct WatchGuard;
impl Drop for WatchGuard {
    fn drop(&mut self) {
        WATCHERS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Resolves when SIGTERM/SIGINT arrives. While a step awaits this, the harness gives it
/// [`GRACE`] to cancel remote work (within [`CANCEL_BUDGET`]) and return an error of kind
/// `Terminated`, whose message is the last log line.
pub async fn cancelled() {
    WATCHERS.fetch_add(1, Ordering::SeqCst);
    let _guard = WatchGuard;
    let mut rx = channel().1.clone();
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
