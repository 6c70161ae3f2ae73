//! The one git CLI runner: every `git` the emulators, the interpreter's stand-ins and the demo
//! start goes through [`Git`], so the environment is cleaned one way.
//!
//! A [`Git`] command ignores the caller's git environment (`GIT_DIR`, `GIT_WORK_TREE`,
//! `GIT_INDEX_FILE`), the system and global config (`GIT_CONFIG_NOSYSTEM`, `GIT_CONFIG_GLOBAL`),
//! never prompts (`GIT_TERMINAL_PROMPT=0`, stdin is null) and trusts repositories owned by other
//! users (`safe.directory=*`: CI containers run as another uid than the files). Whatever else a
//! command needs (an identity, a HOME, a credential file, an index) it says with the builder.

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::Error;

/// A `git` command with a clean environment.
#[derive(Debug)]
pub struct Git {
    cmd: Command,
    /// The subcommand, for messages (`git clone: …`).
    what: String,
}

impl Default for Git {
    fn default() -> Self {
        Self::new()
    }
}

impl Git {
    /// `git` in the current directory.
    pub fn new() -> Git {
        let mut cmd = Command::new("git");
        cmd.env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "safe.directory")
            .env("GIT_CONFIG_VALUE_0", "*")
            .stdin(Stdio::null());
        Git {
            cmd,
            what: String::new(),
        }
    }

    /// `git --git-dir DIR` (a bare repository).
    pub fn bare(dir: &Path) -> Git {
        let mut g = Git::new();
        g.cmd.arg("--git-dir").arg(dir);
        g
    }

    /// `git -C DIR` (a work tree).
    pub fn work_tree(dir: &Path) -> Git {
        let mut g = Git::new();
        g.cmd.arg("-C").arg(dir);
        g
    }

    /// `--work-tree DIR` for a bare repository's command (e.g. `add` from a plain directory).
    pub fn with_work_tree(mut self, dir: &Path) -> Git {
        self.cmd.arg("--work-tree").arg(dir);
        self
    }

    /// Author and committer of the commits this command makes.
    pub fn identity(mut self, name: &str, email: &str) -> Git {
        self.cmd
            .env("GIT_AUTHOR_NAME", name)
            .env("GIT_AUTHOR_EMAIL", email)
            .env("GIT_COMMITTER_NAME", name)
            .env("GIT_COMMITTER_EMAIL", email);
        self
    }

    /// Credentials from a git-credential-store file (and no other helper).
    pub fn credential_store(mut self, file: &Path) -> Git {
        self.cmd
            .arg("-c")
            .arg("credential.helper=")
            .arg("-c")
            .arg(format!("credential.helper=store --file={}", file.display()));
        self
    }

    /// No credential helper at all.
    pub fn no_credential_helper(mut self) -> Git {
        self.cmd.arg("-c").arg("credential.helper=");
        self
    }

    /// An environment variable for this command (`HOME`, `GIT_INDEX_FILE`, …).
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Git {
        self.cmd.env(key, value);
        self
    }

    /// The directory the command runs in.
    pub fn current_dir(mut self, dir: &Path) -> Git {
        self.cmd.current_dir(dir);
        self
    }

    /// One argument (the first one names the command in messages: put the subcommand first).
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Git {
        if self.what.is_empty() {
            self.what = arg.as_ref().to_string_lossy().into_owned();
        }
        self.cmd.arg(arg);
        self
    }

    /// Several arguments.
    pub fn args<I, S>(self, args: I) -> Git
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        args.into_iter().fold(self, Git::arg)
    }

    /// Run it; its stdout, trimmed. A non-zero exit is an error with git's stderr.
    pub fn run(self) -> Result<String, Error> {
        let out = self.output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Run it with `input` on stdin; its stdout, trimmed.
    pub fn run_with_input(mut self, input: &[u8]) -> Result<String, Error> {
        let what = self.what.clone();
        self.cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self
            .cmd
            .spawn()
            .map_err(|e| Error::internal(format!("git {what}: cannot run git: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(input)
                .map_err(|e| Error::internal(format!("git {what}: {e}")))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| Error::internal(format!("git {what}: {e}")))?;
        checked(&what, out).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    }

    /// Run it; whether it exited 0 (for predicates like `merge-base --is-ancestor`).
    pub fn succeeds(mut self) -> Result<bool, Error> {
        let what = self.what.clone();
        self.cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .map_err(|e| Error::internal(format!("git {what}: cannot run git: {e}")))
    }

    /// Run it; the whole output. A non-zero exit is an error with git's stderr.
    pub fn output(mut self) -> Result<Output, Error> {
        let what = self.what.clone();
        let out = self
            .cmd
            .output()
            .map_err(|e| Error::internal(format!("git {what}: cannot run git: {e}")))?;
        checked(&what, out)
    }

    /// The command, for a caller that runs it itself (e.g. as a `tokio::process::Command`).
    pub fn into_command(self) -> Command {
        self.cmd
    }
}

fn checked(what: &str, out: Output) -> Result<Output, Error> {
    if out.status.success() {
        return Ok(out);
    }
    Err(Error::internal(format!(
        "git {what}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_in_a_clean_environment_and_reports_failures_with_stderr() {
        let tmp = std::env::temp_dir().join(format!("ct-emulator-git-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        let repo = tmp.join("r.git");
        Git::new()
            .args(["init", "--bare", "-q", "-b", "main"])
            .arg(&repo)
            .run()
            .unwrap();
        let blob = Git::bare(&repo)
            .args(["hash-object", "-w", "--stdin"])
            .run_with_input(b"hello\n")
            .unwrap();
        assert_eq!(blob, "ce013625030ba8dba906f756967f9e9ca394464a");
        assert!(
            !Git::bare(&repo)
                .args(["rev-parse", "--verify", "-q", "main"])
                .succeeds()
                .unwrap()
        );
        let e = Git::bare(&repo)
            .args(["rev-parse", "--verify", "nope"])
            .run()
            .unwrap_err();
        assert!(e.message().starts_with("git rev-parse: "), "{e}");
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
