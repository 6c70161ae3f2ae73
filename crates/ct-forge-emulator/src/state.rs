//! What the routes share: the store, where the repositories live, the reported version and the
//! webhook client.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::store::Store;

/// The forge's shared state (behind an `Arc` in every route).
pub struct ForgeState {
    pub store: Mutex<Store>,
    /// Root URL, no trailing slash.
    pub base: String,
    /// Directory of the bare repositories (`OWNER/NAME.git`).
    pub root: PathBuf,
    pub version: Mutex<String>,
    /// Largest page of list endpoints.
    pub max_items: usize,
    /// Webhook client, built on the first delivery (building one loads the system roots).
    pub http: OnceLock<reqwest::Client>,
    pub webhook_timeout: Duration,
    /// The temporary root, removed with the forge.
    pub tmp: Option<tempfile::TempDir>,
}

impl ForgeState {
    pub fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn repo_dir(&self, owner: &str, name: &str) -> PathBuf {
        self.root.join(owner).join(format!("{name}.git"))
    }

    /// The bare git repository of repository `ri`.
    pub fn repo_dir_of(&self, ri: usize) -> PathBuf {
        self.repo_dir_of_locked(&self.lock(), ri)
    }

    /// [`ForgeState::repo_dir_of`] with the store already locked.
    pub fn repo_dir_of_locked(&self, s: &Store, ri: usize) -> PathBuf {
        let r = &s.repos[ri];
        self.repo_dir(&s.owner_login(r), &r.name)
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

    pub fn set_version(&self, version: &str) {
        *self.version.lock().unwrap_or_else(|p| p.into_inner()) = version.to_string();
    }

    /// Whether the configured version has the 1.22 endpoints (`pulls/{base}/{head}`, compare).
    pub fn has_base_head(&self) -> bool {
        version_at_least(&self.version(), 1, 22)
    }

    /// The user a password or token belongs to: `user` with its password or one of its
    /// tokens, or a token given as the user name (as Gitea accepts). `Err(Some(id))`: the user
    /// exists but the secret is wrong; `Err(None)`: no such user or token.
    pub fn check_basic(&self, user: &str, pass: &str) -> Result<i64, Option<i64>> {
        let s = self.lock();
        if let Some(u) = s.user_by_login(user) {
            let known = !pass.is_empty()
                && (u.password.as_deref() == Some(pass)
                    || s.tokens
                        .iter()
                        .any(|t| t.user_id == u.id && t.token == pass));
            return if known { Ok(u.id) } else { Err(Some(u.id)) };
        }
        s.token_user(user).ok_or(None)
    }

    /// The login a git Basic-auth pair (or token) belongs to.
    pub fn git_user(&self, user: &str, pass: &str) -> Option<String> {
        let uid = match self.check_basic(user, pass) {
            Ok(uid) => uid,
            // A known user with a wrong secret may still have given a token as the user name.
            Err(Some(_)) => self.lock().token_user(user)?,
            Err(None) => return None,
        };
        self.lock().user(uid).map(|u| u.login.clone())
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
