//! One PipelineTask's TaskRun: `when`, params, workspaces and results of the Task, then its
//! steps (or its stand-in), with the PipelineTask's timeout and the run's cancel flag.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::step::{PathMap, StepContext};
use super::{RunOptions, SkipReason, StepReport, TaskRunReport, TaskStatus, bind_param};
use crate::dag::result_refs;
use crate::model::{ParamValue, PipelineTask, TaskSpec};
use crate::standin;
use crate::subst::{Scope, Unresolved};
use crate::{Bundle, TaskImpl};

/// How a TaskRun that did not succeed ended.
pub(super) enum Failure {
    /// Its steps failed: the pod finished and Tekton reads the results it wrote.
    Failed(String),
    /// Timeout or cancel: Tekton deletes the pod (`failTaskRun`) and publishes no results.
    PodDeleted(String),
}

impl From<String> for Failure {
    fn from(msg: String) -> Self {
        Failure::Failed(msg)
    }
}

/// How a TaskRun that left a result unwritten ended, for a message.
fn what_happened(status: &TaskStatus) -> String {
    match status {
        TaskStatus::Succeeded => "did not write it".into(),
        TaskStatus::Failed(why) => format!("failed without it ({why})"),
        TaskStatus::Skipped(skip) => format!("was skipped: {}", skip.reason.tekton()),
        TaskStatus::NotRun => "did not run".into(),
    }
}

pub(super) struct Ctx<'a> {
    pub bundle: &'a Bundle,
    pub opts: &'a RunOptions,
    pub ws: &'a BTreeMap<String, PathBuf>,
    pub pr_name: &'a str,
    /// Cancels the running step (the DAG tasks share the run's flag; finally tasks have their own).
    pub cancel: Arc<std::sync::atomic::AtomicBool>,
}

impl Ctx<'_> {
    fn report(&self, pt: &PipelineTask, fin: bool, status: TaskStatus) -> TaskRunReport {
        let imp = self.bundle.resolve(pt).ok();
        TaskRunReport {
            name: pt.name.clone(),
            task: imp.map(|i| i.task_name()).unwrap_or_default(),
            finally: fin,
            status,
            stand_in: imp.and_then(|i| match i {
                TaskImpl::StandIn(s) => Some(s.label().to_string()),
                TaskImpl::Local(_) => None,
            }),
            steps: Vec::new(),
            results: BTreeMap::new(),
            dir: self.opts.run_dir.join("tasks").join(&pt.name),
        }
    }

    pub fn not_run(&self, pt: &PipelineTask) -> TaskRunReport {
        self.report(pt, false, TaskStatus::NotRun)
    }

    pub fn skipped(&self, pt: &PipelineTask, status: TaskStatus) -> TaskRunReport {
        self.report(pt, false, status)
    }

    /// Tekton's `skipBecauseResultReferencesAreMissing`, and the start-time failure it leaves
    /// to the DAG: a result `pt` references is missing. A finally task is skipped; a DAG task is
    /// skipped when the producer was skipped by its own `when`, and fails
    /// (`InvalidTaskResultReference`) when the producer succeeded without writing it.
    fn missing_result(
        &self,
        pt: &PipelineTask,
        reports: &BTreeMap<String, TaskRunReport>,
        fin: bool,
    ) -> Option<TaskStatus> {
        result_refs(pt).into_iter().find_map(|r| {
            let parent = reports.get(&r.task)?;
            if parent.results.contains_key(&r.result) {
                return None;
            }
            Some(match &parent.status {
                TaskStatus::Succeeded if !fin => TaskStatus::Failed(format!(
                    "InvalidTaskResultReference: task {} succeeded but did not write result {}",
                    r.task, r.result
                )),
                status => TaskStatus::skipped(
                    SkipReason::MissingResults,
                    format!("{r}: task {} {}", r.task, what_happened(status)),
                ),
            })
        })
    }

    pub fn run_pipeline_task(
        &self,
        pt: &PipelineTask,
        scope: &Scope,
        reports: &BTreeMap<String, TaskRunReport>,
        fin: bool,
    ) -> TaskRunReport {
        let imp = match self.bundle.resolve(pt) {
            Ok(i) => i,
            Err(e) => return self.report(pt, fin, TaskStatus::Failed(e.to_string())),
        };
        let spec = imp.spec();
        // Tekton's order: missing results first, then `when`.
        if let Some(status) = self.missing_result(pt, reports, fin) {
            return self.report(pt, fin, status);
        }
        let unresolved = |u: Unresolved| TaskStatus::Failed(format!("cannot resolve {u}"));

        // when: all expressions must hold.
        for w in &pt.when {
            let (Some(input), Some(op)) = (&w.input, &w.operator) else {
                return self.report(
                    pt,
                    fin,
                    TaskStatus::Failed("when: only input/operator/values is supported".into()),
                );
            };
            let (input, values) = match (scope.substitute(input), scope.substitute_list(&w.values))
            {
                (Ok(i), Ok(v)) => (i, v),
                (Err(u), _) | (_, Err(u)) => return self.report(pt, fin, unresolved(u)),
            };
            let holds = match op.as_str() {
                "in" => values.contains(&input),
                "notin" => !values.contains(&input),
                other => {
                    return self.report(
                        pt,
                        fin,
                        TaskStatus::Failed(format!("when: unknown operator {other:?}")),
                    );
                }
            };
            if !holds {
                return self.report(
                    pt,
                    fin,
                    TaskStatus::skipped(SkipReason::When, format!("{input:?} {op} {values:?}")),
                );
            }
        }

        // Params: the PipelineTask's values (pipeline scope), then the Task's defaults.
        let mut given: BTreeMap<String, ParamValue> = BTreeMap::new();
        for p in &pt.params {
            let v = match &p.value {
                ParamValue::Str(s) => scope.substitute(s).map(ParamValue::Str),
                ParamValue::Array(a) => scope.substitute_list(a).map(ParamValue::Array),
                ParamValue::Object(o) => o
                    .iter()
                    .map(|(k, v)| scope.substitute(v).map(|v| (k.clone(), v)))
                    .collect::<Result<BTreeMap<_, _>, _>>()
                    .map(ParamValue::Object),
            };
            match v {
                Ok(v) => {
                    given.insert(p.name.clone(), v);
                }
                Err(u) => return self.report(pt, fin, unresolved(u)),
            }
        }

        self.opts.observer.task_started(
            &pt.name,
            match imp {
                TaskImpl::StandIn(s) => Some(s.label()),
                TaskImpl::Local(_) => None,
            },
        );
        let mut report = self.report(pt, fin, TaskStatus::Succeeded);
        match self.execute(pt, imp, &spec, &given, &mut report) {
            Ok(()) => {}
            Err(Failure::Failed(msg)) => report.status = TaskStatus::Failed(msg),
            Err(Failure::PodDeleted(msg)) => {
                // Timeout or cancel: Tekton deletes the pod and publishes no results.
                report.status = TaskStatus::Failed(msg);
                return report;
            }
        }
        // Whatever results were written (also after a failure: finally tasks may use them).
        let results_dir = report.dir.join("results");
        for r in &spec.results {
            if let Ok(v) = std::fs::read_to_string(results_dir.join(&r.name)) {
                report.results.insert(r.name.clone(), v);
            }
        }
        report
    }

    fn execute(
        &self,
        pt: &PipelineTask,
        imp: TaskImpl<'_>,
        spec: &TaskSpec,
        given: &BTreeMap<String, ParamValue>,
        report: &mut TaskRunReport,
    ) -> Result<(), Failure> {
        let dir = report.dir.clone();
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let results_dir = dir.join("results");
        let home = dir.join("home");
        let logs = dir.join("logs");
        for d in [&results_dir, &home, &logs] {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        let tr_name = format!("{}-{}", self.pr_name, pt.name);
        let tr_uid = uuid::Uuid::new_v4().to_string();

        let mut tscope = Scope::new();
        let mut flat_params = BTreeMap::new();
        for p in &spec.params {
            let v = given.get(&p.name).or(p.default.as_ref()).ok_or_else(|| {
                format!(
                    "param {} of Task {} has no value and no default",
                    p.name,
                    imp.task_name()
                )
            })?;
            bind_param(&mut tscope, p, v, &format!("Task {}", imp.task_name()))
                .map_err(|e| e.to_string())?;
            if let ParamValue::Str(s) = v {
                flat_params.insert(p.name.clone(), s.clone());
            }
        }
        for name in given.keys() {
            if !spec.params.iter().any(|p| &p.name == name) {
                return Err(
                    format!("param {name} is not declared by Task {}", imp.task_name()).into(),
                );
            }
        }
        let mut task_ws: BTreeMap<String, PathBuf> = BTreeMap::new();
        for w in &spec.workspaces {
            let binding = pt.workspaces.iter().find(|b| b.name == w.name);
            let path = binding
                .and_then(|b| b.workspace.as_ref())
                .and_then(|pw| self.ws.get(pw))
                .map(|p| match binding.and_then(|b| b.sub_path.as_ref()) {
                    Some(sub) => p.join(sub),
                    None => p.clone(),
                });
            match path {
                Some(p) => {
                    std::fs::create_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                    tscope.set(
                        format!("workspaces.{}.path", w.name),
                        p.to_string_lossy().into_owned(),
                    );
                    tscope.set(format!("workspaces.{}.bound", w.name), "true");
                    tscope.set(format!("workspaces.{}.claim", w.name), "");
                    tscope.set(format!("workspaces.{}.volume", w.name), &w.name);
                    task_ws.insert(w.name.clone(), p);
                }
                None if w.optional => {
                    tscope.set(format!("workspaces.{}.path", w.name), "");
                    tscope.set(format!("workspaces.{}.bound", w.name), "false");
                }
                None => {
                    return Err(format!(
                        "workspace {} of Task {} is not bound",
                        w.name,
                        imp.task_name()
                    )
                    .into());
                }
            }
        }
        for r in &spec.results {
            tscope.set(
                format!("results.{}.path", r.name),
                results_dir.join(&r.name).to_string_lossy().into_owned(),
            );
        }
        tscope.set("context.taskRun.name", &tr_name);
        tscope.set("context.taskRun.uid", &tr_uid);
        tscope.set("context.taskRun.namespace", &self.opts.namespace);
        tscope.set("context.task.name", imp.task_name());
        tscope.set("context.task.retry-count", "0");

        let paths = PathMap {
            results: results_dir.clone(),
            home: home.clone(),
        };

        match imp {
            TaskImpl::StandIn(kind) => {
                let log_path = logs.join(format!("{}.log", kind.catalog_name()));
                let observer = self.opts.observer.clone();
                let task_name = pt.name.clone();
                let mut log = |line: &str| {
                    standin::append_log(&log_path, line);
                    observer.line(&task_name, kind.catalog_name(), line);
                };
                let mut inv = standin::Invocation {
                    params: &flat_params,
                    workspaces: &task_ws,
                    results_dir: &results_dir,
                    home: &home,
                    log: &mut log,
                };
                let r = standin::run(kind, &mut inv);
                report.steps.push(StepReport {
                    name: kind.catalog_name().into(),
                    exit_code: if r.is_ok() { 0 } else { 1 },
                });
                Ok(r?)
            }
            TaskImpl::Local(task) => {
                let template = task.spec.step_template.clone().unwrap_or_default();
                let timeout =
                    match pt.timeout.as_deref() {
                        None | Some("0") | Some("0s") => None,
                        Some(t) => Some(ct_step::cli::parse_duration(t).map_err(|e| {
                            format!("timeout {t:?} of pipeline task {}: {e}", pt.name)
                        })?),
                    };
                let deadline = timeout.map(|t| std::time::Instant::now() + t);
                for step in &task.spec.steps {
                    let ctx = StepContext {
                        task: &pt.name,
                        template: &template,
                        scope: &tscope,
                        paths: &paths,
                        deadline,
                    };
                    let code =
                        self.run_step(step, &ctx, &logs.join(format!("{}.log", step.name)))?;
                    if self.cancel.load(std::sync::atomic::Ordering::SeqCst) {
                        report.steps.push(StepReport {
                            name: step.name.clone(),
                            exit_code: code,
                        });
                        return Err(Failure::PodDeleted(format!(
                            "TaskRunCancelled: the run was cancelled (step {} got SIGTERM, exit code {code})",
                            step.name
                        )));
                    }
                    if let Some(d) = deadline
                        && std::time::Instant::now() >= d
                    {
                        report.steps.push(StepReport {
                            name: step.name.clone(),
                            exit_code: code,
                        });
                        return Err(Failure::PodDeleted(format!(
                            "TaskRunTimeout: pipeline task {} exceeded its timeout of {} (step {} got SIGTERM, exit code {code})",
                            pt.name,
                            pt.timeout.as_deref().unwrap_or_default(),
                            step.name
                        )));
                    }
                    report.steps.push(StepReport {
                        name: step.name.clone(),
                        exit_code: code,
                    });
                    if code != 0 {
                        if step.on_error.as_deref() == Some("continue") {
                            continue;
                        }
                        return Err(format!("step {} exited with code {code}", step.name).into());
                    }
                }
                Ok(())
            }
        }
    }
}
