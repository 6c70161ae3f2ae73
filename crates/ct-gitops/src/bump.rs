//! The version bump: fetch the base branch (depth 1), edit one file in git objects, commit
//! only when bytes changed, push safely, retry races.
//!
//! - Base branch (no push branch): fast-forward pushes only. When another writer got there
//!   first, fetch the new tip, re-apply the edit on it and push again (bounded, with the one
//!   jittered backoff of `ct_step::http::backoff_delay`).
//! - Own push branch: rebuilt from the current base tip plus the edit. When the branch
//!   already has exactly that content nothing is pushed; otherwise it is updated with
//!   force-with-lease (only while it still points where it was fetched).
//!
//! The file is read from and written to git objects, never through the file system: the temporary
//! clone is bare (no checkout of a large repository), and paths can only reach entries of the
//! commit's tree (see [`crate::paths`]).

use std::path::PathBuf;
use std::time::Duration;

use ct_step::input::{MIB, format_size};
use ct_step::{ErrorKind, Result, StepError};
use git2::{Oid, Repository, Signature, build::TreeUpdateBuilder};

use crate::git::{self, Push, PushSpec, Remote};
use crate::paths::{self, RepoPath};
use crate::yaml::{self, Change, Setting};

/// Largest file the step edits: it is read whole from git objects (a config file is a few KiB).
pub const MAX_FILE: u64 = 16 * MIB;

/// Everything the bump needs; validated by the caller.
#[derive(Debug, Clone)]
pub struct Request {
    pub remote: Remote,
    pub base_branch: String,
    pub push_branch: Option<String>,
    pub file: RepoPath,
    pub settings: Vec<Setting>,
    pub create_missing: bool,
    pub author_name: String,
    pub author_email: String,
    pub message: MessageTemplate,
    /// App and environment for the message (empty when `--file` was used).
    pub app: String,
    pub environment: String,
    /// Work in this checkout instead of a private temporary clone.
    pub repo_dir: Option<PathBuf>,
    pub dry_run: bool,
    /// Push attempts on the base branch (or lease failures on the push branch).
    pub max_attempts: u32,
    /// First delay between attempts: doubled per attempt, capped at 8 s, jittered
    /// (`ct_step::http::backoff_delay`).
    pub retry_delay: Duration,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The commit holding the requested values (new, or the existing tip on a no-op; with
    /// dry-run, the base tip the commit would be built on).
    pub commit: String,
    /// The branch holding `commit`.
    pub branch: String,
    /// Whether a commit was created (and, unless dry-run, pushed).
    pub changed: bool,
    /// The per-key changes (empty on a no-op).
    pub changes: Vec<Change>,
    /// Unified diff of the file (dry-run and real runs alike; empty on a no-op).
    pub diff: String,
    /// Push attempts made.
    pub attempts: u32,
}

fn local(context: &str, e: git2::Error) -> StepError {
    StepError::remote(format!("{context}: {}", e.message()))
}

fn cancelled() -> StepError {
    StepError::new(ErrorKind::Terminated, "terminated by signal")
}

/// A commit message template with `{app}`, `{environment}`, `{file}`, `{branch}` and
/// `{changes}` (`key=value, key=value`); `{{`/`}}` are literal braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageTemplate(String);

/// Placeholders a message template may use.
pub const PLACEHOLDERS: &[&str] = &["app", "environment", "file", "branch", "changes"];

impl MessageTemplate {
    /// A template may span lines (newline and tab are kept); any other control character is a
    /// usage error.
    pub fn parse(s: &str) -> Result<Self> {
        if s.trim().is_empty() {
            return Err(StepError::usage("--message is empty"));
        }
        if s.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t'))
        {
            return Err(StepError::usage(
                "--message has a control character other than newline and tab; remove it",
            ));
        }
        render(s, &|_| Some(String::new())).map_err(StepError::usage)?;
        Ok(MessageTemplate(s.to_string()))
    }

    pub fn render(&self, f: &dyn Fn(&str) -> Option<String>) -> String {
        render(&self.0, f).unwrap_or_else(|_| self.0.clone())
    }
}

fn render(t: &str, f: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = t;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let r = &rest[i..];
        if r.starts_with("{{") || r.starts_with("}}") {
            out.push_str(&r[..1]);
            rest = &r[2..];
        } else if let Some(r) = r.strip_prefix('{') {
            let end = r
                .find('}')
                .ok_or("--message has an unclosed `{`; write {{ for a literal brace")?;
            let name = &r[..end];
            if !PLACEHOLDERS.contains(&name) {
                return Err(format!(
                    "--message uses unknown placeholder {{{name}}}; use {}",
                    PLACEHOLDERS
                        .iter()
                        .map(|p| format!("{{{p}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            out.push_str(&f(name).unwrap_or_default());
            rest = &r[end + 1..];
        } else {
            return Err("--message has an unmatched `}`; write }} for a literal brace".into());
        }
    }
    out.push_str(rest);
    Ok(out)
}

const BASE_REF: &str = "refs/ct-gitops/base";
const PUSH_REF: &str = "refs/ct-gitops/push";

/// Validate a branch name the way `git check-ref-format --branch` does (a usage error
/// otherwise): a valid ref name under `refs/heads/`, not starting with `-`.
pub fn validate_branch(flag: &str, b: &str) -> Result<()> {
    if b.is_empty()
        || b.starts_with('-')
        || !git2::Reference::is_valid_name(&format!("refs/heads/{b}"))
    {
        return Err(StepError::usage(format!(
            "{flag} `{}` is not a valid branch name",
            b.escape_debug()
        )));
    }
    Ok(())
}

/// Check the commit author locally, before anything is fetched: a name without control
/// characters, `<` or `>`, and an e-mail address (one `@`, no space, control character, `<` or
/// `>`), as git writes them into the commit header.
pub fn validate_author(name: &str, email: &str) -> Result<()> {
    let bad = |c: char| c.is_control() || c == '<' || c == '>';
    if name.trim().is_empty() || name.chars().any(bad) {
        return Err(StepError::usage(format!(
            "--author-name `{}`: write a name on one line, without `<` or `>`",
            name.escape_debug()
        )));
    }
    let parts: Vec<&str> = email.split('@').collect();
    if parts.len() != 2
        || parts.iter().any(|p| p.is_empty())
        || email.chars().any(|c| bad(c) || c.is_whitespace())
    {
        return Err(StepError::usage(format!(
            "--author-email `{}`: write an address such as bot@example.com",
            email.escape_debug()
        )));
    }
    Signature::now(name, email)
        .map_err(|e| StepError::usage(format!("--author-name/--author-email: {}", e.message())))?;
    Ok(())
}

/// Run the bump.
pub fn run(req: &Request) -> Result<Outcome> {
    let temp;
    let (repo, shallow) = match &req.repo_dir {
        Some(dir) => {
            let repo = git::open_checkout(dir)?;
            let shallow = repo.is_shallow();
            (repo, shallow)
        }
        None => {
            temp = git::private_tempdir().map_err(|e| {
                StepError::remote(format!("cannot create a temporary directory: {e}"))
            })?;
            let repo = Repository::init_bare(temp.path())
                .map_err(|e| local("cannot create the temporary repository", e))?;
            (repo, true)
        }
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        if ct_step::signal::is_terminated() {
            return Err(cancelled());
        }
        match try_once(&repo, req, shallow, attempt)? {
            Try::Done(outcome) => {
                if let (Some(_), false, true) = (&req.repo_dir, req.dry_run, outcome.changed) {
                    update_checkout(&repo, &outcome);
                }
                return Ok(outcome);
            }
            Try::Raced(e) if attempt < req.max_attempts => {
                let delay = ct_step::http::backoff_delay(req.retry_delay, attempt - 1);
                tracing::info!(
                    "attempt {attempt}/{}: {e}; fetching the new tip and re-applying in {} ms",
                    req.max_attempts,
                    delay.as_millis()
                );
                sleep_unless_terminated(delay);
            }
            Try::Raced(e) => {
                return Err(StepError::remote(format!(
                    "gave up after {attempt} attempts: {e}; other writers keep moving the branch, run the step again"
                )));
            }
        }
    }
}

fn sleep_unless_terminated(d: Duration) {
    let step = Duration::from_millis(50);
    let mut left = d;
    while !left.is_zero() && !ct_step::signal::is_terminated() {
        let s = left.min(step);
        std::thread::sleep(s);
        left -= s;
    }
}

/// How one attempt ended when it did not fail.
enum Try {
    Done(Outcome),
    /// Another writer moved the branch first.
    Raced(String),
}

fn try_once(repo: &Repository, req: &Request, shallow: bool, attempt: u32) -> Result<Try> {
    // Fetch into private refs, deleted first, so their existence afterwards says what exists on
    // the remote now.
    for r in [BASE_REF, PUSH_REF] {
        if let Ok(mut reference) = repo.find_reference(r) {
            reference
                .delete()
                .map_err(|e| local("cannot reset a private ref", e))?;
        }
    }
    let mut refspecs = vec![format!("+refs/heads/{}:{BASE_REF}", req.base_branch)];
    if let Some(b) = &req.push_branch {
        refspecs.push(format!("+refs/heads/{b}:{PUSH_REF}"));
    }
    git::fetch(repo, &req.remote, &refspecs, if shallow { 1 } else { 0 })?;
    if ct_step::signal::is_terminated() {
        return Err(cancelled());
    }
    let base = repo.refname_to_id(BASE_REF).map_err(|_| {
        StepError::usage(format!(
            "branch `{}` does not exist on {}; check --base-branch",
            req.base_branch, req.remote.url
        ))
    })?;
    let pushed = req
        .push_branch
        .as_ref()
        .and_then(|_| repo.refname_to_id(PUSH_REF).ok());
    let base_commit = repo
        .find_commit(base)
        .map_err(|e| local("cannot read the base commit", e))?;
    let base_tree = base_commit
        .tree()
        .map_err(|e| local("cannot read the base tree", e))?;
    let entry = paths::lookup(repo, &base_tree, &req.file)
        .map_err(|e| StepError::new(e.kind(), format!("{e} (branch {})", req.base_branch)))?;
    let (size, _) = repo
        .odb()
        .and_then(|odb| odb.read_header(entry.blob))
        .map_err(|e| local("cannot read the file", e))?;
    if size as u64 > MAX_FILE {
        return Err(StepError::usage(format!(
            "{} is {size} bytes, over the {} limit of the files this step edits",
            req.file,
            format_size(MAX_FILE)
        )));
    }
    let blob = repo
        .find_blob(entry.blob)
        .map_err(|e| local("cannot read the file", e))?;
    let text = std::str::from_utf8(blob.content())
        .map_err(|_| StepError::usage(format!("{} is not UTF-8 text", req.file)))?;
    let edited = yaml::apply(text, &req.settings, req.create_missing)
        .map_err(|e| StepError::new(e.kind(), format!("{}: {e}", req.file)))?;
    let new_tree = if edited.text == text {
        base_tree.id()
    } else {
        let new_blob = repo
            .blob(edited.text.as_bytes())
            .map_err(|e| local("cannot write the edited file", e))?;
        let mut update = TreeUpdateBuilder::new();
        update.upsert(req.file.to_string(), new_blob, entry.mode);
        update
            .create_updated(repo, &base_tree)
            .map_err(|e| local("cannot write the new tree", e))?
    };
    let branch = req
        .push_branch
        .clone()
        .unwrap_or_else(|| req.base_branch.clone());
    let unchanged = |commit: Oid, branch: &str| Outcome {
        commit: commit.to_string(),
        branch: branch.to_string(),
        changed: false,
        changes: Vec::new(),
        diff: String::new(),
        attempts: attempt,
    };
    if new_tree == base_tree.id() {
        tracing::info!(
            "{} already holds the requested values on {}: nothing to commit",
            req.file,
            req.base_branch
        );
        return Ok(Try::Done(unchanged(base, &req.base_branch)));
    }
    if let Some(p) = pushed {
        let same = repo
            .find_commit(p)
            .ok()
            .and_then(|c| c.tree().ok())
            .is_some_and(|t| t.id() == new_tree);
        if same {
            tracing::info!("branch {branch} already holds exactly this change: nothing to push");
            return Ok(Try::Done(unchanged(p, &branch)));
        }
    }
    let diff = unified_diff(text, &edited.text, &req.file.to_string());
    let changes_text = edited
        .changes
        .iter()
        .map(|c| format!("{}={}", c.key, c.new))
        .collect::<Vec<_>>()
        .join(", ");
    let message = req.message.render(&|name| {
        Some(match name {
            "app" => req.app.clone(),
            "environment" => req.environment.clone(),
            "file" => req.file.to_string(),
            "branch" => branch.clone(),
            "changes" => changes_text.clone(),
            _ => return None,
        })
    });
    let sig = Signature::now(&req.author_name, &req.author_email)
        .map_err(|e| StepError::usage(format!("--author-name/--author-email: {}", e.message())))?;
    let tree = repo
        .find_tree(new_tree)
        .map_err(|e| local("cannot read the new tree", e))?;
    let commit = repo
        .commit(None, &sig, &sig, &message, &tree, &[&base_commit])
        .map_err(|e| local("cannot create the commit", e))?;
    let outcome = Outcome {
        commit: commit.to_string(),
        branch: branch.clone(),
        changed: true,
        changes: edited.changes,
        diff,
        attempts: attempt,
    };
    if req.dry_run {
        // Nothing leaves this process: report the tip the commit would be built on.
        return Ok(Try::Done(Outcome {
            commit: base.to_string(),
            ..outcome
        }));
    }
    if ct_step::signal::is_terminated() {
        return Err(cancelled());
    }
    let spec = PushSpec {
        commit,
        dst: format!("refs/heads/{branch}"),
        lease: req
            .push_branch
            .as_ref()
            .map(|_| pushed.unwrap_or(Oid::ZERO_SHA1)),
    };
    match git::push(repo, &req.remote, &spec)? {
        Push::Done => {
            tracing::info!("pushed {commit} to {branch} (attempt {attempt})");
            Ok(Try::Done(outcome))
        }
        Push::Raced(e) => Ok(Try::Raced(e)),
    }
}

/// After a push from `--repo-dir`: move the local branch there (fast-forward only) and, when
/// it is checked out, update the working tree without touching local modifications.
fn update_checkout(repo: &Repository, outcome: &Outcome) {
    let Ok(oid) = Oid::from_str(&outcome.commit) else {
        return;
    };
    let name = format!("refs/heads/{}", outcome.branch);
    let current = repo.refname_to_id(&name).ok();
    let ff = match current {
        None => true,
        Some(c) => repo.graph_descendant_of(oid, c).unwrap_or(false),
    };
    if !ff {
        tracing::warn!("local branch {} has diverged; left as is", outcome.branch);
        return;
    }
    let head_is_branch = repo
        .head()
        .ok()
        .and_then(|h| h.name().ok().map(|n| n == name))
        .unwrap_or(false);
    if head_is_branch {
        let Ok(commit) = repo.find_commit(oid) else {
            return;
        };
        let mut co = git2::build::CheckoutBuilder::new();
        co.safe();
        if let Err(e) = repo.checkout_tree(commit.as_object(), Some(&mut co)) {
            tracing::warn!("the working tree was not updated: {}", e.message());
            return;
        }
    }
    if let Err(e) = repo.reference(&name, oid, true, "bump-gitops-version") {
        tracing::warn!(
            "local branch {} not updated: {}",
            outcome.branch,
            e.message()
        );
    }
}

/// A unified diff of one file.
pub fn unified_diff(old: &str, new: &str, path: &str) -> String {
    let p = std::path::Path::new(path);
    let patch = git2::Patch::from_buffers(old.as_bytes(), Some(p), new.as_bytes(), Some(p), None);
    match patch.and_then(|mut p| p.to_buf()) {
        Ok(buf) => String::from_utf8_lossy(&buf).into_owned(),
        Err(e) => format!("(no diff: {})\n", e.message()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_templates_render_known_placeholders_only() {
        let t = MessageTemplate::parse("bump {app} in {environment}: {changes} {{x}}").unwrap();
        let s = t.render(&|n| Some(format!("<{n}>")));
        assert_eq!(s, "bump <app> in <environment>: <changes> {x}");
        assert!(
            MessageTemplate::parse("{nope}")
                .unwrap_err()
                .to_string()
                .contains("unknown placeholder")
        );
        assert!(MessageTemplate::parse("line 1\n\nline 2\tx").is_ok());
        assert_eq!(MessageTemplate::parse("a\rb").unwrap_err().exit_code(), 2);
        assert!(MessageTemplate::parse("a\0b").is_err());
        assert!(MessageTemplate::parse("{app").is_err());
        assert!(MessageTemplate::parse("a } b").is_err());
        assert!(MessageTemplate::parse("  ").is_err());
    }

    #[test]
    fn authors_are_checked_before_anything_is_fetched() {
        validate_author("CT pipeline", "ct-pipeline@localhost").unwrap();
        validate_author("Jürgen Ölß", "j@example.com").unwrap();
        for (name, email) in [
            ("a\nb", "a@b"),
            ("a\rb", "a@b"),
            ("a\tb", "a@b"),
            ("a <x>", "a@b"),
            ("a>", "a@b"),
            ("", "a@b"),
            ("a", "ab"),
            ("a", "a@b@c"),
            ("a", "a b@c"),
            ("a", "a\n@b"),
            ("a", "<a@b>"),
        ] {
            let e = validate_author(name, email).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{name:?} {email:?}");
        }
    }

    #[test]
    fn branch_names_are_validated() {
        assert!(validate_branch("--push-branch", "jukebox-1.0.1").is_ok());
        for bad in [
            "", "a..b", "a b", "-x/..", "-x", "x.lock", "a~1", "a:b", "a\nb",
        ] {
            assert!(validate_branch("--push-branch", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn diffs_are_unified() {
        let d = unified_diff("a: 1\nb: 2\n", "a: 1\nb: 3\n", "x/c.yaml");
        assert!(
            d.contains("--- a/x/c.yaml") && d.contains("-b: 2") && d.contains("+b: 3"),
            "{d}"
        );
    }
}
