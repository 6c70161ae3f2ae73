//! The handle's seeding and inspection: users and tokens, repositories, commits and
//! branches, labels, collaborators, hooks, pull requests, webhook deliveries.

use std::path::{Path, PathBuf};

use ct_emulator::{Error, Result};

use crate::store::{HookRec, PullRec, UserRec, now};
use crate::{Branches, Delivery, ForgeEmulator, Pull, Repo, User, git, random_token, repos};

impl ForgeEmulator {
    /// Gitea API root: `{base}/api/v1`.
    pub fn api_url(&self) -> String {
        format!("{}/api/v1", self.forge.base)
    }
    /// GitHub view API root: `{base}/github`.
    pub fn github_api_url(&self) -> String {
        format!("{}/github", self.forge.base)
    }
    /// GitLab view API root: `{base}/gitlab/api/v4`.
    pub fn gitlab_api_url(&self) -> String {
        format!("{}/gitlab/api/v4", self.forge.base)
    }
    /// Directory holding the bare repositories.
    pub fn root(&self) -> &Path {
        &self.forge.root
    }

    /// Change the version the API reports (e.g. `1.21.11` to emulate an old server).
    pub fn set_version(&self, version: &str) {
        self.forge.set_version(version);
    }

    // ---- users and tokens ----

    /// Create a user with a password.
    pub fn create_user(&self, login: &str, password: &str) -> Result<User> {
        self.add_user(login, password, false, false)
    }

    /// Create an organization (an owner that cannot log in).
    pub fn create_org(&self, name: &str) -> Result<User> {
        self.add_user(name, "", false, true)
    }

    pub(crate) fn add_user(
        &self,
        login: &str,
        password: &str,
        admin: bool,
        org: bool,
    ) -> Result<User> {
        repos::valid_name(login)?;
        let id = self.forge.lock().add_user(UserRec {
            id: 0,
            login: login.to_string(),
            password: (!password.is_empty()).then(|| password.to_string()),
            email: format!("{login}@example.com"),
            full_name: String::new(),
            is_admin: admin,
            is_org: org,
            created: now(),
        })?;
        Ok(User {
            id,
            login: login.to_string(),
        })
    }

    /// Issue a new random API token for `login` and return it.
    pub fn create_token(&self, login: &str) -> Result<String> {
        let token = random_token();
        let mut s = self.forge.lock();
        let uid = s.user_id(login)?;
        s.add_token(uid, &format!("token-{}", fastrand::u32(..)), &token)?;
        Ok(token)
    }

    // ---- repositories ----

    /// Create a repository (a bare git repository under the root, default branch `main`).
    /// With `seed`, the files of that directory become the first commit of `main`.
    pub fn create_repo(&self, owner: &str, name: &str, seed: Option<&Path>) -> Result<Repo> {
        let repo = repos::create_repo(&self.forge, owner, name, "", false, "main")?;
        if let Some(src) = seed {
            git::seed(&repo.dir, src, "main", "Initial commit")?;
        }
        Ok(repo)
    }

    /// Let `login` push to and be assigned in `owner/repo`.
    pub fn add_collaborator(&self, owner: &str, repo: &str, login: &str) -> Result<()> {
        let mut s = self.forge.lock();
        let uid = s.user_id(login)?;
        let ri = s.repo(owner, repo)?;
        s.add_collaborator(ri, uid);
        Ok(())
    }

    /// Create a label; returns its ID.
    pub fn create_label(&self, owner: &str, repo: &str, name: &str, color: &str) -> Result<i64> {
        let mut s = self.forge.lock();
        let ri = s.repo(owner, repo)?;
        Ok(s.add_label(ri, name, color, "").id)
    }

    /// Add a push webhook (JSON, signed with `secret`); returns its ID.
    pub fn add_hook(&self, owner: &str, repo: &str, url: &str, secret: &str) -> Result<i64> {
        let mut s = self.forge.lock();
        let ri = s.repo(owner, repo)?;
        let hook = HookRec {
            id: 0,
            url: url.to_string(),
            secret: secret.to_string(),
            content_type: "json".to_string(),
            events: vec!["push".to_string()],
            active: true,
            created: now(),
        };
        Ok(s.add_hook(ri, hook).id)
    }

    /// Open an issue (issues and PRs share one number sequence); returns its number.
    pub fn create_issue(&self, owner: &str, repo: &str) -> Result<i64> {
        let mut s = self.forge.lock();
        let ri = s.repo(owner, repo)?;
        Ok(s.open_issue(ri))
    }

    /// Commit `content` at `path` on `branch` (created from `from` when it does not exist,
    /// or as a root commit when `from` is `None`), directly in the bare repository (no push,
    /// no webhook). Returns the new tip.
    #[allow(clippy::too_many_arguments)] // a flat scripting call reads best in tests
    pub fn commit(
        &self,
        owner: &str,
        repo: &str,
        branch: &str,
        from: Option<&str>,
        path: &str,
        content: &str,
        message: &str,
    ) -> Result<String> {
        let dir = self.repo_dir(owner, repo)?;
        let refname = format!("refs/heads/{branch}");
        let parent = match (git::resolve(&dir, &refname), from) {
            (Some(sha), _) => Some(sha),
            (None, Some(f)) => Some(branch_tip(&dir, f)?),
            (None, None) => None,
        };
        let sha = git::commit_file(&dir, parent.as_deref(), path, content.as_bytes(), message)?;
        git::update_ref(&dir, &refname, &sha)?;
        Ok(sha)
    }

    /// Create `branch` at the tip of `from` (no new commit).
    pub fn create_branch(
        &self,
        owner: &str,
        repo: &str,
        branch: &str,
        from: &str,
    ) -> Result<String> {
        let dir = self.repo_dir(owner, repo)?;
        let sha = branch_tip(&dir, from)?;
        git::update_ref(&dir, &format!("refs/heads/{branch}"), &sha)?;
        Ok(sha)
    }

    /// Delete a branch (no webhook).
    pub fn delete_branch(&self, owner: &str, repo: &str, branch: &str) -> Result<()> {
        let dir = self.repo_dir(owner, repo)?;
        git::delete_ref(&dir, &format!("refs/heads/{branch}"))
    }

    fn repo_dir(&self, owner: &str, repo: &str) -> Result<PathBuf> {
        let s = self.forge.lock();
        let ri = s.repo(owner, repo)?;
        Ok(self.forge.repo_dir_of_locked(&s, ri))
    }

    /// Branch → tip SHA of a repository.
    pub fn branches(&self, owner: &str, repo: &str) -> Branches {
        git::branches(&self.forge.repo_dir(owner, repo))
    }

    // ---- pull requests ----

    /// Open a PR directly (as the repository owner), e.g. to set up a scenario.
    pub fn create_pull(
        &self,
        owner: &str,
        repo: &str,
        head: &str,
        base: &str,
        title: &str,
    ) -> Result<i64> {
        let mut s = self.forge.lock();
        let ri = s.repo(owner, repo)?;
        let poster = s.repos[ri].owner_id;
        match s.create_pull(ri, PullRec::new(poster, head, base, title, "")) {
            Ok(pi) => Ok(s.repos[ri].pulls[pi].number),
            Err(pi) => Err(Error::already_exists(format!(
                "pull request #{} already open for {head} → {base}",
                s.repos[ri].pulls[pi].number
            ))),
        }
    }

    /// Close a PR without merging.
    pub fn close_pull(&self, owner: &str, repo: &str, number: i64) -> Result<()> {
        let mut s = self.forge.lock();
        let ri = s.repo(owner, repo)?;
        let pi = s.pull(ri, number)?;
        s.close_pull(ri, pi);
        Ok(())
    }

    /// Merge a PR into its base branch with git (fast-forward or merge commit) and close it.
    pub fn merge_pull(&self, owner: &str, repo: &str, number: i64) -> Result<String> {
        repos::merge_pull(&self.forge, owner, repo, number)
    }

    /// The next PR create on `owner/repo` (any of the three APIs) is preceded by another
    /// client creating the same PR, so the caller loses the race deterministically
    /// (Gitea 409, GitHub 422, GitLab 409).
    pub fn race_next_create(&self, owner: &str, repo: &str) -> Result<()> {
        let mut s = self.forge.lock();
        let ri = s.repo(owner, repo)?;
        let id = s.repos[ri].id;
        s.race_next_create.push(id);
        Ok(())
    }

    /// Every pull request of the repository, by number.
    pub fn pulls(&self, owner: &str, repo: &str) -> Result<Vec<Pull>> {
        let s = self.forge.lock();
        let r = &s.repos[s.repo(owner, repo)?];
        Ok(r.pulls
            .iter()
            .map(|p| Pull {
                number: p.number,
                title: p.title.clone(),
                body: p.body.clone(),
                head: p.head.clone(),
                base: p.base.clone(),
                open: p.open,
                merged: p.merged,
                labels: p
                    .labels
                    .iter()
                    .filter_map(|id| r.labels.iter().find(|l| l.id == *id))
                    .map(|l| l.name.clone())
                    .collect(),
                assignees: p
                    .assignees
                    .iter()
                    .filter_map(|id| s.user(*id))
                    .map(|u| u.login.clone())
                    .collect(),
            })
            .collect())
    }

    /// Webhook deliveries so far, oldest first.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.forge.lock().deliveries.clone()
    }
}

/// The tip of branch `branch` in `dir`.
fn branch_tip(dir: &Path, branch: &str) -> Result<String> {
    git::resolve(dir, &format!("refs/heads/{branch}"))
        .ok_or_else(|| Error::not_found(format!("branch {branch} not found")))
}
