//! SIGTERM/SIGINT handling.
//!
//! Tekton deletes the pod on cancel or timeout: the kubelet sends SIGTERM, and SIGKILL 30 s
//! later. The harness in [`crate::run`] catches the signal. A step with remote work to cancel
//! awaits [`cancelled`] (async) or polls [`is_terminated`] (blocking) and gets
//! [`GRACE`] to clean up; a step that does neither is stopped at once. Either way the exit
//! code is 143.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;

/// Time a step gets, after the signal, to cancel its remote work (Tekton kills at 30 s).
pub const GRACE: Duration = Duration::from_secs(20);

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
/// [`GRACE`] to cancel remote work and return `Err(StepError::terminated())`.
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
