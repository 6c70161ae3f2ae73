//! The README's first command, `ct-sandbox demo`, and `ct-sandbox run`, as a user runs them.

use std::path::Path;
use std::process::Command;

use ct_testkit::repo_root as repo;

/// The step binaries, built when missing or stale.
fn bin_dir() -> &'static Path {
    ct_testkit::step_binaries()
}

#[test]
fn demo_runs_the_whole_flow_and_prints_a_summary() {
    let out = Command::new(env!("CARGO_BIN_EXE_ct-sandbox"))
        .args([
            "demo",
            "--no-build",
            "--training-time",
            "200ms",
            "--bin-dir",
        ])
        .arg(bin_dir())
        .current_dir(repo())
        .env_remove("CT_LOG_LEVEL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status
    );
    // The Trigger filtered the feature-branch push and accepted the push to main.
    assert!(
        stderr.contains(
            "experiment → signed webhook → Trigger ct-model-push: filtered out by main-only"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("main ("), "{stderr}");
    for needle in [
        "PipelineRun ct-pipeline-run-1: Completed",
        "KFP run ",
        "(SUCCEEDED)",
        "[buildah stand-in: content hash, nothing pushed]",
        "labels test",
        "pipeline_run_id",
        "GitOps test     commit ",
        "on main (changed: true)",
        "GitOps prod     branch jukebox-",
        "/user1/mlops-gitops/pulls/1 (created)",
    ] {
        assert!(
            stdout.contains(needle),
            "summary lacks {needle:?}:\n{stdout}"
        );
    }
}

#[test]
fn demo_with_a_failed_training_exits_1_and_deploys_nothing() {
    let out = Command::new(env!("CARGO_BIN_EXE_ct-sandbox"))
        .args([
            "demo",
            "--no-build",
            "--no-webhook",
            "--training-outcome",
            "FAILED",
            "--training-time",
            "100ms",
            "--bin-dir",
        ])
        .arg(bin_dir())
        .current_dir(repo())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("PipelineRun ct-pipeline-run-1: FAILED"),
        "{stdout}"
    );
    assert!(stdout.contains("(FAILED)"), "{stdout}");
    assert!(stdout.contains("GitOps test     commit - "), "{stdout}");
    assert!(stdout.contains("prod PR         - "), "{stdout}");
}

#[test]
fn run_refuses_missing_params_and_workspaces_with_one_line() {
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ct-sandbox"))
            .arg("run")
            .arg(repo().join("pipeline/ct-pipeline.yaml"))
            .args(extra)
            .arg("--bin-dir")
            .arg(bin_dir())
            .output()
            .unwrap()
    };
    let out = run(&["-p", "git-url=x"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("param git-revision") && err.contains("--param"),
        "{err}"
    );
    let all = [
        "-p",
        "git-url=x",
        "-p",
        "git-revision=y",
        "-p",
        "version=z",
        "-p",
        "app-name=a",
        "-p",
        "git-author=b",
    ];
    let out = run(&all);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("workspace source") && err.contains("emptyDir"),
        "{err}"
    );
}
