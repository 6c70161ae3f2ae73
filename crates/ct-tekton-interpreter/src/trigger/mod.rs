//! The Tekton Triggers path of a webhook, evaluated locally from the repository's YAML:
//! `Trigger` interceptors (`github` signature + event type, `cel` filter + overlays), then the
//! `TriggerBinding` (`$(body.…)`, `$(header.…)`, `$(extensions.…)`), then the
//! `TriggerTemplate`'s PipelineRun params (`$(tt.params.…)`).
//!
//! CEL runs on the `cel` crate with the cel-go strings extension, plus the Triggers extensions
//! `truncate(n)`, `header.canonical(name)` and `<string>.compareSecret(key, secretName)`; other
//! Triggers extensions (`header.match`, `parseJSON`, the 3-argument `compareSecret`, …) are not
//! provided and make an expression fail to evaluate, loudly.
//!
//! The EventListener stand-in ([`listener_router`]) reads a payload of at most
//! [`MAX_PAYLOAD_BYTES`] (counted while reading; a larger one is answered 413 and reported).
//!
//! Modules: [`load`] (the YAML objects), [`eval`] (interceptors and bindings for one delivery),
//! [`cel`] (the CEL environment), [`install`] (the Triggers for one git server, the Secrets
//! they read).

pub mod cel;
pub mod eval;
pub mod install;
pub mod load;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use crate::Error;
pub use cel::cel_eval;
pub use eval::{evaluate, signature_256};
pub use install::SecretRefs;
pub use load::{load_binding, load_trigger, template_pipelinerun_params};

/// The Secrets of the EventListener's namespace: (Secret name, key) → value.
pub type Secrets = BTreeMap<(String, String), String>;

/// Largest webhook payload the EventListener stand-in reads: 25 MiB, GitHub's cap on a
/// delivery (Gitea's and Alertmanager's are far smaller).
pub const MAX_PAYLOAD_BYTES: usize = 25 << 20;

/// One interceptor of a Trigger.
#[derive(Debug, Clone, PartialEq)]
pub enum Interceptor {
    /// The `github` ClusterInterceptor: `X-Hub-Signature-256` with the Secret, event types.
    Github {
        name: String,
        secret: Option<(String, String)>,
        event_types: Vec<String>,
    },
    /// The `cel` ClusterInterceptor: a filter and overlays (`extensions.<key>`).
    Cel {
        name: String,
        filter: Option<String>,
        overlays: Vec<(String, String)>,
    },
}

/// A Trigger: interceptors in order, binding refs, template ref.
#[derive(Debug, Clone)]
pub struct TriggerDef {
    pub name: String,
    pub interceptors: Vec<Interceptor>,
    pub bindings: Vec<String>,
    pub template: String,
}

/// The headers of a captured delivery (a `.headers` fixture): one `Name: value` per line; blank
/// lines and lines without `:` are skipped.
pub fn parse_headers(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

/// What the EventListener does with one delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Passed every interceptor; the TriggerBinding params.
    Accepted(BTreeMap<String, String>),
    /// Stopped by an interceptor (name and reason); nothing is created.
    Rejected { interceptor: String, reason: String },
}

/// The Triggers objects of a directory (`pipeline/triggers/`), as an EventListener sees them.
#[derive(Debug, Clone)]
pub struct TriggerSet {
    /// Triggers the EventListener references, in its order.
    pub triggers: Vec<TriggerDef>,
    pub bindings: Vec<(String, Vec<(String, String)>)>,
    /// TriggerTemplate name → file.
    pub templates: BTreeMap<String, std::path::PathBuf>,
}

/// What the EventListener made of one delivery for one Trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub trigger: String,
    pub decision: Decision,
    /// The PipelineRun params the TriggerTemplate renders (when accepted).
    pub pipelinerun_params: Option<BTreeMap<String, String>>,
}

impl TriggerSet {
    /// Load every Trigger, TriggerBinding, TriggerTemplate and the EventListener of `dir`.
    pub fn load(dir: &Path) -> Result<TriggerSet, Error> {
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| Error::new(format!("{}: {e}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        let mut all = Vec::new();
        let mut bindings = Vec::new();
        let mut templates = BTreeMap::new();
        let mut refs: Option<Vec<String>> = None;
        for f in files {
            let text = std::fs::read_to_string(&f)
                .map_err(|e| Error::new(format!("{}: {e}", f.display())))?;
            let v: Value = serde_yaml_ng::from_str(&text)
                .map_err(|e| Error::new(format!("{}: {e}", f.display())))?;
            let name = v["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            match v["kind"].as_str().unwrap_or_default() {
                "Trigger" => all.push(load_trigger(&f)?),
                "TriggerBinding" => bindings.push(load_binding(&f)?),
                "TriggerTemplate" => {
                    templates.insert(name, f.clone());
                }
                "EventListener" => {
                    refs = Some(
                        v["spec"]["triggers"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|t| t["triggerRef"].as_str().map(str::to_string))
                            .collect(),
                    );
                }
                _ => {}
            }
        }
        let triggers = match refs {
            Some(r) => r
                .iter()
                .map(|n| {
                    all.iter().find(|t| &t.name == n).cloned().ok_or_else(|| {
                        Error::new(format!("EventListener references missing Trigger {n}"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => all,
        };
        Ok(TriggerSet {
            triggers,
            bindings,
            templates,
        })
    }

    /// Run one delivery through every Trigger of the EventListener.
    pub fn handle(
        &self,
        headers: &[(String, String)],
        body: &[u8],
        secrets: &Secrets,
    ) -> Result<Vec<Evaluation>, Error> {
        let mut out = Vec::new();
        for t in &self.triggers {
            let decision = evaluate(t, &self.bindings, headers, body, secrets)?;
            let pipelinerun_params = match &decision {
                Decision::Accepted(params) => {
                    let tt = self.templates.get(&t.template).ok_or_else(|| {
                        Error::new(format!("TriggerTemplate {} not found", t.template))
                    })?;
                    Some(template_pipelinerun_params(tt, params)?)
                }
                Decision::Rejected { .. } => None,
            };
            out.push(Evaluation {
                trigger: t.name.clone(),
                decision,
                pipelinerun_params,
            });
        }
        Ok(out)
    }
}

/// An EventListener stand-in: `POST /` runs the delivery through `set` and answers 202 (as a
/// real EventListener does, whatever the interceptors decide); every outcome (or error) goes to
/// `tx`. A payload over [`MAX_PAYLOAD_BYTES`] is answered 413 naming the limit, and reported
/// to `tx` as an error.
pub fn listener_router(
    set: Arc<TriggerSet>,
    secrets: Arc<Secrets>,
    tx: tokio::sync::mpsc::UnboundedSender<Result<Vec<Evaluation>, Error>>,
) -> axum::Router {
    use axum::extract::DefaultBodyLimit;
    use axum::extract::rejection::BytesRejection;
    use axum::http::{HeaderMap, StatusCode};
    let handler = move |headers: HeaderMap, body: Result<axum::body::Bytes, BytesRejection>| {
        let set = set.clone();
        let secrets = secrets.clone();
        let tx = tx.clone();
        async move {
            let body = match body {
                Ok(b) => b,
                Err(rejection) => {
                    let status = rejection.status();
                    let msg = if status == StatusCode::PAYLOAD_TOO_LARGE {
                        format!(
                            "webhook payload larger than the EventListener stand-in's limit of {} MiB",
                            MAX_PAYLOAD_BYTES >> 20
                        )
                    } else {
                        format!("webhook payload could not be read: {rejection}")
                    };
                    let _ = tx.send(Err(Error::new(msg.clone())));
                    return (status, msg);
                }
            };
            let hs: Vec<(String, String)> = headers
                .iter()
                .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.to_string(), v.to_string())))
                .collect();
            let _ = tx.send(set.handle(&hs, &body, &secrets));
            (StatusCode::ACCEPTED, "{}".to_string())
        }
    };
    axum::Router::new()
        .route("/", axum::routing::post(handler))
        .layer(DefaultBodyLimit::max(MAX_PAYLOAD_BYTES))
}
