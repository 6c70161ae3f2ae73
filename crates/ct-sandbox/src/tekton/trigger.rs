//! The Tekton Triggers path of a webhook, evaluated locally from the repository's YAML:
//! `Trigger` interceptors (`github` signature + event type, `cel` filter + overlays), then the
//! `TriggerBinding` (`$(body.…)`, `$(header.…)`, `$(extensions.…)`), then the
//! `TriggerTemplate`'s PipelineRun params (`$(tt.params.…)`).
//!
//! CEL runs on the `cel` crate with the cel-go strings extension, plus the Triggers extension
//! `truncate(n)`; other Triggers extensions (`compareSecret`, `header.match`, `parseJSON`, …) are
//! not provided and make an expression fail to evaluate, loudly.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::Error;

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

fn yaml(path: &Path, kind: &str) -> Result<Value, Error> {
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
    let mut scope = super::subst::Scope::new();
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
fn substitute_tt(scope: &super::subst::Scope, raw: &str) -> Result<String, Error> {
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
            Some(super::subst::Resolved::Str(s)) => out.push_str(s),
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

/// `sha256=<hex>` of HMAC-SHA256(secret, body), as Gitea and GitHub send in X-Hub-Signature-256.
pub fn signature_256(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Run one delivery through the Trigger and its bindings. `secret(name, key)` returns a Secret's
/// value (None: the Secret does not exist, which fails the github interceptor).
pub fn evaluate(
    trigger: &TriggerDef,
    bindings: &[(String, Vec<(String, String)>)],
    headers: &[(String, String)],
    body: &[u8],
    secret: &dyn Fn(&str, &str) -> Option<String>,
) -> Result<Decision, Error> {
    let json: Value = serde_json::from_slice(body)
        .map_err(|e| Error::new(format!("webhook body is not JSON: {e}")))?;
    let mut extensions = serde_json::Map::new();
    for i in &trigger.interceptors {
        match i {
            Interceptor::Github {
                name,
                secret: sref,
                event_types,
            } => {
                if !event_types.is_empty() {
                    let ev = header(headers, "X-GitHub-Event").unwrap_or("");
                    if !event_types.iter().any(|t| t == ev) {
                        return Ok(Decision::Rejected {
                            interceptor: name.clone(),
                            reason: format!("event type {ev:?} is not allowed"),
                        });
                    }
                }
                if let Some((sname, skey)) = sref {
                    let Some(s) = secret(sname, skey) else {
                        return Ok(Decision::Rejected {
                            interceptor: name.clone(),
                            reason: format!("secret {sname}/{skey} not found"),
                        });
                    };
                    let expected = signature_256(s.as_bytes(), body);
                    let got = header(headers, "X-Hub-Signature-256").unwrap_or("");
                    if !constant_time_eq(expected.as_bytes(), got.as_bytes()) {
                        return Ok(Decision::Rejected {
                            interceptor: name.clone(),
                            reason: "X-Hub-Signature-256 does not match the payload".into(),
                        });
                    }
                }
            }
            Interceptor::Cel {
                name,
                filter,
                overlays,
            } => {
                let ext = Value::Object(extensions.clone());
                if let Some(f) = filter {
                    match cel_eval(f, &json, headers, &ext)? {
                        Value::Bool(true) => {}
                        Value::Bool(false) => {
                            return Ok(Decision::Rejected {
                                interceptor: name.clone(),
                                reason: format!("filter {f:?} evaluated to false"),
                            });
                        }
                        other => {
                            return Err(Error::new(format!(
                                "interceptor {name}: filter returned {other}, not a bool"
                            )));
                        }
                    }
                }
                for (key, expr) in overlays {
                    let v = cel_eval(expr, &json, headers, &ext)?;
                    extensions.insert(key.clone(), v);
                }
            }
        }
    }
    let ext = Value::Object(extensions);
    let mut params = BTreeMap::new();
    for b in &trigger.bindings {
        let (_, ps) = bindings
            .iter()
            .find(|(n, _)| n == b)
            .ok_or_else(|| Error::new(format!("TriggerBinding {b} not found")))?;
        for (name, template) in ps {
            params.insert(name.clone(), bind(template, &json, headers, &ext)?);
        }
    }
    Ok(Decision::Accepted(params))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Substitute `$(body.a.b)`, `$(header.X)` and `$(extensions.k)` in a binding value.
fn bind(
    template: &str,
    body: &Value,
    headers: &[(String, String)],
    ext: &Value,
) -> Result<String, Error> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find(')')
            .ok_or_else(|| Error::new(format!("unterminated reference in {template:?}")))?;
        let path = &after[..end];
        let (root, tail) = path.split_once('.').unwrap_or((path, ""));
        let value = match root {
            "body" => lookup(body, tail),
            "extensions" => lookup(ext, tail),
            "header" => header(headers, tail).map(|h| Value::String(h.to_string())),
            _ => None,
        }
        .ok_or_else(|| {
            Error::new(format!(
                "binding {template:?}: $({path}) not found in the event"
            ))
        })?;
        match value {
            Value::String(s) => out.push_str(&s),
            other => out.push_str(&other.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn lookup(v: &Value, path: &str) -> Option<Value> {
    if path.is_empty() {
        return Some(v.clone());
    }
    path.split('.')
        .try_fold(v, |cur, key| cur.get(key))
        .cloned()
}

/// Evaluate a Triggers CEL expression with `body`, `header` and `extensions` bound.
pub fn cel_eval(
    expr: &str,
    body: &Value,
    headers: &[(String, String)],
    extensions: &Value,
) -> Result<Value, Error> {
    let mut env = cel::Env::stdlib();
    env.add_extension(cel::extensions::strings)
        .map_err(|e| Error::new(format!("CEL strings extension: {e:?}")))?;
    let env = Arc::new(env);
    let program = env
        .compile(expr)
        .map_err(|e| Error::new(format!("CEL {expr:?} does not parse: {e}")))?;
    let mut ctx = cel::Context::with_env(env);
    ctx.add_function(
        "truncate",
        |cel::extractors::This(s): cel::extractors::This<Arc<String>>, n: i64| -> Arc<String> {
            let n = usize::try_from(n).unwrap_or(0);
            Arc::new(s.chars().take(n).collect())
        },
    )
    .map_err(|e| Error::new(format!("CEL truncate: {e:?}")))?;
    let mut hmap = serde_json::Map::new();
    for (k, v) in headers {
        hmap.insert(
            canonical_header(k),
            Value::Array(vec![Value::String(v.clone())]),
        );
    }
    for (name, v) in [
        ("body", body.clone()),
        ("header", Value::Object(hmap)),
        ("extensions", extensions.clone()),
    ] {
        let cv = cel::to_value(&v).map_err(|e| Error::new(format!("CEL {name}: {e}")))?;
        ctx.add_variable_from_value(name, cv);
    }
    let out = program
        .execute(&ctx)
        .map_err(|e| Error::new(format!("CEL {expr:?}: {e}")))?;
    to_json(&out)
        .ok_or_else(|| Error::new(format!("CEL {expr:?}: result {out:?} is not a JSON value")))
}

/// Scalars and lists of scalars (what filters and overlays return).
fn to_json(v: &cel::Value) -> Option<Value> {
    Some(match v {
        cel::Value::Bool(b) => Value::Bool(*b),
        cel::Value::String(s) => Value::String(s.to_string()),
        cel::Value::Int(i) => Value::from(*i),
        cel::Value::UInt(u) => Value::from(*u),
        cel::Value::Float(f) => Value::from(*f),
        cel::Value::Null => Value::Null,
        cel::Value::List(l) => Value::Array(l.iter().map(to_json).collect::<Option<_>>()?),
        _ => return None,
    })
}

/// `x-github-event` → `X-Github-Event` (Go's canonical MIME header key, as Triggers sees it).
fn canonical_header(k: &str) -> String {
    k.split('-')
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cel_with_strings_extension_and_truncate() {
        let body = serde_json::json!({"ref": "refs/heads/main", "after": "0123456789abcdef"});
        let e = Value::Object(Default::default());
        assert_eq!(
            cel_eval("body.after.truncate(7)", &body, &[], &e).unwrap(),
            Value::String("0123456".into())
        );
        assert_eq!(
            cel_eval("body.ref.split('/')[2]", &body, &[], &e).unwrap(),
            Value::String("main".into())
        );
        assert_eq!(
            cel_eval("body.ref.startsWith('refs/heads/')", &body, &[], &e).unwrap(),
            Value::Bool(true)
        );
        assert!(cel_eval("body.nope == 1", &body, &[], &e).is_err());
    }

    #[test]
    fn binds_body_extensions_and_headers() {
        let body = serde_json::json!({"repository": {"name": "jukebox", "id": 7}});
        let ext = serde_json::json!({"short_sha": "abc1234"});
        let h = vec![("x-gitea-event".to_string(), "push".to_string())];
        assert_eq!(
            bind("$(body.repository.name)", &body, &h, &ext).unwrap(),
            "jukebox"
        );
        assert_eq!(
            bind("id-$(body.repository.id)", &body, &h, &ext).unwrap(),
            "id-7"
        );
        assert_eq!(
            bind("$(extensions.short_sha)", &body, &h, &ext).unwrap(),
            "abc1234"
        );
        assert_eq!(
            bind("$(header.X-Gitea-Event)", &body, &h, &ext).unwrap(),
            "push"
        );
        assert!(bind("$(body.missing)", &body, &h, &ext).is_err());
    }

    #[test]
    fn canonical_headers() {
        assert_eq!(
            canonical_header("x-hub-signature-256"),
            "X-Hub-Signature-256"
        );
        assert_eq!(canonical_header("X-GitHub-Event"), "X-Github-Event");
    }
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

/// What the EventListener made of one delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
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
    ) -> Result<Vec<Outcome>, Error> {
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
            out.push(Outcome {
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
    tx: tokio::sync::mpsc::UnboundedSender<Result<Vec<Outcome>, Error>>,
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
