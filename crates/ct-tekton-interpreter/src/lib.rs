//! A local Tekton interpreter for `pipeline/ct-pipeline.yaml` and `tasks/*.yaml`.
//!
//! It runs a `tekton.dev/v1` Pipeline on this machine the way the Tekton controller would, for the
//! parts that have a local meaning:
//!
//! - loading ([`load`]): the Pipeline and the Tasks of a directory, refusing what cannot be
//!   honoured locally, checking params, workspaces and references before anything runs;
//! - loading also checks, as the Tekton controller does before a PipelineRun starts, that every
//!   `$(tasks.X.results.Y)` in `tasks` and `finally` names a result the Task of X declares
//!   (`ValidatePipelineTaskResults`; the stand-ins declare the catalog Tasks' results) and that
//!   the Pipeline's `results` are task result references to declared results
//!   (`ValidatePipelineResults`);
//! - DAG order ([`dag_order`]) from `runAfter` and `$(tasks.X.results.Y)` references; once a task
//!   fails no new task starts; `finally` tasks run afterwards and see `$(tasks.status)` and
//!   `$(tasks.X.status)`;
//! - results: a TaskRun whose steps failed keeps the results it wrote; a TaskRun that timed out
//!   or was cancelled publishes none (Tekton deletes its pod in `failTaskRun` and reads results
//!   only from a pod that finished); at the end, a Pipeline result that references a missing
//!   result of a task that succeeded fails the run (`CouldntGetPipelineResult`), one whose task
//!   did not succeed is left out;
//! - skips, with Tekton's reasons ([`SkipReason`]): `when` (`in` / `notin`) guards only its task,
//!   so a when-skipped task's `runAfter` dependents still run while its result consumers are
//!   skipped ("Results were missing"); a task skipped for any other reason skips every
//!   dependent ("Parent Tasks were skipped", `skipBecauseParentTaskWasSkipped`); a finally task
//!   that references a missing result is skipped;
//! - substitution ([`subst`]) of `$(params.*)` (string, array `[*]`, object),
//!   `$(tasks.*.results.*)`, `$(results.*.path)`, `$(workspaces.*.path|bound)`,
//!   `$(context.pipelineRun.name|uid|namespace)`, `$(context.taskRun.name|uid|namespace)`,
//!   `$(context.task.name)`; an unresolvable reference is an error, never an empty string;
//! - steps ([`run`]) whose command is `/usr/local/bin/<name>` run the real binary `<name>` from
//!   a local directory with the step's args and env, in a clean environment; `/tekton/results`
//!   and `/tekton/home` in args and env map to the TaskRun's own directories; a workspace is a
//!   local directory; results are read from the TaskRun's results directory after the steps;
//! - a PipelineTask's `timeout`: at the deadline the running step gets SIGTERM (as when Tekton
//!   deletes the pod) and SIGKILL after a grace period; the task fails with `TaskRunTimeout`;
//! - cancellation ([`RunOptions::cancel`]), like `spec.status: CancelledRunFinally`: the running
//!   step gets SIGTERM, no new task starts, the `finally` tasks run;
//! - the catalog Tasks taken through the cluster resolver (`git-clone`, `buildah`) are replaced by
//!   clearly labelled stand-ins ([`standin`]);
//! - Triggers ([`trigger`]): the EventListener's interceptors (github signature and event type,
//!   CEL filters and overlays), TriggerBindings and the TriggerTemplate's PipelineRun params.
//!
//! Not covered locally: images, pods and their securityContext, compute resources,
//! PipelineRun-level `timeouts`, step `timeout`, retries, a plain `Cancelled` (without finally),
//! sidecars, `script` steps, `valueFrom` env, readOnly enforcement of workspaces, and parallel
//! execution (independent tasks run one after the other).

mod dag;
mod load;
pub mod model;
pub mod run;
pub mod standin;
pub mod subst;
pub mod trigger;

use std::fmt;
use std::path::{Path, PathBuf};

pub use dag::{ResultRef, dag_order, result_dependencies, result_refs};
pub use load::{Bundle, TaskImpl, load};
pub use model::{ParamValue, Pipeline, PipelineTask, Task, TaskSpec};
pub use run::{
    Binding, Observer, PipelineRunReport, Quiet, RunOptions, RunStatus, Skip, SkipReason,
    StepReport, TaskRunReport, TaskStatus, run,
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
