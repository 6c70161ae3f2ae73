//! The CT flow end to end: pipeline/ct-pipeline.yaml and tasks/*.yaml run by the local Tekton
//! interpreter, the real step binaries (built by `ct_testkit::step_binaries`) against the KFP,
//! Model Registry and forge emulators, seeded as `ct-sandbox demo` seeds them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use ct_emulator::Emulator;
use ct_kfp_emulator::RunEnd;
use ct_sandbox::demo::{APP, Demo, DemoConfig, GITOPS_REPO, USER, short};
use ct_tekton_interpreter::{PipelineRunReport, Quiet, RunStatus, TaskStatus};
use serde_json::Value;

use ct_testkit::repo_root as repo;

/// The step binaries, built when missing or stale.
fn bin_dir() -> PathBuf {
    ct_testkit::step_binaries().to_path_buf()
}

struct Env {
    demo: Demo,
    rt: tokio::runtime::Runtime,
}

fn start(outcome: RunEnd) -> Env {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut cfg = DemoConfig::fast(repo(), bin_dir());
    cfg.training_outcome = outcome;
    let demo = rt.block_on(Demo::start(cfg)).unwrap();
    Env { demo, rt }
}

impl Env {
    fn run(&self) -> PipelineRunReport {
        self.demo.run(Arc::new(Quiet)).unwrap()
    }

    fn result(&self, r: &PipelineRunReport, task: &str, name: &str) -> String {
        r.task(task)
            .and_then(|t| t.results.get(name))
            .cloned()
            .unwrap_or_else(|| panic!("{task} wrote no {name}: {:?}", r.task(task)))
    }

    fn gitops_branches(&self) -> BTreeMap<String, String> {
        self.demo
            .sandbox
            .forge
            .branches(USER, GITOPS_REPO)
            .into_iter()
            .collect()
    }

    /// A file of the GitOps repository at a ref, read from the forge's bare repository.
    fn gitops_file(&self, rev: &str, path: &str) -> String {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(&self.demo.gitops_repo.dir)
            .args(["show", &format!("{rev}:{path}")])
            .output()
            .unwrap();
        assert!(out.status.success(), "git show {rev}:{path}");
        String::from_utf8(out.stdout).unwrap()
    }

    fn version_of(&self, rev: &str, env: &str) -> String {
        let text = self.gitops_file(rev, &format!("model-deployments/{env}/{APP}/config.yaml"));
        let v: Value = serde_yaml_ng::from_str(&text).unwrap();
        v["version"].as_str().unwrap().to_string()
    }

    fn registry_versions(&self) -> Vec<Value> {
        self.demo
            .sandbox
            .registry
            .versions_of(&self.demo.registry_model_id)
    }

    fn registry_version(&self, name: &str) -> Value {
        self.registry_versions()
            .into_iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no registry version {name}"))
    }
}

fn status(r: &PipelineRunReport, task: &str) -> TaskStatus {
    r.task(task).unwrap().status.clone()
}

fn failure_log(r: &PipelineRunReport) -> String {
    let mut s = String::new();
    for t in &r.tasks {
        if let TaskStatus::Failed(why) = &t.status {
            s.push_str(&format!("{}: {why}\n", t.name));
            if let Ok(rd) = std::fs::read_dir(t.dir.join("logs")) {
                for e in rd.flatten() {
                    s.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
    }
    s
}

#[test]
fn a_push_trains_deploys_to_test_records_the_run_and_raises_the_prod_pr() {
    let env = start(RunEnd::Succeeded);
    let version = short(&env.demo.revision).to_string();
    let before_main = env.gitops_branches()["main"].clone();
    let r = env.run();
    assert_eq!(r.status, RunStatus::Completed, "{}", failure_log(&r));
    for t in [
        "fetch-source",
        "train",
        "build-modelcar",
        "deploy-test",
        "update-model-metadata",
        "promote-prod",
        "open-prod-pr",
    ] {
        assert_eq!(status(&r, t), TaskStatus::Succeeded, "{t}");
    }
    assert!(matches!(
        status(&r, "compile-pipeline"),
        TaskStatus::Skipped(_)
    ));
    assert!(matches!(
        status(&r, "terminate-training"),
        TaskStatus::Skipped(_)
    ));

    // The exact pushed commit was trained, and the run succeeded.
    assert_eq!(env.result(&r, "fetch-source", "COMMIT"), env.demo.revision);
    let run_id = env.result(&r, "train", "KFP_RUN_ID");
    assert_eq!(env.result(&r, "train", "KFP_RUN_STATE"), "SUCCEEDED");
    let runs = env.demo.sandbox.kfp.runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["run_id"], run_id.as_str());

    // Test deploy: one commit on main that changes only the version.
    let branches = env.gitops_branches();
    let test_commit = env.result(&r, "deploy-test", "COMMIT_SHA");
    assert_eq!(branches["main"], test_commit);
    assert_ne!(test_commit, before_main);
    assert_eq!(env.result(&r, "deploy-test", "CHANGED"), "true");
    assert_eq!(env.version_of("main", "test"), version);
    assert_eq!(env.version_of("main", "prod"), "0000000");
    let text = env.gitops_file("main", "model-deployments/test/jukebox/config.yaml");
    assert!(
        text.starts_with("# jukebox in test"),
        "comments kept:\n{text}"
    );
    assert!(text.contains("image_namespace: user1-test"));

    // Prod promotion: the branch <app>-<version> and one open PR from it to main.
    let prod_branch = format!("{APP}-{version}");
    assert_eq!(env.result(&r, "promote-prod", "BRANCH"), prod_branch);
    assert_eq!(env.version_of(&prod_branch, "prod"), version);
    let pulls = env.demo.sandbox.forge.pulls(USER, GITOPS_REPO).unwrap();
    assert_eq!(pulls.len(), 1);
    assert!(pulls[0].open);
    assert_eq!(pulls[0].head, prod_branch);
    assert_eq!(pulls[0].base, "main");
    assert_eq!(env.result(&r, "open-prod-pr", "PR_ACTION"), "created");
    assert_eq!(
        env.result(&r, "open-prod-pr", "PR_NUMBER"),
        pulls[0].number.to_string()
    );
    assert!(pulls[0].body.contains(&run_id), "PR body names the KFP run");

    // Registry: the version holds the test label, the run id, the author and the modelcar URI;
    // the older version lost `test` and kept `prod`.
    let v = env.registry_version(&version);
    assert_eq!(v["customProperties"]["test"]["string_value"], "");
    assert_eq!(
        v["customProperties"]["pipeline_run_id"]["string_value"],
        run_id.as_str()
    );
    assert_eq!(v["author"], USER);
    assert_eq!(
        env.result(&r, "update-model-metadata", "MODEL_VERSION_ID"),
        v["id"].as_str().unwrap()
    );
    let old = env.registry_version("0a1b2c3");
    assert!(old["customProperties"].get("test").is_none());
    assert!(old["customProperties"].get("prod").is_some());
    let digest = env.result(&r, "build-modelcar", "IMAGE_DIGEST");
    let summary = env.demo.summary(&r);
    let ours = summary.versions.iter().find(|x| x.name == version).unwrap();
    assert_eq!(ours.artifact_uris.len(), 1);
    assert!(
        ours.artifact_uris[0].starts_with("oci://") && ours.artifact_uris[0].ends_with(&digest),
        "{:?}",
        ours.artifact_uris
    );
    // The summary a person reads names all of it.
    let text = summary.to_string();
    for needle in [&run_id, &test_commit, &prod_branch, &digest] {
        assert!(
            text.contains(needle.as_str()),
            "summary lacks {needle}:\n{text}"
        );
    }
}

#[test]
fn failed_training_deploys_nothing_and_opens_no_pr() {
    let env = start(RunEnd::Failed);
    let before = env.gitops_branches();
    let r = env.run();
    assert_eq!(r.status, RunStatus::Failed);
    assert!(matches!(status(&r, "train"), TaskStatus::Failed(_)));
    assert_eq!(env.result(&r, "train", "KFP_RUN_STATE"), "FAILED");
    for t in [
        "build-modelcar",
        "deploy-test",
        "update-model-metadata",
        "promote-prod",
        "open-prod-pr",
    ] {
        assert_eq!(status(&r, t), TaskStatus::NotRun, "{t}");
    }
    // The finally task got the run id of the failed training (it was recorded first).
    assert!(
        !matches!(status(&r, "terminate-training"), TaskStatus::Skipped(_)),
        "terminate-training was skipped: {:?}",
        status(&r, "terminate-training")
    );
    assert_nothing_promoted(&env, &before);
    let v = env.registry_version(short(&env.demo.revision));
    assert!(v["customProperties"].get("test").is_none());
    assert!(v["customProperties"].get("pipeline_run_id").is_none());
}

#[test]
fn a_second_run_for_the_same_commit_makes_no_second_commit_or_pr() {
    let env = start(RunEnd::Succeeded);
    let first = env.run();
    assert_eq!(
        first.status,
        RunStatus::Completed,
        "{}",
        failure_log(&first)
    );
    let after_first = env.gitops_branches();
    let patches = env.demo.sandbox.registry.count("PATCH");

    let second = env.run();
    assert_eq!(
        second.status,
        RunStatus::Completed,
        "{}",
        failure_log(&second)
    );
    assert_eq!(env.gitops_branches(), after_first, "no new commit anywhere");
    assert_eq!(env.result(&second, "deploy-test", "CHANGED"), "false");
    assert_eq!(env.result(&second, "promote-prod", "CHANGED"), "false");
    assert_eq!(
        env.result(&second, "deploy-test", "COMMIT_SHA"),
        env.result(&first, "deploy-test", "COMMIT_SHA")
    );
    assert_eq!(env.result(&second, "open-prod-pr", "PR_ACTION"), "existing");
    assert_eq!(
        env.result(&second, "open-prod-pr", "PR_NUMBER"),
        env.result(&first, "open-prod-pr", "PR_NUMBER")
    );
    assert_eq!(
        env.demo
            .sandbox
            .forge
            .pulls(USER, GITOPS_REPO)
            .unwrap()
            .len(),
        1
    );
    // A new PipelineRun trains again (a new KFP run, its id recorded): only that changes.
    let run2 = env.result(&second, "train", "KFP_RUN_ID");
    assert_ne!(run2, env.result(&first, "train", "KFP_RUN_ID"));
    let v = env.registry_version(short(&env.demo.revision));
    assert_eq!(
        v["customProperties"]["pipeline_run_id"]["string_value"],
        run2.as_str()
    );
    assert!(env.demo.sandbox.registry.count("PATCH") > patches);
}

#[test]
fn a_signed_push_webhook_goes_through_the_trigger_and_runs_the_pushed_commit() {
    use ct_tekton_interpreter::trigger::Decision;
    let mut env = start(RunEnd::Succeeded);
    let seeded = env.demo.revision.clone();

    // A push to another branch reaches the EventListener and is filtered out by the CEL filter.
    let o = env
        .rt
        .block_on(env.demo.push_and_trigger("experiment"))
        .unwrap();
    assert!(
        matches!(&o.decision, Decision::Rejected { interceptor, .. } if interceptor == "main-only"),
        "{o:?}"
    );
    assert_eq!(env.demo.revision, seeded);

    // A push to main passes signature, event type and filters; the binding and the template
    // give the PipelineRun the pushed commit.
    let o = env.rt.block_on(env.demo.push_and_trigger("main")).unwrap();
    let params = o.pipelinerun_params.clone().expect("accepted");
    let pushed = env.demo.sandbox.forge.branches(USER, APP)["main"].clone();
    assert_ne!(pushed, seeded);
    assert_eq!(params["git-revision"], pushed);
    assert_eq!(params["version"], &pushed[..7]);
    assert_eq!(params["app-name"], APP);
    assert_eq!(params["git-author"], USER);
    assert_eq!(params["git-url"], env.demo.model_repo.clone_url);

    let r = env.run();
    assert_eq!(r.status, RunStatus::Completed, "{}", failure_log(&r));
    assert_eq!(env.result(&r, "fetch-source", "COMMIT"), pushed);
    assert_eq!(env.version_of("main", "test"), &pushed[..7]);
}

/// The training run the PipelineRun created: its KFP run, found in the emulator (a timed-out or
/// cancelled TaskRun publishes no KFP_RUN_ID).
fn only_kfp_run(env: &Env) -> String {
    let runs = env.demo.sandbox.kfp.runs();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0]["run_id"].as_str().unwrap().to_string()
}

/// What both kill paths (timeout, cancel) must end with: the train TaskRun published nothing,
/// the finally task found the run by its idempotency key and it is terminated, nothing deployed.
fn assert_backstop_terminated_the_run(
    env: &Env,
    r: &PipelineRunReport,
    before: &BTreeMap<String, String>,
) {
    assert_eq!(r.status, RunStatus::Failed);
    let train = r.task("train").unwrap();
    assert!(
        train.results.is_empty(),
        "Tekton publishes no results of a killed TaskRun: {:?}",
        train.results
    );
    let run_id = only_kfp_run(env);
    assert!(env.demo.sandbox.kfp.terminate_calls(&run_id) >= 1);
    assert_eq!(
        status(r, "terminate-training"),
        TaskStatus::Succeeded,
        "{}",
        failure_log(r)
    );
    assert_eq!(
        env.result(r, "terminate-training", "KFP_RUN_STATE"),
        "CANCELED"
    );
    assert_eq!(
        env.demo.sandbox.kfp.run_state(&run_id).unwrap().to_string(),
        "CANCELED"
    );
    assert_eq!(status(r, "deploy-test"), TaskStatus::NotRun);
    assert!(!r.results.contains_key("KFP_RUN_ID"), "{:?}", r.results);
    assert_eq!(
        r.reason, None,
        "results of a failed task are left out, not an error"
    );
    assert_nothing_promoted(env, before);
}

/// The GitOps repository is as `before` and no pull request was opened.
fn assert_nothing_promoted(env: &Env, before: &BTreeMap<String, String>) {
    assert_eq!(&env.gitops_branches(), before, "no GitOps change");
    assert!(
        env.demo
            .sandbox
            .forge
            .pulls(USER, GITOPS_REPO)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_training_that_outlives_its_task_timeout_is_terminated_and_nothing_deploys() {
    // The run never finishes; the train PipelineTask times out: its pod would be deleted, so the
    // wait step gets SIGTERM, terminates the KFP run and exits 143. Tekton publishes no results
    // of the TaskRun; the finally task finds the run by the key the PipelineRun gave it.
    let mut env = start(RunEnd::Running);
    let train = env
        .demo
        .bundle
        .pipeline
        .spec
        .tasks
        .iter_mut()
        .find(|t| t.name == "train")
        .unwrap();
    train.timeout = Some("3s".into());
    let before = env.gitops_branches();
    let r = env.run();
    assert!(
        matches!(status(&r, "train"), TaskStatus::Failed(ref w) if w.contains("TaskRunTimeout")),
        "{:?}",
        status(&r, "train")
    );
    let wait = &r.task("train").unwrap().steps[1];
    assert_eq!((wait.name.as_str(), wait.exit_code), ("wait-kfp-run", 143));
    assert_backstop_terminated_the_run(&env, &r, &before);
}

#[test]
fn a_cancelled_run_terminates_the_training_from_finally() {
    // CancelledRunFinally while the wait step polls: SIGTERM to the step, no results, finally.
    let env = start(RunEnd::Running);
    let before = env.gitops_branches();
    let r = std::thread::scope(|s| {
        s.spawn(|| {
            let kfp = &env.demo.sandbox.kfp;
            let mut waited = 0;
            while kfp.runs().is_empty() {
                assert!(waited < 60_000, "no KFP run was created");
                std::thread::sleep(std::time::Duration::from_millis(20));
                waited += 20;
            }
            env.demo
                .cancel
                .store(true, std::sync::atomic::Ordering::SeqCst);
        });
        env.run()
    });
    assert!(
        matches!(status(&r, "train"), TaskStatus::Failed(ref w) if w.contains("TaskRunCancelled")),
        "{:?}",
        status(&r, "train")
    );
    assert_backstop_terminated_the_run(&env, &r, &before);
}
