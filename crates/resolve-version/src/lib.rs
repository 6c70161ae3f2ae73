//! `resolve-version`: the commit and the model version a PipelineRun trains, from what the
//! clone checked out.
//!
//! A push names its commit (the webhook's `after`) and its version (the short SHA); an
//! Alertmanager notification names only a model, so the alert Trigger asks for the head of a
//! branch (`git-revision: main`) and an empty `version`. Tekton has no string functions and
//! ct-steps Tasks run no shell, so this step turns the clone's `COMMIT` into the two values every
//! later task uses: `GIT_REVISION` (the commit) and `VERSION` (the given one, or one derived from
//! the commit and the PipelineRun).

use clap::Parser;

use ct_step::cli::CommonArgs;
use ct_step::{Result, Results, StepError};

const LONG_ABOUT: &str = "\
Resolve the commit and the model version a PipelineRun trains, from what the clone checked out.

--commit is the commit the clone checked out (the git-clone Task's COMMIT result): 40 lowercase \
hex digits. --revision is what the PipelineRun asked for (its git-revision param): a full commit \
SHA, which must be the commit (otherwise exit 1: the clone checked out something else), or a \
branch or tag (e.g. main), whose head the clone resolved to --commit.

--version is the PipelineRun's version param. Given, it is the version, unchanged. Empty (an \
alert-triggered retraining), the version is derived: the commit's first 7 hex digits, `-r`, and \
the first 8 hex digits of --run-uid (the PipelineRun's uid), e.g. 9b2e4d6-r3f2a9c01. The run part \
keeps a retraining of an already trained commit from reusing that commit's version (the push of \
the commit already produced <sha7>): the registry version, the modelcar tag and the GitOps bump \
must change for the retrained model to deploy. The same PipelineRun always derives the same \
version (a retried task too).

A version (given or derived) is an image tag: letters, digits, `_`, `.` and `-`, not starting \
with `.` or `-`, at most 128 characters. Every value is one command-line or environment value \
(a newline or other control character is refused) and at most 256 bytes; everything is checked \
before any result is written.

Results: GIT_REVISION (the commit) and VERSION. No network, no files besides the results.

Exit codes: 0 resolved; 1 --revision is a commit SHA other than --commit; 2 bad flag or value; \
3 a result could not be written; 143 SIGTERM/SIGINT.";

/// Result: the commit the PipelineRun trains.
pub const RESULT_GIT_REVISION: &str = "GIT_REVISION";
/// Result: the model version.
pub const RESULT_VERSION: &str = "VERSION";

/// Longest value of any flag.
pub const MAX_VALUE_BYTES: usize = 256;

/// Flags of `resolve-version` (every flag also reads `CT_<FLAG>`).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "resolve-version",
    disable_version_flag = true,
    about = "The commit and model version a PipelineRun trains, from what the clone checked out",
    long_about = LONG_ABOUT
)]
pub struct Args {
    /// The commit the clone checked out (git-clone's COMMIT result): 40 lowercase hex digits.
    #[arg(long, env = "CT_COMMIT", value_name = "SHA")]
    pub commit: String,

    /// What the PipelineRun asked for: a full commit SHA (must equal --commit) or a branch or
    /// tag name.
    #[arg(long, env = "CT_REVISION", value_name = "REV")]
    pub revision: String,

    /// The model version; empty: derived from --commit and --run-uid.
    #[arg(long, env = "CT_VERSION", value_name = "VERSION", default_value = "")]
    pub version: String,

    /// The PipelineRun's uid ($(context.pipelineRun.uid)); needed when --version is empty.
    #[arg(long, env = "CT_RUN_UID", value_name = "UID", default_value = "")]
    pub run_uid: String,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// What the step resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub git_revision: String,
    pub version: String,
}

/// The step: check every value, resolve, write both results.
pub fn run(args: &Args) -> Result<()> {
    let usage = resolve(&args.commit, &args.revision, &args.version, &args.run_uid);
    // Usage errors before the results directory is touched; a mismatch after the preflight, so
    // that exit 1 means the inputs were fine and the clone was not what was asked for.
    if let Err(e) = &usage
        && e.exit_code() == 2
    {
        return usage.map(|_| ());
    }
    let mut results = Results::new(
        &args.common.results_dir,
        &[RESULT_GIT_REVISION, RESULT_VERSION],
    )?;
    let resolved = usage?;
    tracing::info!(
        "commit {} (asked for {}), version {}",
        resolved.git_revision,
        args.revision,
        resolved.version
    );
    results.write(RESULT_GIT_REVISION, &resolved.git_revision)?;
    results.write(RESULT_VERSION, &resolved.version)?;
    results.finish()
}

/// Resolve the commit and version; every error names the flag and the fix.
pub fn resolve(commit: &str, revision: &str, version: &str, run_uid: &str) -> Result<Resolved> {
    for (flag, value) in [
        ("--commit", commit),
        ("--revision", revision),
        ("--version", version),
        ("--run-uid", run_uid),
    ] {
        one_value(flag, value)?;
    }
    if !is_sha(commit, false) {
        return Err(StepError::usage(format!(
            "--commit {commit:?}: not a commit SHA (40 lowercase hex digits); pass the git-clone Task's COMMIT result"
        )));
    }
    if revision.is_empty() {
        return Err(StepError::usage(
            "--revision is empty; pass the PipelineRun's git-revision (a commit SHA or a branch)",
        ));
    }
    if is_sha(revision, true) && !revision.eq_ignore_ascii_case(commit) {
        return Err(StepError::failed(format!(
            "the clone checked out {commit}, not the requested commit {revision}; check the git-clone Task's REVISION and the repository"
        )));
    }
    let version = if version.is_empty() {
        derive_version(commit, run_uid)?
    } else {
        version.to_string()
    };
    if !is_tag(&version) {
        return Err(StepError::usage(format!(
            "--version {version:?}: not usable as an image tag (letters, digits, `_`, `.`, `-`, not starting with `.` or `-`, at most 128 characters)"
        )));
    }
    Ok(Resolved {
        git_revision: commit.to_string(),
        version,
    })
}

/// `<sha7>-r<uid8>`: the commit's first 7 hex digits and the first 8 hex digits of the
/// PipelineRun's uid.
pub fn derive_version(commit: &str, run_uid: &str) -> Result<String> {
    if run_uid.is_empty() {
        return Err(StepError::usage(
            "--run-uid is empty and --version is empty: pass $(context.pipelineRun.uid) to derive the version, or a version",
        ));
    }
    if !run_uid.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(StepError::usage(format!(
            "--run-uid {run_uid:?}: not a uid (hex digits and `-`); pass $(context.pipelineRun.uid)"
        )));
    }
    let hex: String = run_uid
        .chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_lowercase())
        .take(8)
        .collect();
    if hex.len() < 8 {
        return Err(StepError::usage(format!(
            "--run-uid {run_uid:?}: fewer than 8 hex digits; pass $(context.pipelineRun.uid)"
        )));
    }
    Ok(format!("{}-r{hex}", &commit[..7]))
}

/// One line, bounded.
fn one_value(flag: &str, value: &str) -> Result<()> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(StepError::usage(format!(
            "{flag}: {} bytes, over the {MAX_VALUE_BYTES}-byte limit",
            value.len()
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(StepError::usage(format!(
            "{flag} {value:?}: has a control character (newline, tab?); pass one single-line value"
        )));
    }
    Ok(())
}

/// 40 hex digits (lowercase only unless `any_case`).
fn is_sha(s: &str, any_case: bool) -> bool {
    s.len() == 40
        && s.chars().all(|c| {
            c.is_ascii_digit() || matches!(c, 'a'..='f') || (any_case && matches!(c, 'A'..='F'))
        })
}

/// The OCI tag grammar: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn is_tag(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "9b2e4d6f8a0c1e3b5d7f9a1c3e5b7d9f1a3c5e7b";
    const UID: &str = "3f2a9c01-5b7d-4e2f-8a1c-0d9e8f7a6b5c";

    fn code(r: Result<Resolved>) -> u8 {
        r.unwrap_err().exit_code()
    }

    #[test]
    fn a_push_keeps_its_version_and_commit() {
        let r = resolve(SHA, SHA, "9b2e4d6", UID).unwrap();
        assert_eq!(r.git_revision, SHA);
        assert_eq!(r.version, "9b2e4d6");
        // The uid is not needed when the version is given.
        assert_eq!(resolve(SHA, SHA, "1.0.1", "").unwrap().version, "1.0.1");
        // An upper-case SHA names the same commit.
        assert!(resolve(SHA, &SHA.to_uppercase(), "v", "").is_ok());
    }

    #[test]
    fn an_alert_derives_the_version_from_the_commit_and_the_run() {
        let r = resolve(SHA, "main", "", UID).unwrap();
        assert_eq!(r.git_revision, SHA);
        assert_eq!(r.version, "9b2e4d6-r3f2a9c01");
        // Stable within a PipelineRun, different for another one.
        assert_eq!(resolve(SHA, "main", "", UID).unwrap(), r);
        let other = resolve(SHA, "main", "", "7e000000-0000-4000-8000-000000000000").unwrap();
        assert_ne!(other.version, r.version);
        assert!(other.version.starts_with("9b2e4d6-r"));
        // Upper-case hex in a uid gives the same lower-case version.
        assert_eq!(
            resolve(SHA, "main", "", &UID.to_uppercase())
                .unwrap()
                .version,
            r.version
        );
    }

    #[test]
    fn another_commit_than_the_requested_one_is_exit_1() {
        let other = "0123456789abcdef0123456789abcdef01234567";
        let e = resolve(SHA, other, "v", UID).unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert!(e.message().contains(other) && e.message().contains(SHA));
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for (commit, rev, version, uid, needle) in [
            ("9b2e4d6", "main", "v", UID, "--commit"),
            (&SHA.to_uppercase()[..], "main", "v", UID, "--commit"),
            ("", "main", "v", UID, "--commit"),
            (SHA, "", "v", UID, "--revision"),
            (SHA, "main\nx", "v", UID, "--revision"),
            (SHA, "main", "", "", "--run-uid is empty"),
            (SHA, "main", "", "not-a-uid", "--run-uid"),
            (SHA, "main", "", "abc", "fewer than 8"),
            (SHA, "main", "", "3f2a9c01\n", "--run-uid"),
            (SHA, "main", "v\n1", UID, "--version"),
            (SHA, "main", "-v", UID, "--version"),
            (SHA, "main", ".v", UID, "--version"),
            (SHA, "main", "a/b", UID, "--version"),
            (SHA, "main", "1.0 beta", UID, "--version"),
            (SHA, "main", "jükebox", UID, "--version"),
            (SHA, "main", &"x".repeat(129), UID, "--version"),
            (SHA, &"m".repeat(257), "v", UID, "256-byte limit"),
        ] {
            let r = resolve(commit, rev, version, uid);
            let msg = r
                .as_ref()
                .map(|_| String::new())
                .unwrap_or_else(|e| e.message().to_string());
            assert_eq!(code(r), 2, "{commit:?} {rev:?} {version:?} {uid:?}");
            assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
        }
        assert!(resolve(SHA, "main", &"x".repeat(128), UID).is_ok());
    }
}
