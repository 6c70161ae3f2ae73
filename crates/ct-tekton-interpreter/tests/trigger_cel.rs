//! The Trigger in pipeline/triggers/ evaluated against Gitea's signed push payloads: the github
//! interceptor (HMAC + event type), the CEL filter from the YAML (with the `cel` crate), the
//! TriggerBinding and the TriggerTemplate's PipelineRun params.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ct_tekton_interpreter::trigger::{
    Decision, Interceptor, Secrets, TriggerDef, evaluate, load_binding, load_trigger,
    parse_headers, signature_256, template_pipelinerun_params,
};

/// Secret the shared fixtures are signed with (../shared/fixtures/gitea/README.md).
const FIXTURE_SECRET: &str = "fixture-webhook-secret";

use ct_testkit::repo_root as repo;

/// A Gitea fixture from tests/fixtures/gitea/.
fn fixture(name: &str) -> PathBuf {
    ct_testkit::fixture(&format!("gitea/{name}"))
}

fn delivery(name: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let headers =
        parse_headers(&std::fs::read_to_string(fixture(&format!("{name}.headers"))).unwrap());
    let body = std::fs::read(fixture(&format!("{name}.json"))).unwrap();
    (headers, body)
}

struct Listener {
    trigger: TriggerDef,
    bindings: Vec<(String, Vec<(String, String)>)>,
}

impl Listener {
    fn load() -> Self {
        let dir = repo().join("pipeline/triggers");
        Listener {
            trigger: load_trigger(&dir.join("trigger.yaml")).unwrap(),
            bindings: vec![load_binding(&dir.join("triggerbinding.yaml")).unwrap()],
        }
    }

    fn deliver(&self, headers: &[(String, String)], body: &[u8]) -> Decision {
        let mut secrets = Secrets::new();
        secrets.insert(
            ("ct-webhook-secret".into(), "token".into()),
            FIXTURE_SECRET.into(),
        );
        evaluate(&self.trigger, &self.bindings, headers, body, &secrets).unwrap()
    }
}

/// Re-sign a modified body as Gitea would (same secret, fresh X-Hub-Signature-256).
fn resign(headers: &[(String, String)], body: &[u8]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            if k.eq_ignore_ascii_case("X-Hub-Signature-256") {
                (k.clone(), signature_256(FIXTURE_SECRET.as_bytes(), body))
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect()
}

fn rejected_by(d: &Decision) -> &str {
    match d {
        Decision::Rejected { interceptor, .. } => interceptor,
        Decision::Accepted(p) => panic!("accepted: {p:?}"),
    }
}

#[test]
fn the_filter_is_the_one_from_the_issue() {
    let l = Listener::load();
    let filters: Vec<&str> = l
        .trigger
        .interceptors
        .iter()
        .filter_map(|i| match i {
            Interceptor::Cel {
                filter: Some(f), ..
            } => Some(f.as_str()),
            _ => None,
        })
        .collect();
    assert!(filters.contains(
        &"body.ref == 'refs/heads/main' && body.after != '0000000000000000000000000000000000000000'"
    ));
    assert!(matches!(
        &l.trigger.interceptors[0],
        Interceptor::Github { secret: Some(_), event_types, .. } if event_types == &["push"]
    ));
}

#[test]
fn push_to_main_is_accepted_and_bound() {
    let l = Listener::load();
    let (h, body) = delivery("push-main");
    let Decision::Accepted(params) = l.deliver(&h, &body) else {
        panic!("push-main was rejected");
    };
    let after = "9b2e4d6f8a0c1e3b5d7f9a1c3e5b7d9f1a3c5e7b";
    assert_eq!(params["git-revision"], after);
    assert_eq!(params["version"], &after[..7]);
    assert_eq!(params["app-name"], "mlops-gitops");
    assert_eq!(params["git-author"], "user1");
    assert_eq!(
        params["git-url"],
        "https://gitea-gitea.apps.cluster.example.com/user1/mlops-gitops.git"
    );

    // The TriggerTemplate passes them through to the PipelineRun unchanged.
    let pr = template_pipelinerun_params(
        &repo().join("pipeline/triggers/triggertemplate.yaml"),
        &params,
    )
    .unwrap();
    let expected: BTreeMap<String, String> = params.clone();
    assert_eq!(pr, expected);
}

#[test]
fn push_to_another_branch_is_filtered_out() {
    let l = Listener::load();
    let (h, body) = delivery("push-feature");
    let d = l.deliver(&h, &body);
    assert_eq!(rejected_by(&d), "main-only");
}

#[test]
fn tag_named_main_branch_delete_and_sub_branch_are_filtered_out() {
    let l = Listener::load();
    let (h, body) = delivery("push-main");
    let text = String::from_utf8(body).unwrap();
    let after = "9b2e4d6f8a0c1e3b5d7f9a1c3e5b7d9f1a3c5e7b";
    for variant in [
        text.replace("\"refs/heads/main\"", "\"refs/tags/main\""),
        text.replace("\"refs/heads/main\"", "\"refs/heads/main/x\""),
        text.replace(
            &format!("\"after\": \"{after}\""),
            "\"after\": \"0000000000000000000000000000000000000000\"",
        ),
    ] {
        assert_ne!(variant, text, "the fixture changed shape");
        let h2 = resign(&h, variant.as_bytes());
        assert_eq!(
            rejected_by(&l.deliver(&h2, variant.as_bytes())),
            "main-only"
        );
    }
}

#[test]
fn bad_signature_or_event_type_is_rejected_before_any_filter() {
    let l = Listener::load();
    let (h, body) = delivery("push-main");
    let mut tampered = body.clone();
    let pos = tampered.iter().position(|b| *b == b'9').unwrap();
    tampered[pos] = b'8';
    assert_eq!(rejected_by(&l.deliver(&h, &tampered)), "verify-signature");

    let unsigned: Vec<(String, String)> = h
        .iter()
        .map(|(k, v)| {
            if k.eq_ignore_ascii_case("X-Hub-Signature-256") {
                (k.clone(), "sha256=".to_string())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    assert_eq!(
        rejected_by(&l.deliver(&unsigned, &body)),
        "verify-signature"
    );

    let issues: Vec<(String, String)> = h
        .iter()
        .map(|(k, v)| {
            if k.eq_ignore_ascii_case("X-GitHub-Event") {
                (k.clone(), "issues".to_string())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    assert_eq!(rejected_by(&l.deliver(&issues, &body)), "verify-signature");
}

#[test]
fn unsafe_repository_names_are_rejected() {
    let l = Listener::load();
    let (h, body) = delivery("push-main");
    let text = String::from_utf8(body).unwrap();
    let evil = text.replacen("\"name\": \"mlops-gitops\"", "\"name\": \"x;rm -rf\"", 1);
    assert_ne!(evil, text);
    let h2 = resign(&h, evil.as_bytes());
    assert_eq!(rejected_by(&l.deliver(&h2, evil.as_bytes())), "sane-values");
}
