//! Hostile input against the real `open-pr` binary (issue 9): one --label/--assignee per
//! command-line value (commas included); repository and branch names with `..`, `.`, empty and
//! percent-encoded segments; newlines, carriage returns, tabs and non-ASCII text in every
//! free-text flag; devices and oversized files; results that cannot be written; zero and
//! negative durations; SIGTERM while a request is in flight. Cases that must send nothing run
//! against a listener that records whether anyone connected (the version probe included);
//! the others run against the forge emulator. Every case checks the exit code, the one-line
//! message and that the token appears in no output.

use std::path::Path;

use ct_forge_emulator::Options;
use ct_testkit::hostile::{Canary, Out, left_files, terminate_when};

const TOKEN: &str = "hostile-forge-token-c0ffee42";
const OWNER: &str = "user1";
const REPO: &str = "mlops-gitops";
const HEAD: &str = "jukebox-1.0.1";

/// The binary for a PR of HEAD into main of OWNER/REPO at `api`; `over` replaces or adds flags.
fn command(api: &str, results: &Path, over: &[(&str, &str)]) -> tokio::process::Command {
    let results = results.display().to_string();
    let repo = format!("{OWNER}/{REPO}");
    let mut flags: Vec<(&str, &str)> = vec![
        ("--api-url", api),
        ("--repo", &repo),
        ("--head", HEAD),
        ("--base", "main"),
        ("--title", "Promote jukebox 1.0.1 to prod"),
        ("--results-dir", &results),
        ("--max-retries", "0"),
    ];
    for (k, v) in over {
        match flags.iter_mut().find(|(f, _)| f == k) {
            Some(slot) if !["--label", "--assignee"].contains(k) => slot.1 = v,
            _ => flags.push((k, v)),
        }
    }
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_open-pr"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CT_TOKEN", TOKEN);
    for (k, v) in flags {
        cmd.arg(format!("{k}={v}"));
    }
    cmd
}

async fn run(cmd: &mut tokio::process::Command) -> Out {
    cmd.output().await.unwrap().into()
}

/// Exit 2 naming `needle`, nobody contacted, no result or temporary file.
async fn refused(over: &[(&str, &str)], needle: &str) {
    let canary = Canary::new();
    let results = tempfile::tempdir().unwrap();
    let out = run(&mut command(&canary.url("/api/v1"), results.path(), over)).await;
    assert_eq!(out.code, Some(2), "{over:?}: {}", out.stderr);
    assert!(
        out.message().contains(needle),
        "{over:?}: {:?}",
        out.message()
    );
    out.no_secret(TOKEN);
    assert!(!canary.touched(), "{over:?}: a request was sent");
    assert_eq!(left_files(results.path()), Vec::<String>::new(), "{over:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_checked_before_any_request() {
    for bad in [
        "user1/..",
        "../x",
        "./x",
        "user1/.",
        "user1//x",
        "user1/%2e%2e",
        "user1/%2E%2E/x",
        "user1/a%2fb",
        "user1/mlops\ngitops",
        "user1\r/mlops",
        "user1/ml\tops",
    ] {
        refused(&[("--repo", bad)], "--repo").await;
    }
    for flag in ["--head", "--base"] {
        for bad in [
            "..",
            "../x",
            "a/../b",
            ".",
            "./x",
            "a//b",
            "/a",
            "%2e%2e",
            "%2E%2E/x",
            "a\nb",
            "a\rb",
            "a\tb",
            "refs/heads/x",
        ] {
            refused(&[(flag, bad)], flag).await;
        }
    }
    for bad in ["a\nb", "a\rb", "a\tb"] {
        refused(&[("--title", bad)], "--title").await;
        refused(&[("--label", bad)], "--label").await;
        refused(&[("--assignee", bad)], "--assignee").await;
    }
    for bad in ["../x", "a,b", "r%65viewer"] {
        refused(&[("--assignee", bad)], "--assignee").await;
    }
    refused(&[("--body", "bell \u{7}")], "body").await;
    refused(&[("--api-url", "http://127.0.0.1:9/\nx")], "--api-url").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_results_and_durations_are_refused_before_any_request() {
    let big = tempfile::NamedTempFile::new().unwrap();
    big.as_file().set_len(65_537).unwrap();
    for (flag, path, needle) in [
        ("--body-file", "/dev/zero", "64 KiB limit"),
        ("--body-file", big.path().to_str().unwrap(), "64 KiB limit"),
        ("--token-file", "/dev/zero", "1 MiB limit"),
        ("--ca-file", "/dev/zero", "4 MiB limit"),
    ] {
        refused(&[(flag, path)], needle).await;
    }
    for d in ["0", "0s", "-1s"] {
        refused(&[("--request-timeout", d)], "--request-timeout").await;
    }
    refused(&[("--log-level", "info=[")], "--log-level").await;
    let file = tempfile::NamedTempFile::new().unwrap();
    refused(
        &[("--results-dir", "/sys")],
        "cannot write result PR_NUMBER",
    )
    .await;
    refused(
        &[("--results-dir", file.path().to_str().unwrap())],
        "not a directory",
    )
    .await;

    // A result path that is a directory: refused up front, before the version probe.
    let canary = Canary::new();
    let results = tempfile::tempdir().unwrap();
    std::fs::create_dir(results.path().join("PR_URL")).unwrap();
    let out = run(&mut command(&canary.url("/api/v1"), results.path(), &[])).await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.message().contains("PR_URL") && out.message().contains("is a directory"));
    assert!(!canary.touched());
    assert_eq!(left_files(results.path()), ["PR_URL"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_label_per_value_and_text_is_text() {
    let emu = ct_forge_emulator::start(Options::default()).await.unwrap();
    emu.create_user(OWNER, "openshift").unwrap();
    let token = emu.create_token(OWNER).unwrap();
    emu.create_repo(OWNER, REPO, None).unwrap();
    emu.commit(
        OWNER,
        REPO,
        "main",
        None,
        "prod/config.yaml",
        "version: 1\n",
        "init",
    )
    .unwrap();
    emu.commit(
        OWNER,
        REPO,
        HEAD,
        Some("main"),
        "prod/config.yaml",
        "version: 2\n",
        "bump",
    )
    .unwrap();
    for label in ["needs,review", "promote", "needs", "review"] {
        emu.create_label(OWNER, REPO, label, "00aabb").unwrap();
    }
    let results = tempfile::tempdir().unwrap();
    let title = "Promote jükebox 🎵 to prod";
    let mut cmd = command(
        &emu.api_url(),
        results.path(),
        &[
            ("--label", "needs,review"),
            ("--title", title),
            ("--body", "line 1\r\nline 2\n\ttabbed"),
        ],
    );
    cmd.env("CT_TOKEN", &token);
    let out = run(&mut cmd).await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!out.stderr.contains(&token) && !out.stdout.contains(&token));
    let pulls = emu.pulls(OWNER, REPO).unwrap();
    assert_eq!(pulls.len(), 1);
    assert_eq!(
        pulls[0].labels,
        ["needs,review"],
        "one label, comma and all"
    );
    assert_eq!(pulls[0].title, title);
    assert_eq!(pulls[0].body, "line 1\r\nline 2\n\ttabbed");

    // CT_LABEL is the documented list: one label per line.
    let mut cmd = command(&emu.api_url(), results.path(), &[]);
    cmd.env("CT_TOKEN", &token)
        .env("CT_LABEL", "promote\r\nneeds,review\n");
    let out = run(&mut cmd).await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let mut labels = emu.pulls(OWNER, REPO).unwrap()[0].labels.clone();
    labels.sort();
    assert_eq!(labels, ["needs,review", "promote"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_a_request_is_in_flight_exits_143_with_no_results() {
    // The canary takes the connection and never answers.
    let canary = Canary::new();
    let results = tempfile::tempdir().unwrap();
    let out = terminate_when(
        command(
            &canary.url("/api/v1"),
            results.path(),
            &[("--request-timeout", "60s")],
        ),
        || canary.touched(),
    )
    .await;
    assert_eq!(out.code, Some(143));
    assert!(
        out.last().contains("terminated by signal"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(TOKEN));
    assert_eq!(out.stdout, "");
    assert_eq!(left_files(results.path()), Vec::<String>::new());
}
