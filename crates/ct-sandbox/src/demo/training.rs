//! The part of the training pipeline the KFP emulator does not play: a KFP run of the jukebox
//! pipeline registers the model version it trained, named by its `version` parameter, in the
//! Model Registry. The demo does it when the `train` task succeeds, so `update-model-metadata`
//! finds the version as it would on a cluster, whatever version the run was given (a push's
//! short SHA, or the version `resolve-version` derived for an alert).

use std::sync::Arc;

use ct_tekton_interpreter::{Observer, TaskRunReport, TaskStatus};

use super::seed::register_version;
use crate::serve::Sandbox;

/// Forwards everything to `inner`; registers the trained version after `train` succeeds.
pub(super) struct TrainingRegistersVersion {
    pub inner: Arc<dyn Observer>,
    pub sandbox: Arc<Sandbox>,
    pub model_id: String,
}

impl TrainingRegistersVersion {
    /// Register the version named by the KFP run's `version` parameter, unless it exists.
    fn register(&self, train: &TaskRunReport) -> Result<Option<String>, String> {
        let run_id = train
            .results
            .get("KFP_RUN_ID")
            .ok_or("train succeeded without a KFP_RUN_ID result")?;
        let run = self
            .sandbox
            .kfp
            .runs()
            .into_iter()
            .find(|r| r["run_id"] == run_id.as_str())
            .ok_or_else(|| format!("KFP run {run_id} is not in the emulator"))?;
        let version = run["runtime_config"]["parameters"]["version"]
            .as_str()
            .ok_or_else(|| format!("KFP run {run_id} has no string parameter version"))?
            .to_string();
        let registry = &self.sandbox.registry;
        if registry
            .versions_of(&self.model_id)
            .iter()
            .any(|v| v["name"] == version.as_str())
        {
            return Ok(None);
        }
        register_version(registry, &self.model_id, &version).map(|_| Some(version))
    }
}

impl Observer for TrainingRegistersVersion {
    fn task_started(&self, task: &str, stand_in: Option<&str>) {
        self.inner.task_started(task, stand_in);
    }

    fn line(&self, task: &str, step: &str, line: &str) {
        self.inner.line(task, step, line);
    }

    fn task_finished(&self, report: &TaskRunReport) {
        if report.name == "train" && report.status == TaskStatus::Succeeded {
            let line = match self.register(report) {
                Ok(Some(v)) => format!("the training run registered model version {v}"),
                Ok(None) => "the trained model version is registered already".to_string(),
                Err(e) => format!("cannot register the trained model version: {e}"),
            };
            self.inner
                .line(&report.name, "kfp-pipeline (emulated)", &line);
        }
        self.inner.task_finished(report);
    }
}
