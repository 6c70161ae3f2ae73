//! Hostile input against the real `bump-gitops-version` binary and a real `git http-backend`
//! (issue 9): one --set per command-line value with a single-line value; newlines, carriage
//! returns, tabs and non-ASCII text in every free-text flag; `..`, `.` and empty segments in
//! paths and names; devices as credential and CA files; results that cannot be written; zero
//! and negative durations; SIGTERM while the fetch hangs. Cases that must not touch the remote
//! run against a listener that records whether anyone connected; the others against the git
//! server, whose branch must be unchanged after a refusal. Every case checks the exit code, the
//! one-line message and that the password appears in no output.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;

const CONFIG_PATH: &str = "model-deployments/test/jukebox/config.yaml";

/// A TCP port nobody answers on; tells whether anyone connected.
struct Canary(TcpListener);

impl Canary {
    fn new() -> Canary {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        Canary(l)
    }
    fn url(&self) -> String {
        format!("http://{}/org/gitops.git", self.0.local_addr().unwrap())
    }
    fn touched(&self) -> bool {
        self.0.accept().is_ok()
    }
}

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

/// The one-line message: clap's `error:` line, or the step's last line.
fn message(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or("").to_string();
    err.lines()
        .find(|l| l.starts_with("error:"))
        .map(str::to_string)
        .unwrap_or(last)
}

fn no_secret(out: &Output) {
    for s in [&out.stdout, &out.stderr] {
        assert!(
            !String::from_utf8_lossy(s).contains(PASSWORD),
            "the password leaked"
        );
    }
}

fn left_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Exit 2 naming `needle`, nobody contacted, no result or temporary file.
fn refused(over: &[(&str, &str)], needle: &str) {
    let canary = Canary::new();
    let (secrets, results) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let out = command(&canary.url(), secrets.path(), results.path(), over)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{over:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = message(&out);
    assert!(m.contains(needle), "{over:?}: {m:?} lacks {needle:?}");
    no_secret(&out);
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
    let out = command(&url, secrets.path(), results.path(), &[])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        message(&out).contains("result CHANGED"),
        "{}",
        message(&out)
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
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    no_secret(&out);
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

#[test]
fn sigterm_while_the_fetch_hangs_exits_143_and_pushes_nothing() {
    // The canary takes the connection and never answers; the network timeout bounds the wait.
    let canary = Canary::new();
    let (secrets, results) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let child = command(
        &canary.url(),
        secrets.path(),
        results.path(),
        &[("--timeout", "2s")],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut waited = 0;
    let _conn = loop {
        if let Ok(c) = canary.0.accept() {
            break c;
        }
        assert!(waited < 10_000, "the step never connected");
        std::thread::sleep(Duration::from_millis(5));
        waited += 5;
    };
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let started = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143));
    assert!(
        message(&out).contains("terminated by signal"),
        "{}",
        message(&out)
    );
    assert!(started.elapsed() < Duration::from_secs(28));
    no_secret(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert_eq!(left_files(results.path()), Vec::<String>::new());
}

#[test]
fn no_task_feeds_a_list_variable_of_this_step() {
    use clap::CommandFactory;
    let lists = ct_step::cli::env_list_vars(&bump_gitops_version::Args::command());
    assert_eq!(lists, ["CT_SET"]);
    let tasks = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tasks");
    for e in std::fs::read_dir(tasks).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yaml") {
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(
                !text.contains("name: CT_SET\n"),
                "{}: CT_SET is a list (one KEY=VALUE per line); pass --set=... as an arg",
                p.display()
            );
        }
    }
}
