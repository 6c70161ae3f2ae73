//! The server's request schemas: which fields a `*Create` and `*Update` body may carry, of which
//! type, and how `customProperties` are normalised. An unknown field is a 400 (the Go server's
//! decoder refuses unknown fields); a value of the wrong type names the Go type, as the server
//! does.

use ct_emulator::{Error, Result};
use serde_json::{Map, Value, json};

/// The three entity kinds served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    RegisteredModel,
    ModelVersion,
    Artifact,
}

impl Kind {
    /// Words used in messages: "registered model", "model version", "model artifact".
    pub fn words(self) -> &'static str {
        match self {
            Kind::RegisteredModel => "registered model",
            Kind::ModelVersion => "model version",
            Kind::Artifact => "model artifact",
        }
    }
    /// Go type named in decode errors.
    fn go_type(self, create: bool) -> &'static str {
        match (self, create) {
            (Kind::RegisteredModel, true) => "openapi.RegisteredModelCreate",
            (Kind::RegisteredModel, false) => "openapi.RegisteredModelUpdate",
            (Kind::ModelVersion, true) => "openapi.ModelVersionCreate",
            (Kind::ModelVersion, false) => "openapi.ModelVersionUpdate",
            (Kind::Artifact, true) => "openapi.ModelArtifactCreate",
            (Kind::Artifact, false) => "openapi.ModelArtifactUpdate",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Field {
    Str,
    StrList,
    Props,
    Enum(&'static [&'static str]),
    /// An id given as a decimal string.
    Id,
}

const MODEL_STATES: &[&str] = &["LIVE", "ARCHIVED"];
const ARTIFACT_STATES: &[&str] = &[
    "UNKNOWN",
    "PENDING",
    "LIVE",
    "MARKED_FOR_DELETION",
    "DELETED",
    "ABANDONED",
    "REFERENCE",
];
const ARTIFACT_TYPES: &[&str] = &["model-artifact", "doc-artifact"];

const MODEL_FIELDS: &[(&str, Field)] = &[
    ("customProperties", Field::Props),
    ("description", Field::Str),
    ("externalId", Field::Str),
    ("name", Field::Str),
    ("owner", Field::Str),
    ("state", Field::Enum(MODEL_STATES)),
    ("readme", Field::Str),
    ("maturity", Field::Str),
    ("language", Field::StrList),
    ("tasks", Field::StrList),
    ("provider", Field::Str),
    ("logo", Field::Str),
    ("license", Field::Str),
    ("licenseLink", Field::Str),
    ("libraryName", Field::Str),
];

const VERSION_FIELDS: &[(&str, Field)] = &[
    ("customProperties", Field::Props),
    ("description", Field::Str),
    ("externalId", Field::Str),
    ("name", Field::Str),
    ("state", Field::Enum(MODEL_STATES)),
    ("author", Field::Str),
    ("registeredModelId", Field::Id),
];

const ARTIFACT_FIELDS: &[(&str, Field)] = &[
    ("customProperties", Field::Props),
    ("description", Field::Str),
    ("externalId", Field::Str),
    ("name", Field::Str),
    ("uri", Field::Str),
    ("state", Field::Enum(ARTIFACT_STATES)),
    ("artifactType", Field::Enum(ARTIFACT_TYPES)),
    ("modelFormatName", Field::Str),
    ("storageKey", Field::Str),
    ("storagePath", Field::Str),
    ("modelFormatVersion", Field::Str),
    ("serviceAccountName", Field::Str),
    ("modelSourceKind", Field::Str),
    ("modelSourceClass", Field::Str),
    ("modelSourceGroup", Field::Str),
    ("modelSourceId", Field::Str),
    ("modelSourceName", Field::Str),
];

/// Fields a doc artifact may carry (the others belong to model artifacts).
const DOC_ARTIFACT_FIELDS: &[&str] = &[
    "customProperties",
    "description",
    "externalId",
    "name",
    "uri",
    "state",
    "artifactType",
];

fn fields(kind: Kind) -> &'static [(&'static str, Field)] {
    match kind {
        Kind::RegisteredModel => MODEL_FIELDS,
        Kind::ModelVersion => VERSION_FIELDS,
        Kind::Artifact => ARTIFACT_FIELDS,
    }
}

/// Fields that can be set on create but never changed.
fn immutable(kind: Kind, field: &str) -> bool {
    field == "name" || (kind == Kind::ModelVersion && field == "registeredModelId")
}

/// Decode a request body the way the Go server does: JSON object, known fields only, each of
/// the right type. `extra` lists additional accepted fields (e.g. `id` on an upsert).
pub fn decode(kind: Kind, create: bool, body: &[u8], extra: &[&str]) -> Result<Map<String, Value>> {
    let go = kind.go_type(create);
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        Error::invalid(if body.iter().all(u8::is_ascii_whitespace) {
            "EOF".to_string()
        } else {
            format!("invalid character in JSON body: {e}")
        })
    })?;
    let Value::Object(obj) = value else {
        return Err(Error::invalid(format!(
            "json: cannot unmarshal {} into Go value of type {go}",
            json_kind(&value)
        )));
    };
    let spec = fields(kind);
    let mut out = Map::new();
    for (key, v) in obj {
        if extra.contains(&key.as_str()) {
            out.insert(key, v);
            continue;
        }
        let Some((_, field)) = spec.iter().find(|(f, _)| *f == key) else {
            return Err(Error::invalid(format!("json: unknown field \"{key}\"")));
        };
        if !create && immutable(kind, &key) {
            return Err(Error::invalid(format!("json: unknown field \"{key}\"")));
        }
        if v.is_null() {
            // Go leaves a pointer field nil for null: as if absent.
            continue;
        }
        let checked = match field {
            Field::Str => match &v {
                Value::String(_) => v,
                _ => return Err(type_error(&v, go, &key, "string")),
            },
            Field::Id => match &v {
                Value::String(s) if parse_id(s).is_some() => v,
                Value::String(s) => {
                    return Err(Error::invalid(format!(
                        "invalid {key} {s:?}: must be a positive 32-bit integer"
                    )));
                }
                _ => return Err(type_error(&v, go, &key, "string")),
            },
            Field::StrList => match &v {
                Value::Array(a) if a.iter().all(Value::is_string) => v,
                _ => return Err(type_error(&v, go, &key, "[]string")),
            },
            Field::Enum(allowed) => match &v {
                Value::String(s) if allowed.contains(&s.as_str()) => v,
                Value::String(s) => {
                    return Err(Error::invalid(format!(
                        "invalid value {s:?} for {key}: must be one of {}",
                        allowed.join(", ")
                    )));
                }
                _ => return Err(type_error(&v, go, &key, "string")),
            },
            Field::Props => Value::Object(custom_properties(&v, go)?),
        };
        out.insert(key, checked);
    }
    if kind == Kind::Artifact {
        let is_doc = out.get("artifactType").and_then(Value::as_str) == Some("doc-artifact");
        if is_doc
            && let Some(k) = out.keys().find(|k| {
                !DOC_ARTIFACT_FIELDS.contains(&k.as_str()) && !extra.contains(&k.as_str())
            })
        {
            return Err(Error::invalid(format!("json: unknown field \"{k}\"")));
        }
    }
    Ok(out)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_error(v: &Value, go: &str, key: &str, want: &str) -> Error {
    Error::invalid(format!(
        "json: cannot unmarshal {} into Go struct field {go}.{key} of type {want}",
        json_kind(v)
    ))
}

/// Validate and normalise `customProperties` as the server stores them: each value is
/// re-encoded from its typed form (payload key first, then `metadataType`); extra keys inside
/// a value are dropped and a missing payload reads as its zero value, like the Go decoder.
fn custom_properties(v: &Value, go: &str) -> Result<Map<String, Value>> {
    let Value::Object(m) = v else {
        return Err(type_error(
            v,
            go,
            "customProperties",
            "map[string]openapi.MetadataValue",
        ));
    };
    let mut out = Map::new();
    for (k, val) in m {
        let Value::Object(o) = val else {
            return Err(Error::invalid(format!(
                "customProperties[{k:?}]: a MetadataValue must be an object"
            )));
        };
        let t = o.get("metadataType").and_then(Value::as_str).unwrap_or("");
        let str_field = |name: &str| -> Result<Value> {
            match o.get(name) {
                None | Some(Value::Null) => Ok(Value::String(String::new())),
                Some(Value::String(s)) => Ok(Value::String(s.clone())),
                Some(other) => Err(type_error(other, "openapi.MetadataValue", name, "string")),
            }
        };
        let norm = match t {
            "MetadataStringValue" => {
                json!({"string_value": str_field("string_value")?, "metadataType": t})
            }
            "MetadataIntValue" => {
                let s = match o.get("int_value") {
                    None | Some(Value::Null) => "0".to_string(),
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => {
                        return Err(type_error(
                            other,
                            "openapi.MetadataIntValue",
                            "int_value",
                            "string",
                        ));
                    }
                };
                if s.parse::<i32>().is_err() {
                    return Err(Error::invalid(format!(
                        "invalid int_value {s:?} for custom property {k:?}: strconv.ParseInt: parsing {s:?}: value out of range or invalid syntax"
                    )));
                }
                json!({"int_value": s, "metadataType": t})
            }
            "MetadataDoubleValue" => {
                let d = match o.get("double_value") {
                    None | Some(Value::Null) => json!(0.0),
                    Some(n @ Value::Number(_)) => n.clone(),
                    Some(other) => {
                        return Err(type_error(
                            other,
                            "openapi.MetadataDoubleValue",
                            "double_value",
                            "float64",
                        ));
                    }
                };
                json!({"double_value": d, "metadataType": t})
            }
            "MetadataBoolValue" => {
                let b = match o.get("bool_value") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(b)) => *b,
                    Some(other) => {
                        return Err(type_error(
                            other,
                            "openapi.MetadataBoolValue",
                            "bool_value",
                            "bool",
                        ));
                    }
                };
                json!({"bool_value": b, "metadataType": t})
            }
            "MetadataStructValue" => {
                json!({"struct_value": str_field("struct_value")?, "metadataType": t})
            }
            "MetadataProtoValue" => json!({
                "type": str_field("type")?,
                "proto_value": str_field("proto_value")?,
                "metadataType": t
            }),
            other => {
                return Err(Error::invalid(format!(
                    "customProperties[{k:?}]: unknown metadataType {other:?}"
                )));
            }
        };
        out.insert(k.clone(), norm);
    }
    Ok(out)
}

/// A path or query id: `^[1-9][0-9]{0,8}$`-ish, any positive int32.
pub fn parse_id(s: &str) -> Option<u64> {
    match s.parse::<i32>() {
        Ok(n) if n > 0 => Some(n as u64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::status_of;
    use axum::http::StatusCode;

    #[test]
    fn decode_follows_the_go_server() {
        let e = decode(Kind::ModelVersion, false, br#"{"x":1}"#, &[]).unwrap_err();
        assert_eq!(
            (status_of(&e), e.message()),
            (StatusCode::BAD_REQUEST, "json: unknown field \"x\"")
        );
        let e = decode(Kind::ModelVersion, false, br#"{"name":"2"}"#, &[]).unwrap_err();
        assert_eq!(status_of(&e), StatusCode::BAD_REQUEST, "rename is refused");
        let e = decode(Kind::ModelVersion, false, br#"[1]"#, &[]).unwrap_err();
        assert!(e.message().contains("cannot unmarshal array"));
        let bad_int = br#"{"customProperties":{"n":{"metadataType":"MetadataIntValue","int_value":"2147483648"}}}"#;
        assert_eq!(
            status_of(&decode(Kind::ModelVersion, false, bad_int, &[]).unwrap_err()),
            StatusCode::BAD_REQUEST
        );
        let num_int =
            br#"{"customProperties":{"n":{"metadataType":"MetadataIntValue","int_value":5}}}"#;
        assert!(
            decode(Kind::ModelVersion, false, num_int, &[]).is_err(),
            "int_value is a string"
        );
        let unknown = br#"{"customProperties":{"n":{"metadataType":"MetadataFooValue"}}}"#;
        assert!(decode(Kind::ModelVersion, false, unknown, &[]).is_err());
        let ok = br#"{"customProperties":{"n":{"metadataType":"MetadataIntValue","int_value":"-5","extra":1}},"author":"a"}"#;
        let m = decode(Kind::ModelVersion, false, ok, &[]).unwrap();
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"customProperties":{"n":{"int_value":"-5","metadataType":"MetadataIntValue"}},"author":"a"}"#
        );
        let e = decode(Kind::ModelVersion, true, br#"{"state":"GONE"}"#, &[]).unwrap_err();
        assert!(e.message().contains("LIVE"));
    }
}
