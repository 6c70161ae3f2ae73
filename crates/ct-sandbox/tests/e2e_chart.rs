//! The CT flow from the rendered Helm chart (issue 11): `charts/ct-pipeline` rendered by Helm's
//! engine with the workshop's values and the alert Trigger on (`ct_testkit::chart`), its
//! Pipeline, Tasks and Triggers run by the sandbox: a signed push through the push Trigger
//! (installed for the sandbox's forge, as the chart installs it for its git server), then the
//! Alertmanager fixtures through the alert Trigger, and the retraining the firing one asks for,
//! which produces a new version derived from the commit and the PipelineRun.

use std::path::PathBuf;
use std::sync::Arc;

use ct_kfp_emulator::RunEnd;
use ct_sandbox::demo::{APP, Demo, DemoConfig, GITOPS_REPO, USER, short};
use ct_tekton_interpreter::trigger::{Decision, parse_headers};
use ct_tekton_interpreter::{PipelineRunReport, Quiet, RunStatus, TaskStatus};
use serde_json::Value;

/// The bearer credentials of the Alertmanager fixtures (tests/fixtures/alertmanager/README.md).
const CREDENTIALS: &str = "fixture-alertmanager-credentials";

fn alert_fixture(name: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let f = |ext: &str| ct_testkit::fixture(&format!("alertmanager/{name}.{ext}"));
    let headers = parse_headers(&std::fs::read_to_string(f("headers")).unwrap());
    let body = std::fs::read(f("json")).unwrap();
    // The fixtures alert on the demo's model.
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["commonLabels"]["model"], APP, "{name}");
    (headers, body)
}

fn result(r: &PipelineRunReport, task: &str, name: &str) -> String {
    r.task(task)
        .and_then(|t| t.results.get(name))
        .cloned()
        .unwrap_or_else(|| panic!("{task} wrote no {name}: {:?}", r.task(task)))
}

fn check_completed(r: &PipelineRunReport) {
    let failed: Vec<String> = r
        .tasks
        .iter()
        .filter(|t| matches!(t.status, TaskStatus::Failed(_)))
        .map(|t| format!("{}: {}", t.name, t.status))
        .collect();
    assert_eq!(r.status, RunStatus::Completed, "{failed:?} {:?}", r.reason);
}

#[test]
fn the_rendered_chart_runs_a_push_and_an_alert_triggered_retraining() {
    let rendered: PathBuf = ct_testkit::chart::rendered_chart().to_path_buf();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut cfg = DemoConfig::fast(
        ct_testkit::repo_root(),
        ct_testkit::step_binaries().to_path_buf(),
    );
    cfg.manifests = rendered.clone();
    cfg.training_outcome = RunEnd::Succeeded;
    cfg.alertmanager_credentials = CREDENTIALS.into();
    let mut demo = rt.block_on(Demo::start(cfg)).unwrap();
    assert_eq!(
        demo.bundle
            .pipeline
            .spec
            .params
            .iter()
            .find(|p| p.name == "image")
            .unwrap()
            .default,
        Some(ct_tekton_interpreter::ParamValue::Str(
            "quay.io/ct-steps/ct-steps:0.1.0".into()
        )),
        "the rendered Pipeline"
    );
    assert_eq!(
        rt.block_on(demo.alert_trigger()).unwrap().as_deref(),
        Some("ct-alert-retrain"),
        "the rendered EventListener lists the alert Trigger"
    );

    // A signed push to main through the rendered push Trigger.
    let o = rt.block_on(demo.push_and_trigger("main")).unwrap();
    assert!(matches!(o.decision, Decision::Accepted(_)), "{o:?}");
    assert_eq!(o.trigger, "ct-model-push");
    let pushed = demo.revision.clone();
    let r1 = demo.run(Arc::new(Quiet)).unwrap();
    check_completed(&r1);
    assert_eq!(result(&r1, "resolve-version", "GIT_REVISION"), pushed);
    assert_eq!(result(&r1, "resolve-version", "VERSION"), short(&pushed));

    // Resolved and wrong credentials: nothing to run.
    for (name, by) in [
        ("resolved", "firing-only"),
        ("wrong-credentials", "authenticate"),
    ] {
        let (h, body) = alert_fixture(name);
        let o = rt.block_on(demo.alert_and_trigger(&h, &body)).unwrap();
        assert_eq!(o.trigger, "ct-alert-retrain");
        assert!(
            matches!(&o.decision, Decision::Rejected { interceptor, .. } if interceptor == by),
            "{name}: {o:?}"
        );
        assert!(o.pipelinerun_params.is_none());
    }

    // The firing alert: retrain the model's main, version derived by the pipeline.
    let (h, body) = alert_fixture("firing");
    let o = rt.block_on(demo.alert_and_trigger(&h, &body)).unwrap();
    let params = o
        .pipelinerun_params
        .clone()
        .expect("the firing alert is accepted");
    assert_eq!(params["app-name"], APP);
    assert_eq!(params["git-revision"], "main");
    assert_eq!(params["version"], "");
    assert_eq!(
        params["git-url"], demo.model_repo.clone_url,
        "installed for the forge"
    );
    let r2 = demo.run(Arc::new(Quiet)).unwrap();
    check_completed(&r2);
    let uid_hex: String = r2.uid.chars().filter(|c| *c != '-').take(8).collect();
    let version = format!("{}-r{uid_hex}", short(&pushed));
    assert_eq!(result(&r2, "fetch-source", "COMMIT"), pushed, "main's head");
    assert_eq!(result(&r2, "resolve-version", "GIT_REVISION"), pushed);
    assert_eq!(result(&r2, "resolve-version", "VERSION"), version);
    assert_ne!(version, result(&r1, "resolve-version", "VERSION"));

    // The retraining trained, deployed to test and proposed prod under the new version.
    let runs = demo.sandbox.kfp.runs();
    assert_eq!(runs.len(), 2);
    let run2 = result(&r2, "train", "KFP_RUN_ID");
    let kfp_run = runs.iter().find(|r| r["run_id"] == run2.as_str()).unwrap();
    assert_eq!(
        kfp_run["runtime_config"]["parameters"]["version"],
        version.as_str()
    );
    assert!(result(&r2, "build-modelcar", "IMAGE_URL").ends_with(&format!("/{APP}:{version}")));
    assert_eq!(result(&r2, "deploy-test", "CHANGED"), "true");
    let test_config: Value = serde_yaml_ng::from_str(&git_show(
        &demo,
        "main",
        &format!("model-deployments/test/{APP}/config.yaml"),
    ))
    .unwrap();
    assert_eq!(test_config["version"], version.as_str());
    let registry = demo.sandbox.registry.versions_of(&demo.registry_model_id);
    let v = registry
        .iter()
        .find(|v| v["name"] == version.as_str())
        .expect("registered");
    assert!(v["customProperties"].get("test").is_some(), "{v}");
    assert_eq!(
        v["customProperties"]["pipeline_run_id"]["string_value"],
        run2.as_str()
    );
    assert_eq!(v["author"], "alertmanager");
    let first = registry
        .iter()
        .find(|v| v["name"] == short(&pushed))
        .unwrap();
    assert!(
        first["customProperties"].get("test").is_none(),
        "the label moved"
    );
    let branch = format!("{APP}-{version}");
    assert_eq!(result(&r2, "promote-prod", "BRANCH"), branch);
    let pulls = demo.sandbox.forge.pulls(USER, GITOPS_REPO).unwrap();
    assert!(
        pulls.iter().any(|p| p.open && p.head == branch),
        "{pulls:?}"
    );
    let summary = demo.summary(&r2).to_string();
    assert!(
        summary.contains(&format!("commit        {pushed}")),
        "{summary}"
    );
}

fn git_show(demo: &Demo, rev: &str, path: &str) -> String {
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(&demo.gitops_repo.dir)
        .args(["show", &format!("{rev}:{path}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "git show {rev}:{path}");
    String::from_utf8(out.stdout).unwrap()
}
