//! Loading: the Pipeline file and the Tasks of a directory, and the static checks done before
//! anything runs (every task resolvable, params and workspaces consistent, every result
//! reference naming a declared result, the DAG acyclic).
//! What the runner cannot honour locally (`script`, StepActions, `envFrom`, sidecars, `matrix`,
//! embedded `taskSpec`, unknown resolver refs) is refused here with a message.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::Error;
use crate::dag::{ResultRef, dag_order, result_refs};
use crate::model::{ParamValue, Pipeline, PipelineTask, Task, TaskSpec};
use crate::standin::StandIn;
use crate::subst::references;

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

    /// The binaries the Tasks' steps run from `/usr/local/bin` (what the bin directory of a
    /// local run must hold), by name.
    pub fn binaries(&self) -> BTreeSet<String> {
        self.tasks
            .values()
            .flat_map(|t| {
                let template = t.spec.step_template.as_ref();
                t.spec.steps.iter().filter_map(move |s| {
                    let command = match s.command.first() {
                        Some(c) => Some(c),
                        None => template.and_then(|t| t.command.as_ref()?.first()),
                    };
                    command?.strip_prefix("/usr/local/bin/").map(str::to_string)
                })
            })
            .collect()
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
            for r in result_refs(pt) {
                self.check_task_result_ref(pt, &r)?;
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
        self.check_pipeline_results()
    }

    /// Tekton's `ValidatePipelineTaskResults` (the PipelineRun fails at start with
    /// `InvalidTaskResultReference`): a PipelineTask, in `tasks` or `finally`, may reference only
    /// results that a task of `tasks` declares.
    fn check_task_result_ref(&self, pt: &PipelineTask, r: &ResultRef) -> Result<(), Error> {
        let at = |what: String| {
            Error::new(format!(
                "pipeline task {}: InvalidTaskResultReference: {r}: {what}",
                pt.name
            ))
        };
        if r.finally {
            return Err(at(
                "only Pipeline results may reference finally tasks".into()
            ));
        }
        let spec = &self.pipeline.spec;
        let Some(parent) = spec.tasks.iter().find(|t| t.name == r.task) else {
            return Err(at(if spec.finally.iter().any(|t| t.name == r.task) {
                format!(
                    "{} is a finally task; its results cannot be referenced",
                    r.task
                )
            } else {
                format!("referenced pipeline task {} does not exist", r.task)
            }));
        };
        self.check_declared(parent, r).map_err(at)
    }

    /// Whether the Task that `producer` runs declares the result `r` names.
    fn check_declared(&self, producer: &PipelineTask, r: &ResultRef) -> Result<(), String> {
        let imp = self.resolve(producer).map_err(|e| e.to_string())?;
        let declared: Vec<String> = imp.spec().results.into_iter().map(|d| d.name).collect();
        if declared.contains(&r.result) {
            return Ok(());
        }
        Err(format!(
            "{} is not a named result returned by pipeline task {} (Task {} declares {})",
            r.result,
            r.task,
            imp.task_name(),
            if declared.is_empty() {
                "no results".to_string()
            } else {
                declared.join(", ")
            }
        ))
    }

    /// Pipeline `results`, checked as Tekton does before anything runs (the PipelineRun fails
    /// with `InvalidPipelineResultReference`): every value is made of task result references
    /// (`$(tasks.X.results.Y)`, or `$(finally.X.results.Y)` for a finally task), and X declares Y.
    /// Whether the results were written is checked at the end of the run
    /// (`CouldntGetPipelineResult`).
    fn check_pipeline_results(&self) -> Result<(), Error> {
        let spec = &self.pipeline.spec;
        for res in &spec.results {
            let at = |what: String| {
                Error::new(format!(
                    "pipeline result {}: InvalidPipelineResultReference: {what}",
                    res.name
                ))
            };
            let ParamValue::Str(value) = &res.value else {
                return Err(at("only string results are supported locally".into()));
            };
            let refs = references(value);
            if refs.is_empty() {
                return Err(at(format!(
                    "{value:?} holds no task result reference; write $(tasks.<task>.results.<result>)"
                )));
            }
            for key in refs {
                let r = ResultRef::parse(&key).ok_or_else(|| {
                    at(format!(
                        "$({key}) is not a task result reference (a Pipeline result holds only $(tasks.<task>.results.<result>) or $(finally.<task>.results.<result>))"
                    ))
                })?;
                let pool = if r.finally {
                    &spec.finally
                } else {
                    &spec.tasks
                };
                let producer = pool.iter().find(|t| t.name == r.task).ok_or_else(|| {
                    at(format!(
                        "{r}: referenced {} task {} does not exist",
                        if r.finally { "finally" } else { "pipeline" },
                        r.task
                    ))
                })?;
                self.check_declared(producer, &r)
                    .map_err(|m| at(format!("{r}: {m}")))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> PathBuf {
        ct_testkit::repo_root()
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
        assert!(pos("fetch-source") < pos("resolve-version"));
        assert!(pos("resolve-version") < pos("train"));
        assert!(pos("train") < pos("build-modelcar"));
        assert!(pos("deploy-test") < pos("update-model-metadata"));
        assert!(pos("promote-prod") < pos("open-prod-pr"));
        assert_eq!(
            b.binaries().into_iter().collect::<Vec<_>>(),
            [
                "bump-gitops-version",
                "execute-ds-pipeline",
                "open-pr",
                "resolve-version",
                "wait-kfp-run",
                "write-registry-metadata"
            ]
        );
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
}
