//! Local stand-ins for the catalog Tasks the pipeline takes from the cluster resolver.
//!
//! They are not emulations of the catalog Tasks' scripts; each does the smallest honest thing that
//! gives the rest of the pipeline what it needs, and says in its log that it is a stand-in:
//!
//! - `git-clone`: the host's `git` clones `URL` and checks out `REVISION` (the exact commit) into the
//!   `output` workspace, with the `.git-credentials` of the `basic-auth` workspace when bound.
//!   Results `COMMIT`, `URL`, `COMMITTER_DATE` as the catalog Task writes them.
//! - `buildah`: builds and pushes nothing. It checks that the Containerfile exists and writes
//!   `IMAGE_URL` = `IMAGE` and `IMAGE_DIGEST` = `sha256:` + the SHA-256 of the Containerfile and
//!   every file of the build context (a content hash, NOT a registry manifest digest).

use std::io::Write;
use std::path::{Path, PathBuf};

use ct_emulator::git::Git;
use sha2::{Digest, Sha256};

use super::model::{ParamSpec, ParamValue, ResultDecl, TaskSpec, WorkspaceDecl};

/// A catalog Task replaced locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandIn {
    GitClone,
    Buildah,
}

impl StandIn {
    /// The stand-in for a resolver ref to the catalog Task `name`.
    pub fn for_catalog_task(name: &str) -> Option<StandIn> {
        match name {
            "git-clone" => Some(StandIn::GitClone),
            "buildah" => Some(StandIn::Buildah),
            _ => None,
        }
    }

    pub fn catalog_name(self) -> &'static str {
        match self {
            StandIn::GitClone => "git-clone",
            StandIn::Buildah => "buildah",
        }
    }

    /// What the stand-in does instead of the catalog Task, for logs and summaries.
    pub fn label(self) -> &'static str {
        match self {
            StandIn::GitClone => {
                "local stand-in for the catalog git-clone Task: host `git clone` + checkout of REVISION"
            }
            StandIn::Buildah => {
                "local stand-in for the catalog buildah Task: NO image is built or pushed; IMAGE_DIGEST is a SHA-256 of the Containerfile and build context"
            }
        }
    }

    /// The interface of the catalog Task (OpenShift Pipelines' tektoncd-catalog versions):
    /// params with their defaults, workspaces and results.
    pub fn spec(self) -> TaskSpec {
        let p = |name: &str, default: Option<&str>| ParamSpec {
            name: name.into(),
            type_: "string".into(),
            default: default.map(|d| ParamValue::Str(d.into())),
            enum_: None,
        };
        let w = |name: &str, optional: bool| WorkspaceDecl {
            name: name.into(),
            optional,
            read_only: false,
            mount_path: None,
        };
        let r = |name: &str| ResultDecl {
            name: name.into(),
            type_: "string".into(),
        };
        match self {
            StandIn::GitClone => TaskSpec {
                params: vec![
                    p("URL", None),
                    p("REVISION", Some("")),
                    p("REFSPEC", Some("")),
                    p("SUBMODULES", Some("true")),
                    p("DEPTH", Some("1")),
                    p("SSL_VERIFY", Some("true")),
                    p("CRT_FILENAME", Some("ca-bundle.crt")),
                    p("SUBDIRECTORY", Some("")),
                    p("SPARSE_CHECKOUT_DIRECTORIES", Some("")),
                    p("DELETE_EXISTING", Some("true")),
                    p("VERBOSE", Some("false")),
                ],
                workspaces: vec![
                    w("output", false),
                    w("ssh-directory", true),
                    w("basic-auth", true),
                    w("ssl-ca-directory", true),
                ],
                results: vec![r("COMMIT"), r("URL"), r("COMMITTER_DATE")],
                ..TaskSpec::default()
            },
            StandIn::Buildah => TaskSpec {
                params: vec![
                    p("IMAGE", None),
                    p("DOCKERFILE", Some("./Dockerfile")),
                    p("CONTEXT", Some(".")),
                    p("STORAGE_DRIVER", Some("vfs")),
                    p("FORMAT", Some("oci")),
                    p("BUILD_EXTRA_ARGS", Some("")),
                    p("PUSH_EXTRA_ARGS", Some("")),
                    p("SKIP_PUSH", Some("false")),
                    p("TLS_VERIFY", Some("true")),
                    p("VERBOSE", Some("false")),
                ],
                workspaces: vec![
                    w("source", false),
                    w("sslcertdir", true),
                    w("rhel-entitlement", true),
                    w("dockerconfig", true),
                ],
                results: vec![r("IMAGE_DIGEST"), r("IMAGE_URL")],
                ..TaskSpec::default()
            },
        }
    }
}

/// What a stand-in gets: resolved params, bound workspace dirs, its results dir and a log.
pub struct Invocation<'a> {
    pub params: &'a std::collections::BTreeMap<String, String>,
    pub workspaces: &'a std::collections::BTreeMap<String, PathBuf>,
    pub results_dir: &'a Path,
    pub home: &'a Path,
    pub log: &'a mut dyn FnMut(&str),
}

impl Invocation<'_> {
    fn param(&self, name: &str) -> &str {
        self.params.get(name).map(String::as_str).unwrap_or("")
    }

    fn write_result(&mut self, name: &str, value: &str) -> Result<(), String> {
        std::fs::write(self.results_dir.join(name), value)
            .map_err(|e| format!("cannot write result {name}: {e}"))
    }
}

/// Run a stand-in; `Err` is the failure message.
pub fn run(kind: StandIn, inv: &mut Invocation<'_>) -> Result<(), String> {
    (inv.log)(&format!("[stand-in] {}", kind.label()));
    match kind {
        StandIn::GitClone => git_clone(inv),
        StandIn::Buildah => buildah(inv),
    }
}

/// `git` with the TaskRun's HOME, as the catalog Task's container has it.
fn git(home: &Path) -> Git {
    Git::new().env("HOME", home)
}

/// Run `cmd`; `what` names the failure (`git-clone: checkout of REVISION x: …`).
fn run_git(cmd: Git, what: &str) -> Result<String, String> {
    cmd.run().map_err(|e| format!("{what}: {e}"))
}

fn git_clone(inv: &mut Invocation<'_>) -> Result<(), String> {
    let url = inv.param("URL").to_string();
    let revision = inv.param("REVISION").to_string();
    if url.is_empty() {
        return Err("git-clone: param URL is empty".into());
    }
    let output = inv
        .workspaces
        .get("output")
        .ok_or("git-clone: workspace output is not bound")?
        .clone();
    let sub = inv.param("SUBDIRECTORY").to_string();
    if sub.split('/').any(|c| c == "..") || sub.starts_with('/') {
        return Err(format!(
            "git-clone: SUBDIRECTORY {sub:?} leaves the workspace"
        ));
    }
    let dest = if sub.is_empty() {
        output.clone()
    } else {
        output.join(&sub)
    };
    if inv.param("DELETE_EXISTING") == "true" && dest.exists() {
        for entry in std::fs::read_dir(&dest).map_err(|e| format!("git-clone: {e}"))? {
            let p = entry.map_err(|e| format!("git-clone: {e}"))?.path();
            let r = if p.is_dir() && !p.is_symlink() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            r.map_err(|e| format!("git-clone: cannot clean {}: {e}", p.display()))?;
        }
    }
    std::fs::create_dir_all(&dest).map_err(|e| format!("git-clone: {e}"))?;
    let mut clone = git(inv.home);
    if let Some(auth) = inv.workspaces.get("basic-auth") {
        let creds = auth.join(".git-credentials");
        if !creds.is_file() {
            return Err(format!(
                "git-clone: the basic-auth workspace has no .git-credentials ({})",
                creds.display()
            ));
        }
        // As the catalog Task does: copy the Secret's file into HOME (git's store helper
        // rewrites its file after a successful login; the Secret must stay untouched).
        let copy = inv.home.join(".git-credentials");
        std::fs::copy(&creds, &copy)
            .map_err(|e| format!("git-clone: cannot copy .git-credentials: {e}"))?;
        clone = clone.credential_store(&copy);
    } else {
        clone = clone.no_credential_helper();
    }
    (inv.log)(&format!("[stand-in] git clone {url}"));
    let clone = clone
        .args(["clone", "--quiet", "--no-checkout"])
        .arg(&url)
        .arg(&dest);
    run_git(clone, "git-clone")?;
    let rev = if revision.is_empty() {
        "HEAD".to_string()
    } else {
        revision.clone()
    };
    let in_dest = || Git::work_tree(&dest).env("HOME", inv.home);
    run_git(
        in_dest()
            .args(["checkout", "--quiet", "--detach"])
            .arg(&rev),
        &format!("git-clone: checkout of REVISION {rev}"),
    )?;
    let commit = run_git(in_dest().args(["rev-parse", "HEAD"]), "git-clone")?;
    let date = run_git(in_dest().args(["log", "-1", "--format=%ct"]), "git-clone")?;
    (inv.log)(&format!("[stand-in] checked out {commit}"));
    inv.write_result("COMMIT", &commit)?;
    inv.write_result("URL", &url)?;
    inv.write_result("COMMITTER_DATE", &date)?;
    Ok(())
}

fn buildah(inv: &mut Invocation<'_>) -> Result<(), String> {
    let image = inv.param("IMAGE").to_string();
    if image.is_empty() {
        return Err("buildah: param IMAGE is empty".into());
    }
    let source = inv
        .workspaces
        .get("source")
        .ok_or("buildah: workspace source is not bound")?
        .clone();
    let rel = |p: &str| -> Result<PathBuf, String> {
        if p.split('/').any(|c| c == "..") || p.starts_with('/') {
            return Err(format!("buildah: path {p:?} leaves the source workspace"));
        }
        Ok(source.join(p))
    };
    let containerfile = rel(inv.param("DOCKERFILE"))?;
    let context = rel(inv.param("CONTEXT"))?;
    let cf = std::fs::read(&containerfile).map_err(|e| {
        format!(
            "buildah: cannot read DOCKERFILE {} ({e}); the build would fail",
            containerfile.display()
        )
    })?;
    if !context.is_dir() {
        return Err(format!(
            "buildah: CONTEXT {} is not a directory",
            context.display()
        ));
    }
    let mut h = Sha256::new();
    h.update(b"ct-sandbox buildah stand-in v1\0");
    h.update((cf.len() as u64).to_le_bytes());
    h.update(&cf);
    let mut files = Vec::new();
    collect_files(&context, &context, &mut files).map_err(|e| format!("buildah: {e}"))?;
    files.sort();
    for rel in &files {
        let bytes = std::fs::read(context.join(rel)).map_err(|e| format!("buildah: {e}"))?;
        h.update(rel.as_bytes());
        h.update(b"\0");
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    let digest = format!("sha256:{}", hex::encode(h.finalize()));
    (inv.log)(&format!(
        "[stand-in] {} files in the context; IMAGE_URL={image} IMAGE_DIGEST={digest} (content hash, nothing pushed)",
        files.len()
    ));
    inv.write_result("IMAGE_DIGEST", &digest)?;
    inv.write_result("IMAGE_URL", &image)?;
    Ok(())
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_name() == ".git" {
            continue;
        }
        let ft = entry.file_type()?;
        if ft.is_dir() {
            collect_files(root, &path, out)?;
        } else if ft.is_file() {
            let rel = path
                .strip_prefix(root)
                .map_err(std::io::Error::other)?
                .to_string_lossy()
                .into_owned();
            out.push(rel);
        }
    }
    Ok(())
}

/// Append to a log file (used for stand-in logs beside the real steps' logs).
pub fn append_log(path: &Path, line: &str) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}
