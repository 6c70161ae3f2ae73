//! The Alertmanager fixtures (tests/fixtures/alertmanager/) through the EventListener of
//! pipeline/triggers/ with the alert Trigger listed, as the Helm chart renders it with
//! `alertTrigger.enabled`: the bearer credentials compared with the Secret (`compareSecret`),
//! resolved notifications ignored, the model taken from the alert label, the pipeline asked to
//! derive commit and version. Also: the repository's own EventListener (alert Trigger not
//! listed) creates nothing from an alert, and the stand-in's payload limit over HTTP.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ct_tekton_interpreter::trigger::{
    Decision, Evaluation, MAX_PAYLOAD_BYTES, Secrets, TriggerSet, listener_router, parse_headers,
};

/// The credentials the fixtures' Alertmanager sends (tests/fixtures/alertmanager/README.md).
const CREDENTIALS: &str = "fixture-alertmanager-credentials";

fn delivery(name: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let f = |ext: &str| ct_testkit::fixture(&format!("alertmanager/{name}.{ext}"));
    let headers = parse_headers(&std::fs::read_to_string(f("headers")).unwrap());
    (headers, std::fs::read(f("json")).unwrap())
}

/// pipeline/triggers/ copied to `dir`, with `ct-alert-retrain` added to the EventListener's
/// Triggers (what the chart's alertTrigger.enabled does).
fn with_alert_trigger(dir: &Path) -> PathBuf {
    let src = ct_testkit::repo_root().join("pipeline/triggers");
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    let el = dir.join("eventlistener.yaml");
    let mut v: serde_json::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&el).unwrap()).unwrap();
    v["spec"]["triggers"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"triggerRef": "ct-alert-retrain"}));
    std::fs::write(&el, serde_yaml_ng::to_string(&v).unwrap()).unwrap();
    dir.to_path_buf()
}

fn secrets() -> Secrets {
    let mut s = Secrets::new();
    s.insert(
        ("ct-webhook-secret".into(), "token".into()),
        "fixture-webhook-secret".into(),
    );
    s.insert(
        ("ct-alertmanager-token".into(), "token".into()),
        CREDENTIALS.into(),
    );
    s
}

fn evaluate(set: &TriggerSet, name: &str) -> Vec<Evaluation> {
    let (h, body) = delivery(name);
    set.handle(&h, &body, &secrets()).unwrap()
}

fn alert_trigger(evals: &[Evaluation]) -> &Evaluation {
    evals
        .iter()
        .find(|e| e.trigger == "ct-alert-retrain")
        .expect("the alert Trigger was evaluated")
}

#[test]
fn a_firing_alert_retrains_the_labelled_model_from_main() {
    let tmp = tempfile::tempdir().unwrap();
    let set = TriggerSet::load(&with_alert_trigger(tmp.path())).unwrap();
    assert_eq!(
        set.secret_refs().compared,
        [("ct-alertmanager-token".to_string(), "token".to_string())]
    );
    let evals = evaluate(&set, "firing");
    // The push Trigger refuses it (no signature, no push event); the alert Trigger takes it.
    let push = evals.iter().find(|e| e.trigger == "ct-model-push").unwrap();
    assert!(
        matches!(&push.decision, Decision::Rejected { interceptor, .. } if interceptor == "verify-signature")
    );
    let alert = alert_trigger(&evals);
    assert!(matches!(alert.decision, Decision::Accepted(_)), "{alert:?}");
    let pr = alert.pipelinerun_params.as_ref().unwrap();
    assert_eq!(pr["app-name"], "jukebox");
    assert_eq!(pr["git-revision"], "main");
    assert_eq!(pr["version"], "");
    assert_eq!(pr["git-author"], "alertmanager");
    assert_eq!(
        pr["git-url"],
        "https://gitea-gitea.apps.cluster.example.com/user1/jukebox.git"
    );
}

#[test]
fn resolved_and_wrong_credentials_create_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let set = TriggerSet::load(&with_alert_trigger(tmp.path())).unwrap();
    for (name, by) in [
        ("resolved", "firing-only"),
        ("wrong-credentials", "authenticate"),
    ] {
        let evals = evaluate(&set, name);
        assert!(
            evals
                .iter()
                .all(|e| matches!(e.decision, Decision::Rejected { .. })),
            "{name}: {evals:?}"
        );
        assert!(
            matches!(&alert_trigger(&evals).decision, Decision::Rejected { interceptor, .. } if interceptor == by),
            "{name}: {evals:?}"
        );
    }
    // No Authorization header at all, or another scheme: rejected, not an error.
    let (h, body) = delivery("firing");
    for headers in [
        h.iter()
            .filter(|(k, _)| k != "Authorization")
            .cloned()
            .collect::<Vec<_>>(),
        vec![("Authorization".into(), format!("Basic {CREDENTIALS}"))],
    ] {
        let evals = set.handle(&headers, &body, &secrets()).unwrap();
        assert!(
            matches!(&alert_trigger(&evals).decision, Decision::Rejected { interceptor, .. } if interceptor == "authenticate")
        );
    }
    // A label that is not a repository name never reaches a PipelineRun.
    let text = String::from_utf8(body).unwrap();
    let evil = text.replace("\"model\":\"jukebox\"", "\"model\":\"../jukebox\"");
    assert_ne!(evil, text);
    let evals = set.handle(&h, evil.as_bytes(), &secrets()).unwrap();
    assert!(
        matches!(&alert_trigger(&evals).decision, Decision::Rejected { interceptor, .. } if interceptor == "model-label")
    );
}

#[test]
fn the_repository_s_own_event_listener_does_not_listen_for_alerts() {
    let set = TriggerSet::load(&ct_testkit::repo_root().join("pipeline/triggers")).unwrap();
    let evals = evaluate(&set, "firing");
    assert!(evals.iter().all(|e| e.trigger != "ct-alert-retrain"));
    assert!(
        evals
            .iter()
            .all(|e| matches!(e.decision, Decision::Rejected { .. }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stand_in_reads_payloads_up_to_its_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let set = Arc::new(TriggerSet::load(&with_alert_trigger(tmp.path())).unwrap());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let server = ct_emulator::Server::start(
        ct_emulator::loopback(0),
        listener_router(set, Arc::new(secrets()), tx),
    )
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let (h, body) = delivery("firing");
    let mut req = client.post(format!("{}/", server.url)).body(body);
    for (k, v) in &h {
        req = req.header(k, v);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 202);
    let evals = rx.recv().await.unwrap().unwrap();
    assert!(matches!(
        alert_trigger(&evals).decision,
        Decision::Accepted(_)
    ));

    let resp = client
        .post(format!("{}/", server.url))
        .header("Content-Type", "application/json")
        .body(vec![b' '; MAX_PAYLOAD_BYTES + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let text = resp.text().await.unwrap();
    assert!(text.contains("limit of 25 MiB"), "{text}");
    let err = rx.recv().await.unwrap().unwrap_err();
    assert!(err.to_string().contains("limit of 25 MiB"), "{err}");
}
