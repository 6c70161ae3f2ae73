//! Pull requests: list, get, get by base and head (1.22+), create, edit, merge.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use ct_emulator::ErrorKind;
use serde::Deserialize;
use serde_json::Value;

use super::{
    Paging, Reply, RepoRead, RepoWrite, Shared, body, err, json_resp, not_found, paged,
    unprocessable, view,
};
use crate::git;
use crate::repos::merge_pull;
use crate::state::ForgeState;
use crate::store::{PullRec, Store, now};
use crate::views::{JsonError, pull_idx, requested_open};

/// Gitea's JSON of pull `pi` of repository `ri`.
fn pull_json(
    forge: &ForgeState,
    s: &Store,
    ri: usize,
    pi: usize,
    branches: &BTreeMap<String, String>,
) -> Value {
    view(forge, s).pull(&s.repos[ri], &s.repos[ri].pulls[pi], branches)
}

/// The position of pull request `index` in repository `ri`; 404 when absent.
fn find_pull(forge: &ForgeState, s: &Store, ri: usize, index: &str) -> Result<usize, JsonError> {
    let number: i64 = index.parse().map_err(|_| not_found(forge))?;
    pull_idx(&s.repos[ri], number).ok_or_else(|| not_found(forge))
}

pub(super) async fn list_pulls(
    State(forge): Shared,
    repo: RepoRead,
    Query(q): Query<Paging>,
) -> Reply {
    let branches = git::branches(&repo.dir);
    let state = q.state.clone().unwrap_or_else(|| "open".to_string());
    if !matches!(state.as_str(), "open" | "closed" | "all") {
        return Err(unprocessable(&forge, format!("invalid state {state:?}")));
    }
    let items = {
        let s = forge.lock();
        let r = &s.repos[repo.ri];
        // Newest first, as Gitea's default order.
        (0..r.pulls.len())
            .rev()
            .filter(|i| {
                let p = &r.pulls[*i];
                (state == "all" || (state == "open") == p.open)
                    && q.base_branch.as_ref().is_none_or(|b| &p.base == b)
            })
            .map(|i| pull_json(&forge, &s, repo.ri, i, &branches))
            .collect()
    };
    Ok(paged(
        &forge,
        &format!("/repos/{}/pulls", repo.full),
        &q,
        items,
    ))
}

pub(super) async fn get_pull(
    State(forge): Shared,
    repo: RepoRead,
    Path((_, _, index)): Path<(String, String, String)>,
) -> Reply {
    let branches = git::branches(&repo.dir);
    let s = forge.lock();
    let i = find_pull(&forge, &s, repo.ri, &index)?;
    Ok(json_resp(
        StatusCode::OK,
        pull_json(&forge, &s, repo.ri, i, &branches),
    ))
}

/// `branch`, `owner:branch` or `owner/repo:branch` of this repository: the branch (404 for
/// another owner's).
fn own_branch(
    forge: &ForgeState,
    (owner, full): (&str, &str),
    head: &str,
) -> Result<String, JsonError> {
    match head.rsplit_once(':') {
        Some((o, b)) if o.eq_ignore_ascii_case(owner) || o.eq_ignore_ascii_case(full) => {
            Ok(b.to_string())
        }
        Some(_) => Err(not_found(forge)),
        None => Ok(head.to_string()),
    }
}

/// `GET /pulls/{base}/{head}` (1.22+): the first PR for that pair in any state, as Gitea does
/// (no state filter, no ordering).
pub(super) async fn pull_by_base_head(
    State(forge): Shared,
    repo: RepoRead,
    Path((_, _, base, head)): Path<(String, String, String, String)>,
) -> Reply {
    if !forge.has_base_head() {
        return Err(not_found(&forge));
    }
    let branch = own_branch(&forge, (&repo.owner, &repo.full), &head)?;
    let branches = git::branches(&repo.dir);
    let s = forge.lock();
    let i = s.repos[repo.ri]
        .pulls
        .iter()
        .position(|p| p.base == base && p.head == branch)
        .ok_or_else(|| not_found(&forge))?;
    Ok(json_resp(
        StatusCode::OK,
        pull_json(&forge, &s, repo.ri, i, &branches),
    ))
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
    forge: &ForgeState,
    s: &Store,
    ri: usize,
    names: &[String],
) -> Result<Vec<i64>, JsonError> {
    let assignable = s.assignable(&s.repos[ri]);
    let mut ids = Vec::new();
    for n in names.iter().filter(|n| !n.is_empty()) {
        let u = s.user_by_login(n).ok_or_else(|| {
            unprocessable(forge, format!("user does not exist [uid: 0, name: {n}]"))
        })?;
        if !assignable.contains(&u.id) {
            return Err(unprocessable(
                forge,
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

/// The ids among `ids` that are labels of repository `ri`.
fn known_labels(s: &Store, ri: usize, ids: Vec<i64>) -> Vec<i64> {
    ids.into_iter()
        .filter(|id| s.repos[ri].labels.iter().any(|l| l.id == *id))
        .collect()
}

pub(super) async fn create_pull(State(forge): Shared, repo: RepoWrite, b: Bytes) -> Reply {
    let opt: CreatePull = body(&forge, &b)?;
    let (Some(head), Some(base), Some(title)) = (opt.head, opt.base, opt.title) else {
        return Err(unprocessable(&forge, "[Head Base Title]: Required"));
    };
    if title.trim().is_empty() {
        return Err(unprocessable(&forge, "[Title]: Required"));
    }
    let head = own_branch(&forge, (&repo.owner, &repo.full), &head)?;
    if head == base {
        return Err(unprocessable(
            &forge,
            "Invalid PullRequest: There are no changes between the head and the base",
        ));
    }
    let branches = git::branches(&repo.dir);
    let (Some(head_sha), true) = (branches.get(&head).cloned(), branches.contains_key(&base))
    else {
        return Err(not_found(&forge));
    };
    let (v, number) = {
        let mut s = forge.lock();
        let mut names = opt.assignees.clone();
        names.extend(opt.assignee.clone());
        let assignees = assignee_ids(&forge, &s, repo.ri, &names)?;
        s.take_race(repo.ri, &head, &base, &title, &opt.body);
        let mut pull = PullRec::new(repo.uid, &head, &base, &title, &opt.body);
        pull.assignees = assignees;
        pull.labels = known_labels(&s, repo.ri, opt.labels);
        let pi = match s.create_pull(repo.ri, pull) {
            Ok(pi) => pi,
            Err(pi) => {
                let (r, p) = (&s.repos[repo.ri], &s.repos[repo.ri].pulls[pi]);
                return Err(err(
                    &forge,
                    StatusCode::CONFLICT,
                    format!(
                        "pull request already exists for these targets [id: {}, issue_id: {}, head_repo_id: {}, base_repo_id: {}, head_branch: {}, base_branch: {}]",
                        p.id, p.number, r.id, r.id, p.head, p.base
                    ),
                ));
            }
        };
        let number = s.repos[repo.ri].pulls[pi].number;
        (pull_json(&forge, &s, repo.ri, pi, &branches), number)
    };
    // Gitea keeps the PR head under refs/pull/N/head.
    let _ = git::update_ref(&repo.dir, &format!("refs/pull/{number}/head"), &head_sha);
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

/// Why pull `pi` cannot be reopened: merged, or another open PR has its head and base.
fn refuse_reopen(forge: &ForgeState, s: &Store, ri: usize, pi: usize) -> Result<(), JsonError> {
    let p = &s.repos[ri].pulls[pi];
    if p.merged {
        return Err(err(
            forge,
            StatusCode::CONFLICT,
            "cannot change state of this pull request, it was already merged",
        ));
    }
    if let Some(other) = Store::open_pull(&s.repos[ri], &p.head, &p.base) {
        let o = &s.repos[ri].pulls[other];
        return Err(err(
            forge,
            StatusCode::CONFLICT,
            format!(
                "pull request already exists for these targets [id: {}, issue_id: {}]",
                o.id, o.number
            ),
        ));
    }
    Ok(())
}

pub(super) async fn edit_pull(
    State(forge): Shared,
    repo: RepoWrite,
    Path((_, _, index)): Path<(String, String, String)>,
    b: Bytes,
) -> Reply {
    let opt: EditPull = body(&forge, &b)?;
    let branches = git::branches(&repo.dir);
    let mut s = forge.lock();
    let (ri, pi) = (repo.ri, find_pull(&forge, &s, repo.ri, &index)?);
    let assignees = match &opt.assignees {
        Some(names) => Some(assignee_ids(&forge, &s, ri, names)?),
        None => None,
    };
    if let Some(base) = &opt.base
        && !branches.contains_key(base)
    {
        return Err(err(
            &forge,
            StatusCode::NOT_FOUND,
            format!("new base branch does not exist [name: {base}]"),
        ));
    }
    if opt.state.as_deref() == Some("open") && !s.repos[ri].pulls[pi].open {
        refuse_reopen(&forge, &s, ri, pi)?;
    }
    let label_ids = opt.labels.map(|ls| known_labels(&s, ri, ls));
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
    if p.set_open(requested_open(opt.state.as_deref(), "closed", "open")) {
        p.closed_at = None;
    }
    p.updated = now();
    Ok(json_resp(
        StatusCode::CREATED,
        pull_json(&forge, &s, ri, pi, &branches),
    ))
}

/// `POST /pulls/{index}/merge`.
pub(super) async fn merge(
    State(forge): Shared,
    _writer: RepoWrite,
    Path((owner, name, index, rest)): Path<(String, String, String, String)>,
) -> Reply {
    if rest != "merge" {
        return Err(not_found(&forge));
    }
    let number: i64 = index.parse().map_err(|_| not_found(&forge))?;
    merge_pull(&forge, &owner, &name, number).map_err(|e| match e.kind() {
        ErrorKind::NotFound => not_found(&forge),
        _ => err(
            &forge,
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Please try again later: {e}"),
        ),
    })?;
    Ok(StatusCode::OK.into_response())
}
