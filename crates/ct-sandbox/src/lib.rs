//! The local sandbox: emulators of the systems the CT steps talk to, close enough to the real
//! servers that the official Python clients work against them, plus the pieces the local demo
//! needs.
//!
//! - [`kfp`]: Kubeflow Pipelines v2beta1 API server.
//! - [`registry`]: Kubeflow Model Registry REST API (v1alpha3 and v1 prefixes).
//! - [`forge`]: Gitea-compatible forge: repositories over git smart HTTP, the API subset the
//!   PR step and a workshop user need, and signed push webhooks.
//! - [`git_http`]: `git http-backend` behind axum with Basic auth (used by the forge and tests).
//! - [`serve`]: `ct-sandbox serve`, all emulators on loopback.
//!
//! Every emulator follows one contract: `Options` (clap flags for `ct-sandbox serve`),
//! `Emulator::new(options, base_url)` (a cheap clonable handle with a test-facing API) and
//! `Emulator::router()`.

pub mod demo;
pub mod faults;
pub mod forge;
pub mod git_http;
pub mod kfp;
pub mod registry;
pub mod serve;
pub mod tekton;

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// An HTTP server on a loopback port, stopped when dropped.
#[derive(Debug)]
pub struct Server {
    pub url: String,
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Bind first (port 0 = any free port) so the URL is known before the router is built.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, String)> {
        let listener = TcpListener::bind(addr).await?;
        let url = format!("http://{}", listener.local_addr()?);
        Ok((listener, url))
    }

    /// Serve `router` on an already bound listener, in a task of the current runtime.
    pub fn serve(listener: TcpListener, router: Router) -> std::io::Result<Server> {
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Server {
            url: format!("http://{addr}"),
            addr,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// Bind and serve in one go.
    pub async fn start(addr: SocketAddr, router: Router) -> std::io::Result<Server> {
        let (listener, _) = Self::bind(addr).await?;
        Self::serve(listener, router)
    }

    /// Stop accepting, let in-flight requests finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// `127.0.0.1:port`.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}
