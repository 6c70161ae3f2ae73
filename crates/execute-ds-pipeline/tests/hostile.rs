//! Hostile input against the real `execute-ds-pipeline` binary and the KFP emulator (issue 9):
//! one command-line value is one value; free-text flags with newlines, carriage returns, tabs
//! and non-ASCII text; devices and oversized files; results that cannot be written; zero and
//! negative durations; SIGTERM before, during and after the create request. Every case checks
//! the exit code, the one-line message, that no request was sent (the emulator's request log) or
//! what changed, and that the token appears in no output.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ct_kfp_emulator::{Emulator, Fault, FaultAction, KfpEmulator, Options, RunEnd};
use ct_testkit::hostile::{self, Out, left_files};

const TOKEN: &str = "hostile-kfp-token-5f3a9c";
const RUNS: &str = "/apis/v2beta1/runs";
const EXPERIMENTS: &str = "/apis/v2beta1/experiments";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/kfp")
        .join(name)
}

struct Env {
    emu: KfpEmulator,
    url: String,
    results: tempfile::TempDir,
}

async fn start(outcome: RunEnd) -> Env {
    let emu = ct_kfp_emulator::start(Options {
        kfp_outcome: outcome,
        kfp_running: Duration::from_secs(3600),
        ..Options::default()
    })
    .await
    .unwrap();
    emu.set_tokens(Some(TOKEN), None);
    let url = emu.url().to_string();
    Env {
        emu,
        url,
        results: tempfile::tempdir().unwrap(),
    }
}

/// What the binary did.
impl Env {
    /// The binary with the emulator's URL, the token in CT_TOKEN, the results directory and
    /// `args` (a nested pipeline with `version=v` unless `args` name another package).
    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_execute-ds-pipeline"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CT_TOKEN", TOKEN)
            .args(["--kfp-url", &self.url, "--max-retries", "1"]);
        if !args.contains(&"--results-dir") {
            cmd.arg("--results-dir").arg(self.results.path());
        }
        if !args.contains(&"--pipeline-package") && !args.contains(&"--pipeline-name") {
            cmd.arg("--pipeline-package")
                .arg(fixture("nested-pipeline.yaml"));
        }
        if !args.iter().any(|a| a.starts_with("version=")) && !env.iter().any(|e| e.0 == "CT_PARAM")
        {
            cmd.args(["--param", "version=v"]);
        }
        cmd.args(args).envs(env.iter().copied());
        cmd
    }

    async fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        self.command(args, env).output().await.unwrap().into()
    }

    /// Exit 2 with `needle` in the message, nothing sent, no result or temporary file written.
    async fn refused(&self, args: &[&str], env: &[(&str, &str)], needle: &str) {
        self.emu.front().clear_requests();
        let out = self.run(args, env).await;
        let case = format!("{args:?} {env:?}");
        assert_eq!(out.code, Some(2), "{case}: {}", out.stderr);
        let line = out.message();
        assert!(line.contains(needle), "{case}: {line:?} lacks {needle:?}");
        out.no_secret(TOKEN);
        assert!(self.emu.requests().is_empty(), "{case}: a request was sent");
        assert!(self.emu.runs().is_empty(), "{case}: a run was created");
        assert_eq!(
            left_files(self.results.path()),
            Vec::<String>::new(),
            "{case}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_command_line_value_is_one_parameter() {
    let env = start(RunEnd::Succeeded).await;
    // A newline inside one --param value: still the one parameter `version`.
    let out = env.run(&["--param", "version=a\nepochs=5"], &[]).await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    out.no_secret(TOKEN);
    let runs = env.emu.runs();
    assert_eq!(runs.len(), 1);
    let params = &runs[0]["runtime_config"]["parameters"];
    assert_eq!(params["version"], "a\nepochs=5");
    assert!(
        params.get("epochs").is_none(),
        "no second parameter: {params}"
    );

    // CT_PARAM is the documented list: one KEY=VALUE per line (CRLF too).
    let out = env
        .run(&[], &[("CT_PARAM", "version=b\r\nepochs=5\n")])
        .await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let params = &env.emu.runs()[1]["runtime_config"]["parameters"];
    assert_eq!(
        (&params["version"], &params["epochs"]),
        (&"b".into(), &5.into())
    );

    // Non-ASCII text is text: accepted as given.
    let out = env
        .run(
            &["--experiment", "jükebox 🎵", "--run-name", "run für café"],
            &[],
        )
        .await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let exp = env.emu.experiments();
    assert!(
        exp.iter().any(|e| e["display_name"] == "jükebox 🎵"),
        "{exp:?}"
    );
    assert_eq!(env.emu.runs()[2]["display_name"], "run für café");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_text_devices_results_and_durations_send_nothing() {
    let env = start(RunEnd::Succeeded).await;
    for (flag, bad) in [
        ("--experiment", "exp\nx"),
        ("--experiment", "exp\rx"),
        ("--experiment", "exp\tx"),
        ("--run-name", "a\nb"),
        ("--idempotency-key", "k\n1"),
        ("--idempotency-key", "../k"),
        ("--namespace", "../x"),
        ("--namespace", "n\ns"),
        ("--kfp-url", "http://127.0.0.1:1/\napis"),
        ("--kfp-url", "http://127.0.0.1:1/\tapis"),
    ] {
        env.refused(&[flag, bad], &[], flag).await;
    }
    env.refused(&["--param", "ep\nochs=5"], &[], "--param")
        .await;
    env.refused(&["--pipeline-name", "a\tb"], &[], "--pipeline-name")
        .await;

    // Devices, oversized and unreadable files: exit 2 naming the limit, before any request.
    let big = tempfile::NamedTempFile::new().unwrap();
    big.as_file().set_len(33 << 20).unwrap();
    let big = big.path().to_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().to_str().unwrap().to_string();
    for (flag, path, needle) in [
        ("--pipeline-package", "/dev/zero", "32 MiB limit"),
        ("--pipeline-package", big.as_str(), "32 MiB limit"),
        ("--pipeline-package", dir.as_str(), "cannot read"),
        ("--parameters-file", "/dev/zero", "4 MiB limit"),
        ("--token-file", "/dev/zero", "1 MiB limit"),
        ("--ca-file", "/dev/zero", "4 MiB limit"),
    ] {
        env.refused(&[flag, path], &[], needle).await;
    }

    // Zero and negative durations.
    for d in ["0", "0s", "0ms", "-5s"] {
        let arg = format!("--request-timeout={d}");
        env.refused(&[&arg], &[], "--request-timeout").await;
    }
    env.refused(&["--log-level", "info=["], &[], "--log-level")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_that_cannot_be_written_stop_the_step_before_the_run_is_created() {
    let env = start(RunEnd::Succeeded).await;
    // A result path that is a directory: refused up front, nothing created, nothing left.
    std::fs::create_dir(env.results.path().join("KFP_EXPERIMENT_ID")).unwrap();
    env.emu.front().clear_requests();
    let out = env.run(&[], &[]).await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.last().contains("cannot write result KFP_EXPERIMENT_ID"),
        "{}",
        out.last()
    );
    assert!(env.emu.requests().is_empty() && env.emu.runs().is_empty());
    assert_eq!(left_files(env.results.path()), ["KFP_EXPERIMENT_ID"]);
    std::fs::remove_dir(env.results.path().join("KFP_EXPERIMENT_ID")).unwrap();

    // A directory nobody may write in (even root: sysfs), and a file instead of a directory.
    let file = tempfile::NamedTempFile::new().unwrap();
    for (dir, needle) in [
        ("/sys", "cannot write result KFP_RUN_ID"),
        (file.path().to_str().unwrap(), "not a directory"),
    ] {
        let out = env.run(&["--results-dir", dir], &[]).await;
        assert_eq!(out.code, Some(2), "{dir}: {}", out.stderr);
        assert!(out.last().contains(needle), "{dir}: {}", out.last());
        out.no_secret(TOKEN);
        assert!(
            env.emu.requests().is_empty() && env.emu.runs().is_empty(),
            "{dir}"
        );
    }
}

/// Spawn the binary, wait until `ready`, send SIGTERM, and collect the outcome.
async fn terminate_when(env: &Env, args: &[&str], ready: impl Fn(&Env) -> bool) -> Out {
    hostile::terminate_when(env.command(args, &[]), || ready(env)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_before_the_create_leaves_no_run() {
    let env = start(RunEnd::Running).await;
    env.emu.push_fault(Fault::new(
        Some("GET"),
        Some(EXPERIMENTS),
        1,
        FaultAction::DelayMs(60_000),
    ));
    let out = terminate_when(&env, &[], |e| !e.emu.requests().is_empty()).await;
    assert_eq!(out.code, Some(143), "{}", out.stderr);
    assert!(
        out.last().contains("before a run was created"),
        "{}",
        out.last()
    );
    out.no_secret(TOKEN);
    assert!(env.emu.runs().is_empty());
    assert!(!env.emu.requests().iter().any(|r| r.method == "POST"));
    assert_eq!(left_files(env.results.path()), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_create_without_key_finds_and_terminates_the_run() {
    let env = start(RunEnd::Running).await;
    // The server creates the run, its answer hangs; no --idempotency-key is given.
    env.emu.push_fault(Fault::new(
        Some("POST"),
        Some(RUNS),
        1,
        FaultAction::DelayAfterMs(60_000),
    ));
    let out = terminate_when(&env, &[], |e| !e.emu.runs().is_empty()).await;
    let run_id = env.emu.runs()[0]["run_id"].as_str().unwrap().to_string();
    assert_eq!(out.code, Some(143), "{}", out.stderr);
    assert!(
        out.last().contains(&format!("terminated run {run_id}")),
        "{}",
        out.last()
    );
    out.no_secret(TOKEN);
    assert_eq!(
        env.emu.terminate_calls(&run_id),
        1,
        "found by its generated key"
    );
    assert_eq!(env.emu.runs().len(), 1);
    assert_eq!(
        left_files(env.results.path()),
        Vec::<String>::new(),
        "no result"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_terminate_is_the_last_line_naming_the_run() {
    let env = start(RunEnd::Running).await;
    env.emu.push_fault(Fault::new(
        Some("POST"),
        Some(RUNS),
        1,
        FaultAction::DelayAfterMs(60_000),
    ));
    env.emu.push_fault(Fault::new(
        Some("POST"),
        Some(&format!("{RUNS}/*")),
        5,
        FaultAction::Status(403),
    ));
    let out = terminate_when(&env, &["--idempotency-key", "uid-refused"], |e| {
        !e.emu.runs().is_empty()
    })
    .await;
    let run_id = env.emu.runs()[0]["run_id"].as_str().unwrap().to_string();
    assert_eq!(out.code, Some(143), "{}", out.stderr);
    let last = out.last();
    assert!(
        last.contains(&format!(
            "run {run_id} may still be running: terminate not confirmed after"
        )) && last.contains("HTTP 403"),
        "{last}"
    );
    out.no_secret(TOKEN);
    assert_eq!(env.emu.runs()[0]["state"], "RUNNING");
}
