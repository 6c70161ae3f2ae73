//! `open-pr`: open or reuse the pull request from a branch to a base branch on Gitea, GitHub
//! or GitLab, idempotently. Thin step around [`ct_forge::ensure_pull_request`].

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use ct_forge::{Forge, PrSpec, RepoRef};
use ct_step::cli::{CommonArgs, HttpArgs};
use ct_step::http::{ApiClient, ClientConfig, TOKEN_ENV, TokenSource};
use ct_step::input::read_text_bounded;
use ct_step::{Result, Results, StepError};

/// Result names this step writes.
pub const RESULT_PR_NUMBER: &str = "PR_NUMBER";
pub const RESULT_PR_URL: &str = "PR_URL";
pub const RESULT_PR_ACTION: &str = "PR_ACTION";

/// Largest accepted title, body (bytes): GitHub's limits. `--body-file` is read with the body
/// limit as its bound.
const MAX_TITLE: usize = 256;
const MAX_BODY: usize = 65_536;

/// The forge API spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ForgeChoice {
    /// Gitea or Forgejo (API root https://HOST/api/v1), `Authorization: token …`.
    Gitea,
    /// GitHub or GitHub Enterprise (https://api.github.com or https://HOST/api/v3), Bearer.
    Github,
    /// GitLab (https://HOST/api/v4), `PRIVATE-TOKEN: …`.
    Gitlab,
}

impl From<ForgeChoice> for Forge {
    fn from(f: ForgeChoice) -> Forge {
        match f {
            ForgeChoice::Gitea => Forge::Gitea,
            ForgeChoice::Github => Forge::GitHub,
            ForgeChoice::Gitlab => Forge::GitLab,
        }
    }
}

const ABOUT: &str = "Open or reuse the pull request from --head to --base (Gitea, GitHub, GitLab).";

const LONG_ABOUT: &str = "\
Open the pull request (GitLab: merge request) from --head to --base in --repo, or reuse it:

  * an open, unmerged PR for the same head -> base is reused: its title and body are brought
    up to date, missing labels and assignees are added; PR_ACTION=existing;
  * closed or merged PRs with the same branch names do not count;
  * a head with no commits ahead of the base opens nothing: PR_ACTION=skipped, exit 0;
  * otherwise the PR is created (PR_ACTION=created). If another run creates it at the same
    moment (Gitea 409, GitHub 422, GitLab 409) it is looked up again and reused, so a re-run
    or two concurrent runs leave exactly one PR.

Gitea: GET /version is probed; on 1.22+ GET /repos/{o}/{r}/pulls/{base}/{head} is used
(only an open, unmerged answer counts), on older servers the open PRs are paged through and
matched on head.label. Label names are resolved to IDs (repository, then organization labels).

Before any request, every flag is checked locally: --repo is OWNER/NAME with parts of
letters, digits, '.', '_' and '-' (no `.`/`..` part, no `%`); --head and --base are plain git
branch names without `%`, `..` or a component starting with `.`; --title and --label are single
lines; --assignee is a user name; the body (--body, or --body-file, at most 64 KiB) holds no
control character other than newline, carriage return and tab; and the results directory must
take the results. Each --label and --assignee is exactly one value, whatever it holds (commas
included); only CT_LABEL and CT_ASSIGNEE are lists, one value per line. Then, before anything is
written, the repository, both branches, every label and every assignee are checked on the
forge; an unknown one is an error naming it, and no PR is created.

The token comes from --token-file or the CT_TOKEN environment variable (never from the command
line, and never the pod's service-account token) and is sent as `Authorization: token` (Gitea),
`Bearer` (GitHub) or `PRIVATE-TOKEN` (GitLab). It is never logged.

Results: PR_NUMBER (number, GitLab iid), PR_URL (web page), PR_ACTION (created, existing or
skipped). When skipped, PR_NUMBER and PR_URL are empty.

Exit codes: 0 done (created, existing or skipped); 2 bad flag, unknown repository, branch,
label or assignee (nothing created); 3 forge, auth, network or I/O error (with the server's
message); 143 SIGTERM.";

/// What `--token-file` means here (the shared text names the service-account token, which a
/// forge never gets).
const TOKEN_FILE_HELP: &str = "File holding the forge API token (trimmed, at most 1 MiB; re-read once when the forge answers 401). When not given: the CT_TOKEN environment variable; one of them is required (the pod's service-account token is never sent to a forge).";

/// Flags of `open-pr`.
#[derive(Debug, Clone, Parser)]
#[command(name = "open-pr", version, about = ABOUT, long_about = LONG_ABOUT)]
#[command(mut_arg("token_file", |a| a.help(TOKEN_FILE_HELP).long_help(None::<&str>)))]
pub struct Args {
    /// Forge API: gitea, github or gitlab.
    #[arg(long, env = "CT_FORGE", value_enum, default_value = "gitea")]
    pub forge: ForgeChoice,

    /// API root, e.g. https://gitea.example.com/api/v1, https://api.github.com,
    /// https://gitlab.example.com/api/v4. A bare Gitea or GitLab host URL gets /api/v1 or
    /// /api/v4 appended.
    #[arg(long, env = "CT_API_URL", value_name = "URL")]
    pub api_url: String,

    /// Repository as OWNER/NAME (GitLab: GROUP/.../PROJECT); parts of letters, digits, '.',
    /// '_' and '-'.
    #[arg(long, env = "CT_REPO", value_name = "OWNER/NAME")]
    pub repo: String,

    /// Branch with the changes (e.g. jukebox-1.0.1); must exist on the forge.
    #[arg(long, env = "CT_HEAD", value_name = "BRANCH")]
    pub head: String,

    /// Branch to merge into.
    #[arg(long, env = "CT_BASE", value_name = "BRANCH", default_value = "main")]
    pub base: String,

    /// PR title (one line, at most 256 bytes).
    #[arg(long, env = "CT_TITLE")]
    pub title: String,

    /// PR description (Markdown, at most 64 KiB). Default: empty.
    #[arg(long, env = "CT_BODY", conflicts_with = "body_file")]
    pub body: Option<String>,

    /// Read the PR description from this file instead of --body (at most 64 KiB).
    #[arg(long, env = "CT_BODY_FILE", value_name = "FILE")]
    pub body_file: Option<PathBuf>,

    /// User to assign (repeatable, one user each; CT_ASSIGNEE holds one user per line).
    #[arg(long = "assignee", env = "CT_ASSIGNEE", value_name = "USER")]
    pub assignees: Vec<String>,

    /// Label name to set (repeatable, one label each, commas included; CT_LABEL holds one
    /// label per line). It must already exist in the repository (or, on Gitea, its
    /// organization).
    #[arg(long = "label", env = "CT_LABEL", value_name = "NAME")]
    pub labels: Vec<String>,

    #[command(flatten)]
    pub http: HttpArgs,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl Args {
    /// Check every flag and build the PR description, before any request.
    pub fn spec(&self) -> Result<PrSpec> {
        let forge: Forge = self.forge.into();
        let repo = RepoRef::parse(&self.repo, forge == Forge::GitLab)?;
        let body = match self
            .body_file
            .as_ref()
            .filter(|f| !f.as_os_str().is_empty())
        {
            Some(f) => read_text_bounded(f, MAX_BODY as u64, "--body-file")?,
            None => self.body.clone().unwrap_or_default(),
        };
        if self.title.len() > MAX_TITLE {
            return Err(StepError::usage(format!(
                "--title is {} bytes; keep it under {MAX_TITLE}",
                self.title.len()
            )));
        }
        if body.len() > MAX_BODY {
            return Err(StepError::usage(format!(
                "the PR body is {} bytes; keep it under {MAX_BODY}",
                body.len()
            )));
        }
        let trim_all = |v: &[String]| v.iter().map(|s| s.trim().to_string()).collect::<Vec<_>>();
        let spec = PrSpec {
            repo,
            head: self.head.trim().to_string(),
            base: self.base.trim().to_string(),
            title: self.title.trim().to_string(),
            body,
            assignees: trim_all(&self.assignees),
            labels: trim_all(&self.labels),
        };
        spec.validate()?;
        Ok(spec)
    }

    /// The API client: the forge's auth scheme, and a token only from --token-file or
    /// CT_TOKEN (the pod's service-account token is never sent to a forge).
    pub fn client(&self) -> Result<ApiClient> {
        let forge: Forge = self.forge.into();
        let url = forge.api_root(&self.api_url);
        let mut config = ClientConfig::from_args(&url, "--api-url", &self.http)?;
        config.auth = forge.auth_scheme();
        config.token = TokenSource::explicit(self.http.token_file()).ok_or_else(|| {
            StepError::usage(format!(
                "no forge token: pass --token-file FILE or set {TOKEN_ENV}"
            ))
        })?;
        ApiClient::new(config)
    }
}

/// The step: validate, ensure the PR, write the three results.
pub async fn run(args: Args) -> Result<()> {
    let spec = args.spec()?;
    let mut results = Results::new(
        &args.common.results_dir,
        &[RESULT_PR_NUMBER, RESULT_PR_URL, RESULT_PR_ACTION],
    )?;
    let client = args.client()?;
    let forge: Forge = args.forge.into();
    tracing::info!(
        "{forge} {}: pull request {} -> {}",
        spec.repo,
        spec.head,
        spec.base
    );
    let outcome = ct_forge::ensure_pull_request(&client, forge, &spec).await?;
    let number = outcome.number.map(|n| n.to_string()).unwrap_or_default();
    results.write(RESULT_PR_NUMBER, &number)?;
    results.write(RESULT_PR_URL, outcome.url.as_deref().unwrap_or(""))?;
    results.write(RESULT_PR_ACTION, outcome.action.as_str())?;
    results.finish()
}
