//! A thin GitHub REST view of the forge's repositories (API root `{base}/github`): repository,
//! branch, compare, pulls (list with `head=owner:branch`, create, update), label and assignee
//! checks, and adding labels/assignees through the issues API. Errors use GitHub's
//! `{"message","documentation_url"}` body and its 422 "Validation Failed" shape.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::git;
use crate::state::ForgeState;
use crate::store::{PullRec, RepoRec, Store};
use crate::views::{
    Denied, JsonError, PullChange, ReadRepo, Reply, View, WriteRepo, authorization, json,
    label_ids, page_window, pull_answer, requested_open, resolve_rev, show_pull,
};

/// The routes' state.
type Shared = State<Arc<ForgeState>>;

const DOCS: &str = "https://docs.github.com/rest";

fn error(status: StatusCode, message: &str) -> JsonError {
    JsonError(
        status,
        json!({"message": message, "documentation_url": DOCS, "status": status.as_u16().to_string()}),
    )
}

fn not_found() -> JsonError {
    error(StatusCode::NOT_FOUND, "Not Found")
}

fn validation(errors: Value) -> JsonError {
    JsonError(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({"message": "Validation Failed", "errors": errors, "documentation_url": DOCS, "status": "422"}),
    )
}

/// GitHub's words for finding `/repos/{owner}/{repo}`.
pub struct GitHub;

/// The repository of a read request.
type Repo = ReadRepo<GitHub>;
/// A write request with its JSON body.
type Write<T> = WriteRepo<GitHub, T>;

impl View for GitHub {
    fn caller(s: &Store, h: &HeaderMap) -> Result<Option<i64>, JsonError> {
        auth(s, h)
    }

    /// `/repos/{owner}/{repo}`.
    fn locate(s: &Store, params: &HashMap<String, String>) -> Option<usize> {
        s.repo_idx(params.get("owner")?, params.get("repo")?)
    }

    fn not_found() -> JsonError {
        not_found()
    }

    fn denied(d: Denied) -> JsonError {
        match d {
            Denied::ReadOnly => error(
                StatusCode::FORBIDDEN,
                "Resource not accessible by personal access token",
            ),
            _ => error(StatusCode::UNAUTHORIZED, "Requires authentication"),
        }
    }

    /// GitHub answers a body that does not parse with 400.
    fn bad_body(e: serde_json::Error) -> JsonError {
        error(
            StatusCode::BAD_REQUEST,
            &format!("Problems parsing JSON: {e}"),
        )
    }
}

fn auth(s: &Store, h: &HeaderMap) -> Result<Option<i64>, JsonError> {
    let Some(v) = authorization(h) else {
        return Ok(None);
    };
    let (scheme, cred) = v.trim().split_once(' ').unwrap_or((v, ""));
    if !matches!(scheme.to_ascii_lowercase().as_str(), "bearer" | "token") {
        return Err(error(StatusCode::UNAUTHORIZED, "Bad credentials"));
    }
    s.token_user(cred.trim())
        .map(Some)
        .ok_or_else(|| error(StatusCode::UNAUTHORIZED, "Bad credentials"))
}

pub(crate) fn router<S>(forge: Arc<ForgeState>) -> Router<S> {
    Router::new()
        .route("/repos/{owner}/{repo}", get(get_repo))
        .route("/repos/{owner}/{repo}/branches/{*branch}", get(get_branch))
        .route("/repos/{owner}/{repo}/compare/{*basehead}", get(compare))
        .route(
            "/repos/{owner}/{repo}/pulls",
            get(list_pulls).post(create_pull),
        )
        .route(
            "/repos/{owner}/{repo}/pulls/{number}",
            get(get_pull).patch(update_pull),
        )
        .route("/repos/{owner}/{repo}/labels/{name}", get(get_label))
        .route(
            "/repos/{owner}/{repo}/assignees/{user}",
            get(check_assignee),
        )
        .route(
            "/repos/{owner}/{repo}/issues/{number}/labels",
            post(add_labels),
        )
        .route(
            "/repos/{owner}/{repo}/issues/{number}/assignees",
            post(add_assignees),
        )
        .fallback(|| async { not_found() })
        .with_state(forge)
}

fn user_json(s: &Store, id: i64) -> Value {
    match s.user(id) {
        Some(u) => {
            json!({"login": u.login, "id": u.id, "type": if u.is_org { "Organization" } else { "User" }})
        }
        None => Value::Null,
    }
}

fn repo_json(forge: &ForgeState, s: &Store, r: &RepoRec) -> Value {
    let full = s.full_name(r);
    json!({
        "id": r.id,
        "name": r.name,
        "full_name": full,
        "owner": user_json(s, r.owner_id),
        "private": r.private,
        "url": format!("{}/github/repos/{full}", forge.base),
        "html_url": format!("{}/{full}", forge.base),
        "clone_url": format!("{}/{full}.git", forge.base),
        "default_branch": r.default_branch,
    })
}

fn pull_json(
    forge: &ForgeState,
    s: &Store,
    r: &RepoRec,
    p: &PullRec,
    branches: &BTreeMap<String, String>,
) -> Value {
    let full = s.full_name(r);
    let owner = s.owner_login(r);
    let labels: Vec<Value> = p
        .labels
        .iter()
        .filter_map(|id| r.labels.iter().find(|l| l.id == *id))
        .map(|l| json!({"id": l.id, "name": l.name, "color": l.color}))
        .collect();
    json!({
        "id": p.id,
        "number": p.number,
        "state": if p.open { "open" } else { "closed" },
        "title": p.title,
        "body": p.body,
        "url": format!("{}/github/repos/{full}/pulls/{}", forge.base, p.number),
        "issue_url": format!("{}/github/repos/{full}/issues/{}", forge.base, p.number),
        "commits_url": format!("{}/github/repos/{full}/pulls/{}/commits", forge.base, p.number),
        "html_url": format!("{}/{full}/pull/{}", forge.base, p.number),
        "user": user_json(s, p.poster),
        "labels": labels,
        "assignees": p.assignees.iter().map(|id| user_json(s, *id)).collect::<Vec<_>>(),
        "merged": p.merged,
        "merged_at": p.merged_at,
        "closed_at": p.closed_at,
        "created_at": p.created,
        "updated_at": p.updated,
        "head": {"label": format!("{owner}:{}", p.head), "ref": p.head,
                 "sha": branches.get(&p.head).cloned().unwrap_or_default(), "repo": repo_json(forge, s, r)},
        "base": {"label": format!("{owner}:{}", p.base), "ref": p.base,
                 "sha": branches.get(&p.base).cloned().unwrap_or_default(), "repo": repo_json(forge, s, r)},
    })
}

async fn get_repo(State(forge): Shared, repo: Repo) -> Reply {
    let ri = repo.ri;
    let s = forge.lock();
    Ok(json(StatusCode::OK, repo_json(&forge, &s, &s.repos[ri])))
}

async fn get_branch(repo: Repo, Path((_, _, b)): Path<(String, String, String)>) -> Reply {
    let branches = git::branches(&repo.dir);
    let sha = branches
        .get(&b)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "Branch not found"))?;
    Ok(json(
        StatusCode::OK,
        json!({"name": b, "commit": {"sha": sha}, "protected": false}),
    ))
}

async fn compare(repo: Repo, Path((_, _, bh)): Path<(String, String, String)>) -> Reply {
    let d = &repo.dir;
    let (base, head) = bh.split_once("...").ok_or_else(not_found)?;
    let head = head.rsplit(':').next().unwrap_or(head);
    let (Some(b), Some(hd)) = (resolve_rev(d, base), resolve_rev(d, head)) else {
        return Err(not_found());
    };
    let ahead = git::count_ahead(d, &b, &hd);
    let behind = git::count_ahead(d, &hd, &b);
    let status = match (ahead, behind) {
        (0, 0) => "identical",
        (_, 0) => "ahead",
        (0, _) => "behind",
        _ => "diverged",
    };
    let commits: Vec<Value> = git::rev_list(d, &hd, &[b], 250)
        .into_iter()
        .rev()
        .map(|c| json!({"sha": c}))
        .collect();
    Ok(json(
        StatusCode::OK,
        json!({"status": status, "ahead_by": ahead, "behind_by": behind, "total_commits": ahead, "commits": commits}),
    ))
}

#[derive(Deserialize)]
struct ListQ {
    state: Option<String>,
    head: Option<String>,
    base: Option<String>,
    per_page: Option<usize>,
    page: Option<usize>,
}

async fn list_pulls(State(forge): Shared, repo: Repo, Query(q): Query<ListQ>) -> Reply {
    let ri = repo.ri;
    let branches = git::branches(&repo.dir);
    let s = forge.lock();
    let r = &s.repos[ri];
    let owner = s.owner_login(r);
    let state = q.state.unwrap_or_else(|| "open".into());
    // GitHub ignores a `head` without the `owner:` prefix.
    let head = q.head.and_then(|hd| {
        hd.split_once(':')
            .map(|(ho, hb)| (ho.eq_ignore_ascii_case(&owner), hb.to_string()))
    });
    let (skip, take) = page_window(q.page, q.per_page, 30);
    let items: Vec<Value> = r
        .pulls
        .iter()
        .rev()
        .filter(|p| state == "all" || (state == "open") == p.open)
        .filter(|p| match &head {
            Some((same_owner, b)) => *same_owner && &p.head == b,
            None => true,
        })
        .filter(|p| q.base.as_ref().is_none_or(|b| &p.base == b))
        .skip(skip)
        .take(take)
        .map(|p| pull_json(&forge, &s, r, p, &branches))
        .collect();
    Ok(json(StatusCode::OK, Value::Array(items)))
}

async fn get_pull(
    State(forge): Shared,
    repo: Repo,
    Path((_, _, num)): Path<(String, String, i64)>,
) -> Reply {
    let ri = repo.ri;
    show_pull(&forge, ri, num, pull_json, not_found)
}

#[derive(Deserialize)]
struct CreateQ {
    title: Option<String>,
    head: Option<String>,
    base: Option<String>,
    #[serde(default)]
    body: String,
}

async fn create_pull(
    State(forge): Shared,
    Path((o, _)): Path<(String, String)>,
    req: Write<CreateQ>,
) -> Reply {
    let (ri, uid, opt, d) = (req.ri, req.uid, req.body, req.dir);
    let branches = git::branches(&d);
    let head_raw = opt.head.unwrap_or_default();
    let head = match head_raw.split_once(':') {
        Some((ho, hb)) if ho.eq_ignore_ascii_case(&o) => hb.to_string(),
        Some(_) => String::new(),
        None => head_raw.clone(),
    };
    let base = opt.base.unwrap_or_default();
    if !branches.contains_key(&head) {
        return Err(validation(
            json!([{"resource": "PullRequest", "field": "head", "code": "invalid"}]),
        ));
    }
    if !branches.contains_key(&base) {
        return Err(validation(
            json!([{"resource": "PullRequest", "field": "base", "code": "invalid"}]),
        ));
    }
    let Some(title) = opt.title.filter(|t| !t.trim().is_empty()) else {
        return Err(validation(
            json!([{"resource": "PullRequest", "field": "title", "code": "missing_field"}]),
        ));
    };
    let ahead = git::count_ahead(&d, &branches[&base], &branches[&head]);
    let custom = |msg: String| {
        validation(json!([{"resource": "PullRequest", "code": "custom", "message": msg}]))
    };
    let already = || custom(format!("A pull request already exists for {o}:{head}."));
    let mut s = forge.lock();
    s.take_race(ri, &head, &base, &title, &opt.body);
    if Store::open_pull(&s.repos[ri], &head, &base).is_some() {
        return Err(already());
    }
    if ahead == 0 {
        return Err(custom(format!("No commits between {base} and {head}")));
    }
    let pull = PullRec::new(uid.unwrap_or(0), &head, &base, &title, &opt.body);
    let pi = s.create_pull(ri, pull).map_err(|_| already())?;
    Ok(pull_answer(
        StatusCode::CREATED,
        &forge,
        &s,
        (ri, pi),
        &branches,
        pull_json,
    ))
}

#[derive(Deserialize)]
struct UpdateQ {
    title: Option<String>,
    body: Option<String>,
    state: Option<String>,
}

async fn update_pull(
    State(forge): Shared,
    Path((_, _, num)): Path<(String, String, i64)>,
    req: Write<UpdateQ>,
) -> Reply {
    let mut change = PullChange::lock(&forge, (req.ri, &req.dir), num, not_found)?;
    let opt = req.body;
    let open = requested_open(opt.state.as_deref(), "closed", "open");
    change.update(opt.title, opt.body, open);
    change.answer(StatusCode::OK, pull_json)
}

async fn get_label(
    State(forge): Shared,
    repo: Repo,
    Path((_, _, name)): Path<(String, String, String)>,
) -> Reply {
    let ri = repo.ri;
    let s = forge.lock();
    let l = s.repos[ri]
        .labels
        .iter()
        .find(|l| l.name.eq_ignore_ascii_case(&name))
        .ok_or_else(not_found)?;
    Ok(json(
        StatusCode::OK,
        json!({"id": l.id, "name": l.name, "color": l.color, "description": l.description}),
    ))
}

async fn check_assignee(
    State(forge): Shared,
    repo: Repo,
    Path((_, _, user)): Path<(String, String, String)>,
) -> Reply {
    let ri = repo.ri;
    let s = forge.lock();
    let uid = s.user_by_login(&user).map(|u| u.id).ok_or_else(not_found)?;
    if s.assignable(&s.repos[ri]).contains(&uid) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(not_found())
    }
}

/// `{"labels": [..]}`, `{"labels": "name"}` or a bare array, as GitHub accepts.
#[derive(Deserialize)]
#[serde(untagged)]
enum LabelsQ {
    Object { labels: OneOrMany },
    Bare(Vec<String>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl LabelsQ {
    fn names(self) -> Vec<String> {
        match self {
            LabelsQ::Object {
                labels: OneOrMany::One(s),
            } => vec![s],
            LabelsQ::Object {
                labels: OneOrMany::Many(v),
            }
            | LabelsQ::Bare(v) => v,
        }
    }
}

/// Adds labels by name; like GitHub, a name that does not exist is created.
async fn add_labels(
    State(forge): Shared,
    Path((_, _, num)): Path<(String, String, i64)>,
    req: Write<LabelsQ>,
) -> Reply {
    let PullChange { mut s, ri, pi, .. } =
        PullChange::lock(&forge, (req.ri, &req.dir), num, not_found)?;
    for id in label_ids(&mut s, ri, req.body.names(), "ededed", true) {
        if !s.repos[ri].pulls[pi].labels.contains(&id) {
            s.repos[ri].pulls[pi].labels.push(id);
        }
    }
    let r = &s.repos[ri];
    let v: Vec<Value> = r.pulls[pi]
        .labels
        .iter()
        .filter_map(|id| r.labels.iter().find(|l| l.id == *id))
        .map(|l| json!({"id": l.id, "name": l.name, "color": l.color}))
        .collect();
    Ok(json(StatusCode::OK, Value::Array(v)))
}

#[derive(Deserialize)]
struct AssigneesQ {
    assignees: Vec<String>,
}

/// Adds assignees; like GitHub, users who cannot be assigned are silently ignored.
async fn add_assignees(
    State(forge): Shared,
    Path((_, _, num)): Path<(String, String, i64)>,
    req: Write<AssigneesQ>,
) -> Reply {
    let mut change = PullChange::lock(&forge, (req.ri, &req.dir), num, not_found)?;
    let assignable = change.s.assignable(&change.s.repos[req.ri]);
    for name in req.body.assignees {
        if let Some(uid) = change.s.user_by_login(&name).map(|u| u.id)
            && assignable.contains(&uid)
            && !change.pull().assignees.contains(&uid)
        {
            change.pull().assignees.push(uid);
        }
    }
    change.answer(StatusCode::CREATED, pull_json)
}
