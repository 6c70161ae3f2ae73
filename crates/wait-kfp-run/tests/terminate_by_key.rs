//! The finally backstop (issue 9, point 6): a timed-out or cancelled TaskRun publishes no
//! results, so `wait-kfp-run --terminate` (the kfp-terminate Task) finds the training run by the
//! idempotency key execute-ds-pipeline stored with it, in the experiment named as the Task's.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use ct_kfp::client::{CreateRun, KfpClient, RunSource};
use ct_kfp_emulator::{Emulator, KfpEmulator, Options, RunEnd};
use ct_step::http::{ApiClient, AuthScheme, ClientConfig, TokenSource};
use serde_json::json;

async fn start() -> (KfpEmulator, String) {
    let emu = ct_kfp_emulator::start(Options {
        kfp_outcome: RunEnd::Running,
        kfp_cancel_delay: Duration::from_millis(20),
        ..Options::default()
    })
    .await
    .unwrap();
    let url = emu.url().to_string();
    (emu, url)
}

fn binary() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_wait-kfp-run"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

/// Create a run the way execute-ds-pipeline does: experiment by name, run tagged with `key`.
async fn create(url: &str, experiment: &str, key: &str) -> String {
    let cfg = ClientConfig {
        base_url: url.parse().unwrap(),
        token: TokenSource::None,
        auth: AuthScheme::Bearer,
        ca_file: None,
        insecure: false,
        timeout: Duration::from_secs(10),
        max_retries: 0,
        backoff: Duration::from_millis(10),
    };
    let client = KfpClient::new(ApiClient::new(cfg).unwrap(), None, 0);
    let exp = client.get_or_create_experiment(experiment).await.unwrap();
    let req = CreateRun {
        experiment_id: exp.experiment_id,
        display_name: "train".into(),
        source: RunSource::Spec(json!({"pipelineInfo": {"name": "p"}, "root": {}})),
        parameters: Default::default(),
        idempotency_key: Some(key.into()),
    };
    let (run, _) = client
        .create_run(&req, &AtomicBool::new(false))
        .await
        .unwrap();
    run.run_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kfp_terminate_task_finds_the_run_by_its_key() {
    let (emu, url) = start().await;
    // A run created as the kfp-training Task creates it (its KFP_RUN_ID result is lost), and
    // another one in the same experiment with another key.
    let key = "6f1c2d3e-aaaa-bbbb-cccc-0123456789ab-train";
    let ours = create(&url, "jukebox", key).await;
    let theirs = create(&url, "jukebox", "another-pipelinerun-train").await;

    // tasks/kfp-terminate.yaml: --terminate, CT_RUN_ID empty, CT_EXPERIMENT, CT_IDEMPOTENCY_KEY.
    let state = tempfile::tempdir().unwrap();
    let out = binary()
        .arg("--terminate")
        .env("CT_KFP_URL", &url)
        .env("CT_RUN_ID", "")
        .env("CT_EXPERIMENT", "jukebox")
        .env("CT_IDEMPOTENCY_KEY", key)
        .env("CT_TIMEOUT", "5m")
        .env("CT_POLL_INTERVAL", "10ms")
        .env("CT_RESULTS_DIR", state.path())
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!("run {ours} has idempotency key {key}")),
        "{err}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "KFP_RUN_STATE=CANCELED\n"
    );
    assert_eq!(emu.terminate_calls(&ours), 1);
    assert_eq!(emu.terminate_calls(&theirs), 0, "only the run with the key");

    // A key no run has (the run was never created): nothing to terminate, exit 0.
    let out = binary()
        .args(["--terminate", "--kfp-url", &url, "--experiment", "jukebox"])
        .args(["--idempotency-key", "never-created-train"])
        .env("CT_RESULTS_DIR", state.path())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "KFP_RUN_STATE=\n");
    assert_eq!(emu.terminate_calls(&theirs), 0);
}
