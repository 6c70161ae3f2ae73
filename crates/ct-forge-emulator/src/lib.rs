//! Gitea-compatible forge emulator: repositories over git smart HTTP (the real
//! `git http-backend`, [`git_http`]), the Gitea API subset the PR step and a workshop user
//! need, signed push webhooks in Gitea's format, and thin GitHub and GitLab pull-request APIs
//! over the same repositories.
//!
//! Routes (one server):
//! - `/{owner}/{repo}.git/...`: git smart HTTP, Basic auth with the user's password or a token
//!   as the password (or the token as the user name, as Gitea accepts).
//! - `/api/v1/...`: the Gitea API ([`gitea`]), auth `Authorization: token|Bearer …` or Basic.
//! - `/github/...`: GitHub REST pulls/compare/labels/assignees ([`github`]); API root
//!   `{base}/github`.
//! - `/gitlab/api/v4/...`: GitLab merge requests ([`gitlab`]); API root `{base}/gitlab/api/v4`.
//! - `/_emulator/...`: the shared admin routes (faults, request log); the API routes are behind
//!   the shared [`ct_emulator::Front`] (request log, faults; the forge checks its own tokens).
//!
//! [`start`] returns a [`ForgeEmulator`] handle (the [`ct_emulator::Emulator`] contract) that
//! seeds and inspects state for tests and the demo: users, tokens, repositories (optionally
//! seeded from a directory), commits and branches, labels, collaborators, hooks, pull requests
//! (open, close, merge), webhook deliveries, the reported version, and a one-shot "another
//! client created this PR just before you" race.
//!
//! Modules: [`store`] (state and every change to it), [`repos`] (repository operations on store
//! and disk), [`git`] (plumbing on the bare repositories), [`webhook`] (push payloads and
//! signatures), [`views`] (what the three API views share), [`state`] (what the routes share),
//! `handle` (the [`ForgeEmulator`] methods).

pub mod git;
pub mod git_http;
pub mod gitea;
pub mod github;
pub mod gitlab;
mod handle;
pub mod repos;
pub mod state;
pub mod store;
pub mod views;
pub mod webhook;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
pub use ct_emulator::{Emulator, Error, Fault, FaultAction, LoggedRequest, Server, loopback};
use ct_emulator::{Front, Result, Served, Style};

use git_http::GitHttp;
use state::ForgeState;
pub use state::version_at_least;
pub use store::Delivery;
use store::Store;
pub use webhook::{signature, signature_sha1};

/// Version reported when none is configured (the swagger in shared/specs is from 1.25.3).
pub const DEFAULT_VERSION: &str = "1.25.3";
/// Admin user created at start when none is configured.
pub const DEFAULT_ADMIN: &str = "gitea_admin";

/// Flags for `ct-sandbox serve`.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Forge emulator")]
#[group(id = "forge_options")]
pub struct Options {
    /// Directory holding the bare repositories (`OWNER/NAME.git`).
    /// Default: a temporary directory, removed when the sandbox stops.
    #[arg(long = "forge-root", env = "CT_SANDBOX_FORGE_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Version reported by `GET /api/v1/version`. Below 1.22 the `pulls/{base}/{head}` and
    /// `compare` endpoints answer 404, as on old Gitea servers. Default: 1.25.3.
    #[arg(long = "forge-version", env = "CT_SANDBOX_FORGE_VERSION")]
    pub version: Option<String>,

    /// Site administrator created at start. Default: gitea_admin.
    #[arg(long = "forge-admin-user", env = "CT_SANDBOX_FORGE_ADMIN_USER")]
    pub admin_user: Option<String>,

    /// File holding the administrator's password (Basic auth for git and the API).
    /// Default: a random password nobody knows; use a token.
    #[arg(
        long = "forge-admin-password-file",
        env = "CT_SANDBOX_FORGE_ADMIN_PASSWORD_FILE",
        value_name = "FILE"
    )]
    pub admin_password_file: Option<PathBuf>,

    /// File holding an API token registered for the administrator (`Authorization: token …`,
    /// or the password for git). Default: no token.
    #[arg(
        long = "forge-admin-token-file",
        env = "CT_SANDBOX_FORGE_ADMIN_TOKEN_FILE",
        value_name = "FILE"
    )]
    pub admin_token_file: Option<PathBuf>,

    /// Largest page of list endpoints (Gitea's MAX_RESPONSE_ITEMS). Default: 50.
    #[arg(
        long = "forge-max-response-items",
        env = "CT_SANDBOX_FORGE_MAX_RESPONSE_ITEMS"
    )]
    pub max_response_items: Option<usize>,

    /// Timeout of one webhook delivery (Gitea's DELIVER_TIMEOUT). Default: 5s.
    #[arg(long = "forge-webhook-timeout", env = "CT_SANDBOX_FORGE_WEBHOOK_TIMEOUT",
          value_parser = ct_step::cli::parse_duration, value_name = "DURATION")]
    pub webhook_timeout: Option<Duration>,
}

/// Injected faults answer in Gitea's error format.
const STYLE: Style = Style {
    error: |status, message| gitea::error("", status, message).into_response(),
    forbidden: "Forbidden\n",
    open_paths: &[],
};

/// A user as the handle reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub login: String,
}

/// A repository as the handle reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    pub id: i64,
    pub full_name: String,
    pub clone_url: String,
    pub dir: PathBuf,
}

/// A pull request as the handle reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pull {
    pub number: i64,
    pub title: String,
    pub body: String,
    pub head: String,
    pub base: String,
    pub open: bool,
    pub merged: bool,
    pub labels: Vec<String>,
    pub assignees: Vec<String>,
}

/// Branch name → tip SHA.
pub type Branches = std::collections::BTreeMap<String, String>;

/// The handle on a forge emulator: its URLs, seeding and inspection.
pub struct ForgeEmulator {
    forge: Arc<ForgeState>,
    served: Served,
}

impl std::fmt::Debug for ForgeEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForgeEmulator")
            .field("url", &self.forge.base)
            .finish()
    }
}

/// Start the forge on a free loopback port.
pub async fn start(options: Options) -> Result<ForgeEmulator> {
    start_at(loopback(0), options).await
}

/// Start the forge on `addr`.
pub async fn start_at(addr: SocketAddr, options: Options) -> Result<ForgeEmulator> {
    ct_emulator::start(addr, |url| build(options, url)).await
}

/// The handle (with the administrator created) and the router, for a caller that serves it
/// itself at `url` (the URL appears in `html_url`, `clone_url` and webhook payloads).
pub fn build(options: Options, url: &str) -> Result<(ForgeEmulator, Router)> {
    let (root, tmp) = match &options.root {
        Some(r) => {
            std::fs::create_dir_all(r)
                .map_err(|e| Error::internal(format!("{}: {e}", r.display())))?;
            (r.clone(), None)
        }
        None => {
            let t = tempfile::Builder::new().prefix("ct-forge-").tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let forge = Arc::new(ForgeState {
        store: Mutex::new(Store::default()),
        base: url.trim_end_matches('/').to_string(),
        root,
        version: Mutex::new(
            options
                .version
                .clone()
                .unwrap_or_else(|| DEFAULT_VERSION.to_string()),
        ),
        max_items: options.max_response_items.unwrap_or(50).max(1),
        http: OnceLock::new(),
        webhook_timeout: options.webhook_timeout.unwrap_or(Duration::from_secs(5)),
        tmp,
    });
    let emu = ForgeEmulator {
        forge: forge.clone(),
        served: Served::new(url, Front::new(STYLE)),
    };
    let admin = options
        .admin_user
        .clone()
        .unwrap_or_else(|| DEFAULT_ADMIN.to_string());
    let password = match &options.admin_password_file {
        Some(f) => read_secret(f)?,
        None => random_hex(16),
    };
    emu.add_user(&admin, &password, true, false)?;
    if let Some(f) = &options.admin_token_file {
        let token = read_secret(f)?;
        let mut s = forge.lock();
        let uid = s.user_id(&admin)?;
        s.add_token(uid, "admin", &token)?;
    }
    let router = emu.router();
    Ok((emu, router))
}

impl Emulator for ForgeEmulator {
    fn served(&self) -> &Served {
        &self.served
    }

    fn served_mut(&mut self) -> &mut Served {
        &mut self.served
    }
}

impl ForgeEmulator {
    /// git smart HTTP, the Gitea API and the GitHub/GitLab views (the APIs behind the front).
    fn router(&self) -> Router {
        let auth = self.forge.clone();
        let push = self.forge.clone();
        let git = GitHttp::new(
            self.forge.root.clone(),
            Arc::new(move |u: &str, p: &str| auth.git_user(u, p)),
        )
        .on_push(Arc::new(move |ev| webhook::on_push(push.clone(), ev)));
        let forge = &self.forge;
        let api = Router::new()
            .nest("/api/v1", gitea::router(forge.clone()))
            .nest("/github", github::router(forge.clone()))
            .nest("/gitlab/api/v4", gitlab::router(forge.clone()));
        self.front()
            .layer(api)
            .fallback(git_fallback)
            .with_state(Arc::new(GitState {
                git,
                forge: forge.clone(),
            }))
            .merge(self.front().admin_routes(Router::new()))
    }
}

/// `n` random bytes as hex.
fn random_hex(n: usize) -> String {
    (0..n)
        .map(|_| format!("{:02x}", fastrand::u8(..)))
        .collect()
}

/// A new API token (40 hex digits, like Gitea's).
pub(crate) fn random_token() -> String {
    random_hex(20)
}

fn read_secret(path: &Path) -> Result<String> {
    let s = std::fs::read_to_string(path)
        .map_err(|e| Error::invalid(format!("{}: {e}", path.display())))?;
    let s = s.trim().to_string();
    if s.is_empty() {
        return Err(Error::invalid(format!("{} is empty", path.display())));
    }
    Ok(s)
}

pub(crate) struct GitState {
    git: GitHttp,
    forge: Arc<ForgeState>,
}

/// Everything that is not an API route: git smart HTTP for `/{owner}/{repo}[.git]/...`.
async fn git_fallback(State(st): State<Arc<GitState>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let mut segs: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(str::to_string)
        .collect();
    if segs.len() < 3 {
        return gitea::not_found_at(&st.forge.base).into_response();
    }
    // Gitea serves `/owner/repo/info/refs` as well as `/owner/repo.git/info/refs`.
    if !segs[1].ends_with(".git") {
        segs[1].push_str(".git");
    }
    let path = format!("/{}", segs.join("/"));
    st.git.serve(&path, req).await
}
