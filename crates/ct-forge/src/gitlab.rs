//! GitLab merge requests: the project by URL-encoded path, find with
//! `GET /merge_requests?state=opened&source_branch=…&target_branch=…`, skip when `compare`
//! lists no commits, create with numeric `assignee_ids` (looked up by user name) and label
//! names (checked first: GitLab would silently create an unknown label), and treat 409
//! "Another open merge request already exists" as a lost race.

use ct_step::http::{ApiClient, segment};
use ct_step::{Result, StepError};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::{Action, MAX_PAGES, Outcome, PrSpec, found, no_branch, unknown};

#[derive(Debug, Deserialize)]
struct Project {
    id: u64,
}

#[derive(Debug, Deserialize)]
struct User {
    id: u64,
    username: String,
}

#[derive(Debug, Deserialize)]
struct Label {
    name: String,
}

#[derive(Debug, Deserialize)]
struct Mr {
    iid: u64,
    web_url: String,
    state: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: Option<String>,
    source_branch: String,
    target_branch: String,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    assignees: Vec<User>,
}

#[derive(Debug, Deserialize)]
struct Compare {
    #[serde(default)]
    commits: Vec<Value>,
}

struct Ctx<'a> {
    c: &'a ApiClient,
    spec: &'a PrSpec,
    project: String,
}

/// See the module docs.
pub async fn ensure(c: &ApiClient, spec: &PrSpec) -> Result<Outcome> {
    let path = format!("/projects/{}", segment(&spec.repo.full_name()));
    let Some(project) = found::<Project>(c.get(&path).send().await?)? else {
        return Err(StepError::usage(format!(
            "--repo {}: project not found at {} (or the token cannot see it)",
            spec.repo,
            c.base_url()
        )));
    };
    let ctx = Ctx {
        c,
        spec,
        project: format!("/projects/{}", project.id),
    };
    for (flag, b) in [("--base", &spec.base), ("--head", &spec.head)] {
        let path = format!("{}/repository/branches/{}", ctx.project, segment(b));
        if found::<Value>(c.get(&path).send().await?)?.is_none() {
            return Err(no_branch(flag, b, &spec.repo));
        }
    }
    ctx.check_labels().await?;
    let assignee_ids = ctx.assignee_ids().await?;
    if let Some(mr) = ctx.find_open().await? {
        return ctx.reuse(mr, &assignee_ids).await;
    }
    let cmp: Compare = c
        .get(&format!("{}/repository/compare", ctx.project))
        .query("from", &spec.base)
        .query("to", &spec.head)
        .query("straight", "false")
        .send_json()
        .await?;
    if cmp.commits.is_empty() {
        tracing::info!(
            "{} has no commits ahead of {}: no merge request opened",
            spec.head,
            spec.base
        );
        return Ok(Outcome::skipped());
    }
    let mut body = json!({
        "source_branch": spec.head,
        "target_branch": spec.base,
        "title": spec.title,
        "description": spec.body,
    });
    if !assignee_ids.is_empty() {
        body["assignee_ids"] = json!(assignee_ids);
    }
    if !spec.labels.is_empty() {
        body["labels"] = json!(spec.labels.join(","));
    }
    let resp = c
        .post(&format!("{}/merge_requests", ctx.project))
        .json(&body)
        .send()
        .await?;
    match resp.status.as_u16() {
        201 | 200 => {
            let mr: Mr = resp.json()?;
            tracing::info!("created merge request !{}", mr.iid);
            Ok(Outcome::pr(Action::Created, mr.iid, mr.web_url))
        }
        409 => {
            tracing::info!(
                "another client created the merge request first: {}",
                resp.server_message()
            );
            match ctx.find_open().await? {
                Some(mr) => ctx.reuse(mr, &assignee_ids).await,
                None => Err(resp
                    .error()
                    .context("the server reports an open merge request that cannot be found")),
            }
        }
        _ => Err(resp.error()),
    }
}

impl Ctx<'_> {
    async fn check_labels(&self) -> Result<()> {
        if self.spec.labels.is_empty() {
            return Ok(());
        }
        let mut known: Vec<String> = Vec::new();
        for page in 1..=MAX_PAGES {
            let labels: Vec<Label> = self
                .c
                .get(&format!("{}/labels", self.project))
                .query("per_page", 100)
                .query("page", page)
                .send_json()
                .await?;
            let n = labels.len();
            known.extend(labels.into_iter().map(|l| l.name));
            if n < 100 {
                break;
            }
        }
        let missing: Vec<String> = self
            .spec
            .labels
            .iter()
            .filter(|l| !known.contains(l))
            .cloned()
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(unknown(
                "--label",
                &missing,
                &self.spec.repo,
                "label",
                &known,
            ))
        }
    }

    async fn assignee_ids(&self) -> Result<Vec<u64>> {
        let mut ids = Vec::new();
        let mut missing = Vec::new();
        for name in &self.spec.assignees {
            let users: Vec<User> = self
                .c
                .get("/users")
                .query("username", name)
                .send_json()
                .await?;
            match users
                .into_iter()
                .find(|u| u.username.eq_ignore_ascii_case(name))
            {
                Some(u) if !ids.contains(&u.id) => ids.push(u.id),
                Some(_) => {}
                None => missing.push(name.clone()),
            }
        }
        if missing.is_empty() {
            Ok(ids)
        } else {
            Err(unknown(
                "--assignee",
                &missing,
                &self.spec.repo,
                "user",
                &[],
            ))
        }
    }

    async fn find_open(&self) -> Result<Option<Mr>> {
        for page in 1..=MAX_PAGES {
            let mrs: Vec<Mr> = self
                .c
                .get(&format!("{}/merge_requests", self.project))
                .query("state", "opened")
                .query("source_branch", &self.spec.head)
                .query("target_branch", &self.spec.base)
                .query("per_page", 100)
                .query("page", page)
                .send_json()
                .await?;
            let n = mrs.len();
            if let Some(mr) = mrs.into_iter().find(|m| {
                m.state == "opened"
                    && m.source_branch == self.spec.head
                    && m.target_branch == self.spec.base
            }) {
                return Ok(Some(mr));
            }
            if n < 100 {
                break;
            }
        }
        Ok(None)
    }

    async fn reuse(&self, mr: Mr, assignee_ids: &[u64]) -> Result<Outcome> {
        let spec = self.spec;
        let mut put = Map::new();
        if mr.title != spec.title {
            put.insert("title".into(), json!(spec.title));
        }
        if mr.description.as_deref().unwrap_or("") != spec.body {
            put.insert("description".into(), json!(spec.body));
        }
        let add: Vec<&String> = spec
            .labels
            .iter()
            .filter(|l| !mr.labels.contains(l))
            .collect();
        if !add.is_empty() {
            put.insert(
                "add_labels".into(),
                json!(add.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")),
            );
        }
        let have: Vec<u64> = mr.assignees.iter().map(|u| u.id).collect();
        if assignee_ids.iter().any(|id| !have.contains(id)) {
            let mut all = have.clone();
            all.extend(assignee_ids.iter().filter(|id| !have.contains(id)));
            put.insert("assignee_ids".into(), json!(all));
        }
        if !put.is_empty() {
            self.c
                .put(&format!("{}/merge_requests/{}", self.project, mr.iid))
                .json(&Value::Object(put))
                .send_ok()
                .await?;
        }
        Ok(Outcome::pr(Action::Existing, mr.iid, mr.web_url))
    }
}
