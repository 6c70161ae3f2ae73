//! Gitea-compatible forge: repositories over git smart HTTP (the real `git http-backend`), the
//! Gitea API subset the PR step and a workshop user need, signed push webhooks in Gitea's format,
//! and thin GitHub and GitLab pull-request APIs over the same repositories.
//!
//! Routes (one server):
//! - `/{owner}/{repo}.git/...`: git smart HTTP, Basic auth with the user's password or a token
//!   as the password (or the token as the user name, as Gitea accepts).
//! - `/api/v1/...`: the Gitea API ([`gitea`]), auth `Authorization: token|Bearer …` or Basic.
//! - `/github/...`: GitHub REST pulls/compare/labels/assignees ([`github`]); API root
//!   `{base}/github`.
//! - `/gitlab/api/v4/...`: GitLab merge requests ([`gitlab`]); API root `{base}/gitlab/api/v4`.
//!
//! The handle ([`Emulator`]) scripts state for tests and the demo: users, tokens, repositories
//! (optionally seeded from a directory), labels, collaborators, hooks, closing and merging PRs,
//! the reported version, and a one-shot "another client created this PR just before you" race.

mod common;
mod git;
mod gitea;
mod github;
mod gitlab;
mod store;
mod webhook;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};

use crate::git_http::GitHttp;
pub use store::Delivery;
use store::{HookRec, LabelRec, PullRec, RepoRec, Store, TokenRec, UserRec, now};
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

pub(crate) struct Inner {
    pub store: Mutex<Store>,
    pub base: String,
    pub root: PathBuf,
    pub version: Mutex<String>,
    pub max_items: usize,
    /// Webhook client, built on the first delivery (building one loads the system roots).
    http: std::sync::OnceLock<reqwest::Client>,
    webhook_timeout: Duration,
    _tmp: Option<tempfile::TempDir>,
}

impl Inner {
    pub fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn repo_dir(&self, owner: &str, name: &str) -> PathBuf {
        self.root.join(owner).join(format!("{name}.git"))
    }

    /// The HTTP client for webhook deliveries.
    pub fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(self.webhook_timeout)
                .user_agent("Go-http-client/1.1")
                .build()
                .unwrap_or_default()
        })
    }

    pub fn version(&self) -> String {
        self.version
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether the configured version has the 1.22 endpoints (`pulls/{base}/{head}`, compare).
    pub fn has_base_head(&self) -> bool {
        version_at_least(&self.version(), 1, 22)
    }

    /// The user a git Basic-auth pair (or token) belongs to.
    fn git_user(&self, user: &str, pass: &str) -> Option<String> {
        let s = self.lock();
        if let Some(u) = s.user_by_login(user) {
            if u.password.as_deref() == Some(pass) && !pass.is_empty() {
                return Some(u.login.clone());
            }
            if s.tokens
                .iter()
                .any(|t| t.user_id == u.id && t.token == pass)
            {
                return Some(u.login.clone());
            }
        }
        let uid = s.token_user(user)?;
        s.user(uid).map(|u| u.login.clone())
    }
}

/// `major.minor` of a Gitea version string is at least `maj.min` (`1.22.0+dev`, `v1.21.3`,
/// Forgejo's `7.0.0+gitea-1.21.11` all work).
pub fn version_at_least(v: &str, maj: u64, min: u64) -> bool {
    let v = v.split("+gitea-").nth(1).unwrap_or(v);
    let v = v.trim_start_matches('v');
    let mut it = v
        .split(['.', '-', '+'])
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let (a, b) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (a, b) >= (maj, min)
}

/// A user as the Rust API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub login: String,
}

/// A repository as the Rust API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    pub id: i64,
    pub full_name: String,
    pub clone_url: String,
    pub dir: PathBuf,
}

/// A pull request as the Rust API reports it.
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

/// Handle on the forge emulator (cheap to clone).
#[derive(Clone)]
pub struct Emulator {
    inner: Arc<Inner>,
}

fn not_found(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{what} not found"))
}

impl Emulator {
    /// Create the forge with its administrator. `base_url` is the URL the server is reachable at
    /// (it appears in `html_url`, `clone_url` and webhook payloads).
    pub fn new(options: Options, base_url: &str) -> io::Result<Self> {
        let (root, tmp) = match &options.root {
            Some(r) => {
                std::fs::create_dir_all(r)?;
                (r.clone(), None)
            }
            None => {
                let t = tempfile::Builder::new().prefix("ct-forge-").tempdir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let emu = Emulator {
            inner: Arc::new(Inner {
                store: Mutex::new(Store::default()),
                base: base_url.trim_end_matches('/').to_string(),
                root,
                version: Mutex::new(
                    options
                        .version
                        .clone()
                        .unwrap_or_else(|| DEFAULT_VERSION.to_string()),
                ),
                max_items: options.max_response_items.unwrap_or(50).max(1),
                http: std::sync::OnceLock::new(),
                webhook_timeout: options.webhook_timeout.unwrap_or(Duration::from_secs(5)),
                _tmp: tmp,
            }),
        };
        let admin = options
            .admin_user
            .clone()
            .unwrap_or_else(|| DEFAULT_ADMIN.to_string());
        let password = match &options.admin_password_file {
            Some(f) => read_secret(f)?,
            None => format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
        };
        emu.add_user(&admin, &password, true, false)?;
        if let Some(f) = &options.admin_token_file {
            let token = read_secret(f)?;
            emu.add_token(&admin, "admin", &token)?;
        }
        Ok(emu)
    }

    /// The axum router serving git, the Gitea API and the GitHub/GitLab views.
    pub fn router(&self) -> Router {
        let inner = self.inner.clone();
        let auth_inner = self.inner.clone();
        let push_inner = self.inner.clone();
        let git = GitHttp::new(
            self.inner.root.clone(),
            Arc::new(move |u: &str, p: &str| auth_inner.git_user(u, p)),
        )
        .on_push(Arc::new(move |ev| webhook::on_push(push_inner.clone(), ev)));
        Router::new()
            .nest("/api/v1", gitea::router(inner.clone()))
            .nest("/github", github::router(inner.clone()))
            .nest("/gitlab/api/v4", gitlab::router(inner.clone()))
            .fallback(git_fallback)
            .with_state(Arc::new(GitState { git, inner }))
    }

    /// Root URL of the forge (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }
    /// Gitea API root: `{base}/api/v1`.
    pub fn api_url(&self) -> String {
        format!("{}/api/v1", self.inner.base)
    }
    /// GitHub view API root: `{base}/github`.
    pub fn github_api_url(&self) -> String {
        format!("{}/github", self.inner.base)
    }
    /// GitLab view API root: `{base}/gitlab/api/v4`.
    pub fn gitlab_api_url(&self) -> String {
        format!("{}/gitlab/api/v4", self.inner.base)
    }
    /// Directory holding the bare repositories.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Change the version the API reports (e.g. `1.21.11` to emulate an old server).
    pub fn set_version(&self, version: &str) {
        *self.inner.version.lock().unwrap_or_else(|p| p.into_inner()) = version.to_string();
    }

    /// Create a user with a password.
    pub fn create_user(&self, login: &str, password: &str) -> io::Result<User> {
        self.add_user(login, password, false, false)
    }

    /// Create an organization (an owner that cannot log in).
    pub fn create_org(&self, name: &str) -> io::Result<User> {
        self.add_user(name, "", false, true)
    }

    fn add_user(&self, login: &str, password: &str, admin: bool, org: bool) -> io::Result<User> {
        valid_name(login)?;
        let mut s = self.inner.lock();
        if s.user_by_login(login).is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("user {login} already exists"),
            ));
        }
        let id = s.next_id();
        s.users.push(UserRec {
            id,
            login: login.to_string(),
            password: (!password.is_empty()).then(|| password.to_string()),
            email: format!("{login}@example.com"),
            full_name: String::new(),
            is_admin: admin,
            is_org: org,
            created: now(),
        });
        Ok(User {
            id,
            login: login.to_string(),
        })
    }

    /// Issue a new random API token for `login` and return it.
    pub fn create_token(&self, login: &str) -> io::Result<String> {
        let token = format!(
            "{:016x}{:016x}{:08x}",
            fastrand::u64(..),
            fastrand::u64(..),
            fastrand::u32(..)
        );
        self.add_token(login, &format!("token-{}", fastrand::u32(..)), &token)?;
        Ok(token)
    }

    fn add_token(&self, login: &str, name: &str, token: &str) -> io::Result<()> {
        let mut s = self.inner.lock();
        let uid = s
            .user_by_login(login)
            .ok_or_else(|| not_found(format!("user {login}")))?
            .id;
        s.tokens.push(TokenRec {
            user_id: uid,
            name: name.to_string(),
            token: token.to_string(),
        });
        Ok(())
    }

    /// Create a repository (a bare git repository under the root, default branch `main`).
    /// With `seed`, the files of that directory become the first commit of `main`.
    pub fn create_repo(&self, owner: &str, name: &str, seed: Option<&Path>) -> io::Result<Repo> {
        let repo = create_repo(&self.inner, owner, name, "", false, "main")?;
        if let Some(src) = seed {
            git::seed(&repo.dir, src, "main", "Initial commit")?;
        }
        Ok(repo)
    }

    /// Let `login` push to and be assigned in `owner/repo`.
    pub fn add_collaborator(&self, owner: &str, repo: &str, login: &str) -> io::Result<()> {
        let mut s = self.inner.lock();
        let uid = s
            .user_by_login(login)
            .ok_or_else(|| not_found(format!("user {login}")))?
            .id;
        let ri = s
            .repo_idx(owner, repo)
            .ok_or_else(|| not_found(format!("repository {owner}/{repo}")))?;
        if !s.repos[ri].collaborators.contains(&uid) {
            s.repos[ri].collaborators.push(uid);
        }
        Ok(())
    }

    /// Create a label; returns its ID.
    pub fn create_label(
        &self,
        owner: &str,
        repo: &str,
        name: &str,
        color: &str,
    ) -> io::Result<i64> {
        let mut s = self.inner.lock();
        let ri = s
            .repo_idx(owner, repo)
            .ok_or_else(|| not_found(format!("repository {owner}/{repo}")))?;
        let id = s.next_id();
        s.repos[ri].labels.push(LabelRec {
            id,
            name: name.to_string(),
            color: color.trim_start_matches('#').to_string(),
            description: String::new(),
        });
        Ok(id)
    }

    /// Add a push webhook (JSON, signed with `secret`); returns its ID.
    pub fn add_hook(&self, owner: &str, repo: &str, url: &str, secret: &str) -> io::Result<i64> {
        let mut s = self.inner.lock();
        let ri = s
            .repo_idx(owner, repo)
            .ok_or_else(|| not_found(format!("repository {owner}/{repo}")))?;
        let id = s.next_id();
        s.repos[ri].hooks.push(HookRec {
            id,
            url: url.to_string(),
            secret: secret.to_string(),
            content_type: "json".to_string(),
            events: vec!["push".to_string()],
            active: true,
            created: now(),
        });
        Ok(id)
    }

    /// Webhook deliveries so far, oldest first.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.inner.lock().deliveries.clone()
    }

    /// Open an issue (issues and PRs share one number sequence); returns its number.
    pub fn create_issue(&self, owner: &str, repo: &str) -> io::Result<i64> {
        let mut s = self.inner.lock();
        let ri = s
            .repo_idx(owner, repo)
            .ok_or_else(|| not_found(format!("repository {owner}/{repo}")))?;
        let r = &mut s.repos[ri];
        let number = r.next_index;
        r.next_index += 1;
        r.issues.push(number);
        Ok(number)
    }

    /// Every pull request of the repository, by number.
    pub fn pulls(&self, owner: &str, repo: &str) -> io::Result<Vec<Pull>> {
        let s = self.inner.lock();
        let ri = s
            .repo_idx(owner, repo)
            .ok_or_else(|| not_found(format!("repository {owner}/{repo}")))?;
        let r = &s.repos[ri];
        Ok(r.pulls
            .iter()
            .map(|p| Pull {
                number: p.number,
                title: p.title.clone(),
                body: p.body.clone(),
                head: p.head.clone(),
                base: p.base.clone(),
                open: p.open,
                merged: p.merged,
                labels: p
                    .labels
                    .iter()
                    .filter_map(|id| r.labels.iter().find(|l| l.id == *id))
                    .map(|l| l.name.clone())
                    .collect(),
                assignees: p
                    .assignees
                    .iter()
                    .filter_map(|id| s.user(*id))
                    .map(|u| u.login.clone())
                    .collect(),
            })
            .collect())
    }

    /// Open a PR directly (as the repository owner), e.g. to set up a scenario.
    pub fn create_pull(
        &self,
        owner: &str,
        repo: &str,
        head: &str,
        base: &str,
        title: &str,
    ) -> io::Result<i64> {
        let mut s = self.inner.lock();
        let ri = s
            .repo_idx(owner, repo)
            .ok_or_else(|| not_found(format!("repository {owner}/{repo}")))?;
        if let Some(pi) = Store::open_pull(&s.repos[ri], head, base) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "pull request #{} already open for {head} → {base}",
                    s.repos[ri].pulls[pi].number
                ),
            ));
        }
        let poster = s.repos[ri].owner_id;
        let pi = s.insert_pull(ri, new_pull(poster, head, base, title, ""));
        Ok(s.repos[ri].pulls[pi].number)
    }

    /// Close a PR without merging.
    pub fn close_pull(&self, owner: &str, repo: &str, number: i64) -> io::Result<()> {
        let mut s = self.inner.lock();
        let ri = s
            .repo_idx(owner, repo)
            .ok_or_else(|| not_found(format!("repository {owner}/{repo}")))?;
        let p = s.repos[ri]
            .pulls
            .iter_mut()
            .find(|p| p.number == number)
            .ok_or_else(|| not_found(format!("pull request #{number}")))?;
        p.open = false;
        p.closed_at = Some(now());
        p.updated = now();
        Ok(())
    }

    /// Merge a PR into its base branch with git (fast-forward or merge commit) and close it.
    pub fn merge_pull(&self, owner: &str, repo: &str, number: i64) -> io::Result<String> {
        merge_pull(&self.inner, owner, repo, number)
    }

    /// The next PR create on `owner/repo` (any of the three APIs) is preceded by another
    /// client creating the same PR, so the caller loses the race deterministically
    /// (Gitea 409, GitHub 422, GitLab 409).
    pub fn race_next_create(&self, owner: &str, repo: &str) -> io::Result<()> {
        let mut s = self.inner.lock();
        let ri = s
            .repo_idx(owner, repo)
            .ok_or_else(|| not_found(format!("repository {owner}/{repo}")))?;
        let id = s.repos[ri].id;
        s.race_next_create.push(id);
        Ok(())
    }

    /// Commit `content` at `path` on `branch` (created from `from` when it does not exist,
    /// or as a root commit when `from` is `None`), directly in the bare repository (no push,
    /// no webhook). Returns the new tip.
    #[allow(clippy::too_many_arguments)] // a flat scripting call reads best in tests
    pub fn commit(
        &self,
        owner: &str,
        repo: &str,
        branch: &str,
        from: Option<&str>,
        path: &str,
        content: &str,
        message: &str,
    ) -> io::Result<String> {
        let dir = self.repo_dir_checked(owner, repo)?;
        let refname = format!("refs/heads/{branch}");
        let parent = match git::resolve(&dir, &refname) {
            Some(sha) => Some(sha),
            None => match from {
                Some(f) => Some(
                    git::resolve(&dir, &format!("refs/heads/{f}"))
                        .ok_or_else(|| not_found(format!("branch {f}")))?,
                ),
                None => None,
            },
        };
        let sha = git::commit_file(&dir, parent.as_deref(), path, content.as_bytes(), message)?;
        git::update_ref(&dir, &refname, &sha)?;
        Ok(sha)
    }

    /// Create `branch` at the tip of `from` (no new commit).
    pub fn create_branch(
        &self,
        owner: &str,
        repo: &str,
        branch: &str,
        from: &str,
    ) -> io::Result<String> {
        let dir = self.repo_dir_checked(owner, repo)?;
        let sha = git::resolve(&dir, &format!("refs/heads/{from}"))
            .ok_or_else(|| not_found(format!("branch {from}")))?;
        git::update_ref(&dir, &format!("refs/heads/{branch}"), &sha)?;
        Ok(sha)
    }

    /// Delete a branch (no webhook).
    pub fn delete_branch(&self, owner: &str, repo: &str, branch: &str) -> io::Result<()> {
        let dir = self.repo_dir_checked(owner, repo)?;
        git::delete_ref(&dir, &format!("refs/heads/{branch}"))
    }

    fn repo_dir_checked(&self, owner: &str, repo: &str) -> io::Result<PathBuf> {
        let s = self.inner.lock();
        let ri = s
            .repo_idx(owner, repo)
            .ok_or_else(|| not_found(format!("repository {owner}/{repo}")))?;
        let r = &s.repos[ri];
        Ok(self.inner.repo_dir(&s.owner_login(r), &r.name))
    }

    /// Branch → tip SHA of a repository.
    pub fn branches(&self, owner: &str, repo: &str) -> Branches {
        git::branches(&self.inner.repo_dir(owner, repo))
    }
}

/// Branch name → tip SHA.
pub type Branches = std::collections::BTreeMap<String, String>;

pub(crate) fn new_pull(poster: i64, head: &str, base: &str, title: &str, body: &str) -> PullRec {
    let t = now();
    PullRec {
        id: 0,
        number: 0,
        poster,
        title: title.to_string(),
        body: body.to_string(),
        head: head.to_string(),
        base: base.to_string(),
        open: true,
        merged: false,
        merge_commit: None,
        merged_at: None,
        closed_at: None,
        created: t.clone(),
        updated: t,
        assignees: Vec::new(),
        labels: Vec::new(),
    }
}

/// Apply an injected race: if `repo_id` is armed, create the PR as "someone else" first.
pub(crate) fn apply_race(
    s: &mut Store,
    ri: usize,
    head: &str,
    base: &str,
    title: &str,
    body: &str,
) {
    let id = s.repos[ri].id;
    if let Some(pos) = s.race_next_create.iter().position(|r| *r == id) {
        s.race_next_create.remove(pos);
        if Store::open_pull(&s.repos[ri], head, base).is_none() {
            let poster = s.repos[ri].owner_id;
            s.insert_pull(ri, new_pull(poster, head, base, title, body));
        }
    }
}

pub(crate) fn merge_pull(
    inner: &Inner,
    owner: &str,
    repo: &str,
    number: i64,
) -> io::Result<String> {
    let (head, base, dir) = {
        let s = inner.lock();
        let ri = s
            .repo_idx(owner, repo)
            .ok_or_else(|| not_found(format!("repository {owner}/{repo}")))?;
        let r = &s.repos[ri];
        let p = r
            .pulls
            .iter()
            .find(|p| p.number == number)
            .ok_or_else(|| not_found(format!("pull request #{number}")))?;
        if !p.open {
            return Err(io::Error::other(format!(
                "pull request #{number} is closed"
            )));
        }
        (
            p.head.clone(),
            p.base.clone(),
            inner.repo_dir(&s.owner_login(r), &r.name),
        )
    };
    let head_sha = git::resolve(&dir, &format!("refs/heads/{head}"))
        .ok_or_else(|| io::Error::other(format!("head branch {head} does not exist")))?;
    let sha = git::merge(
        &dir,
        &base,
        &head_sha,
        &format!("Merge pull request '#{number}' from {head} into {base}"),
    )?;
    let mut s = inner.lock();
    if let Some(ri) = s.repo_idx(owner, repo)
        && let Some(p) = s.repos[ri].pulls.iter_mut().find(|p| p.number == number)
    {
        {
            let t = now();
            p.open = false;
            p.merged = true;
            p.merge_commit = Some(sha.clone());
            p.merged_at = Some(t.clone());
            p.closed_at = Some(t.clone());
            p.updated = t;
        }
    }
    Ok(sha)
}

pub(crate) fn create_repo(
    inner: &Inner,
    owner: &str,
    name: &str,
    description: &str,
    private: bool,
    default_branch: &str,
) -> io::Result<Repo> {
    valid_name(name)?;
    let (id, login) = {
        let mut s = inner.lock();
        let owner_rec = s
            .user_by_login(owner)
            .ok_or_else(|| not_found(format!("owner {owner}")))?
            .clone();
        if s.repo_idx(owner, name).is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "The repository with the same name already exists.".to_string(),
            ));
        }
        let id = s.next_id();
        let t = now();
        s.repos.push(RepoRec {
            id,
            owner_id: owner_rec.id,
            name: name.to_string(),
            description: description.to_string(),
            private,
            default_branch: default_branch.to_string(),
            created: t.clone(),
            updated: t,
            next_index: 1,
            labels: Vec::new(),
            collaborators: Vec::new(),
            hooks: Vec::new(),
            pulls: Vec::new(),
            issues: Vec::new(),
        });
        (id, owner_rec.login)
    };
    let dir = inner.repo_dir(&login, name);
    if let Err(e) = git::init_bare(&dir, default_branch) {
        let mut s = inner.lock();
        s.repos.retain(|r| r.id != id);
        return Err(e);
    }
    Ok(Repo {
        id,
        full_name: format!("{login}/{name}"),
        clone_url: format!("{}/{login}/{name}.git", inner.base),
        dir,
    })
}

/// User, org and repository names: Gitea's alphanumerics, `-`, `_` and `.`.
fn valid_name(name: &str) -> io::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name != "."
        && name != ".."
        && !name.ends_with(".git")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid name {name:?}: use letters, digits, '-', '_' and '.'"),
        ))
    }
}

fn read_secret(path: &Path) -> io::Result<String> {
    let s = std::fs::read_to_string(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let s = s.trim().to_string();
    if s.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is empty", path.display()),
        ));
    }
    Ok(s)
}

pub(crate) struct GitState {
    git: GitHttp,
    inner: Arc<Inner>,
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
        return gitea::ApiError::not_found(&st.inner.base).into_response();
    }
    // Gitea serves `/owner/repo/info/refs` as well as `/owner/repo.git/info/refs`.
    if !segs[1].ends_with(".git") {
        segs[1].push_str(".git");
    }
    let path = format!("/{}", segs.join("/"));
    st.git.serve(&path, req).await
}
