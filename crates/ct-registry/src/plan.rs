//! The metadata change of one deploy: planned in full from what the registry holds, then
//! applied.
//!
//! The environment label is the representation the Python step used: a custom property named
//! after the environment (`test`, `prod`) whose value is the empty string
//! (`{"metadataType":"MetadataStringValue","string_value":""}`). Exactly one version of a
//! model holds it.
//!
//! Order of the writes: the deployed version (run id, label, author, extra properties) in one
//! PATCH, then the label removed from every other version that holds it, then the artifact
//! URI. Every PATCH carries the complete desired value of its fields, so a resend or a re-run
//! converges; a re-run with the same inputs plans no change at all.
//!
//! Two deploys of different versions at the same time can both add the label before either
//! removes it. After writing, the step lists the versions again; when several hold the label,
//! the one written last (highest `lastUpdateTimeSinceEpoch`, then highest id) keeps it and the
//! others lose it. Every concurrent run applies the same rule, so they agree.

use std::fmt;

use ct_step::{Result, StepError};

use crate::client::RegistryClient;
use crate::types::{
    ModelArtifact, ModelArtifactPatch, ModelVersion, ModelVersionPatch, RegisteredModel,
};
use crate::value::{MetadataValue, parse_property};

/// Custom property holding the KFP run id.
pub const RUN_ID_KEY: &str = "pipeline_run_id";

/// What the step was asked to record.
#[derive(Debug, Clone)]
pub struct Request {
    pub model: String,
    pub version: String,
    pub environment: String,
    pub run_id: String,
    pub author: String,
    pub artifact_uri: String,
    /// Name of the model artifact when the version has several.
    pub artifact_name: Option<String>,
    /// Extra custom properties (`--property`), already typed.
    pub properties: Vec<(String, MetadataValue)>,
}

impl Request {
    /// Parse `--property` values and check every input; errors are usage errors (exit 2).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        model: &str,
        version: &str,
        environment: &str,
        run_id: &str,
        author: &str,
        artifact_uri: &str,
        artifact_name: Option<&str>,
        properties: &[String],
    ) -> Result<Request> {
        for (flag, v) in [
            ("--model", model),
            ("--version", version),
            ("--kfp-run-id", run_id),
            ("--author", author),
        ] {
            if v.trim().is_empty() {
                return Err(StepError::usage(format!("{flag} is empty; pass a value")));
            }
            if v.chars().any(char::is_control) {
                return Err(StepError::usage(format!(
                    "{flag} {v:?} has control characters (newline?); pass a single-line value"
                )));
            }
        }
        if environment.is_empty()
            || !environment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            || !environment.starts_with(|c: char| c.is_ascii_alphanumeric())
        {
            return Err(StepError::usage(format!(
                "--environment {environment:?}: write a label of letters, digits, '-', '_' or '.', e.g. test or prod"
            )));
        }
        if environment == RUN_ID_KEY {
            return Err(StepError::usage(format!(
                "--environment {environment}: that name is the run-id property; choose another label"
            )));
        }
        let uri_ok = artifact_uri
            .split_once("://")
            .is_some_and(|(scheme, rest)| {
                !scheme.is_empty()
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
                    && !rest.is_empty()
            })
            && !artifact_uri
                .chars()
                .any(|c| c.is_whitespace() || c.is_control());
        if !uri_ok {
            return Err(StepError::usage(format!(
                "--artifact-uri {artifact_uri:?}: write a URI such as oci://registry/ns/model:1"
            )));
        }
        if artifact_name.is_some_and(|n| n.trim().is_empty()) {
            return Err(StepError::usage(
                "--artifact-name is empty; pass the artifact's name or leave it out",
            ));
        }
        if let Some(n) = artifact_name.filter(|n| n.chars().any(char::is_control)) {
            return Err(StepError::usage(format!(
                "--artifact-name {n:?} has control characters (newline?); pass a single-line value"
            )));
        }
        let mut props: Vec<(String, MetadataValue)> = Vec::new();
        // Blank entries come from an empty CT_PROPERTY (a Task param left at "").
        for spec in properties.iter().filter(|p| !p.trim().is_empty()) {
            let (k, v) = parse_property(spec)?;
            if k == RUN_ID_KEY || k == environment {
                return Err(StepError::usage(format!(
                    "--property {spec:?}: {k} is set by the step itself (--kfp-run-id / --environment); drop this --property"
                )));
            }
            if props.iter().any(|(p, _)| *p == k) {
                return Err(StepError::usage(format!(
                    "--property {spec:?}: {k} is given twice; keep one"
                )));
            }
            props.push((k, v));
        }
        Ok(Request {
            model: model.to_string(),
            version: version.to_string(),
            environment: environment.to_string(),
            run_id: run_id.to_string(),
            author: author.to_string(),
            artifact_uri: artifact_uri.to_string(),
            artifact_name: artifact_name.map(str::to_string),
            properties: props,
        })
    }
}

/// One planned write.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// PATCH a model version.
    Version {
        id: String,
        name: String,
        patch: ModelVersionPatch,
        /// Human summary, e.g. `set pipeline_run_id="run-1"`.
        what: Vec<String>,
    },
    /// PATCH a model artifact.
    Artifact {
        id: String,
        name: String,
        patch: ModelArtifactPatch,
        what: Vec<String>,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Version { id, name, what, .. } => {
                write!(
                    f,
                    "PATCH model_versions/{id} (version {name:?}): {}",
                    what.join(", ")
                )
            }
            Change::Artifact { id, name, what, .. } => {
                write!(
                    f,
                    "PATCH model_artifacts/{id} (artifact {name:?}): {}",
                    what.join(", ")
                )
            }
        }
    }
}

/// Everything looked up, and the writes to make.
#[derive(Debug, Clone)]
pub struct Plan {
    pub model: RegisteredModel,
    pub version: ModelVersion,
    pub artifact: ModelArtifact,
    pub environment: String,
    /// In the order they will be applied.
    pub changes: Vec<Change>,
}

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub version_id: String,
    /// PATCH requests sent (including label conflict resolution).
    pub patches: usize,
}

/// Look up the model, the version, its artifact and every version of the model, and work out
/// the writes. Sends only GETs. A missing model, version or artifact, or an ambiguous
/// artifact, is a usage error (exit 2).
pub async fn plan(client: &RegistryClient, req: &Request) -> Result<Plan> {
    let model = client
        .find_registered_model(&req.model)
        .await?
        .ok_or_else(|| {
            StepError::usage(format!(
                "--model {:?}: no registered model with this name in the Model Registry; check the name (register the model first)",
                req.model
            ))
        })?;
    let versions = client.list_model_versions(&model.id).await?;
    let Some(version) = versions.iter().find(|v| v.name == req.version).cloned() else {
        let mut names: Vec<&str> = versions.iter().map(|v| v.name.as_str()).collect();
        let more = names.len() > 10;
        names.truncate(10);
        return Err(StepError::usage(format!(
            "--version {:?}: model {:?} has no such version (it has: {}{}); check the version",
            req.version,
            req.model,
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            },
            if more { ", …" } else { "" }
        )));
    };
    let artifact = find_artifact(client, req, &version).await?;

    let mut changes = Vec::new();

    // The deployed version.
    let mut props = version.custom_properties.clone();
    let mut what = Vec::new();
    let mut wanted: Vec<(String, MetadataValue)> = vec![
        (RUN_ID_KEY.to_string(), MetadataValue::string(&req.run_id)),
        (req.environment.clone(), MetadataValue::string("")),
    ];
    wanted.extend(req.properties.iter().cloned());
    for (k, v) in wanted {
        match props.get(&k) {
            Some(old) if old.same_as(&v) => {}
            old => {
                what.push(match old {
                    Some(old) => format!("set {k}={v} (was {old})"),
                    None if k == req.environment => format!("add environment label {k}"),
                    None => format!("set {k}={v}"),
                });
                props.insert(k, v);
            }
        }
    }
    let mut patch = ModelVersionPatch::default();
    if props != version.custom_properties {
        patch.custom_properties = Some(props);
    }
    if version.author.as_deref() != Some(req.author.as_str()) {
        what.push(format!(
            "author {:?} (was {})",
            req.author,
            version
                .author
                .as_deref()
                .map_or("unset".to_string(), |a| format!("{a:?}"))
        ));
        patch.author = Some(req.author.clone());
    }
    if !patch.is_empty() {
        changes.push(Change::Version {
            id: version.id.clone(),
            name: version.name.clone(),
            patch,
            what,
        });
    }

    // Every other holder of the label loses it (the whole remaining map is sent, `{}` included).
    for other in versions.iter().filter(|v| v.id != version.id) {
        if let Some(change) = removal(other, &req.environment) {
            changes.push(change);
        }
    }

    // The artifact URI.
    if artifact.uri.as_deref() != Some(req.artifact_uri.as_str()) {
        changes.push(Change::Artifact {
            id: artifact.id.clone(),
            name: artifact.name.clone().unwrap_or_default(),
            patch: ModelArtifactPatch::uri(&req.artifact_uri),
            what: vec![format!(
                "uri {:?} (was {})",
                req.artifact_uri,
                artifact
                    .uri
                    .as_deref()
                    .map_or("unset".to_string(), |u| format!("{u:?}"))
            )],
        });
    }

    Ok(Plan {
        model,
        version,
        artifact,
        environment: req.environment.clone(),
        changes,
    })
}

fn removal(v: &ModelVersion, label: &str) -> Option<Change> {
    if !v.custom_properties.contains_key(label) {
        return None;
    }
    let mut props = v.custom_properties.clone();
    props.remove(label);
    Some(Change::Version {
        id: v.id.clone(),
        name: v.name.clone(),
        patch: ModelVersionPatch {
            custom_properties: Some(props),
            author: None,
        },
        what: vec![format!("remove environment label {label}")],
    })
}

async fn find_artifact(
    client: &RegistryClient,
    req: &Request,
    version: &ModelVersion,
) -> Result<ModelArtifact> {
    if let Some(name) = &req.artifact_name {
        return client
            .find_model_artifact(name, &version.id)
            .await?
            .ok_or_else(|| {
                StepError::usage(format!(
                    "--artifact-name {name:?}: version {:?} of model {:?} has no model artifact with this name; check the name",
                    req.version, req.model
                ))
            });
    }
    let all = client.list_version_model_artifacts(&version.id).await?;
    if all.len() == 1 {
        return Ok(all.into_iter().next().expect("one artifact"));
    }
    if all.is_empty() {
        return Err(StepError::usage(format!(
            "version {:?} of model {:?} has no model artifact; register the model with its artifact first",
            req.version, req.model
        )));
    }
    // Several: the one named after the model, as the Python client registers it.
    let named: Vec<&ModelArtifact> = all
        .iter()
        .filter(|a| a.name.as_deref() == Some(req.model.as_str()))
        .collect();
    if let [one] = named.as_slice() {
        return Ok((*one).clone());
    }
    let names: Vec<String> = all
        .iter()
        .map(|a| format!("{:?}", a.name.as_deref().unwrap_or("")))
        .collect();
    Err(StepError::usage(format!(
        "version {:?} of model {:?} has {} model artifacts ({}); pass --artifact-name to choose one",
        req.version,
        req.model,
        all.len(),
        names.join(", ")
    )))
}

/// Send the planned PATCHes in order, then make sure exactly one version holds the label.
pub async fn apply(client: &RegistryClient, plan: &Plan) -> Result<Outcome> {
    let mut patches = 0;
    for change in &plan.changes {
        tracing::info!("{change}");
        match change {
            Change::Version { id, patch, .. } => {
                client.patch_model_version(id, patch).await?;
            }
            Change::Artifact { id, patch, .. } => {
                client.patch_model_artifact(id, patch).await?;
            }
        }
        patches += 1;
    }
    let touched_label = plan
        .changes
        .iter()
        .any(|c| matches!(c, Change::Version { .. }));
    if touched_label {
        patches += settle_label(client, plan).await?;
    }
    Ok(Outcome {
        version_id: plan.version.id.clone(),
        patches,
    })
}

/// Re-list the versions; if a concurrent run left several holders of the label, keep it on the
/// one written last and remove it from the others. Returns the PATCHes sent.
async fn settle_label(client: &RegistryClient, plan: &Plan) -> Result<usize> {
    let label = &plan.environment;
    let versions = client.list_model_versions(&plan.model.id).await?;
    let holders: Vec<&ModelVersion> = versions
        .iter()
        .filter(|v| v.custom_properties.contains_key(label))
        .collect();
    let Some(winner) = holders
        .iter()
        .max_by_key(|v| (v.last_update_ms(), v.id_num()))
    else {
        tracing::warn!(
            "no version of {:?} holds the label {label:?} any more: a concurrent run removed it",
            plan.model.name
        );
        return Ok(0);
    };
    if winner.id != plan.version.id {
        tracing::warn!(
            "the label {label:?} is now on version {:?}: a concurrent run set it after this one",
            winner.name
        );
    }
    let mut sent = 0;
    for loser in holders.iter().filter(|v| v.id != winner.id) {
        if let Some(change) = removal(loser, label) {
            tracing::warn!("concurrent deploy: {change}");
            if let Change::Version { id, patch, .. } = &change {
                client.patch_model_version(id, patch).await?;
                sent += 1;
            }
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(props: &[&str]) -> Result<Request> {
        Request::new(
            "jukebox",
            "2",
            "test",
            "run-1",
            "Bob <bob@example.com>",
            "oci://r/ns/jukebox:2",
            None,
            &props.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    }

    #[test]
    fn inputs_are_validated_before_anything_else() {
        assert!(req(&["team=ml", "epochs:int=3"]).is_ok());
        assert!(req(&["", " "]).unwrap().properties.is_empty());
        let e = req(&["pipeline_run_id=x"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("--property"), "{e}");
        assert!(req(&["test=x"]).is_err(), "the label is not a --property");
        assert!(
            req(&["a=1", "a=2"])
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        let bad_env = Request::new("m", "1", "te st", "r", "a", "oci://x/y", None, &[]);
        assert!(bad_env.unwrap_err().to_string().contains("--environment"));
        let bad_uri = Request::new("m", "1", "test", "r", "a", "jukebox:2", None, &[]);
        assert!(bad_uri.unwrap_err().to_string().contains("--artifact-uri"));
        let empty = Request::new("m", " ", "test", "r", "a", "oci://x/y", None, &[]);
        assert!(empty.unwrap_err().to_string().contains("--version"));
        let nl = Request::new("m", "1", "test", "r\n", "a", "oci://x/y", None, &[]);
        assert!(nl.unwrap_err().to_string().contains("--kfp-run-id"));
        let nl = Request::new("m", "1", "test", "r", "a", "oci://x/y", Some("a\rb"), &[]);
        assert!(nl.unwrap_err().to_string().contains("--artifact-name"));
        // One --property is one property: a newline inside is refused, not split.
        let e = req(&["a=1\nb=2"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("control"), "{e}");
        assert!(
            req(&["note=caf\u{e9} \u{1F3B5}"]).is_ok(),
            "non-ASCII is text"
        );
    }
}
