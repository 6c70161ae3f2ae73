//! The emulator's state and every change to it: experiments, pipelines and their versions, runs.
//! The HTTP layer and the handle both go through [`Store`]; errors carry the server's words
//! (the HTTP layer adds the operation, e.g. `Failed to get a run: …`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use chrono::Utc;
use ct_emulator::{Error, Result};
use ct_kfp::RunState;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::records::{ExperimentRec, PipelineRec, VersionRec};
use crate::run::{RunRec, RunScript, ir_of, task_names};

/// Where a new run's pipeline comes from.
#[derive(Debug, Clone)]
pub enum RunSource {
    /// An inline `pipeline_spec` (bare IR or `{pipeline_spec, platform_spec}`).
    Spec(Value),
    /// `pipeline_version_reference.pipeline_version_id`.
    Version(String),
}

/// A run to create.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub display_name: String,
    pub description: String,
    /// `None`: the `Default` experiment (created on first use).
    pub experiment_id: Option<String>,
    pub source: RunSource,
    pub runtime_config: Option<Value>,
    pub service_account: Option<String>,
}

impl NewRun {
    /// A run of an inline spec in the `Default` experiment.
    pub fn of_spec(display_name: &str, spec: Value) -> Self {
        NewRun {
            display_name: display_name.to_string(),
            description: String::new(),
            experiment_id: None,
            source: RunSource::Spec(spec),
            runtime_config: None,
            service_account: None,
        }
    }
}

const DEFAULT_EXPERIMENT: &str = "Default";
const DEFAULT_SERVICE_ACCOUNT: &str = "pipeline-runner-dspa";

/// Everything the emulator holds.
#[derive(Debug)]
pub struct Store {
    pub experiments: Vec<ExperimentRec>,
    pub pipelines: Vec<PipelineRec>,
    pub versions: Vec<VersionRec>,
    pub runs: Vec<RunRec>,
    /// Scripts for the next created runs, first in first out.
    scripts: VecDeque<RunScript>,
    /// The script of a run created with none queued.
    default_script: RunScript,
    seq: u64,
    /// Time from terminate (CANCELING) to CANCELED.
    cancel_delay: Duration,
}

/// A run's name must not be blank (checked before anything else about a run).
pub fn check_run_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::invalid(
            "Invalid input error: The run name is empty. Please specify a valid name",
        ));
    }
    Ok(())
}

impl Store {
    pub fn new(default_script: RunScript, cancel_delay: Duration) -> Self {
        Store {
            experiments: Vec::new(),
            pipelines: Vec::new(),
            versions: Vec::new(),
            runs: Vec::new(),
            scripts: VecDeque::new(),
            default_script,
            seq: 0,
            cancel_delay,
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// The next created run follows `script`.
    pub fn queue_script(&mut self, script: RunScript) {
        self.scripts.push_back(script);
    }

    /// Runs created with no queued script follow this one.
    pub fn set_default_script(&mut self, script: RunScript) {
        self.default_script = script;
    }

    // ---- experiments ----

    pub fn experiment(&self, id: &str) -> Result<&ExperimentRec> {
        self.experiments.iter().find(|e| e.id == id).ok_or_else(|| {
            Error::not_found(format!("ResourceNotFoundError: Experiment {id} not found"))
        })
    }

    pub fn create_experiment(&mut self, name: &str, description: &str) -> Result<&ExperimentRec> {
        if name.trim().is_empty() {
            return Err(Error::invalid(
                "Invalid input error: Experiment display name is empty. Please specify a valid experiment name",
            ));
        }
        if self.experiments.iter().any(|e| e.display_name == name) {
            return Err(Error::already_exists(format!(
                "Failed to create a new experiment: Already exist error: Failed to create a new experiment. The name {name} already exists. Please specify a new name"
            )));
        }
        self.experiments.push(ExperimentRec {
            id: uuid::Uuid::new_v4().to_string(),
            display_name: name.to_string(),
            description: description.to_string(),
            created: Utc::now(),
            archived: false,
            last_run: None,
        });
        Ok(self.experiments.last().expect("just pushed"))
    }

    /// The id of the `Default` experiment, created on first use.
    fn default_experiment(&mut self) -> Result<String> {
        if let Some(e) = self
            .experiments
            .iter()
            .find(|e| e.display_name == DEFAULT_EXPERIMENT)
        {
            return Ok(e.id.clone());
        }
        let description = "All runs created without specifying an experiment will be grouped here.";
        Ok(self
            .create_experiment(DEFAULT_EXPERIMENT, description)?
            .id
            .clone())
    }

    pub fn set_experiment_archived(&mut self, id: &str, archived: bool) -> Result<()> {
        self.experiment(id)?;
        if let Some(e) = self.experiments.iter_mut().find(|e| e.id == id) {
            e.archived = archived;
        }
        Ok(())
    }

    pub fn delete_experiment(&mut self, id: &str) -> Result<()> {
        self.experiment(id)?;
        self.experiments.retain(|e| e.id != id);
        Ok(())
    }

    // ---- runs ----

    pub fn run(&self, id: &str) -> Result<&RunRec> {
        self.runs
            .iter()
            .find(|r| r.id == id)
            .ok_or_else(|| Error::not_found(format!("ResourceNotFoundError: Run {id} not found")))
    }

    fn run_mut(&mut self, id: &str) -> Result<&mut RunRec> {
        self.run(id)?;
        Ok(self
            .runs
            .iter_mut()
            .find(|r| r.id == id)
            .expect("found above"))
    }

    /// Create a run following `script` (or the next queued one, or the default).
    pub fn create_run(&mut self, new: NewRun, script: Option<RunScript>) -> Result<&RunRec> {
        check_run_name(&new.display_name)?;
        let (spec, version_ref) = match new.source {
            RunSource::Spec(spec) => (spec, None),
            RunSource::Version(vid) => {
                let Some(v) = self.versions.iter().find(|v| v.id == vid) else {
                    return Err(Error::not_found(format!(
                        "Failed to create a run: ResourceNotFoundError: PipelineVersion {vid} not found"
                    )));
                };
                (
                    v.spec.clone(),
                    Some(json!({"pipeline_id": v.pipeline_id, "pipeline_version_id": v.id})),
                )
            }
        };
        if ir_of(&spec).get("root").is_none() {
            return Err(Error::invalid(
                "Invalid input error: Failed to create a run: invalid pipeline spec (no root)",
            ));
        }
        if let Some(rc) = &new.runtime_config
            && (!rc.is_object() || rc.get("parameters").is_some_and(|p| !p.is_object()))
        {
            return Err(Error::invalid(
                "proto: (line 1:2): invalid value for runtime_config",
            ));
        }
        let experiment_id = match new.experiment_id {
            Some(id) => id,
            None => self.default_experiment()?,
        };
        let now = Utc::now();
        let Some(exp) = self.experiments.iter_mut().find(|e| e.id == experiment_id) else {
            return Err(Error::not_found(format!(
                "Failed to create a run: ResourceNotFoundError: Experiment {experiment_id} not found"
            )));
        };
        exp.last_run = Some(now);
        let script = script
            .or_else(|| self.scripts.pop_front())
            .unwrap_or_else(|| self.default_script.clone());
        let seq = self.next_seq();
        self.runs.push(RunRec {
            id: uuid::Uuid::new_v4().to_string(),
            seq,
            experiment_id,
            display_name: new.display_name,
            description: new.description,
            tasks: task_names(&spec),
            pipeline_spec: version_ref.is_none().then_some(spec),
            version_ref,
            runtime_config: new.runtime_config,
            service_account: new
                .service_account
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| DEFAULT_SERVICE_ACCOUNT.into()),
            created: Instant::now(),
            created_wall: now,
            timeline: RunRec::timeline_for(&script),
            script,
            archived: false,
            terminate_calls: 0,
        });
        Ok(self.runs.last().expect("just pushed"))
    }

    /// `:terminate`: CANCELING now, CANCELED `cancel_delay` later (a finished run stays).
    pub fn terminate_run(&mut self, id: &str) -> Result<()> {
        let delay = self.cancel_delay;
        self.run_mut(id)?.terminate(delay);
        Ok(())
    }

    pub fn set_run_archived(&mut self, id: &str, archived: bool) -> Result<()> {
        self.run_mut(id)?.archived = archived;
        Ok(())
    }

    /// Force a run into `state` now. A state outside the API's enum reads as
    /// RUNTIME_STATE_UNSPECIFIED, as the server would answer it.
    pub fn set_run_state(&mut self, id: &str, state: RunState) -> Result<()> {
        let state = match state {
            RunState::Other(_) => RunState::Unspecified,
            s => s,
        };
        self.run_mut(id)?.cut(vec![(Duration::ZERO, state)]);
        Ok(())
    }

    pub fn delete_run(&mut self, id: &str) -> Result<()> {
        self.run(id)?;
        self.runs.retain(|r| r.id != id);
        Ok(())
    }

    // ---- pipelines and versions ----

    pub fn pipeline(&self, id: &str) -> Result<&PipelineRec> {
        self.pipelines.iter().find(|p| p.id == id).ok_or_else(|| {
            Error::not_found(format!("ResourceNotFoundError: Pipeline {id} not found"))
        })
    }

    pub fn pipeline_named(&self, name: &str) -> Result<&PipelineRec> {
        self.pipelines
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                Error::not_found(format!("ResourceNotFoundError: Pipeline {name} not found"))
            })
    }

    pub fn create_pipeline(
        &mut self,
        name: &str,
        display_name: &str,
        description: &str,
    ) -> Result<&PipelineRec> {
        if self.pipelines.iter().any(|p| p.name == name) {
            return Err(Error::already_exists(format!(
                "Already exist error: Failed to create a new pipeline. The name {name} already exists. Please specify a new name"
            )));
        }
        self.pipelines.push(PipelineRec {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.into(),
            display_name: display_name.into(),
            description: description.into(),
            created: Utc::now(),
        });
        Ok(self.pipelines.last().expect("just pushed"))
    }

    /// A pipeline with its first version (an upload): (pipeline id, version id).
    pub fn upload_pipeline(
        &mut self,
        name: &str,
        display_name: &str,
        description: &str,
        spec: Value,
    ) -> Result<(String, String)> {
        let pid = self
            .create_pipeline(name, display_name, description)?
            .id
            .clone();
        let vid = self
            .create_version(&pid, name, display_name, description, spec)?
            .id
            .clone();
        Ok((pid, vid))
    }

    pub fn delete_pipeline(&mut self, id: &str) -> Result<()> {
        self.pipeline(id)?;
        if self.versions.iter().any(|v| v.pipeline_id == id) {
            return Err(Error::failed_precondition(format!(
                "Failed to delete pipeline {id}: it has pipeline versions; delete them first"
            )));
        }
        self.pipelines.retain(|p| p.id != id);
        Ok(())
    }

    /// The versions of a pipeline, oldest first.
    pub fn versions_of(&self, pipeline_id: &str) -> Result<Vec<&VersionRec>> {
        self.pipeline(pipeline_id)?;
        let mut versions: Vec<&VersionRec> = self
            .versions
            .iter()
            .filter(|v| v.pipeline_id == pipeline_id)
            .collect();
        versions.sort_by_key(|v| v.seq);
        Ok(versions)
    }

    pub fn version(&self, pipeline_id: &str, id: &str) -> Result<&VersionRec> {
        self.versions
            .iter()
            .find(|v| v.id == id && v.pipeline_id == pipeline_id)
            .ok_or_else(|| {
                Error::not_found(format!(
                    "ResourceNotFoundError: PipelineVersion {id} not found"
                ))
            })
    }

    pub fn create_version(
        &mut self,
        pipeline_id: &str,
        name: &str,
        display_name: &str,
        description: &str,
        spec: Value,
    ) -> Result<&VersionRec> {
        self.pipeline(pipeline_id)?;
        if self
            .versions
            .iter()
            .any(|v| v.pipeline_id == pipeline_id && v.name == name)
        {
            return Err(Error::already_exists(format!(
                "Already exist error: Failed to create a new pipeline version. The name {name} already exists. Please specify a new name"
            )));
        }
        let seq = self.next_seq();
        self.versions.push(VersionRec {
            id: uuid::Uuid::new_v4().to_string(),
            pipeline_id: pipeline_id.into(),
            name: name.into(),
            display_name: display_name.into(),
            description: description.into(),
            created: Utc::now(),
            spec,
            seq,
        });
        Ok(self.versions.last().expect("just pushed"))
    }

    pub fn delete_version(&mut self, pipeline_id: &str, id: &str) -> Result<()> {
        self.version(pipeline_id, id)?;
        self.versions
            .retain(|v| !(v.id == id && v.pipeline_id == pipeline_id));
        Ok(())
    }
}

/// A compiled pipeline YAML as the server stores it: the IR, wrapped with the merged platform
/// spec when later documents exist.
pub fn spec_from_yaml(text: &str) -> Result<Value> {
    let mut docs = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let v =
            Value::deserialize(doc).map_err(|e| Error::invalid(format!("invalid YAML: {e}")))?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    let mut it = docs.into_iter();
    let ir = it
        .next()
        .ok_or_else(|| Error::invalid("the pipeline file is empty"))?;
    if ir.get("root").is_none() || ir.pointer("/pipelineInfo/name").is_none() {
        return Err(Error::invalid(
            "invalid pipeline spec: no root or pipelineInfo.name",
        ));
    }
    let mut platform = Map::new();
    for d in it {
        if let Value::Object(m) = d {
            platform.extend(m);
        }
    }
    Ok(if platform.is_empty() {
        ir
    } else {
        json!({"pipeline_spec": ir, "platform_spec": platform})
    })
}
