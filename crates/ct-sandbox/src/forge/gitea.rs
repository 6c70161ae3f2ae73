//! The Gitea API subset under `/api/v1`, with Gitea's status codes and `{"message","url"}`
//! error bodies.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use base64::Engine;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::common::{pull_idx, requested_open, resolve_rev, set_pull_open};
use super::store::{Gitea, HookRec, LabelRec, Store, TokenRec, UserRec, now};
use super::{Inner, apply_race, create_repo, git, merge_pull, new_pull};

type St = State<Arc<Inner>>;
type ApiResult = Result<Response, ApiError>;

/// A Gitea API error: `{"message": …, "url": "<ROOT_URL>api/swagger"}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    url: String,
}

impl ApiError {
    pub fn new(base: &str, status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            url: format!("{base}/api/swagger"),
        }
    }
    /// Gitea's generic 404.
    pub fn not_found(base: &str) -> Self {
        Self::new(base, StatusCode::NOT_FOUND, "The target couldn't be found.")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(json!({"message": self.message, "url": self.url})),
        )
            .into_response()
    }
}

fn err(inner: &Inner, status: StatusCode, msg: impl Into<String>) -> ApiError {
    ApiError::new(&inner.base, status, msg)
}

fn nf(inner: &Inner) -> ApiError {
    ApiError::not_found(&inner.base)
}

fn json_resp(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}

/// Decode a JSON request body; Gitea answers a binding failure with 422.
fn body<T: DeserializeOwned>(inner: &Inner, b: &Bytes) -> Result<T, ApiError> {
    let src: &[u8] = if b.is_empty() { b"{}" } else { b };
    serde_json::from_slice(src).map_err(|e| unprocessable(inner, e.to_string()))
}

/// The authenticated user, if any. A credential that does not match is a 401, as in Gitea
/// (an invalid token fails even on public endpoints).
pub(crate) fn authenticate(
    inner: &Inner,
    s: &Store,
    h: &HeaderMap,
) -> Result<Option<i64>, ApiError> {
    let Some(v) = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let (scheme, cred) = v.trim().split_once(' ').unwrap_or((v, ""));
    let cred = cred.trim();
    let bad_token = || {
        err(
            inner,
            StatusCode::UNAUTHORIZED,
            "user does not exist [uid: 0, name: ]",
        )
    };
    match scheme.to_ascii_lowercase().as_str() {
        "token" | "bearer" => s.token_user(cred).map(Some).ok_or_else(bad_token),
        "basic" => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(cred)
                .ok()
                .and_then(|r| String::from_utf8(r).ok())
                .ok_or_else(|| {
                    err(
                        inner,
                        StatusCode::UNAUTHORIZED,
                        "invalid basic authentication",
                    )
                })?;
            let (user, pass) = raw.split_once(':').unwrap_or((&raw, ""));
            if let Some(u) = s.user_by_login(user) {
                if !pass.is_empty()
                    && (u.password.as_deref() == Some(pass)
                        || s.tokens
                            .iter()
                            .any(|t| t.user_id == u.id && t.token == pass))
                {
                    return Ok(Some(u.id));
                }
                return Err(err(
                    inner,
                    StatusCode::UNAUTHORIZED,
                    format!(
                        "user's password is invalid [uid: {}, name: {}]",
                        u.id, u.login
                    ),
                ));
            }
            if let Some(uid) = s.token_user(user) {
                return Ok(Some(uid));
            }
            Err(err(
                inner,
                StatusCode::UNAUTHORIZED,
                format!("user does not exist [uid: 0, name: {user}]"),
            ))
        }
        _ => Err(bad_token()),
    }
}

fn require_user(inner: &Inner, uid: Option<i64>) -> Result<i64, ApiError> {
    uid.ok_or_else(|| err(inner, StatusCode::UNAUTHORIZED, "token is required"))
}

/// The authenticated user; 401 without credentials.
fn signed_in(inner: &Inner, s: &Store, h: &HeaderMap) -> Result<i64, ApiError> {
    require_user(inner, authenticate(inner, s, h)?)
}

/// The authenticated user, who must be a site admin (403 otherwise).
fn site_admin(inner: &Inner, s: &Store, h: &HeaderMap) -> Result<i64, ApiError> {
    let uid = signed_in(inner, s, h)?;
    if !is_admin(s, Some(uid)) {
        return Err(err(
            inner,
            StatusCode::FORBIDDEN,
            "reqSiteAdmin: user should be the site admin",
        ));
    }
    Ok(uid)
}

/// Gitea's 422 with `msg`.
fn unprocessable(inner: &Inner, msg: impl Into<String>) -> ApiError {
    err(inner, StatusCode::UNPROCESSABLE_ENTITY, msg)
}

/// The Gitea JSON view of the store.
fn view<'a>(inner: &'a Inner, s: &'a Store) -> Gitea<'a> {
    Gitea {
        store: s,
        base: &inner.base,
    }
}

/// The position of pull request `index` in repository `ri`; 404 when absent.
fn find_pull(inner: &Inner, s: &Store, ri: usize, index: &str) -> Result<usize, ApiError> {
    let number: i64 = index.parse().map_err(|_| nf(inner))?;
    pull_idx(&s.repos[ri], number).ok_or_else(|| nf(inner))
}

fn is_admin(s: &Store, uid: Option<i64>) -> bool {
    uid.and_then(|u| s.user(u)).is_some_and(|u| u.is_admin)
}

/// Whether `uid` may write to the repository (owner, collaborator or site admin).
fn can_write(s: &Store, ri: usize, uid: Option<i64>) -> bool {
    let r = &s.repos[ri];
    match uid {
        Some(u) => is_admin(s, Some(u)) || r.owner_id == u || r.collaborators.contains(&u),
        None => false,
    }
}

/// Look a repository up as `uid` sees it: private repositories are 404 to outsiders.
fn find_repo(
    inner: &Inner,
    s: &Store,
    owner: &str,
    repo: &str,
    uid: Option<i64>,
) -> Result<usize, ApiError> {
    let ri = s.repo_idx(owner, repo).ok_or_else(|| nf(inner))?;
    if s.repos[ri].private && !can_write(s, ri, uid) {
        return Err(nf(inner));
    }
    Ok(ri)
}

/// Authenticate, find the repository and check the caller may write to it.
fn writable_repo(
    inner: &Inner,
    s: &Store,
    h: &HeaderMap,
    owner: &str,
    repo: &str,
) -> Result<(usize, i64), ApiError> {
    let uid = signed_in(inner, s, h)?;
    let ri = find_repo(inner, s, owner, repo, Some(uid))?;
    if !can_write(s, ri, Some(uid)) {
        return Err(err(
            inner,
            StatusCode::FORBIDDEN,
            "user should have a permission to write to this repository",
        ));
    }
    Ok((ri, uid))
}

pub(crate) fn router(inner: Arc<Inner>) -> Router<Arc<super::GitState>> {
    Router::new()
        .route("/version", get(version))
        .route("/user", get(current_user))
        .route("/user/repos", post(create_user_repo))
        .route("/users/{username}", get(get_user))
        .route("/users/{username}/tokens", post(create_token))
        .route("/admin/users", post(admin_create_user))
        .route("/admin/users/{username}/repos", post(admin_create_repo))
        .route("/orgs", post(create_org))
        .route("/orgs/{org}/repos", post(create_org_repo))
        .route("/orgs/{org}/labels", get(org_labels))
        .route("/repos/{owner}/{repo}", get(get_repo))
        .route("/repos/{owner}/{repo}/branches", get(list_branches))
        .route(
            "/repos/{owner}/{repo}/branches/{*branch}",
            get(get_branch).delete(delete_branch),
        )
        .route("/repos/{owner}/{repo}/compare/{*basehead}", get(compare))
        .route("/repos/{owner}/{repo}/commits", get(list_commits))
        .route(
            "/repos/{owner}/{repo}/pulls",
            get(list_pulls).post(create_pull),
        )
        .route(
            "/repos/{owner}/{repo}/pulls/{index}",
            get(get_pull).patch(edit_pull),
        )
        .route(
            "/repos/{owner}/{repo}/pulls/{a}/{*rest}",
            get(pull_by_base_head).post(merge),
        )
        .route(
            "/repos/{owner}/{repo}/labels",
            get(list_labels).post(create_label),
        )
        .route("/repos/{owner}/{repo}/assignees", get(assignees))
        .route("/repos/{owner}/{repo}/collaborators", get(collaborators))
        .route(
            "/repos/{owner}/{repo}/collaborators/{user}",
            get(is_collaborator)
                .put(add_collaborator)
                .delete(remove_collaborator),
        )
        .route(
            "/repos/{owner}/{repo}/hooks",
            get(list_hooks).post(create_hook),
        )
        .route("/repos/{owner}/{repo}/hooks/{id}", delete(delete_hook))
        .route("/repos/{owner}/{repo}/issues", post(create_issue))
        .fallback(api_not_found)
        .with_state(inner)
}

async fn api_not_found(State(inner): St) -> Response {
    nf(&inner).into_response()
}

async fn version(State(inner): St, h: HeaderMap) -> ApiResult {
    authenticate(&inner, &inner.lock(), &h)?;
    Ok(json_resp(
        StatusCode::OK,
        json!({"version": inner.version()}),
    ))
}

async fn current_user(State(inner): St, h: HeaderMap) -> ApiResult {
    let s = inner.lock();
    let uid = signed_in(&inner, &s, &h)?;
    let g = view(&inner, &s);
    Ok(json_resp(StatusCode::OK, g.user_id(uid, false)))
}

async fn get_user(State(inner): St, h: HeaderMap, Path(username): Path<String>) -> ApiResult {
    let s = inner.lock();
    authenticate(&inner, &s, &h)?;
    let u = s.user_by_login(&username).ok_or_else(|| nf(&inner))?;
    let g = view(&inner, &s);
    Ok(json_resp(StatusCode::OK, g.user(u, false)))
}

#[derive(Deserialize)]
struct CreateUser {
    username: Option<String>,
    email: Option<String>,
    password: Option<String>,
    full_name: Option<String>,
}

async fn admin_create_user(State(inner): St, h: HeaderMap, b: Bytes) -> ApiResult {
    let opt: CreateUser = body(&inner, &b)?;
    let mut s = inner.lock();
    site_admin(&inner, &s, &h)?;
    let (Some(login), Some(email)) = (opt.username, opt.email) else {
        return Err(unprocessable(&inner, "[Username Email]: Required"));
    };
    if s.user_by_login(&login).is_some() {
        return Err(unprocessable(
            &inner,
            format!("user already exists [name: {login}]"),
        ));
    }
    if !valid_login(&login) {
        return Err(unprocessable(
            &inner,
            format!("[Username]: invalid name {login:?}"),
        ));
    }
    let id = s.next_id();
    s.users.push(super::store::UserRec {
        id,
        login,
        password: opt.password.filter(|p| !p.is_empty()),
        email,
        full_name: opt.full_name.unwrap_or_default(),
        is_admin: false,
        is_org: false,
        created: now(),
    });
    let g = view(&inner, &s);
    Ok(json_resp(StatusCode::CREATED, g.user_id(id, false)))
}

fn valid_login(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[derive(Deserialize)]
struct CreateToken {
    name: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
}

/// `POST /users/{username}/tokens`: Basic auth as that user (Gitea refuses token auth here).
async fn create_token(
    State(inner): St,
    h: HeaderMap,
    Path(username): Path<String>,
    b: Bytes,
) -> ApiResult {
    let opt: CreateToken = body(&inner, &b)?;
    let mut s = inner.lock();
    let basic = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("basic "));
    let uid = signed_in(&inner, &s, &h)?;
    let target = s.user_by_login(&username).ok_or_else(|| nf(&inner))?.id;
    if !basic || (uid != target && !is_admin(&s, Some(uid))) {
        return Err(err(
            &inner,
            StatusCode::FORBIDDEN,
            "auth method not allowed",
        ));
    }
    let Some(name) = opt.name.filter(|n| !n.is_empty()) else {
        return Err(unprocessable(&inner, "[Name]: Required"));
    };
    if s.tokens
        .iter()
        .any(|t| t.user_id == target && t.name == name)
    {
        return Err(err(
            &inner,
            StatusCode::BAD_REQUEST,
            "access token name has been used already",
        ));
    }
    let token = format!(
        "{:016x}{:016x}{:08x}",
        fastrand::u64(..),
        fastrand::u64(..),
        fastrand::u32(..)
    );
    let id = s.next_id();
    s.tokens.push(TokenRec {
        user_id: target,
        name: name.clone(),
        token: token.clone(),
    });
    Ok(json_resp(
        StatusCode::CREATED,
        json!({
            "id": id,
            "name": name,
            "sha1": token,
            "token_last_eight": &token[token.len() - 8..],
            "scopes": opt.scopes,
            "created_at": now(),
            "last_used_at": "0001-01-01T00:00:00Z",
        }),
    ))
}

#[derive(Deserialize)]
struct CreateOrg {
    username: Option<String>,
}

async fn create_org(State(inner): St, h: HeaderMap, b: Bytes) -> ApiResult {
    let opt: CreateOrg = body(&inner, &b)?;
    let mut s = inner.lock();
    signed_in(&inner, &s, &h)?;
    let Some(name) = opt.username.filter(|n| valid_login(n)) else {
        return Err(unprocessable(&inner, "[UserName]: Required"));
    };
    if s.user_by_login(&name).is_some() {
        return Err(unprocessable(
            &inner,
            format!("user already exists [name: {name}]"),
        ));
    }
    let id = s.next_id();
    s.users.push(super::store::UserRec {
        id,
        login: name.clone(),
        password: None,
        email: String::new(),
        full_name: String::new(),
        is_admin: false,
        is_org: true,
        created: now(),
    });
    Ok(json_resp(
        StatusCode::CREATED,
        json!({"id": id, "name": name, "username": name, "full_name": "", "email": "",
               "avatar_url": "", "description": "", "website": "", "location": "",
               "visibility": "public", "repo_admin_change_team_access": false}),
    ))
}

#[derive(Deserialize)]
struct CreateRepo {
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    private: bool,
    default_branch: Option<String>,
}

async fn create_user_repo(State(inner): St, h: HeaderMap, b: Bytes) -> ApiResult {
    let (uid, owner) = {
        let s = inner.lock();
        let uid = signed_in(&inner, &s, &h)?;
        (
            uid,
            s.user(uid).map(|u| u.login.clone()).unwrap_or_default(),
        )
    };
    repo_create(&inner, &owner, uid, &b)
}

async fn create_org_repo(
    State(inner): St,
    h: HeaderMap,
    Path(org): Path<String>,
    b: Bytes,
) -> ApiResult {
    let uid = caller_for_owner(&inner, &h, &org, signed_in, |u| u.is_org)?;
    repo_create(&inner, &org, uid, &b)
}

async fn admin_create_repo(
    State(inner): St,
    h: HeaderMap,
    Path(user): Path<String>,
    b: Bytes,
) -> ApiResult {
    let uid = caller_for_owner(&inner, &h, &user, site_admin, |_| true)?;
    repo_create(&inner, &user, uid, &b)
}

/// The caller as `who` checks it, creating a repository for `owner`: 404 unless `owner`
/// is an account that `fits`.
fn caller_for_owner(
    inner: &Inner,
    h: &HeaderMap,
    owner: &str,
    who: fn(&Inner, &Store, &HeaderMap) -> Result<i64, ApiError>,
    fits: fn(&UserRec) -> bool,
) -> Result<i64, ApiError> {
    let s = inner.lock();
    let uid = who(inner, &s, h)?;
    if !s.user_by_login(owner).is_some_and(fits) {
        return Err(nf(inner));
    }
    Ok(uid)
}

fn repo_create(inner: &Inner, owner: &str, creator: i64, b: &Bytes) -> ApiResult {
    let opt: CreateRepo = body(inner, b)?;
    let Some(name) = opt.name.filter(|n| !n.is_empty()) else {
        return Err(unprocessable(inner, "[Name]: Required"));
    };
    let branch = opt
        .default_branch
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "main".to_string());
    let repo =
        create_repo(inner, owner, &name, &opt.description, opt.private, &branch).map_err(|e| {
            let status = match e.kind() {
                std::io::ErrorKind::AlreadyExists => StatusCode::CONFLICT,
                std::io::ErrorKind::InvalidInput => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            err(inner, status, e.to_string())
        })?;
    let mut s = inner.lock();
    let ri = s.repo_by_id(repo.id).ok_or_else(|| nf(inner))?;
    if s.repos[ri].owner_id != creator && !s.repos[ri].collaborators.contains(&creator) {
        s.repos[ri].collaborators.push(creator);
    }
    let g = view(inner, &s);
    Ok(json_resp(
        StatusCode::CREATED,
        g.repo(&s.repos[ri], true, true, false),
    ))
}

async fn org_labels(State(inner): St, h: HeaderMap, Path(org): Path<String>) -> ApiResult {
    let s = inner.lock();
    authenticate(&inner, &s, &h)?;
    if !s.user_by_login(&org).is_some_and(|u| u.is_org) {
        return Err(nf(&inner));
    }
    Ok(json_resp(StatusCode::OK, json!([])))
}

async fn get_repo(
    State(inner): St,
    h: HeaderMap,
    Path((owner, repo)): Path<(String, String)>,
) -> ApiResult {
    let s = inner.lock();
    let uid = authenticate(&inner, &s, &h)?;
    let ri = find_repo(&inner, &s, &owner, &repo, uid)?;
    let r = &s.repos[ri];
    let empty = git::branches(&inner.repo_dir(&s.owner_login(r), &r.name)).is_empty();
    let g = view(&inner, &s);
    Ok(json_resp(
        StatusCode::OK,
        g.repo(r, can_write(&s, ri, uid), empty, false),
    ))
}

/// Context of a repository request: the repository's dir, full name, and caller.
struct RepoCtx {
    ri: usize,
    uid: Option<i64>,
    dir: std::path::PathBuf,
    full: String,
}

fn repo_ctx(inner: &Inner, h: &HeaderMap, owner: &str, repo: &str) -> Result<RepoCtx, ApiError> {
    let s = inner.lock();
    let uid = authenticate(inner, &s, h)?;
    let ri = find_repo(inner, &s, owner, repo, uid)?;
    let r = &s.repos[ri];
    let login = s.owner_login(r);
    Ok(RepoCtx {
        ri,
        uid,
        dir: inner.repo_dir(&login, &r.name),
        full: format!("{login}/{}", r.name),
    })
}

/// Gitea's `PayloadCommit` for a commit.
pub(crate) fn payload_commit(base: &str, full: &str, c: &git::CommitInfo) -> Value {
    json!({
        "id": c.id,
        "message": c.message,
        "url": format!("{base}/{full}/commit/{}", c.id),
        "author": {"name": c.author_name, "email": c.author_email, "username": ""},
        "committer": {"name": c.committer_name, "email": c.committer_email, "username": ""},
        "verification": null,
        "timestamp": c.committer_date,
        "added": c.added,
        "removed": c.removed,
        "modified": c.modified,
    })
}

fn branch_json(inner: &Inner, ctx: &RepoCtx, name: &str, sha: &str, can_push: bool) -> Value {
    let commit = git::commit_info(&ctx.dir, sha)
        .map(|c| payload_commit(&inner.base, &ctx.full, &c))
        .unwrap_or(Value::Null);
    json!({
        "name": name,
        "commit": commit,
        "protected": false,
        "required_approvals": 0,
        "enable_status_check": false,
        "status_check_contexts": [],
        "user_can_push": can_push,
        "user_can_merge": can_push,
        "effective_branch_protection_name": "",
    })
}

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
fn paged(inner: &Inner, path: &str, q: &Paging, items: Vec<Value>) -> Response {
    let total = items.len();
    let (skip, limit) = q.window(inner.max_items);
    let page: Vec<Value> = items.into_iter().skip(skip).take(limit).collect();
    let mut resp = json_resp(StatusCode::OK, Value::Array(page));
    let h = resp.headers_mut();
    h.insert("x-total-count", HeaderValue::from(total as u64));
    let cur = skip / limit + 1;
    let last = total.div_ceil(limit).max(1);
    let mut links = Vec::new();
    let url = format!("{}/api/v1{path}", inner.base);
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

async fn list_branches(
    State(inner): St,
    h: HeaderMap,
    Path((owner, repo)): Path<(String, String)>,
    Query(q): Query<Paging>,
) -> ApiResult {
    let ctx = repo_ctx(&inner, &h, &owner, &repo)?;
    let can_push = can_write(&inner.lock(), ctx.ri, ctx.uid);
    let items = git::branches(&ctx.dir)
        .iter()
        .map(|(n, sha)| branch_json(&inner, &ctx, n, sha, can_push))
        .collect();
    Ok(paged(
        &inner,
        &format!("/repos/{}/branches", ctx.full),
        &q,
        items,
    ))
}

async fn get_branch(
    State(inner): St,
    h: HeaderMap,
    Path((owner, repo, branch)): Path<(String, String, String)>,
) -> ApiResult {
    let ctx = repo_ctx(&inner, &h, &owner, &repo)?;
    let can_push = can_write(&inner.lock(), ctx.ri, ctx.uid);
    let branches = git::branches(&ctx.dir);
    let sha = branches.get(&branch).ok_or_else(|| {
        err(
            &inner,
            StatusCode::NOT_FOUND,
            format!("branch does not exist [name: {branch}]"),
        )
    })?;
    Ok(json_resp(
        StatusCode::OK,
        branch_json(&inner, &ctx, &branch, sha, can_push),
    ))
}

async fn delete_branch(
    State(inner): St,
    h: HeaderMap,
    Path((owner, repo, branch)): Path<(String, String, String)>,
) -> ApiResult {
    let (ri, _) = writable_repo(&inner, &inner.lock(), &h, &owner, &repo)?;
    let ctx = repo_ctx(&inner, &h, &owner, &repo)?;
    if inner.lock().repos[ri].default_branch == branch {
        return Err(err(
            &inner,
            StatusCode::FORBIDDEN,
            "can not delete default branch",
        ));
    }
    if !git::branches(&ctx.dir).contains_key(&branch) {
        return Err(nf(&inner));
    }
    git::delete_ref(&ctx.dir, &format!("refs/heads/{branch}"))
        .map_err(|e| err(&inner, StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn compare(
    State(inner): St,
    h: HeaderMap,
    Path((owner, repo, basehead)): Path<(String, String, String)>,
) -> ApiResult {
    if !inner.has_base_head() {
        return Err(nf(&inner));
    }
    let ctx = repo_ctx(&inner, &h, &owner, &repo)?;
    let (base, head) = basehead
        .split_once("...")
        .or_else(|| basehead.split_once(".."))
        .ok_or_else(|| nf(&inner))?;
    let head = head.rsplit(':').next().unwrap_or(head);
    let (Some(b), Some(hd)) = (resolve_rev(&ctx.dir, base), resolve_rev(&ctx.dir, head)) else {
        return Err(nf(&inner));
    };
    let shas = git::rev_list(&ctx.dir, &hd, &[b], 1000);
    let commits: Vec<Value> = shas
        .iter()
        .filter_map(|sha| git::commit_info(&ctx.dir, sha).ok())
        .map(|c| commit_json(&inner.base, &ctx.full, &c))
        .collect();
    Ok(json_resp(
        StatusCode::OK,
        json!({"total_commits": commits.len(), "commits": commits}),
    ))
}

/// Gitea's `Commit` (without `stats` and `files`).
fn commit_json(base: &str, full: &str, c: &git::CommitInfo) -> Value {
    json!({
        "url": format!("{base}/api/v1/repos/{full}/git/commits/{}", c.id),
        "sha": c.id,
        "created": c.committer_date,
        "html_url": format!("{base}/{full}/commit/{}", c.id),
        "commit": {
            "url": format!("{base}/api/v1/repos/{full}/git/commits/{}", c.id),
            "message": c.message,
            "author": {"name": c.author_name, "email": c.author_email, "date": c.author_date},
            "committer": {"name": c.committer_name, "email": c.committer_email, "date": c.committer_date},
        },
        "author": null,
        "committer": null,
        "parents": c.parents.iter().map(|p| json!({"sha": p, "url": format!("{base}/api/v1/repos/{full}/git/commits/{p}")})).collect::<Vec<_>>(),
    })
}

#[derive(Deserialize)]
struct CommitsQuery {
    sha: Option<String>,
    page: Option<usize>,
    limit: Option<usize>,
}

/// `GET /repos/{o}/{r}/commits`: the history of `sha` (a branch or commit; default branch
/// when absent), newest first, paged; 409 on an empty repository.
async fn list_commits(
    State(inner): St,
    h: HeaderMap,
    Path((owner, repo)): Path<(String, String)>,
    Query(q): Query<CommitsQuery>,
) -> ApiResult {
    let ctx = repo_ctx(&inner, &h, &owner, &repo)?;
    let default = inner.lock().repos[ctx.ri].default_branch.clone();
    if git::branches(&ctx.dir).is_empty() {
        return Err(err(
            &inner,
            StatusCode::CONFLICT,
            "Git Repository is empty.",
        ));
    }
    let rev = q.sha.unwrap_or(default);
    let tip = resolve_rev(&ctx.dir, &rev).ok_or_else(|| nf(&inner))?;
    let paging = Paging {
        page: q.page,
        limit: q.limit,
        ..Paging::default()
    };
    let (skip, limit) = paging.window(inner.max_items);
    let shas = git::rev_list(&ctx.dir, &tip, &[], skip + limit);
    let items: Vec<Value> = shas
        .iter()
        .skip(skip)
        .filter_map(|sha| git::commit_info(&ctx.dir, sha).ok())
        .map(|c| commit_json(&inner.base, &ctx.full, &c))
        .collect();
    Ok(json_resp(StatusCode::OK, Value::Array(items)))
}

/// Gitea's JSON of pull `pi` of repository `ri`.
fn pull_json(
    inner: &Inner,
    s: &Store,
    ri: usize,
    pi: usize,
    branches: &BTreeMap<String, String>,
) -> Value {
    view(inner, s).pull(&s.repos[ri], &s.repos[ri].pulls[pi], branches)
}

async fn list_pulls(
    State(inner): St,
    h: HeaderMap,
    Path((owner, repo)): Path<(String, String)>,
    Query(q): Query<Paging>,
) -> ApiResult {
    let ctx = repo_ctx(&inner, &h, &owner, &repo)?;
    let branches = git::branches(&ctx.dir);
    let state = q.state.clone().unwrap_or_else(|| "open".to_string());
    if !matches!(state.as_str(), "open" | "closed" | "all") {
        return Err(unprocessable(&inner, format!("invalid state {state:?}")));
    }
    let s = inner.lock();
    let r = &s.repos[ctx.ri];
    // Newest first, as Gitea's default order.
    let mut idx: Vec<usize> = (0..r.pulls.len())
        .filter(|i| {
            let p = &r.pulls[*i];
            (state == "all" || (state == "open") == p.open)
                && q.base_branch.as_ref().is_none_or(|b| &p.base == b)
        })
        .collect();
    idx.reverse();
    let items = idx
        .iter()
        .map(|i| pull_json(&inner, &s, ctx.ri, *i, &branches))
        .collect();
    Ok(paged(
        &inner,
        &format!("/repos/{}/pulls", ctx.full),
        &q,
        items,
    ))
}

async fn get_pull(
    State(inner): St,
    h: HeaderMap,
    Path((owner, repo, index)): Path<(String, String, String)>,
) -> ApiResult {
    let ctx = repo_ctx(&inner, &h, &owner, &repo)?;
    let branches = git::branches(&ctx.dir);
    let s = inner.lock();
    let i = find_pull(&inner, &s, ctx.ri, &index)?;
    let v = pull_json(&inner, &s, ctx.ri, i, &branches);
    Ok(json_resp(StatusCode::OK, v))
}

/// `GET /pulls/{base}/{head}` (1.22+): the first PR for that pair in any state, as Gitea does
/// (no state filter, no ordering).
async fn pull_by_base_head(
    State(inner): St,
    h: HeaderMap,
    Path((owner, repo, base, head)): Path<(String, String, String, String)>,
) -> ApiResult {
    if !inner.has_base_head() {
        return Err(nf(&inner));
    }
    let ctx = repo_ctx(&inner, &h, &owner, &repo)?;
    // `branch`, `owner:branch` or `owner/repo:branch`.
    let (prefix, branch) = match head.rsplit_once(':') {
        Some((p, b)) => (Some(p.to_string()), b.to_string()),
        None => (None, head.clone()),
    };
    if let Some(p) = prefix {
        let owner_ok = p.eq_ignore_ascii_case(&owner) || p.eq_ignore_ascii_case(&ctx.full);
        if !owner_ok {
            return Err(nf(&inner));
        }
    }
    let branches = git::branches(&ctx.dir);
    let s = inner.lock();
    let i = s.repos[ctx.ri]
        .pulls
        .iter()
        .position(|p| p.base == base && p.head == branch)
        .ok_or_else(|| nf(&inner))?;
    let v = pull_json(&inner, &s, ctx.ri, i, &branches);
    Ok(json_resp(StatusCode::OK, v))
}

#[derive(Deserialize)]
struct CreatePull {
    head: Option<String>,
    base: Option<String>,
    title: Option<String>,
    #[serde(default)]
    body: String,
    assignee: Option<String>,
    #[serde(default)]
    assignees: Vec<String>,
    #[serde(default)]
    labels: Vec<i64>,
}

/// Resolve assignee logins to assignable user IDs (Gitea's 422 otherwise).
fn assignee_ids(
    inner: &Inner,
    s: &Store,
    ri: usize,
    names: &[String],
) -> Result<Vec<i64>, ApiError> {
    let assignable = s.assignable(&s.repos[ri]);
    let mut ids = Vec::new();
    for n in names.iter().filter(|n| !n.is_empty()) {
        let u = s.user_by_login(n).ok_or_else(|| {
            unprocessable(inner, format!("user does not exist [uid: 0, name: {n}]"))
        })?;
        if !assignable.contains(&u.id) {
            return Err(unprocessable(
                inner,
                format!(
                    "user [{}] is not allowed to be assigned to this repository",
                    u.login
                ),
            ));
        }
        if !ids.contains(&u.id) {
            ids.push(u.id);
        }
    }
    Ok(ids)
}

async fn create_pull(
    State(inner): St,
    h: HeaderMap,
    Path((owner, repo)): Path<(String, String)>,
    b: Bytes,
) -> ApiResult {
    let opt: CreatePull = body(&inner, &b)?;
    let (ri, uid) = writable_repo(&inner, &inner.lock(), &h, &owner, &repo)?;
    let ctx = repo_ctx(&inner, &h, &owner, &repo)?;
    let (Some(head), Some(base), Some(title)) = (opt.head, opt.base, opt.title) else {
        return Err(unprocessable(&inner, "[Head Base Title]: Required"));
    };
    if title.trim().is_empty() {
        return Err(unprocessable(&inner, "[Title]: Required"));
    }
    let head = match head.rsplit_once(':') {
        Some((o, b)) if o.eq_ignore_ascii_case(&owner) || o.eq_ignore_ascii_case(&ctx.full) => {
            b.to_string()
        }
        Some(_) => return Err(nf(&inner)),
        None => head,
    };
    if head == base {
        return Err(unprocessable(
            &inner,
            "Invalid PullRequest: There are no changes between the head and the base",
        ));
    }
    let branches = git::branches(&ctx.dir);
    if !branches.contains_key(&base) || !branches.contains_key(&head) {
        return Err(nf(&inner));
    }
    let head_sha = branches[&head].clone();
    let (v, number) = {
        let mut s = inner.lock();
        let mut names = opt.assignees.clone();
        names.extend(opt.assignee.clone());
        let assignees = assignee_ids(&inner, &s, ri, &names)?;
        apply_race(&mut s, ri, &head, &base, &title, &opt.body);
        let r = &s.repos[ri];
        if let Some(pi) = Store::open_pull(r, &head, &base) {
            let p = &r.pulls[pi];
            return Err(err(
                &inner,
                StatusCode::CONFLICT,
                format!(
                    "pull request already exists for these targets [id: {}, issue_id: {}, head_repo_id: {}, base_repo_id: {}, head_branch: {}, base_branch: {}]",
                    p.id, p.number, r.id, r.id, p.head, p.base
                ),
            ));
        }
        let labels: Vec<i64> = opt
            .labels
            .iter()
            .copied()
            .filter(|id| r.labels.iter().any(|l| l.id == *id))
            .collect();
        let mut pull = new_pull(uid, &head, &base, &title, &opt.body);
        pull.assignees = assignees;
        pull.labels = labels;
        let pi = s.insert_pull(ri, pull);
        let number = s.repos[ri].pulls[pi].number;
        (pull_json(&inner, &s, ri, pi, &branches), number)
    };
    // Gitea keeps the PR head under refs/pull/N/head.
    let _ = git::update_ref(&ctx.dir, &format!("refs/pull/{number}/head"), &head_sha);
    Ok(json_resp(StatusCode::CREATED, v))
}

#[derive(Deserialize)]
struct EditPull {
    title: Option<String>,
    body: Option<String>,
    state: Option<String>,
    base: Option<String>,
    assignees: Option<Vec<String>>,
    labels: Option<Vec<i64>>,
}

async fn edit_pull(
    State(inner): St,
    h: HeaderMap,
    Path((owner, repo, index)): Path<(String, String, String)>,
    b: Bytes,
) -> ApiResult {
    let opt: EditPull = body(&inner, &b)?;
    let (ri, _) = writable_repo(&inner, &inner.lock(), &h, &owner, &repo)?;
    let ctx = repo_ctx(&inner, &h, &owner, &repo)?;
    let branches = git::branches(&ctx.dir);
    let mut s = inner.lock();
    let pi = find_pull(&inner, &s, ri, &index)?;
    let assignees = match &opt.assignees {
        Some(names) => Some(assignee_ids(&inner, &s, ri, names)?),
        None => None,
    };
    if let Some(base) = &opt.base
        && !branches.contains_key(base)
    {
        {
            return Err(err(
                &inner,
                StatusCode::NOT_FOUND,
                format!("new base branch does not exist [name: {base}]"),
            ));
        }
    }
    let reopen = opt.state.as_deref() == Some("open") && !s.repos[ri].pulls[pi].open;
    if reopen {
        let p = &s.repos[ri].pulls[pi];
        if p.merged {
            return Err(err(
                &inner,
                StatusCode::CONFLICT,
                "cannot change state of this pull request, it was already merged",
            ));
        }
        if let Some(other) = Store::open_pull(&s.repos[ri], &p.head, &p.base) {
            let o = &s.repos[ri].pulls[other];
            return Err(err(
                &inner,
                StatusCode::CONFLICT,
                format!(
                    "pull request already exists for these targets [id: {}, issue_id: {}]",
                    o.id, o.number
                ),
            ));
        }
    }
    let label_ids: Option<Vec<i64>> = opt.labels.map(|ls| {
        ls.into_iter()
            .filter(|id| s.repos[ri].labels.iter().any(|l| l.id == *id))
            .collect()
    });
    let p = &mut s.repos[ri].pulls[pi];
    if let Some(t) = opt.title.filter(|t| !t.trim().is_empty()) {
        p.title = t;
    }
    if let Some(bd) = opt.body {
        p.body = bd;
    }
    if let Some(a) = assignees {
        p.assignees = a;
    }
    if let Some(l) = label_ids {
        p.labels = l;
    }
    if let Some(b) = opt.base {
        p.base = b;
    }
    let open = requested_open(opt.state.as_deref(), "closed", "open");
    if set_pull_open(p, open) {
        p.closed_at = None;
    }
    p.updated = now();
    let v = pull_json(&inner, &s, ri, pi, &branches);
    Ok(json_resp(StatusCode::CREATED, v))
}

/// `POST /pulls/{index}/merge`.
async fn merge(
    State(inner): St,
    h: HeaderMap,
    Path((owner, repo, index, rest)): Path<(String, String, String, String)>,
) -> ApiResult {
    if rest != "merge" {
        return Err(nf(&inner));
    }
    writable_repo(&inner, &inner.lock(), &h, &owner, &repo)?;
    let number: i64 = index.parse().map_err(|_| nf(&inner))?;
    merge_pull(&inner, &owner, &repo, number).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => nf(&inner),
        _ => err(
            &inner,
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Please try again later: {e}"),
        ),
    })?;
    Ok(StatusCode::OK.into_response())
}

async fn list_labels(
    State(inner): St,
    h: HeaderMap,
    Path((owner, repo)): Path<(String, String)>,
    Query(q): Query<Paging>,
) -> ApiResult {
    let ctx = repo_ctx(&inner, &h, &owner, &repo)?;
    let s = inner.lock();
    let r = &s.repos[ctx.ri];
    let g = view(&inner, &s);
    let items = r.labels.iter().map(|l| g.label(r, l)).collect();
    Ok(paged(
        &inner,
        &format!("/repos/{}/labels", ctx.full),
        &q,
        items,
    ))
}

#[derive(Deserialize)]
struct CreateLabel {
    name: Option<String>,
    color: Option<String>,
    #[serde(default)]
    description: String,
}

async fn create_label(
    State(inner): St,
    h: HeaderMap,
    Path((owner, repo)): Path<(String, String)>,
    b: Bytes,
) -> ApiResult {
    let opt: CreateLabel = body(&inner, &b)?;
    let mut s = inner.lock();
    let (ri, _) = writable_repo(&inner, &s, &h, &owner, &repo)?;
    let (Some(name), Some(color)) = (opt.name.filter(|n| !n.is_empty()), opt.color) else {
        return Err(unprocessable(&inner, "[Name Color]: Required"));
    };
    let color = color.trim_start_matches('#').to_string();
    if color.len() != 6 || !color.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(unprocessable(&inner, "invalid color format"));
    }
    let id = s.next_id();
    let label = LabelRec {
        id,
        name,
        color,
        description: opt.description,
    };
    s.repos[ri].labels.push(label.clone());
    let g = view(&inner, &s);
    Ok(json_resp(
        StatusCode::CREATED,
        g.label(&s.repos[ri], &label),
    ))
}

async fn assignees(
    State(inner): St,
    h: HeaderMap,
    Path((owner, repo)): Path<(String, String)>,
) -> ApiResult {
    let ctx = repo_ctx(&inner, &h, &owner, &repo)?;
    let s = inner.lock();
    let g = view(&inner, &s);
    let v: Vec<Value> = s
        .assignable(&s.repos[ctx.ri])
        .iter()
        .map(|id| g.user_id(*id, false))
        .collect();
    Ok(json_resp(StatusCode::OK, Value::Array(v)))
}

async fn collaborators(
    State(inner): St,
    h: HeaderMap,
    Path((owner, repo)): Path<(String, String)>,
) -> ApiResult {
    let ctx = repo_ctx(&inner, &h, &owner, &repo)?;
    let s = inner.lock();
    let g = view(&inner, &s);
    let v: Vec<Value> = s.repos[ctx.ri]
        .collaborators
        .iter()
        .map(|id| g.user_id(*id, false))
        .collect();
    Ok(json_resp(StatusCode::OK, Value::Array(v)))
}

async fn is_collaborator(
    State(inner): St,
    h: HeaderMap,
    Path((owner, repo, user)): Path<(String, String, String)>,
) -> ApiResult {
    let ctx = repo_ctx(&inner, &h, &owner, &repo)?;
    let s = inner.lock();
    let uid = s
        .user_by_login(&user)
        .map(|u| u.id)
        .ok_or_else(|| nf(&inner))?;
    if s.repos[ctx.ri].collaborators.contains(&uid) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(nf(&inner))
    }
}

async fn add_collaborator(
    State(inner): St,
    h: HeaderMap,
    Path((owner, repo, user)): Path<(String, String, String)>,
) -> ApiResult {
    let mut s = inner.lock();
    let (ri, _) = writable_repo(&inner, &s, &h, &owner, &repo)?;
    let uid = s.user_by_login(&user).map(|u| u.id).ok_or_else(|| {
        unprocessable(
            &inner,
            format!("user does not exist [uid: 0, name: {user}]"),
        )
    })?;
    if !s.repos[ri].collaborators.contains(&uid) {
        s.repos[ri].collaborators.push(uid);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn remove_collaborator(
    State(inner): St,
    h: HeaderMap,
    Path((owner, repo, user)): Path<(String, String, String)>,
) -> ApiResult {
    let mut s = inner.lock();
    let (ri, _) = writable_repo(&inner, &s, &h, &owner, &repo)?;
    let uid = s
        .user_by_login(&user)
        .map(|u| u.id)
        .ok_or_else(|| nf(&inner))?;
    s.repos[ri].collaborators.retain(|c| *c != uid);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_hooks(
    State(inner): St,
    h: HeaderMap,
    Path((owner, repo)): Path<(String, String)>,
    Query(q): Query<Paging>,
) -> ApiResult {
    let s = inner.lock();
    let (ri, _) = writable_repo(&inner, &s, &h, &owner, &repo)?;
    let g = view(&inner, &s);
    let items = s.repos[ri].hooks.iter().map(|hk| g.hook(hk)).collect();
    Ok(paged(
        &inner,
        &format!("/repos/{owner}/{repo}/hooks"),
        &q,
        items,
    ))
}

#[derive(Deserialize)]
struct CreateHook {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    config: BTreeMap<String, String>,
    events: Option<Vec<String>>,
    #[serde(default)]
    active: bool,
}

async fn create_hook(
    State(inner): St,
    h: HeaderMap,
    Path((owner, repo)): Path<(String, String)>,
    b: Bytes,
) -> ApiResult {
    let opt: CreateHook = body(&inner, &b)?;
    let mut s = inner.lock();
    let (ri, _) = writable_repo(&inner, &s, &h, &owner, &repo)?;
    match opt.kind.as_deref() {
        Some("gitea" | "gogs") => {}
        Some(other) => {
            return Err(unprocessable(&inner, format!("Invalid hook type: {other}")));
        }
        None => {
            return Err(unprocessable(&inner, "[Type]: Required"));
        }
    }
    let Some(url) = opt
        .config
        .get("url")
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
    else {
        return Err(unprocessable(&inner, "Missing config option: url"));
    };
    let content_type = opt
        .config
        .get("content_type")
        .cloned()
        .unwrap_or_else(|| "json".to_string());
    if !matches!(content_type.as_str(), "json" | "form") {
        return Err(unprocessable(&inner, "Invalid content type"));
    }
    let id = s.next_id();
    let hook = HookRec {
        id,
        url: url.clone(),
        secret: opt.config.get("secret").cloned().unwrap_or_default(),
        content_type,
        events: opt
            .events
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| vec!["push".to_string()]),
        active: opt.active,
        created: now(),
    };
    s.repos[ri].hooks.push(hook.clone());
    let g = view(&inner, &s);
    Ok(json_resp(StatusCode::CREATED, g.hook(&hook)))
}

async fn delete_hook(
    State(inner): St,
    h: HeaderMap,
    Path((owner, repo, id)): Path<(String, String, i64)>,
) -> ApiResult {
    let mut s = inner.lock();
    let (ri, _) = writable_repo(&inner, &s, &h, &owner, &repo)?;
    let before = s.repos[ri].hooks.len();
    s.repos[ri].hooks.retain(|hk| hk.id != id);
    if s.repos[ri].hooks.len() == before {
        return Err(nf(&inner));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct CreateIssue {
    title: Option<String>,
    #[serde(default)]
    body: String,
}

async fn create_issue(
    State(inner): St,
    h: HeaderMap,
    Path((owner, repo)): Path<(String, String)>,
    b: Bytes,
) -> ApiResult {
    let opt: CreateIssue = body(&inner, &b)?;
    let mut s = inner.lock();
    let (ri, uid) = writable_repo(&inner, &s, &h, &owner, &repo)?;
    let Some(title) = opt.title.filter(|t| !t.trim().is_empty()) else {
        return Err(unprocessable(&inner, "[Title]: Required"));
    };
    let id = s.next_id();
    let r = &mut s.repos[ri];
    let number = r.next_index;
    r.next_index += 1;
    r.issues.push(number);
    let full = s.full_name(&s.repos[ri]);
    let g = view(&inner, &s);
    Ok(json_resp(
        StatusCode::CREATED,
        json!({
            "id": id,
            "url": format!("{}/api/v1/repos/{full}/issues/{number}", inner.base),
            "html_url": format!("{}/{full}/issues/{number}", inner.base),
            "number": number,
            "user": g.user_id(uid, false),
            "title": title,
            "body": opt.body,
            "labels": [],
            "state": "open",
            "pull_request": null,
            "created_at": now(),
        }),
    ))
}
