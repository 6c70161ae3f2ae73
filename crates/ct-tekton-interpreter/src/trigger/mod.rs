//! The Tekton Triggers path of a webhook, evaluated locally from the repository's YAML:
//! `Trigger` interceptors (`github` signature + event type, `cel` filter + overlays), then the
//! `TriggerBinding` (`$(body.…)`, `$(header.…)`, `$(extensions.…)`), then the
//! `TriggerTemplate`'s PipelineRun params (`$(tt.params.…)`).
//!
//! CEL runs on the `cel` crate with the cel-go strings extension, plus the Triggers extension
//! `truncate(n)`; other Triggers extensions (`compareSecret`, `header.match`, `parseJSON`, …) are
//! not provided and make an expression fail to evaluate, loudly.
//!
//! Modules: [`load`] (the YAML objects), [`eval`] (interceptors and bindings for one delivery),
//! [`cel`] (the CEL environment).

pub mod cel;
pub mod eval;
pub mod load;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use crate::Error;
pub use cel::cel_eval;
pub use eval::{evaluate, signature_256};
pub use load::{load_binding, load_trigger, template_pipelinerun_params};

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
        secret: &dyn Fn(&str, &str) -> Option<String>,
    ) -> Result<Vec<Evaluation>, Error> {
        let mut out = Vec::new();
        for t in &self.triggers {
            let decision = evaluate(t, &self.bindings, headers, body, secret)?;
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
/// `tx`. `secrets` maps `(secret name, key)` to the value.
pub fn listener_router(
    set: Arc<TriggerSet>,
    secrets: Arc<BTreeMap<(String, String), String>>,
    tx: tokio::sync::mpsc::UnboundedSender<Result<Vec<Evaluation>, Error>>,
) -> axum::Router {
    use axum::http::{HeaderMap, StatusCode};
    let handler = move |headers: HeaderMap, body: axum::body::Bytes| {
        let set = set.clone();
        let secrets = secrets.clone();
        let tx = tx.clone();
        async move {
            let hs: Vec<(String, String)> = headers
                .iter()
                .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.to_string(), v.to_string())))
                .collect();
            let r = set.handle(&hs, &body, &|n, k| {
                secrets.get(&(n.to_string(), k.to_string())).cloned()
            });
            let _ = tx.send(r);
            (StatusCode::ACCEPTED, "{}")
        }
    };
    axum::Router::new().route("/", axum::routing::post(handler))
}
