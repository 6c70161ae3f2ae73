//! The subset of the Tekton `tekton.dev/v1` Task and Pipeline types the local runner interprets.
//!
//! Fields the runner cannot honour locally (sidecars, matrix, step actions, `script`) are kept so
//! loading can refuse them with a clear message instead of silently ignoring them; fields that
//! have no local meaning (securityContext, computeResources, descriptions, labels) are accepted
//! and ignored.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// A param value: Tekton params are strings, arrays of strings or objects of strings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    Str(String),
    Array(Vec<String>),
    Object(BTreeMap<String, String>),
}

impl ParamValue {
    /// The value as it appears when substituted into a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ParamValue::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// `metadata` (only the name matters here).
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub name: String,
}

/// A Tekton resource document: `apiVersion`, `kind`, `metadata`, `spec`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource<S> {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: S,
}

/// A param declaration (Task or Pipeline).
#[derive(Debug, Clone, Deserialize)]
pub struct ParamSpec {
    pub name: String,
    #[serde(rename = "type", default = "string_type")]
    pub type_: String,
    #[serde(default)]
    pub default: Option<ParamValue>,
    #[serde(default, rename = "enum")]
    pub enum_: Option<Vec<String>>,
}

fn string_type() -> String {
    "string".into()
}

/// A Task workspace declaration.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceDecl {
    pub name: String,
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub mount_path: Option<String>,
}

/// A Task result declaration.
#[derive(Debug, Clone, Deserialize)]
pub struct ResultDecl {
    pub name: String,
    #[serde(rename = "type", default = "string_type")]
    pub type_: String,
}

/// A container env var: a literal value or a `valueFrom` (Secrets, ConfigMaps, field refs).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    pub name: String,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub value_from: Option<Value>,
}

/// `stepTemplate`: merged into every step.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepTemplate {
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub env: Vec<EnvVar>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub args: Option<Vec<String>>,
}

/// One step.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub name: String,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<EnvVar>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub script: Option<String>,
    #[serde(default)]
    pub on_error: Option<String>,
    #[serde(default, rename = "ref")]
    pub step_ref: Option<Value>,
    #[serde(default)]
    pub env_from: Option<Value>,
}

/// `Task.spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSpec {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub params: Vec<ParamSpec>,
    #[serde(default)]
    pub workspaces: Vec<WorkspaceDecl>,
    #[serde(default)]
    pub results: Vec<ResultDecl>,
    #[serde(default)]
    pub step_template: Option<StepTemplate>,
    #[serde(default)]
    pub steps: Vec<Step>,
    #[serde(default)]
    pub sidecars: Option<Value>,
    #[serde(default)]
    pub volumes: Option<Value>,
}

/// A `name: value` param binding in a PipelineTask or a resolver ref.
#[derive(Debug, Clone, Deserialize)]
pub struct Param {
    pub name: String,
    pub value: ParamValue,
}

/// `taskRef`: a Task by name, or a remote resolver.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TaskRef {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub resolver: Option<String>,
    #[serde(default)]
    pub params: Vec<Param>,
}

impl TaskRef {
    /// The value of a resolver param (`name`, `kind`, `namespace`, ...).
    pub fn resolver_param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.value.as_str())
    }
}

/// A PipelineTask's workspace binding.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceBinding {
    pub name: String,
    pub workspace: Option<String>,
    #[serde(default)]
    pub sub_path: Option<String>,
}

/// A `when` expression.
#[derive(Debug, Clone, Deserialize)]
pub struct When {
    #[serde(default)]
    pub input: Option<String>,
    #[serde(default)]
    pub operator: Option<String>,
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub cel: Option<String>,
}

/// A PipelineTask (in `tasks` or `finally`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineTask {
    pub name: String,
    #[serde(default)]
    pub task_ref: Option<TaskRef>,
    #[serde(default)]
    pub task_spec: Option<Value>,
    #[serde(default)]
    pub params: Vec<Param>,
    #[serde(default)]
    pub workspaces: Vec<WorkspaceBinding>,
    #[serde(default)]
    pub run_after: Vec<String>,
    #[serde(default)]
    pub when: Vec<When>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub retries: Option<u32>,
    #[serde(default)]
    pub matrix: Option<Value>,
    #[serde(default)]
    pub on_error: Option<String>,
}

/// A Pipeline workspace declaration.
#[derive(Debug, Clone, Deserialize)]
pub struct PipelineWorkspaceDecl {
    pub name: String,
    #[serde(default)]
    pub optional: bool,
}

/// A Pipeline result.
#[derive(Debug, Clone, Deserialize)]
pub struct PipelineResult {
    pub name: String,
    pub value: ParamValue,
}

/// `Pipeline.spec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineSpec {
    #[serde(default)]
    pub params: Vec<ParamSpec>,
    #[serde(default)]
    pub workspaces: Vec<PipelineWorkspaceDecl>,
    #[serde(default)]
    pub tasks: Vec<PipelineTask>,
    #[serde(default)]
    pub finally: Vec<PipelineTask>,
    #[serde(default)]
    pub results: Vec<PipelineResult>,
}

pub type Task = Resource<TaskSpec>;
pub type Pipeline = Resource<PipelineSpec>;
