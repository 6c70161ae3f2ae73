//! Gitea (and Forgejo): the ensure-PR flow of the forge notes.
//!
//! 1. `GET /version`; 1.22+ has `GET /repos/{o}/{r}/pulls/{base}/{head}` and `compare`.
//! 2. Repository, base and head branches, label names → IDs (repo then org labels),
//!    assignees (`GET /assignees`): all checked before any write.
//! 3. Find an open, unmerged PR: on 1.22+ by base/head (which ignores state, so a closed hit
//!    falls back to listing), else page through `GET /pulls?state=open` matching `head.label`.
//! 4. Reuse it (PATCH title/body/labels/assignees when they differ), or skip when the head has
//!    no commits ahead, or `POST /pulls`; on 409 look again and reuse.

use ct_step::http::{ApiClient, segment};
use ct_step::{Result, StepError};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::{Action, MAX_PAGES, Outcome, PrSpec, found, no_branch, unknown};

const PAGE: usize = 50;

#[derive(Debug, Deserialize)]
struct Version {
    version: String,
}

#[derive(Debug, Deserialize)]
struct BranchInfo {
    #[serde(default)]
    label: Option<String>,
    #[serde(rename = "ref", default)]
    git_ref: String,
    #[serde(default)]
    repo: Option<RepoInfo>,
}

#[derive(Debug, Deserialize)]
struct RepoInfo {
    #[serde(default)]
    full_name: String,
}

#[derive(Debug, Deserialize)]
struct Label {
    id: i64,
    name: String,
}

#[derive(Debug, Deserialize)]
struct User {
    login: String,
}

#[derive(Debug, Deserialize)]
struct Pull {
    number: u64,
    html_url: String,
    state: String,
    #[serde(default)]
    merged: bool,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: Option<String>,
    head: BranchInfo,
    base: BranchInfo,
    #[serde(default)]
    labels: Option<Vec<Label>>,
    #[serde(default)]
    assignees: Option<Vec<User>>,
}

#[derive(Debug, Deserialize)]
struct Branch {
    commit: Option<Commit>,
}

#[derive(Debug, Deserialize)]
struct Commit {
    id: String,
}

#[derive(Debug, Deserialize)]
struct Sha {
    sha: String,
}

#[derive(Debug, Deserialize)]
struct Compare {
    total_commits: u64,
}

/// Whether a Gitea version string is at least `maj.min` (`1.22.0+dev-12`, `v1.21.3`, and
/// Forgejo's `7.0.0+gitea-1.21.11` are understood).
pub fn version_at_least(v: &str, maj: u64, min: u64) -> bool {
    let v = v.split("+gitea-").nth(1).unwrap_or(v);
    let mut it = v
        .trim()
        .trim_start_matches('v')
        .split(['.', '-', '+'])
        .map(|p| p.parse::<u64>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0)) >= (maj, min)
}

/// Whether `p` is the open, unmerged PR from `spec.head` to `spec.base` in `spec.repo`.
fn matches(p: &Pull, spec: &PrSpec) -> bool {
    let owner_label = format!("{}:{}", spec.repo.owner, spec.head);
    let label = p.head.label.as_deref().unwrap_or(&p.head.git_ref);
    let head_ok = label == spec.head
        || label.eq_ignore_ascii_case(&owner_label)
        || p.head.git_ref == spec.head;
    let repo_ok = p.head.repo.as_ref().is_none_or(|r| {
        r.full_name.is_empty() || r.full_name.eq_ignore_ascii_case(&spec.repo.full_name())
    });
    p.state == "open" && !p.merged && p.base.git_ref == spec.base && head_ok && repo_ok
}

struct Ctx<'a> {
    c: &'a ApiClient,
    spec: &'a PrSpec,
    repo: String,
    modern: bool,
}

/// See the module docs.
pub async fn ensure(c: &ApiClient, spec: &PrSpec) -> Result<Outcome> {
    let resp = c.get("/version").send().await?;
    let version = match found::<Version>(resp)? {
        Some(v) => v.version,
        None => {
            return Err(StepError::usage(format!(
                "--api-url {}: GET /version is 404, not a Gitea API root; use https://HOST/api/v1",
                c.base_url()
            )));
        }
    };
    let modern = version_at_least(&version, 1, 22);
    tracing::debug!(
        "Gitea {version}: base/head lookup {}",
        if modern { "available" } else { "unavailable" }
    );
    let ctx = Ctx {
        c,
        spec,
        repo: format!(
            "/repos/{}/{}",
            segment(&spec.repo.owner),
            segment(&spec.repo.name)
        ),
        modern,
    };

    if found::<Value>(c.get(&ctx.repo).send().await?)?.is_none() {
        return Err(StepError::usage(format!(
            "--repo {}: repository not found at {} (or the token cannot see it)",
            spec.repo,
            c.base_url()
        )));
    }
    let base_sha = ctx.branch_sha("--base", &spec.base).await?;
    let head_sha = ctx.branch_sha("--head", &spec.head).await?;
    let label_ids = ctx.label_ids().await?;
    ctx.check_assignees().await?;

    if let Some(p) = ctx.find_open().await? {
        return ctx.reuse(p, &label_ids).await;
    }
    if !ctx.ahead(&base_sha, &head_sha).await? {
        tracing::info!(
            "{} has no commits ahead of {}: no pull request opened",
            spec.head,
            spec.base
        );
        return Ok(Outcome::skipped());
    }
    let mut body = json!({
        "head": spec.head,
        "base": spec.base,
        "title": spec.title,
        "body": spec.body,
    });
    if !spec.assignees.is_empty() {
        body["assignees"] = json!(spec.assignees);
    }
    if !label_ids.is_empty() {
        body["labels"] = json!(label_ids);
    }
    let resp = c
        .post(&format!("{}/pulls", ctx.repo))
        .json(&body)
        .send()
        .await?;
    match resp.status.as_u16() {
        201 | 200 => {
            let p: Pull = resp.json()?;
            tracing::info!("created pull request #{}", p.number);
            Ok(Outcome::pr(Action::Created, p.number, p.html_url))
        }
        409 => {
            tracing::info!(
                "another client created the pull request first: {}",
                resp.server_message()
            );
            match ctx.find_open().await? {
                Some(p) => ctx.reuse(p, &label_ids).await,
                None => Err(resp
                    .error()
                    .context("the server reports an open pull request that cannot be found")),
            }
        }
        _ => Err(resp.error()),
    }
}

impl Ctx<'_> {
    async fn branch_sha(&self, flag: &str, branch: &str) -> Result<String> {
        let path = format!("{}/branches/{}", self.repo, segment(branch));
        match found::<Branch>(self.c.get(&path).send().await?)? {
            Some(b) => Ok(b.commit.map(|c| c.id).unwrap_or_default()),
            None => Err(no_branch(flag, branch, &self.spec.repo)),
        }
    }

    /// Every page of a list endpoint (stops at an empty or repeated page).
    async fn list<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Option<Vec<T>>> {
        let mut all = Vec::new();
        let mut last_len = usize::MAX;
        let mut last_first = String::new();
        for page in 1..=MAX_PAGES {
            let mut rb = self.c.get(path).query("page", page).query("limit", PAGE);
            for (k, v) in query {
                rb = rb.query(k, v);
            }
            let Some(items) = found::<Vec<Value>>(rb.send().await?)? else {
                return Ok(if page == 1 { None } else { Some(all) });
            };
            let first = items.first().map(|v| v.to_string()).unwrap_or_default();
            if items.is_empty() || (items.len() == last_len && first == last_first) {
                break;
            }
            last_len = items.len();
            last_first = first;
            for v in items {
                all.push(
                    serde_json::from_value(v).map_err(|e| {
                        StepError::remote(format!("GET {path}: unexpected item: {e}"))
                    })?,
                );
            }
        }
        Ok(Some(all))
    }

    async fn label_ids(&self) -> Result<Vec<i64>> {
        if self.spec.labels.is_empty() {
            return Ok(Vec::new());
        }
        let mut known: Vec<Label> = self
            .list(&format!("{}/labels", self.repo), &[])
            .await?
            .unwrap_or_default();
        let resolve = |known: &[Label]| -> (Vec<i64>, Vec<String>) {
            let mut ids = Vec::new();
            let mut missing = Vec::new();
            for name in &self.spec.labels {
                match known
                    .iter()
                    .find(|l| &l.name == name)
                    .or_else(|| known.iter().find(|l| l.name.eq_ignore_ascii_case(name)))
                {
                    Some(l) if !ids.contains(&l.id) => ids.push(l.id),
                    Some(_) => {}
                    None => missing.push(name.clone()),
                }
            }
            (ids, missing)
        };
        let (ids, missing) = resolve(&known);
        if missing.is_empty() {
            return Ok(ids);
        }
        // Organization labels apply to the org's repositories too.
        let org_path = format!("/orgs/{}/labels", segment(&self.spec.repo.owner));
        known.extend(
            self.list::<Label>(&org_path, &[])
                .await?
                .unwrap_or_default(),
        );
        let (ids, missing) = resolve(&known);
        if missing.is_empty() {
            return Ok(ids);
        }
        let names: Vec<String> = known.into_iter().map(|l| l.name).collect();
        Err(unknown(
            "--label",
            &missing,
            &self.spec.repo,
            "label",
            &names,
        ))
    }

    async fn check_assignees(&self) -> Result<()> {
        if self.spec.assignees.is_empty() {
            return Ok(());
        }
        let users: Vec<User> = self
            .c
            .get(&format!("{}/assignees", self.repo))
            .send_json()
            .await?;
        let missing: Vec<String> = self
            .spec
            .assignees
            .iter()
            .filter(|a| !users.iter().any(|u| u.login.eq_ignore_ascii_case(a)))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = users.into_iter().map(|u| u.login).collect();
        Err(unknown(
            "--assignee",
            &missing,
            &self.spec.repo,
            "assignable user",
            &names,
        ))
    }

    async fn find_open(&self) -> Result<Option<Pull>> {
        if self.modern {
            let path = format!(
                "{}/pulls/{}/{}",
                self.repo,
                segment(&self.spec.base),
                segment(&self.spec.head)
            );
            if let Some(p) = found::<Pull>(self.c.get(&path).send().await?)? {
                if matches(&p, self.spec) {
                    return Ok(Some(p));
                }
                tracing::debug!(
                    "pulls/{{base}}/{{head}} returned #{} ({}), listing open PRs",
                    p.number,
                    p.state
                );
            }
        }
        let pulls: Vec<Pull> = self
            .list(
                &format!("{}/pulls", self.repo),
                &[("state", "open"), ("base_branch", &self.spec.base)],
            )
            .await?
            .unwrap_or_default();
        Ok(pulls.into_iter().find(|p| matches(p, self.spec)))
    }

    /// Whether head has commits base has not. Pre-1.22 servers have no compare: there a head
    /// among the last [`PAGE`] commits of the base counts as behind (nothing to merge), any
    /// other head as ahead.
    async fn ahead(&self, base_sha: &str, head_sha: &str) -> Result<bool> {
        if !head_sha.is_empty() && head_sha == base_sha {
            return Ok(false);
        }
        if !self.modern {
            let resp = self
                .c
                .get(&format!("{}/commits", self.repo))
                .query("sha", &self.spec.base)
                .query("limit", PAGE)
                .query("stat", "false")
                .query("verification", "false")
                .query("files", "false")
                .send()
                .await?;
            if !resp.is_success() {
                return Ok(true);
            }
            let commits: Vec<Sha> = resp.json()?;
            return Ok(!commits.iter().any(|c| c.sha == head_sha));
        }
        let path = format!(
            "{}/compare/{}...{}",
            self.repo,
            segment(&self.spec.base),
            segment(&self.spec.head)
        );
        Ok(match found::<Compare>(self.c.get(&path).send().await?)? {
            Some(cmp) => cmp.total_commits > 0,
            None => true,
        })
    }

    /// Bring an existing PR up to date and report it.
    async fn reuse(&self, p: Pull, label_ids: &[i64]) -> Result<Outcome> {
        let spec = self.spec;
        let mut patch = Map::new();
        if p.title != spec.title {
            patch.insert("title".into(), json!(spec.title));
        }
        if p.body.as_deref().unwrap_or("") != spec.body {
            patch.insert("body".into(), json!(spec.body));
        }
        let have_labels: Vec<i64> = p.labels.iter().flatten().map(|l| l.id).collect();
        if label_ids.iter().any(|id| !have_labels.contains(id)) {
            let mut all = have_labels.clone();
            all.extend(label_ids.iter().filter(|id| !have_labels.contains(id)));
            patch.insert("labels".into(), json!(all));
        }
        let have_users: Vec<String> = p
            .assignees
            .iter()
            .flatten()
            .map(|u| u.login.clone())
            .collect();
        if spec
            .assignees
            .iter()
            .any(|a| !have_users.iter().any(|u| u.eq_ignore_ascii_case(a)))
        {
            let mut all = have_users.clone();
            all.extend(
                spec.assignees
                    .iter()
                    .filter(|a| !have_users.iter().any(|u| u.eq_ignore_ascii_case(a)))
                    .cloned(),
            );
            patch.insert("assignees".into(), json!(all));
        }
        if !patch.is_empty() {
            let keys: Vec<&str> = patch.keys().map(String::as_str).collect();
            tracing::info!("updating pull request #{}: {}", p.number, keys.join(", "));
            self.c
                .patch(&format!("{}/pulls/{}", self.repo, p.number))
                .json(&Value::Object(patch))
                .send_ok()
                .await?;
        } else {
            tracing::info!("pull request #{} is already up to date", p.number);
        }
        Ok(Outcome::pr(Action::Existing, p.number, p.html_url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(version_at_least("1.22.0", 1, 22));
        assert!(version_at_least("1.25.3", 1, 22));
        assert!(version_at_least("v1.22.0+dev-100-gabc", 1, 22));
        assert!(!version_at_least("1.21.11", 1, 22));
        assert!(!version_at_least("7.0.0+gitea-1.21.11", 1, 22));
        assert!(version_at_least("9.0.0+gitea-1.22.0", 1, 22));
        assert!(version_at_least("2.0.0", 1, 22));
        assert!(!version_at_least("garbage", 1, 22));
    }

    fn spec() -> PrSpec {
        PrSpec {
            repo: crate::RepoRef::parse("user1/gitops", false).unwrap(),
            head: "jukebox-1.0.1".into(),
            base: "main".into(),
            title: "t".into(),
            body: String::new(),
            assignees: vec![],
            labels: vec![],
        }
    }

    fn pull(v: Value) -> Pull {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn only_open_unmerged_same_branches_match() {
        let base = json!({"label": "main", "ref": "main"});
        let ok = pull(
            json!({"number": 1, "html_url": "u", "state": "open", "merged": false,
            "head": {"label": "jukebox-1.0.1", "ref": "jukebox-1.0.1", "repo": {"full_name": "user1/gitops"}},
            "base": base}),
        );
        assert!(matches(&ok, &spec()));
        let closed = pull(
            json!({"number": 1, "html_url": "u", "state": "closed", "merged": false,
            "head": {"label": "jukebox-1.0.1", "ref": "jukebox-1.0.1"}, "base": base}),
        );
        assert!(!matches(&closed, &spec()));
        let merged = pull(
            json!({"number": 1, "html_url": "u", "state": "open", "merged": true,
            "head": {"label": "jukebox-1.0.1", "ref": "jukebox-1.0.1"}, "base": base}),
        );
        assert!(!matches(&merged, &spec()));
        // Deleted head branch: ref is refs/pull/N/head, the label still names the branch.
        let deleted = pull(json!({"number": 1, "html_url": "u", "state": "open",
            "head": {"label": "jukebox-1.0.1", "ref": "refs/pull/1/head", "repo_id": -1, "repo": null}, "base": base}));
        assert!(matches(&deleted, &spec()));
        let fork = pull(json!({"number": 1, "html_url": "u", "state": "open",
            "head": {"label": "mallory:jukebox-1.0.1", "ref": "jukebox-1.0.1", "repo": {"full_name": "mallory/gitops"}}, "base": base}));
        assert!(!matches(&fork, &spec()));
        let other_base = pull(json!({"number": 1, "html_url": "u", "state": "open",
            "head": {"label": "jukebox-1.0.1", "ref": "jukebox-1.0.1"}, "base": {"label": "dev", "ref": "dev"}}));
        assert!(!matches(&other_base, &spec()));
    }
}
