//! Plumbing git commands on the forge's bare repositories (the git CLI, as Gitea itself uses).
//!
//! These run synchronously: each is one short `git` process on a local repository.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Identity the forge uses for commits it makes itself (seeding, merges).
pub const FORGE_NAME: &str = "Forge Emulator";
pub const FORGE_EMAIL: &str = "forge@sandbox.invalid";

fn git(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.arg("--git-dir")
        .arg(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "safe.directory")
        .env("GIT_CONFIG_VALUE_0", "*")
        .env("GIT_AUTHOR_NAME", FORGE_NAME)
        .env("GIT_AUTHOR_EMAIL", FORGE_EMAIL)
        .env("GIT_COMMITTER_NAME", FORGE_NAME)
        .env("GIT_COMMITTER_EMAIL", FORGE_EMAIL)
        .stdin(Stdio::null());
    c
}

fn run(mut cmd: Command, what: &str) -> io::Result<Output> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "git {what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out)
}

fn stdout(out: Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `git init --bare` with `default_branch` as HEAD; pushes over HTTP are allowed.
pub fn init_bare(dir: &Path, default_branch: &str) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut c = git(dir);
    c.args(["init", "--bare", "-q", "-b", default_branch])
        .arg(dir);
    run(c, "init")?;
    let mut c = git(dir);
    c.args(["config", "http.receivepack", "true"]);
    run(c, "config")?;
    Ok(())
}

/// Commit every file of `src` (a plain directory; a `.git` inside is ignored) as the first
/// commit of `branch`.
pub fn seed(dir: &Path, src: &Path, branch: &str, message: &str) -> io::Result<String> {
    // A fresh index path (git refuses an existing empty file as an index).
    let tmp = tempfile::tempdir()?;
    let index = tmp.path().join("index");
    let mut c = git(dir);
    c.arg("--work-tree")
        .arg(src)
        .env("GIT_INDEX_FILE", &index)
        .args(["add", "-A", "."]);
    c.current_dir(src);
    run(c, "add")?;
    let mut c = git(dir);
    c.env("GIT_INDEX_FILE", &index).arg("write-tree");
    let tree = stdout(run(c, "write-tree")?);
    let mut c = git(dir);
    c.args(["commit-tree", &tree, "-m", message]);
    let sha = stdout(run(c, "commit-tree")?);
    update_ref(dir, &format!("refs/heads/{branch}"), &sha)?;
    Ok(sha)
}

/// Branch name → tip SHA.
pub fn branches(dir: &Path) -> BTreeMap<String, String> {
    let mut c = git(dir);
    c.args([
        "for-each-ref",
        "--format=%(objectname) %(refname:lstrip=2)",
        "refs/heads",
    ]);
    let mut map = BTreeMap::new();
    if let Ok(out) = run(c, "for-each-ref") {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((sha, name)) = line.split_once(' ') {
                map.insert(name.to_string(), sha.to_string());
            }
        }
    }
    map
}

/// The SHA a ref points at, if it exists.
pub fn resolve(dir: &Path, refname: &str) -> Option<String> {
    let mut c = git(dir);
    c.args(["rev-parse", "--verify", "-q"])
        .arg(format!("{refname}^{{commit}}"));
    run(c, "rev-parse").ok().map(stdout)
}

pub fn update_ref(dir: &Path, refname: &str, sha: &str) -> io::Result<()> {
    let mut c = git(dir);
    c.args(["update-ref", refname, sha]);
    run(c, "update-ref").map(|_| ())
}

pub fn delete_ref(dir: &Path, refname: &str) -> io::Result<()> {
    let mut c = git(dir);
    c.args(["update-ref", "-d", refname]);
    run(c, "update-ref -d").map(|_| ())
}

/// Commits reachable from `include` but from none of `exclude`, newest first, at most `max`.
pub fn rev_list(dir: &Path, include: &str, exclude: &[String], max: usize) -> Vec<String> {
    let mut c = git(dir);
    c.args(["rev-list", &format!("--max-count={max}"), include]);
    for e in exclude {
        c.arg(format!("^{e}"));
    }
    match run(c, "rev-list") {
        Ok(out) => String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// How many commits `head` has that `base` has not.
pub fn count_ahead(dir: &Path, base: &str, head: &str) -> usize {
    let mut c = git(dir);
    c.args(["rev-list", "--count", &format!("{base}..{head}")]);
    run(c, "rev-list --count")
        .ok()
        .and_then(|o| stdout(o).parse().ok())
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

pub fn commit_info(dir: &Path, sha: &str) -> io::Result<CommitInfo> {
    let mut c = git(dir);
    c.args([
        "show",
        "-s",
        "--format=%H%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%P%x00%B",
        sha,
    ]);
    let out = run(c, "show")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let f: Vec<&str> = text.splitn(9, '\0').collect();
    if f.len() < 9 {
        return Err(io::Error::other(format!(
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
    let mut c = git(dir);
    c.args([
        "diff-tree",
        "-r",
        "--root",
        "--no-commit-id",
        "--name-status",
        "--no-renames",
        sha,
    ]);
    if let Ok(out) = run(c, "diff-tree") {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((status, path)) = line.split_once('\t') {
                let list = match status.chars().next() {
                    Some('A') => &mut info.added,
                    Some('D') => &mut info.removed,
                    _ => &mut info.modified,
                };
                list.push(path.to_string());
            }
        }
    }
    Ok(info)
}

/// Merge `head` into branch `base` (fast-forward when possible, else a merge commit);
/// returns the new tip of `base`. A conflict is an error.
pub fn merge(dir: &Path, base: &str, head: &str, message: &str) -> io::Result<String> {
    let base_ref = format!("refs/heads/{base}");
    let base_sha = resolve(dir, &base_ref)
        .ok_or_else(|| io::Error::other(format!("base branch {base} does not exist")))?;
    let mut c = git(dir);
    c.args(["merge-base", "--is-ancestor", &base_sha, head]);
    if c.status()?.success() {
        update_ref(dir, &base_ref, head)?;
        return Ok(head.to_string());
    }
    let mut c = git(dir);
    c.args(["merge-tree", "--write-tree", &base_sha, head]);
    let out = c.output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "merge conflict between {base} and {head}"
        )));
    }
    let tree = stdout(out).lines().next().unwrap_or_default().to_string();
    let mut c = git(dir);
    c.args([
        "commit-tree",
        &tree,
        "-p",
        &base_sha,
        "-p",
        head,
        "-m",
        message,
    ]);
    let sha = stdout(run(c, "commit-tree")?);
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
) -> io::Result<String> {
    use std::io::Write;
    // A fresh index path (git refuses an existing empty file as an index).
    let tmp = tempfile::tempdir()?;
    let index = tmp.path().join("index");
    if let Some(p) = parent {
        let mut c = git(dir);
        c.env("GIT_INDEX_FILE", &index).args(["read-tree", p]);
        run(c, "read-tree")?;
    }
    let mut c = git(dir);
    c.args(["hash-object", "-w", "--stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(content)?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(io::Error::other("git hash-object failed"));
    }
    let blob = stdout(out);
    let mut c = git(dir);
    c.env("GIT_INDEX_FILE", &index).args([
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("100644,{blob},{path}"),
    ]);
    run(c, "update-index")?;
    let mut c = git(dir);
    c.env("GIT_INDEX_FILE", &index).arg("write-tree");
    let tree = stdout(run(c, "write-tree")?);
    let mut c = git(dir);
    c.args(["commit-tree", &tree, "-m", message]);
    if let Some(p) = parent {
        c.args(["-p", p]);
    }
    Ok(stdout(run(c, "commit-tree")?))
}
