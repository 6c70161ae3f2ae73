//! What the API views (Gitea, GitHub, GitLab) share: error answers, access checks, pull
//! rendering, paging and ref resolution. Each view keeps its own status codes and error bodies;
//! these helpers only decide, the views say it in their forge's words.

use std::collections::{BTreeMap, HashMap};
use std::marker::PhantomData;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, MutexGuard};

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::git;
use crate::state::ForgeState;
use crate::store::{PullRec, RepoRec, Store, now};

/// An error answer (status and JSON body), small enough to travel in a `Result`.
pub struct JsonError(pub StatusCode, pub Value);

impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(self.1)).into_response()
    }
}

/// A handler's answer in the GitHub and GitLab views.
pub type Reply = Result<Response, JsonError>;

/// A JSON answer with `status`.
pub fn json(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}

/// Decode a JSON request body; `bad` words the parse error in the forge's shape.
pub fn json_body<T: DeserializeOwned>(
    b: &Bytes,
    bad: impl FnOnce(serde_json::Error) -> JsonError,
) -> Result<T, JsonError> {
    serde_json::from_slice(b).map_err(bad)
}

/// The `Authorization` header, if it is text.
pub fn authorization(h: &HeaderMap) -> Option<&str> {
    h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
}

/// Whether `uid` may push to `r`: owner, collaborator or site admin.
pub fn is_member(s: &Store, r: &RepoRec, uid: Option<i64>) -> bool {
    uid.is_some_and(|u| {
        r.owner_id == u || r.collaborators.contains(&u) || s.user(u).is_some_and(|x| x.is_admin)
    })
}

/// Why a caller may not use a repository.
pub enum Denied {
    /// Private and the caller is not a member: the forge says "not found".
    Hidden,
    /// A write without credentials.
    Anonymous,
    /// A write by a signed-in user who may not push.
    ReadOnly,
}

/// Check that `uid` may see repository `ri` and, when `write`, push to it.
pub fn check_access(s: &Store, ri: usize, uid: Option<i64>, write: bool) -> Result<(), Denied> {
    let r = &s.repos[ri];
    let member = is_member(s, r, uid);
    if r.private && !member {
        return Err(Denied::Hidden);
    }
    if write && uid.is_none() {
        return Err(Denied::Anonymous);
    }
    if write && !member {
        return Err(Denied::ReadOnly);
    }
    Ok(())
}

/// The index of pull request `number` in `r`.
pub fn pull_idx(r: &RepoRec, number: i64) -> Option<usize> {
    r.pulls.iter().position(|p| p.number == number)
}

/// The open state a request asks for: `Some(false)` for `close`, `Some(true)` for `reopen`,
/// `None` for anything else (the forges ignore unknown values).
pub fn requested_open(state: Option<&str>, close: &str, reopen: &str) -> Option<bool> {
    match state {
        Some(s) if s == close => Some(false),
        Some(s) if s == reopen => Some(true),
        _ => None,
    }
}

/// The JSON of one pull request in a forge's view.
pub type PullView = fn(&ForgeState, &Store, &RepoRec, &PullRec, &BTreeMap<String, String>) -> Value;

/// Answer pull request `number` of repository `ri` rendered by `view`, or `missing`.
pub fn show_pull(
    forge: &ForgeState,
    ri: usize,
    number: i64,
    view: PullView,
    missing: impl FnOnce() -> JsonError,
) -> Reply {
    let branches = git::branches(&forge.repo_dir_of(ri));
    let s = forge.lock();
    let r = &s.repos[ri];
    let pi = pull_idx(r, number).ok_or_else(missing)?;
    Ok(json(
        StatusCode::OK,
        view(forge, &s, r, &r.pulls[pi], &branches),
    ))
}

/// Answer pull `pi` of repository `ri` rendered by `view` with `status`.
pub fn pull_answer(
    status: StatusCode,
    forge: &ForgeState,
    s: &Store,
    (ri, pi): (usize, usize),
    branches: &BTreeMap<String, String>,
    view: PullView,
) -> Response {
    let r = &s.repos[ri];
    json(status, view(forge, s, r, &r.pulls[pi], branches))
}

/// `(skip, take)` for 1-based `page` of `per_page` items (`default` per page, at most 100).
pub fn page_window(page: Option<usize>, per_page: Option<usize>, default: usize) -> (usize, usize) {
    let per_page = per_page.unwrap_or(default).clamp(1, 100);
    let page = page.unwrap_or(1).max(1);
    ((page - 1) * per_page, per_page)
}

/// Resolve `rev` in `dir` as a branch name first, then as any revision.
pub fn resolve_rev(dir: &FsPath, rev: &str) -> Option<String> {
    git::resolve(dir, &format!("refs/heads/{rev}")).or_else(|| git::resolve(dir, rev))
}

/// Label ids of `names` in repository `ri`; like GitHub and GitLab, a name that does not
/// exist becomes a new label of `color` (`any_case`: names match case-insensitively).
pub fn label_ids(
    s: &mut Store,
    ri: usize,
    names: Vec<String>,
    color: &str,
    any_case: bool,
) -> Vec<i64> {
    let mut ids = Vec::new();
    for name in names {
        let id = s.label_named(ri, &name, color, any_case);
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// How a view names a repository, who calls, and how it words refusals.
pub trait View {
    /// The caller the headers authenticate (`None`: anonymous); a bad credential is refused.
    fn caller(s: &Store, headers: &HeaderMap) -> Result<Option<i64>, JsonError>;

    /// The repository the route's path parameters name, if it exists.
    fn locate(s: &Store, params: &HashMap<String, String>) -> Option<usize>;

    /// The answer for a repository that does not exist or is hidden from the caller.
    fn not_found() -> JsonError;

    /// The answer for a write the caller may not make.
    fn denied(d: Denied) -> JsonError;

    /// The answer to a body that is not the JSON the route takes.
    fn bad_body(e: serde_json::Error) -> JsonError;
}

/// The repository the path names as the caller sees it; `write` requires push access.
fn repository<V: View>(
    forge: &ForgeState,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
    write: bool,
) -> Result<(usize, Option<i64>), JsonError> {
    let s = forge.lock();
    let uid = V::caller(&s, headers)?;
    let ri = V::locate(&s, params).ok_or_else(V::not_found)?;
    check_access(&s, ri, uid, write).map_err(|d| match d {
        Denied::Hidden => V::not_found(),
        d => V::denied(d),
    })?;
    Ok((ri, uid))
}

/// The repository of a read request in view `V`.
pub struct ReadRepo<V> {
    pub ri: usize,
    pub uid: Option<i64>,
    /// The bare repository.
    pub dir: PathBuf,
    view: PhantomData<V>,
}

async fn find_repo<V: View>(
    parts: &mut Parts,
    forge: &Arc<ForgeState>,
    write: bool,
) -> Result<(usize, Option<i64>, PathBuf), JsonError> {
    let params = Path::<HashMap<String, String>>::from_request_parts(parts, forge)
        .await
        .map(|Path(p)| p)
        .unwrap_or_default();
    let (ri, uid) = repository::<V>(forge, &parts.headers, &params, write)?;
    Ok((ri, uid, forge.repo_dir_of(ri)))
}

impl<V: View + Send + Sync> FromRequestParts<Arc<ForgeState>> for ReadRepo<V> {
    type Rejection = JsonError;

    async fn from_request_parts(
        parts: &mut Parts,
        forge: &Arc<ForgeState>,
    ) -> Result<Self, JsonError> {
        let (ri, uid, dir) = find_repo::<V>(parts, forge, false).await?;
        Ok(ReadRepo {
            ri,
            uid,
            dir,
            view: PhantomData,
        })
    }
}

/// A write request in view `V`: the repository (push access required), the caller and the
/// JSON body `T`.
pub struct WriteRepo<V, T> {
    pub ri: usize,
    pub uid: Option<i64>,
    pub dir: PathBuf,
    pub body: T,
    view: PhantomData<V>,
}

impl<V: View + Send + Sync, T: DeserializeOwned> FromRequest<Arc<ForgeState>> for WriteRepo<V, T> {
    type Rejection = JsonError;

    async fn from_request(req: Request, forge: &Arc<ForgeState>) -> Result<Self, JsonError> {
        let (mut parts, body) = req.into_parts();
        let (ri, uid, dir) = find_repo::<V>(&mut parts, forge, true).await?;
        let bytes = Bytes::from_request(Request::from_parts(parts, body), forge)
            .await
            .unwrap_or_default();
        let body = json_body(&bytes, V::bad_body)?;
        Ok(WriteRepo {
            ri,
            uid,
            dir,
            body,
            view: PhantomData,
        })
    }
}

/// A change to pull request `number` of a write request's repository: the branches (read
/// before the store is locked, for the answer), the locked store and the pull's place.
pub struct PullChange<'a> {
    forge: &'a ForgeState,
    branches: BTreeMap<String, String>,
    pub s: MutexGuard<'a, Store>,
    pub ri: usize,
    pub pi: usize,
}

impl<'a> PullChange<'a> {
    /// Lock pull `number` of repository `ri` (bare repository `dir`); `missing` answers an
    /// unknown number.
    pub fn lock(
        forge: &'a ForgeState,
        (ri, dir): (usize, &FsPath),
        number: i64,
        missing: fn() -> JsonError,
    ) -> Result<Self, JsonError> {
        let branches = git::branches(dir);
        let s = forge.lock();
        let pi = pull_idx(&s.repos[ri], number).ok_or_else(missing)?;
        Ok(PullChange {
            forge,
            branches,
            s,
            ri,
            pi,
        })
    }

    pub fn pull(&mut self) -> &mut PullRec {
        &mut self.s.repos[self.ri].pulls[self.pi]
    }

    /// Set the title and body given, open or close as asked, and touch `updated`.
    pub fn update(&mut self, title: Option<String>, body: Option<String>, open: Option<bool>) {
        let p = self.pull();
        if let Some(t) = title {
            p.title = t;
        }
        if let Some(b) = body {
            p.body = b;
        }
        p.set_open(open);
        p.updated = now();
    }

    /// The pull request rendered by `view`, with `status`.
    pub fn answer(&self, status: StatusCode, view: PullView) -> Reply {
        let r = &self.s.repos[self.ri];
        Ok(json(
            status,
            view(self.forge, &self.s, r, &r.pulls[self.pi], &self.branches),
        ))
    }
}
