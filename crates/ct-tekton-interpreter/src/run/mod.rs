//! Runs a loaded Pipeline locally: params and workspaces of the run, DAG order, `finally`,
//! the run's report. One TaskRun is [`task`], one step [`step`].

mod step;
mod task;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::model::{ParamSpec, ParamValue};
use crate::subst::Scope;
use crate::{Bundle, Error};
use task::Ctx;

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
    Skipped(Skip),
    /// Not started because an earlier task failed or the run was cancelled.
    NotRun,
}

/// Why a PipelineTask was skipped: Tekton's `SkippingReason`s that a local run can reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Its own `when` expressions evaluated to false. With `when` scoped to the task (the only
    /// behaviour of Tekton v1), this skips the task alone: its `runAfter` dependents still run.
    When,
    /// A parent (`runAfter` or a result it uses) was skipped for a reason other than its own
    /// `when` expressions (`skipBecauseParentTaskWasSkipped`).
    ParentSkipped,
    /// A result it references was not produced: in `finally`, any missing result; in `tasks`,
    /// a result of a parent skipped by its `when` (`skipBecauseResultReferencesAreMissing`).
    MissingResults,
}

impl SkipReason {
    /// Tekton's text for the reason (`status.skippedTasks[].reason`).
    pub fn tekton(self) -> &'static str {
        match self {
            SkipReason::When => "When Expressions evaluated to false",
            SkipReason::ParentSkipped => "Parent Tasks were skipped",
            SkipReason::MissingResults => "Results were missing",
        }
    }
}

/// A skipped PipelineTask: the reason and what caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub reason: SkipReason,
    pub detail: String,
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason.tekton(), self.detail)
    }
}

/// The one way a TaskRun's status reads for a person (`run`'s listing, the demo's summary and
/// console).
impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskStatus::Succeeded => f.write_str("Succeeded"),
            TaskStatus::Failed(why) => write!(f, "FAILED: {why}"),
            TaskStatus::Skipped(skip) => write!(f, "skipped: {skip}"),
            TaskStatus::NotRun => {
                f.write_str("not run (an earlier task failed or the run was cancelled)")
            }
        }
    }
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

    pub(crate) fn skipped(reason: SkipReason, detail: impl Into<String>) -> TaskStatus {
        TaskStatus::Skipped(Skip {
            reason,
            detail: detail.into(),
        })
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

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RunStatus::Succeeded => "Succeeded",
            RunStatus::Completed => "Completed (some tasks skipped)",
            RunStatus::Failed => "FAILED",
        })
    }
}

/// The PipelineRun as run.
#[derive(Debug, Clone)]
pub struct PipelineRunReport {
    pub name: String,
    pub uid: String,
    pub status: RunStatus,
    /// Why the run failed when no TaskRun did (`CouldntGetPipelineResult`).
    pub reason: Option<String>,
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
    // Checked above: every binding is a directory or fresh, every required one is there.
    let mut ws: BTreeMap<String, PathBuf> = BTreeMap::new();
    for w in &spec.workspaces {
        match opts.workspaces.get(&w.name) {
            Some(Binding::Dir(d)) => {
                ws.insert(w.name.clone(), d.clone());
            }
            Some(Binding::Fresh) => {
                let d = opts.run_dir.join("workspaces").join(&w.name);
                std::fs::create_dir_all(&d).map_err(|e| {
                    Error::new(format!("workspace {}: {}: {e}", w.name, d.display()))
                })?;
                ws.insert(w.name.clone(), d);
            }
            None => {}
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
        } else if let Some(skip) = parent_skipped(pt, &reports) {
            ctx.skipped(pt, skip)
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
    let mut pscope = fscope;
    for r in tasks.iter().filter(|t| t.finally) {
        for (k, v) in &r.results {
            pscope.set(format!("finally.{}.results.{k}", r.name), v);
        }
    }
    let (results, reason) = pipeline_results(spec, &pscope, &tasks);
    let status = if reason.is_some() {
        RunStatus::Failed
    } else {
        status
    };
    Ok(PipelineRunReport {
        name: pr_name,
        uid: pr_uid,
        status,
        reason,
        tasks,
        results,
        run_dir: opts.run_dir.clone(),
    })
}

/// Tekton's `skipBecauseParentTaskWasSkipped`: a task is skipped when one of its parents
/// (`runAfter` or a result producer) was skipped for any reason but its own `when` expressions.
/// `when` guards only its task (Tekton v1 scopes `when` to the task), so the dependents of a
/// when-skipped task run, unless they use its results ([`SkipReason::MissingResults`]); skips
/// for any other reason pass on to every dependent, transitively.
fn parent_skipped(
    pt: &crate::model::PipelineTask,
    reports: &BTreeMap<String, TaskRunReport>,
) -> Option<TaskStatus> {
    crate::dag::parents(pt)
        .into_iter()
        .find_map(|p| match reports.get(&p)?.status {
            TaskStatus::Skipped(ref s) if s.reason != SkipReason::When => {
                Some(TaskStatus::skipped(
                    SkipReason::ParentSkipped,
                    format!("parent task {p} was skipped: {}", s.reason.tekton()),
                ))
            }
            _ => None,
        })
}

/// The Pipeline's results at the end of the run, as Tekton's `ApplyTaskResultsToPipelineResults`
/// makes them: a result whose references all resolve gets its value; one that references a
/// result of a DAG task that did not succeed is left out; one that references a missing result
/// of a task that succeeded (or of a finally task: Tekton's task status map holds DAG tasks only)
/// fails the run with `CouldntGetPipelineResult`.
fn pipeline_results(
    spec: &crate::model::PipelineSpec,
    scope: &Scope,
    tasks: &[TaskRunReport],
) -> (BTreeMap<String, String>, Option<String>) {
    let mut results = BTreeMap::new();
    let mut invalid = Vec::new();
    for r in &spec.results {
        // Load checked that every result is a string of result references.
        let ParamValue::Str(v) = &r.value else {
            continue;
        };
        let mut complete = true;
        for key in crate::subst::references(v) {
            if scope.get(&key).is_some() {
                continue;
            }
            complete = false;
            let dag_status = crate::dag::ResultRef::parse(&key)
                .filter(|rr| !rr.finally)
                .and_then(|rr| tasks.iter().find(|t| t.name == rr.task && !t.finally))
                .map(|t| &t.status);
            if matches!(dag_status, None | Some(TaskStatus::Succeeded)) {
                invalid.push(format!("{} ($({key}))", r.name));
            }
        }
        if complete && let Ok(value) = scope.substitute(v) {
            results.insert(r.name.clone(), value);
        }
    }
    let reason = (!invalid.is_empty()).then(|| {
        format!(
            "CouldntGetPipelineResult: invalid pipelineresults {}, the referred results don't exist",
            invalid.join(", ")
        )
    });
    (results, reason)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregate_status() {
        use TaskStatus::*;
        assert_eq!(aggregate([Succeeded, Succeeded].iter()), "Succeeded");
        assert_eq!(
            aggregate([Succeeded, TaskStatus::skipped(SkipReason::When, "w")].iter()),
            "Completed"
        );
        assert_eq!(aggregate([Failed("x".into()), NotRun].iter()), "Failed");
    }
}
