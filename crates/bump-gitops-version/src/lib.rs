//! `bump-gitops-version`: set values in `model-deployments/<env>/<app>/config.yaml` (or any
//! YAML file) of a GitOps repository, byte-preserving, and push the commit safely.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use ct_gitops::bump::{self, MessageTemplate, Request};
use ct_gitops::git::{self, Credentials, Remote};
use ct_gitops::paths::RepoPath;
use ct_gitops::yaml::Setting;
use ct_step::cli::{CommonArgs, parse_duration, parse_positive_duration};
use ct_step::input::{MAX_SECRET_FILE, read_text_bounded};
use ct_step::{Context, Results, StepError};

const LONG_ABOUT: &str = "\
Set values in a GitOps repository and push the commit, safely.

Clones the base branch (depth 1, into a private temporary directory, bare: nothing is checked
out and no credentials are written anywhere), sets each --set KEY=VALUE in the file with a
byte-preserving YAML editor (only the changed values' bytes change; comments, blank lines,
quotes, indentation and CRLF stay; values are always written as YAML strings), and commits only
when bytes changed. The file must be at most 16 MiB.

Each --set on the command line is exactly one setting; its value is single-line text (a
newline, carriage return, tab or other control character is a usage error, never a second
key). Only the CT_SET variable is a list, one KEY=VALUE per line. Everything that can be
checked locally is checked before anything is fetched: the URL, branch names, the path, every
setting, the commit author (no control characters, `<` or `>`), the credential files (read
with a 1 MiB limit), the CA file (4 MiB) and the results directory.

Without --push-branch the commit goes to the base branch, never forced: when another pipeline
pushed first, the step fetches the new tip, re-applies the edit and pushes again (bounded,
with a jittered backoff). With --push-branch the step owns that branch: it is (re)built from
the current base plus the edit, and updated with force-with-lease only when its content
differs.

Credentials (never in argv): --username with --password-file, or --git-credentials-file (the
.git-credentials file or directory of Tekton's basic-auth workspace), or the environment
variables CT_GIT_USERNAME and CT_GIT_PASSWORD.

Results: COMMIT_SHA (the commit holding the values: new, or the existing tip when nothing
changed), BRANCH (the branch holding it), CHANGED (true/false).

Exit codes: 0 done (also when nothing changed), 2 bad input (flag, file, key, path, YAML),
3 remote, auth, network or push rejected by the server, 143 terminated.";

/// Flags of `bump-gitops-version`.
#[derive(Debug, Clone, Parser)]
#[command(name = "bump-gitops-version", version, about = "Byte-preserving value bump in a GitOps repository, pushed safely", long_about = LONG_ABOUT)]
pub struct Args {
    /// Repository URL (http or https, without credentials), e.g.
    /// https://gitea.example.com/org/gitops.git. With --repo-dir, defaults to its `origin`.
    #[arg(long, env = "CT_REPO_URL", value_name = "URL")]
    pub repo_url: Option<String>,

    /// User name for HTTP Basic auth (default: the user in --repo-url, or CT_GIT_USERNAME).
    #[arg(long, env = "CT_USERNAME", value_name = "USER")]
    pub username: Option<String>,

    /// File holding the password or token (trailing newline ignored; at most 1 MiB).
    /// Default: CT_GIT_PASSWORD.
    #[arg(long, env = "CT_PASSWORD_FILE", value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// git-credential-store file (`https://user:password@host` lines; at most 1 MiB), or the
    /// directory of Tekton's basic-auth workspace holding `.git-credentials`.
    #[arg(long, env = "CT_GIT_CREDENTIALS_FILE", value_name = "PATH")]
    pub git_credentials_file: Option<PathBuf>,

    /// Extra CA bundle (PEM, at most 4 MiB) trusted in addition to the system roots.
    /// Default: /var/run/secrets/kubernetes.io/serviceaccount/service-ca.crt when present.
    #[arg(long, env = "CT_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// Do not verify TLS certificates (debugging only).
    #[arg(long, env = "CT_INSECURE_SKIP_TLS_VERIFY", value_parser = ct_step::cli::bool_flag)]
    pub insecure_skip_tls_verify: bool,

    /// Branch to edit (and, without --push-branch, to push to; never forced).
    #[arg(
        long,
        env = "CT_BASE_BRANCH",
        default_value = "main",
        value_name = "BRANCH"
    )]
    pub base_branch: String,

    /// Commit on this branch, created from the base branch (e.g. `<app>-<version>` for a
    /// promotion PR); updated with force-with-lease only when its content differs.
    #[arg(long, env = "CT_PUSH_BRANCH", value_name = "BRANCH")]
    pub push_branch: Option<String>,

    /// File to edit, relative to the repository root (no `.`, `..` or empty components, nothing
    /// under `.git`, no symbolic link on the way). Alternative to --environment + --app.
    #[arg(long, env = "CT_FILE", value_name = "PATH", conflicts_with_all = ["environment", "app"])]
    pub file: Option<String>,

    /// Environment: edits model-deployments/<ENV>/<APP>/config.yaml (letters, digits, `.`,
    /// `_`, `-`; not starting with `.` or `-`).
    #[arg(long, env = "CT_ENVIRONMENT", value_name = "ENV", requires = "app")]
    pub environment: Option<String>,

    /// App: edits model-deployments/<ENV>/<APP>/config.yaml (same rules as --environment).
    #[arg(long, env = "CT_APP", value_name = "APP", requires = "environment")]
    pub app: Option<String>,

    /// KEY=VALUE to set (repeatable; each is one setting with a single-line value; CT_SET
    /// holds one KEY=VALUE per line). Dotted keys for nested mappings (`model.image.tag`),
    /// `[N]` for sequence items, `\.` for a literal dot. Values are always written as strings.
    #[arg(
        long = "set",
        env = "CT_SET",
        value_name = "KEY=VALUE",
        required = true
    )]
    pub set: Vec<String>,

    /// Add missing keys (as the last entry of their existing parent mapping) instead of failing.
    #[arg(long, env = "CT_CREATE_MISSING", value_parser = ct_step::cli::bool_flag)]
    pub create_missing: bool,

    /// Commit author name (one line, no `<` or `>`).
    #[arg(
        long,
        env = "CT_AUTHOR_NAME",
        default_value = "bump-gitops-version",
        value_name = "NAME"
    )]
    pub author_name: String,

    /// Commit author email (an address: one `@`, no spaces, `<` or `>`).
    #[arg(
        long,
        env = "CT_AUTHOR_EMAIL",
        default_value = "bump-gitops-version@noreply.local",
        value_name = "EMAIL"
    )]
    pub author_email: String,

    /// Commit message template: {app}, {environment}, {file}, {branch}, {changes}; may span
    /// lines (no control characters other than newline and tab).
    /// Default: `Bump {app} in {environment}: {changes}` (with --file: `Update {file}: {changes}`).
    #[arg(long, env = "CT_MESSAGE", value_name = "TEMPLATE")]
    pub message: Option<String>,

    /// Work in this existing checkout instead of a private temporary clone (its object store
    /// is used; after a push the checked-out branch is fast-forwarded when safe).
    #[arg(long, env = "CT_REPO_DIR", value_name = "DIR")]
    pub repo_dir: Option<PathBuf>,

    /// Print the diff and the results, create nothing on the remote.
    #[arg(long, env = "CT_DRY_RUN", value_parser = ct_step::cli::bool_flag)]
    pub dry_run: bool,

    /// Push attempts when other writers move the branch (fetch, re-apply, push again).
    #[arg(long, env = "CT_MAX_ATTEMPTS", default_value_t = 8, value_name = "N")]
    pub max_attempts: u32,

    /// First delay between push attempts: doubled per attempt, capped at 8 s, jittered (a
    /// random point in its upper half).
    #[arg(long, env = "CT_RETRY_DELAY", default_value = "500ms", value_parser = parse_duration, value_name = "DURATION")]
    pub retry_delay: Duration,

    /// Network timeout of one connect or read/write (above 0).
    #[arg(long, env = "CT_TIMEOUT", default_value = "60s", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub timeout: Duration,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// Result names.
pub const RESULTS: &[&str] = &["COMMIT_SHA", "BRANCH", "CHANGED"];

fn read_secret_file(flag: &str, path: &Path) -> ct_step::Result<String> {
    let s = read_text_bounded(path, MAX_SECRET_FILE, flag)?;
    let s = s.trim_end_matches(['\r', '\n']).to_string();
    if s.is_empty() {
        return Err(StepError::usage(format!(
            "{flag} {}: the file is empty",
            path.display()
        )));
    }
    Ok(s)
}

fn credentials(
    args: &Args,
    url: &str,
    url_user: Option<String>,
) -> ct_step::Result<Option<Credentials>> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let username = args
        .username
        .clone()
        .filter(|u| !u.is_empty())
        .or(url_user)
        .or_else(|| env("CT_GIT_USERNAME"));
    if let Some(u) = &username
        && u.chars().any(|c| c.is_control() || c == ':')
    {
        return Err(StepError::usage(format!(
            "--username `{}`: a user name has no `:` or control characters",
            u.escape_debug()
        )));
    }
    let creds = if let Some(pf) = &args.password_file {
        let Some(username) = username else {
            return Err(StepError::usage(
                "--password-file needs --username (or CT_GIT_USERNAME)",
            ));
        };
        Some(Credentials {
            username,
            password: read_secret_file("--password-file", pf)?,
        })
    } else if let Some(store) = &args.git_credentials_file {
        let file = if store.is_dir() {
            store.join(".git-credentials")
        } else {
            store.clone()
        };
        let content = read_secret_file("--git-credentials-file", &file)?;
        let c = git::credentials_from_store(&content, url, username.as_deref()).ok_or_else(|| {
            StepError::usage(format!(
                "--git-credentials-file {}: no entry for {url}{}; add a line https://USER:PASSWORD@HOST",
                file.display(),
                username.map(|u| format!(" and user {u}")).unwrap_or_default()
            ))
        })?;
        Some(c)
    } else if let Some(password) = env("CT_GIT_PASSWORD") {
        let Some(username) = username else {
            return Err(StepError::usage(
                "CT_GIT_PASSWORD needs --username (or CT_GIT_USERNAME)",
            ));
        };
        Some(Credentials { username, password })
    } else {
        None
    };
    if let Some(c) = &creds {
        ct_step::log::register_secret(&c.password);
    }
    Ok(creds)
}

/// Validate every input (nothing remote happens before this succeeds).
pub fn request(args: &Args) -> ct_step::Result<Request> {
    bump::validate_author(&args.author_name, &args.author_email)?;
    let repo_dir = match &args.repo_dir {
        Some(d) if !d.is_dir() => {
            return Err(StepError::usage(format!(
                "--repo-dir {}: not a directory",
                d.display()
            )));
        }
        d => d.clone(),
    };
    let raw_url = match (&args.repo_url, &repo_dir) {
        (Some(u), _) => u.clone(),
        (None, Some(d)) => {
            let repo = git::open_checkout(d)?;
            git::origin_url(&repo).ok_or_else(|| {
                StepError::usage(format!(
                    "--repo-dir {}: no `origin` remote; pass --repo-url",
                    d.display()
                ))
            })?
        }
        (None, None) => {
            return Err(StepError::usage(
                "--repo-url is required (or --repo-dir with an origin)",
            ));
        }
    };
    let (url, url_user) = git::parse_repo_url(&raw_url)?;
    let credentials = credentials(args, &url, url_user)?;
    bump::validate_branch("--base-branch", &args.base_branch)?;
    if let Some(b) = &args.push_branch {
        bump::validate_branch("--push-branch", b)?;
        if b == &args.base_branch {
            return Err(StepError::usage(
                "--push-branch equals --base-branch; drop --push-branch to push to the base branch",
            ));
        }
    }
    let (file, app, environment) = match (&args.file, &args.environment, &args.app) {
        (Some(f), _, _) => (
            RepoPath::parse(f).context("--file")?,
            String::new(),
            String::new(),
        ),
        (None, Some(env), Some(app)) => (RepoPath::for_app(env, app)?, app.clone(), env.clone()),
        _ => {
            return Err(StepError::usage(
                "pass --file PATH, or --environment ENV with --app APP",
            ));
        }
    };
    let settings = args
        .set
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| Setting::parse(s))
        .collect::<ct_step::Result<Vec<_>>>()?;
    if settings.is_empty() {
        return Err(StepError::usage("--set KEY=VALUE is required"));
    }
    let default_message = if app.is_empty() {
        "Update {file}: {changes}"
    } else {
        "Bump {app} in {environment}: {changes}"
    };
    let message = MessageTemplate::parse(args.message.as_deref().unwrap_or(default_message))?;
    if args.max_attempts == 0 {
        return Err(StepError::usage("--max-attempts must be at least 1"));
    }
    Ok(Request {
        remote: Remote {
            url,
            credentials,
            insecure_skip_tls_verify: args.insecure_skip_tls_verify,
        },
        base_branch: args.base_branch.clone(),
        push_branch: args.push_branch.clone(),
        file,
        settings,
        create_missing: args.create_missing,
        author_name: args.author_name.clone(),
        author_email: args.author_email.clone(),
        message,
        app,
        environment,
        repo_dir,
        dry_run: args.dry_run,
        max_attempts: args.max_attempts,
        retry_delay: args.retry_delay,
    })
}

/// Process-wide libgit2 setup (CA bundle, timeouts). Call once from `main`, before anything
/// else uses libgit2.
pub fn init(args: &Args) -> ct_step::Result<()> {
    let ca = ct_step::incluster::default_file(
        args.ca_file
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty()),
        ct_step::incluster::SERVICE_CA_FILE,
    );
    git::init_process(ca.as_deref(), args.timeout)
}

/// Run the step (blocking).
pub fn run(args: Args) -> ct_step::Result<()> {
    init(&args)?;
    let req = request(&args)?;
    let mut results = Results::new(&args.common.results_dir, RESULTS)?;
    tracing::info!(
        "editing {} on {} of {}{}",
        req.file,
        req.base_branch,
        req.remote.url,
        req.push_branch
            .as_ref()
            .map(|b| format!(" (push branch {b})"))
            .unwrap_or_default()
    );
    let outcome = bump::run(&req)?;
    if args.dry_run {
        print!("{}", outcome.diff);
    } else if outcome.changed {
        for c in &outcome.changes {
            tracing::info!(
                "{}: {} -> {}",
                c.key,
                c.old.as_deref().unwrap_or("(new)"),
                c.new
            );
        }
    }
    results.write("COMMIT_SHA", &outcome.commit)?;
    results.write("BRANCH", &outcome.branch)?;
    results.write("CHANGED", if outcome.changed { "true" } else { "false" })?;
    results.finish()
}
