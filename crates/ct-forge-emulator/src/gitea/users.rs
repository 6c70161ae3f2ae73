//! `/version`, `/user`, `/users/{username}`, tokens, `/admin/users`, organizations.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::{
    Caller, Reply, Shared, body, err, is_admin, json_resp, not_found, unprocessable, view,
};
use crate::store::{UserRec, now};
use crate::views::{JsonError, authorization};

pub(super) async fn version(State(forge): Shared, _caller: Caller) -> Reply {
    Ok(json_resp(
        StatusCode::OK,
        json!({"version": forge.version()}),
    ))
}

pub(super) async fn current_user(State(forge): Shared, caller: Caller) -> Reply {
    let uid = caller.signed_in(&forge)?;
    let s = forge.lock();
    Ok(json_resp(
        StatusCode::OK,
        view(&forge, &s).user_id(uid, false),
    ))
}

pub(super) async fn get_user(
    State(forge): Shared,
    _caller: Caller,
    Path(username): Path<String>,
) -> Reply {
    let s = forge.lock();
    let u = s
        .user_by_login(&username)
        .ok_or_else(|| not_found(&forge))?;
    Ok(json_resp(StatusCode::OK, view(&forge, &s).user(u, false)))
}

#[derive(Deserialize)]
struct CreateUser {
    username: Option<String>,
    email: Option<String>,
    password: Option<String>,
    full_name: Option<String>,
}

/// Gitea's rule for user and organization names.
fn valid_login(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Add `user`; an existing name is Gitea's 422.
fn add_user(forge: &super::ForgeState, user: UserRec) -> Result<i64, JsonError> {
    forge
        .lock()
        .add_user(user)
        .map_err(|e| unprocessable(forge, e.message()))
}

pub(super) async fn admin_create_user(State(forge): Shared, caller: Caller, b: Bytes) -> Reply {
    let opt: CreateUser = body(&forge, &b)?;
    caller.site_admin(&forge)?;
    let (Some(login), Some(email)) = (opt.username, opt.email) else {
        return Err(unprocessable(&forge, "[Username Email]: Required"));
    };
    if forge.lock().user_by_login(&login).is_none() && !valid_login(&login) {
        return Err(unprocessable(
            &forge,
            format!("[Username]: invalid name {login:?}"),
        ));
    }
    let id = add_user(
        &forge,
        UserRec {
            id: 0,
            login,
            password: opt.password.filter(|p| !p.is_empty()),
            email,
            full_name: opt.full_name.unwrap_or_default(),
            is_admin: false,
            is_org: false,
            created: now(),
        },
    )?;
    let s = forge.lock();
    Ok(json_resp(
        StatusCode::CREATED,
        view(&forge, &s).user_id(id, false),
    ))
}

#[derive(Deserialize)]
struct CreateToken {
    name: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
}

/// `POST /users/{username}/tokens`: Basic auth as that user (Gitea refuses token auth here).
pub(super) async fn create_token(
    State(forge): Shared,
    h: HeaderMap,
    Path(username): Path<String>,
    b: Bytes,
) -> Reply {
    let opt: CreateToken = body(&forge, &b)?;
    let basic = authorization(&h).is_some_and(|v| v.to_ascii_lowercase().starts_with("basic "));
    let uid = Caller(super::authenticate(&forge, &h)?).signed_in(&forge)?;
    let mut s = forge.lock();
    let target = s
        .user_by_login(&username)
        .ok_or_else(|| not_found(&forge))?
        .id;
    if !basic || (uid != target && !is_admin(&s, Some(uid))) {
        return Err(err(
            &forge,
            StatusCode::FORBIDDEN,
            "auth method not allowed",
        ));
    }
    let Some(name) = opt.name.filter(|n| !n.is_empty()) else {
        return Err(unprocessable(&forge, "[Name]: Required"));
    };
    let token = crate::random_token();
    s.add_token(target, &name, &token)
        .map_err(|e| err(&forge, StatusCode::BAD_REQUEST, e.message()))?;
    let id = s.next_id();
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

pub(super) async fn create_org(State(forge): Shared, caller: Caller, b: Bytes) -> Reply {
    let opt: CreateOrg = body(&forge, &b)?;
    caller.signed_in(&forge)?;
    let Some(name) = opt.username.filter(|n| valid_login(n)) else {
        return Err(unprocessable(&forge, "[UserName]: Required"));
    };
    let id = add_user(
        &forge,
        UserRec {
            id: 0,
            login: name.clone(),
            password: None,
            email: String::new(),
            full_name: String::new(),
            is_admin: false,
            is_org: true,
            created: now(),
        },
    )?;
    Ok(json_resp(
        StatusCode::CREATED,
        json!({"id": id, "name": name, "username": name, "full_name": "", "email": "",
               "avatar_url": "", "description": "", "website": "", "location": "",
               "visibility": "public", "repo_admin_change_team_access": false}),
    ))
}

pub(super) async fn org_labels(
    State(forge): Shared,
    _caller: Caller,
    Path(org): Path<String>,
) -> Reply {
    if !forge.lock().user_by_login(&org).is_some_and(|u| u.is_org) {
        return Err(not_found(&forge));
    }
    Ok(json_resp(StatusCode::OK, json!([])))
}
