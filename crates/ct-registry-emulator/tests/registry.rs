//! The Model Registry emulator over HTTP: status codes, bodies and semantics of the real server.

use ct_registry_emulator::{Emulator, Fault, FaultAction, Options, Prefixes, RegistryEmulator};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const P: &str = "/api/model_registry/v1alpha3";

struct Reg {
    emu: RegistryEmulator,
    url: String,
    http: reqwest::Client,
}

async fn start(options: Options) -> Reg {
    let emu = ct_registry_emulator::start(options).await.unwrap();
    Reg {
        url: emu.url().to_string(),
        emu,
        http: reqwest::Client::new(),
    }
}

impl Reg {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut rb = self.http.request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }
    async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }
    /// Model `m` (id 1) with versions "1".."n" (ids 2..).
    async fn seed(&self, n: usize) {
        let (s, _) = self
            .post(&format!("{P}/registered_models"), json!({"name": "m"}))
            .await;
        assert_eq!(s, StatusCode::CREATED);
        for i in 1..=n {
            let (s, _) = self
                .post(
                    &format!("{P}/model_versions"),
                    json!({"name": i.to_string(), "registeredModelId": "1", "author": "a"}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED);
        }
    }
}

fn sv(s: &str) -> Value {
    json!({"string_value": s, "metadataType": "MetadataStringValue"})
}

#[tokio::test]
async fn create_and_find_answer_like_the_real_server() {
    let r = start(Options::default()).await;
    let (s, m) = r
        .post(
            &format!("{P}/registered_models"),
            json!({"name": "jukebox", "owner": "o"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(m["id"], "1");
    assert_eq!(m["state"], "LIVE");
    assert_eq!(m["customProperties"], json!({}));
    assert!(m["createTimeSinceEpoch"].is_string() && m["lastUpdateTimeSinceEpoch"].is_string());

    let (s, e) = r.get(&format!("{P}/registered_model?name=nope")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        e,
        json!({"code": "Not Found", "message": "no registered models found for name=nope, externalId=: not found"})
    );
    let (s, found) = r.get(&format!("{P}/registered_model?name=jukebox")).await;
    assert_eq!((s, found["id"].clone()), (StatusCode::OK, json!("1")));

    let (s, v) = r
        .post(
            &format!("{P}/model_versions"),
            json!({"name": "1", "registeredModelId": "1"}),
        )
        .await;
    assert_eq!(
        (s, v["id"].clone()),
        (StatusCode::CREATED, json!("2")),
        "shared id sequence"
    );
    let (s, e) = r
        .get(&format!("{P}/model_version?name=9&parentResourceId=1"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        e["message"],
        "no model versions found for name=9, parentResourceId=1, externalId=: not found"
    );
    let (s, _) = r.get(&format!("{P}/model_version?name=1")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a name needs parentResourceId");
    let (s, v) = r
        .get(&format!("{P}/model_version?name=1&parentResourceId=1"))
        .await;
    assert_eq!((s, v["name"].clone()), (StatusCode::OK, json!("1")));

    // Duplicates, missing fields, bad ids.
    let (s, e) = r
        .post(
            &format!("{P}/registered_models"),
            json!({"name": "jukebox"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(
        e["message"],
        "registered model with name jukebox already exists: conflict"
    );
    let (s, _) = r
        .post(
            &format!("{P}/model_versions"),
            json!({"name": "1", "registeredModelId": "1"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, e) = r
        .post(
            &format!("{P}/model_versions"),
            json!({"registeredModelId": "1"}),
        )
        .await;
    assert_eq!(
        (s, e["code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("Bad Request"))
    );
    let (s, e) = r.get(&format!("{P}/model_versions/abc")).await;
    assert_eq!(
        (s, e["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("Bad Request"))
    );
    let (s, e) = r.get(&format!("{P}/model_versions/77")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(e["message"], "no model version found for id 77: not found");
    let (s, _) = r
        .post(
            &format!("{P}/registered_models"),
            json!({"name": "x", "bogus": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn patch_replaces_custom_properties_whole_and_refuses_unknown_fields() {
    let r = start(Options::default()).await;
    r.seed(1).await;
    let path = format!("{P}/model_versions/2");
    let (s, v) = r
        .patch(
            &path,
            json!({"customProperties": {"a": sv("x"), "b": sv("y")}, "author": "z"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["customProperties"], json!({"a": sv("x"), "b": sv("y")}));
    let (_, v) = r.patch(&path, json!({"description": "d"})).await;
    assert_eq!(
        v["customProperties"],
        json!({"a": sv("x"), "b": sv("y")}),
        "absent map: kept"
    );
    assert_eq!(
        (v["author"].clone(), v["description"].clone()),
        (json!("z"), json!("d"))
    );
    let (_, v) = r
        .patch(&path, json!({"customProperties": {"b": sv("y")}}))
        .await;
    assert_eq!(
        v["customProperties"],
        json!({"b": sv("y")}),
        "present map: replaced"
    );
    let before = r.get(&path).await.1;
    for bad in [
        json!({"customProperties": {}, "bogus": 1}),
        json!({"name": "renamed"}),
        json!({"state": "GONE"}),
        json!({"customProperties": {"n": {"metadataType": "MetadataIntValue", "int_value": "2147483648"}}}),
        json!({"customProperties": {"n": {"metadataType": "MetadataIntValue", "int_value": 5}}}),
        json!({"customProperties": {"n": {"metadataType": "MetadataNopeValue"}}}),
    ] {
        let (s, e) = r.patch(&path, bad.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(e["code"], "Bad Request");
    }
    assert_eq!(
        r.get(&path).await.1,
        before,
        "rejected PATCHes change nothing"
    );
    let (_, v) = r.patch(&path, json!({"customProperties": {}})).await;
    assert_eq!(v["customProperties"], json!({}), "empty map: cleared");
    // Every metadataType is stored in the server's form.
    let all = json!({
        "i": {"metadataType": "MetadataIntValue", "int_value": "-2147483648"},
        "d": {"metadataType": "MetadataDoubleValue", "double_value": 1.5},
        "b": {"metadataType": "MetadataBoolValue", "bool_value": true},
        "s": {"metadataType": "MetadataStructValue", "struct_value": "e30="},
        "p": {"metadataType": "MetadataProtoValue", "type": "t", "proto_value": "AA=="},
    });
    let (s, v) = r.patch(&path, json!({"customProperties": all})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v["customProperties"]["i"],
        json!({"int_value": "-2147483648", "metadataType": "MetadataIntValue"})
    );
    assert_eq!(
        v["customProperties"]["p"],
        json!({"type": "t", "proto_value": "AA==", "metadataType": "MetadataProtoValue"})
    );
}

#[tokio::test]
async fn lists_page_order_and_report_the_last_page() {
    let r = start(Options::default()).await;
    r.seed(5).await;
    let (_, all) = r.get(&format!("{P}/registered_models/1/versions")).await;
    assert_eq!(
        (all["pageSize"].clone(), all["size"].clone()),
        (json!(0), json!(5))
    );
    assert_eq!(all["nextPageToken"], "");
    let mut names = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let (s, page) = r
            .get(&format!(
                "{P}/registered_models/1/versions?pageSize=2&nextPageToken={token}"
            ))
            .await;
        assert_eq!(s, StatusCode::OK);
        pages += 1;
        names.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["name"].clone()),
        );
        token = page["nextPageToken"].as_str().unwrap().to_string();
        if token.is_empty() {
            assert_eq!(page["size"], 1);
            break;
        }
    }
    assert_eq!(
        (pages, names),
        (
            3,
            vec![json!("1"), json!("2"), json!("3"), json!("4"), json!("5")]
        )
    );
    r.patch(&format!("{P}/model_versions/3"), json!({"author": "b"}))
        .await;
    let (_, desc) = r
        .get(&format!(
            "{P}/model_versions?orderBy=LAST_UPDATE_TIME&sortOrder=DESC&pageSize=1"
        ))
        .await;
    assert_eq!(desc["items"][0]["id"], "3");
    for bad in [
        "pageSize=0",
        "pageSize=x",
        "orderBy=NAME",
        "sortOrder=UP",
        "nextPageToken=garbage",
    ] {
        let (s, _) = r.get(&format!("{P}/model_versions?{bad}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (s, _) = r.get(&format!("{P}/registered_models/9/versions")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn artifacts_under_versions_and_at_top_level() {
    let r = start(Options::default()).await;
    r.seed(1).await;
    let base = format!("{P}/model_versions/2/artifacts");
    let (s, a) = r
        .post(&base, json!({"name": "m", "uri": "s3://b/1", "artifactType": "model-artifact", "modelFormatName": "onnx"}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        (a["id"].clone(), a["state"].clone()),
        (json!("1"), json!("UNKNOWN"))
    );
    let (s, _) = r.post(&base, json!({"name": "m", "uri": "s3://b/2"})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = r
        .post(
            &base,
            json!({"name": "readme", "uri": "s3://doc", "artifactType": "doc-artifact"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = r
        .post(
            &base,
            json!({"name": "d2", "artifactType": "doc-artifact", "modelFormatName": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "model fields on a doc artifact");
    let (_, list) = r.get(&format!("{base}?artifactType=model-artifact")).await;
    assert_eq!(list["size"], 1);
    let (_, list) = r.get(&base).await;
    assert_eq!(list["size"], 2);
    let (s, found) = r
        .get(&format!("{P}/model_artifact?name=m&parentResourceId=2"))
        .await;
    assert_eq!(
        (s, found["uri"].clone()),
        (StatusCode::OK, json!("s3://b/1"))
    );
    let (s, _) = r
        .get(&format!(
            "{P}/model_artifact?name=readme&parentResourceId=2"
        ))
        .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "the find endpoint only sees model artifacts"
    );
    // Top level, then attached to the version by id (200, not 201).
    let (s, top) = r
        .post(
            &format!("{P}/model_artifacts"),
            json!({"name": "loose", "uri": "s3://l"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = r
        .post(
            &base,
            json!({"id": top["id"], "artifactType": "model-artifact"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, list) = r.get(&format!("{base}?artifactType=model-artifact")).await;
    assert_eq!(list["size"], 2);
    // PATCH an artifact: uri changes, the rest is kept.
    let (s, a) = r
        .patch(
            &format!("{P}/model_artifacts/1"),
            json!({"uri": "oci://x", "artifactType": "model-artifact"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            a["uri"].clone(),
            a["modelFormatName"].clone(),
            a["name"].clone()
        ),
        (json!("oci://x"), json!("onnx"), json!("m"))
    );
    let (s, _) = r
        .patch(&format!("{P}/model_artifacts/1"), json!({"name": "other"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn prefixes_share_one_registry_or_answer_404() {
    let r = start(Options::default()).await;
    r.seed(1).await;
    let (s, v) = r.get("/api/model_registry/v1/model_versions/2").await;
    assert_eq!((s, v["name"].clone()), (StatusCode::OK, json!("1")));
    let r = start(Options {
        registry_api: Prefixes::V1alpha3,
        ..Options::default()
    })
    .await;
    let (s, body) = r.get("/api/model_registry/v1/registered_models").await;
    assert_eq!(
        (s, body),
        (StatusCode::NOT_FOUND, json!("404 page not found\n"))
    );
    let (s, _) = r.get(&format!("{P}/registered_models")).await;
    assert_eq!(s, StatusCode::OK);
    let r = start(Options {
        registry_api: Prefixes::V1,
        ..Options::default()
    })
    .await;
    let (s, _) = r.get(&format!("{P}/registered_models")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bearer_token_is_enforced_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "s3cr3t-token\n").unwrap();
    let r = start(Options {
        registry_token_file: Some(file),
        ..Options::default()
    })
    .await;
    let (s, body) = r.get(&format!("{P}/registered_models")).await;
    assert_eq!(
        (s, body),
        (StatusCode::UNAUTHORIZED, json!("Unauthorized\n"))
    );
    let resp = r
        .http
        .get(format!("{}{P}/registered_models", r.url))
        .bearer_auth("s3cr3t-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let log = r.emu.requests();
    assert_eq!(log.iter().map(|q| q.status).collect::<Vec<_>>(), [401, 200]);
    // An unreadable token file fails closed.
    let r = start(Options {
        registry_token_file: Some(dir.path().join("missing")),
        ..Options::default()
    })
    .await;
    assert_eq!(
        r.get(&format!("{P}/registered_models")).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn injected_faults() {
    let r = start(Options {
        registry_fault: vec![
            Fault::new(None, None, 1, FaultAction::Status(503)),
            Fault::new(None, None, 1, FaultAction::Throttle),
            Fault::new(None, None, 1, FaultAction::DropBefore),
        ],
        registry_latency: Some(std::time::Duration::from_millis(1)),
        ..Options::default()
    })
    .await;
    assert_eq!(
        r.get(&format!("{P}/registered_models")).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let resp = r
        .http
        .get(format!("{}{P}/registered_models", r.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "0");
    let dropped = r
        .http
        .get(format!("{}{P}/registered_models", r.url))
        .send()
        .await;
    assert!(dropped.is_err(), "third request: connection dropped");
    assert_eq!(
        r.get(&format!("{P}/registered_models")).await.0,
        StatusCode::OK
    );

    r.seed(1).await;
    // Method-scoped: a GET passes while a PATCH fault waits.
    r.emu
        .inject(Some(Method::PATCH), FaultAction::DropBefore, 1);
    assert_eq!(
        r.get(&format!("{P}/model_versions/2")).await.0,
        StatusCode::OK
    );
    let err = r
        .http
        .patch(format!("{}{P}/model_versions/2", r.url))
        .json(&json!({"author": "dropped"}))
        .send()
        .await;
    assert!(err.is_err(), "connection dropped before answering");
    assert_eq!(r.emu.version("2").unwrap()["author"], "a", "not processed");
    r.emu.inject(Some(Method::PATCH), FaultAction::DropAfter, 1);
    let err = r
        .http
        .patch(format!("{}{P}/model_versions/2", r.url))
        .json(&json!({"author": "applied"}))
        .send()
        .await;
    assert!(err.is_err(), "connection dropped after processing");
    assert_eq!(r.emu.version("2").unwrap()["author"], "applied");
    r.emu.inject(None, FaultAction::Status(502), 1);
    assert_eq!(
        r.get(&format!("{P}/model_versions/2")).await.0,
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(r.emu.front().pending(), 0);
    assert_eq!(r.emu.count("PATCH"), 2);
}
