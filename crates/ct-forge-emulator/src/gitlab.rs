//! A thin GitLab REST v4 view of the forge's repositories (API root `{base}/gitlab/api/v4`):
//! projects by numeric ID or URL-encoded path, branches, compare, merge requests (list, create,
//! update), project labels and user lookup by name. A merge request is the forge's pull
//! request with `iid` = number; errors are GitLab's `{"message": …}`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::git;
use crate::state::ForgeState;
use crate::store::{PullRec, RepoRec, Store};
use crate::views::{
    Denied, JsonError, PullChange, ReadRepo, Reply, View, WriteRepo, authorization, json,
    label_ids, page_window, pull_answer, requested_open, resolve_rev, show_pull,
};

/// The color of labels GitLab creates for unknown names.
const LABEL_COLOR: &str = "6699cc";

/// The routes' state.
type Shared = State<Arc<ForgeState>>;

fn error(status: StatusCode, message: impl Into<Value>) -> JsonError {
    JsonError(status, json!({"message": message.into()}))
}

/// GitLab's words for finding `/projects/{id}`.
pub struct GitLab;

/// The project of a read request.
type Project = ReadRepo<GitLab>;
/// A write request with its JSON body.
type Write<T> = WriteRepo<GitLab, T>;

impl View for GitLab {
    fn caller(s: &Store, h: &HeaderMap) -> Result<Option<i64>, JsonError> {
        auth(s, h)
    }

    /// `/projects/{id}`: numeric or a URL-encoded `group/project`.
    fn locate(s: &Store, params: &HashMap<String, String>) -> Option<usize> {
        let id = params.get("id")?;
        match id.parse::<i64>() {
            Ok(n) => s.repo_by_id(n),
            Err(_) => id.rsplit_once('/').and_then(|(o, n)| s.repo_idx(o, n)),
        }
    }

    fn not_found() -> JsonError {
        error(StatusCode::NOT_FOUND, "404 Project Not Found")
    }

    fn denied(d: Denied) -> JsonError {
        match d {
            Denied::ReadOnly => error(StatusCode::FORBIDDEN, "403 Forbidden"),
            _ => error(StatusCode::UNAUTHORIZED, "401 Unauthorized"),
        }
    }

    /// GitLab answers a body that does not parse with 400.
    fn bad_body(e: serde_json::Error) -> JsonError {
        error(StatusCode::BAD_REQUEST, format!("400 Bad request - {e}"))
    }
}

/// GitLab's 404 for a merge request that does not exist.
fn mr_not_found() -> JsonError {
    error(StatusCode::NOT_FOUND, "404 Not found")
}

fn auth(s: &Store, h: &HeaderMap) -> Result<Option<i64>, JsonError> {
    let token = if let Some(t) = h.get("private-token").and_then(|v| v.to_str().ok()) {
        t.trim().to_string()
    } else if let Some(v) = authorization(h) {
        match v.trim().split_once(' ') {
            Some((sch, t)) if sch.eq_ignore_ascii_case("bearer") => t.trim().to_string(),
            _ => return Err(error(StatusCode::UNAUTHORIZED, "401 Unauthorized")),
        }
    } else {
        return Ok(None);
    };
    s.token_user(&token)
        .map(Some)
        .ok_or_else(|| error(StatusCode::UNAUTHORIZED, "401 Unauthorized"))
}

pub(crate) fn router<S>(forge: Arc<ForgeState>) -> Router<S> {
    Router::new()
        .route("/projects/{id}", get(get_project))
        .route(
            "/projects/{id}/repository/branches/{*branch}",
            get(get_branch),
        )
        .route("/projects/{id}/repository/compare", get(compare))
        .route(
            "/projects/{id}/merge_requests",
            get(list_mrs).post(create_mr),
        )
        .route(
            "/projects/{id}/merge_requests/{iid}",
            get(get_mr).put(update_mr),
        )
        .route("/projects/{id}/labels", get(labels))
        .route("/users", get(users))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "404 Not Found") })
        .with_state(forge)
}

fn user_json(s: &Store, id: i64) -> Value {
    match s.user(id) {
        Some(u) => json!({"id": u.id, "username": u.login, "name": u.full_name, "state": "active"}),
        None => Value::Null,
    }
}

fn mr_json(
    forge: &ForgeState,
    s: &Store,
    r: &RepoRec,
    p: &PullRec,
    branches: &BTreeMap<String, String>,
) -> Value {
    let full = s.full_name(r);
    let state = if p.merged {
        "merged"
    } else if p.open {
        "opened"
    } else {
        "closed"
    };
    let assignees: Vec<Value> = p.assignees.iter().map(|id| user_json(s, *id)).collect();
    json!({
        "id": p.id,
        "iid": p.number,
        "project_id": r.id,
        "title": p.title,
        "description": p.body,
        "state": state,
        "source_branch": p.head,
        "target_branch": p.base,
        "source_project_id": r.id,
        "target_project_id": r.id,
        "author": user_json(s, p.poster),
        "assignee": assignees.first().cloned().unwrap_or(Value::Null),
        "assignees": assignees,
        "labels": p.labels.iter().filter_map(|id| r.labels.iter().find(|l| l.id == *id)).map(|l| l.name.clone()).collect::<Vec<_>>(),
        "sha": branches.get(&p.head).cloned(),
        "merge_commit_sha": p.merge_commit,
        "web_url": format!("{}/{full}/-/merge_requests/{}", forge.base, p.number),
        "created_at": p.created,
        "updated_at": p.updated,
        "merged_at": p.merged_at,
        "closed_at": p.closed_at,
    })
}

async fn get_project(State(forge): Shared, project: Project) -> Reply {
    let ri = project.ri;
    let s = forge.lock();
    let r = &s.repos[ri];
    let full = s.full_name(r);
    Ok(json(
        StatusCode::OK,
        json!({"id": r.id, "name": r.name, "path": r.name, "path_with_namespace": full,
               "default_branch": r.default_branch, "web_url": format!("{}/{full}", forge.base),
               "http_url_to_repo": format!("{}/{full}.git", forge.base),
               "visibility": if r.private { "private" } else { "public" }}),
    ))
}

async fn get_branch(project: Project, Path((_, b)): Path<(String, String)>) -> Reply {
    let branches = git::branches(&project.dir);
    let sha = branches
        .get(&b)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "404 Branch Not Found"))?;
    Ok(json(
        StatusCode::OK,
        json!({"name": b, "commit": {"id": sha, "short_id": &sha[..8.min(sha.len())]}, "merged": false, "protected": false}),
    ))
}

#[derive(Deserialize)]
struct CompareQ {
    from: String,
    to: String,
}

async fn compare(project: Project, Query(q): Query<CompareQ>) -> Reply {
    let d = &project.dir;
    let (Some(f), Some(t)) = (resolve_rev(d, &q.from), resolve_rev(d, &q.to)) else {
        return Err(error(StatusCode::NOT_FOUND, "404 Ref Not Found"));
    };
    let commits: Vec<Value> = git::rev_list(d, &t, std::slice::from_ref(&f), 1000)
        .into_iter()
        .rev()
        .map(|c| json!({"id": c}))
        .collect();
    Ok(json(
        StatusCode::OK,
        json!({"commit": commits.last().cloned(), "commits": commits, "diffs": [], "compare_timeout": false, "compare_same_ref": f == t}),
    ))
}

#[derive(Deserialize)]
struct ListQ {
    state: Option<String>,
    source_branch: Option<String>,
    target_branch: Option<String>,
    page: Option<usize>,
    per_page: Option<usize>,
}

async fn list_mrs(State(forge): Shared, project: Project, Query(q): Query<ListQ>) -> Reply {
    let ri = project.ri;
    let branches = git::branches(&project.dir);
    let s = forge.lock();
    let r = &s.repos[ri];
    let state = q.state.unwrap_or_else(|| "all".into());
    let (skip, take) = page_window(q.page, q.per_page, 20);
    let items: Vec<Value> = r
        .pulls
        .iter()
        .rev()
        .filter(|p| match state.as_str() {
            "opened" => p.open,
            "closed" => !p.open && !p.merged,
            "merged" => p.merged,
            _ => true,
        })
        .filter(|p| q.source_branch.as_ref().is_none_or(|b| &p.head == b))
        .filter(|p| q.target_branch.as_ref().is_none_or(|b| &p.base == b))
        .skip(skip)
        .take(take)
        .map(|p| mr_json(&forge, &s, r, p, &branches))
        .collect();
    Ok(json(StatusCode::OK, Value::Array(items)))
}

async fn get_mr(
    State(forge): Shared,
    project: Project,
    Path((_, iid)): Path<(String, i64)>,
) -> Reply {
    let ri = project.ri;
    show_pull(&forge, ri, iid, mr_json, mr_not_found)
}

/// `labels` is a comma-separated string or an array of names.
#[derive(Deserialize)]
#[serde(untagged)]
enum Labels {
    Csv(String),
    List(Vec<String>),
}

impl Labels {
    fn names(self) -> Vec<String> {
        match self {
            Labels::Csv(s) => s
                .split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect(),
            Labels::List(v) => v,
        }
    }
}

#[derive(Deserialize)]
struct CreateQ {
    source_branch: Option<String>,
    target_branch: Option<String>,
    title: Option<String>,
    #[serde(default)]
    description: String,
    assignee_id: Option<i64>,
    #[serde(default)]
    assignee_ids: Vec<i64>,
    labels: Option<Labels>,
}

async fn create_mr(State(forge): Shared, req: Write<CreateQ>) -> Reply {
    let (ri, uid, opt, dir) = (req.ri, req.uid, req.body, req.dir);
    let (Some(src), Some(dst), Some(title)) = (opt.source_branch, opt.target_branch, opt.title)
    else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "source_branch, target_branch, title are missing",
        ));
    };
    let branches = git::branches(&dir);
    if !branches.contains_key(&src) || !branches.contains_key(&dst) {
        return Err(error(StatusCode::NOT_FOUND, "404 Branch Not Found"));
    }
    if src == dst {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(["You can't use same project/branch for source and target"]),
        ));
    }
    let mut s = forge.lock();
    s.take_race(ri, &src, &dst, &title, &opt.description);
    let exists = |s: &Store, pi: usize| {
        let msg = format!(
            "Another open merge request already exists for this source branch: !{}",
            s.repos[ri].pulls[pi].number
        );
        error(StatusCode::CONFLICT, json!([msg]))
    };
    if let Some(pi) = Store::open_pull(&s.repos[ri], &src, &dst) {
        return Err(exists(&s, pi));
    }
    let assignable = s.assignable(&s.repos[ri]);
    let mut assignees: Vec<i64> = opt.assignee_ids;
    assignees.extend(opt.assignee_id);
    assignees.retain(|a| assignable.contains(a));
    assignees.dedup();
    let labels = opt
        .labels
        .map(|l| label_ids(&mut s, ri, l.names(), LABEL_COLOR, false))
        .unwrap_or_default();
    let mut pull = PullRec::new(uid.unwrap_or(0), &src, &dst, &title, &opt.description);
    pull.assignees = assignees;
    pull.labels = labels;
    let pi = match s.create_pull(ri, pull) {
        Ok(pi) => pi,
        Err(pi) => return Err(exists(&s, pi)),
    };
    Ok(pull_answer(
        StatusCode::CREATED,
        &forge,
        &s,
        (ri, pi),
        &branches,
        mr_json,
    ))
}

#[derive(Deserialize)]
struct UpdateQ {
    title: Option<String>,
    description: Option<String>,
    state_event: Option<String>,
    assignee_ids: Option<Vec<i64>>,
    labels: Option<Labels>,
    add_labels: Option<Labels>,
}

async fn update_mr(
    State(forge): Shared,
    Path((_, iid)): Path<(String, i64)>,
    req: Write<UpdateQ>,
) -> Reply {
    let mut change = PullChange::lock(&forge, (req.ri, &req.dir), iid, mr_not_found)?;
    let (ri, opt) = (req.ri, req.body);
    let s = &mut change.s;
    let set = opt
        .labels
        .map(|l| label_ids(s, ri, l.names(), LABEL_COLOR, false));
    let add = opt
        .add_labels
        .map(|l| label_ids(s, ri, l.names(), LABEL_COLOR, false));
    let assignable = s.assignable(&s.repos[ri]);
    let open = requested_open(opt.state_event.as_deref(), "close", "reopen");
    change.update(opt.title, opt.description, open);
    let p = change.pull();
    if let Some(a) = opt.assignee_ids {
        p.assignees = a.into_iter().filter(|x| assignable.contains(x)).collect();
    }
    if let Some(l) = set {
        p.labels = l;
    }
    for l in add.unwrap_or_default() {
        if !p.labels.contains(&l) {
            p.labels.push(l);
        }
    }
    change.answer(StatusCode::OK, mr_json)
}

#[derive(Deserialize)]
struct PageQ {
    page: Option<usize>,
    per_page: Option<usize>,
}

async fn labels(State(forge): Shared, project: Project, Query(q): Query<PageQ>) -> Reply {
    let ri = project.ri;
    let s = forge.lock();
    let (skip, take) = page_window(q.page, q.per_page, 20);
    let v: Vec<Value> = s.repos[ri]
        .labels
        .iter()
        .skip(skip)
        .take(take)
        .map(|l| json!({"id": l.id, "name": l.name, "color": format!("#{}", l.color), "description": l.description}))
        .collect();
    Ok(json(StatusCode::OK, Value::Array(v)))
}

#[derive(Deserialize)]
struct UsersQ {
    username: Option<String>,
}

async fn users(State(forge): Shared, h: HeaderMap, Query(q): Query<UsersQ>) -> Reply {
    let s = forge.lock();
    auth(&s, &h)?;
    let v: Vec<Value> = s
        .users
        .iter()
        .filter(|u| !u.is_org)
        .filter(|u| {
            q.username
                .as_ref()
                .is_none_or(|n| u.login.eq_ignore_ascii_case(n))
        })
        .map(|u| user_json(&s, u.id))
        .collect();
    Ok(json(StatusCode::OK, Value::Array(v)))
}
