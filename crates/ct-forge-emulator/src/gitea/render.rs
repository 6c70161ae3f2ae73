//! Records rendered as Gitea JSON (`User`, `Repository`, `Label`, `PullRequest`, `Hook`,
//! `PayloadCommit`, `Commit`, `Branch`), for the API and the webhook payloads.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::git::CommitInfo;
use crate::store::{HookRec, LabelRec, PullRec, RepoRec, Store, UserRec};

/// Append the keys of `b` to object `a` (keeps order).
fn merge_objects(mut a: Value, b: Value) -> Value {
    if let (Value::Object(a), Value::Object(b)) = (&mut a, b) {
        a.extend(b);
    }
    a
}

/// Renders records as Gitea JSON. `base` is the forge's root URL without a trailing slash.
pub struct Gitea<'a> {
    pub store: &'a Store,
    pub base: &'a str,
}

impl Gitea<'_> {
    pub fn host(&self) -> &str {
        self.base
            .split("://")
            .nth(1)
            .unwrap_or(self.base)
            .split('/')
            .next()
            .unwrap_or("")
    }

    /// Gitea's `User` (also used for organizations' owner objects). In webhook payloads the
    /// e-mail is the no-reply placeholder.
    pub fn user(&self, u: &UserRec, private_email: bool) -> Value {
        let email = if private_email {
            format!("{}@noreply.{}", u.login, self.host())
        } else {
            u.email.clone()
        };
        json!({
            "id": u.id,
            "login": u.login,
            "login_name": "",
            "source_id": 0,
            "full_name": u.full_name,
            "email": email,
            "avatar_url": format!("{}/avatars/{:032x}", self.base, u.id),
            "html_url": format!("{}/{}", self.base, u.login),
            "language": "",
            "is_admin": u.is_admin,
            "last_login": "0001-01-01T00:00:00Z",
            "created": u.created,
            "restricted": false,
            "active": false,
            "prohibit_login": false,
            "location": "",
            "website": "",
            "description": "",
            "visibility": "public",
            "followers_count": 0,
            "following_count": 0,
            "starred_repos_count": 0,
            "username": u.login,
        })
    }

    pub fn user_id(&self, id: i64, private_email: bool) -> Value {
        match self.store.user(id) {
            Some(u) => self.user(u, private_email),
            None => Value::Null,
        }
    }

    /// Gitea's `Repository`. `branches` decides `empty`.
    pub fn repo(&self, r: &RepoRec, admin: bool, empty: bool, private_email: bool) -> Value {
        let owner = self.store.owner_login(r);
        let full = format!("{owner}/{}", r.name);
        let open_prs = r.pulls.iter().filter(|p| p.open).count();
        let first = json!({
            "id": r.id,
            "owner": self.user_id(r.owner_id, private_email),
            "name": r.name,
            "full_name": full,
            "description": r.description,
            "empty": empty,
            "private": r.private,
            "fork": false,
            "template": false,
            "mirror": false,
            "size": 0,
            "language": "",
            "languages_url": format!("{}/api/v1/repos/{full}/languages", self.base),
            "html_url": format!("{}/{full}", self.base),
            "url": format!("{}/api/v1/repos/{full}", self.base),
            "link": "",
            "ssh_url": format!("ssh://git@{}/{full}.git", self.host()),
            "clone_url": format!("{}/{full}.git", self.base),
            "original_url": "",
            "website": "",
            "stars_count": 0,
            "forks_count": 0,
            "watchers_count": 1,
            "open_issues_count": r.issues.len(),
            "open_pr_counter": open_prs,
            "release_counter": 0,
            "default_branch": r.default_branch,
            "archived": false,
            "created_at": r.created,
            "updated_at": r.updated,
            "archived_at": "1970-01-01T00:00:00Z",
            "permissions": {"admin": admin, "push": admin, "pull": true},
        });
        let more = json!({
            "has_code": true,
            "has_issues": true,
            "internal_tracker": {
                "enable_time_tracker": true,
                "allow_only_contributors_to_track_time": true,
                "enable_issue_dependencies": true
            },
            "has_wiki": true,
            "has_pull_requests": true,
            "has_projects": true,
            "projects_mode": "all",
            "has_releases": true,
            "has_packages": true,
            "has_actions": false,
            "ignore_whitespace_conflicts": false,
            "allow_merge_commits": true,
            "allow_rebase": true,
            "allow_rebase_explicit": true,
            "allow_squash_merge": true,
            "allow_fast_forward_only_merge": true,
            "allow_rebase_update": true,
            "allow_manual_merge": false,
            "autodetect_manual_merge": false,
            "default_delete_branch_after_merge": false,
            "default_merge_style": "merge",
            "default_allow_maintainer_edit": false,
            "avatar_url": "",
            "internal": false,
            "mirror_interval": "",
            "object_format_name": "sha1",
            "mirror_updated": "0001-01-01T00:00:00Z",
            "topics": [],
            "licenses": []
        });
        merge_objects(first, more)
    }

    pub fn label(&self, r: &RepoRec, l: &LabelRec) -> Value {
        json!({
            "id": l.id,
            "name": l.name,
            "exclusive": false,
            "is_archived": false,
            "color": l.color,
            "description": l.description,
            "url": format!("{}/api/v1/repos/{}/labels/{}", self.base, self.store.full_name(r), l.id),
        })
    }

    /// Gitea's `PullRequest`. `branches` maps branch names to tips; a PR whose head branch is
    /// gone reports `refs/pull/N/head` and repo_id -1, as Gitea does.
    pub fn pull(&self, r: &RepoRec, p: &PullRec, branches: &BTreeMap<String, String>) -> Value {
        let full = self.store.full_name(r);
        let repo_json = self.repo(r, false, branches.is_empty(), false);
        let pull_ref = format!("refs/pull/{}/head", p.number);
        let (head_ref, head_sha, head_repo_id, head_repo) = match branches.get(&p.head) {
            Some(sha) => (p.head.clone(), sha.clone(), r.id, repo_json.clone()),
            None => (pull_ref, String::new(), -1, Value::Null),
        };
        let base_sha = branches.get(&p.base).cloned().unwrap_or_default();
        let labels: Vec<Value> = p
            .labels
            .iter()
            .filter_map(|id| r.labels.iter().find(|l| l.id == *id))
            .map(|l| self.label(r, l))
            .collect();
        let assignees: Vec<Value> = p
            .assignees
            .iter()
            .map(|id| self.user_id(*id, false))
            .collect();
        let state = if p.open { "open" } else { "closed" };
        json!({
            "id": p.id,
            "url": format!("{}/{full}/pulls/{}", self.base, p.number),
            "number": p.number,
            "user": self.user_id(p.poster, false),
            "title": p.title,
            "body": p.body,
            "labels": labels,
            "milestone": null,
            "assignee": assignees.first().cloned().unwrap_or(Value::Null),
            "assignees": if assignees.is_empty() { Value::Null } else { Value::Array(assignees) },
            "requested_reviewers": null,
            "requested_reviewers_teams": null,
            "state": state,
            "draft": false,
            "is_locked": false,
            "comments": 0,
            "review_comments": 0,
            "additions": 0,
            "deletions": 0,
            "changed_files": 0,
            "html_url": format!("{}/{full}/pulls/{}", self.base, p.number),
            "diff_url": format!("{}/{full}/pulls/{}.diff", self.base, p.number),
            "patch_url": format!("{}/{full}/pulls/{}.patch", self.base, p.number),
            "mergeable": p.open,
            "merged": p.merged,
            "merged_at": p.merged_at,
            "merge_commit_sha": p.merge_commit,
            "merged_by": null,
            "allow_maintainer_edit": false,
            "base": {
                "label": p.base,
                "ref": p.base,
                "sha": base_sha,
                "repo_id": r.id,
                "repo": repo_json,
            },
            "head": {
                "label": p.head,
                "ref": head_ref,
                "sha": head_sha,
                "repo_id": head_repo_id,
                "repo": head_repo,
            },
            "merge_base": base_sha,
            "due_date": null,
            "created_at": p.created,
            "updated_at": p.updated,
            "closed_at": p.closed_at,
            "pin_order": 0
        })
    }

    pub fn hook(&self, h: &HookRec) -> Value {
        json!({
            "id": h.id,
            "type": "gitea",
            "branch_filter": "*",
            "config": {"content_type": h.content_type, "url": h.url, "http_method": "post"},
            "events": h.events,
            "authorization_header": "",
            "active": h.active,
            "updated_at": h.created,
            "created_at": h.created,
        })
    }
}

/// Gitea's `PayloadCommit` for a commit.
pub fn payload_commit(base: &str, full: &str, c: &CommitInfo) -> Value {
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

/// Gitea's `Commit` (without `stats` and `files`).
pub fn commit(base: &str, full: &str, c: &CommitInfo) -> Value {
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

/// Gitea's `Branch` with its tip commit (`commit` is null when it cannot be read).
pub fn branch(name: &str, commit: Value, can_push: bool) -> Value {
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
