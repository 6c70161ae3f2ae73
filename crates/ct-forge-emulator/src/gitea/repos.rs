//! Repositories and what hangs off them: create (as user, org, admin), get, branches, compare,
//! commits, labels, assignees, collaborators, hooks, issues.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use ct_emulator::ErrorKind;
use serde::Deserialize;
use serde_json::{Value, json};

use super::render;
use super::{
    Caller, Paging, Reply, RepoRead, RepoWrite, Shared, body, can_write, err, json_resp, not_found,
    paged, unprocessable, view,
};
use crate::git;
use crate::repos::create_repo;
use crate::state::ForgeState;
use crate::store::{HookRec, UserRec, now};
use crate::views::{JsonError, resolve_rev};

#[derive(Deserialize)]
struct CreateRepo {
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    private: bool,
    default_branch: Option<String>,
}

pub(super) async fn create_user_repo(State(forge): Shared, caller: Caller, b: Bytes) -> Reply {
    let uid = caller.signed_in(&forge)?;
    let owner = forge
        .lock()
        .user(uid)
        .map(|u| u.login.clone())
        .unwrap_or_default();
    repo_create(&forge, &owner, uid, &b)
}

pub(super) async fn create_org_repo(
    State(forge): Shared,
    caller: Caller,
    Path(org): Path<String>,
    b: Bytes,
) -> Reply {
    let uid = caller.signed_in(&forge)?;
    owner_is(&forge, &org, |u| u.is_org)?;
    repo_create(&forge, &org, uid, &b)
}

pub(super) async fn admin_create_repo(
    State(forge): Shared,
    caller: Caller,
    Path(user): Path<String>,
    b: Bytes,
) -> Reply {
    let uid = caller.site_admin(&forge)?;
    owner_is(&forge, &user, |_| true)?;
    repo_create(&forge, &user, uid, &b)
}

/// 404 unless `owner` is an account that `fits`.
fn owner_is(forge: &ForgeState, owner: &str, fits: fn(&UserRec) -> bool) -> Result<(), JsonError> {
    if !forge.lock().user_by_login(owner).is_some_and(fits) {
        return Err(not_found(forge));
    }
    Ok(())
}

fn repo_create(forge: &ForgeState, owner: &str, creator: i64, b: &Bytes) -> Reply {
    let opt: CreateRepo = body(forge, b)?;
    let Some(name) = opt.name.filter(|n| !n.is_empty()) else {
        return Err(unprocessable(forge, "[Name]: Required"));
    };
    let branch = opt
        .default_branch
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "main".to_string());
    let repo =
        create_repo(forge, owner, &name, &opt.description, opt.private, &branch).map_err(|e| {
            let status = match e.kind() {
                ErrorKind::AlreadyExists => StatusCode::CONFLICT,
                ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            err(forge, status, e.message())
        })?;
    let mut s = forge.lock();
    let ri = s.repo_by_id(repo.id).ok_or_else(|| not_found(forge))?;
    if s.repos[ri].owner_id != creator {
        s.add_collaborator(ri, creator);
    }
    Ok(json_resp(
        StatusCode::CREATED,
        view(forge, &s).repo(&s.repos[ri], true, true, false),
    ))
}

pub(super) async fn get_repo(State(forge): Shared, repo: RepoRead) -> Reply {
    let empty = git::branches(&repo.dir).is_empty();
    let s = forge.lock();
    let admin = can_write(&s, repo.ri, repo.uid);
    Ok(json_resp(
        StatusCode::OK,
        view(&forge, &s).repo(&s.repos[repo.ri], admin, empty, false),
    ))
}

fn branch_json(
    forge: &ForgeState,
    repo: &RepoRead,
    name: &str,
    sha: &str,
    can_push: bool,
) -> Value {
    let commit = git::commit_info(&repo.dir, sha)
        .map(|c| render::payload_commit(&forge.base, &repo.full, &c))
        .unwrap_or(Value::Null);
    render::branch(name, commit, can_push)
}

pub(super) async fn list_branches(
    State(forge): Shared,
    repo: RepoRead,
    Query(q): Query<Paging>,
) -> Reply {
    let can_push = can_write(&forge.lock(), repo.ri, repo.uid);
    let items = git::branches(&repo.dir)
        .iter()
        .map(|(n, sha)| branch_json(&forge, &repo, n, sha, can_push))
        .collect();
    let path = format!("/repos/{}/branches", repo.full);
    Ok(paged(&forge, &path, &q, items))
}

pub(super) async fn get_branch(
    State(forge): Shared,
    repo: RepoRead,
    Path((_, _, branch)): Path<(String, String, String)>,
) -> Reply {
    let can_push = can_write(&forge.lock(), repo.ri, repo.uid);
    let branches = git::branches(&repo.dir);
    let sha = branches.get(&branch).ok_or_else(|| {
        err(
            &forge,
            StatusCode::NOT_FOUND,
            format!("branch does not exist [name: {branch}]"),
        )
    })?;
    Ok(json_resp(
        StatusCode::OK,
        branch_json(&forge, &repo, &branch, sha, can_push),
    ))
}

pub(super) async fn delete_branch(
    State(forge): Shared,
    repo: RepoWrite,
    Path((_, _, branch)): Path<(String, String, String)>,
) -> Reply {
    if forge.lock().repos[repo.ri].default_branch == branch {
        return Err(err(
            &forge,
            StatusCode::FORBIDDEN,
            "can not delete default branch",
        ));
    }
    if !git::branches(&repo.dir).contains_key(&branch) {
        return Err(not_found(&forge));
    }
    git::delete_ref(&repo.dir, &format!("refs/heads/{branch}"))
        .map_err(|e| err(&forge, StatusCode::INTERNAL_SERVER_ERROR, e.message()))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn compare(
    State(forge): Shared,
    repo: RepoRead,
    Path((_, _, basehead)): Path<(String, String, String)>,
) -> Reply {
    if !forge.has_base_head() {
        return Err(not_found(&forge));
    }
    let (base, head) = basehead
        .split_once("...")
        .or_else(|| basehead.split_once(".."))
        .ok_or_else(|| not_found(&forge))?;
    let head = head.rsplit(':').next().unwrap_or(head);
    let (Some(b), Some(hd)) = (resolve_rev(&repo.dir, base), resolve_rev(&repo.dir, head)) else {
        return Err(not_found(&forge));
    };
    let commits = commits_json(&forge, &repo, &git::rev_list(&repo.dir, &hd, &[b], 1000));
    Ok(json_resp(
        StatusCode::OK,
        json!({"total_commits": commits.len(), "commits": commits}),
    ))
}

/// Gitea's `Commit` for each of `shas` that can be read.
fn commits_json(forge: &ForgeState, repo: &RepoRead, shas: &[String]) -> Vec<Value> {
    shas.iter()
        .filter_map(|sha| git::commit_info(&repo.dir, sha).ok())
        .map(|c| render::commit(&forge.base, &repo.full, &c))
        .collect()
}

#[derive(Deserialize)]
pub(super) struct CommitsQuery {
    sha: Option<String>,
    page: Option<usize>,
    limit: Option<usize>,
}

/// `GET /repos/{o}/{r}/commits`: the history of `sha` (a branch or commit; default branch
/// when absent), newest first, paged; 409 on an empty repository.
pub(super) async fn list_commits(
    State(forge): Shared,
    repo: RepoRead,
    Query(q): Query<CommitsQuery>,
) -> Reply {
    let default = forge.lock().repos[repo.ri].default_branch.clone();
    if git::branches(&repo.dir).is_empty() {
        return Err(err(
            &forge,
            StatusCode::CONFLICT,
            "Git Repository is empty.",
        ));
    }
    let rev = q.sha.unwrap_or(default);
    let tip = resolve_rev(&repo.dir, &rev).ok_or_else(|| not_found(&forge))?;
    let paging = Paging {
        page: q.page,
        limit: q.limit,
        ..Paging::default()
    };
    let (skip, limit) = paging.window(forge.max_items);
    let shas = git::rev_list(&repo.dir, &tip, &[], skip + limit);
    let items = commits_json(&forge, &repo, &shas[skip.min(shas.len())..]);
    Ok(json_resp(StatusCode::OK, Value::Array(items)))
}

pub(super) async fn list_labels(
    State(forge): Shared,
    repo: RepoRead,
    Query(q): Query<Paging>,
) -> Reply {
    let items = {
        let s = forge.lock();
        let r = &s.repos[repo.ri];
        let g = view(&forge, &s);
        r.labels.iter().map(|l| g.label(r, l)).collect()
    };
    Ok(paged(
        &forge,
        &format!("/repos/{}/labels", repo.full),
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

pub(super) async fn create_label(State(forge): Shared, repo: RepoWrite, b: Bytes) -> Reply {
    let opt: CreateLabel = body(&forge, &b)?;
    let (Some(name), Some(color)) = (opt.name.filter(|n| !n.is_empty()), opt.color) else {
        return Err(unprocessable(&forge, "[Name Color]: Required"));
    };
    let color = color.trim_start_matches('#').to_string();
    if color.len() != 6 || !color.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(unprocessable(&forge, "invalid color format"));
    }
    let mut s = forge.lock();
    let label = s.add_label(repo.ri, &name, &color, &opt.description);
    Ok(json_resp(
        StatusCode::CREATED,
        view(&forge, &s).label(&s.repos[repo.ri], &label),
    ))
}

/// The users with these ids, as Gitea's `User` list.
fn users_json(forge: &ForgeState, ids: impl Fn(&crate::store::Store) -> Vec<i64>) -> Reply {
    let s = forge.lock();
    let g = view(forge, &s);
    let v: Vec<Value> = ids(&s).iter().map(|id| g.user_id(*id, false)).collect();
    Ok(json_resp(StatusCode::OK, Value::Array(v)))
}

pub(super) async fn assignees(State(forge): Shared, repo: RepoRead) -> Reply {
    users_json(&forge, |s| s.assignable(&s.repos[repo.ri]))
}

pub(super) async fn collaborators(State(forge): Shared, repo: RepoRead) -> Reply {
    users_json(&forge, |s| s.repos[repo.ri].collaborators.clone())
}

pub(super) async fn is_collaborator(
    State(forge): Shared,
    repo: RepoRead,
    Path((_, _, user)): Path<(String, String, String)>,
) -> Reply {
    let s = forge.lock();
    let uid = s.user_id(&user).map_err(|_| not_found(&forge))?;
    if s.repos[repo.ri].collaborators.contains(&uid) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(not_found(&forge))
    }
}

pub(super) async fn add_collaborator(
    State(forge): Shared,
    repo: RepoWrite,
    Path((_, _, user)): Path<(String, String, String)>,
) -> Reply {
    let mut s = forge.lock();
    let uid = s.user_id(&user).map_err(|_| {
        unprocessable(
            &forge,
            format!("user does not exist [uid: 0, name: {user}]"),
        )
    })?;
    s.add_collaborator(repo.ri, uid);
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn remove_collaborator(
    State(forge): Shared,
    repo: RepoWrite,
    Path((_, _, user)): Path<(String, String, String)>,
) -> Reply {
    let mut s = forge.lock();
    let uid = s.user_id(&user).map_err(|_| not_found(&forge))?;
    s.remove_collaborator(repo.ri, uid);
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn list_hooks(
    State(forge): Shared,
    repo: RepoWrite,
    Query(q): Query<Paging>,
) -> Reply {
    let items = {
        let s = forge.lock();
        let g = view(&forge, &s);
        s.repos[repo.ri].hooks.iter().map(|hk| g.hook(hk)).collect()
    };
    let path = format!("/repos/{}/{}/hooks", repo.owner, repo.name);
    Ok(paged(&forge, &path, &q, items))
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

pub(super) async fn create_hook(State(forge): Shared, repo: RepoWrite, b: Bytes) -> Reply {
    let opt: CreateHook = body(&forge, &b)?;
    match opt.kind.as_deref() {
        Some("gitea" | "gogs") => {}
        Some(other) => {
            return Err(unprocessable(&forge, format!("Invalid hook type: {other}")));
        }
        None => {
            return Err(unprocessable(&forge, "[Type]: Required"));
        }
    }
    let Some(url) = opt
        .config
        .get("url")
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
    else {
        return Err(unprocessable(&forge, "Missing config option: url"));
    };
    let content_type = opt
        .config
        .get("content_type")
        .cloned()
        .unwrap_or_else(|| "json".to_string());
    if !matches!(content_type.as_str(), "json" | "form") {
        return Err(unprocessable(&forge, "Invalid content type"));
    }
    let hook = HookRec {
        id: 0,
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
    let mut s = forge.lock();
    let hook = s.add_hook(repo.ri, hook);
    Ok(json_resp(StatusCode::CREATED, view(&forge, &s).hook(&hook)))
}

pub(super) async fn delete_hook(
    State(forge): Shared,
    repo: RepoWrite,
    Path((_, _, id)): Path<(String, String, i64)>,
) -> Reply {
    let mut s = forge.lock();
    let hooks = &mut s.repos[repo.ri].hooks;
    let before = hooks.len();
    hooks.retain(|hk| hk.id != id);
    if hooks.len() == before {
        return Err(not_found(&forge));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct CreateIssue {
    title: Option<String>,
    #[serde(default)]
    body: String,
}

pub(super) async fn create_issue(State(forge): Shared, repo: RepoWrite, b: Bytes) -> Reply {
    let opt: CreateIssue = body(&forge, &b)?;
    let Some(title) = opt.title.filter(|t| !t.trim().is_empty()) else {
        return Err(unprocessable(&forge, "[Title]: Required"));
    };
    let mut s = forge.lock();
    let id = s.next_id();
    let number = s.open_issue(repo.ri);
    let full = &repo.full;
    let base = &forge.base;
    Ok(json_resp(
        StatusCode::CREATED,
        json!({
            "id": id,
            "url": format!("{base}/api/v1/repos/{full}/issues/{number}"),
            "html_url": format!("{base}/{full}/issues/{number}"),
            "number": number,
            "user": view(&forge, &s).user_id(repo.uid, false),
            "title": title,
            "body": opt.body,
            "labels": [],
            "state": "open",
            "pull_request": null,
            "created_at": now(),
        }),
    ))
}
