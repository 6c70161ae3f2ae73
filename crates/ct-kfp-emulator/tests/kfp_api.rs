//! The KFP emulator over HTTP: wire format, errors, auth, pipelines, scripting and faults.

use std::time::Duration;

use ct_kfp_emulator::{Emulator, KfpEmulator, Options, RunEnd, RunScript};
use reqwest::StatusCode;
use serde_json::{Value, json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/kfp/");

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}{name}")).unwrap()
}

/// The emulator, its URL and a client.
async fn start() -> (KfpEmulator, String, reqwest::Client) {
    let emu = ct_kfp_emulator::start(Options::default()).await.unwrap();
    let url = emu.url().to_string();
    (emu, url, reqwest::Client::new())
}

async fn call(
    c: &reqwest::Client,
    m: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut r = c.request(m, url);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn nested_spec() -> Value {
    serde_yaml_ng::from_str(&fixture("nested-pipeline.yaml")).unwrap()
}

#[tokio::test]
async fn experiments_wire_format_and_errors() {
    let (_emu, s, c) = start().await;
    let u = |p: &str| format!("{}/apis/v2beta1{p}", s);
    let (st, v) = call(&c, reqwest::Method::GET, u("/healthz"), None).await;
    assert_eq!((st, v), (StatusCode::OK, json!({"multi_user": false})));
    let (st, v) = call(&c, reqwest::Method::GET, u("/experiments"), None).await;
    assert_eq!(
        (st, v),
        (StatusCode::OK, json!({})),
        "an empty list is {{}}"
    );

    let (st, e) = call(
        &c,
        reqwest::Method::POST,
        u("/experiments"),
        Some(json!({"display_name": "x", "namespace": "ns"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(e["display_name"], "x");
    assert_eq!(e["storage_state"], "AVAILABLE");
    assert!(
        e.get("namespace").is_none(),
        "single-user servers blank the namespace"
    );
    let (st, v) = call(
        &c,
        reqwest::Method::POST,
        u("/experiments"),
        Some(json!({"display_name": "x"})),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(v["code"], 6);
    let (st, v) = call(
        &c,
        reqwest::Method::POST,
        u("/experiments"),
        Some(json!({"display_name": "y", "color": 1})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(v["code"], 3);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("unknown field \"color\"")
    );

    let filter = r#"{"predicates": [{"operation": 1, "key": "display_name", "stringValue": "x"}]}"#;
    let list = c
        .get(u("/experiments"))
        .query(&[("filter", filter), ("namespace", "ns")])
        .send()
        .await
        .unwrap();
    let v: Value = list.json().await.unwrap();
    assert_eq!(v["experiments"][0]["experiment_id"], e["experiment_id"]);
    assert_eq!(v["total_size"], 1);
    let bad = r#"{"predicates": [{"operation": 1, "key": "colour", "stringValue": "x"}]}"#;
    let r = c
        .get(u("/experiments"))
        .query(&[("filter", bad)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (st, v) = call(&c, reqwest::Method::GET, u("/experiments/nope"), None).await;
    assert_eq!((st, v["code"].clone()), (StatusCode::NOT_FOUND, json!(5)));
}

#[tokio::test]
async fn runs_progress_terminate_archive_and_list() {
    let (emu, s, c) = start().await;
    let u = |p: &str| format!("{}/apis/v2beta1{p}", s);
    emu.push_run_script(RunScript::new(
        RunEnd::Running,
        Duration::ZERO,
        Duration::ZERO,
    ));
    let body = json!({"display_name": "r1", "description": "k", "pipeline_spec": nested_spec(),
                      "runtime_config": {"parameters": {"version": "v"}}});
    let (st, run) = call(&c, reqwest::Method::POST, u("/runs"), Some(body)).await;
    assert_eq!(st, StatusCode::OK, "{run}");
    let id = run["run_id"].as_str().unwrap().to_string();
    let exp = run["experiment_id"].as_str().unwrap();
    assert_eq!(emu.experiments()[0]["display_name"], "Default");
    let (_, got) = call(&c, reqwest::Method::GET, u(&format!("/runs/{id}")), None).await;
    assert_eq!(got["state"], "RUNNING");
    assert_eq!(got["finished_at"], "1970-01-01T00:00:00Z");
    assert_eq!(got["run_details"]["task_details"][0]["state"], "RUNNING");
    assert_eq!(got["runtime_config"]["parameters"]["version"], "v");

    let r = c
        .post(u(&format!("/runs/{id}:terminate")))
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({}));
    let (_, got) = call(&c, reqwest::Method::GET, u(&format!("/runs/{id}")), None).await;
    assert!(
        got["state"] == "CANCELING" || got["state"] == "CANCELED",
        "{}",
        got["state"]
    );
    let states: Vec<&str> = got["state_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["state"].as_str().unwrap())
        .collect();
    assert_eq!(&states[..3], ["PENDING", "RUNNING", "CANCELING"]);

    let (st, _) = call(
        &c,
        reqwest::Method::POST,
        u(&format!("/runs/{id}:archive")),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let filter = r#"{"predicates": [{"operation": 1, "key": "description", "stringValue": "k"}]}"#;
    let v: Value = c
        .get(u("/runs"))
        .query(&[("experiment_id", exp), ("filter", filter)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["runs"][0]["storage_state"], "ARCHIVED");
    let v: Value = c
        .get(u("/runs"))
        .query(&[("experiment_id", "other")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({}));

    let (st, v) = call(&c, reqwest::Method::GET, u("/runs/nope"), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(v["message"].as_str().unwrap().contains("not found"));
    let (st, _) = call(
        &c,
        reqwest::Method::POST,
        u("/runs"),
        Some(json!({"display_name": "no spec"})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = call(&c, reqwest::Method::POST, u("/runs"), Some(json!({"display_name": "x", "pipeline_spec": nested_spec(), "experiment_id": "missing"}))).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Paging.
    for i in 0..3 {
        call(
            &c,
            reqwest::Method::POST,
            u("/runs"),
            Some(json!({"display_name": format!("p{i}"), "pipeline_spec": nested_spec()})),
        )
        .await;
    }
    let v: Value = c
        .get(u("/runs"))
        .query(&[("page_size", "2"), ("sort_by", "display_name desc")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["runs"][0]["display_name"], "r1");
    assert_eq!(v["total_size"], 4);
    let tok = v["next_page_token"].as_str().unwrap();
    let v: Value = c
        .get(u("/runs"))
        .query(&[
            ("page_size", "2"),
            ("page_token", tok),
            ("sort_by", "display_name desc"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["runs"].as_array().unwrap().len(), 2);
    assert!(v.get("next_page_token").is_none());
}

#[tokio::test]
async fn auth_proxy_answers_plain_text() {
    let (emu, s, c) = start().await;
    emu.set_tokens(Some("tok-good"), Some("tok-weak"));
    let u = format!("{}/apis/v2beta1/healthz", s);
    let r = c.get(&u).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(r.text().await.unwrap(), "Unauthorized\n");
    let r = c.get(&u).bearer_auth("tok-weak").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().starts_with("Forbidden (user="));
    let r = c.get(&u).bearer_auth("tok-good").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = c
        .get(format!("{}/apis/v1beta1/healthz", s))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "v1beta1 healthz skips auth");
}

#[tokio::test]
async fn pipelines_upload_lookup_and_versions() {
    let (_emu, s, c) = start().await;
    let u = |p: &str| format!("{}/apis/v2beta1{p}", s);
    let form = || {
        reqwest::multipart::Form::new().part(
            "uploadfile",
            reqwest::multipart::Part::text(fixture("jukebox-training-pipeline.yaml"))
                .file_name("jukebox.yaml"),
        )
    };
    let r = c
        .post(u("/pipelines/upload"))
        .query(&[("name", "jukebox")])
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let p: Value = r.json().await.unwrap();
    let pid = p["pipeline_id"].as_str().unwrap().to_string();
    assert_eq!(p["display_name"], "jukebox");
    let r = c
        .post(u("/pipelines/upload"))
        .query(&[("name", "jukebox")])
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = c
        .post(u("/pipelines/upload_version"))
        .query(&[("name", "v2"), ("pipelineid", &pid)])
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v2: Value = r.json().await.unwrap();
    assert_eq!(
        v2["pipeline_spec"]["platform_spec"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
            ["exec-save-model"]["pvcMount"][0]["mountPath"],
        "/models"
    );

    let (_, byname) = call(
        &c,
        reqwest::Method::GET,
        u("/pipelines/names/jukebox"),
        None,
    )
    .await;
    assert_eq!(byname["pipeline_id"], pid);
    let v: Value = c
        .get(u(&format!("/pipelines/{pid}/versions")))
        .query(&[("sort_by", "created_at desc"), ("page_size", "1")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["pipeline_versions"][0]["pipeline_version_id"],
        v2["pipeline_version_id"]
    );
    let filter =
        r#"{"predicates": [{"operation": 1, "key": "display_name", "stringValue": "jukebox"}]}"#;
    let v: Value = c
        .get(u("/pipelines"))
        .query(&[("filter", filter)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["pipelines"].as_array().unwrap().len(), 1);
    let bad = reqwest::multipart::Form::new().part(
        "uploadfile",
        reqwest::multipart::Part::text("kind: Deployment\n").file_name("x.yaml"),
    );
    let r = c
        .post(u("/pipelines/upload"))
        .query(&[("name", "bad")])
        .multipart(bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn admin_endpoints_script_runs_and_inject_faults() {
    let (emu, s, c) = start().await;
    let u = |p: &str| format!("{}{p}", s);
    let r = c
        .post(u("/_emulator/scripts"))
        .json(&json!({"outcome": "FAILED", "error": "boom"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (_, run) = call(
        &c,
        reqwest::Method::POST,
        u("/apis/v2beta1/runs"),
        Some(json!({"display_name": "f", "pipeline_spec": nested_spec()})),
    )
    .await;
    let (_, got) = call(
        &c,
        reqwest::Method::GET,
        u(&format!(
            "/apis/v2beta1/runs/{}",
            run["run_id"].as_str().unwrap()
        )),
        None,
    )
    .await;
    assert_eq!(got["state"], "FAILED");
    assert_eq!(got["error"]["message"], "boom");

    c.post(u("/_emulator/faults")).json(&json!({"method": "GET", "path": "/apis/v2beta1/healthz", "times": 2, "action": {"status": 503}})).send().await.unwrap();
    for _ in 0..2 {
        let (st, v) = call(&c, reqwest::Method::GET, u("/apis/v2beta1/healthz"), None).await;
        assert_eq!(
            (st, v["code"].clone()),
            (StatusCode::SERVICE_UNAVAILABLE, json!(14))
        );
    }
    let (st, _) = call(&c, reqwest::Method::GET, u("/apis/v2beta1/healthz"), None).await;
    assert_eq!(st, StatusCode::OK, "the burst is over");

    c.post(u("/_emulator/faults"))
        .json(&json!({"path": "/apis/v2beta1/*", "action": "drop_before"}))
        .send()
        .await
        .unwrap();
    assert!(
        c.get(u("/apis/v2beta1/healthz")).send().await.is_err(),
        "connection dropped"
    );
    c.post(u("/_emulator/faults"))
        .json(&json!({"action": "throttle"}))
        .send()
        .await
        .unwrap();
    let r = c.get(u("/apis/v2beta1/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "0");

    let log: Value = c
        .get(u("/_emulator/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let statuses: Vec<u64> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 200, 503, 503, 200, 0, 429]);
    assert_eq!(emu.requests().len(), 7);
    let runs: Value = c
        .get(u("/_emulator/runs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(runs["runs"][0]["terminate_calls"], 0);
}
