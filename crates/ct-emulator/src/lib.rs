//! What every ct-steps emulator shares, so that the KFP, Model Registry and forge emulators follow
//! one contract:
//!
//! - `start(options) -> handle`: each emulator crate binds a loopback port ([`Server`]) and
//!   returns a handle with the base URL, typed seeding and inspection methods, and `stop()`;
//! - one request log and fault front ([`Front`]: latency, injected faults, bearer tokens) before
//!   the API routes, and one admin route layout under [`ADMIN`] (`/_emulator/faults`,
//!   `/_emulator/requests`, plus the emulator's own);
//! - one error type ([`Error`]) from handles and stores, which each server words in its own wire
//!   format ([`WireFormat`], [`HttpError`]);
//! - the [`Emulator`] trait: the handle methods every emulator has;
//! - the one git CLI runner ([`git::Git`]) for the forge, the interpreter's stand-ins and the demo.

mod error;
mod front;
pub mod git;
mod server;
mod wire;

pub use axum::http::Method;
pub use error::{Error, ErrorKind, Result};
pub use front::{ADMIN, Fault, FaultAction, Front, LoggedRequest, Style};
pub use server::{Server, loopback};
pub use wire::{HttpError, WireFormat};

/// What every emulator handle holds: its URL, its front and the server it runs on (none when
/// the caller serves the router itself).
#[derive(Debug)]
pub struct Served {
    url: String,
    front: Front,
    server: Option<Server>,
}

impl Served {
    /// A handle's parts for an emulator reachable at `url`.
    pub fn new(url: &str, front: Front) -> Self {
        Served {
            url: url.trim_end_matches('/').to_string(),
            front,
            server: None,
        }
    }
}

/// Bind `addr`, build the emulator for the bound URL (`build` returns its handle and router),
/// and serve it; the handle owns the server.
pub async fn start<E: Emulator>(
    addr: std::net::SocketAddr,
    build: impl FnOnce(&str) -> Result<(E, axum::Router)>,
) -> Result<E> {
    let (mut emu, server) = Server::start_app(addr, build).await?;
    emu.served_mut().server = Some(server);
    Ok(emu)
}

/// The handle methods every emulator has: its URL and its [`Front`] (request log, faults,
/// tokens, latency), with shortcuts for what tests do most.
pub trait Emulator {
    /// The URL, front and server of this handle.
    fn served(&self) -> &Served;

    fn served_mut(&mut self) -> &mut Served;

    /// Root URL of the server, no trailing slash.
    fn url(&self) -> &str {
        &self.served().url
    }

    /// Request log, latency, faults and tokens.
    fn front(&self) -> &Front {
        &self.served().front
    }

    /// Stop serving; in-flight requests finish.
    fn stop(mut self) -> impl std::future::Future<Output = ()> + Send
    where
        Self: Sized + Send,
    {
        let server = self.served_mut().server.take();
        async move {
            if let Some(s) = server {
                s.stop().await;
            }
        }
    }

    /// Every API request so far, oldest first.
    fn requests(&self) -> Vec<LoggedRequest> {
        self.front().requests()
    }

    /// How many logged API requests have this method (e.g. `"PATCH"`).
    fn count(&self, method: &str) -> usize {
        self.front().count(method)
    }

    /// Queue a fault ([`Front::push`]).
    fn push_fault(&self, fault: Fault) {
        self.front().push(fault);
    }

    /// Apply `action` to the next `count` requests with this method (any when `None`).
    fn inject(&self, method: Option<Method>, action: FaultAction, count: u32) {
        self.front().inject(method, action, count);
    }

    /// Drop every queued fault.
    fn clear_faults(&self) {
        self.front().clear();
    }

    /// Require this bearer token (`None`: no auth); `forbidden` authenticates but gets 403.
    fn set_tokens(&self, required: Option<&str>, forbidden: Option<&str>) {
        self.front().set_tokens(required, forbidden);
    }
}
