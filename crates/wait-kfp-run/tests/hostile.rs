//! Hostile input against the real `wait-kfp-run` binary and the KFP emulator (issue 9): run ids
//! and names with newlines, carriage returns, tabs, non-ASCII text and dot segments; devices as
//! input files; results that cannot be written; zero and negative durations; the exact
//! --max-poll-errors bound; SIGTERM during the wait and during a terminate slower than the
//! cancel budget. Every case checks the exit code, the one-line message, the requests the
//! emulator saw, and that the token appears in no output.

use std::time::Duration;

use ct_kfp_emulator::{Emulator, Fault, FaultAction, KfpEmulator, Options, RunEnd, RunScript};
use ct_testkit::hostile::{self, Out, left_files};
use serde_json::json;

const TOKEN: &str = "hostile-wait-token-8d21e0";

struct Env {
    emu: KfpEmulator,
    url: String,
    results: tempfile::TempDir,
}

async fn start() -> Env {
    let emu = ct_kfp_emulator::start(Options {
        kfp_cancel_delay: Duration::from_millis(20),
        ..Options::default()
    })
    .await
    .unwrap();
    let url = emu.url().to_string();
    emu.set_tokens(Some(TOKEN), None);
    Env {
        emu,
        url,
        results: tempfile::tempdir().unwrap(),
    }
}

/// A run that never finishes on its own.
fn running(env: &Env) -> String {
    let spec = json!({"pipelineInfo": {"name": "p"}, "root": {}});
    env.emu
        .add_run(
            "r",
            spec,
            RunScript::new(RunEnd::Running, Duration::ZERO, Duration::ZERO),
        )
        .unwrap()
}

impl Env {
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_wait-kfp-run"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CT_TOKEN", TOKEN)
            .args(["--kfp-url", &self.url, "--poll-interval", "10ms"]);
        if !args.contains(&"--results-dir") {
            cmd.arg("--results-dir").arg(self.results.path());
        }
        cmd.args(args);
        cmd
    }

    async fn run(&self, args: &[&str]) -> Out {
        self.command(args).output().await.unwrap().into()
    }

    /// Exit 2 naming `needle`, no request, no result or temporary file.
    async fn refused(&self, args: &[&str], needle: &str) {
        self.emu.front().clear_requests();
        let out = self.run(args).await;
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(
            out.message().contains(needle),
            "{args:?}: {:?}",
            out.message()
        );
        out.no_secret(TOKEN);
        assert!(
            self.emu.requests().is_empty(),
            "{args:?}: a request was sent"
        );
        assert_eq!(
            left_files(self.results.path()),
            Vec::<String>::new(),
            "{args:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ids_names_files_results_and_durations_send_nothing() {
    let env = start().await;
    let id = running(&env);
    for bad in [
        "a\nb",
        "a\rb",
        "a\tb",
        "..",
        ".",
        "../x",
        "%2e%2e",
        "a b",
        "r\u{e9}sum\u{e9}",
    ] {
        env.refused(&["--run-id", bad], "--run-id").await;
    }
    let key = ["--terminate", "--idempotency-key", "uid-1"];
    for (flag, bad) in [("--experiment", "a\nb"), ("--experiment", "a\tb")] {
        env.refused(&[&key[..], &[flag, bad]].concat(), flag).await;
    }
    env.refused(
        &[
            "--terminate",
            "--experiment",
            "e",
            "--idempotency-key",
            "k\n1",
        ],
        "--idempotency-key",
    )
    .await;
    env.refused(
        &["--idempotency-key", "k", "--experiment", "e"],
        "needs --terminate",
    )
    .await;
    env.refused(&["--run-id", &id, "--namespace", "../x"], "--namespace")
        .await;
    env.refused(&["--run-id", &id, "--kfp-url", "http://h/\nx"], "--kfp-url")
        .await;

    for (flag, needle) in [
        ("--run-id-file", "64 KiB limit"),
        ("--token-file", "1 MiB limit"),
        ("--ca-file", "4 MiB limit"),
    ] {
        let mut args = vec![flag, "/dev/zero"];
        if flag != "--run-id-file" {
            args.extend(["--run-id", &id]);
        }
        env.refused(&args, needle).await;
    }

    for d in [
        "--poll-interval=0",
        "--timeout=0s",
        "--timeout=-1s",
        "--request-timeout=0ms",
    ] {
        env.refused(&["--run-id", &id, d], d.split('=').next().unwrap())
            .await;
    }
    env.refused(&["--run-id", &id, "--log-level", "x=["], "--log-level")
        .await;

    let file = tempfile::NamedTempFile::new().unwrap();
    for (dir, needle) in [
        ("/sys", "cannot write result KFP_RUN_STATE"),
        (file.path().to_str().unwrap(), "not a directory"),
    ] {
        env.refused(&["--run-id", &id, "--results-dir", dir], needle)
            .await;
    }
    std::fs::create_dir(env.results.path().join("KFP_RUN_STATE")).unwrap();
    env.emu.front().clear_requests();
    let out = env.run(&["--run-id", &id]).await;
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.last().contains("is a directory"), "{}", out.last());
    assert!(env.emu.requests().is_empty());
    assert_eq!(env.emu.terminate_calls(&id), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_ascii_names_are_text_and_a_missing_experiment_is_nothing_to_terminate() {
    let env = start().await;
    let out = env
        .run(&[
            "--terminate",
            "--experiment",
            "jükebox 🎵",
            "--idempotency-key",
            "uid-1",
        ])
        .await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    out.no_secret(TOKEN);
    assert_eq!(out.stdout, "KFP_RUN_STATE=\n");
    let reqs = env.emu.requests();
    assert_eq!(reqs.len(), 1, "one experiment lookup: {reqs:?}");
    assert!(reqs[0].query.contains("filter"), "{:?}", reqs[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_poll_errors_n_gives_up_on_the_nth_failure() {
    let env = start().await;
    let id = running(&env);
    let path = format!("/apis/v2beta1/runs/{id}");
    env.emu.push_fault(Fault::new(
        Some("GET"),
        Some(&path),
        10,
        FaultAction::Status(502),
    ));
    let out = env
        .run(&[
            "--run-id",
            &id,
            "--max-retries",
            "0",
            "--max-poll-errors",
            "3",
            "--no-terminate-on-timeout",
        ])
        .await;
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(
        out.last().contains("3 polls in a row failed"),
        "{}",
        out.last()
    );
    out.no_secret(TOKEN);
    let polls = env
        .emu
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == path)
        .count();
    assert_eq!(polls, 3);
}

/// Spawn the binary, wait until `ready`, send SIGTERM, and collect the outcome.
async fn terminate_when(env: &Env, args: &[&str], ready: impl Fn(&Env) -> bool) -> Out {
    hostile::terminate_when(env.command(args), || ready(env)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_the_wait_terminates_the_run() {
    let env = start().await;
    let id = running(&env);
    let out = terminate_when(&env, &["--run-id", &id], |e| e.emu.requests().len() >= 2).await;
    assert_eq!(out.code, Some(143), "{}", out.stderr);
    assert!(
        out.last().contains(&format!("terminated run {id}")),
        "{}",
        out.last()
    );
    out.no_secret(TOKEN);
    assert_eq!(env.emu.terminate_calls(&id), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminate_slower_than_the_budget_is_reported_within_it() {
    let env = start().await;
    let id = running(&env);
    env.emu.push_fault(Fault::new(
        Some("POST"),
        Some(&format!("/apis/v2beta1/runs/{id}:terminate")),
        100,
        FaultAction::DelayMs(120_000),
    ));
    let started = std::time::Instant::now();
    let out = terminate_when(&env, &["--run-id", &id, "--max-retries", "0"], |e| {
        e.emu.requests().len() >= 2
    })
    .await;
    assert_eq!(out.code, Some(143), "{}", out.stderr);
    let last = out.last();
    assert!(
        last.contains(&format!(
            "run {id} may still be running: terminate not confirmed after 20 s"
        )),
        "{last}"
    );
    out.no_secret(TOKEN);
    // Within Tekton's 30 s before SIGKILL (the budget is 20 s).
    assert!(
        started.elapsed() < Duration::from_secs(28),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(env.emu.runs()[0]["state"], "RUNNING");
}
