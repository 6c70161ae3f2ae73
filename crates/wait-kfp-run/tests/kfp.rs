//! wait-kfp-run against the KFP emulator: terminal states and exit codes, timeout → terminate,
//! SIGTERM → terminate + 143, transient faults, one keep-alive connection, progress logging,
//! and the `--terminate` clean-up mode.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::serve::ListenerExt;
use clap::Parser;
use ct_kfp::PipelinePackage;
use ct_kfp_emulator::{
    Emulator, Fault, FaultAction, KfpEmulator, Options, RunEnd, RunScript, RunState,
};
use serde_json::Value;
use wait_kfp_run::{Args, run};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/kfp")
        .join(name)
}

fn jukebox_spec() -> Value {
    PipelinePackage::load(&fixture("jukebox-training-pipeline.yaml"))
        .unwrap()
        .pipeline_spec()
}

struct Env {
    emu: KfpEmulator,
    url: String,
    connections: Arc<AtomicUsize>,
    results: tempfile::TempDir,
}

/// The emulator on a listener that counts accepted connections.
async fn start() -> Env {
    start_with(Options::default()).await
}

async fn start_with(options: Options) -> Env {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (emu, router) = ct_kfp_emulator::build(options, &url);
    let connections = Arc::new(AtomicUsize::new(0));
    let c = connections.clone();
    let listener = listener.tap_io(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    tokio::spawn(async move { axum::serve(listener, router).await });
    Env {
        emu,
        url,
        connections,
        results: tempfile::tempdir().unwrap(),
    }
}

fn script(outcome: RunEnd, running_ms: u64) -> RunScript {
    RunScript {
        outcome,
        pending: Duration::from_millis(2),
        running: Duration::from_millis(running_ms),
        error: None,
    }
}

impl Env {
    fn cli(&self, run_id: &str, extra: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = [
            "wait-kfp-run",
            "--kfp-url",
            &self.url,
            "--run-id",
            run_id,
            "--results-dir",
            self.results.path().to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if !extra.contains(&"--poll-interval") {
            v.extend(["--poll-interval".to_string(), "5ms".to_string()]);
        }
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    fn args(&self, run_id: &str, extra: &[&str]) -> Args {
        Args::try_parse_from(self.cli(run_id, extra)).unwrap()
    }

    fn state(&self) -> Option<String> {
        std::fs::read_to_string(self.results.path().join("KFP_RUN_STATE")).ok()
    }

    fn run_view(&self, id: &str) -> Value {
        self.emu
            .runs()
            .into_iter()
            .find(|r| r["run_id"] == id)
            .unwrap()
    }
}

#[tokio::test]
async fn every_terminal_state_has_its_exit_code_and_result() {
    let env = start().await;
    let cases: &[(RunEnd, &[&str], Option<u8>)] = &[
        (RunEnd::Succeeded, &[], None),
        (RunEnd::Skipped, &[], None),
        (RunEnd::Failed, &[], Some(1)),
        (RunEnd::Canceled, &[], Some(1)),
        (RunEnd::Failed, &["--allow-failed-run"], None),
        (RunEnd::Canceled, &["--allow-failed-run"], None),
    ];
    for (outcome, extra, want) in cases {
        let mut s = script(*outcome, 20);
        s.error = Some("train-model: OOMKilled".into());
        let id = env.emu.add_run("r", jukebox_spec(), s).unwrap();
        let r = run(env.args(&id, extra)).await;
        let expected_state = format!("{outcome:?}").to_uppercase();
        assert_eq!(
            env.state().unwrap(),
            expected_state,
            "{outcome:?} {extra:?}"
        );
        match want {
            None => r.unwrap(),
            Some(code) => {
                let e = r.unwrap_err();
                assert_eq!(e.exit_code(), *code);
                assert!(
                    e.to_string().contains(&format!("ended {expected_state}")),
                    "{e}"
                );
                if *outcome == RunEnd::Failed {
                    assert!(e.to_string().contains("train-model: OOMKilled"), "{e}");
                }
            }
        }
        assert_eq!(env.emu.terminate_calls(&id), 0);
    }
}

#[tokio::test]
async fn a_canceled_run_stops_the_wait_at_once() {
    // The kfp SDK polls a CANCELED run until its timeout (kubeflow/pipelines#14473).
    let env = start().await;
    let id = env
        .emu
        .add_run("r", jukebox_spec(), script(RunEnd::Running, 0))
        .unwrap();
    env.emu.set_run_state(&id, RunState::Canceled).unwrap();
    let e = run(env.args(&id, &["--timeout", "1h"])).await.unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert_eq!(env.state().unwrap(), "CANCELED");
}

#[tokio::test]
async fn timeout_terminates_the_run_unless_told_not_to() {
    let env = start().await;
    let id = env
        .emu
        .add_run("r", jukebox_spec(), script(RunEnd::Running, 0))
        .unwrap();
    let e = run(env.args(&id, &["--timeout", "60ms"]))
        .await
        .unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert!(e.to_string().contains("did not finish within"), "{e}");
    assert!(e.to_string().contains("terminated it"), "{e}");
    assert_eq!(env.emu.terminate_calls(&id), 1);
    let state = env.run_view(&id)["state"].as_str().unwrap().to_string();
    assert!(state == "CANCELING" || state == "CANCELED", "{state}");
    assert_eq!(env.state().unwrap(), "RUNNING", "last state seen");

    let id = env
        .emu
        .add_run("r", jukebox_spec(), script(RunEnd::Running, 0))
        .unwrap();
    let e = run(env.args(&id, &["--timeout", "30ms", "--no-terminate-on-timeout"]))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("left it running"), "{e}");
    assert_eq!(env.emu.terminate_calls(&id), 0);
    assert_eq!(env.run_view(&id)["state"], "RUNNING");
}

#[tokio::test]
async fn transient_poll_faults_are_survived_and_fatal_ones_are_not() {
    let env = start().await;
    let id = env
        .emu
        .add_run("r", jukebox_spec(), script(RunEnd::Succeeded, 30))
        .unwrap();
    let runs = "/apis/v2beta1/runs/*";
    env.emu.push_fault(Fault::new(
        Some("GET"),
        Some(runs),
        3,
        FaultAction::Throttle,
    ));
    env.emu.push_fault(Fault::new(
        Some("GET"),
        Some(runs),
        2,
        FaultAction::Status(503),
    ));
    env.emu.push_fault(Fault::new(
        Some("GET"),
        Some(runs),
        1,
        FaultAction::DropBefore,
    ));
    // No HTTP-level retries: the wait loop itself rides out the failed polls.
    run(env.args(&id, &["--max-retries", "0"])).await.unwrap();
    assert_eq!(env.state().unwrap(), "SUCCEEDED");

    // Too many failures in a row end the wait (exit 3).
    env.emu.push_fault(Fault::new(
        Some("GET"),
        Some(runs),
        10,
        FaultAction::Status(502),
    ));
    let e = run(env.args(&id, &["--max-retries", "0", "--max-poll-errors", "3"]))
        .await
        .unwrap_err();
    assert_eq!(e.exit_code(), 3);
    assert!(e.to_string().contains("HTTP 502"), "{e}");
    env.emu.clear_faults();

    // An unknown run is a usage error; a rejected token a remote one.
    let e = run(env.args("no-such-run", &[])).await.unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    assert!(e.to_string().contains("HTTP 404"), "{e}");
    env.emu.set_tokens(Some("right-token"), None);
    let e = run(env.args(&id, &[])).await.unwrap_err();
    assert_eq!(e.exit_code(), 3);
    assert!(e.to_string().contains("HTTP 401"), "{e}");
}

#[tokio::test]
async fn run_id_file_is_read_and_checked() {
    let env = start().await;
    let id = env
        .emu
        .add_run("r", jukebox_spec(), script(RunEnd::Succeeded, 5))
        .unwrap();
    let f = env.results.path().join("id");
    std::fs::write(&f, format!("{id}\n")).unwrap();
    let mut cli = env.cli(&id, &[]);
    let at = cli.iter().position(|a| a == "--run-id").unwrap();
    cli[at] = "--run-id-file".into();
    cli[at + 1] = f.display().to_string();
    run(Args::try_parse_from(&cli).unwrap()).await.unwrap();
    std::fs::write(&f, "not a run id").unwrap();
    let e = run(Args::try_parse_from(&cli).unwrap()).await.unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("--run-id-file"), "{e}");
}

#[tokio::test]
async fn one_connection_and_each_change_logged_once() {
    let env = start().await;
    let id = env
        .emu
        .add_run("r", jukebox_spec(), script(RunEnd::Running, 0))
        .unwrap();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wait-kfp-run"))
        .args(env.cli(&id, &["--poll-interval", "2ms"]).iter().skip(1))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Let it poll the unchanged run many times, then finish the run.
    let gets = || {
        env.emu
            .requests()
            .iter()
            .filter(|r| r.method == "GET")
            .count()
    };
    for _ in 0..2000 {
        if gets() >= 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let task = env.run_view(&id)["run_details"]["task_details"][0]["display_name"]
        .as_str()
        .unwrap()
        .to_string();
    env.emu.set_run_state(&id, RunState::Succeeded).unwrap();
    let out = child.wait_with_output().await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "KFP_RUN_STATE=SUCCEEDED\n"
    );
    assert!(gets() > 20);
    assert_eq!(env.connections.load(Ordering::SeqCst), 1, "keep-alive");
    for line in [
        format!("task {task}: RUNNING"),
        format!("task {task}: SUCCEEDED"),
        format!("run {id} is RUNNING"),
        format!("run {id} is SUCCEEDED"),
    ] {
        assert_eq!(err.matches(&line).count(), 1, "{line}\n{err}");
    }
}

#[tokio::test]
async fn sigterm_terminates_the_run_and_exits_143() {
    let env = start().await;
    let id = env
        .emu
        .add_run("r", jukebox_spec(), script(RunEnd::Running, 0))
        .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_wait-kfp-run"))
        .args(env.cli(&id, &["--poll-interval", "20ms"]).iter().skip(1))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until it is polling.
    for _ in 0..1000 {
        if env.emu.requests().iter().any(|r| r.method == "GET") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().await.unwrap();
    assert_eq!(status.code(), Some(143));
    assert_eq!(env.emu.terminate_calls(&id), 1);
    let state = env.run_view(&id)["state"].as_str().unwrap().to_string();
    assert!(state == "CANCELING" || state == "CANCELED", "{state}");
}

// ---- --terminate ----

fn posts(env: &Env) -> usize {
    env.emu
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count()
}

#[tokio::test]
async fn terminate_leaves_a_finished_run_alone() {
    let env = start().await;
    for state in ["SUCCEEDED", "FAILED", "CANCELED"] {
        let id = env
            .emu
            .add_run("r", jukebox_spec(), script(RunEnd::Running, 0))
            .unwrap();
        env.emu.set_run_state(&id, RunState::parse(state)).unwrap();
        run(env.args(&id, &["--terminate"])).await.unwrap();
        assert_eq!(env.state().unwrap(), state);
        assert_eq!(env.emu.terminate_calls(&id), 0, "{state}");
    }
    assert_eq!(posts(&env), 0, "no terminate request");
}

#[tokio::test]
async fn terminate_stops_a_running_run_and_exits_0_on_canceled() {
    // CANCELING for a while after terminate: the step must keep polling until CANCELED.
    let env = start_with(Options {
        kfp_cancel_delay: Duration::from_millis(30),
        ..Options::default()
    })
    .await;
    let id = env
        .emu
        .add_run("r", jukebox_spec(), script(RunEnd::Running, 0))
        .unwrap();
    run(env.args(&id, &["--terminate", "--timeout", "1h"]))
        .await
        .unwrap();
    assert_eq!(env.state().unwrap(), "CANCELED");
    assert_eq!(env.run_view(&id)["state"], "CANCELED");
    assert_eq!(env.emu.terminate_calls(&id), 1);
    let terminate = format!("/apis/v2beta1/runs/{id}:terminate");
    let reqs = env.emu.requests();
    assert_eq!(
        reqs.iter()
            .filter(|r| r.method == "POST" && r.path == terminate)
            .count(),
        1
    );
    let gets_after = reqs
        .iter()
        .skip_while(|r| r.method != "POST")
        .filter(|r| r.method == "GET")
        .count();
    assert!(gets_after >= 1, "polled after terminate");
}

#[tokio::test]
async fn terminate_without_a_run_id_has_nothing_to_do() {
    let env = start().await;
    let file = env.results.path().join("no-such-file");
    let empty = env.results.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let url = env.url.clone();
    let results = env.results.path().to_str().unwrap().to_string();
    let cases: [Vec<String>; 3] = [
        vec!["--run-id-file".into(), file.display().to_string()],
        vec!["--run-id-file".into(), empty.display().to_string()],
        vec!["--run-id".into(), "".into()],
    ];
    for case in cases {
        std::fs::write(env.results.path().join("KFP_RUN_STATE"), "stale").unwrap();
        let mut cli: Vec<String> = [
            "wait-kfp-run",
            "--terminate",
            "--kfp-url",
            &url,
            "--results-dir",
            &results,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        cli.extend(case.iter().cloned());
        run(Args::try_parse_from(&cli).unwrap()).await.unwrap();
        assert_eq!(env.state().unwrap(), "", "{case:?}");
    }
    assert!(env.emu.requests().is_empty(), "nothing sent");

    // Without --terminate a missing id is still an error.
    let cli = [
        "wait-kfp-run",
        "--kfp-url",
        &url,
        "--results-dir",
        &results,
        "--run-id-file",
        file.to_str().unwrap(),
    ];
    let e = run(Args::try_parse_from(cli).unwrap()).await.unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("cannot read"), "{e}");
}

#[tokio::test]
async fn terminate_errors_have_their_exit_codes() {
    let env = start().await;
    // Unknown run: 2, and no terminate sent.
    let e = run(env.args("no-such-run", &["--terminate"]))
        .await
        .unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    assert!(e.to_string().contains("HTTP 404"), "{e}");
    assert_eq!(posts(&env), 0);

    // Flags that belong to the wait mode.
    let id = env
        .emu
        .add_run("r", jukebox_spec(), script(RunEnd::Running, 0))
        .unwrap();
    let e = run(env.args(&id, &["--terminate", "--allow-failed-run"]))
        .await
        .unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("--allow-failed-run"), "{e}");

    // The server refuses the terminate and the run is still live: 3 with the server's message.
    env.emu.push_fault(Fault::new(
        Some("POST"),
        Some(&format!("/apis/v2beta1/runs/{id}:terminate")),
        1,
        FaultAction::Status(403),
    ));
    let e = run(env.args(&id, &["--terminate"])).await.unwrap_err();
    assert_eq!(e.exit_code(), 3, "{e}");
    assert!(
        e.to_string().contains(&format!("terminating run {id}")),
        "{e}"
    );
    assert!(e.to_string().contains("HTTP 403"), "{e}");
    assert_eq!(env.run_view(&id)["state"], "RUNNING");
    assert_eq!(posts(&env), 1, "the refused request only");
}

#[tokio::test]
async fn terminate_times_out_while_the_run_stays_canceling() {
    let env = start_with(Options {
        kfp_cancel_delay: Duration::from_secs(3600),
        ..Options::default()
    })
    .await;
    let id = env
        .emu
        .add_run("r", jukebox_spec(), script(RunEnd::Running, 0))
        .unwrap();
    let e = run(env.args(&id, &["--terminate", "--timeout", "40ms"]))
        .await
        .unwrap_err();
    assert_eq!(e.exit_code(), 1, "{e}");
    assert!(e.to_string().contains("still CANCELING after 40ms"), "{e}");
    assert_eq!(env.state().unwrap(), "CANCELING");
    assert_eq!(env.emu.terminate_calls(&id), 1, "terminate is sent once");
}

#[tokio::test]
async fn terminate_reads_its_env_like_the_kfp_terminate_task() {
    // tasks/kfp-terminate.yaml: `--terminate`, CT_RUN_ID, CT_TIMEOUT; unset params are empty.
    let env = start().await;
    let id = env
        .emu
        .add_run("r", jukebox_spec(), script(RunEnd::Running, 0))
        .unwrap();
    let bin = env!("CARGO_BIN_EXE_wait-kfp-run");
    let out = tokio::process::Command::new(bin)
        .env("CT_TERMINATE", "true")
        .env("CT_KFP_URL", &env.url)
        .env("CT_RUN_ID", &id)
        .env("CT_TIMEOUT", "5m")
        .env("CT_POLL_INTERVAL", "5ms")
        .env("CT_ALLOW_FAILED_RUN", "")
        .env("CT_NO_TERMINATE_ON_TIMEOUT", "")
        .env("CT_RESULTS_DIR", env.results.path())
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "KFP_RUN_STATE=CANCELED\n"
    );
    assert!(err.contains(&format!("run {id} terminated")), "{err}");
    assert_eq!(env.emu.terminate_calls(&id), 1);

    // An empty CT_TERMINATE is "not given": the step waits (and the CANCELED run fails it).
    let out = tokio::process::Command::new(bin)
        .args(["--kfp-url", &env.url, "--run-id", &id])
        .env("CT_TERMINATE", "")
        .env("CT_RESULTS_DIR", env.results.path())
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("ended CANCELED"), "{err}");
    assert_eq!(env.emu.terminate_calls(&id), 1);
}
