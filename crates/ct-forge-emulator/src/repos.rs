//! Repository operations that touch both the store and the bare repository on disk: create a
//! repository, merge a pull request. The handle and the Gitea API share them.

use ct_emulator::{Error, Result};

use crate::Repo;
use crate::git;
use crate::state::ForgeState;
use crate::store::{RepoRec, now};

/// User, org and repository names: Gitea's alphanumerics, `-`, `_` and `.`.
pub fn valid_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name != "."
        && name != ".."
        && !name.ends_with(".git")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "invalid name {name:?}: use letters, digits, '-', '_' and '.'"
        )))
    }
}

/// Create repository `owner/name` (a bare git repository under the root, HEAD
/// `default_branch`).
pub fn create_repo(
    forge: &ForgeState,
    owner: &str,
    name: &str,
    description: &str,
    private: bool,
    default_branch: &str,
) -> Result<Repo> {
    valid_name(name)?;
    let (id, login) = {
        let mut s = forge.lock();
        let owner_rec = s
            .user_by_login(owner)
            .ok_or_else(|| Error::not_found(format!("owner {owner} not found")))?
            .clone();
        if s.repo_idx(owner, name).is_some() {
            return Err(Error::already_exists(
                "The repository with the same name already exists.",
            ));
        }
        let id = s.next_id();
        let t = now();
        s.repos.push(RepoRec {
            id,
            owner_id: owner_rec.id,
            name: name.to_string(),
            description: description.to_string(),
            private,
            default_branch: default_branch.to_string(),
            created: t.clone(),
            updated: t,
            next_index: 1,
            labels: Vec::new(),
            collaborators: Vec::new(),
            hooks: Vec::new(),
            pulls: Vec::new(),
            issues: Vec::new(),
        });
        (id, owner_rec.login)
    };
    let dir = forge.repo_dir(&login, name);
    if let Err(e) = git::init_bare(&dir, default_branch) {
        forge.lock().repos.retain(|r| r.id != id);
        return Err(e);
    }
    Ok(Repo {
        id,
        full_name: format!("{login}/{name}"),
        clone_url: format!("{}/{login}/{name}.git", forge.base),
        dir,
    })
}

/// Merge pull request `number` into its base branch with git (fast-forward or merge commit)
/// and close it; returns the new tip of the base branch.
pub fn merge_pull(forge: &ForgeState, owner: &str, repo: &str, number: i64) -> Result<String> {
    let (head, base, dir) = {
        let s = forge.lock();
        let ri = s.repo(owner, repo)?;
        let p = &s.repos[ri].pulls[s.pull(ri, number)?];
        if !p.open {
            return Err(Error::failed_precondition(format!(
                "pull request #{number} is closed"
            )));
        }
        (
            p.head.clone(),
            p.base.clone(),
            forge.repo_dir_of_locked(&s, ri),
        )
    };
    let head_sha = git::resolve(&dir, &format!("refs/heads/{head}"))
        .ok_or_else(|| Error::failed_precondition(format!("head branch {head} does not exist")))?;
    let sha = git::merge(
        &dir,
        &base,
        &head_sha,
        &format!("Merge pull request '#{number}' from {head} into {base}"),
    )?;
    let mut s = forge.lock();
    if let Ok(ri) = s.repo(owner, repo)
        && let Ok(pi) = s.pull(ri, number)
    {
        s.record_merge(ri, pi, &sha);
    }
    Ok(sha)
}
