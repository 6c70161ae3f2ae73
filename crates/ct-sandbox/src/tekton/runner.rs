//! Runs a loaded Pipeline locally: DAG order, `when`, `finally`, substitution, steps as processes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use super::model::{EnvVar, ParamSpec, ParamValue, PipelineTask, Step, TaskSpec};
use super::standin;
use super::subst::{Scope, Unresolved, references};
use super::{Bundle, Error, TaskImpl};

/// How a pipeline workspace is bound for a local run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// An existing directory (a Secret's files, a prepared checkout…).
    Dir(PathBuf),
    /// A fresh empty directory under the run directory (emptyDir / volumeClaimTemplate).
    Fresh,
}

/// Receives progress while a pipeline runs. Every method has a no-op default.
pub trait Observer: Send + Sync {
    /// A PipelineTask starts (`stand_in` is set for catalog stand-ins).
    fn task_started(&self, _task: &str, _stand_in: Option<&str>) {}
    /// One line a step wrote (stdout or stderr).
    fn line(&self, _task: &str, _step: &str, _line: &str) {}
    /// A PipelineTask finished, was skipped or was not run.
    fn task_finished(&self, _report: &TaskRunReport) {}
}

/// Prints nothing.
pub struct Quiet;
impl Observer for Quiet {}

/// Everything a local run needs besides the Pipeline.
pub struct RunOptions {
    /// Pipeline params (`--param K=V`); defaults fill the rest.
    pub params: BTreeMap<String, ParamValue>,
    /// Pipeline workspace bindings.
    pub workspaces: BTreeMap<String, Binding>,
    /// Where the step binaries are (`/usr/local/bin/NAME` in a step runs `bin_dir/NAME`).
    pub bin_dir: PathBuf,
    /// Per-run directory: per-task results, home, logs and fresh workspaces go below it.
    pub run_dir: PathBuf,
    /// `$(context.pipelineRun.name)`; default `<pipeline>-run-<random>`.
    pub pipeline_run_name: Option<String>,
    /// `$(context.*.namespace)`.
    pub namespace: String,
    /// Extra environment for every step (e.g. `CT_LOG_LEVEL`), set before the step's own env.
    pub env: Vec<(String, String)>,
    /// Run a step whose command is not one of our binaries from the host PATH when it is there
    /// (e.g. `kfp` for kfp-compile). Off: such a step fails with a message.
    pub host_commands: bool,
    /// When a PipelineTask's `timeout` passes, the running step gets SIGTERM (as when Tekton
    /// deletes the pod) and SIGKILL this much later (the pod's termination grace period).
    pub kill_grace: std::time::Duration,
    /// Set to cancel the run (Ctrl-C), like a PipelineRun's `spec.status: CancelledRunFinally`:
    /// the running step gets SIGTERM (SIGKILL after `kill_grace`), no new task starts, the
    /// `finally` tasks run.
    pub cancel: Arc<std::sync::atomic::AtomicBool>,
    pub observer: Arc<dyn Observer>,
}

impl RunOptions {
    pub fn new(bin_dir: PathBuf, run_dir: PathBuf) -> Self {
        RunOptions {
            params: BTreeMap::new(),
            workspaces: BTreeMap::new(),
            bin_dir,
            run_dir,
            pipeline_run_name: None,
            namespace: "sandbox".into(),
            env: Vec::new(),
            host_commands: false,
            kill_grace: std::time::Duration::from_secs(30),
            cancel: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            observer: Arc::new(Quiet),
        }
    }
}

/// Outcome of one PipelineTask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskStatus {
    Succeeded,
    Failed(String),
    Skipped(String),
    /// Not started because an earlier task failed.
    NotRun,
}

impl TaskStatus {
    /// `$(tasks.<name>.status)`: Succeeded, Failed or None.
    pub fn tekton(&self) -> &'static str {
        match self {
            TaskStatus::Succeeded => "Succeeded",
            TaskStatus::Failed(_) => "Failed",
            TaskStatus::Skipped(_) | TaskStatus::NotRun => "None",
        }
    }
}

/// One step of a TaskRun.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    pub name: String,
    pub exit_code: i32,
}

/// One PipelineTask's TaskRun.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRunReport {
    pub name: String,
    pub task: String,
    pub finally: bool,
    pub status: TaskStatus,
    pub stand_in: Option<String>,
    pub steps: Vec<StepReport>,
    pub results: BTreeMap<String, String>,
    /// Directory with `results/`, `home/` and `logs/` of this TaskRun.
    pub dir: PathBuf,
}

/// Outcome of the PipelineRun.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    Succeeded,
    /// Succeeded with some tasks skipped.
    Completed,
    Failed,
}

/// The PipelineRun as run.
#[derive(Debug, Clone)]
pub struct PipelineRunReport {
    pub name: String,
    pub uid: String,
    pub status: RunStatus,
    pub tasks: Vec<TaskRunReport>,
    pub results: BTreeMap<String, String>,
    pub run_dir: PathBuf,
}

impl PipelineRunReport {
    pub fn task(&self, name: &str) -> Option<&TaskRunReport> {
        self.tasks.iter().find(|t| t.name == name)
    }

    pub fn succeeded(&self) -> bool {
        self.status != RunStatus::Failed
    }
}

/// Run `bundle`'s Pipeline with `opts`. `Err` means the run could not start (bad params,
/// unbound workspaces, a broken DAG); a failing task is reported in the returned report.
pub fn run(bundle: &Bundle, opts: &RunOptions) -> Result<PipelineRunReport, Error> {
    let pipeline = &bundle.pipeline;
    let spec = &pipeline.spec;
    let pr_name = opts.pipeline_run_name.clone().unwrap_or_else(|| {
        format!(
            "{}-run-{}",
            pipeline.metadata.name,
            &uuid::Uuid::new_v4().simple().to_string()[..5]
        )
    });
    let pr_uid = uuid::Uuid::new_v4().to_string();

    // Params: declared, typed, complete.
    for name in opts.params.keys() {
        if !spec.params.iter().any(|p| &p.name == name) {
            return Err(Error::new(format!(
                "--param {name}: the pipeline has no such param; declared: {}",
                spec.params
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let mut scope = Scope::new();
    for p in &spec.params {
        let v = opts
            .params
            .get(&p.name)
            .or(p.default.as_ref())
            .ok_or_else(|| {
                Error::new(format!(
                    "param {}: required by pipeline {} and not given; pass --param {}=VALUE",
                    p.name, pipeline.metadata.name, p.name
                ))
            })?;
        bind_param(&mut scope, p, v, "pipeline")?;
    }
    scope.set("context.pipelineRun.name", &pr_name);
    scope.set("context.pipelineRun.uid", &pr_uid);
    scope.set("context.pipelineRun.namespace", &opts.namespace);
    scope.set("context.pipeline.name", &pipeline.metadata.name);

    // Workspaces: all checked before anything is created.
    for w in &spec.workspaces {
        if !w.optional && !opts.workspaces.contains_key(&w.name) {
            return Err(Error::new(format!(
                "workspace {}: required by pipeline {}; pass --workspace {}=DIR (or =emptyDir)",
                w.name, pipeline.metadata.name, w.name
            )));
        }
        if let Some(Binding::Dir(d)) = opts.workspaces.get(&w.name)
            && !d.is_dir()
        {
            return Err(Error::new(format!(
                "--workspace {}={}: not a directory",
                w.name,
                d.display()
            )));
        }
    }
    for name in opts.workspaces.keys() {
        if !spec.workspaces.iter().any(|w| &w.name == name) {
            return Err(Error::new(format!(
                "--workspace {name}: the pipeline has no such workspace"
            )));
        }
    }
    std::fs::create_dir_all(&opts.run_dir)
        .map_err(|e| Error::new(format!("run dir {}: {e}", opts.run_dir.display())))?;
    let mut ws: BTreeMap<String, PathBuf> = BTreeMap::new();
    for w in &spec.workspaces {
        match opts.workspaces.get(&w.name) {
            Some(Binding::Dir(d)) => {
                if !d.is_dir() {
                    return Err(Error::new(format!(
                        "--workspace {}={}: not a directory",
                        w.name,
                        d.display()
                    )));
                }
                ws.insert(w.name.clone(), d.clone());
            }
            Some(Binding::Fresh) => {
                let d = opts.run_dir.join("workspaces").join(&w.name);
                std::fs::create_dir_all(&d).map_err(|e| Error::new(format!("{e}")))?;
                ws.insert(w.name.clone(), d);
            }
            None if w.optional => {}
            None => {
                return Err(Error::new(format!(
                    "workspace {}: required by pipeline {}; pass --workspace {}=DIR (or =emptyDir)",
                    w.name, pipeline.metadata.name, w.name
                )));
            }
        }
        scope.set(
            format!("workspaces.{}.bound", w.name),
            if ws.contains_key(&w.name) {
                "true"
            } else {
                "false"
            },
        );
    }

    let order = super::dag_order(&spec.tasks)?;
    let mut reports: BTreeMap<String, TaskRunReport> = BTreeMap::new();
    let mut failed = false;
    let ctx = Ctx {
        bundle,
        opts,
        ws: &ws,
        pr_name: &pr_name,
        cancel: opts.cancel.clone(),
    };

    for idx in order {
        let pt = &spec.tasks[idx];
        let report = if failed || opts.cancel.load(std::sync::atomic::Ordering::SeqCst) {
            ctx.not_run(pt)
        } else {
            let r = ctx.run_pipeline_task(pt, &scope, &reports, false);
            if matches!(r.status, TaskStatus::Failed(_)) {
                failed = true;
            }
            r
        };
        publish(&mut scope, &report);
        opts.observer.task_finished(&report);
        reports.insert(pt.name.clone(), report);
    }

    // finally: sees every task's status and whatever results were written.
    let agg = aggregate(spec.tasks.iter().map(|t| &reports[&t.name].status));
    let mut fscope = scope.clone();
    fscope.set("tasks.status", agg);
    for t in &spec.tasks {
        fscope.set(
            format!("tasks.{}.status", t.name),
            reports[&t.name].status.tekton(),
        );
    }
    let mut final_reports = Vec::new();
    // Like CancelledRunFinally: the finally tasks run to completion even after a cancel.
    let fctx = Ctx {
        cancel: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        ..ctx
    };
    for pt in &spec.finally {
        let r = fctx.run_pipeline_task(pt, &fscope, &reports, true);
        opts.observer.task_finished(&r);
        final_reports.push(r);
    }

    let mut tasks: Vec<TaskRunReport> = spec
        .tasks
        .iter()
        .map(|t| reports.remove(&t.name).expect("every task has a report"))
        .collect();
    tasks.extend(final_reports);
    let any_failed = tasks
        .iter()
        .any(|t| matches!(t.status, TaskStatus::Failed(_)));
    // A skipped task, finally tasks included, makes the run Completed rather than Succeeded.
    let all_ok = tasks.iter().all(|t| t.status == TaskStatus::Succeeded);
    let status = if any_failed {
        RunStatus::Failed
    } else if all_ok {
        RunStatus::Succeeded
    } else {
        RunStatus::Completed
    };
    let mut results = BTreeMap::new();
    for r in &spec.results {
        if let ParamValue::Str(v) = &r.value
            && let Ok(v) = fscope.substitute(v)
        {
            results.insert(r.name.clone(), v);
        }
    }
    Ok(PipelineRunReport {
        name: pr_name,
        uid: pr_uid,
        status,
        tasks,
        results,
        run_dir: opts.run_dir.clone(),
    })
}

/// `$(tasks.status)` for finally tasks.
fn aggregate<'a>(statuses: impl Iterator<Item = &'a TaskStatus>) -> &'static str {
    let mut any_failed = false;
    let mut any_not_run = false;
    let mut all_ok = true;
    for s in statuses {
        match s {
            TaskStatus::Succeeded => {}
            TaskStatus::Failed(_) => any_failed = true,
            TaskStatus::NotRun => any_not_run = true,
            TaskStatus::Skipped(_) => all_ok = false,
        }
    }
    if any_failed {
        "Failed"
    } else if any_not_run {
        "None"
    } else if all_ok {
        "Succeeded"
    } else {
        "Completed"
    }
}

/// Make a finished task's results visible as `$(tasks.<name>.results.<r>)`.
fn publish(scope: &mut Scope, r: &TaskRunReport) {
    for (k, v) in &r.results {
        scope.set(format!("tasks.{}.results.{k}", r.name), v);
    }
}

fn bind_param(scope: &mut Scope, p: &ParamSpec, v: &ParamValue, owner: &str) -> Result<(), Error> {
    match (p.type_.as_str(), v) {
        ("string", ParamValue::Str(s)) => {
            if let Some(allowed) = &p.enum_
                && !allowed.contains(s)
            {
                return Err(Error::new(format!(
                    "param {} of {owner}: {s:?} is not one of {}",
                    p.name,
                    allowed.join(", ")
                )));
            }
            scope.set(format!("params.{}", p.name), s);
        }
        ("array", ParamValue::Array(a)) => scope.set_array(format!("params.{}", p.name), a.clone()),
        ("object", ParamValue::Object(o)) => {
            for (k, v) in o {
                scope.set(format!("params.{}.{k}", p.name), v);
            }
        }
        (t, _) => {
            return Err(Error::new(format!(
                "param {} of {owner}: value does not match its type {t}",
                p.name
            )));
        }
    }
    Ok(())
}

struct Ctx<'a> {
    bundle: &'a Bundle,
    opts: &'a RunOptions,
    ws: &'a BTreeMap<String, PathBuf>,
    pr_name: &'a str,
    /// Cancels the running step (the DAG tasks share the run's flag; finally tasks have their own).
    cancel: Arc<std::sync::atomic::AtomicBool>,
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

    fn not_run(&self, pt: &PipelineTask) -> TaskRunReport {
        self.report(pt, false, TaskStatus::NotRun)
    }

    /// Why a reference to another task's result cannot be resolved: skip or fail.
    fn unresolved_outcome(
        &self,
        u: &Unresolved,
        reports: &BTreeMap<String, TaskRunReport>,
        fin: bool,
    ) -> TaskStatus {
        let parts: Vec<&str> = u.reference.split('.').collect();
        if parts.len() >= 4
            && parts[0] == "tasks"
            && parts[2] == "results"
            && let Some(parent) = reports.get(parts[1])
        {
            return match &parent.status {
                TaskStatus::Skipped(_) => TaskStatus::Skipped(format!(
                    "needs result {} of task {}, which was skipped",
                    parts[3], parts[1]
                )),
                TaskStatus::Succeeded if !fin => TaskStatus::Failed(format!(
                    "InvalidTaskResultReference: task {} succeeded but did not write result {}",
                    parts[1], parts[3]
                )),
                _ => TaskStatus::Skipped(format!(
                    "result {} of task {} is not available ({})",
                    parts[3],
                    parts[1],
                    parent.status.tekton()
                )),
            };
        }
        TaskStatus::Failed(format!("cannot resolve {u}"))
    }

    fn run_pipeline_task(
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

        // when: all expressions must hold.
        for w in &pt.when {
            let (Some(input), Some(op)) = (&w.input, &w.operator) else {
                return self.report(
                    pt,
                    fin,
                    TaskStatus::Failed("when: only input/operator/values is supported".into()),
                );
            };
            let input = match scope.substitute(input) {
                Ok(v) => v,
                Err(u) => {
                    let st = self.unresolved_outcome(&u, reports, fin);
                    return self.report(pt, fin, st);
                }
            };
            let values = match scope.substitute_list(&w.values) {
                Ok(v) => v,
                Err(u) => {
                    let st = self.unresolved_outcome(&u, reports, fin);
                    return self.report(pt, fin, st);
                }
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
                    TaskStatus::Skipped(format!(
                        "when expressions evaluated to false ({input:?} {op} {values:?})"
                    )),
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
                Err(u) => {
                    let st = self.unresolved_outcome(&u, reports, fin);
                    return self.report(pt, fin, st);
                }
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
            Err(msg) => report.status = TaskStatus::Failed(msg),
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
    ) -> Result<(), String> {
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
                return Err(format!(
                    "param {name} is not declared by Task {}",
                    imp.task_name()
                ));
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
                    ));
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
                r
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
                        return Err(format!(
                            "TaskRunCancelled: the run was cancelled (step {} got SIGTERM, exit code {code})",
                            step.name
                        ));
                    }
                    if let Some(d) = deadline
                        && std::time::Instant::now() >= d
                    {
                        report.steps.push(StepReport {
                            name: step.name.clone(),
                            exit_code: code,
                        });
                        return Err(format!(
                            "TaskRunTimeout: pipeline task {} exceeded its timeout of {} (step {} got SIGTERM, exit code {code})",
                            pt.name,
                            pt.timeout.as_deref().unwrap_or_default(),
                            step.name
                        ));
                    }
                    report.steps.push(StepReport {
                        name: step.name.clone(),
                        exit_code: code,
                    });
                    if code != 0 {
                        if step.on_error.as_deref() == Some("continue") {
                            continue;
                        }
                        return Err(format!("step {} exited with code {code}", step.name));
                    }
                }
                Ok(())
            }
        }
    }

    fn run_step(&self, step: &Step, ctx: &StepContext<'_>, log_path: &Path) -> Result<i32, String> {
        let StepContext {
            task,
            template,
            scope,
            paths,
            deadline,
        } = *ctx;
        let sub = |s: &str| scope.substitute(s).map(|v| paths.map(&v));
        let command = if step.command.is_empty() {
            template.command.clone().unwrap_or_default()
        } else {
            step.command.clone()
        };
        let args = if step.args.is_empty() && step.command.is_empty() {
            template.args.clone().unwrap_or_default()
        } else {
            step.args.clone()
        };
        let mut argv: Vec<String> = scope
            .substitute_list(&command)
            .map_err(|u| format!("step {}: {u}", step.name))?;
        argv.extend(
            scope
                .substitute_list(&args)
                .map_err(|u| format!("step {}: {u}", step.name))?,
        );
        let argv: Vec<String> = argv.iter().map(|a| paths.map(a)).collect();
        let Some(program) = argv.first() else {
            return Err(format!(
                "step {}: no command (the image's entrypoint is not known locally)",
                step.name
            ));
        };
        let exe = self.locate(program).map_err(|m| {
            format!(
                "step {} ({}): {m}",
                step.name,
                step.image
                    .as_deref()
                    .or(template.image.as_deref())
                    .unwrap_or("no image")
            )
        })?;

        // Environment: a clean one, like a container's, plus the template's and the step's.
        let mut env: Vec<(String, String)> = Vec::new();
        for k in ["PATH", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR", "LANG"] {
            if let Ok(v) = std::env::var(k) {
                env.push((k.into(), v));
            }
        }
        env.push(("HOME".into(), paths.home.to_string_lossy().into_owned()));
        env.extend(self.opts.env.iter().cloned());
        for e in template.env.iter().chain(step.env.iter()) {
            let v = env_value(e, step, &sub)?;
            env.retain(|(k, _)| k != &e.name);
            env.push((e.name.clone(), v));
        }
        let workdir = match step.working_dir.as_ref().or(template.working_dir.as_ref()) {
            Some(w) => PathBuf::from(sub(w).map_err(|u| format!("step {}: {u}", step.name))?),
            None => paths.home.clone(),
        };

        let mut cmd = Command::new(&exe);
        cmd.args(&argv[1..])
            .env_clear()
            .envs(env)
            .current_dir(&workdir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let kill = Kill {
            deadline,
            grace: self.opts.kill_grace,
            cancel: self.cancel.clone(),
        };
        run_logged(cmd, log_path, &*self.opts.observer, task, &step.name, kill)
            .map_err(|e| format!("step {}: cannot run {}: {e}", step.name, exe.display()))
    }

    /// `/usr/local/bin/NAME` → our binary in bin_dir; otherwise a host command when allowed.
    fn locate(&self, program: &str) -> Result<PathBuf, String> {
        if let Some(name) = program.strip_prefix("/usr/local/bin/") {
            let p = self.opts.bin_dir.join(name);
            if p.is_file() {
                return Ok(p);
            }
            return Err(format!(
                "{name} not found in {} (build it: cargo build -p {name}, or pass --bin-dir)",
                self.opts.bin_dir.display()
            ));
        }
        if self.opts.host_commands
            && let Some(p) = which(program)
        {
            return Ok(p);
        }
        Err(format!(
            "`{program}` comes from the step's image and is not available locally{}",
            if self.opts.host_commands {
                " (not on PATH either)"
            } else {
                " (allow host commands to use one from PATH)"
            }
        ))
    }
}

fn env_value(
    e: &EnvVar,
    step: &Step,
    sub: &dyn Fn(&str) -> Result<String, Unresolved>,
) -> Result<String, String> {
    if e.value_from.is_some() {
        return Err(format!(
            "step {}: env {} uses valueFrom, which the local runner cannot resolve; bind the Secret as a workspace instead",
            step.name, e.name
        ));
    }
    sub(e.value.as_deref().unwrap_or(""))
        .map_err(|u| format!("step {}: env {}: {u}", step.name, e.name))
}

/// When to stop a running step.
struct Kill {
    deadline: Option<std::time::Instant>,
    grace: std::time::Duration,
    cancel: Arc<std::sync::atomic::AtomicBool>,
}

/// What every step of one TaskRun shares.
#[derive(Clone, Copy)]
struct StepContext<'a> {
    task: &'a str,
    template: &'a super::model::StepTemplate,
    scope: &'a Scope,
    paths: &'a PathMap,
    /// The PipelineTask's timeout, as an instant.
    deadline: Option<std::time::Instant>,
}

/// The container paths Tekton mounts, mapped to this TaskRun's directories.
struct PathMap {
    results: PathBuf,
    home: PathBuf,
}

impl PathMap {
    /// Rewrite `/tekton/results…` and `/tekton/home…` at the start of a value or after `=`.
    fn map(&self, s: &str) -> String {
        let mut out = s.to_string();
        for (prefix, to) in [
            ("/tekton/results", &self.results),
            ("/tekton/home", &self.home),
        ] {
            let to = to.to_string_lossy();
            let mut i = 0;
            while let Some(pos) = out[i..].find(prefix) {
                let at = i + pos;
                let end = at + prefix.len();
                let before_ok = at == 0 || out.as_bytes()[at - 1] == b'=';
                let after_ok = end == out.len() || out.as_bytes()[end] == b'/';
                if before_ok && after_ok {
                    out.replace_range(at..end, &to);
                    i = at + to.len();
                } else {
                    i = end;
                }
            }
        }
        out
    }
}

fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

/// Run a process, copying its stdout and stderr line by line to a log file and the observer.
fn run_logged(
    mut cmd: Command,
    log_path: &Path,
    observer: &dyn Observer,
    task: &str,
    step: &str,
    kill: Kill,
) -> std::io::Result<i32> {
    let file = Arc::new(Mutex::new(std::fs::File::create(log_path)?));
    let mut child = cmd.spawn()?;
    // At the deadline or on cancel: SIGTERM, then SIGKILL after the grace, unless the step exits.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let pid = child.id().to_string();
    let killer = std::thread::spawn(move || {
        use std::sync::atomic::Ordering;
        use std::sync::mpsc::RecvTimeoutError::Timeout;
        const SLICE: std::time::Duration = std::time::Duration::from_millis(50);
        // The sender is dropped when the step has exited: only a timeout means "still running".
        loop {
            if kill.cancel.load(Ordering::SeqCst)
                || kill
                    .deadline
                    .is_some_and(|d| std::time::Instant::now() >= d)
            {
                break;
            }
            let slice = kill.deadline.map_or(SLICE, |d| {
                d.saturating_duration_since(std::time::Instant::now())
                    .min(SLICE)
            });
            if done_rx.recv_timeout(slice) != Err(Timeout) {
                return;
            }
        }
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        if done_rx.recv_timeout(kill.grace) != Err(Timeout) {
            return;
        }
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
    });
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let mut pumps = Vec::new();
    let out: Option<Box<dyn Read + Send>> = child
        .stdout
        .take()
        .map(|s| Box::new(s) as Box<dyn Read + Send>);
    let err: Option<Box<dyn Read + Send>> = child
        .stderr
        .take()
        .map(|s| Box::new(s) as Box<dyn Read + Send>);
    for pipe in [out, err].into_iter().flatten() {
        let tx = tx.clone();
        let file = file.clone();
        pumps.push(std::thread::spawn(move || {
            let mut r = BufReader::new(pipe);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf)
                            .trim_end_matches(['\n', '\r'])
                            .to_string();
                        if let Ok(mut f) = file.lock() {
                            let _ = writeln!(f, "{line}");
                        }
                        let _ = tx.send(line);
                    }
                }
            }
        }));
    }
    drop(tx);
    for line in rx {
        observer.line(task, step, &line);
    }
    for p in pumps {
        let _ = p.join();
    }
    let status = child.wait()?;
    drop(done_tx);
    let _ = killer.join();
    Ok(status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        128 + status.signal().unwrap_or(0)
    }))
}

/// References to other PipelineTasks' results in a PipelineTask (params and when).
pub fn result_dependencies(pt: &PipelineTask) -> BTreeSet<String> {
    let mut texts: Vec<&str> = Vec::new();
    for p in &pt.params {
        match &p.value {
            ParamValue::Str(s) => texts.push(s),
            ParamValue::Array(a) => texts.extend(a.iter().map(String::as_str)),
            ParamValue::Object(o) => texts.extend(o.values().map(String::as_str)),
        }
    }
    for w in &pt.when {
        texts.extend(w.input.as_deref());
        texts.extend(w.values.iter().map(String::as_str));
    }
    texts
        .iter()
        .flat_map(|t| references(t))
        .filter_map(|r| {
            // Only `tasks.<name>.results.<r>`: `tasks.status` and `tasks.<name>.status` are
            // finally-only and order nothing.
            let parts: Vec<&str> = r.split('.').collect();
            (parts.len() >= 4 && parts[0] == "tasks" && parts[2] == "results")
                .then(|| parts[1].to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_tekton_paths_only_at_value_boundaries() {
        let m = PathMap {
            results: PathBuf::from("/tmp/r"),
            home: PathBuf::from("/tmp/h"),
        };
        assert_eq!(m.map("/tekton/results"), "/tmp/r");
        assert_eq!(
            m.map("--results-dir=/tekton/results/X"),
            "--results-dir=/tmp/r/X"
        );
        assert_eq!(m.map("/tekton/home/.config"), "/tmp/h/.config");
        assert_eq!(m.map("/tekton/resultsX"), "/tekton/resultsX");
        assert_eq!(m.map("x/tekton/results"), "x/tekton/results");
    }

    #[test]
    fn aggregate_status() {
        use TaskStatus::*;
        assert_eq!(aggregate([Succeeded, Succeeded].iter()), "Succeeded");
        assert_eq!(
            aggregate([Succeeded, Skipped("w".into())].iter()),
            "Completed"
        );
        assert_eq!(aggregate([Failed("x".into()), NotRun].iter()), "Failed");
    }
}
