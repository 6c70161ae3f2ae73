//! Test fixture: a real `git http-backend` (ct_forge_emulator::git_http) behind Basic auth, bare
//! repositories made with the git CLI, and a runner for the step binary.

#![allow(dead_code)]

pub mod tls;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ct_forge_emulator::git_http::{GitHttp, PushEvent};

pub const USER: &str = "pipeline-bot";
pub const PASSWORD: &str = "s3cret-Passw0rd";

/// A git server on loopback serving bare repositories under a temp root.
pub struct GitServer {
    pub url: String,
    pub root: tempfile::TempDir,
    pub pushes: Arc<Mutex<Vec<PushEvent>>>,
    pub push_count: Arc<AtomicUsize>,
    _server: ct_forge_emulator::Server,
    pub rt: tokio::runtime::Runtime,
}

impl GitServer {
    pub fn start() -> GitServer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let root = tempfile::tempdir().unwrap();
        let pushes = Arc::new(Mutex::new(Vec::new()));
        let push_count = Arc::new(AtomicUsize::new(0));
        let (p, c) = (pushes.clone(), push_count.clone());
        let git = GitHttp::with_user(root.path(), USER, PASSWORD).on_push(Arc::new(move |ev| {
            c.fetch_add(1, Ordering::SeqCst);
            p.lock().unwrap().push(ev);
        }));
        let server = rt
            .block_on(ct_forge_emulator::Server::start(
                ct_forge_emulator::loopback(0),
                git.router(),
            ))
            .unwrap();
        GitServer {
            url: server.url.clone(),
            root,
            pushes,
            push_count,
            _server: server,
            rt,
        }
    }

    pub fn repo_url(&self, name: &str) -> String {
        format!("{}/{name}.git", self.url)
    }

    pub fn bare(&self, name: &str) -> PathBuf {
        self.root.path().join(format!("{name}.git"))
    }

    /// Create a bare repository `name` whose `main` holds `files` (path, bytes), one commit.
    pub fn create_repo(&self, name: &str, files: &[(&str, &[u8])]) -> PathBuf {
        let seed = tempfile::tempdir().unwrap();
        git(seed.path(), &["init", "-q", "-b", "main"]);
        for (path, bytes) in files {
            let p = seed.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, bytes).unwrap();
        }
        git(seed.path(), &["add", "-A"]);
        git(seed.path(), &["commit", "-q", "-m", "seed"]);
        let bare = self.bare(name);
        std::fs::create_dir_all(bare.parent().unwrap()).unwrap();
        git(
            self.root.path(),
            &[
                "clone",
                "-q",
                "--bare",
                seed.path().to_str().unwrap(),
                bare.to_str().unwrap(),
            ],
        );
        bare
    }

    pub fn pushes(&self) -> usize {
        self.push_count.load(Ordering::SeqCst)
    }
}

/// Run git with a fixed identity; panic on failure. Returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=seed",
            "-c",
            "user.email=seed@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `git show <rev>:<path>` in a bare repository.
pub fn show(bare: &Path, rev_path: &str) -> String {
    git(bare, &["show", rev_path])
}

pub fn rev(bare: &Path, rev: &str) -> String {
    git(bare, &["rev-parse", rev]).trim().to_string()
}

pub fn count(bare: &Path, rev: &str) -> usize {
    git(bare, &["rev-list", "--count", rev])
        .trim()
        .parse()
        .unwrap()
}

/// A step invocation with a password file and a results directory.
pub struct Step {
    pub cmd: Command,
    pub results: tempfile::TempDir,
    _secrets: tempfile::TempDir,
}

impl Step {
    pub fn new(repo_url: &str) -> Step {
        Self::with_password(repo_url, PASSWORD)
    }

    pub fn with_password(repo_url: &str, password: &str) -> Step {
        let secrets = tempfile::tempdir().unwrap();
        let pf = secrets.path().join("password");
        std::fs::write(&pf, format!("{password}\n")).unwrap();
        let results = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bump-gitops-version"));
        for (k, _) in std::env::vars() {
            if k.starts_with("CT_") || k.to_ascii_lowercase().ends_with("_proxy") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("--repo-url")
            .arg(repo_url)
            .arg("--username")
            .arg(USER)
            .arg("--password-file")
            .arg(&pf)
            .arg("--results-dir")
            .arg(results.path())
            .arg("--retry-delay")
            .arg("20ms")
            .arg("--timeout")
            .arg("30s");
        Step {
            cmd,
            results,
            _secrets: secrets,
        }
    }

    /// A step without any credentials flags.
    pub fn anonymous(repo_url: &str) -> Step {
        let results = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bump-gitops-version"));
        for (k, _) in std::env::vars() {
            if k.starts_with("CT_") || k.to_ascii_lowercase().ends_with("_proxy") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("--repo-url")
            .arg(repo_url)
            .arg("--results-dir")
            .arg(results.path())
            .arg("--timeout")
            .arg("30s");
        Step {
            cmd,
            results,
            _secrets: tempfile::tempdir().unwrap(),
        }
    }

    pub fn args(mut self, args: &[&str]) -> Step {
        self.cmd.args(args);
        self
    }

    pub fn run(mut self) -> Run {
        let output = self.cmd.output().unwrap();
        Run {
            output,
            results: self.results,
        }
    }
}

pub struct Run {
    pub output: Output,
    pub results: tempfile::TempDir,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    pub fn result(&self, name: &str) -> String {
        std::fs::read_to_string(self.results.path().join(name))
            .unwrap_or_else(|e| panic!("result {name}: {e}; stderr: {}", self.stderr()))
    }
    /// Assert success and return self.
    pub fn ok(self) -> Run {
        assert_eq!(self.code(), 0, "step failed: {}", self.stderr());
        self
    }
}
