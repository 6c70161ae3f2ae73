//! Path safety: the names the step puts into a repository path, the path itself, and the
//! lookup of that path in a git tree without following symbolic links.
//!
//! The file is read from and written to git objects (never through the file system), so a
//! path can only reach an entry of the commit's tree: no `..`, no absolute paths, no `.git`,
//! and no symbolic link anywhere on the way.

use ct_step::StepError;
use git2::{FileMode, ObjectType, Oid, Repository, Tree};

/// A validated path inside the repository, `/`-separated, relative, without `.`/`..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoPath {
    components: Vec<String>,
}

impl RepoPath {
    /// Validate `s` as a repository-relative file path.
    pub fn parse(s: &str) -> ct_step::Result<RepoPath> {
        let hint = "write a path relative to the repository root, e.g. model-deployments/test/jukebox/config.yaml";
        if s.is_empty() {
            return Err(StepError::usage(format!("the file path is empty; {hint}")));
        }
        if s.starts_with('/') {
            return Err(StepError::usage(format!("`{s}` is absolute; {hint}")));
        }
        if s.contains('\\') || s.chars().any(char::is_control) {
            return Err(StepError::usage(format!(
                "`{s}` contains a backslash or control character; {hint}"
            )));
        }
        let mut components = Vec::new();
        for c in s.split('/') {
            match c {
                "" => {
                    return Err(StepError::usage(format!(
                        "`{s}` has an empty path component (`//` or a trailing `/`); {hint}"
                    )));
                }
                "." | ".." => {
                    return Err(StepError::usage(format!(
                        "`{s}` contains `{c}`; paths must stay inside the repository; {hint}"
                    )));
                }
                c if c.eq_ignore_ascii_case(".git") => {
                    return Err(StepError::usage(format!("`{s}` points into .git; {hint}")));
                }
                c => components.push(c.to_string()),
            }
        }
        Ok(RepoPath { components })
    }

    /// `model-deployments/<environment>/<app>/config.yaml`, after validating both names.
    pub fn for_app(environment: &str, app: &str) -> ct_step::Result<RepoPath> {
        validate_name("--environment", environment)?;
        validate_name("--app", app)?;
        RepoPath::parse(&format!(
            "model-deployments/{environment}/{app}/config.yaml"
        ))
    }

    pub fn components(&self) -> &[String] {
        &self.components
    }
}

impl std::fmt::Display for RepoPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.components.join("/"))
    }
}

/// An app or environment name: one path component of letters, digits, `.`, `_`, `-`, not
/// starting with `.` or `-`, at most 253 characters.
pub fn validate_name(flag: &str, v: &str) -> ct_step::Result<()> {
    let ok = !v.is_empty()
        && v.len() <= 253
        && !v.starts_with(['.', '-'])
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(StepError::usage(format!(
            "{flag} `{v}` is not a valid name; use letters, digits, `.`, `_` and `-` (not starting with `.` or `-`)"
        )))
    }
}

/// A regular file found in a tree: its blob and mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileEntry {
    pub blob: Oid,
    pub mode: FileMode,
}

/// Find `path` in `tree`. Every directory on the way must be a tree and the file a regular
/// blob: symbolic links (which could lead outside the repository) and submodules are refused.
pub fn lookup(repo: &Repository, tree: &Tree<'_>, path: &RepoPath) -> ct_step::Result<FileEntry> {
    let mut current = tree.clone();
    let n = path.components.len();
    for (i, name) in path.components.iter().enumerate() {
        let so_far = path.components[..=i].join("/");
        let entry = current
            .get_name(name)
            .ok_or_else(|| {
                StepError::usage(format!("`{so_far}` does not exist in the repository"))
            })?
            .to_owned();
        let mode = entry.filemode();
        if mode == i32::from(FileMode::Link) {
            return Err(StepError::usage(format!(
                "`{so_far}` is a symbolic link; refusing to follow links (they can lead outside the repository)"
            )));
        }
        if i + 1 < n {
            if entry.kind() != Some(ObjectType::Tree) {
                return Err(StepError::usage(format!("`{so_far}` is not a directory")));
            }
            current = repo
                .find_tree(entry.id())
                .map_err(|e| StepError::remote(format!("cannot read directory `{so_far}`: {e}")))?;
        } else {
            let mode = if mode == i32::from(FileMode::Blob) {
                FileMode::Blob
            } else if mode == i32::from(FileMode::BlobExecutable) {
                FileMode::BlobExecutable
            } else {
                return Err(StepError::usage(format!(
                    "`{so_far}` is not a regular file"
                )));
            };
            return Ok(FileEntry {
                blob: entry.id(),
                mode,
            });
        }
    }
    Err(StepError::usage("empty path"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_and_odd_paths_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "../x.yaml",
            "a/../../x",
            "a/./b",
            "a//b",
            "a/",
            ".git/config",
            "a/.GIT/hooks/x",
            "a\\b",
            "a\nb",
        ] {
            assert!(RepoPath::parse(bad).is_err(), "{bad:?} must be refused");
        }
        assert_eq!(
            RepoPath::parse("model-deployments/test/app/config.yaml")
                .unwrap()
                .to_string(),
            "model-deployments/test/app/config.yaml"
        );
        assert!(
            RepoPath::parse("..config/x").is_ok(),
            "`..config` is a plain name"
        );
    }

    #[test]
    fn app_and_environment_names_are_single_safe_components() {
        for bad in [
            "",
            "..",
            ".",
            "a/b",
            "-x",
            ".hidden",
            "a b",
            "x\0",
            &"a".repeat(254),
        ] {
            assert!(RepoPath::for_app(bad, "app").is_err(), "env {bad:?}");
            assert!(RepoPath::for_app("test", bad).is_err(), "app {bad:?}");
        }
        assert_eq!(
            RepoPath::for_app("test", "jukebox").unwrap().to_string(),
            "model-deployments/test/jukebox/config.yaml"
        );
    }

    #[test]
    fn lookup_refuses_symlinks_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let blob = repo.blob(b"a: 1\n").unwrap();
        let link = repo.blob(b"../../etc").unwrap();
        let mut inner = repo.treebuilder(None).unwrap();
        inner.insert("config.yaml", blob, 0o100644).unwrap();
        let inner = inner.write().unwrap();
        let mut root = repo.treebuilder(None).unwrap();
        root.insert("dir", inner, 0o040000).unwrap();
        root.insert("out", link, 0o120000).unwrap();
        root.insert("file.yaml", blob, 0o100644).unwrap();
        let tree = repo.find_tree(root.write().unwrap()).unwrap();
        let p = |s| RepoPath::parse(s).unwrap();
        assert_eq!(
            lookup(&repo, &tree, &p("dir/config.yaml")).unwrap().blob,
            blob
        );
        assert!(
            lookup(&repo, &tree, &p("out/passwd"))
                .unwrap_err()
                .to_string()
                .contains("symbolic link")
        );
        assert!(
            lookup(&repo, &tree, &p("out"))
                .unwrap_err()
                .to_string()
                .contains("symbolic link")
        );
        assert!(
            lookup(&repo, &tree, &p("dir"))
                .unwrap_err()
                .to_string()
                .contains("not a regular file")
        );
        assert!(
            lookup(&repo, &tree, &p("file.yaml/x"))
                .unwrap_err()
                .to_string()
                .contains("not a directory")
        );
        assert!(
            lookup(&repo, &tree, &p("nope.yaml"))
                .unwrap_err()
                .to_string()
                .contains("does not exist")
        );
    }
}
