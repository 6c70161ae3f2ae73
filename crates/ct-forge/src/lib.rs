//! Idempotent pull requests on Gitea, GitHub and GitLab.
//!
//! [`ensure_pull_request`] makes sure exactly one open pull (merge) request goes from a head
//! branch to a base branch, and says what it did:
//! - an open, unmerged PR for the same head → base in the same repository is reused, its title
//!   and body brought up to date and missing labels/assignees added ([`Action::Existing`]);
//!   closed or merged PRs for the same branch names do not count;
//! - a head with no commits ahead of the base opens nothing ([`Action::Skipped`]);
//! - otherwise the PR is created ([`Action::Created`]); when a concurrent creator wins the race
//!   (Gitea 409, GitHub 422, GitLab 409) the PR is looked up again and reused.
//!
//! Everything that can be checked is checked before the first write: the repository, both
//! branches, every label name and every assignee. An unknown one is a usage error (exit 2)
//! and nothing is created.

pub mod gitea;
pub mod github;
pub mod gitlab;

use std::fmt;
use std::str::FromStr;

use ct_step::http::{ApiClient, AuthScheme, Response};
use ct_step::{Result, StepError};
use serde::de::DeserializeOwned;

/// Which forge API to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forge {
    Gitea,
    GitHub,
    GitLab,
}

impl Forge {
    /// How the token goes on the wire: Gitea `Authorization: token …`, GitHub
    /// `Authorization: Bearer …`, GitLab `PRIVATE-TOKEN: …`.
    pub fn auth_scheme(self) -> AuthScheme {
        match self {
            Forge::Gitea => AuthScheme::Token,
            Forge::GitHub => AuthScheme::Bearer,
            Forge::GitLab => AuthScheme::Header("PRIVATE-TOKEN"),
        }
    }

    /// The API root for a URL given by the user: a bare Gitea or GitLab host URL (no path)
    /// gets `/api/v1` or `/api/v4` appended; any other URL is used as given.
    pub fn api_root(self, url: &str) -> String {
        let trimmed = url.trim().trim_end_matches('/');
        let has_path = trimmed
            .split_once("://")
            .map(|(_, rest)| rest.contains('/'))
            .unwrap_or(true);
        match self {
            Forge::Gitea if !has_path => format!("{trimmed}/api/v1"),
            Forge::GitLab if !has_path => format!("{trimmed}/api/v4"),
            _ => trimmed.to_string(),
        }
    }
}

impl FromStr for Forge {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "gitea" | "forgejo" => Ok(Forge::Gitea),
            "github" => Ok(Forge::GitHub),
            "gitlab" => Ok(Forge::GitLab),
            _ => Err(format!("`{s}` is not a forge; use gitea, github or gitlab")),
        }
    }
}

impl fmt::Display for Forge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Forge::Gitea => "gitea",
            Forge::GitHub => "github",
            Forge::GitLab => "gitlab",
        })
    }
}

/// `OWNER/NAME` (GitLab: `group/subgroup/project`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRef {
    pub owner: String,
    pub name: String,
}

impl RepoRef {
    /// Parse `OWNER/NAME`; nested groups are accepted only when `nested` (GitLab). Every part
    /// is 1-100 of `A-Z a-z 0-9 . _ -` and not `.` or `..`: what Gitea, GitHub and GitLab
    /// allow, and nothing that could change the API path it is put in (no `/` inside a part,
    /// no `%`, no dot segment).
    pub fn parse(s: &str, nested: bool) -> Result<RepoRef> {
        let s = s.trim();
        let s = s.strip_suffix(".git").unwrap_or(s);
        let bad = || {
            StepError::usage(format!(
                "--repo `{}`: write OWNER/NAME with parts of letters, digits, '.', '_' and '-', e.g. user1/mlops-gitops",
                s.escape_debug()
            ))
        };
        let (owner, name) = s.rsplit_once('/').ok_or_else(bad)?;
        let part_ok = |p: &str| {
            (1..=100).contains(&p.len())
                && p != "."
                && p != ".."
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        };
        let parts_ok = owner.split('/').chain([name]).all(part_ok);
        if !parts_ok || (!nested && owner.contains('/')) {
            return Err(bad());
        }
        Ok(RepoRef {
            owner: owner.to_string(),
            name: name.to_string(),
        })
    }

    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

impl fmt::Display for RepoRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// The pull request wanted.
#[derive(Debug, Clone)]
pub struct PrSpec {
    pub repo: RepoRef,
    pub head: String,
    pub base: String,
    pub title: String,
    pub body: String,
    /// User names.
    pub assignees: Vec<String>,
    /// Label names.
    pub labels: Vec<String>,
}

/// A branch name as `git check-ref-format --branch` accepts it, without `%` (so no
/// percent-encoded segment can reach an API path) and not starting with `refs/`: no control
/// character, space or `~^:?*[\\`, no `..` or `@{`, no empty, `.`-leading or `.lock`-ending
/// component, not `-`-leading, not ending with `.` or `/`, at most 255 bytes.
pub fn validate_branch(flag: &str, v: &str) -> Result<()> {
    if v.is_empty() {
        return Err(StepError::usage(format!("{flag} is empty; name a branch")));
    }
    let chars_ok = !v
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\%".contains(c));
    let parts_ok = v
        .split('/')
        .all(|p| !p.is_empty() && !p.starts_with('.') && !p.ends_with(".lock"));
    let ok = chars_ok
        && parts_ok
        && v.len() <= 255
        && !v.starts_with('-')
        && !v.starts_with("refs/")
        && !v.ends_with('.')
        && !v.contains("..")
        && !v.contains("@{")
        && v != "@";
    if ok {
        Ok(())
    } else {
        Err(StepError::usage(format!(
            "{flag} {v:?}: give a plain branch name, e.g. main (no spaces, control characters, `..`, `%`, `~^:?*[\\`, or components starting with `.`)"
        )))
    }
}

/// A user name as the forges allow it: 1-100 of `A-Z a-z 0-9 . _ -`, not starting with `.` or
/// `-` (it goes into API paths and request bodies).
pub fn validate_user(flag: &str, v: &str) -> Result<()> {
    let ok = (1..=100).contains(&v.len())
        && !v.starts_with(['.', '-'])
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(StepError::usage(format!(
            "{flag} {v:?}: not a user name; use letters, digits, '.', '_' and '-'"
        )))
    }
}

/// Text without control characters, except the newline, carriage return and tab a Markdown
/// body may hold when `multiline`.
fn has_bad_control(v: &str, multiline: bool) -> bool {
    v.chars()
        .any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t')))
}

impl PrSpec {
    /// Local checks, before any request.
    pub fn validate(&self) -> Result<()> {
        validate_branch("--head", &self.head)?;
        validate_branch("--base", &self.base)?;
        if self.head == self.base {
            return Err(StepError::usage(format!(
                "--head and --base are both `{}`; a PR needs two branches",
                self.head
            )));
        }
        if self.title.trim().is_empty() {
            return Err(StepError::usage("--title is empty; give the PR a title"));
        }
        if has_bad_control(&self.title, false) {
            return Err(StepError::usage(format!(
                "--title {:?} has control characters (newline?); a title is one line",
                self.title
            )));
        }
        if has_bad_control(&self.body, true) {
            return Err(StepError::usage(
                "the PR body has control characters other than newline, carriage return and tab; remove them",
            ));
        }
        for (flag, list) in [("--assignee", &self.assignees), ("--label", &self.labels)] {
            if list.iter().any(|v| v.trim().is_empty()) {
                return Err(StepError::usage(format!(
                    "{flag}: an empty value was given"
                )));
            }
        }
        for a in &self.assignees {
            validate_user("--assignee", a)?;
        }
        if let Some(l) = self.labels.iter().find(|l| has_bad_control(l, false)) {
            return Err(StepError::usage(format!(
                "--label {l:?} has control characters (newline?); each --label is one label name"
            )));
        }
        Ok(())
    }
}

/// What [`ensure_pull_request`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    Existing,
    Skipped,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Existing => "existing",
            Action::Skipped => "skipped",
        }
    }
}

/// The PR (none when skipped) and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub action: Action,
    pub number: Option<u64>,
    pub url: Option<String>,
}

impl Outcome {
    fn pr(action: Action, number: u64, url: String) -> Self {
        Outcome {
            action,
            number: Some(number),
            url: Some(url),
        }
    }
    fn skipped() -> Self {
        Outcome {
            action: Action::Skipped,
            number: None,
            url: None,
        }
    }
}

/// Make sure the PR described by `spec` exists (see the crate docs). The client must use
/// [`Forge::auth_scheme`] and the forge's API root.
pub async fn ensure_pull_request(
    client: &ApiClient,
    forge: Forge,
    spec: &PrSpec,
) -> Result<Outcome> {
    spec.validate()?;
    match forge {
        Forge::Gitea => gitea::ensure(client, spec).await,
        Forge::GitHub => github::ensure(client, spec).await,
        Forge::GitLab => gitlab::ensure(client, spec).await,
    }
}

/// Decode a 2xx answer, `None` for a 404, an error (with the server's message) otherwise.
pub(crate) fn found<T: DeserializeOwned>(resp: Response) -> Result<Option<T>> {
    if resp.status.as_u16() == 404 {
        return Ok(None);
    }
    resp.error_for_status()?.json().map(Some)
}

/// Missing names as one error line, listing what exists.
pub(crate) fn unknown(
    flag: &str,
    missing: &[String],
    repo: &RepoRef,
    what: &str,
    known: &[String],
) -> StepError {
    let known = if known.is_empty() {
        "none".to_string()
    } else {
        known.join(", ")
    };
    StepError::usage(format!(
        "{flag} {}: no such {what} in {repo} (known: {known}); fix the name or create it first",
        missing.join(", ")
    ))
}

/// The branch-missing error, naming the flag.
pub(crate) fn no_branch(flag: &str, branch: &str, repo: &RepoRef) -> StepError {
    let hint = if flag == "--head" {
        "push it first (bump-gitops-version pushes it) or fix the name"
    } else {
        "fix the name"
    };
    StepError::usage(format!(
        "{flag} {branch}: branch does not exist in {repo}; {hint}"
    ))
}

/// Most pages read when listing (a guard against servers that ignore `page`).
pub(crate) const MAX_PAGES: usize = 200;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_refs() {
        assert_eq!(
            RepoRef::parse("user1/mlops-gitops", false).unwrap(),
            RepoRef {
                owner: "user1".into(),
                name: "mlops-gitops".into()
            }
        );
        assert!(RepoRef::parse("a/b/c", false).is_err());
        assert_eq!(RepoRef::parse("a/b/c", true).unwrap().owner, "a/b");
        assert!(RepoRef::parse("noslash", false).is_err());
        assert!(RepoRef::parse("a/", false).is_err());
        assert_eq!(RepoRef::parse("a/b.git", false).unwrap().name, "b");
        assert_eq!(RepoRef::parse(".github/.x", false).unwrap().name, ".x");
        for bad in [
            "user1/..", "../x", "./x", "a/.", "a//b", "/a/b", "a/%2e%2e", "a/b%2Fc", "a/b c",
            "a/b\nc", "a\r/b", "a/b?x=1", "a/b#c",
        ] {
            let e = RepoRef::parse(bad, true).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn branch_and_user_names() {
        for ok in ["main", "jukebox-1.0.1", "feature/x", "r\u{e9}lease"] {
            validate_branch("--head", ok).unwrap();
        }
        for bad in [
            "",
            "..",
            "../x",
            "a/../b",
            ".",
            "./x",
            "a/./b",
            "a//b",
            "/a",
            "a/",
            "%2e%2e",
            "a%2fb",
            "a b",
            "a\nb",
            "a\tb",
            "a\rb",
            "-x",
            "a.lock",
            "a.",
            "a@{1}",
            "@",
            "refs/heads/x",
            "a~1",
            "a^",
            "a:b",
            "a?",
            "a*",
            "a[",
            "a\\b",
        ] {
            assert_eq!(
                validate_branch("--head", bad).unwrap_err().exit_code(),
                2,
                "{bad:?}"
            );
        }
        validate_user("--assignee", "reviewer.1_x-y").unwrap();
        for bad in ["", "../x", "a/b", "a b", "a\nb", "-a", ".a", "r%65viewer"] {
            assert!(validate_user("--assignee", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn api_roots() {
        assert_eq!(
            Forge::Gitea.api_root("https://g.example.com/"),
            "https://g.example.com/api/v1"
        );
        assert_eq!(
            Forge::Gitea.api_root("https://g.example.com/api/v1"),
            "https://g.example.com/api/v1"
        );
        assert_eq!(
            Forge::GitLab.api_root("https://gitlab.com"),
            "https://gitlab.com/api/v4"
        );
        assert_eq!(
            Forge::GitHub.api_root("https://api.github.com"),
            "https://api.github.com"
        );
    }

    #[test]
    fn spec_validation() {
        let spec = PrSpec {
            repo: RepoRef::parse("a/b", false).unwrap(),
            head: "jukebox-1.0.1".into(),
            base: "main".into(),
            title: "t".into(),
            body: String::new(),
            assignees: vec![],
            labels: vec![],
        };
        spec.validate().unwrap();
        let same = PrSpec {
            head: "main".into(),
            ..spec.clone()
        };
        assert_eq!(same.validate().unwrap_err().exit_code(), 2);
        let untitled = PrSpec {
            title: " ".into(),
            ..spec.clone()
        };
        assert!(
            untitled
                .validate()
                .unwrap_err()
                .to_string()
                .contains("--title")
        );
        let refs = PrSpec {
            head: "refs/heads/x".into(),
            ..spec
        };
        assert!(refs.validate().is_err());
    }

    #[test]
    fn forge_names() {
        assert_eq!("GitLab".parse::<Forge>().unwrap(), Forge::GitLab);
        assert!("bitbucket".parse::<Forge>().is_err());
        assert_eq!(Forge::Gitea.auth_scheme(), AuthScheme::Token);
    }
}
