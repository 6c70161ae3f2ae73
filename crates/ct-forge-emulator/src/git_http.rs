//! A real git smart-HTTP server: `git http-backend` run as CGI behind axum, with Basic auth.
//!
//! Used by the sandbox forge (repositories under `/{owner}/{repo}.git`) and by tests that need
//! a git remote (clone, fetch, push over HTTP, hooks, rejected pushes). Nothing is mocked: the
//! git CLI and libgit2 talk to git's own server implementation.
//!
//! After every `git-receive-pack` POST the ref updates it made (old → new per ref) are passed to
//! the `on_push` callback, which the forge uses to send webhooks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use base64::Engine;
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Checks a Basic-auth user and password; returns the user name to hand to git.
pub type Authenticator = Arc<dyn Fn(&str, &str) -> Option<String> + Send + Sync>;

/// One ref a push changed. `old`/`new` are full SHAs, all zeros for create/delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    pub refname: String,
    pub old: String,
    pub new: String,
}

/// A completed push: the repository path under the root (e.g. `alice/jukebox.git`), the
/// authenticated user and the refs it changed.
#[derive(Debug, Clone)]
pub struct PushEvent {
    pub repo: String,
    pub user: String,
    pub updates: Vec<RefUpdate>,
}

pub type PushHook = Arc<dyn Fn(PushEvent) + Send + Sync>;

pub const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// Serves every bare repository below `root`.
#[derive(Clone)]
pub struct GitHttp {
    root: PathBuf,
    auth: Authenticator,
    on_push: Option<PushHook>,
}

impl GitHttp {
    pub fn new(root: impl Into<PathBuf>, auth: Authenticator) -> Self {
        GitHttp {
            root: root.into(),
            auth,
            on_push: None,
        }
    }

    /// Accept exactly one user/password pair.
    pub fn with_user(root: impl Into<PathBuf>, user: &str, password: &str) -> Self {
        let (u, p) = (user.to_string(), password.to_string());
        Self::new(
            root,
            Arc::new(move |user, pass| (user == u && pass == p).then(|| u.clone())),
        )
    }

    pub fn on_push(mut self, hook: PushHook) -> Self {
        self.on_push = Some(hook);
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A router serving `/{path}` → `root/{path}` (mount it with `nest` under a prefix if needed).
    pub fn router(self) -> Router {
        Router::new()
            .route("/{*path}", any(handle))
            .with_state(Arc::new(self))
    }

    /// Handle one request whose repository path (after any prefix) is `path_info`.
    pub async fn serve(&self, path_info: &str, req: Request) -> Response {
        serve_cgi(self, path_info, req).await
    }
}

async fn handle(State(g): State<Arc<GitHttp>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    serve_cgi(&g, &path, req).await
}

fn basic_user(h: &HeaderMap, auth: &Authenticator) -> Option<String> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (user, pass) = raw.split_once(':')?;
    auth(user, pass)
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"git\"")],
        "authentication required\n",
    )
        .into_response()
}

/// The repository part of a smart-HTTP path: `/a/b.git/info/refs` → `a/b.git`.
fn repo_of(path_info: &str) -> Option<String> {
    let p = path_info.trim_start_matches('/');
    for suffix in [
        "/info/refs",
        "/git-upload-pack",
        "/git-receive-pack",
        "/HEAD",
    ] {
        if let Some(r) = p.strip_suffix(suffix) {
            return Some(r.to_string());
        }
    }
    p.find("/objects/").map(|i| p[..i].to_string())
}

async fn refs(repo_dir: &Path) -> BTreeMap<String, String> {
    let out = tokio::process::Command::new("git")
        .args(["for-each-ref", "--format=%(objectname) %(refname)"])
        .current_dir(repo_dir)
        .env("GIT_DIR", repo_dir)
        .output()
        .await;
    let mut map = BTreeMap::new();
    if let Ok(out) = out {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((sha, name)) = line.split_once(' ') {
                map.insert(name.to_string(), sha.to_string());
            }
        }
    }
    map
}

fn diff_refs(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Vec<RefUpdate> {
    let mut updates = Vec::new();
    for (name, new) in after {
        let old = before
            .get(name)
            .cloned()
            .unwrap_or_else(|| ZERO_SHA.to_string());
        if &old != new {
            updates.push(RefUpdate {
                refname: name.clone(),
                old,
                new: new.clone(),
            });
        }
    }
    for (name, old) in before {
        if !after.contains_key(name) {
            updates.push(RefUpdate {
                refname: name.clone(),
                old: old.clone(),
                new: ZERO_SHA.to_string(),
            });
        }
    }
    updates
}

async fn serve_cgi(g: &GitHttp, path_info: &str, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let h = &parts.headers;
    let Some(user) = basic_user(h, &g.auth) else {
        return unauthorized();
    };
    let Some(repo) = repo_of(path_info) else {
        return (StatusCode::NOT_FOUND, "not a git path\n").into_response();
    };
    if repo.split('/').any(|c| c == ".." || c.is_empty()) {
        return (StatusCode::BAD_REQUEST, "bad repository path\n").into_response();
    }
    let repo_dir = g.root.join(&repo);
    if !repo_dir.is_dir() {
        return (StatusCode::NOT_FOUND, "repository not found\n").into_response();
    }
    let is_push =
        parts.method == axum::http::Method::POST && path_info.ends_with("/git-receive-pack");
    let before = if is_push {
        Some(refs(&repo_dir).await)
    } else {
        None
    };

    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", &g.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REMOTE_USER", &user)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("REQUEST_METHOD", parts.method.as_str())
        .env(
            "PATH_INFO",
            format!("/{}", path_info.trim_start_matches('/')),
        )
        .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        // Repositories may be owned by another uid than the server (CI containers).
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "safe.directory")
        .env("GIT_CONFIG_VALUE_0", "*")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (hn, env) in [
        ("content-type", "CONTENT_TYPE"),
        ("content-length", "CONTENT_LENGTH"),
        ("content-encoding", "HTTP_CONTENT_ENCODING"),
        ("git-protocol", "GIT_PROTOCOL"),
    ] {
        if let Some(v) = h.get(hn).and_then(|v| v.to_str().ok()) {
            cmd.env(env, v);
        }
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("git http-backend: {e}\n"),
            )
                .into_response();
        }
    };
    // Feed the (de-chunked) body concurrently with reading stdout, then close stdin.
    let Some(mut stdin) = child.stdin.take() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "no stdin\n").into_response();
    };
    tokio::spawn(async move {
        let mut s = body.into_data_stream();
        while let Some(Ok(chunk)) = s.next().await {
            if stdin.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = stdin.shutdown().await;
    });
    let Some(stdout) = child.stdout.take() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "no stdout\n").into_response();
    };
    if let Some(mut stderr) = child.stderr.take() {
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut stderr, &mut buf).await;
            if !buf.is_empty() {
                tracing::debug!("git http-backend: {}", String::from_utf8_lossy(&buf).trim());
            }
        });
    }
    let mut out = BufReader::new(stdout);
    let mut resp = Response::builder();
    let mut status = 200u16;
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).await.unwrap_or(0) == 0 {
            break;
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            let v = v.trim();
            if k.eq_ignore_ascii_case("status") {
                status = v
                    .split(' ')
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(500);
            } else {
                resp = resp.header(k, v);
            }
        }
    }
    if let (Some(before), Some(hook)) = (before, g.on_push.clone()) {
        // The push's ref updates are known only once http-backend has finished: buffer the
        // (small) report-status answer, then compare the refs.
        let mut rest = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut out, &mut rest).await;
        let _ = child.wait().await;
        let updates = diff_refs(&before, &refs(&repo_dir).await);
        if !updates.is_empty() {
            hook(PushEvent {
                repo,
                user,
                updates,
            });
        }
        return resp
            .status(status)
            .body(Body::from(rest))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    resp.status(status)
        .body(Body::from_stream(tokio_util::io::ReaderStream::new(out)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_paths() {
        assert_eq!(
            repo_of("/alice/jukebox.git/info/refs").as_deref(),
            Some("alice/jukebox.git")
        );
        assert_eq!(
            repo_of("/a/b.git/git-receive-pack").as_deref(),
            Some("a/b.git")
        );
        assert_eq!(
            repo_of("/a/b.git/objects/ab/cdef").as_deref(),
            Some("a/b.git")
        );
        assert_eq!(repo_of("/a/b.git/whatever"), None);
    }

    #[test]
    fn ref_diffs() {
        let mut a = BTreeMap::new();
        a.insert("refs/heads/main".to_string(), "1".repeat(40));
        a.insert("refs/heads/gone".to_string(), "2".repeat(40));
        let mut b = BTreeMap::new();
        b.insert("refs/heads/main".to_string(), "3".repeat(40));
        b.insert("refs/heads/new".to_string(), "4".repeat(40));
        let d = diff_refs(&a, &b);
        assert_eq!(d.len(), 3);
        assert!(
            d.iter()
                .any(|u| u.refname == "refs/heads/new" && u.old == ZERO_SHA)
        );
        assert!(
            d.iter()
                .any(|u| u.refname == "refs/heads/gone" && u.new == ZERO_SHA)
        );
    }
}
