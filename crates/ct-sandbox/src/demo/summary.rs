//! The demo's closing report, read back from the emulators' handles and the run's results.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use ct_tekton_interpreter::{PipelineRunReport, RunStatus, TaskRunReport};
use serde_json::Value;

use super::{APP, Demo, GITOPS_REPO, USER};

/// One model version as the registry holds it.
#[derive(Debug, Clone)]
pub struct VersionSummary {
    pub id: String,
    pub name: String,
    pub author: String,
    /// Custom properties with an empty string value (the environment labels).
    pub labels: Vec<String>,
    /// Other custom properties, rendered.
    pub properties: BTreeMap<String, String>,
    pub artifact_uris: Vec<String>,
}

impl VersionSummary {
    fn from_json(v: &Value, artifacts: &[Value]) -> Self {
        let mut labels = Vec::new();
        let mut properties = BTreeMap::new();
        if let Some(props) = v["customProperties"].as_object() {
            for (k, p) in props {
                let rendered = ["string_value", "int_value", "double_value", "bool_value"]
                    .iter()
                    .find_map(|f| p.get(*f))
                    .map(|x| match x {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .unwrap_or_else(|| p.to_string());
                if p["metadataType"] == "MetadataStringValue" && rendered.is_empty() {
                    labels.push(k.clone());
                } else {
                    properties.insert(k.clone(), rendered);
                }
            }
        }
        let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        VersionSummary {
            id: text("id"),
            name: text("name"),
            author: text("author"),
            labels,
            properties,
            artifact_uris: artifacts
                .iter()
                .filter_map(|a| a["uri"].as_str().map(str::to_string))
                .collect(),
        }
    }
}

/// The demo's closing report.
#[derive(Debug, Clone)]
pub struct Summary {
    pub pipeline_run: String,
    pub status: RunStatus,
    /// Why the run failed when no TaskRun did.
    pub reason: Option<String>,
    pub tasks: Vec<TaskRunReport>,
    pub revision: String,
    pub kfp_run_id: Option<String>,
    pub kfp_run_state: Option<String>,
    pub modelcar: Option<String>,
    pub versions: Vec<VersionSummary>,
    /// What could not be read back from the emulators (shown, never dropped).
    pub read_errors: Vec<String>,
    pub test_commit: Option<String>,
    pub test_changed: Option<String>,
    pub prod_branch: Option<String>,
    pub pr_url: Option<String>,
    pub pr_action: Option<String>,
    pub open_pulls: Vec<String>,
    pub run_dir: PathBuf,
}

impl Demo {
    /// What a person wants to know after a run, read back from the emulators.
    pub fn summary(&self, report: &PipelineRunReport) -> Summary {
        let result =
            |task: &str, name: &str| report.task(task).and_then(|t| t.results.get(name)).cloned();
        let registry = &self.sandbox.registry;
        let mut read_errors = Vec::new();
        let mut versions = Vec::new();
        for v in registry.versions_of(&self.registry_model_id) {
            let id = v["id"].as_str().unwrap_or_default();
            let artifacts = registry.artifacts_of(id).unwrap_or_else(|e| {
                read_errors.push(format!("registry: artifacts of version {id}: {e}"));
                Vec::new()
            });
            versions.push(VersionSummary::from_json(&v, &artifacts));
        }
        let pulls = self
            .sandbox
            .forge
            .pulls(USER, GITOPS_REPO)
            .unwrap_or_else(|e| {
                read_errors.push(format!("forge: pull requests of {USER}/{GITOPS_REPO}: {e}"));
                Vec::new()
            });
        Summary {
            pipeline_run: report.name.clone(),
            status: report.status.clone(),
            reason: report.reason.clone(),
            tasks: report.tasks.clone(),
            // The commit the run trained (an alert names only a branch).
            revision: result("resolve-version", "GIT_REVISION")
                .unwrap_or_else(|| self.revision.clone()),
            kfp_run_id: result("train", "KFP_RUN_ID"),
            kfp_run_state: result("train", "KFP_RUN_STATE"),
            modelcar: result("build-modelcar", "IMAGE_URL")
                .zip(result("build-modelcar", "IMAGE_DIGEST"))
                .map(|(u, d)| format!("{u}@{d}")),
            versions,
            read_errors,
            test_commit: result("deploy-test", "COMMIT_SHA"),
            test_changed: result("deploy-test", "CHANGED"),
            prod_branch: result("promote-prod", "BRANCH"),
            pr_url: result("open-prod-pr", "PR_URL"),
            pr_action: result("open-prod-pr", "PR_ACTION"),
            open_pulls: pulls
                .iter()
                .filter(|p| p.open)
                .map(|p| format!("#{} {} ({} → {})", p.number, p.title, p.head, p.base))
                .collect(),
            run_dir: report.run_dir.clone(),
        }
    }
}

fn or_none(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "PipelineRun {}: {}", self.pipeline_run, self.status)?;
        if let Some(reason) = &self.reason {
            writeln!(f, "  {reason}")?;
        }
        writeln!(f, "  commit        {}", self.revision)?;
        for t in &self.tasks {
            let kind = if t.stand_in.is_some() {
                " [stand-in]"
            } else {
                ""
            };
            let fin = if t.finally { " (finally)" } else { "" };
            writeln!(f, "  {:<22} {}{kind}{fin}", t.name, t.status)?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "KFP run         {} ({})",
            or_none(&self.kfp_run_id),
            or_none(&self.kfp_run_state)
        )?;
        writeln!(
            f,
            "modelcar        {} [buildah stand-in: content hash, nothing pushed]",
            or_none(&self.modelcar)
        )?;
        writeln!(f, "Model Registry  {APP}")?;
        for v in &self.versions {
            let labels = if v.labels.is_empty() {
                "no environment label".to_string()
            } else {
                format!("labels {}", v.labels.join(", "))
            };
            writeln!(f, "  version {} (id {}): {labels}", v.name, v.id)?;
            if !v.author.is_empty() {
                writeln!(f, "    author       {}", v.author)?;
            }
            for (k, val) in &v.properties {
                writeln!(f, "    {k:<12} {val}")?;
            }
            for u in &v.artifact_uris {
                writeln!(f, "    artifact     {u}")?;
            }
        }
        writeln!(
            f,
            "GitOps test     commit {} on main (changed: {})",
            or_none(&self.test_commit),
            or_none(&self.test_changed)
        )?;
        writeln!(f, "GitOps prod     branch {}", or_none(&self.prod_branch))?;
        writeln!(
            f,
            "prod PR         {} ({})",
            or_none(&self.pr_url),
            or_none(&self.pr_action)
        )?;
        for p in &self.open_pulls {
            writeln!(f, "  open: {p}")?;
        }
        for e in &self.read_errors {
            writeln!(f, "cannot read     {e}")?;
        }
        write!(
            f,
            "TaskRun logs    {}",
            self.run_dir.join("tasks").display()
        )
    }
}
