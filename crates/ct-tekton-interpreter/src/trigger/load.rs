//! Loading the Triggers objects: `Trigger` (interceptors, bindings, template), `TriggerBinding`
//! and the `TriggerTemplate`'s PipelineRun params.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::{Interceptor, TriggerDef};
use crate::Error;
use crate::subst::{Resolved, Scope};

pub(super) fn yaml(path: &Path, kind: &str) -> Result<Value, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::new(format!("{}: {e}", path.display())))?;
    let v: Value = serde_yaml_ng::from_str(&text)
        .map_err(|e| Error::new(format!("{}: {e}", path.display())))?;
    if v["apiVersion"] != "triggers.tekton.dev/v1beta1" || v["kind"] != kind {
        return Err(Error::new(format!(
            "{}: expected triggers.tekton.dev/v1beta1 {kind}",
            path.display()
        )));
    }
    Ok(v)
}

fn param<'a>(params: &'a Value, name: &str) -> Option<&'a Value> {
    params
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
        .map(|p| &p["value"])
}

/// Load a Trigger.
pub fn load_trigger(path: &Path) -> Result<TriggerDef, Error> {
    let v = yaml(path, "Trigger")?;
    let spec = &v["spec"];
    let mut interceptors = Vec::new();
    for i in spec["interceptors"].as_array().into_iter().flatten() {
        let name = i["name"].as_str().unwrap_or_default().to_string();
        let r = i["ref"]["name"].as_str().unwrap_or_default();
        let params = &i["params"];
        match r {
            "github" => {
                let secret = param(params, "secretRef").map(|s| {
                    (
                        s["secretName"].as_str().unwrap_or_default().to_string(),
                        s["secretKey"].as_str().unwrap_or_default().to_string(),
                    )
                });
                let event_types = param(params, "eventTypes")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                interceptors.push(Interceptor::Github {
                    name,
                    secret,
                    event_types,
                });
            }
            "cel" => {
                let filter = param(params, "filter")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let overlays = param(params, "overlays")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|o| {
                                (
                                    o["key"].as_str().unwrap_or_default().to_string(),
                                    o["expression"].as_str().unwrap_or_default().to_string(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                interceptors.push(Interceptor::Cel {
                    name,
                    filter,
                    overlays,
                });
            }
            other => {
                return Err(Error::new(format!(
                    "{}: interceptor {name}: {other:?} is not evaluated locally (github and cel are)",
                    path.display()
                )));
            }
        }
    }
    let bindings = spec["bindings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["ref"].as_str().map(str::to_string))
        .collect();
    Ok(TriggerDef {
        name: v["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        interceptors,
        bindings,
        template: spec["template"]["ref"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    })
}

/// Load a TriggerBinding: param name → value template.
pub fn load_binding(path: &Path) -> Result<(String, Vec<(String, String)>), Error> {
    let v = yaml(path, "TriggerBinding")?;
    let params = v["spec"]["params"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default().to_string(),
                p["value"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    Ok((
        v["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        params,
    ))
}

/// The PipelineRun params a TriggerTemplate creates from `tt_params`.
pub fn template_pipelinerun_params(
    path: &Path,
    tt_params: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, Error> {
    let v = yaml(path, "TriggerTemplate")?;
    let mut scope = Scope::new();
    for p in v["spec"]["params"].as_array().into_iter().flatten() {
        let name = p["name"].as_str().unwrap_or_default();
        let value = tt_params
            .get(name)
            .cloned()
            .or_else(|| p["default"].as_str().map(str::to_string))
            .ok_or_else(|| {
                Error::new(format!(
                    "{}: TriggerTemplate param {name} has no value",
                    path.display()
                ))
            })?;
        scope.set(format!("tt.params.{name}"), value);
    }
    let mut out = BTreeMap::new();
    for rt in v["spec"]["resourcetemplates"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if rt["kind"] != "PipelineRun" {
            continue;
        }
        for p in rt["spec"]["params"].as_array().into_iter().flatten() {
            let name = p["name"].as_str().unwrap_or_default().to_string();
            let raw = p["value"].as_str().unwrap_or_default();
            out.insert(name, substitute_tt(&scope, raw)?);
        }
    }
    Ok(out)
}

/// `$(tt.params.x)` is not one of the Tekton Pipelines namespaces: substitute it by hand.
fn substitute_tt(scope: &Scope, raw: &str) -> Result<String, Error> {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(start) = rest.find("$(tt.params.") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find(')')
            .ok_or_else(|| Error::new(format!("unterminated reference in {raw:?}")))?;
        let key = &after[..end];
        match scope.get(key) {
            Some(Resolved::Str(s)) => out.push_str(s),
            _ => {
                return Err(Error::new(format!(
                    "$({key}) is not a TriggerTemplate param"
                )));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
