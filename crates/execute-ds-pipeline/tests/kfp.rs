//! execute-ds-pipeline against the KFP emulator: golden bodies, caching parity, parameter
//! typing, experiments, pipelines by name, auth, retries and idempotency.

use std::path::PathBuf;

use clap::Parser;
use ct_kfp_emulator::{Emulator, Fault, FaultAction, KfpEmulator, LoggedRequest, Options};
use execute_ds_pipeline::{Args, run};
use serde_json::{Value, json};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/kfp")
        .join(name)
}

fn read_json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

struct Env {
    emu: KfpEmulator,
    url: String,
    results: tempfile::TempDir,
}

async fn start() -> Env {
    let emu = ct_kfp_emulator::start(Options::default()).await.unwrap();
    let url = emu.url().to_string();
    Env {
        emu,
        url,
        results: tempfile::tempdir().unwrap(),
    }
}

impl Env {
    fn args<S: AsRef<str>>(&self, extra: &[S]) -> Args {
        let mut v: Vec<String> = vec![
            "execute-ds-pipeline".into(),
            "--kfp-url".into(),
            self.url.clone(),
            "--results-dir".into(),
            self.results.path().display().to_string(),
            "--max-retries".into(),
            "3".into(),
        ];
        v.extend(extra.iter().map(|s| s.as_ref().to_string()));
        Args::try_parse_from(v).unwrap()
    }

    fn result(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.results.path().join(name)).ok()
    }

    /// The logged `method` requests to `path`, oldest first.
    fn requests_to(&self, method: &str, path: &str) -> Vec<LoggedRequest> {
        self.emu
            .requests()
            .into_iter()
            .filter(|r| r.method == method && r.path == path)
            .collect()
    }

    fn posts(&self, path: &str) -> Vec<LoggedRequest> {
        self.requests_to("POST", path)
    }

    /// The JSON body of the `i`-th create-run request, less the `description` holding the
    /// idempotency key (the one field kfp 2.9.0 does not send).
    fn run_body(&self, i: usize) -> Value {
        sdk_body(self.posts(RUNS)[i].body.clone().unwrap())
    }
}

const RUNS: &str = "/apis/v2beta1/runs";

/// A create-run body without its idempotency-key `description` (every run has one: a key is
/// generated when none is given).
fn sdk_body(mut body: Value) -> Value {
    let d = body.as_object_mut().unwrap().remove("description");
    let d = d.as_ref().and_then(Value::as_str).unwrap_or_default();
    assert!(d.starts_with("ct-steps idempotency-key "), "{d:?}");
    body
}
const EXPERIMENTS: &str = "/apis/v2beta1/experiments";

fn jukebox_args() -> Vec<String> {
    [
        "--pipeline-package",
        fixture("jukebox-training-pipeline.yaml").to_str().unwrap(),
        "--parameters-file",
        fixture("default_parameters.json").to_str().unwrap(),
        "--param",
        "version=abc1234",
        "--param",
        "model_name=jukebox",
        "--param",
        "model_storage_pvc=jukebox-model-pvc",
        "--param",
        "cluster_domain=apps.cluster.example.com",
        "--param",
        "prod_flag=true",
        "--enable-caching",
        "true",
        "--experiment",
        "jukebox-model-training",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// `--pipeline-package nested-pipeline.yaml --param version=v` followed by `extra`.
fn nested_args(extra: &[&str]) -> Vec<String> {
    let pkg = fixture("nested-pipeline.yaml");
    let mut v = vec![
        "--pipeline-package",
        pkg.to_str().unwrap(),
        "--param",
        "version=v",
    ];
    v.extend_from_slice(extra);
    v.into_iter().map(String::from).collect()
}

/// A fault on the next create-run request.
fn on_create_run(action: FaultAction) -> Fault {
    Fault::new(Some("POST"), Some(RUNS), 1, action)
}

/// The step's binary.
fn step_binary() -> tokio::process::Command {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_execute-ds-pipeline"))
}

#[tokio::test]
async fn create_run_body_equals_the_kfp_2_9_golden_body() {
    let env = start().await;
    run(env.args(&jukebox_args())).await.unwrap();

    let posts = env.posts(RUNS);
    assert_eq!(posts.len(), 1);
    let mut body = env.run_body(0);
    let mut golden = read_json("create-run-request.jukebox.json");
    // Only the server-assigned experiment id and the clock-dependent name may differ.
    let exp_id = env.emu.experiments()[0]["experiment_id"].clone();
    assert_eq!(body["experiment_id"], exp_id);
    let name = body["display_name"].as_str().unwrap().to_string();
    let stamp = name.strip_prefix("jukebox-training ").expect(&name);
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H-%M-%S").expect(stamp);
    for k in ["experiment_id", "display_name"] {
        body.as_object_mut().unwrap().remove(k);
        golden.as_object_mut().unwrap().remove(k);
    }
    assert_eq!(body, golden);

    // Results exist as soon as the run does, exact bytes.
    let run = &env.emu.runs()[0];
    assert_eq!(
        env.result("KFP_RUN_ID").unwrap(),
        run["run_id"].as_str().unwrap()
    );
    assert_eq!(
        env.result("KFP_EXPERIMENT_ID").unwrap(),
        exp_id.as_str().unwrap()
    );

    // The experiment lookup sent the SDK's exact filter and the namespace-less query.
    let list = env
        .requests_to("GET", EXPERIMENTS)
        .into_iter()
        .next()
        .unwrap();
    let filter: String = url::form_urlencoded::parse(list.query.as_bytes())
        .find(|(k, _)| k == "filter")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(
        filter,
        r#"{"predicates": [{"operation": 1, "key": "display_name", "stringValue": "jukebox-model-training"}]}"#
    );
}

#[tokio::test]
async fn caching_parity_on_the_nested_pipeline() {
    let env = start().await;
    let pkg = fixture("nested-pipeline.yaml");
    let args = [
        "--pipeline-package",
        pkg.to_str().unwrap(),
        "--param",
        "version=abc1234",
        "--param",
        "prod_flag=true",
        "--param",
        "epochs=3",
        "--param",
        "drop_ratio=0.2",
        "--enable-caching",
        "true",
        "--run-name",
        "nested-golden",
    ];
    run(env.args(&args)).await.unwrap();
    let mut body = env.run_body(0);
    let mut golden = read_json("create-run-request.nested.json");
    body.as_object_mut().unwrap().remove("experiment_id");
    golden.as_object_mut().unwrap().remove("experiment_id");
    assert_eq!(body, golden, "bare IR, root tasks only");

    // The opt-in also reaches the nested DAGs.
    let mut nested = args.to_vec();
    nested.push("--caching-nested");
    run(env.args(&nested)).await.unwrap();
    let body = env.run_body(1);
    let comps = body["pipeline_spec"]["components"].as_object().unwrap();
    let mut inner = 0;
    for comp in comps.values() {
        if let Some(tasks) = comp.pointer("/dag/tasks").and_then(Value::as_object) {
            for t in tasks.values() {
                assert_eq!(t["cachingOptions"]["enableCache"], true, "{t}");
                inner += 1;
            }
        }
    }
    assert!(inner >= 3, "nested tasks found: {inner}");

    // false removes enableCache from root tasks, like proto3 JSON.
    let mut off = args.to_vec();
    let n = off.len();
    off[n - 3] = "false";
    run(env.args(&off)).await.unwrap();
    let body = env.run_body(2);
    for t in body["pipeline_spec"]["root"]["dag"]["tasks"]
        .as_object()
        .unwrap()
        .values()
    {
        assert_eq!(t["cachingOptions"], json!({}));
    }
}

#[tokio::test]
async fn parameter_errors_fail_before_any_request() {
    let env = start().await;
    let pkg = fixture("jukebox-training-pipeline.yaml");
    let pkg = pkg.to_str().unwrap();
    let bad_file = env.results.path().join("bad.json");
    std::fs::write(&bad_file, r#"{"version": "a", "prod_flag": "True"}"#).unwrap();
    let bad_file = bad_file.to_str().unwrap().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--param", "version=a", "--param", "epochs=ten"],
            "--param epochs=ten: epochs is NUMBER_INTEGER; pass an integer",
        ),
        (
            vec!["--param", "version=a", "--param", "learning_rate=fast"],
            "NUMBER_DOUBLE",
        ),
        (
            vec!["--param", "version=a", "--param", "prod_flag=maybe"],
            "BOOLEAN",
        ),
        (
            vec!["--param", "version=a", "--param", "nope=1"],
            "the pipeline has no parameter nope",
        ),
        (
            vec!["--param", "epochs=3"],
            "required pipeline parameter version not set",
        ),
        (vec!["--param", "version"], "KEY=VALUE"),
        (
            vec!["--parameters-file", &bad_file],
            "prod_flag is BOOLEAN but the file has a string",
        ),
        (
            vec!["--param", "version=a", "--idempotency-key", "has space"],
            "--idempotency-key",
        ),
    ];
    for (extra, want) in cases {
        let mut a = vec!["--pipeline-package", pkg];
        a.extend(extra.iter());
        let e = run(env.args(&a)).await.unwrap_err();
        assert_eq!(e.exit_code(), 2, "{extra:?}: {e}");
        assert!(e.to_string().contains(want), "{extra:?}: {e}");
    }
    let e = run(env.args(&[
        "--pipeline-package",
        "/nonexistent.yaml",
        "--param",
        "version=a",
    ]))
    .await
    .unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.to_string()
            .contains("--pipeline-package /nonexistent.yaml"),
        "{e}"
    );
    assert!(env.emu.requests().is_empty(), "no request may be sent");
    assert!(env.result("KFP_RUN_ID").is_none());
}

#[tokio::test]
async fn experiment_is_reused_and_a_create_race_is_resolved() {
    let env = start().await;
    let a = nested_args(&["--experiment", "ct"]);
    run(env.args(&a)).await.unwrap();
    run(env.args(&a)).await.unwrap();
    assert_eq!(env.emu.experiments().len(), 1);
    assert_eq!(
        env.posts(EXPERIMENTS).len(),
        1,
        "second run found the experiment"
    );
    let runs = env.emu.runs();
    assert_eq!(runs[0]["experiment_id"], runs[1]["experiment_id"]);

    // Another client creates "raced" between our list and our create: list says none, the
    // create answers 409, we list again and use theirs.
    let theirs = env.emu.add_experiment("raced").unwrap();
    env.emu.push_fault(Fault::new(
        Some("GET"),
        Some(EXPERIMENTS),
        1,
        FaultAction::Answer {
            status: 200,
            body: json!({}),
        },
    ));
    run(env.args(&nested_args(&["--experiment", "raced"])))
        .await
        .unwrap();
    assert_eq!(env.result("KFP_EXPERIMENT_ID").unwrap(), theirs);
    let statuses: Vec<u16> = env.posts(EXPERIMENTS).iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 409]);
}

#[tokio::test]
async fn uploaded_pipeline_by_name_uses_the_latest_or_the_named_version() {
    let env = start().await;
    let yaml = std::fs::read_to_string(fixture("jukebox-training-pipeline.yaml")).unwrap();
    let (pid, v1) = env.emu.add_pipeline("jukebox", &yaml).unwrap();
    let v2 = env.emu.add_pipeline_version(&pid, "v2", &yaml).unwrap();
    let base = [
        "--pipeline-name",
        "jukebox",
        "--param",
        "version=abc",
        "--param",
        "epochs=5",
    ];
    run(env.args(&base)).await.unwrap();
    let body = env.run_body(0);
    assert_eq!(
        body["pipeline_version_reference"],
        json!({"pipeline_id": pid, "pipeline_version_id": v2})
    );
    assert!(body.get("pipeline_spec").is_none());
    assert_eq!(
        body["runtime_config"]["parameters"],
        json!({"version": "abc", "epochs": 5})
    );
    assert!(
        body["display_name"]
            .as_str()
            .unwrap()
            .starts_with("jukebox-training ")
    );

    let mut named = base.to_vec();
    named.extend(["--pipeline-version", "jukebox"]);
    run(env.args(&named)).await.unwrap();
    let body = env.run_body(1);
    assert_eq!(
        body["pipeline_version_reference"]["pipeline_version_id"],
        v1
    );

    // Parameters are typed by the stored version's spec, before the run is created.
    let e = run(env.args(&[
        "--pipeline-name",
        "jukebox",
        "--param",
        "version=a",
        "--param",
        "epochs=x",
    ]))
    .await
    .unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    let e = run(env.args(&["--pipeline-name", "nope", "--param", "version=a"]))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("--pipeline-name nope"), "{e}");
    let e = run(env.args(&[
        "--pipeline-name",
        "jukebox",
        "--pipeline-version",
        "v9",
        "--param",
        "version=a",
    ]))
    .await
    .unwrap_err();
    assert!(e.to_string().contains("--pipeline-version v9"), "{e}");
    let e = run(env.args(&["--pipeline-name", "jukebox", "--enable-caching", "true"]))
        .await
        .unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert_eq!(env.posts(RUNS).len(), 2);
}

#[tokio::test]
async fn same_idempotency_key_never_creates_a_second_run() {
    let env = start().await;
    let a = nested_args(&["--idempotency-key", "uid-1234"]);
    run(env.args(&a)).await.unwrap();
    let first = env.result("KFP_RUN_ID").unwrap();
    // A retried TaskRun runs the step again with the same key.
    run(env.args(&a)).await.unwrap();
    assert_eq!(env.result("KFP_RUN_ID").unwrap(), first);
    assert_eq!(env.posts(RUNS).len(), 1);
    assert_eq!(
        env.emu.runs()[0]["description"],
        "ct-steps idempotency-key uid-1234"
    );
    // A different key is a different run.
    run(env.args(&nested_args(&["--idempotency-key", "uid-5678"])))
        .await
        .unwrap();
    assert_eq!(env.emu.runs().len(), 2);
}

#[tokio::test]
async fn answer_lost_after_the_server_created_the_run_is_recovered_by_key() {
    let env = start().await;
    env.emu.push_fault(on_create_run(FaultAction::DropAfter));
    run(env.args(&nested_args(&["--idempotency-key", "uid-drop"])))
        .await
        .unwrap();
    let runs = env.emu.runs();
    assert_eq!(runs.len(), 1, "exactly one run");
    assert_eq!(
        env.result("KFP_RUN_ID").unwrap(),
        runs[0]["run_id"].as_str().unwrap()
    );

    // The same with an answer slower than the request timeout.
    env.emu
        .push_fault(on_create_run(FaultAction::DelayAfterMs(2000)));
    run(env.args(&nested_args(&[
        "--idempotency-key",
        "uid-slow",
        "--request-timeout",
        "300ms",
    ])))
    .await
    .unwrap();
    assert_eq!(env.emu.runs().len(), 2);

    // A 503 that did not create anything: looked up, not found, retried once.
    env.emu.push_fault(on_create_run(FaultAction::Status(503)));
    run(env.args(&nested_args(&["--idempotency-key", "uid-503"])))
        .await
        .unwrap();
    assert_eq!(env.emu.runs().len(), 3);
    let statuses: Vec<u16> = env.posts(RUNS).iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 503, 200]);
}

#[tokio::test]
async fn without_a_key_an_ambiguous_create_is_recovered_by_the_generated_key() {
    let env = start().await;
    env.emu.push_fault(on_create_run(FaultAction::DropAfter));
    run(env.args(&nested_args(&[]))).await.unwrap();
    assert_eq!(
        env.posts(RUNS).len(),
        1,
        "found by its key, not created again"
    );
    let runs = env.emu.runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        env.result("KFP_RUN_ID").unwrap(),
        runs[0]["run_id"].as_str().unwrap()
    );
    let d = runs[0]["description"].as_str().unwrap();
    assert!(d.starts_with("ct-steps idempotency-key generated-"), "{d}");
}

#[tokio::test]
async fn transient_faults_on_lookups_are_retried() {
    let env = start().await;
    env.emu.push_fault(Fault::new(
        Some("GET"),
        Some(EXPERIMENTS),
        2,
        FaultAction::Throttle,
    ));
    env.emu.push_fault(Fault::new(
        Some("GET"),
        Some(RUNS),
        1,
        FaultAction::DropBefore,
    ));
    env.emu.push_fault(Fault::new(
        Some("POST"),
        Some(RUNS),
        2,
        FaultAction::Throttle,
    ));
    run(env.args(&nested_args(&["--idempotency-key", "k1"])))
        .await
        .unwrap();
    assert_eq!(env.emu.runs().len(), 1);
    let gets = env.requests_to("GET", EXPERIMENTS).len();
    assert_eq!(gets, 3, "two 429s, then the answer");
}

#[tokio::test]
async fn auth_failures_name_the_cause() {
    let env = start().await;
    env.emu
        .set_tokens(Some("good-token-123"), Some("weak-token-456"));
    let dir = tempfile::tempdir().unwrap();
    for (token, want) in [
        ("good-token-123\n", None),
        ("wrong-token-789", Some("HTTP 401")),
        ("weak-token-456", Some("HTTP 403")),
    ] {
        let f = dir.path().join("token");
        std::fs::write(&f, token).unwrap();
        let r = run(env.args(&nested_args(&["--token-file", f.to_str().unwrap()]))).await;
        match want {
            None => r.unwrap(),
            Some(w) => {
                let e = r.unwrap_err();
                assert_eq!(e.exit_code(), 3);
                assert!(e.to_string().contains(w), "{e}");
            }
        }
    }
    let authz = env.emu.requests()[0].authorization.clone().unwrap();
    assert_eq!(authz, "Bearer good-token-123", "token trimmed");
}

#[tokio::test]
async fn the_binary_reports_usage_errors_with_exit_2() {
    let out = step_binary()
        .args(["--kfp-url", "http://127.0.0.1:9", "--pipeline-package"])
        .arg(fixture("jukebox-training-pipeline.yaml"))
        .args(["--param", "epochs=ten", "--results-dir"])
        .arg(std::env::temp_dir())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--param epochs=ten: epochs is NUMBER_INTEGER; pass an integer"),
        "{err}"
    );
    // The help is the manual.
    let out = step_binary().arg("--help").output().await.unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for want in [
        "KFP_RUN_ID",
        "--idempotency-key",
        "CT_KFP_URL",
        "Exit codes",
        "[default: Default]",
    ] {
        assert!(help.contains(want), "{want}");
    }
}

#[tokio::test]
async fn empty_env_values_mean_not_given() {
    // Tekton sets every declared env var; an unset Task param arrives as "".
    let env = start().await;
    let out = step_binary()
        .args([
            "--kfp-url",
            &env.url,
            "--param",
            "version=v",
            "--results-dir",
        ])
        .arg(env.results.path())
        .env("CT_PIPELINE_PACKAGE", fixture("nested-pipeline.yaml"))
        .env("CT_PIPELINE_NAME", "")
        .env("CT_PIPELINE_VERSION", "")
        .env("CT_PARAMETERS_FILE", "")
        .env("CT_ENABLE_CACHING", "")
        .env("CT_IDEMPOTENCY_KEY", "")
        .env("CT_RUN_NAME", "")
        .env("CT_NAMESPACE", "")
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.emu.runs().len(), 1);

    for (extra, want) in [
        (vec!["--pipeline-name", "p"], "not both"),
        (
            vec!["--enable-caching", "yes"],
            "--enable-caching yes: pass true or false",
        ),
        (
            vec!["--caching-nested"],
            "--caching-nested needs --enable-caching",
        ),
    ] {
        let mut a = vec!["--pipeline-package", "x.yaml"];
        a.extend(extra);
        let e = run(env.args(&a)).await.unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains(want), "{e}");
    }
    let e = run(env.args(&["--param", "version=v"])).await.unwrap_err();
    assert!(e.to_string().contains("--pipeline-package FILE"), "{e}");
}

#[tokio::test]
async fn sigterm_while_creating_terminates_the_created_run_and_exits_143() {
    let env = start().await;
    // The server creates the run but its answer hangs: the step is cancelled meanwhile.
    env.emu
        .push_fault(on_create_run(FaultAction::DelayAfterMs(60_000)));
    let mut child = step_binary()
        .args([
            "--kfp-url",
            &env.url,
            "--param",
            "version=v",
            "--idempotency-key",
            "uid-term",
        ])
        .arg("--pipeline-package")
        .arg(fixture("nested-pipeline.yaml"))
        .arg("--results-dir")
        .arg(env.results.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..2000 {
        if !env.emu.runs().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let run_id = env.emu.runs()[0]["run_id"].as_str().unwrap().to_string();
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(child.wait().await.unwrap().code(), Some(143));
    assert_eq!(
        env.emu.terminate_calls(&run_id),
        1,
        "found by its key and terminated"
    );
    assert!(env.result("KFP_RUN_ID").is_none());
}

#[tokio::test]
async fn a_pipeline_compiled_by_kfp_2_17_passes_through_unchanged() {
    let env = start().await;
    let pkg = fixture("jukebox-training-pipeline.kfp-2.17.3.yaml");
    run(env.args(&[
        "--pipeline-package",
        pkg.to_str().unwrap(),
        "--param",
        "version=v",
    ]))
    .await
    .unwrap();
    let body = env.run_body(0);
    let res = &body["pipeline_spec"]["pipeline_spec"]["deploymentSpec"]["executors"]["exec-train-model"]
        ["container"]["resources"];
    assert_eq!(
        *res,
        json!({"cpuLimit": 2.0, "memoryLimit": 4.0, "resourceCpuLimit": "2", "resourceMemoryLimit": "4G"}),
        "newer fields kept, numbers and strings as in the YAML"
    );
    let mount = &body["pipeline_spec"]["platform_spec"]["platforms"]["kubernetes"]["deploymentSpec"]
        ["executors"]["exec-save-model"]["pvcMount"][0];
    assert_eq!(
        mount["pvcNameParameter"],
        json!({"componentInputParameter": "model_storage_pvc"})
    );
}
