//! GitHub: find with `GET /pulls?state=open&head=OWNER:BRANCH&base=BASE` (without the owner
//! prefix GitHub silently ignores `head`), skip when `compare` says the head is not ahead,
//! create, and treat 422 "A pull request already exists" as a lost race. Labels and assignees
//! go through the issues API after the PR exists; both are checked first (GitHub would
//! silently create an unknown label).

use ct_step::http::{ApiClient, segment};
use ct_step::{Result, StepError};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::{Action, MAX_PAGES, Outcome, PrSpec, found, no_branch, unknown};

#[derive(Debug, Deserialize)]
struct Ref {
    #[serde(rename = "ref")]
    git_ref: String,
    #[serde(default)]
    repo: Option<Repo>,
}

#[derive(Debug, Deserialize)]
struct Repo {
    full_name: String,
}

#[derive(Debug, Deserialize)]
struct Named {
    #[serde(alias = "login")]
    name: String,
}

#[derive(Debug, Deserialize)]
struct Pull {
    number: u64,
    html_url: String,
    state: String,
    #[serde(default)]
    merged_at: Option<String>,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: Option<String>,
    head: Ref,
    base: Ref,
    #[serde(default)]
    labels: Vec<Named>,
    #[serde(default)]
    assignees: Vec<Named>,
}

#[derive(Debug, Deserialize)]
struct Compare {
    ahead_by: u64,
}

fn matches(p: &Pull, spec: &PrSpec) -> bool {
    p.state == "open"
        && p.merged_at.is_none()
        && p.head.git_ref == spec.head
        && p.base.git_ref == spec.base
        && p.head
            .repo
            .as_ref()
            .is_none_or(|r| r.full_name.eq_ignore_ascii_case(&spec.repo.full_name()))
}

struct Ctx<'a> {
    c: &'a ApiClient,
    spec: &'a PrSpec,
    repo: String,
}

/// See the module docs.
pub async fn ensure(c: &ApiClient, spec: &PrSpec) -> Result<Outcome> {
    let ctx = Ctx {
        c,
        spec,
        repo: format!(
            "/repos/{}/{}",
            segment(&spec.repo.owner),
            segment(&spec.repo.name)
        ),
    };
    if found::<Value>(c.get(&ctx.repo).send().await?)?.is_none() {
        return Err(StepError::usage(format!(
            "--repo {}: repository not found at {} (or the token cannot see it)",
            spec.repo,
            c.base_url()
        )));
    }
    for (flag, b) in [("--base", &spec.base), ("--head", &spec.head)] {
        let path = format!("{}/branches/{}", ctx.repo, segment(b));
        if found::<Value>(c.get(&path).send().await?)?.is_none() {
            return Err(no_branch(flag, b, &spec.repo));
        }
    }
    ctx.check_names().await?;
    if let Some(p) = ctx.find_open().await? {
        return ctx.reuse(p, Action::Existing).await;
    }
    let cmp_path = format!(
        "{}/compare/{}...{}",
        ctx.repo,
        segment(&spec.base),
        segment(&spec.head)
    );
    if let Some(cmp) = found::<Compare>(c.get(&cmp_path).send().await?)?
        && cmp.ahead_by == 0
    {
        {
            tracing::info!(
                "{} has no commits ahead of {}: no pull request opened",
                spec.head,
                spec.base
            );
            return Ok(Outcome::skipped());
        }
    }
    let body =
        json!({"title": spec.title, "head": spec.head, "base": spec.base, "body": spec.body});
    let resp = c
        .post(&format!("{}/pulls", ctx.repo))
        .json(&body)
        .send()
        .await?;
    match resp.status.as_u16() {
        201 | 200 => {
            let p: Pull = resp.json()?;
            tracing::info!("created pull request #{}", p.number);
            ctx.reuse(p, Action::Created).await
        }
        422 if resp.server_message().contains("already exists") => {
            tracing::info!(
                "another client created the pull request first: {}",
                resp.server_message()
            );
            match ctx.find_open().await? {
                Some(p) => ctx.reuse(p, Action::Existing).await,
                None => Err(resp
                    .error()
                    .context("the server reports an open pull request that cannot be found")),
            }
        }
        422 if resp.server_message().contains("No commits between") => {
            tracing::info!("{}", resp.server_message());
            Ok(Outcome::skipped())
        }
        _ => Err(resp.error()),
    }
}

impl Ctx<'_> {
    /// Every label and assignee must exist before anything is written.
    async fn check_names(&self) -> Result<()> {
        let mut missing = Vec::new();
        for l in &self.spec.labels {
            let path = format!("{}/labels/{}", self.repo, segment(l));
            if found::<Value>(self.c.get(&path).send().await?)?.is_none() {
                missing.push(l.clone());
            }
        }
        if !missing.is_empty() {
            return Err(unknown("--label", &missing, &self.spec.repo, "label", &[]));
        }
        for a in &self.spec.assignees {
            let path = format!("{}/assignees/{}", self.repo, segment(a));
            let resp = self.c.get(&path).send().await?;
            match resp.status.as_u16() {
                204 | 200 => {}
                404 => missing.push(a.clone()),
                _ => return Err(resp.error()),
            }
        }
        if !missing.is_empty() {
            return Err(unknown(
                "--assignee",
                &missing,
                &self.spec.repo,
                "assignable user",
                &[],
            ));
        }
        Ok(())
    }

    async fn find_open(&self) -> Result<Option<Pull>> {
        let head = format!("{}:{}", self.spec.repo.owner, self.spec.head);
        for page in 1..=MAX_PAGES {
            let pulls: Vec<Pull> = self
                .c
                .get(&format!("{}/pulls", self.repo))
                .query("state", "open")
                .query("head", &head)
                .query("base", &self.spec.base)
                .query("per_page", 100)
                .query("page", page)
                .send_json()
                .await?;
            if pulls.is_empty() {
                break;
            }
            let n = pulls.len();
            if let Some(p) = pulls.into_iter().find(|p| matches(p, self.spec)) {
                return Ok(Some(p));
            }
            if n < 100 {
                break;
            }
        }
        Ok(None)
    }

    /// Bring title/body up to date and add missing labels and assignees.
    async fn reuse(&self, p: Pull, action: Action) -> Result<Outcome> {
        let spec = self.spec;
        let mut patch = Map::new();
        if p.title != spec.title {
            patch.insert("title".into(), json!(spec.title));
        }
        if p.body.as_deref().unwrap_or("") != spec.body {
            patch.insert("body".into(), json!(spec.body));
        }
        if !patch.is_empty() {
            self.c
                .patch(&format!("{}/pulls/{}", self.repo, p.number))
                .json(&Value::Object(patch))
                .send_ok()
                .await?;
        }
        let labels: Vec<&String> = spec
            .labels
            .iter()
            .filter(|l| !p.labels.iter().any(|h| h.name.eq_ignore_ascii_case(l)))
            .collect();
        if !labels.is_empty() {
            self.c
                .post(&format!("{}/issues/{}/labels", self.repo, p.number))
                .json(&json!({"labels": labels}))
                .send_ok()
                .await?;
        }
        let assignees: Vec<&String> = spec
            .assignees
            .iter()
            .filter(|a| !p.assignees.iter().any(|h| h.name.eq_ignore_ascii_case(a)))
            .collect();
        if !assignees.is_empty() {
            self.c
                .post(&format!("{}/issues/{}/assignees", self.repo, p.number))
                .json(&json!({"assignees": assignees}))
                .send_ok()
                .await?;
        }
        Ok(Outcome::pr(action, p.number, p.html_url))
    }
}
