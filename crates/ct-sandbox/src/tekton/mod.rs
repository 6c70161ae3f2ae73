//! A local Tekton interpreter for `pipeline/ct-pipeline.yaml` and `tasks/*.yaml`.
//!
//! It runs a `tekton.dev/v1` Pipeline on this machine the way the Tekton controller would, for the
//! parts that have a local meaning:
//!
//! - DAG order from `runAfter` and `$(tasks.X.results.Y)` references; once a task fails no new
//!   task starts; `finally` tasks run afterwards and see `$(tasks.status)`, `$(tasks.X.status)` and
//!   any results the tasks wrote (also failed ones);
//! - `when` (`in` / `notin`): a skipped task's `runAfter` dependents still run, its result
//!   consumers are skipped;
//! - substitution of `$(params.*)` (string, array `[*]`, object), `$(tasks.*.results.*)`,
//!   `$(results.*.path)`, `$(workspaces.*.path|bound)`, `$(context.pipelineRun.name|uid|namespace)`,
//!   `$(context.taskRun.name|uid|namespace)`, `$(context.task.name)`; an unresolvable reference is
//!   an error, never an empty string;
//! - steps whose command is `/usr/local/bin/<name>` run the real binary `<name>` from a local
//!   directory with the step's args and env, in a clean environment; `/tekton/results` and
//!   `/tekton/home` in args and env map to the TaskRun's own directories; a workspace is a local
//!   directory; results are read from the TaskRun's results directory after the steps;
//! - the catalog Tasks taken through the cluster resolver (`git-clone`, `buildah`) are replaced by
//!   clearly labelled stand-ins ([`standin`]).
//!
//! Not covered locally: images, pods and their securityContext, compute resources, timeouts,
//! retries, cancellation, sidecars, `script` steps, `valueFrom` env, readOnly enforcement of
//! workspaces, and parallel execution (independent tasks run one after the other).

pub mod model;
pub mod runner;
pub mod standin;
pub mod subst;
pub mod trigger;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

pub use model::{ParamValue, Pipeline, PipelineTask, Task, TaskSpec};
pub use runner::{
    Binding, Observer, PipelineRunReport, RunOptions, RunStatus, StepReport, TaskRunReport,
    TaskStatus, run,
};
pub use standin::StandIn;

/// A load or run-setup error: one line naming the file or input and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    pub fn new(msg: impl Into<String>) -> Self {
        Error(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// A Pipeline and the Tasks it can reference by name.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub pipeline: Pipeline,
    pub tasks: BTreeMap<String, Task>,
    /// Where each Task came from (for messages).
    pub task_files: BTreeMap<String, PathBuf>,
}

/// What a PipelineTask runs.
#[derive(Debug, Clone, Copy)]
pub enum TaskImpl<'a> {
    Local(&'a Task),
    StandIn(StandIn),
}

impl TaskImpl<'_> {
    pub fn task_name(&self) -> String {
        match self {
            TaskImpl::Local(t) => t.metadata.name.clone(),
            TaskImpl::StandIn(s) => s.catalog_name().to_string(),
        }
    }

    /// The Task's interface (params, workspaces, results).
    pub fn spec(&self) -> TaskSpec {
        match self {
            TaskImpl::Local(t) => t.spec.clone(),
            TaskImpl::StandIn(s) => s.spec(),
        }
    }
}

fn read_doc<T: serde::de::DeserializeOwned>(path: &Path, kind: &str) -> Result<T, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::new(format!("{}: {e}", path.display())))?;
    let v: serde_json::Value = serde_yaml_ng::from_str(&text)
        .map_err(|e| Error::new(format!("{}: not one YAML document: {e}", path.display())))?;
    let api = v.get("apiVersion").and_then(|x| x.as_str()).unwrap_or("");
    let k = v.get("kind").and_then(|x| x.as_str()).unwrap_or("");
    if api != "tekton.dev/v1" || k != kind {
        return Err(Error::new(format!(
            "{}: expected apiVersion tekton.dev/v1 kind {kind}, found {api} {k}",
            path.display()
        )));
    }
    serde_json::from_value(v).map_err(|e| Error::new(format!("{}: {e}", path.display())))
}

/// Load the Pipeline file and every `*.yaml` Task in `tasks_dir`, and check that the Pipeline
/// can run locally (every task resolvable, params and workspaces consistent, DAG acyclic).
pub fn load(pipeline: &Path, tasks_dir: &Path) -> Result<Bundle, Error> {
    let pipeline: Pipeline = read_doc(pipeline, "Pipeline")?;
    let mut tasks = BTreeMap::new();
    let mut task_files = BTreeMap::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(tasks_dir)
        .map_err(|e| Error::new(format!("{}: {e}", tasks_dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    entries.sort();
    for path in entries {
        let task: Task = read_doc(&path, "Task")?;
        check_task(&task, &path)?;
        if let Some(prev) = task_files.insert(task.metadata.name.clone(), path.clone()) {
            return Err(Error::new(format!(
                "Task {} is defined twice: {} and {}",
                task.metadata.name,
                prev.display(),
                path.display()
            )));
        }
        tasks.insert(task.metadata.name.clone(), task);
    }
    let bundle = Bundle {
        pipeline,
        tasks,
        task_files,
    };
    bundle.check()?;
    Ok(bundle)
}

fn check_task(task: &Task, path: &Path) -> Result<(), Error> {
    let at = |what: &str| Error::new(format!("{}: {what}", path.display()));
    if task.spec.sidecars.is_some() {
        return Err(at("sidecars are not supported by the local runner"));
    }
    if task.spec.steps.is_empty() {
        return Err(at("the Task has no steps"));
    }
    for s in &task.spec.steps {
        if s.script.is_some() {
            return Err(at(&format!(
                "step {}: `script` is not supported (and not allowed in ct-steps Tasks): use command + args",
                s.name
            )));
        }
        if s.step_ref.is_some() {
            return Err(at(&format!(
                "step {}: StepAction refs are not supported",
                s.name
            )));
        }
        if s.env_from.is_some() {
            return Err(at(&format!("step {}: envFrom is not supported", s.name)));
        }
    }
    Ok(())
}

impl Bundle {
    /// What `pt` runs: a Task from `tasks/` by name or a stand-in for a resolver ref.
    pub fn resolve(&self, pt: &PipelineTask) -> Result<TaskImpl<'_>, Error> {
        let Some(r) = &pt.task_ref else {
            return Err(Error::new(format!(
                "pipeline task {}: only taskRef is supported (no embedded taskSpec)",
                pt.name
            )));
        };
        if let Some(resolver) = &r.resolver {
            let name = r.resolver_param("name").unwrap_or("");
            return StandIn::for_catalog_task(name)
                .map(TaskImpl::StandIn)
                .ok_or_else(|| {
                    Error::new(format!(
                        "pipeline task {}: {resolver} resolver ref to {name:?} needs a cluster (local stand-ins exist for git-clone and buildah)",
                        pt.name
                    ))
                });
        }
        let name = r.name.as_deref().unwrap_or("");
        self.tasks.get(name).map(TaskImpl::Local).ok_or_else(|| {
            Error::new(format!(
                "pipeline task {}: Task {name:?} not found among {}",
                pt.name,
                self.tasks.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }

    /// Static checks done before anything runs.
    pub fn check(&self) -> Result<(), Error> {
        let spec = &self.pipeline.spec;
        let mut names = BTreeSet::new();
        for pt in spec.tasks.iter().chain(spec.finally.iter()) {
            if !names.insert(pt.name.as_str()) {
                return Err(Error::new(format!(
                    "pipeline task {} is defined twice",
                    pt.name
                )));
            }
        }
        for pt in spec.tasks.iter().chain(spec.finally.iter()) {
            if pt.matrix.is_some() {
                return Err(Error::new(format!(
                    "pipeline task {}: matrix is not supported locally",
                    pt.name
                )));
            }
            let imp = self.resolve(pt)?;
            let ts = imp.spec();
            for p in &pt.params {
                if !ts.params.iter().any(|d| d.name == p.name) {
                    return Err(Error::new(format!(
                        "pipeline task {}: param {} is not declared by Task {}",
                        pt.name,
                        p.name,
                        imp.task_name()
                    )));
                }
            }
            for d in &ts.params {
                if d.default.is_none() && !pt.params.iter().any(|p| p.name == d.name) {
                    return Err(Error::new(format!(
                        "pipeline task {}: Task {} requires param {}",
                        pt.name,
                        imp.task_name(),
                        d.name
                    )));
                }
            }
            for b in &pt.workspaces {
                if !ts.workspaces.iter().any(|w| w.name == b.name) {
                    return Err(Error::new(format!(
                        "pipeline task {}: workspace {} is not declared by Task {}",
                        pt.name,
                        b.name,
                        imp.task_name()
                    )));
                }
                if let Some(pw) = &b.workspace
                    && !spec.workspaces.iter().any(|w| &w.name == pw)
                {
                    return Err(Error::new(format!(
                        "pipeline task {}: pipeline workspace {pw} does not exist",
                        pt.name
                    )));
                }
            }
            for w in &ts.workspaces {
                if !w.optional && !pt.workspaces.iter().any(|b| b.name == w.name) {
                    return Err(Error::new(format!(
                        "pipeline task {}: Task {} requires workspace {}",
                        pt.name,
                        imp.task_name(),
                        w.name
                    )));
                }
            }
            for dep in runner::result_dependencies(pt) {
                let Some(parent) = spec.tasks.iter().find(|t| t.name == dep) else {
                    return Err(Error::new(format!(
                        "pipeline task {}: references results of unknown task {dep}",
                        pt.name
                    )));
                };
                let _ = parent;
            }
        }
        for pt in &spec.finally {
            if !pt.run_after.is_empty() {
                return Err(Error::new(format!(
                    "finally task {}: runAfter is not allowed in finally",
                    pt.name
                )));
            }
        }
        dag_order(&spec.tasks)?;
        Ok(())
    }
}

/// Indices of `tasks` in an order that respects `runAfter` and result references (stable:
/// among ready tasks, declaration order).
pub fn dag_order(tasks: &[PipelineTask]) -> Result<Vec<usize>, Error> {
    let index: BTreeMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    let mut deps: Vec<BTreeSet<usize>> = Vec::with_capacity(tasks.len());
    for t in tasks {
        let mut d = BTreeSet::new();
        for a in t
            .run_after
            .iter()
            .cloned()
            .chain(runner::result_dependencies(t))
        {
            match index.get(a.as_str()) {
                Some(&i) => {
                    d.insert(i);
                }
                None => {
                    return Err(Error::new(format!(
                        "pipeline task {}: depends on unknown task {a}",
                        t.name
                    )));
                }
            }
        }
        deps.push(d);
    }
    let mut done = vec![false; tasks.len()];
    let mut order = Vec::with_capacity(tasks.len());
    while order.len() < tasks.len() {
        let next = (0..tasks.len()).find(|&i| !done[i] && deps[i].iter().all(|&d| done[d]));
        match next {
            Some(i) => {
                done[i] = true;
                order.push(i);
            }
            None => {
                let stuck: Vec<&str> = (0..tasks.len())
                    .filter(|&i| !done[i])
                    .map(|i| tasks[i].name.as_str())
                    .collect();
                return Err(Error::new(format!(
                    "pipeline tasks form a cycle: {}",
                    stuck.join(", ")
                )));
            }
        }
    }
    Ok(order)
}

/// Parse `K=V` (a `--param`; string params only).
pub fn parse_param(s: &str) -> Result<(String, ParamValue), Error> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| Error::new(format!("--param {s}: write KEY=VALUE")))?;
    if k.is_empty() {
        return Err(Error::new(format!("--param {s}: empty KEY")));
    }
    Ok((k.to_string(), ParamValue::Str(v.to_string())))
}

/// Parse `NAME=DIR` or `NAME=emptyDir` (a `--workspace`).
pub fn parse_workspace(s: &str) -> Result<(String, Binding), Error> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| Error::new(format!("--workspace {s}: write NAME=DIR or NAME=emptyDir")))?;
    if k.is_empty() || v.is_empty() {
        return Err(Error::new(format!(
            "--workspace {s}: write NAME=DIR or NAME=emptyDir"
        )));
    }
    let b = if v == "emptyDir" {
        Binding::Fresh
    } else {
        Binding::Dir(PathBuf::from(v))
    };
    Ok((k.to_string(), b))
}

/// The repository root when running from a checkout: the nearest ancestor of `start` with
/// `pipeline/ct-pipeline.yaml`.
pub fn find_repo_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|d| d.join("pipeline/ct-pipeline.yaml").is_file() && d.join("tasks").is_dir())
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> PathBuf {
        find_repo_root(Path::new(env!("CARGO_MANIFEST_DIR"))).expect("repo root")
    }

    #[test]
    fn loads_the_real_pipeline_in_dag_order() {
        let r = repo();
        let b = load(&r.join("pipeline/ct-pipeline.yaml"), &r.join("tasks")).unwrap();
        let order: Vec<&str> = dag_order(&b.pipeline.spec.tasks)
            .unwrap()
            .into_iter()
            .map(|i| b.pipeline.spec.tasks[i].name.as_str())
            .collect();
        let pos = |n: &str| order.iter().position(|x| *x == n).unwrap();
        assert!(pos("fetch-source") < pos("train"));
        assert!(pos("train") < pos("build-modelcar"));
        assert!(pos("deploy-test") < pos("update-model-metadata"));
        assert!(pos("promote-prod") < pos("open-prod-pr"));
        assert!(matches!(
            b.resolve(&b.pipeline.spec.tasks[pos_of(&b, "fetch-source")])
                .unwrap(),
            TaskImpl::StandIn(StandIn::GitClone)
        ));
    }

    fn pos_of(b: &Bundle, n: &str) -> usize {
        b.pipeline
            .spec
            .tasks
            .iter()
            .position(|t| t.name == n)
            .unwrap()
    }

    #[test]
    fn rejects_cycles_and_unknown_deps() {
        let y = |s: &str| -> Vec<PipelineTask> { serde_yaml_ng::from_str(s).unwrap() };
        let cyc = y(
            "- {name: a, taskRef: {name: t}, runAfter: [b]}\n- {name: b, taskRef: {name: t}, runAfter: [a]}\n",
        );
        assert!(dag_order(&cyc).unwrap_err().to_string().contains("cycle"));
        let unk = y(
            "- {name: a, taskRef: {name: t}, params: [{name: p, value: $(tasks.zz.results.R)}]}\n",
        );
        assert!(dag_order(&unk).unwrap_err().to_string().contains("zz"));
    }

    #[test]
    fn parses_cli_bindings() {
        assert_eq!(
            parse_param("version=abc=1").unwrap(),
            ("version".into(), ParamValue::Str("abc=1".into()))
        );
        assert!(parse_param("novalue").is_err());
        assert_eq!(
            parse_workspace("source=emptyDir").unwrap().1,
            Binding::Fresh
        );
        assert!(parse_workspace("source=").is_err());
    }
}

#[cfg(test)]
mod semantics_tests;
