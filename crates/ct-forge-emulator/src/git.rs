//! Plumbing git commands on the forge's bare repositories (the git CLI, as Gitea itself uses),
//! through the one runner [`ct_emulator::git::Git`].
//!
//! These run synchronously: each is one short `git` process on a local repository.

use std::collections::BTreeMap;
use std::path::Path;

use ct_emulator::Result;
use ct_emulator::git::Git;

/// Identity the forge uses for commits it makes itself (seeding, merges).
pub const FORGE_NAME: &str = "Forge Emulator";
pub const FORGE_EMAIL: &str = "forge@sandbox.invalid";

/// `git --git-dir DIR` as the forge.
fn git(dir: &Path) -> Git {
    Git::bare(dir).identity(FORGE_NAME, FORGE_EMAIL)
}

/// `git init --bare` with `default_branch` as HEAD; pushes over HTTP are allowed.
pub fn init_bare(dir: &Path, default_branch: &str) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    git(dir)
        .args(["init", "--bare", "-q", "-b", default_branch])
        .arg(dir)
        .run()?;
    git(dir)
        .args(["config", "http.receivepack", "true"])
        .run()?;
    Ok(())
}

/// Commit every file of `src` (a plain directory; a `.git` inside is ignored) as the first
/// commit of `branch`.
pub fn seed(dir: &Path, src: &Path, branch: &str, message: &str) -> Result<String> {
    // A fresh index path (git refuses an existing empty file as an index).
    let tmp = tempfile::tempdir()?;
    let index = tmp.path().join("index");
    git(dir)
        .with_work_tree(src)
        .env("GIT_INDEX_FILE", &index)
        .current_dir(src)
        .args(["add", "-A", "."])
        .run()?;
    let tree = git(dir)
        .env("GIT_INDEX_FILE", &index)
        .arg("write-tree")
        .run()?;
    let sha = git(dir).args(["commit-tree", &tree, "-m", message]).run()?;
    update_ref(dir, &format!("refs/heads/{branch}"), &sha)?;
    Ok(sha)
}

/// Branch name → tip SHA (none when the repository cannot be read).
pub fn branches(dir: &Path) -> BTreeMap<String, String> {
    let out = git(dir)
        .args([
            "for-each-ref",
            "--format=%(objectname) %(refname:lstrip=2)",
            "refs/heads",
        ])
        .run()
        .unwrap_or_default();
    out.lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(sha, name)| (name.to_string(), sha.to_string()))
        .collect()
}

/// The SHA a ref points at, if it exists.
pub fn resolve(dir: &Path, refname: &str) -> Option<String> {
    git(dir)
        .args(["rev-parse", "--verify", "-q"])
        .arg(format!("{refname}^{{commit}}"))
        .run()
        .ok()
}

pub fn update_ref(dir: &Path, refname: &str, sha: &str) -> Result<()> {
    git(dir).args(["update-ref", refname, sha]).run().map(drop)
}

pub fn delete_ref(dir: &Path, refname: &str) -> Result<()> {
    git(dir).args(["update-ref", "-d", refname]).run().map(drop)
}

/// Commits reachable from `include` but from none of `exclude`, newest first, at most `max`.
pub fn rev_list(dir: &Path, include: &str, exclude: &[String], max: usize) -> Vec<String> {
    let out = git(dir)
        .args(["rev-list", &format!("--max-count={max}"), include])
        .args(exclude.iter().map(|e| format!("^{e}")))
        .run()
        .unwrap_or_default();
    out.lines().map(str::to_string).collect()
}

/// How many commits `head` has that `base` has not.
pub fn count_ahead(dir: &Path, base: &str, head: &str) -> usize {
    git(dir)
        .args(["rev-list", "--count", &format!("{base}..{head}")])
        .run()
        .ok()
        .and_then(|o| o.parse().ok())
        .unwrap_or(0)
}

/// One commit's metadata and changed paths (first parent).
#[derive(Debug, Clone, Default)]
pub struct CommitInfo {
    pub id: String,
    pub author_name: String,
    pub author_email: String,
    pub author_date: String,
    pub committer_name: String,
    pub committer_email: String,
    pub committer_date: String,
    pub parents: Vec<String>,
    pub message: String,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub modified: Vec<String>,
}

/// Git's strict ISO dates end in `+00:00`; Go's RFC 3339 writes UTC as `Z`.
fn rfc3339(d: &str) -> String {
    match d.strip_suffix("+00:00") {
        Some(s) => format!("{s}Z"),
        None => d.to_string(),
    }
}

pub fn commit_info(dir: &Path, sha: &str) -> Result<CommitInfo> {
    let out = git(dir)
        .args([
            "show",
            "-s",
            "--format=%H%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%P%x00%B",
            sha,
        ])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let f: Vec<&str> = text.splitn(9, '\0').collect();
    if f.len() < 9 {
        return Err(ct_emulator::Error::internal(format!(
            "git show {sha}: unexpected output"
        )));
    }
    let mut message = f[8].trim_end_matches('\n').to_string();
    message.push('\n');
    let mut info = CommitInfo {
        id: f[0].to_string(),
        author_name: f[1].to_string(),
        author_email: f[2].to_string(),
        author_date: rfc3339(f[3]),
        committer_name: f[4].to_string(),
        committer_email: f[5].to_string(),
        committer_date: rfc3339(f[6]),
        parents: f[7].split_whitespace().map(str::to_string).collect(),
        message,
        ..Default::default()
    };
    let changes = git(dir)
        .args([
            "diff-tree",
            "-r",
            "--root",
            "--no-commit-id",
            "--name-status",
            "--no-renames",
            sha,
        ])
        .run()
        .unwrap_or_default();
    for line in changes.lines() {
        if let Some((status, path)) = line.split_once('\t') {
            let list = match status.chars().next() {
                Some('A') => &mut info.added,
                Some('D') => &mut info.removed,
                _ => &mut info.modified,
            };
            list.push(path.to_string());
        }
    }
    Ok(info)
}

/// Merge `head` into branch `base` (fast-forward when possible, else a merge commit);
/// returns the new tip of `base`. A conflict is an error.
pub fn merge(dir: &Path, base: &str, head: &str, message: &str) -> Result<String> {
    let base_ref = format!("refs/heads/{base}");
    let base_sha = resolve(dir, &base_ref).ok_or_else(|| {
        ct_emulator::Error::failed_precondition(format!("base branch {base} does not exist"))
    })?;
    if git(dir)
        .args(["merge-base", "--is-ancestor", &base_sha, head])
        .succeeds()?
    {
        update_ref(dir, &base_ref, head)?;
        return Ok(head.to_string());
    }
    let tree = git(dir)
        .args(["merge-tree", "--write-tree", &base_sha, head])
        .run()
        .map_err(|_| {
            ct_emulator::Error::failed_precondition(format!(
                "merge conflict between {base} and {head}"
            ))
        })?;
    let tree = tree.lines().next().unwrap_or_default().to_string();
    let sha = git(dir)
        .args([
            "commit-tree",
            &tree,
            "-p",
            &base_sha,
            "-p",
            head,
            "-m",
            message,
        ])
        .run()?;
    update_ref(dir, &base_ref, &sha)?;
    Ok(sha)
}

/// Commit `content` at `path` on top of `parent` (or as a root commit); returns the new SHA.
/// Nothing else in the tree changes. No ref is moved.
pub fn commit_file(
    dir: &Path,
    parent: Option<&str>,
    path: &str,
    content: &[u8],
    message: &str,
) -> Result<String> {
    // A fresh index path (git refuses an existing empty file as an index).
    let tmp = tempfile::tempdir()?;
    let index = tmp.path().join("index");
    if let Some(p) = parent {
        git(dir)
            .env("GIT_INDEX_FILE", &index)
            .args(["read-tree", p])
            .run()?;
    }
    let blob = git(dir)
        .args(["hash-object", "-w", "--stdin"])
        .run_with_input(content)?;
    git(dir)
        .env("GIT_INDEX_FILE", &index)
        .args([
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("100644,{blob},{path}"),
        ])
        .run()?;
    let tree = git(dir)
        .env("GIT_INDEX_FILE", &index)
        .arg("write-tree")
        .run()?;
    let mut commit = git(dir).args(["commit-tree", &tree, "-m", message]);
    if let Some(p) = parent {
        commit = commit.args(["-p", p]);
    }
    commit.run()
}
