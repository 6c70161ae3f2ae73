//! One delivery through one Trigger: the interceptors in order, then the bindings.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::cel::{cel_eval, constant_time_eq};
use super::{Decision, Interceptor, Secrets, TriggerDef};
use crate::Error;

/// `sha256=<hex>` of HMAC-SHA256(secret, body), as Gitea and GitHub send in X-Hub-Signature-256.
pub fn signature_256(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub(super) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Run one delivery through the Trigger and its bindings. `secrets` holds the Secrets of the
/// EventListener's namespace by (name, key); a missing one rejects the delivery at the github
/// interceptor and fails a CEL `compareSecret`.
pub fn evaluate(
    trigger: &TriggerDef,
    bindings: &[(String, Vec<(String, String)>)],
    headers: &[(String, String)],
    body: &[u8],
    secrets: &Secrets,
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
                    let Some(s) = secrets.get(&(sname.clone(), skey.clone())) else {
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
                    match cel_eval(f, &json, headers, &ext, secrets)? {
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
                    let v = cel_eval(expr, &json, headers, &ext, secrets)?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
