//! The README's first command, `ct-sandbox demo`, and `ct-sandbox run`, as a user runs them:
//! from the repository's files and from the rendered Helm chart.

use std::path::Path;
use std::process::Command;

use ct_testkit::hostile::Out;
use ct_testkit::repo_root as repo;

/// The step binaries, built when missing or stale.
fn bin_dir() -> &'static Path {
    ct_testkit::step_binaries()
}

/// `ct-sandbox <args> --bin-dir <step binaries>` from the repository root.
fn sandbox(args: &[&str]) -> Out {
    Command::new(env!("CARGO_BIN_EXE_ct-sandbox"))
        .args(args)
        .arg("--bin-dir")
        .arg(bin_dir())
        .current_dir(repo())
        .env_remove("CT_LOG_LEVEL")
        .output()
        .unwrap()
        .into()
}

/// `ct-sandbox demo --no-build <args>`.
fn demo(args: &[&str]) -> Out {
    sandbox(&[&["demo", "--no-build"], args].concat())
}

fn assert_succeeded(out: &Out) {
    assert_eq!(
        out.code,
        Some(0),
        "exit {:?}\n{}\n{}",
        out.code,
        out.stdout,
        out.stderr
    );
}

#[test]
fn demo_runs_the_whole_flow_and_prints_a_summary() {
    let out = demo(&["--training-time", "200ms"]);
    assert_succeeded(&out);
    let (stdout, stderr) = (&out.stdout, &out.stderr);
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
    let out = demo(&[
        "--no-webhook",
        "--training-outcome",
        "FAILED",
        "--training-time",
        "100ms",
    ]);
    let stdout = &out.stdout;
    assert_eq!(out.code, Some(1), "{stdout}");
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
    let pipeline = repo().join("pipeline/ct-pipeline.yaml");
    let run = |extra: &[&str]| sandbox(&[&["run", pipeline.to_str().unwrap()], extra].concat());
    let out = run(&["-p", "git-url=x"]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("param git-revision") && out.stderr.contains("--param"),
        "{}",
        out.stderr
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
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("workspace source") && out.stderr.contains("emptyDir"),
        "{}",
        out.stderr
    );
}

#[test]
fn demo_from_the_rendered_chart_retrains_on_an_alert() {
    let rendered = ct_testkit::chart::rendered_chart();
    let out = demo(&[
        "--alert",
        "--training-time",
        "200ms",
        "--manifests",
        rendered.to_str().unwrap(),
    ]);
    assert_succeeded(&out);
    let (stdout, stderr) = (&out.stdout, &out.stderr);
    assert!(
        stderr.contains(&format!(
            "Pipeline, Tasks and Triggers from {}",
            rendered.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "alert on jukebox → Alertmanager webhook → Trigger ct-alert-retrain: accepted"
        ) && stderr.contains("git-revision=main"),
        "{stderr}"
    );
    for needle in [
        "PipelineRun ct-pipeline-run-1: Completed",
        "PipelineRun ct-pipeline-run-2: Completed",
        "GitOps prod     branch jukebox-",
        "/user1/mlops-gitops/pulls/2 (created)",
    ] {
        assert!(
            stdout.contains(needle),
            "summary lacks {needle:?}:\n{stdout}"
        );
    }
    // The retraining's version: <sha7>-r<8 hex>.
    let re_version = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("GitOps prod     branch jukebox-"))
        .nth(1)
        .unwrap_or("");
    assert!(
        re_version.len() == 17
            && re_version.as_bytes()[7..9] == *b"-r"
            && re_version
                .chars()
                .filter(|c| *c != '-' && *c != 'r')
                .all(|c| c.is_ascii_hexdigit()),
        "{re_version:?}"
    );
}

#[test]
fn demo_alert_needs_an_event_listener_with_the_alert_trigger() {
    let out = demo(&["--alert"]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("--alert: the EventListener")
            && out.stderr.contains("alertTrigger.enabled"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("PipelineRun"));
    let out = demo(&["--manifests", "/nonexistent"]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains(".ci/chart.py render"), "{}", out.stderr);
}

#[test]
fn run_takes_the_rendered_chart_s_pipeline_and_its_tasks() {
    let pipeline = ct_testkit::chart::rendered_chart().join("pipeline/ct-pipeline.yaml");
    let out = sandbox(&["run", pipeline.to_str().unwrap(), "-p", "git-url=x"]);
    // Loaded (tasks/ beside it resolved every taskRef, the result references checked), then
    // refused for the missing run params before anything ran.
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("param git-revision") && out.stderr.contains("--param"),
        "{}",
        out.stderr
    );
}
