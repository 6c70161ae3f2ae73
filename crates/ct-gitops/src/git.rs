//! libgit2 transport: credentials (never on disk or in URLs), TLS setup, shallow fetch and
//! push with per-ref status. Failures are `StepError`s classified here, where the cause is
//! known: bad input is a usage error, the remote, auth and the network are remote errors, and
//! a SIGTERM is `Terminated`. A push that lost a race to another writer is not an error but
//! [`Push::Raced`]: the caller fetches, re-applies and tries again.
//!
//! libgit2 quirks handled here:
//! - it calls the credential callback again after every 401, forever: attempts are capped, so
//!   a wrong password is a clear error;
//! - `Remote::push` returns `Ok` even when the server rejects a ref (hook, lock, stale
//!   old value): every ref's status is collected from `push_update_reference`;
//! - it refuses a non-fast-forward push locally (`ErrorCode::NotFastForward`).

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ct_step::input::{MAX_CA_FILE, read_bounded};
use ct_step::{ErrorKind, Result, StepError};
use git2::{
    CertificateCheckStatus, Cred, CredentialType, ErrorCode, FetchOptions, Oid, ProxyOptions,
    PushOptions, RemoteCallbacks, Repository,
};
use url::Url;

/// Credentials for HTTP Basic auth. The password is never logged, written or put in a URL.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// Times the credential callback may run in one operation before giving up. libgit2 asks
/// once per 401; a correct password is asked for once per connection.
pub const MAX_AUTH_ATTEMPTS: u32 = 3;

/// Where and how to reach the remote.
#[derive(Debug, Clone)]
pub struct Remote {
    /// http(s) URL without user info.
    pub url: String,
    pub credentials: Option<Credentials>,
    /// Accept any server certificate (debugging only).
    pub insecure_skip_tls_verify: bool,
}

/// Validate a repository URL: http or https, no password in it, no query or fragment, no
/// whitespace or control character (a URL parser would drop a tab or newline silently).
/// Returns the URL and the user name it carried (if any). Problems are usage errors.
pub fn parse_repo_url(s: &str) -> Result<(String, Option<String>)> {
    if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(StepError::usage(
            "--repo-url has a space or control character; write e.g. https://gitea.example.com/org/gitops.git",
        ));
    }
    let url = Url::parse(s).map_err(|e| {
        StepError::usage(format!(
            "--repo-url `{s}` is not a URL ({e}); write e.g. https://gitea.example.com/org/gitops.git"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(StepError::usage(format!(
            "--repo-url `{}`: only http and https are supported",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(StepError::usage("--repo-url has no host"));
    }
    if url.password().is_some() {
        return Err(StepError::usage(
            "--repo-url contains a password; remove it and pass --password-file, --git-credentials-file or CT_GIT_PASSWORD",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(StepError::usage(
            "--repo-url must not have a query or fragment",
        ));
    }
    let user = (!url.username().is_empty()).then(|| percent_decode(url.username()));
    let mut clean = url.clone();
    let _ = clean.set_username("");
    Ok((clean.to_string(), user))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Find the credentials for `repo_url` in a git-credential-store file (`.git-credentials`,
/// one `https://user:password@host[:port][/path]` per line). The scheme and host (and port)
/// must match; an entry with a path must be a prefix of the repository path. When
/// `username` is given, only entries for that user match.
pub fn credentials_from_store(
    content: &str,
    repo_url: &str,
    username: Option<&str>,
) -> Option<Credentials> {
    let repo = Url::parse(repo_url).ok()?;
    content.lines().find_map(|line| {
        let entry = Url::parse(&decode_store_port(line.trim())).ok()?;
        let same = entry.scheme() == repo.scheme()
            && entry.host_str() == repo.host_str()
            && entry.port_or_known_default() == repo.port_or_known_default();
        let path = entry.path().trim_end_matches('/');
        let path_ok = path.is_empty() || repo.path().starts_with(path);
        let user = percent_decode(entry.username());
        let user_ok = username.is_none_or(|u| u == user);
        (same && path_ok && user_ok && entry.password().is_some()).then(|| Credentials {
            username: user,
            password: percent_decode(entry.password().unwrap_or_default()),
        })
    })
}

/// git's credential store writes the port URL-encoded inside the host (`host%3a8443`, since git
/// keeps `host:port` as one field): turn it back into `host:8443` so the URL parses.
fn decode_store_port(line: &str) -> String {
    let Some((scheme, rest)) = line.split_once("://") else {
        return line.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (userinfo, host) = match authority.rfind('@') {
        Some(i) => authority.split_at(i + 1),
        None => ("", authority),
    };
    let host = host.replace("%3a", ":").replace("%3A", ":");
    format!("{scheme}://{userinfo}{host}{path}")
}

/// Initialise libgit2 (and its OpenSSL environment probe). Call first thing in `main`,
/// while the process has a single thread.
pub fn preinit() {
    // Any option call runs git2's one-time init (libgit2 + OpenSSL probe); caching is on by
    // default, so this changes nothing else.
    git2::opts::enable_caching(true);
}

/// Process-wide TLS and timeout setup. Call once, early, before other threads use libgit2.
///
/// `ca_file` (read with the [`MAX_CA_FILE`] bound, so a pipe or device cannot hang or flood
/// the step) is added to OpenSSL's default verify paths (the system roots stay trusted): its
/// bytes are handed to libgit2 through a private temporary copy, loaded at once and removed.
pub fn init_process(ca_file: Option<&Path>, timeout: Duration) -> Result<()> {
    preinit();
    if let Some(ca) = ca_file {
        let pem = read_bounded(ca, MAX_CA_FILE, "--ca-file")?;
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(StepError::usage(format!(
                "--ca-file {}: holds no PEM certificate; pass a PEM bundle",
                ca.display()
            )));
        }
        let copy = tempfile::Builder::new()
            .prefix("bump-gitops-ca-")
            .tempfile()
            .and_then(|mut f| {
                std::io::Write::write_all(&mut f, &pem)?;
                Ok(f)
            })
            .map_err(|e| {
                StepError::remote(format!(
                    "cannot copy the CA bundle to a temporary file: {e}"
                ))
            })?;
        // SAFETY: called once at startup, before any other libgit2 use on other threads.
        // libgit2 loads the file into its OpenSSL context at once (SSL_CTX_load_verify_locations).
        unsafe { git2::opts::set_ssl_cert_file(copy.path()) }.map_err(|e| {
            StepError::usage(format!("--ca-file {}: {}", ca.display(), e.message()))
        })?;
    }
    let ms = i32::try_from(timeout.as_millis())
        .unwrap_or(i32::MAX)
        .max(1);
    // SAFETY: as above; plain integer options.
    unsafe {
        git2::opts::set_server_connect_timeout_in_milliseconds(ms)
            .and_then(|_| git2::opts::set_server_timeout_in_milliseconds(ms))
            .map_err(|e| StepError::remote(format!("cannot set git timeouts: {}", e.message())))?;
    }
    Ok(())
}

/// How a push that did not fail ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Push {
    /// The server took the update.
    Done,
    /// A concurrent writer moved the branch (non-fast-forward, a broken lease, or the server
    /// refused the update for that reason): fetch, re-apply and try again. The text says what
    /// happened.
    Raced(String),
}

/// Whether a server's refusal of a ref update means another writer got there first.
pub fn is_race_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "fetch first",
        "non-fast-forward",
        "failed to update ref",
        "cannot lock ref",
        "failed to lock",
        "stale info",
        "incorrect old value",
    ]
    .iter()
    .any(|p| m.contains(p))
}

fn cancelled() -> StepError {
    StepError::new(ErrorKind::Terminated, "terminated by signal")
}

/// State shared by the callbacks of one operation.
struct Session<'a> {
    remote: &'a Remote,
    attempts: Cell<u32>,
    auth_error: RefCell<Option<String>>,
}

impl<'a> Session<'a> {
    fn new(remote: &'a Remote) -> Self {
        Session {
            remote,
            attempts: Cell::new(0),
            auth_error: RefCell::new(None),
        }
    }

    fn callbacks(&'a self) -> RemoteCallbacks<'a> {
        let mut cb = RemoteCallbacks::new();
        cb.credentials(move |url, _user_from_url, allowed| {
            let n = self.attempts.get() + 1;
            self.attempts.set(n);
            let fail = |m: String| {
                *self.auth_error.borrow_mut() = Some(m.clone());
                Err(git2::Error::from_str(&m))
            };
            let Some(c) = &self.remote.credentials else {
                return fail(format!(
                    "{url} requires authentication; pass --username with --password-file, --git-credentials-file, or CT_GIT_USERNAME/CT_GIT_PASSWORD"
                ));
            };
            if !allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
                return fail(format!(
                    "{url} asks for an authentication method other than user/password ({allowed:?})"
                ));
            }
            if n > MAX_AUTH_ATTEMPTS {
                return fail(format!(
                    "authentication as `{}` failed at {url} ({} attempts); check the user name and password",
                    c.username,
                    n - 1
                ));
            }
            Cred::userpass_plaintext(&c.username, &c.password)
        });
        if self.remote.insecure_skip_tls_verify {
            cb.certificate_check(|_, _| Ok(CertificateCheckStatus::CertificateOk));
        }
        cb.transfer_progress(|_| !ct_step::signal::is_terminated());
        cb.sideband_progress(|_| !ct_step::signal::is_terminated());
        cb
    }

    /// A libgit2 failure as a step error (a non-fast-forward push is handled by [`push`]).
    fn classify(&self, e: &git2::Error) -> StepError {
        if ct_step::signal::is_terminated() {
            return cancelled();
        }
        if let Some(m) = self.auth_error.borrow().clone() {
            return StepError::remote(m);
        }
        if e.code() == ErrorCode::Auth
            || e.class() == git2::ErrorClass::Http && e.message().contains("401")
        {
            return StepError::remote(format!(
                "authentication failed at {}: {}",
                self.remote.url,
                e.message()
            ));
        }
        StepError::remote(format!("{}: {}", self.remote.url, e.message()))
    }
}

/// Fetch `refspecs` (`+refs/heads/x:refs/…`) from the remote, `depth` 0 = full history.
/// Refspecs whose source branch does not exist on the remote fetch nothing.
pub fn fetch(repo: &Repository, remote: &Remote, refspecs: &[String], depth: i32) -> Result<()> {
    let session = Session::new(remote);
    let mut fo = FetchOptions::new();
    fo.remote_callbacks(session.callbacks());
    let mut proxy = ProxyOptions::new();
    proxy.auto();
    fo.proxy_options(proxy);
    fo.download_tags(git2::AutotagOption::None);
    fo.update_fetchhead(false);
    if depth > 0 {
        fo.depth(depth);
    }
    let mut r = repo
        .remote_anonymous(&remote.url)
        .map_err(|e| StepError::usage(format!("--repo-url: {}", e.message())))?;
    r.fetch(refspecs, Some(&mut fo), None)
        .map_err(|e| session.classify(&e))
}

/// One ref to push.
#[derive(Debug, Clone)]
pub struct PushSpec {
    pub commit: Oid,
    /// Full remote ref name, `refs/heads/…`.
    pub dst: String,
    /// Force-with-lease: `Some(expected)` forces the update only while the remote ref still
    /// points at `expected` (`Oid::ZERO_SHA1` = must not exist). `None` = fast-forward only.
    pub lease: Option<Oid>,
}

/// Push one ref and check the server's per-ref answer.
pub fn push(repo: &Repository, remote: &Remote, spec: &PushSpec) -> Result<Push> {
    let session = Session::new(remote);
    let statuses: RefCell<Vec<(String, Option<String>)>> = RefCell::new(Vec::new());
    let lease_broken = Cell::new(false);
    let result = {
        let mut cb = session.callbacks();
        cb.push_update_reference(|refname, status| {
            statuses
                .borrow_mut()
                .push((refname.to_string(), status.map(str::to_string)));
            Ok(())
        });
        if let Some(expected) = spec.lease {
            let dst = spec.dst.clone();
            let lease_broken = &lease_broken;
            cb.push_negotiation(move |updates| {
                for u in updates {
                    if u.dst_refname() == Ok(dst.as_str()) && u.src() != expected {
                        lease_broken.set(true);
                        return Err(git2::Error::from_str("lease broken"));
                    }
                }
                Ok(())
            });
        }
        let mut po = PushOptions::new();
        po.remote_callbacks(cb);
        let mut proxy = ProxyOptions::new();
        proxy.auto();
        po.proxy_options(proxy);
        let force = if spec.lease.is_some() { "+" } else { "" };
        let refspec = format!("{force}{}:{}", spec.commit, spec.dst);
        let mut r = repo
            .remote_anonymous(&remote.url)
            .map_err(|e| StepError::usage(format!("--repo-url: {}", e.message())))?;
        r.push(&[refspec.as_str()], Some(&mut po))
    };
    if lease_broken.get() {
        return Ok(Push::Raced(format!(
            "{} changed on the remote since it was fetched",
            spec.dst
        )));
    }
    if let Err(e) = result {
        if e.code() == ErrorCode::NotFastForward && !ct_step::signal::is_terminated() {
            return Ok(Push::Raced(
                "the remote branch moved (non-fast-forward)".into(),
            ));
        }
        return Err(session.classify(&e));
    }
    let statuses = statuses.into_inner();
    if let Some((refname, Some(message))) = statuses.iter().find(|(_, s)| s.is_some()) {
        let what = format!("the server rejected the update of {refname}: {message}");
        return if is_race_message(message) {
            Ok(Push::Raced(what))
        } else {
            Err(StepError::remote(what))
        };
    }
    if !statuses.iter().any(|(r, _)| r == &spec.dst) {
        return Err(StepError::remote(format!(
            "the server did not report the status of {}",
            spec.dst
        )));
    }
    Ok(Push::Done)
}

/// A private temporary directory (mode 0700) for a bare repository; removed on drop.
pub fn private_tempdir() -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix("bump-gitops-").tempdir()
}

/// Open the repository containing `dir` (a checkout); not one is a usage error.
pub fn open_checkout(dir: &Path) -> Result<Repository> {
    Repository::open(dir).map_err(|e| {
        StepError::usage(format!(
            "--repo-dir {}: not a git checkout ({}); clone it first or drop --repo-dir",
            dir.display(),
            e.message()
        ))
    })
}

/// The URL of `origin` in a checkout, for `--repo-dir` without `--repo-url`.
pub fn origin_url(repo: &Repository) -> Option<String> {
    repo.find_remote("origin")
        .ok()?
        .url()
        .ok()
        .map(str::to_string)
}

/// Path of the working tree of `repo` (None for a bare repository).
pub fn workdir(repo: &Repository) -> Option<PathBuf> {
    repo.workdir().map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_urls_are_checked() {
        assert_eq!(
            parse_repo_url("https://git.example.com/org/repo.git").unwrap(),
            ("https://git.example.com/org/repo.git".to_string(), None)
        );
        let (u, user) = parse_repo_url("https://bot%40x@git.example.com/r.git").unwrap();
        assert_eq!(u, "https://git.example.com/r.git");
        assert_eq!(user.as_deref(), Some("bot@x"));
        for bad in [
            "https://u:secret@git.example.com/r.git",
            "ssh://git@git.example.com/r.git",
            "git.example.com/r.git",
            "https://git.example.com/r.git?x=1",
            "file:///tmp/r.git",
            "https://git.example.com/a\nb.git",
            "https://git.example.com/a\tb.git",
            "https://git.example.com/a b.git",
        ] {
            let e = parse_repo_url(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(!e.to_string().contains("secret"), "{e}");
        }
    }

    #[test]
    fn credential_store_entries_match_scheme_host_port_path_and_user() {
        let store = "https://alice:p%40ss@git.example.com\n\
                     https://bob:other@git.example.com:8443\n\
                     http://carol:c@git.example.com/team/\n";
        let c = credentials_from_store(store, "https://git.example.com/org/r.git", None).unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("alice", "p@ss")
        );
        let c = credentials_from_store(store, "https://git.example.com:8443/r.git", None).unwrap();
        assert_eq!(c.username, "bob");
        let c = credentials_from_store(store, "http://git.example.com/team/r.git", None).unwrap();
        assert_eq!(c.username, "carol");
        assert!(
            credentials_from_store(store, "http://git.example.com/other/r.git", None).is_none()
        );
        assert!(
            credentials_from_store(store, "https://git.example.com/r.git", Some("zed")).is_none()
        );
        assert!(format!("{c:?}").contains("***") && !format!("{c:?}").contains("\"c\""));
    }

    #[test]
    fn credential_store_ports_as_git_writes_them() {
        // `git credential-store` writes `host%3aport`.
        let store = "https://dave:d%3Ax@gitea.example.com%3a3000\n";
        let c =
            credentials_from_store(store, "https://gitea.example.com:3000/u/r.git", None).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("dave", "d:x"));
        assert!(credentials_from_store(store, "https://gitea.example.com/u/r.git", None).is_none());
    }

    #[test]
    fn races_are_told_apart_from_refusals() {
        assert!(is_race_message("failed to update ref"));
        assert!(is_race_message("cannot lock ref 'refs/heads/main'"));
        assert!(!is_race_message("pre-receive hook declined"));
    }
}
