//! Pieces the API views (Gitea, GitHub, GitLab) share: error answers, access checks, pull
//! lookup, paging and ref resolution. Each view keeps its own status codes and error bodies;
//! these helpers only decide, the views say it in their forge's words.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::store::{PullRec, RepoRec, Store, now};
use super::{Inner, git};

/// An error answer (status and JSON body), small enough to travel in a `Result`.
pub(crate) struct Reject(pub(crate) StatusCode, pub(crate) Value);

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        (self.0, axum::Json(self.1)).into_response()
    }
}

/// A handler's answer in the GitHub and GitLab views.
pub(crate) type R = Result<Response, Reject>;

/// A JSON answer with `status`.
pub(crate) fn ok(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}

/// Decode a JSON request body; `bad` words the parse error in the forge's shape.
pub(crate) fn json_body<T: DeserializeOwned>(
    b: &Bytes,
    bad: impl FnOnce(serde_json::Error) -> Reject,
) -> Result<T, Reject> {
    serde_json::from_slice(b).map_err(bad)
}

/// The bare git repository of repository `ri`.
pub(crate) fn repo_dir(inner: &Inner, ri: usize) -> PathBuf {
    let s = inner.lock();
    let r = &s.repos[ri];
    inner.repo_dir(&s.owner_login(r), &r.name)
}

/// Whether `uid` may push to `r`: owner, collaborator or site admin.
pub(crate) fn is_member(s: &Store, r: &RepoRec, uid: Option<i64>) -> bool {
    uid.is_some_and(|u| {
        r.owner_id == u || r.collaborators.contains(&u) || s.user(u).is_some_and(|x| x.is_admin)
    })
}

/// Why a caller may not use a repository.
pub(crate) enum Denied {
    /// Private and the caller is not a member: the forge says "not found".
    Hidden,
    /// A write without credentials.
    Anonymous,
    /// A write by a signed-in user who may not push.
    ReadOnly,
}

/// Check that `uid` may see repository `ri` and, when `write`, push to it.
pub(crate) fn check_access(
    s: &Store,
    ri: usize,
    uid: Option<i64>,
    write: bool,
) -> Result<(), Denied> {
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
pub(crate) fn pull_idx(r: &RepoRec, number: i64) -> Option<usize> {
    r.pulls.iter().position(|p| p.number == number)
}

/// Close (`Some(false)`) or reopen (`Some(true)`) pull request `p`; a merged one stays
/// closed. Whether it was reopened.
pub(crate) fn set_pull_open(p: &mut PullRec, open: Option<bool>) -> bool {
    match open {
        Some(false) if p.open => {
            p.open = false;
            p.closed_at = Some(now());
            false
        }
        Some(true) if !p.open && !p.merged => {
            p.open = true;
            true
        }
        _ => false,
    }
}

/// The open state a request asks for: `Some(false)` for `close`, `Some(true)` for `reopen`,
/// `None` for anything else (the forges ignore unknown values).
pub(crate) fn requested_open(state: Option<&str>, close: &str, reopen: &str) -> Option<bool> {
    match state {
        Some(s) if s == close => Some(false),
        Some(s) if s == reopen => Some(true),
        _ => None,
    }
}

/// The JSON of one pull request in a forge's view.
pub(crate) type PullView =
    fn(&Inner, &Store, &RepoRec, &PullRec, &BTreeMap<String, String>) -> Value;

/// Answer pull request `number` of repository `ri` rendered by `view`, or `missing`.
pub(crate) fn show_pull(
    inner: &Inner,
    ri: usize,
    number: i64,
    view: PullView,
    missing: impl FnOnce() -> Reject,
) -> R {
    let branches = git::branches(&repo_dir(inner, ri));
    let s = inner.lock();
    let r = &s.repos[ri];
    let pi = pull_idx(r, number).ok_or_else(missing)?;
    Ok(ok(
        StatusCode::OK,
        view(inner, &s, r, &r.pulls[pi], &branches),
    ))
}

/// `(skip, take)` for 1-based `page` of `per_page` items (`default` per page, at most 100).
pub(crate) fn page_window(
    page: Option<usize>,
    per_page: Option<usize>,
    default: usize,
) -> (usize, usize) {
    let per_page = per_page.unwrap_or(default).clamp(1, 100);
    let page = page.unwrap_or(1).max(1);
    ((page - 1) * per_page, per_page)
}

/// Resolve `rev` in `dir` as a branch name first, then as any revision.
pub(crate) fn resolve_rev(dir: &Path, rev: &str) -> Option<String> {
    git::resolve(dir, &format!("refs/heads/{rev}")).or_else(|| git::resolve(dir, rev))
}

/// Answer pull `pi` of repository `ri` rendered by `view` with `status`.
pub(crate) fn pull_answer(
    status: StatusCode,
    inner: &Inner,
    s: &Store,
    ri: usize,
    pi: usize,
    branches: &BTreeMap<String, String>,
    view: PullView,
) -> Response {
    let r = &s.repos[ri];
    ok(status, view(inner, s, r, &r.pulls[pi], branches))
}
