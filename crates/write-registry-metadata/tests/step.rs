//! write-registry-metadata against the Model Registry emulator: the real binary for exit
//! codes, messages and results; the library in-process for races and injected faults.

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use ct_registry::{ApiVersion, RegistryClient, Request};
use ct_registry_emulator::{Emulator, FaultAction, Options, Prefixes, RegistryEmulator};
use ct_step::http::{ApiClient, AuthScheme, ClientConfig, Method, TokenSource};
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;
use serde_json::{Value, json};

/// An emulator served on its own runtime, so tests can block on the binary.
struct Registry {
    emu: RegistryEmulator,
    url: String,
    rt: tokio::runtime::Runtime,
}

fn start(options: Options) -> Registry {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let emu = rt.block_on(ct_registry_emulator::start(options)).unwrap();
    Registry {
        url: emu.url().to_string(),
        emu,
        rt,
    }
}

fn string(s: &str) -> Value {
    json!({"string_value": s, "metadataType": "MetadataStringValue"})
}

/// `jukebox` with versions named `1..=n`; each gets `props(i)` and one artifact named after
/// the model. Returns the version ids.
fn seed(emu: &RegistryEmulator, n: usize, props: impl Fn(usize) -> Value) -> Vec<String> {
    let m = emu
        .create_model(json!({"name": "jukebox", "owner": "seed-author", "state": "LIVE"}))
        .unwrap();
    let mid = m["id"].as_str().unwrap().to_string();
    (1..=n)
        .map(|i| {
            let mut body = json!({"name": i.to_string(), "state": "LIVE", "author": "seed-author", "registeredModelId": mid});
            let p = props(i);
            if !p.is_null() {
                body["customProperties"] = p;
            }
            let v = emu.create_version(body).unwrap();
            let vid = v["id"].as_str().unwrap().to_string();
            emu.create_version_artifact(
                &vid,
                json!({"name": "jukebox", "uri": format!("s3://bucket/jukebox/{i}"), "state": "UNKNOWN",
                       "artifactType": "model-artifact", "modelFormatName": "onnx", "modelFormatVersion": "1"}),
            )
            .unwrap();
            vid
        })
        .collect()
}

fn uri(v: usize) -> String {
    format!("oci://image-registry.openshift-image-registry.svc:5000/proj-test/jukebox:{v}")
}

/// The binary with the flags of a deploy of `version`; `over` replaces or adds flags.
fn step(r: &Registry, results: &Path, version: usize, over: &[(&str, &str)]) -> Command {
    let mut flags: Vec<(String, String)> = vec![
        ("--registry-url".into(), r.url.clone()),
        ("--model".into(), "jukebox".into()),
        ("--environment".into(), "test".into()),
        ("--version".into(), version.to_string()),
        ("--kfp-run-id".into(), format!("run-{version}")),
        ("--author".into(), "Bob <bob@example.com>".into()),
        ("--artifact-uri".into(), uri(version)),
        ("--results-dir".into(), results.display().to_string()),
        ("--max-retries".into(), "2".into()),
    ];
    for (k, v) in over {
        match flags.iter_mut().find(|(f, _)| f == k) {
            Some(slot) => slot.1 = v.to_string(),
            None => flags.push((k.to_string(), v.to_string())),
        }
    }
    let mut c = Command::cargo_bin("write-registry-metadata").unwrap();
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in flags {
        c.arg(k).arg(v);
    }
    c
}

fn props(emu: &RegistryEmulator, id: &str) -> Value {
    emu.version(id).unwrap()["customProperties"].clone()
}

fn holders(emu: &RegistryEmulator, label: &str) -> Vec<String> {
    emu.versions_of("1")
        .into_iter()
        .filter(|v| v["customProperties"].get(label).is_some())
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn deploy_records_the_run_and_moves_the_label() {
    let r = start(Options::default());
    let ids = seed(&r.emu, 2, |i| {
        let mut p = json!({"registered_by": string("seed")});
        if i == 1 {
            p["pipeline_run_id"] = string("run-aaa");
            p["test"] = string("");
        }
        p
    });
    let dir = tempfile::tempdir().unwrap();
    step(&r, dir.path(), 2, &[])
        .assert()
        .success()
        .stdout(contains(format!("MODEL_VERSION_ID={}", ids[1])));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("MODEL_VERSION_ID")).unwrap(),
        ids[1]
    );
    let v2 = r.emu.version(&ids[1]).unwrap();
    assert_eq!(
        v2["customProperties"],
        json!({"registered_by": string("seed"), "pipeline_run_id": string("run-2"), "test": string("")})
    );
    assert_eq!(v2["author"], "Bob <bob@example.com>");
    let v1 = r.emu.version(&ids[0]).unwrap();
    assert_eq!(
        v1["customProperties"],
        json!({"registered_by": string("seed"), "pipeline_run_id": string("run-aaa")})
    );
    assert_eq!(
        v1["author"], "seed-author",
        "other versions keep their author"
    );
    assert_eq!(r.emu.artifact("2").unwrap()["uri"], uri(2));
    assert_eq!(r.emu.artifact("1").unwrap()["uri"], "s3://bucket/jukebox/1");
    assert_eq!(r.emu.count("PATCH"), 3, "version, other version, artifact");
    assert_eq!(
        r.emu.count("GET"),
        5,
        "probe, model, versions, artifacts, label check"
    );
    // Only fields of the *Update schemas are sent.
    for req in r.emu.requests().iter().filter(|q| q.method == "PATCH") {
        let body = req.body.as_ref().unwrap().as_object().unwrap();
        for k in body.keys() {
            assert!(
                ["customProperties", "author", "uri", "artifactType"].contains(&k.as_str()),
                "{k}"
            );
        }
    }
}

#[test]
fn a_second_run_with_the_same_inputs_sends_no_patch() {
    let r = start(Options::default());
    seed(&r.emu, 3, |_| json!({"registered_by": string("seed")}));
    let dir = tempfile::tempdir().unwrap();
    step(&r, dir.path(), 3, &[]).assert().success();
    assert_eq!(r.emu.count("PATCH"), 2);
    r.emu.front().clear_requests();
    step(&r, dir.path(), 3, &[]).assert().success();
    assert_eq!(r.emu.count("PATCH"), 0);
    assert!(r.emu.count("GET") > 0);
}

#[test]
fn a_version_without_properties_gets_them() {
    let r = start(Options::default());
    let ids = seed(&r.emu, 1, |_| Value::Null);
    assert_eq!(props(&r.emu, &ids[0]), json!({}));
    let dir = tempfile::tempdir().unwrap();
    step(&r, dir.path(), 1, &[]).assert().success();
    assert_eq!(
        props(&r.emu, &ids[0]),
        json!({"pipeline_run_id": string("run-1"), "test": string("")})
    );
}

#[test]
fn struct_proto_and_typed_values_are_sent_back_untouched() {
    let r = start(Options::default());
    let rich = json!({
        "s": {"struct_value": "eyJsciI6IDAuMDF9", "metadataType": "MetadataStructValue"},
        "p": {"type": "type.googleapis.com/google.protobuf.StringValue", "proto_value": "CgR0ZXN0", "metadataType": "MetadataProtoValue"},
        "n": {"int_value": "-2147483648", "metadataType": "MetadataIntValue"},
        "d": {"double_value": 0.125, "metadataType": "MetadataDoubleValue"},
        "b": {"bool_value": false, "metadataType": "MetadataBoolValue"},
    });
    let ids = seed(&r.emu, 2, |i| {
        let mut p = rich.clone();
        if i == 1 {
            p["test"] = string("");
        }
        p
    });
    let dir = tempfile::tempdir().unwrap();
    step(&r, dir.path(), 2, &[]).assert().success();
    for id in &ids {
        let p = props(&r.emu, id);
        for (k, v) in rich.as_object().unwrap() {
            assert_eq!(
                serde_json::to_string(&p[k]).unwrap(),
                serde_json::to_string(v).unwrap(),
                "version {id} property {k}"
            );
        }
    }
    // And on the wire: the PATCH bodies carry the stored values verbatim.
    for req in r
        .emu
        .requests()
        .iter()
        .filter(|q| q.method == "PATCH" && q.path.contains("model_versions"))
    {
        let cp = &req.body.as_ref().unwrap()["customProperties"];
        assert_eq!(cp["s"], rich["s"]);
        assert_eq!(cp["p"], rich["p"]);
    }
}

#[test]
fn the_label_is_removed_even_when_it_is_the_only_property() {
    let r = start(Options::default());
    let ids = seed(&r.emu, 2, |i| {
        if i == 1 {
            json!({"test": string("")})
        } else {
            Value::Null
        }
    });
    let dir = tempfile::tempdir().unwrap();
    step(&r, dir.path(), 2, &[]).assert().success();
    assert_eq!(props(&r.emu, &ids[0]), json!({}));
    let sent: Vec<_> = r
        .emu
        .requests()
        .into_iter()
        .filter(|q| q.method == "PATCH" && q.path.ends_with(&format!("/model_versions/{}", ids[0])))
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body, Some(json!({"customProperties": {}})));
    assert_eq!(holders(&r.emu, "test"), ["2"]);
}

#[test]
fn every_page_of_versions_is_searched_for_the_label() {
    let r = start(Options::default());
    let ids = seed(&r.emu, 23, |i| match i {
        7 | 19 => json!({"test": string(""), "k": string("v")}),
        _ => json!({"k": string("v")}),
    });
    let dir = tempfile::tempdir().unwrap();
    step(&r, dir.path(), 23, &[("--page-size", "4")])
        .assert()
        .success();
    assert_eq!(holders(&r.emu, "test"), ["23"]);
    assert_eq!(props(&r.emu, &ids[18]), json!({"k": string("v")}));
    let pages = r
        .emu
        .requests()
        .into_iter()
        .filter(|q| q.method == "GET" && q.path.ends_with("/versions"))
        .filter(|q| q.query.contains("pageSize=4"))
        .count();
    // 23 versions in pages of 4: 6 pages when planning, 6 more when checking the label.
    assert_eq!(pages, 12);
}

#[test]
fn extra_properties_are_typed() {
    let r = start(Options::default());
    let ids = seed(&r.emu, 1, |_| Value::Null);
    let dir = tempfile::tempdir().unwrap();
    step(&r, dir.path(), 1, &[])
        .args([
            "--property",
            "epochs:int=12",
            "--property",
            "accuracy:double=0.93",
        ])
        .args(["--property", "approved:bool=true", "--property", "team=ml"])
        .assert()
        .success();
    let p = props(&r.emu, &ids[0]);
    assert_eq!(
        p["epochs"],
        json!({"int_value": "12", "metadataType": "MetadataIntValue"})
    );
    assert_eq!(
        p["accuracy"],
        json!({"double_value": 0.93, "metadataType": "MetadataDoubleValue"})
    );
    assert_eq!(
        p["approved"],
        json!({"bool_value": true, "metadataType": "MetadataBoolValue"})
    );
    assert_eq!(p["team"], string("ml"));
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let r = start(Options::default());
    let ids = seed(&r.emu, 2, |i| {
        if i == 1 {
            json!({"test": string("")})
        } else {
            Value::Null
        }
    });
    let before: Vec<Value> = r.emu.versions_of("1");
    let dir = tempfile::tempdir().unwrap();
    step(&r, dir.path(), 2, &[])
        .arg("--dry-run")
        .assert()
        .success()
        .stdout(contains(format!(
            "dry run: PATCH model_versions/{}",
            ids[1]
        )))
        .stdout(contains(format!(
            "PATCH model_versions/{} (version \"1\"): remove environment label test",
            ids[0]
        )))
        .stdout(contains("PATCH model_artifacts/2"))
        .stdout(contains(format!("MODEL_VERSION_ID={}", ids[1])));
    assert_eq!(r.emu.count("PATCH"), 0);
    assert_eq!(r.emu.versions_of("1"), before);
}

#[test]
fn validation_failures_write_nothing() {
    let r = start(Options::default());
    seed(&r.emu, 2, |_| json!({"k": string("v")}));
    // Version "1" (id 2) gets a second artifact, version "2" (id 3) two more: the one
    // named after the model is chosen.
    r.emu
        .create_version_artifact("2", json!({"name": "extra", "uri": "s3://x"}))
        .unwrap();
    for name in ["other", "third"] {
        r.emu
            .create_version_artifact("3", json!({"name": name, "uri": "s3://y"}))
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let cases: &[((&str, &str), &str)] = &[
        (("--model", "nope"), "--model \"nope\": no registered model"),
        (
            ("--version", "9"),
            "--version \"9\": model \"jukebox\" has no such version (it has: 1, 2)",
        ),
        (
            ("--artifact-name", "missing"),
            "--artifact-name \"missing\"",
        ),
        (("--property", "n:int=1.5"), "--property"),
        (("--environment", "te st"), "--environment"),
        (("--artifact-uri", "not a uri"), "--artifact-uri"),
    ];
    for (flag, msg) in cases {
        step(&r, dir.path(), 1, &[*flag])
            .assert()
            .code(2)
            .stderr(contains(*msg));
    }
    // A version with several model artifacts, none named after the model: ambiguous.
    let v3 = r
        .emu
        .create_version(json!({"name": "3", "registeredModelId": "1"}))
        .unwrap();
    let v3 = v3["id"].as_str().unwrap();
    let a = r
        .emu
        .create_version_artifact(v3, json!({"name": "a", "uri": "s3://a"}))
        .unwrap();
    let b = r
        .emu
        .create_version_artifact(v3, json!({"name": "b", "uri": "s3://b"}))
        .unwrap();
    step(&r, dir.path(), 3, &[])
        .assert()
        .code(2)
        .stderr(contains(
            "has 2 model artifacts (\"a\", \"b\"); pass --artifact-name",
        ));
    // A version without a model artifact.
    r.emu
        .create_version(json!({"name": "4", "registeredModelId": "1"}))
        .unwrap();
    step(&r, dir.path(), 4, &[])
        .assert()
        .code(2)
        .stderr(contains("has no model artifact"));
    assert_eq!(r.emu.count("PATCH"), 0, "nothing written");
    // Choosing explicitly works.
    step(&r, dir.path(), 3, &[("--artifact-name", "b")])
        .assert()
        .success();
    assert_eq!(
        r.emu.artifact(b["id"].as_str().unwrap()).unwrap()["uri"],
        uri(3)
    );
    assert_eq!(
        r.emu.artifact(a["id"].as_str().unwrap()).unwrap()["uri"],
        "s3://a"
    );
    // Several artifacts, one named after the model: that one.
    step(&r, dir.path(), 2, &[]).assert().success();
    assert_eq!(r.emu.artifact("2").unwrap()["uri"], uri(2));
    for id in ["3", "4", "5"] {
        assert_ne!(r.emu.artifact(id).unwrap()["uri"], uri(2));
    }
}

#[test]
fn bad_flags_send_no_request_at_all() {
    let r = start(Options::default());
    seed(&r.emu, 1, |_| Value::Null);
    let dir = tempfile::tempdir().unwrap();
    step(&r, dir.path(), 1, &[("--property", "pipeline_run_id=x")])
        .assert()
        .code(2)
        .stderr(contains("set by the step itself"));
    step(
        &r,
        dir.path(),
        1,
        &[("--results-dir", "/nonexistent/results")],
    )
    .assert()
    .code(2);
    assert!(r.emu.requests().is_empty());
}

#[test]
fn token_is_required_and_sent_as_bearer() {
    let r = start(Options::default());
    seed(&r.emu, 1, |_| Value::Null);
    r.emu.front().set_tokens(Some("sa-token-abc123"), None);
    let dir = tempfile::tempdir().unwrap();
    step(&r, dir.path(), 1, &[])
        .assert()
        .code(3)
        .stderr(contains("HTTP 401"))
        .stderr(contains("--token-file"));
    assert_eq!(r.emu.count("PATCH"), 0);
    let tok = dir.path().join("token");
    // A token the proxy knows but that lacks RBAC: 403, exit 3, a hint.
    r.emu
        .front()
        .set_tokens(Some("sa-token-abc123"), Some("weak-token-456"));
    std::fs::write(&tok, "weak-token-456").unwrap();
    step(&r, dir.path(), 1, &[])
        .arg("--token-file")
        .arg(&tok)
        .assert()
        .code(3)
        .stderr(contains("HTTP 403"))
        .stderr(contains("RBAC"));
    assert_eq!(r.emu.count("PATCH"), 0);
    std::fs::write(&tok, "sa-token-abc123\n").unwrap();
    step(&r, dir.path(), 1, &[])
        .arg("--token-file")
        .arg(&tok)
        .assert()
        .success()
        .stderr(contains("sa-token-abc123").not());
    assert!(
        r.emu
            .requests()
            .iter()
            .rev()
            .take(3)
            .all(|q| q.authorization.as_deref() == Some("Bearer sa-token-abc123"))
    );
}

#[test]
fn server_errors_exit_3_and_transient_ones_are_retried() {
    let r = start(Options::default());
    seed(&r.emu, 2, |i| {
        if i == 1 {
            json!({"test": string("")})
        } else {
            Value::Null
        }
    });
    let dir = tempfile::tempdir().unwrap();
    // A 500 is not retried: exit 3 with the server's message.
    r.emu.inject(Some(Method::GET), FaultAction::Status(500), 1);
    step(&r, dir.path(), 2, &[("--registry-api", "v1")])
        .assert()
        .code(3)
        .stderr(contains("HTTP 500"));
    assert_eq!(r.emu.count("PATCH"), 0);
    // One 503 on the first PATCH is retried.
    r.emu
        .inject(Some(Method::PATCH), FaultAction::Status(503), 1);
    step(&r, dir.path(), 2, &[]).assert().success();
    assert_eq!(holders(&r.emu, "test"), ["2"]);
    // Persistent 503: bounded retries, then exit 3.
    r.emu.inject(None, FaultAction::Status(503), 10);
    step(&r, dir.path(), 1, &[("--max-retries", "1")])
        .assert()
        .code(3)
        .stderr(contains("HTTP 503"));
}

#[test]
fn both_prefixes_are_spoken_detected_or_chosen() {
    for (served, flag, want) in [
        (Prefixes::V1alpha3, "auto", "/api/model_registry/v1alpha3/"),
        (Prefixes::V1, "auto", "/api/model_registry/v1/"),
        (Prefixes::Both, "auto", "/api/model_registry/v1/"),
        (Prefixes::Both, "v1alpha3", "/api/model_registry/v1alpha3/"),
    ] {
        let r = start(Options {
            registry_api: served,
            ..Options::default()
        });
        seed(&r.emu, 2, |i| {
            if i == 1 {
                json!({"test": string("")})
            } else {
                Value::Null
            }
        });
        let dir = tempfile::tempdir().unwrap();
        step(&r, dir.path(), 2, &[("--registry-api", flag)])
            .assert()
            .success();
        let reqs = r.emu.requests();
        let patches: Vec<_> = reqs.iter().filter(|q| q.method == "PATCH").collect();
        assert_eq!(patches.len(), 3, "{served:?} {flag}");
        assert!(
            patches.iter().all(|q| q.path.starts_with(want)),
            "{served:?} {flag}"
        );
        assert_eq!(holders(&r.emu, "test"), ["2"]);
    }
    // The wrong prefix chosen by flag: a clear error, nothing written.
    let r = start(Options {
        registry_api: Prefixes::V1alpha3,
        ..Options::default()
    });
    seed(&r.emu, 1, |_| Value::Null);
    let dir = tempfile::tempdir().unwrap();
    step(&r, dir.path(), 1, &[("--registry-api", "v1")])
        .assert()
        .code(3)
        .stderr(contains("no Model Registry API at this URL and prefix"));
    assert_eq!(r.emu.count("PATCH"), 0);
    // No registry at that URL: a clear error.
    let r = start(Options::default());
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = format!("{}/elsewhere", r.url);
    step(&r, dir.path(), 1, &[("--registry-url", &elsewhere)])
        .assert()
        .code(3)
        .stderr(contains("no Model Registry API here"));
}

fn client(r: &Registry, page_size: u32) -> RegistryClient {
    let api = ApiClient::new(ClientConfig {
        base_url: r.url.parse().unwrap(),
        token: TokenSource::None,
        auth: AuthScheme::Bearer,
        ca_file: None,
        insecure: false,
        timeout: Duration::from_secs(5),
        max_retries: 4,
        backoff: Duration::from_millis(1),
    })
    .unwrap();
    r.rt.block_on(RegistryClient::connect(api, Some(ApiVersion::V1Alpha3)))
        .unwrap()
        .with_page_size(page_size)
}

fn request(version: usize) -> Request {
    Request::new(
        "jukebox",
        &version.to_string(),
        "prod",
        &format!("run-{version}"),
        "ci",
        &uri(version),
        None,
        &[],
    )
    .unwrap()
}

#[test]
fn two_versions_racing_for_the_label_end_with_one_holder() {
    let r = start(Options::default());
    seed(&r.emu, 3, |i| {
        if i == 3 {
            json!({"prod": string("")})
        } else {
            json!({"k": string("v")})
        }
    });
    // Small latency so the two runs' requests interleave.
    r.emu.front().set_latency(Duration::from_millis(2));
    let a = client(&r, 2);
    let b = client(&r, 2);
    for round in 0..4 {
        let (x, y) = if round % 2 == 0 { (1, 2) } else { (2, 1) };
        let (ra, rb) = r.rt.block_on(async {
            let (qx, qy) = (request(x), request(y));
            let (pa, pb) = tokio::join!(ct_registry::plan(&a, &qx), ct_registry::plan(&b, &qy));
            let (pa, pb) = (pa.unwrap(), pb.unwrap());
            tokio::join!(ct_registry::apply(&a, &pa), ct_registry::apply(&b, &pb))
        });
        ra.unwrap();
        rb.unwrap();
        let h = holders(&r.emu, "prod");
        assert_eq!(h.len(), 1, "round {round}: {h:?}");
        assert!(h[0] == "1" || h[0] == "2", "{h:?}");
    }
}

#[test]
fn faults_are_retried_without_duplicate_writes() {
    let r = start(Options::default());
    seed(&r.emu, 2, |i| {
        if i == 1 {
            json!({"prod": string(""), "k": string("v")})
        } else {
            Value::Null
        }
    });
    let c = client(&r, 100);
    r.emu.inject(Some(Method::GET), FaultAction::Throttle, 2);
    r.emu.inject(Some(Method::GET), FaultAction::DropBefore, 1);
    r.emu.inject(Some(Method::PATCH), FaultAction::DropAfter, 1);
    r.emu
        .inject(Some(Method::PATCH), FaultAction::Status(502), 2);
    let out = r.rt.block_on(async {
        let plan = ct_registry::plan(&c, &request(2)).await.unwrap();
        ct_registry::apply(&c, &plan).await.unwrap()
    });
    assert_eq!(r.emu.front().pending(), 0);
    assert_eq!(out.patches, 3);
    assert_eq!(holders(&r.emu, "prod"), ["2"]);
    assert_eq!(props(&r.emu, "2"), json!({"k": string("v")}));
    assert_eq!(r.emu.artifact("2").unwrap()["uri"], uri(2));
    // Nothing was created: still one model with two versions and two artifacts.
    assert_eq!(r.emu.versions_of("1").len(), 2);
    assert!(r.emu.artifact("3").is_none());
    // A re-plan finds nothing left to do.
    let again = r.rt.block_on(ct_registry::plan(&c, &request(2))).unwrap();
    assert!(again.changes.is_empty(), "{:?}", again.changes);
}

#[test]
fn properties_and_flags_come_from_the_environment_too() {
    let r = start(Options::default());
    let ids = seed(&r.emu, 1, |_| Value::Null);
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::cargo_bin("write-registry-metadata").unwrap();
    c.env_clear()
        .env("CT_REGISTRY_URL", &r.url)
        .env("CT_MODEL", "jukebox")
        .env("CT_VERSION", "1")
        .env("CT_ENVIRONMENT", "prod")
        .env("CT_KFP_RUN_ID", "run-env")
        .env("CT_AUTHOR", "Env <env@example.com>")
        .env("CT_ARTIFACT_URI", uri(1))
        .env("CT_RESULTS_DIR", dir.path())
        .env("CT_PROPERTY", "team=ml\nepochs:int=3")
        .assert()
        .success();
    let p = props(&r.emu, &ids[0]);
    assert_eq!(p["team"], string("ml"));
    assert_eq!(
        p["epochs"],
        json!({"int_value": "3", "metadataType": "MetadataIntValue"})
    );
    assert_eq!(p["prod"], string(""));
    // An empty CT_PROPERTY (a Task param left at "") adds nothing.
    step(&r, dir.path(), 1, &[])
        .env("CT_PROPERTY", "")
        .assert()
        .success();
    assert_eq!(props(&r.emu, &ids[0]).as_object().unwrap().len(), 5);
}

#[test]
fn a_failure_half_way_is_finished_by_the_re_run() {
    let r = start(Options::default());
    let ids = seed(&r.emu, 2, |i| {
        if i == 1 {
            json!({"test": string("")})
        } else {
            Value::Null
        }
    });
    let dir = tempfile::tempdir().unwrap();
    // The artifact PATCH fails for good (500 is not retried): the versions were written.
    let fault = r#"{"method":"PATCH","path":"*/model_artifacts/*","action":{"status":500}}"#;
    r.emu.front().push(fault.parse().unwrap());
    step(&r, dir.path(), 2, &[])
        .assert()
        .code(3)
        .stderr(contains(
            "PATCH /api/model_registry/v1/model_artifacts/2: HTTP 500",
        ));
    assert_eq!(holders(&r.emu, "test"), ["2"]);
    assert_eq!(r.emu.artifact("2").unwrap()["uri"], "s3://bucket/jukebox/2");
    // The Tekton retry plans only what is left: the artifact.
    r.emu.front().clear_requests();
    step(&r, dir.path(), 2, &[]).assert().success();
    let patches: Vec<String> = r
        .emu
        .requests()
        .into_iter()
        .filter(|q| q.method == "PATCH")
        .map(|q| q.path)
        .collect();
    assert_eq!(patches, ["/api/model_registry/v1/model_artifacts/2"]);
    assert_eq!(r.emu.artifact("2").unwrap()["uri"], uri(2));
    assert_eq!(props(&r.emu, &ids[1])["pipeline_run_id"], string("run-2"));
}
