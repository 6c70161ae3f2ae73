//! The Gitea API subset under `/api/v1`, with Gitea's status codes and `{"message","url"}`
//! error bodies.
//!
//! A `/repos/{owner}/{repo}/…` handler takes the repository as an extractor: [`RepoRead`] (as
//! the caller sees it: a private repository is 404 to outsiders) or [`RepoWrite`] (signed in,
//! 401, and allowed to push, 403). Handlers: [`users`] (version, users, tokens, orgs),
//! [`repos`] (repositories, branches, commits, labels, collaborators, hooks, issues), [`pulls`];
//! [`render`] renders records as Gitea's JSON.

mod pulls;
pub mod render;
mod repos;
mod users;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use base64::Engine;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::state::ForgeState;
use crate::store::Store;
use crate::views::{JsonError, authorization};
use render::Gitea;

/// A Gitea API error: `{"message": …, "url": "<ROOT_URL>api/swagger"}`.
pub fn error(base: &str, status: StatusCode, message: impl Into<String>) -> JsonError {
    JsonError(
        status,
        json!({"message": message.into(), "url": format!("{base}/api/swagger")}),
    )
}

/// Gitea's generic 404.
pub fn not_found_at(base: &str) -> JsonError {
    error(base, StatusCode::NOT_FOUND, "The target couldn't be found.")
}

/// A handler's answer.
type Reply = Result<Response, JsonError>;

/// The routes' state.
type Shared = axum::extract::State<Arc<ForgeState>>;

fn err(forge: &ForgeState, status: StatusCode, msg: impl Into<String>) -> JsonError {
    error(&forge.base, status, msg)
}

fn not_found(forge: &ForgeState) -> JsonError {
    not_found_at(&forge.base)
}

/// Gitea's 422 with `msg`.
fn unprocessable(forge: &ForgeState, msg: impl Into<String>) -> JsonError {
    err(forge, StatusCode::UNPROCESSABLE_ENTITY, msg)
}

fn json_resp(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}

/// Decode a JSON request body; Gitea answers a binding failure with 422.
fn body<T: DeserializeOwned>(forge: &ForgeState, b: &Bytes) -> Result<T, JsonError> {
    let src: &[u8] = if b.is_empty() { b"{}" } else { b };
    serde_json::from_slice(src).map_err(|e| unprocessable(forge, e.to_string()))
}

/// The Gitea JSON view of the store.
fn view<'a>(forge: &'a ForgeState, s: &'a Store) -> Gitea<'a> {
    Gitea {
        store: s,
        base: &forge.base,
    }
}

/// The authenticated user, if any. A credential that does not match is a 401, as in Gitea
/// (an invalid token fails even on public endpoints).
fn authenticate(forge: &ForgeState, h: &HeaderMap) -> Result<Option<i64>, JsonError> {
    let Some(v) = authorization(h) else {
        return Ok(None);
    };
    let (scheme, cred) = v.trim().split_once(' ').unwrap_or((v, ""));
    let cred = cred.trim();
    let bad_token = || {
        err(
            forge,
            StatusCode::UNAUTHORIZED,
            "user does not exist [uid: 0, name: ]",
        )
    };
    match scheme.to_ascii_lowercase().as_str() {
        "token" | "bearer" => forge
            .lock()
            .token_user(cred)
            .map(Some)
            .ok_or_else(bad_token),
        "basic" => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(cred)
                .ok()
                .and_then(|r| String::from_utf8(r).ok())
                .ok_or_else(|| {
                    err(
                        forge,
                        StatusCode::UNAUTHORIZED,
                        "invalid basic authentication",
                    )
                })?;
            let (user, pass) = raw.split_once(':').unwrap_or((&raw, ""));
            match forge.check_basic(user, pass) {
                Ok(uid) => Ok(Some(uid)),
                Err(Some(uid)) => {
                    let login = forge.lock().user(uid).map(|u| u.login.clone());
                    Err(err(
                        forge,
                        StatusCode::UNAUTHORIZED,
                        format!(
                            "user's password is invalid [uid: {uid}, name: {}]",
                            login.unwrap_or_default()
                        ),
                    ))
                }
                Err(None) => Err(err(
                    forge,
                    StatusCode::UNAUTHORIZED,
                    format!("user does not exist [uid: 0, name: {user}]"),
                )),
            }
        }
        _ => Err(bad_token()),
    }
}

/// The caller of a request: the authenticated user, if any (401 for a credential that does not
/// match).
pub struct Caller(pub Option<i64>);

impl FromRequestParts<Arc<ForgeState>> for Caller {
    type Rejection = JsonError;

    async fn from_request_parts(
        parts: &mut Parts,
        forge: &Arc<ForgeState>,
    ) -> Result<Self, JsonError> {
        authenticate(forge, &parts.headers).map(Caller)
    }
}

impl Caller {
    /// The signed-in user; 401 without credentials.
    fn signed_in(&self, forge: &ForgeState) -> Result<i64, JsonError> {
        self.0
            .ok_or_else(|| err(forge, StatusCode::UNAUTHORIZED, "token is required"))
    }

    /// The signed-in user, who must be a site admin (403 otherwise).
    fn site_admin(&self, forge: &ForgeState) -> Result<i64, JsonError> {
        let uid = self.signed_in(forge)?;
        if !is_admin(&forge.lock(), Some(uid)) {
            return Err(err(
                forge,
                StatusCode::FORBIDDEN,
                "reqSiteAdmin: user should be the site admin",
            ));
        }
        Ok(uid)
    }
}

fn is_admin(s: &Store, uid: Option<i64>) -> bool {
    uid.and_then(|u| s.user(u)).is_some_and(|u| u.is_admin)
}

/// Whether `uid` may write to the repository (owner, collaborator or site admin).
fn can_write(s: &Store, ri: usize, uid: Option<i64>) -> bool {
    crate::views::is_member(s, &s.repos[ri], uid)
}

/// `{owner}` and `{repo}` of a repository route.
#[derive(Deserialize)]
struct RepoPath {
    owner: String,
    repo: String,
}

/// The repository of a `/repos/{owner}/{repo}/…` request, as its caller sees it: private
/// repositories are 404 to outsiders.
pub struct RepoRead {
    ri: usize,
    uid: Option<i64>,
    /// The bare repository.
    dir: PathBuf,
    /// `owner/name`.
    full: String,
    /// `{owner}` and `{repo}` as the request spelled them.
    owner: String,
    name: String,
}

impl FromRequestParts<Arc<ForgeState>> for RepoRead {
    type Rejection = JsonError;

    async fn from_request_parts(
        parts: &mut Parts,
        forge: &Arc<ForgeState>,
    ) -> Result<Self, JsonError> {
        let Path(p) = Path::<RepoPath>::from_request_parts(parts, forge)
            .await
            .map_err(|_| not_found(forge))?;
        let uid = authenticate(forge, &parts.headers)?;
        let s = forge.lock();
        let ri = s
            .repo_idx(&p.owner, &p.repo)
            .ok_or_else(|| not_found(forge))?;
        if s.repos[ri].private && !can_write(&s, ri, uid) {
            return Err(not_found(forge));
        }
        let r = &s.repos[ri];
        let login = s.owner_login(r);
        Ok(RepoRead {
            ri,
            uid,
            dir: forge.repo_dir(&login, &r.name),
            full: format!("{login}/{}", r.name),
            owner: p.owner,
            name: p.repo,
        })
    }
}

/// The repository of a write request: the caller is signed in (401) and may push (403).
pub struct RepoWrite {
    repo: RepoRead,
    /// The signed-in caller.
    uid: i64,
}

impl std::ops::Deref for RepoWrite {
    type Target = RepoRead;

    fn deref(&self) -> &RepoRead {
        &self.repo
    }
}

impl FromRequestParts<Arc<ForgeState>> for RepoWrite {
    type Rejection = JsonError;

    async fn from_request_parts(
        parts: &mut Parts,
        forge: &Arc<ForgeState>,
    ) -> Result<Self, JsonError> {
        let caller = Caller::from_request_parts(parts, forge).await?;
        let uid = caller.signed_in(forge)?;
        let repo = RepoRead::from_request_parts(parts, forge).await?;
        if !can_write(&forge.lock(), repo.ri, Some(uid)) {
            return Err(err(
                forge,
                StatusCode::FORBIDDEN,
                "user should have a permission to write to this repository",
            ));
        }
        Ok(RepoWrite { repo, uid })
    }
}

pub(crate) fn router<S>(forge: Arc<ForgeState>) -> Router<S> {
    Router::new()
        .route("/version", get(users::version))
        .route("/user", get(users::current_user))
        .route("/user/repos", post(repos::create_user_repo))
        .route("/users/{username}", get(users::get_user))
        .route("/users/{username}/tokens", post(users::create_token))
        .route("/admin/users", post(users::admin_create_user))
        .route(
            "/admin/users/{username}/repos",
            post(repos::admin_create_repo),
        )
        .route("/orgs", post(users::create_org))
        .route("/orgs/{org}/repos", post(repos::create_org_repo))
        .route("/orgs/{org}/labels", get(users::org_labels))
        .route("/repos/{owner}/{repo}", get(repos::get_repo))
        .route("/repos/{owner}/{repo}/branches", get(repos::list_branches))
        .route(
            "/repos/{owner}/{repo}/branches/{*branch}",
            get(repos::get_branch).delete(repos::delete_branch),
        )
        .route(
            "/repos/{owner}/{repo}/compare/{*basehead}",
            get(repos::compare),
        )
        .route("/repos/{owner}/{repo}/commits", get(repos::list_commits))
        .route(
            "/repos/{owner}/{repo}/pulls",
            get(pulls::list_pulls).post(pulls::create_pull),
        )
        .route(
            "/repos/{owner}/{repo}/pulls/{index}",
            get(pulls::get_pull).patch(pulls::edit_pull),
        )
        .route(
            "/repos/{owner}/{repo}/pulls/{a}/{*rest}",
            get(pulls::pull_by_base_head).post(pulls::merge),
        )
        .route(
            "/repos/{owner}/{repo}/labels",
            get(repos::list_labels).post(repos::create_label),
        )
        .route("/repos/{owner}/{repo}/assignees", get(repos::assignees))
        .route(
            "/repos/{owner}/{repo}/collaborators",
            get(repos::collaborators),
        )
        .route(
            "/repos/{owner}/{repo}/collaborators/{user}",
            get(repos::is_collaborator)
                .put(repos::add_collaborator)
                .delete(repos::remove_collaborator),
        )
        .route(
            "/repos/{owner}/{repo}/hooks",
            get(repos::list_hooks).post(repos::create_hook),
        )
        .route(
            "/repos/{owner}/{repo}/hooks/{id}",
            delete(repos::delete_hook),
        )
        .route("/repos/{owner}/{repo}/issues", post(repos::create_issue))
        .fallback(|axum::extract::State(f): Shared| async move { not_found(&f).into_response() })
        .with_state(forge)
}

/// `page`, `limit` and the list filters Gitea's list endpoints take.
#[derive(Deserialize, Default)]
struct Paging {
    page: Option<usize>,
    limit: Option<usize>,
    state: Option<String>,
    base_branch: Option<String>,
}

impl Paging {
    fn window(&self, max: usize) -> (usize, usize) {
        let limit = self
            .limit
            .filter(|l| *l > 0)
            .unwrap_or(30.min(max))
            .min(max);
        let page = self.page.filter(|p| *p > 0).unwrap_or(1);
        ((page - 1) * limit, limit)
    }
}

/// A page of `items` with Gitea's `X-Total-Count` and `Link` headers.
fn paged(forge: &ForgeState, path: &str, q: &Paging, items: Vec<Value>) -> Response {
    let total = items.len();
    let (skip, limit) = q.window(forge.max_items);
    let page: Vec<Value> = items.into_iter().skip(skip).take(limit).collect();
    let mut resp = json_resp(StatusCode::OK, Value::Array(page));
    let h = resp.headers_mut();
    h.insert("x-total-count", HeaderValue::from(total as u64));
    let cur = skip / limit + 1;
    let last = total.div_ceil(limit).max(1);
    let mut links = Vec::new();
    let url = format!("{}/api/v1{path}", forge.base);
    if cur < last {
        links.push(format!(
            "<{url}?page={}&limit={limit}>; rel=\"next\"",
            cur + 1
        ));
        links.push(format!("<{url}?page={last}&limit={limit}>; rel=\"last\""));
    }
    if cur > 1 {
        links.push(format!("<{url}?page=1&limit={limit}>; rel=\"first\""));
        links.push(format!(
            "<{url}?page={}&limit={limit}>; rel=\"prev\"",
            cur - 1
        ));
    }
    if !links.is_empty()
        && let Ok(v) = HeaderValue::from_str(&links.join(","))
    {
        h.insert(header::LINK, v);
    }
    h.insert(
        "access-control-expose-headers",
        HeaderValue::from_static("X-Total-Count, Link"),
    );
    resp
}
