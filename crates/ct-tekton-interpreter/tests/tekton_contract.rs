//! The contract between tasks/*.yaml and the step binaries, and the rules every Task follows:
//!
//! - every flag a step passes (`--x` in args, `CT_X` in env, the step's and the stepTemplate's)
//!   exists on the binary (parsed from `<binary> --help` of the built binary);
//! - every result a Task declares is written by one of its binaries (named in its source);
//! - no `script`, no shell, `command` is `/usr/local/bin/<binary>`, one image param with a pinned
//!   default, a restricted-v2 securityContext without a fixed UID, a writable HOME, requests and a
//!   memory limit, kebab-case params;
//! - no Task sets a list variable of a step (a variable the step reads as one value per line,
//!   `ct_step::cli::env_list_vars`): a Tekton param is one free-text value, so it goes to a
//!   single-value flag, never into a variable that splits;
//! - one YAML document per file under tasks/ and pipeline/, every named taskRef of the Pipeline
//!   resolves to a Task in tasks/ (tekton-lint's rule for that is off, see .tektonlintrc.yaml).
//!
//! Every rule on the Tasks holds for the repository's tasks/ and for the Helm chart rendered with
//! the workshop's values (`ct_testkit::chart`: Helm's engine, the venv `.ci/chart` creates).
//!
//! The binaries are built into the test's target directory when missing or stale
//! (`ct_testkit::step_binaries`), so `cargo test -p ct-tekton-interpreter` works on a clean tree.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use ct_testkit::repo_root as repo;

/// The step binaries, built when missing or stale.
fn bin_dir() -> &'static Path {
    ct_testkit::step_binaries()
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
    out.sort();
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: not exactly one YAML document: {e}", path.display()))
}

/// Where the Tasks and the Pipeline come from: the repository, and the chart rendered from it.
fn sources() -> [(&'static str, PathBuf); 2] {
    [
        ("repository", repo()),
        (
            "rendered chart",
            ct_testkit::chart::rendered_chart().to_path_buf(),
        ),
    ]
}

/// The Task files of `root`/tasks, sorted.
fn task_files(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("tasks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

/// Every Task of every source, named for messages (`rendered chart tasks/open-pr.yaml`). The
/// chart renders every Task of the repository.
fn tasks() -> Vec<(String, Value)> {
    let names = |root: &Path| -> Vec<String> {
        task_files(root)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    let [(_, repo_root), (_, rendered)] = sources();
    assert!(!names(&repo_root).is_empty(), "no Tasks under tasks/");
    assert_eq!(
        names(&repo_root),
        names(&rendered),
        "the chart renders every Task"
    );
    sources()
        .iter()
        .flat_map(|(source, root)| {
            task_files(root).into_iter().map(move |p| {
                let name = format!(
                    "{source} tasks/{}",
                    p.file_name().unwrap().to_string_lossy()
                );
                (name, load(&p))
            })
        })
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `--flag` names in a binary's `--help`.
fn help_flags(bin: &str) -> BTreeSet<String> {
    let path = bin_dir().join(bin);
    assert!(
        path.is_file(),
        "{} is not a step binary built by ct_testkit::step_binaries",
        path.display()
    );
    let out = Command::new(&path).arg("--help").output().unwrap();
    assert!(out.status.success(), "{bin} --help failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let re = regex::Regex::new(r"--([a-z0-9][a-z0-9-]*)").unwrap();
    re.captures_iter(&text).map(|c| c[1].to_string()).collect()
}

/// `CT_KFP_URL` → `kfp-url`.
fn env_flag(name: &str) -> Option<String> {
    name.strip_prefix("CT_")
        .map(|rest| rest.to_ascii_lowercase().replace('_', "-"))
}

/// The binary a step runs, when it is one of ours.
fn our_binary(step: &Value) -> Option<String> {
    let cmd = strings(&step["command"]);
    cmd.first()
        .and_then(|c| c.strip_prefix("/usr/local/bin/"))
        .map(str::to_string)
}

/// A step of a Task that runs one of our binaries.
struct OurStep {
    /// The Task, for messages (`repository tasks/open-pr.yaml`).
    task: String,
    name: String,
    bin: String,
    args: Vec<String>,
    /// The environment variables it gets: the stepTemplate's, then its own.
    env: Vec<String>,
}

/// Every step of every Task (both sources) that runs one of our binaries.
fn our_steps() -> Vec<OurStep> {
    let mut out = Vec::new();
    for (task, doc) in tasks() {
        let spec = &doc["spec"];
        let names = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .map(|e| e["name"].as_str().unwrap().to_string())
                .collect()
        };
        let template_env = names(&spec["stepTemplate"]["env"]);
        for step in spec["steps"].as_array().unwrap() {
            let Some(bin) = our_binary(step) else {
                continue;
            };
            out.push(OurStep {
                task: task.clone(),
                name: step["name"].as_str().unwrap().to_string(),
                bin,
                args: strings(&step["args"]),
                env: [template_env.clone(), names(&step["env"])].concat(),
            });
        }
    }
    out
}

#[test]
fn every_flag_a_task_passes_exists_on_its_binary() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for step in our_steps() {
        let bin = &step.bin;
        let flags = help_flags(bin);
        let mut wanted = Vec::new();
        for arg in &step.args {
            if let Some(f) = arg.strip_prefix("--") {
                wanted.push((f.split('=').next().unwrap().to_string(), arg.clone()));
            }
        }
        for name in &step.env {
            if let Some(f) = env_flag(name) {
                wanted.push((f, format!("env {name}")));
            }
        }
        for (flag, source) in wanted {
            checked += 1;
            if !flags.contains(&flag) {
                problems.push(format!(
                    "{} step {}: {source} needs `{bin} --{flag}`, which `{bin} --help` does not list",
                    step.task, step.name
                ));
            }
        }
    }
    assert!(checked > 20, "only {checked} flags checked");
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn every_declared_result_is_written_by_the_tasks_binaries() {
    let mut problems = Vec::new();
    for (path, task) in tasks() {
        let spec = &task["spec"];
        let bins: Vec<String> = spec["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(our_binary)
            .collect();
        if bins.is_empty() {
            continue;
        }
        let mut sources = String::new();
        for b in &bins {
            let mut files = Vec::new();
            rs_files(&repo().join("crates").join(b).join("src"), &mut files);
            assert!(!files.is_empty(), "no source for {b}");
            for f in files {
                sources.push_str(&std::fs::read_to_string(f).unwrap());
            }
        }
        for r in spec["results"].as_array().into_iter().flatten() {
            let name = r["name"].as_str().unwrap();
            if !sources.contains(&format!("\"{name}\"")) {
                problems.push(format!(
                    "{}: result {name} is written by none of {}",
                    path,
                    bins.join(", ")
                ));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn tasks_follow_the_image_and_security_rules() {
    let kebab = regex::Regex::new(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$").unwrap();
    let mut problems = Vec::new();
    for (path, task) in tasks() {
        let f = path;
        let mut bad = |m: String| problems.push(format!("{f}: {m}"));
        if task["apiVersion"] != "tekton.dev/v1" || task["kind"] != "Task" {
            bad("not a tekton.dev/v1 Task".into());
        }
        let spec = &task["spec"];
        let params = spec["params"].as_array().cloned().unwrap_or_default();
        for p in &params {
            let n = p["name"].as_str().unwrap_or("");
            if !kebab.is_match(n) {
                bad(format!("param {n} is not kebab-case"));
            }
        }
        let tpl = &spec["stepTemplate"];
        // One image for every step: a param with a pinned default.
        let image = tpl["image"].as_str().unwrap_or("");
        let image_param = image
            .strip_prefix("$(params.")
            .and_then(|s| s.strip_suffix(')'));
        match image_param.and_then(|ip| params.iter().find(|p| p["name"] == ip)) {
            Some(p) => {
                let d = p["default"].as_str().unwrap_or("");
                let pinned = d.contains("@sha256:")
                    || d.rsplit_once(':')
                        .is_some_and(|(_, tag)| !tag.contains('/') && tag != "latest");
                if !pinned {
                    bad(format!("image default {d:?} is not pinned (tag or digest)"));
                }
            }
            None => bad("stepTemplate.image is not a param with a default".into()),
        }
        let sc = &tpl["securityContext"];
        if sc["runAsNonRoot"] != true {
            bad("securityContext.runAsNonRoot is not true".into());
        }
        if sc["allowPrivilegeEscalation"] != false {
            bad("securityContext.allowPrivilegeEscalation is not false".into());
        }
        if strings(&sc["capabilities"]["drop"]) != ["ALL"] {
            bad("securityContext.capabilities.drop is not [ALL]".into());
        }
        if sc["seccompProfile"]["type"] != "RuntimeDefault" {
            bad("securityContext.seccompProfile is not RuntimeDefault".into());
        }
        for fixed in ["runAsUser", "runAsGroup", "fsGroup"] {
            if !sc[fixed].is_null() {
                bad(format!(
                    "securityContext.{fixed} is set (restricted-v2 assigns it)"
                ));
            }
        }
        let home = tpl["env"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["name"] == "HOME");
        if home.map(|h| &h["value"]) != Some(&Value::from("/tekton/home")) {
            bad("HOME is not /tekton/home".into());
        }
        let res = &tpl["computeResources"];
        if res["requests"]["cpu"].is_null()
            || res["requests"]["memory"].is_null()
            || res["limits"]["memory"].is_null()
        {
            bad("computeResources lacks requests (cpu, memory) or a memory limit".into());
        }
        for step in spec["steps"].as_array().into_iter().flatten() {
            let name = step["name"].as_str().unwrap_or("");
            if !step["script"].is_null() {
                bad(format!("step {name} uses script"));
            }
            if !step["image"].is_null() {
                bad(format!("step {name} overrides the stepTemplate image"));
            }
            let cmd = strings(&step["command"]);
            match cmd.first().map(String::as_str) {
                None => bad(format!("step {name} has no command")),
                Some(c) if ["sh", "bash", "/bin/sh", "/bin/bash"].contains(&c) => {
                    bad(format!("step {name} runs a shell"))
                }
                Some(_) => {}
            }
            if cmd.len() > 1 && our_binary(step).is_some() {
                bad(format!("step {name}: command must be only the binary"));
            }
            // Params reach the binary only through args or env (nothing else may hold them).
            let mut rest = step.clone();
            for k in ["args", "env", "name", "command", "workingDir"] {
                rest.as_object_mut().unwrap().remove(k);
            }
            if rest.to_string().contains("$(params.") {
                bad(format!(
                    "step {name} uses params outside args/env/workingDir"
                ));
            }
            for e in step["env"].as_array().into_iter().flatten() {
                if e.get("valueFrom")
                    .is_some_and(|v| v.get("secretKeyRef").is_none())
                {
                    bad(format!(
                        "step {name}: env {} valueFrom is not a secretKeyRef",
                        e["name"]
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn one_document_per_file_and_every_task_ref_resolves() {
    let kebab = regex::Regex::new(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$").unwrap();
    for (source, root) in sources() {
        let mut files = Vec::new();
        yaml_files(&root.join("pipeline"), &mut files);
        yaml_files(&root.join("tasks"), &mut files);
        for f in &files {
            let _ = load(f);
        }
        // Loading checks every taskRef, param, workspace and result reference.
        let bundle = ct_tekton_interpreter::load(
            &root.join("pipeline/ct-pipeline.yaml"),
            &root.join("tasks"),
        )
        .unwrap_or_else(|e| panic!("{source}: {e}"));
        for pt in bundle
            .pipeline
            .spec
            .tasks
            .iter()
            .chain(&bundle.pipeline.spec.finally)
        {
            bundle
                .resolve(pt)
                .unwrap_or_else(|e| panic!("{source}: pipeline task {}: {e}", pt.name));
        }
        for p in &bundle.pipeline.spec.params {
            assert!(
                kebab.is_match(&p.name),
                "{source}: pipeline param {} is not kebab-case",
                p.name
            );
        }
    }
}

/// The list variables of every step binary (`ct_step::cli::env_list_vars` of its flags). A new
/// step binary gets a line here; the test below fails until it has one.
fn list_vars(bin: &str) -> Option<Vec<String>> {
    use clap::CommandFactory;
    let cmd = match bin {
        "execute-ds-pipeline" => execute_ds_pipeline::Args::command(),
        "wait-kfp-run" => wait_kfp_run::Args::command(),
        "write-registry-metadata" => write_registry_metadata::Args::command(),
        "bump-gitops-version" => bump_gitops_version::Args::command(),
        "open-pr" => open_pr::Args::command(),
        "resolve-version" => resolve_version::Args::command(),
        _ => return None,
    };
    Some(ct_step::cli::env_list_vars(&cmd))
}

#[test]
fn no_task_sets_a_list_variable_of_its_steps() {
    let mut problems = Vec::new();
    let mut lists = std::collections::BTreeMap::new();
    for step in our_steps() {
        let vars = list_vars(&step.bin).unwrap_or_else(|| {
            panic!(
                "{}: {} is not in list_vars(): add its Args there",
                step.task, step.bin
            )
        });
        for name in step.env.iter().filter(|n| vars.contains(n)) {
            problems.push(format!(
                "{} step {}: {name} is a list of `{}` (one value per line): pass the param as an argument of its single-value flag",
                step.task, step.name, step.bin
            ));
        }
        lists.insert(step.bin, vars);
    }
    // The audit covers every list variable there is (and would notice one more).
    let expected: Vec<(&str, Vec<&str>)> = vec![
        ("bump-gitops-version", vec!["CT_SET"]),
        ("execute-ds-pipeline", vec!["CT_PARAM"]),
        ("open-pr", vec!["CT_ASSIGNEE", "CT_LABEL"]),
        ("resolve-version", vec![]),
        ("wait-kfp-run", vec![]),
        ("write-registry-metadata", vec!["CT_PROPERTY"]),
    ];
    let got: Vec<(&str, Vec<&str>)> = lists
        .iter()
        .map(|(b, v)| (b.as_str(), v.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(got, expected);
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn every_task_has_an_example_taskrun_that_binds_it_correctly() {
    for (path, task) in tasks() {
        if !path.starts_with("repository") {
            continue;
        }
        let name = task["metadata"]["name"].as_str().unwrap();
        let ex = repo().join(format!("tasks/examples/{name}-taskrun.yaml"));
        assert!(ex.is_file(), "{path}: no example {}", ex.display());
        let tr = load(&ex);
        assert_eq!(tr["kind"], "TaskRun");
        assert_eq!(tr["spec"]["taskRef"]["name"], name);
        let declared: Vec<&Value> = task["spec"]["params"].as_array().unwrap().iter().collect();
        let given: Vec<&str> = tr["spec"]["params"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for g in &given {
            assert!(
                declared.iter().any(|d| d["name"] == *g),
                "{}: param {g} is not declared by {name}",
                ex.display()
            );
        }
        for d in &declared {
            let n = d["name"].as_str().unwrap();
            assert!(
                d.get("default").is_some() || given.contains(&n),
                "{}: required param {n} missing",
                ex.display()
            );
        }
        let bound: Vec<&str> = tr["spec"]["workspaces"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| w["name"].as_str().unwrap())
            .collect();
        for w in task["spec"]["workspaces"].as_array().into_iter().flatten() {
            let n = w["name"].as_str().unwrap();
            assert!(
                w["optional"] == true || bound.contains(&n),
                "{}: workspace {n} not bound",
                ex.display()
            );
        }
    }
}
