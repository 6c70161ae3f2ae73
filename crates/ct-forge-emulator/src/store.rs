//! The forge's state and every change to it: users, tokens, repositories, pull requests,
//! labels, hooks, webhook deliveries. The handle and the three API views (Gitea, GitHub,
//! GitLab) all change it through [`Store`]'s methods; each view only words the answers.
//!
//! One model serves the three views: a GitLab merge request is the same record as a Gitea pull
//! request, with `iid` = `number`.

use ct_emulator::{Error, Result};

/// A user or an organization (Gitea stores both as users).
#[derive(Debug, Clone)]
pub struct UserRec {
    pub id: i64,
    pub login: String,
    pub password: Option<String>,
    pub email: String,
    pub full_name: String,
    pub is_admin: bool,
    pub is_org: bool,
    pub created: String,
}

#[derive(Debug, Clone)]
pub struct TokenRec {
    pub user_id: i64,
    pub name: String,
    pub token: String,
}

#[derive(Debug, Clone)]
pub struct LabelRec {
    pub id: i64,
    pub name: String,
    pub color: String,
    pub description: String,
}

/// A configured webhook.
#[derive(Debug, Clone)]
pub struct HookRec {
    pub id: i64,
    pub url: String,
    pub secret: String,
    pub content_type: String,
    pub events: Vec<String>,
    pub active: bool,
    pub created: String,
}

#[derive(Debug, Clone)]
pub struct PullRec {
    pub id: i64,
    pub number: i64,
    pub poster: i64,
    pub title: String,
    pub body: String,
    pub head: String,
    pub base: String,
    pub open: bool,
    pub merged: bool,
    pub merge_commit: Option<String>,
    pub merged_at: Option<String>,
    pub closed_at: Option<String>,
    pub created: String,
    pub updated: String,
    pub assignees: Vec<i64>,
    pub labels: Vec<i64>,
}

impl PullRec {
    /// A new open pull request (id and number are given when it is stored).
    pub fn new(poster: i64, head: &str, base: &str, title: &str, body: &str) -> PullRec {
        let t = now();
        PullRec {
            id: 0,
            number: 0,
            poster,
            title: title.to_string(),
            body: body.to_string(),
            head: head.to_string(),
            base: base.to_string(),
            open: true,
            merged: false,
            merge_commit: None,
            merged_at: None,
            closed_at: None,
            created: t.clone(),
            updated: t,
            assignees: Vec::new(),
            labels: Vec::new(),
        }
    }

    /// Close (`Some(false)`) or reopen (`Some(true)`); a merged one stays closed. Whether it
    /// was reopened.
    pub fn set_open(&mut self, open: Option<bool>) -> bool {
        match open {
            Some(false) if self.open => {
                self.open = false;
                self.closed_at = Some(now());
                false
            }
            Some(true) if !self.open && !self.merged => {
                self.open = true;
                true
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RepoRec {
    pub id: i64,
    pub owner_id: i64,
    pub name: String,
    pub description: String,
    pub private: bool,
    pub default_branch: String,
    pub created: String,
    pub updated: String,
    /// Next issue/PR number: they share one sequence, as in Gitea.
    pub next_index: i64,
    pub labels: Vec<LabelRec>,
    pub collaborators: Vec<i64>,
    pub hooks: Vec<HookRec>,
    pub pulls: Vec<PullRec>,
    /// Numbers of the issues (not PRs) opened so far.
    pub issues: Vec<i64>,
}

/// One webhook delivery attempt, for tests and the demo to inspect.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub hook_id: i64,
    pub repo: String,
    pub uuid: String,
    pub event: String,
    pub url: String,
    pub body: Vec<u8>,
    /// HTTP status of the receiver's answer, if one came.
    pub status: Option<u16>,
    /// Transport error, if any.
    pub error: Option<String>,
}

#[derive(Debug, Default)]
pub struct Store {
    pub users: Vec<UserRec>,
    pub tokens: Vec<TokenRec>,
    pub repos: Vec<RepoRec>,
    pub deliveries: Vec<Delivery>,
    /// Repositories whose next PR create is preceded by a "concurrent" create of the same PR.
    pub race_next_create: Vec<i64>,
    next_id: i64,
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Store {
    pub fn next_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// The user an access token belongs to.
    pub fn token_user(&self, token: &str) -> Option<i64> {
        self.tokens
            .iter()
            .find(|t| t.token == token)
            .map(|t| t.user_id)
    }

    pub fn user(&self, id: i64) -> Option<&UserRec> {
        self.users.iter().find(|u| u.id == id)
    }

    pub fn user_by_login(&self, login: &str) -> Option<&UserRec> {
        self.users
            .iter()
            .find(|u| u.login.eq_ignore_ascii_case(login))
    }

    pub fn repo_idx(&self, owner: &str, name: &str) -> Option<usize> {
        let owner = self.user_by_login(owner)?.id;
        self.repos
            .iter()
            .position(|r| r.owner_id == owner && r.name.eq_ignore_ascii_case(name))
    }

    pub fn repo_by_id(&self, id: i64) -> Option<usize> {
        self.repos.iter().position(|r| r.id == id)
    }

    pub fn owner_login(&self, repo: &RepoRec) -> String {
        self.user(repo.owner_id)
            .map(|u| u.login.clone())
            .unwrap_or_default()
    }

    /// `owner/name` of a repository.
    pub fn full_name(&self, repo: &RepoRec) -> String {
        format!("{}/{}", self.owner_login(repo), repo.name)
    }

    /// Users who may be assigned: the owner (when a user) and the collaborators.
    pub fn assignable(&self, repo: &RepoRec) -> Vec<i64> {
        let mut ids = Vec::new();
        if self.user(repo.owner_id).is_some_and(|u| !u.is_org) {
            ids.push(repo.owner_id);
        }
        for c in &repo.collaborators {
            if !ids.contains(c) {
                ids.push(*c);
            }
        }
        ids
    }

    /// The open, unmerged PR for head → base, if any.
    pub fn open_pull(repo: &RepoRec, head: &str, base: &str) -> Option<usize> {
        repo.pulls
            .iter()
            .position(|p| p.open && !p.merged && p.head == head && p.base == base)
    }

    /// The id of the user or organization `login`.
    pub fn user_id(&self, login: &str) -> Result<i64> {
        self.user_by_login(login)
            .map(|u| u.id)
            .ok_or_else(|| Error::not_found(format!("user {login} not found")))
    }

    /// The index of repository `owner/name`.
    pub fn repo(&self, owner: &str, name: &str) -> Result<usize> {
        self.repo_idx(owner, name)
            .ok_or_else(|| Error::not_found(format!("repository {owner}/{name} not found")))
    }

    /// The index of pull request `number` in repository `ri`.
    pub fn pull(&self, ri: usize, number: i64) -> Result<usize> {
        self.repos[ri]
            .pulls
            .iter()
            .position(|p| p.number == number)
            .ok_or_else(|| Error::not_found(format!("pull request #{number} not found")))
    }

    /// Add a user or an organization; returns its id.
    pub fn add_user(&mut self, user: UserRec) -> Result<i64> {
        if self.user_by_login(&user.login).is_some() {
            return Err(Error::already_exists(format!(
                "user already exists [name: {}]",
                user.login
            )));
        }
        let id = self.next_id();
        self.users.push(UserRec { id, ..user });
        Ok(id)
    }

    /// Register an API token of a user under a name unique for that user.
    pub fn add_token(&mut self, user_id: i64, name: &str, token: &str) -> Result<()> {
        if self
            .tokens
            .iter()
            .any(|t| t.user_id == user_id && t.name == name)
        {
            return Err(Error::already_exists(
                "access token name has been used already",
            ));
        }
        self.tokens.push(TokenRec {
            user_id,
            name: name.to_string(),
            token: token.to_string(),
        });
        Ok(())
    }

    /// Let `user_id` push to and be assigned in repository `ri`.
    pub fn add_collaborator(&mut self, ri: usize, user_id: i64) {
        let r = &mut self.repos[ri];
        if !r.collaborators.contains(&user_id) {
            r.collaborators.push(user_id);
        }
    }

    pub fn remove_collaborator(&mut self, ri: usize, user_id: i64) {
        self.repos[ri].collaborators.retain(|c| *c != user_id);
    }

    /// Add a label to repository `ri` (`color` with or without `#`).
    pub fn add_label(&mut self, ri: usize, name: &str, color: &str, description: &str) -> LabelRec {
        let label = LabelRec {
            id: self.next_id(),
            name: name.to_string(),
            color: color.trim_start_matches('#').to_string(),
            description: description.to_string(),
        };
        self.repos[ri].labels.push(label.clone());
        label
    }

    /// The label of repository `ri` named `name` (any case), created when missing.
    pub fn label_named(&mut self, ri: usize, name: &str, color: &str, any_case: bool) -> i64 {
        let found = self.repos[ri].labels.iter().find(|l| {
            if any_case {
                l.name.eq_ignore_ascii_case(name)
            } else {
                l.name == name
            }
        });
        match found {
            Some(l) => l.id,
            None => self.add_label(ri, name, color, "").id,
        }
    }

    /// Add a webhook to repository `ri` (its id is allocated here).
    pub fn add_hook(&mut self, ri: usize, hook: HookRec) -> HookRec {
        let hook = HookRec {
            id: self.next_id(),
            ..hook
        };
        self.repos[ri].hooks.push(hook.clone());
        hook
    }

    /// Open an issue in repository `ri` (issues and PRs share one number sequence); its number.
    pub fn open_issue(&mut self, ri: usize) -> i64 {
        let r = &mut self.repos[ri];
        let number = r.next_index;
        r.next_index += 1;
        r.issues.push(number);
        number
    }

    /// An injected race: if repository `ri` is armed, another client opens the same PR first.
    pub fn take_race(&mut self, ri: usize, head: &str, base: &str, title: &str, body: &str) {
        let id = self.repos[ri].id;
        if let Some(pos) = self.race_next_create.iter().position(|r| *r == id) {
            self.race_next_create.remove(pos);
            if Store::open_pull(&self.repos[ri], head, base).is_none() {
                let poster = self.repos[ri].owner_id;
                self.insert_pull(ri, PullRec::new(poster, head, base, title, body));
            }
        }
    }

    /// Store a new pull request unless one is open for the same head and base (its index is
    /// the error). Returns the new one's index.
    pub fn create_pull(&mut self, ri: usize, pull: PullRec) -> std::result::Result<usize, usize> {
        if let Some(pi) = Store::open_pull(&self.repos[ri], &pull.head, &pull.base) {
            return Err(pi);
        }
        Ok(self.insert_pull(ri, pull))
    }

    /// Insert a PR and return its index in `repo.pulls`.
    fn insert_pull(&mut self, ri: usize, mut pull: PullRec) -> usize {
        pull.id = self.next_id();
        let repo = &mut self.repos[ri];
        pull.number = repo.next_index;
        repo.next_index += 1;
        repo.pulls.push(pull);
        repo.pulls.len() - 1
    }

    /// Close pull request `pi` of repository `ri` without merging.
    pub fn close_pull(&mut self, ri: usize, pi: usize) {
        let p = &mut self.repos[ri].pulls[pi];
        p.open = false;
        p.closed_at = Some(now());
        p.updated = now();
    }

    /// Record that pull request `pi` of repository `ri` was merged as `sha`.
    pub fn record_merge(&mut self, ri: usize, pi: usize, sha: &str) {
        let t = now();
        let p = &mut self.repos[ri].pulls[pi];
        p.open = false;
        p.merged = true;
        p.merge_commit = Some(sha.to_string());
        p.merged_at = Some(t.clone());
        p.closed_at = Some(t.clone());
        p.updated = t;
    }
}
