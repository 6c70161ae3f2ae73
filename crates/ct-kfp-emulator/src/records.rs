//! Experiments, pipelines and pipeline versions as stored, and their v2beta1 views (proto field
//! names, defaults omitted).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

/// RFC 3339 with `Z`, as grpc-gateway writes a Timestamp.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `storage_state` of an experiment or run.
pub fn storage_state(archived: bool) -> Value {
    json!(if archived { "ARCHIVED" } else { "AVAILABLE" })
}

pub const EPOCH: &str = "1970-01-01T00:00:00Z";

#[derive(Debug, Clone)]
pub struct ExperimentRec {
    pub id: String,
    pub display_name: String,
    pub description: String,
    pub created: DateTime<Utc>,
    pub archived: bool,
    pub last_run: Option<DateTime<Utc>>,
}

impl ExperimentRec {
    pub fn view(&self) -> Value {
        let mut m = Map::new();
        m.insert("experiment_id".into(), json!(self.id));
        m.insert("display_name".into(), json!(self.display_name));
        if !self.description.is_empty() {
            m.insert("description".into(), json!(self.description));
        }
        m.insert("created_at".into(), json!(ts(self.created)));
        m.insert("storage_state".into(), storage_state(self.archived));
        m.insert(
            "last_run_created_at".into(),
            json!(self.last_run.map(ts).unwrap_or_else(|| EPOCH.into())),
        );
        Value::Object(m)
    }
}

#[derive(Debug, Clone)]
pub struct PipelineRec {
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub created: DateTime<Utc>,
}

impl PipelineRec {
    pub fn view(&self) -> Value {
        let mut m = Map::new();
        m.insert("pipeline_id".into(), json!(self.id));
        m.insert("name".into(), json!(self.name));
        m.insert("display_name".into(), json!(self.display_name));
        if !self.description.is_empty() {
            m.insert("description".into(), json!(self.description));
        }
        m.insert("created_at".into(), json!(ts(self.created)));
        Value::Object(m)
    }
}

#[derive(Debug, Clone)]
pub struct VersionRec {
    pub id: String,
    pub pipeline_id: String,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub created: DateTime<Utc>,
    /// Bare IR, or `{pipeline_spec, platform_spec}`.
    pub spec: Value,
    pub seq: u64,
}

impl VersionRec {
    pub fn view(&self) -> Value {
        let mut m = Map::new();
        m.insert("pipeline_id".into(), json!(self.pipeline_id));
        m.insert("pipeline_version_id".into(), json!(self.id));
        m.insert("name".into(), json!(self.name));
        m.insert("display_name".into(), json!(self.display_name));
        if !self.description.is_empty() {
            m.insert("description".into(), json!(self.description));
        }
        m.insert("created_at".into(), json!(ts(self.created)));
        m.insert("pipeline_spec".into(), self.spec.clone());
        Value::Object(m)
    }
}
