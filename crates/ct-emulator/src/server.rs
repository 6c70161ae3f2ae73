//! An HTTP server on a loopback port, stopped when dropped.

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running axum server in a task of the current tokio runtime.
#[derive(Debug)]
pub struct Server {
    /// `http://ADDR:PORT`, no trailing slash.
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

    /// Bind `addr`, build the app for the bound URL (`build` returns the emulator's handle and
    /// router), and serve it.
    pub async fn start_app<T>(
        addr: SocketAddr,
        build: impl FnOnce(&str) -> crate::Result<(T, Router)>,
    ) -> crate::Result<(T, Server)> {
        let (listener, url) = Self::bind(addr)
            .await
            .map_err(|e| crate::Error::internal(format!("cannot listen on {addr}: {e}")))?;
        let (app, router) = build(&url)?;
        let server = Self::serve(listener, router)
            .map_err(|e| crate::Error::internal(format!("cannot serve on {url}: {e}")))?;
        Ok((app, server))
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
