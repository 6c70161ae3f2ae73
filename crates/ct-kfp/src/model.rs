//! v2beta1 API objects. Every field is optional and unknown fields are ignored: servers from
//! DSP 2.0 to KFP 2.17 differ, a run echoes its whole `pipeline_spec`, and `state` may be absent.

use std::fmt;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// `V2beta1RuntimeState`, plus whatever a newer server may invent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum RunState {
    #[default]
    Unspecified,
    Pending,
    Running,
    Succeeded,
    Skipped,
    Failed,
    Canceling,
    Canceled,
    Paused,
    Other(String),
}

impl RunState {
    pub fn parse(s: &str) -> RunState {
        match s {
            "" | "RUNTIME_STATE_UNSPECIFIED" => RunState::Unspecified,
            "PENDING" => RunState::Pending,
            "RUNNING" => RunState::Running,
            "SUCCEEDED" => RunState::Succeeded,
            "SKIPPED" => RunState::Skipped,
            "FAILED" => RunState::Failed,
            "CANCELING" => RunState::Canceling,
            "CANCELED" => RunState::Canceled,
            "PAUSED" => RunState::Paused,
            other => RunState::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            RunState::Unspecified => "RUNTIME_STATE_UNSPECIFIED",
            RunState::Pending => "PENDING",
            RunState::Running => "RUNNING",
            RunState::Succeeded => "SUCCEEDED",
            RunState::Skipped => "SKIPPED",
            RunState::Failed => "FAILED",
            RunState::Canceling => "CANCELING",
            RunState::Canceled => "CANCELED",
            RunState::Paused => "PAUSED",
            RunState::Other(s) => s,
        }
    }

    /// The run will not change any more: SUCCEEDED, SKIPPED, FAILED or CANCELED.
    /// (Unlike the kfp SDK, CANCELED is terminal: kubeflow/pipelines#14473.)
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            RunState::Succeeded | RunState::Skipped | RunState::Failed | RunState::Canceled
        )
    }

    /// A terminal state that counts as success: SUCCEEDED or SKIPPED.
    pub fn is_success(&self) -> bool {
        matches!(self, RunState::Succeeded | RunState::Skipped)
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RunState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        Ok(RunState::parse(s.as_deref().unwrap_or("")))
    }
}

/// `googleRpcStatus` (or the legacy `runtimeError`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RpcStatus {
    pub code: Option<i64>,
    pub message: Option<String>,
    pub error: Option<String>,
}

impl RpcStatus {
    /// The human message, if any.
    pub fn text(&self) -> Option<&str> {
        self.message
            .as_deref()
            .filter(|s| !s.is_empty())
            .or(self.error.as_deref().filter(|s| !s.is_empty()))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Experiment {
    pub experiment_id: String,
    pub display_name: String,
    pub namespace: Option<String>,
    pub storage_state: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ListExperiments {
    pub experiments: Vec<Experiment>,
    pub next_page_token: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Pipeline {
    pub pipeline_id: String,
    pub display_name: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ListPipelines {
    pub pipelines: Vec<Pipeline>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PipelineVersion {
    pub pipeline_id: String,
    pub pipeline_version_id: String,
    pub display_name: String,
    pub name: Option<String>,
    pub created_at: Option<String>,
    pub pipeline_spec: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ListPipelineVersions {
    pub pipeline_versions: Vec<PipelineVersion>,
}

/// One entry of `run_details.task_details`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TaskDetail {
    pub task_id: String,
    pub display_name: String,
    pub state: RunState,
    pub error: Option<RpcStatus>,
    pub parent_task_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RunDetails {
    pub task_details: Vec<TaskDetail>,
}

/// `v2beta1Run`, without the echoed `pipeline_spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Run {
    pub run_id: String,
    pub experiment_id: String,
    pub display_name: String,
    pub description: Option<String>,
    pub state: RunState,
    pub error: Option<RpcStatus>,
    pub run_details: Option<RunDetails>,
    pub created_at: Option<String>,
    pub finished_at: Option<String>,
    pub storage_state: Option<String>,
}

impl Run {
    /// The run's error message, else the first failed task's.
    pub fn error_message(&self) -> Option<String> {
        if let Some(m) = self.error.as_ref().and_then(RpcStatus::text) {
            return Some(m.to_string());
        }
        self.tasks()
            .iter()
            .find(|t| t.state == RunState::Failed)
            .map(|t| match t.error.as_ref().and_then(RpcStatus::text) {
                Some(m) => format!("task {} failed: {m}", t.display_name),
                None => format!("task {} failed", t.display_name),
            })
    }

    pub fn tasks(&self) -> &[TaskDetail] {
        self.run_details
            .as_ref()
            .map(|d| d.task_details.as_slice())
            .unwrap_or(&[])
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ListRuns {
    pub runs: Vec<Run>,
    pub next_page_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_deserialize_leniently() {
        let r: Run =
            serde_json::from_str(r#"{"run_id":"r1","pipeline_spec":{"x":1},"new_field":3}"#)
                .unwrap();
        assert_eq!(r.state, RunState::Unspecified);
        let r: Run = serde_json::from_str(
            r#"{"run_id":"r1","state":"FAILED","run_details":{"task_details":[
                {"task_id":"t","display_name":"train","state":"FAILED","error":{"message":"OOMKilled"}}]}}"#,
        )
        .unwrap();
        assert_eq!(r.error_message().unwrap(), "task train failed: OOMKilled");
        let r: Run =
            serde_json::from_str(r#"{"state":"BRAND_NEW","error":{"error":"legacy"}}"#).unwrap();
        assert_eq!(r.state, RunState::Other("BRAND_NEW".into()));
        assert!(!r.state.is_terminal());
        assert_eq!(r.error_message().unwrap(), "legacy");
    }

    #[test]
    fn terminal_and_success_states() {
        for s in ["SUCCEEDED", "SKIPPED"] {
            assert!(RunState::parse(s).is_terminal() && RunState::parse(s).is_success());
        }
        for s in ["FAILED", "CANCELED"] {
            assert!(RunState::parse(s).is_terminal() && !RunState::parse(s).is_success());
        }
        for s in ["PENDING", "RUNNING", "CANCELING", "PAUSED", ""] {
            assert!(!RunState::parse(s).is_terminal());
        }
    }
}
