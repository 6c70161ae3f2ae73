//! Hostile input against the real `bump-gitops-version` binary and a real `git http-backend`
//! (issue 9): one --set per command-line value with a single-line value; newlines, carriage
//! returns, tabs and non-ASCII text in every free-text flag; `..`, `.` and empty segments in
//! paths and names; devices as credential and CA files; results that cannot be written; zero
//! and negative durations; SIGTERM while the fetch hangs. Cases that must not touch the remote
//! run against a listener that records whether anyone connected; the others against the git
//! server, whose branch must be unchanged after a refusal. Every case checks the exit code, the
//! one-line message and that the password appears in no output.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use ct_testkit::hostile::{Canary, Out, left_files, terminate_when};

const CONFIG_PATH: &str = "model-deployments/test/jukebox/config.yaml";
/// The GitOps repository's path on a server.
const GITOPS: &str = "/org/gitops.git";

/// The binary bumping jukebox in test at `url` with the password in a file; `over` replaces
/// or adds flags (`--set` adds), and an empty value drops a flag.
fn command(url: &str, secrets: &Path, results: &Path, over: &[(&str, &str)]) -> Command {
    let pf = secrets.join("password");
    std::fs::write(&pf, format!("{PASSWORD}\n")).unwrap();
    let (pf, results) = (pf.display().to_string(), results.display().to_string());
    let mut flags: Vec<(&str, &str)> = vec![
        ("--repo-url", url),
        ("--username", USER),
        ("--password-file", &pf),
        ("--results-dir", &results),
        ("--environment", "test"),
        ("--app", "jukebox"),
        ("--retry-delay", "20ms"),
        ("--timeout", "30s"),
    ];
    if !over.iter().any(|(k, _)| *k == "--set") {
        flags.push(("--set", "version=1.2.4"));
    }
    for (k, v) in over {
        match flags.iter_mut().find(|(f, _)| f == k) {
            Some(slot) if *k != "--set" => slot.1 = v,
            _ => flags.push((k, v)),
        }
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bump-gitops-version"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", secrets);
    for (k, v) in flags.into_iter().filter(|(_, v)| !v.is_empty()) {
        cmd.arg(format!("{k}={v}"));
    }
    cmd
}

/// Exit 2 naming `needle`, nobody contacted, no result or temporary file.
fn refused(over: &[(&str, &str)], needle: &str) {
    let canary = Canary::new();
    let (secrets, results) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let out: Out = command(&canary.url(GITOPS), secrets.path(), results.path(), over)
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, Some(2), "{over:?}: {}", out.stderr);
    let m = out.message();
    assert!(m.contains(needle), "{over:?}: {m:?} lacks {needle:?}");
    out.no_secret(PASSWORD);
    assert!(!canary.touched(), "{over:?}: the remote was contacted");
    assert_eq!(left_files(results.path()), Vec::<String>::new(), "{over:?}");
}

#[test]
fn one_set_is_one_single_line_setting() {
    for bad in [
        "version=1\nimage_namespace=evil",
        "version=1\r",
        "version=1\tx",
        "version=1\u{1b}[31m",
    ] {
        refused(&[("--set", bad)], "control character");
    }
    refused(&[("--set", "ver\nsion=1")], "--set");
}

#[test]
fn names_paths_and_authors_are_checked_before_any_fetch() {
    for bad in [
        "../x.yaml",
        "a/../b.yaml",
        "./x.yaml",
        "a//b.yaml",
        "/etc/passwd",
        ".git/config",
        "a\nb.yaml",
    ] {
        refused(
            &[("--file", bad), ("--environment", ""), ("--app", "")],
            "--file",
        );
    }
    for flag in ["--environment", "--app"] {
        for bad in ["..", ".", "../x", "a/b", "%2e%2e", "a\nb", "a\tb"] {
            refused(&[(flag, bad)], flag);
        }
    }
    for flag in ["--base-branch", "--push-branch"] {
        for bad in ["..", "a..b", "a\nb", "a\rb", "a b", "-x", "a/"] {
            refused(&[(flag, bad)], flag);
        }
    }
    for bad in ["a\nb", "a\rb", "a\tb", "a <x>", "a>b"] {
        refused(&[("--author-name", bad)], "--author-name");
    }
    for bad in ["a\n@b", "<a@b>", "a b@c", "ab", "a@b@c"] {
        refused(&[("--author-email", bad)], "--author-email");
    }
    refused(&[("--message", "bump\r{changes}")], "--message");
    refused(&[("--message", "bump\u{7}")], "--message");
    refused(&[("--username", "bot\nx")], "--username");
    refused(&[("--username", "bot:x")], "--username");
    refused(
        &[("--repo-url", "http://127.0.0.1:9/a\nb.git")],
        "--repo-url",
    );
    refused(
        &[("--repo-url", "http://127.0.0.1:9/a\tb.git")],
        "--repo-url",
    );
}

#[test]
fn devices_results_and_durations_are_refused_before_any_fetch() {
    for (flag, needle) in [
        ("--password-file", "1 MiB limit"),
        ("--git-credentials-file", "1 MiB limit"),
        ("--ca-file", "4 MiB limit"),
    ] {
        let mut over = vec![(flag, "/dev/zero")];
        if flag == "--git-credentials-file" {
            over.push(("--password-file", ""));
        }
        refused(&over, needle);
    }
    for d in [
        "--timeout=0",
        "--timeout=0s",
        "--timeout=-1s",
        "--retry-delay=-1s",
    ] {
        let (k, v) = d.split_once('=').unwrap();
        refused(&[(k, v)], k);
    }
    refused(&[("--log-level", "info=[")], "--log-level");
    refused(
        &[("--results-dir", "/sys")],
        "cannot write result COMMIT_SHA",
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    refused(
        &[("--results-dir", file.path().to_str().unwrap())],
        "not a directory",
    );
}

#[test]
fn a_result_that_cannot_be_written_stops_the_step_before_the_push() {
    let server = GitServer::start();
    let bare = server.create_repo("org/gitops", &[(CONFIG_PATH, b"version: 1.2.3\n")]);
    let before = rev(&bare, "main");
    let (secrets, results) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::create_dir(results.path().join("CHANGED")).unwrap();
    let url = server.repo_url("org/gitops");
    let out: Out = command(&url, secrets.path(), results.path(), &[])
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, Some(2));
    assert!(
        out.message().contains("result CHANGED"),
        "{}",
        out.message()
    );
    assert_eq!(rev(&bare, "main"), before, "nothing pushed");
    assert_eq!(server.pushes(), 0);
    assert_eq!(left_files(results.path()), ["CHANGED"]);
}

#[test]
fn lists_only_from_the_environment_and_text_is_text() {
    let server = GitServer::start();
    let bare = server.create_repo(
        "org/gitops",
        &[(CONFIG_PATH, b"version: 1.2.3\nimage_namespace: user1-dev\n")],
    );
    let url = server.repo_url("org/gitops");
    let (secrets, results) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // CT_SET is the documented list: one KEY=VALUE per line (CRLF too); non-ASCII is text.
    let mut cmd = command(
        &url,
        secrets.path(),
        results.path(),
        &[("--set", ""), ("--author-name", "Jürgen Ölß")],
    );
    cmd.env(
        "CT_SET",
        "version=2.0.0-café\r\nimage_namespace=user1-tëst\n",
    );
    let out: Out = cmd.output().unwrap().into();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    out.no_secret(PASSWORD);
    assert_eq!(
        show(&bare, &format!("main:{CONFIG_PATH}")),
        "version: 2.0.0-café\nimage_namespace: user1-tëst\n"
    );
    let author = git(&bare, &["log", "-1", "--format=%an <%ae>", "main"]);
    assert_eq!(
        author.trim(),
        "Jürgen Ölß <bump-gitops-version@noreply.local>"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_the_fetch_hangs_exits_143_and_pushes_nothing() {
    // The canary takes the connection and never answers; the network timeout bounds the wait.
    let canary = Canary::new();
    let (secrets, results) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cmd = command(
        &canary.url(GITOPS),
        secrets.path(),
        results.path(),
        &[("--timeout", "2s")],
    );
    let started = std::time::Instant::now();
    let out = terminate_when(cmd.into(), || canary.touched()).await;
    assert_eq!(out.code, Some(143));
    assert!(
        out.message().contains("terminated by signal"),
        "{}",
        out.message()
    );
    assert!(started.elapsed() < Duration::from_secs(28));
    out.no_secret(PASSWORD);
    assert_eq!(out.stdout, "");
    assert_eq!(left_files(results.path()), Vec::<String>::new());
}
