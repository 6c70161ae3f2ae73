//! The `resolve-version` binary as the resolve-version Task runs it (values in CT_* variables)
//! and by hand (flags), with hostile values: control characters, oversized and non-ASCII values,
//! results that cannot be written, another commit than the one asked for. Every refusal leaves
//! no result file.

use std::path::Path;
use std::process::Command;

use ct_testkit::hostile::{Out, left_files};

const SHA: &str = "9b2e4d6f8a0c1e3b5d7f9a1c3e5b7d9f1a3c5e7b";
const UID: &str = "3f2a9c01-5b7d-4e2f-8a1c-0d9e8f7a6b5c";

/// The binary in a clean environment with `env` (the Task's way) and `args`.
fn run(results: &Path, env: &[(&str, &str)], args: &[&str]) -> Out {
    Command::new(env!("CARGO_BIN_EXE_resolve-version"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CT_RESULTS_DIR", results)
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap()
        .into()
}

fn result(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

#[test]
fn the_task_s_alert_run_derives_the_version_and_writes_exact_results() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &[
            ("CT_COMMIT", SHA),
            ("CT_REVISION", "main"),
            ("CT_VERSION", ""),
            ("CT_RUN_UID", UID),
        ],
        &[],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(left_files(dir.path()), ["GIT_REVISION", "VERSION"]);
    assert_eq!(result(dir.path(), "GIT_REVISION"), SHA);
    assert_eq!(result(dir.path(), "VERSION"), "9b2e4d6-r3f2a9c01");
    assert!(
        out.stdout.contains("VERSION=9b2e4d6-r3f2a9c01"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_push_keeps_its_version() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &[],
        &["--commit", SHA, "--revision", SHA, "--version", "9b2e4d6"],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(result(dir.path(), "VERSION"), "9b2e4d6");
    assert_eq!(result(dir.path(), "GIT_REVISION"), SHA);
}

#[test]
fn another_commit_than_the_requested_one_is_exit_1_with_no_result() {
    let dir = tempfile::tempdir().unwrap();
    let asked = "0123456789abcdef0123456789abcdef01234567";
    let out = run(
        dir.path(),
        &[],
        &["--commit", SHA, "--revision", asked, "--version", "v1"],
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.last().contains(&format!(
            "checked out {SHA}, not the requested commit {asked}"
        )),
        "{}",
        out.last()
    );
    assert_eq!(left_files(dir.path()), Vec::<String>::new());
}

#[test]
fn hostile_values_are_refused_before_any_result() {
    let big = "m".repeat(300);
    for (flag, value, needle) in [
        ("--commit", "9b2e4d6", "--commit"),
        ("--commit", &format!("{SHA}\n")[..], "--commit"),
        ("--revision", "main\nother", "control character"),
        ("--revision", "ma\rin", "control character"),
        ("--revision", &big[..], "256-byte limit"),
        ("--version", "1.0\tx", "control character"),
        ("--version", "jükebox", "image tag"),
        ("--version", "../x", "image tag"),
        ("--run-uid", "zz", "--run-uid"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["--commit", SHA, "--revision", "main", "--run-uid", UID];
        match args.iter().position(|a| *a == flag) {
            Some(i) => args[i + 1] = value,
            None => args.extend([flag, value]),
        }
        let out = run(dir.path(), &[], &args);
        assert_eq!(out.code, Some(2), "{flag} {value:?}: {}", out.stderr);
        assert!(
            out.message().contains(needle),
            "{flag} {value:?}: {}",
            out.message()
        );
        assert_eq!(
            left_files(dir.path()),
            Vec::<String>::new(),
            "{flag} {value:?}"
        );
    }
    // An empty version needs the uid.
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &[("CT_COMMIT", SHA), ("CT_REVISION", "main")],
        &[],
    );
    assert_eq!(out.code, Some(2));
    assert!(
        out.message().contains("--run-uid is empty"),
        "{}",
        out.message()
    );
    // A missing required flag: clap's usage error.
    let out = run(dir.path(), &[("CT_REVISION", "main")], &[]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.message().contains("required arguments") && out.stderr.contains("--commit <SHA>"),
        "{}",
        out.stderr
    );
    assert_eq!(left_files(dir.path()), Vec::<String>::new());
}

#[test]
fn results_that_cannot_be_written_are_refused_first() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("VERSION")).unwrap();
    let ok = ["--commit", SHA, "--revision", "main", "--run-uid", UID];
    let out = run(dir.path(), &[], &ok);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.last().contains("cannot write result VERSION"),
        "{}",
        out.last()
    );
    assert_eq!(left_files(dir.path()), ["VERSION"]);
    let file = tempfile::NamedTempFile::new().unwrap();
    let out = run(file.path(), &[], &ok);
    assert_eq!(out.code, Some(2));
    assert!(out.last().contains("not a directory"), "{}", out.last());
}

#[test]
fn help_is_the_manual() {
    let out = run(Path::new("/nonexistent"), &[], &["--help"]);
    assert_eq!(out.code, Some(0));
    for needle in [
        "-r",
        "--run-uid",
        "GIT_REVISION",
        "Exit codes",
        "CT_VERSION",
    ] {
        assert!(out.stdout.contains(needle), "--help lacks {needle}");
    }
}
