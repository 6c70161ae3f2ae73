//! In-memory Model Registry state and the server's validation rules.
//!
//! Entities are JSON objects, validated field by field against the server's `*Create` and
//! `*Update` schemas: an unknown field is a 400 (the Go server's decoder refuses unknown
//! fields), a missing required field a 422 (with code "Bad Request", a quirk of the real
//! server), a duplicate name a 409. PATCH overlays the fields present; a present
//! `customProperties` replaces the whole stored map. Registered models and versions share one
//! id sequence, artifacts have their own, as in the real server.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

/// An error answer: `{"code": <reason phrase>, "message": ...}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: status.canonical_reason().unwrap_or(""),
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    /// 422 whose body says "Bad Request", like the real server.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "Bad Request",
            message: message.into(),
        }
    }
    pub fn body(&self) -> Value {
        json!({"code": self.code, "message": self.message})
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

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
pub fn decode(
    kind: Kind,
    create: bool,
    body: &[u8],
    extra: &[&str],
) -> ApiResult<Map<String, Value>> {
    let go = kind.go_type(create);
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(if body.iter().all(u8::is_ascii_whitespace) {
            "EOF".to_string()
        } else {
            format!("invalid character in JSON body: {e}")
        })
    })?;
    let Value::Object(obj) = value else {
        return Err(ApiError::bad_request(format!(
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
            return Err(ApiError::bad_request(format!(
                "json: unknown field \"{key}\""
            )));
        };
        if !create && immutable(kind, &key) {
            return Err(ApiError::bad_request(format!(
                "json: unknown field \"{key}\""
            )));
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
                    return Err(ApiError::bad_request(format!(
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
                    return Err(ApiError::bad_request(format!(
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
            return Err(ApiError::bad_request(format!(
                "json: unknown field \"{k}\""
            )));
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

fn type_error(v: &Value, go: &str, key: &str, want: &str) -> ApiError {
    ApiError::bad_request(format!(
        "json: cannot unmarshal {} into Go struct field {go}.{key} of type {want}",
        json_kind(v)
    ))
}

/// Validate and normalise `customProperties` as the server stores them: each value is
/// re-encoded from its typed form (payload key first, then `metadataType`); extra keys inside
/// a value are dropped and a missing payload reads as its zero value, like the Go decoder.
fn custom_properties(v: &Value, go: &str) -> ApiResult<Map<String, Value>> {
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
            return Err(ApiError::bad_request(format!(
                "customProperties[{k:?}]: a MetadataValue must be an object"
            )));
        };
        let t = o.get("metadataType").and_then(Value::as_str).unwrap_or("");
        let str_field = |name: &str| -> ApiResult<Value> {
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
                    return Err(ApiError::bad_request(format!(
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
                return Err(ApiError::bad_request(format!(
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

/// One stored entity.
#[derive(Debug, Clone)]
pub struct Entity {
    pub id: u64,
    /// Model of a version, version of an artifact (`None`: a top-level artifact).
    pub parent: Option<u64>,
    pub created: u64,
    pub updated: u64,
    pub fields: Map<String, Value>,
}

impl Entity {
    /// A new entity, created and last updated at `now`.
    fn new(id: u64, parent: Option<u64>, now: u64, fields: Map<String, Value>) -> Self {
        Entity {
            id,
            parent,
            created: now,
            updated: now,
            fields,
        }
    }

    /// The JSON the server returns.
    pub fn to_json(&self) -> Value {
        let mut m = self.fields.clone();
        m.insert("id".into(), Value::String(self.id.to_string()));
        m.insert(
            "createTimeSinceEpoch".into(),
            Value::String(self.created.to_string()),
        );
        m.insert(
            "lastUpdateTimeSinceEpoch".into(),
            Value::String(self.updated.to_string()),
        );
        Value::Object(m)
    }
    pub fn str(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }
}

/// The registry's state.
#[derive(Debug, Default)]
pub struct Store {
    next_context: u64,
    next_artifact: u64,
    last_ms: u64,
    pub models: BTreeMap<u64, Entity>,
    pub versions: BTreeMap<u64, Entity>,
    pub artifacts: BTreeMap<u64, Entity>,
}

impl Store {
    /// Milliseconds since the epoch, strictly increasing (so orderings are deterministic).
    fn now(&mut self) -> u64 {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        self.last_ms = ms.max(self.last_ms + 1);
        self.last_ms
    }

    pub fn table(&self, kind: Kind) -> &BTreeMap<u64, Entity> {
        match kind {
            Kind::RegisteredModel => &self.models,
            Kind::ModelVersion => &self.versions,
            Kind::Artifact => &self.artifacts,
        }
    }
    fn table_mut(&mut self, kind: Kind) -> &mut BTreeMap<u64, Entity> {
        match kind {
            Kind::RegisteredModel => &mut self.models,
            Kind::ModelVersion => &mut self.versions,
            Kind::Artifact => &mut self.artifacts,
        }
    }

    /// The entity with this path id: 400 for a malformed id, 404 for an unknown one.
    pub fn get(&self, kind: Kind, id: &str) -> ApiResult<&Entity> {
        let n = parse_id(id).ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid {} ID: strconv.ParseInt: parsing {id:?}: invalid syntax: bad request",
                kind.words()
            ))
        })?;
        self.table(kind).get(&n).ok_or_else(|| {
            ApiError::not_found(format!("no {} found for id {n}: not found", kind.words()))
        })
    }

    /// Create a registered model.
    pub fn create_model(&mut self, mut fields: Map<String, Value>) -> ApiResult<Entity> {
        let name = required_name(&fields)?;
        if self
            .models
            .values()
            .any(|m| m.str("name") == Some(name.as_str()))
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("registered model with name {name} already exists: conflict"),
            ));
        }
        defaults(&mut fields, "LIVE");
        self.next_context += 1;
        let id = self.next_context;
        let e = Entity::new(id, None, self.now(), fields);
        self.models.insert(id, e.clone());
        Ok(e)
    }

    /// Create a model version (its model comes from `registeredModelId`).
    pub fn create_version(&mut self, mut fields: Map<String, Value>) -> ApiResult<Entity> {
        let name = required_name(&fields)?;
        let Some(model) = fields
            .get("registeredModelId")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            return Err(ApiError::unprocessable(
                "required field 'registeredModelId' is zero value.",
            ));
        };
        let model_id = self.get(Kind::RegisteredModel, &model)?.id;
        if self
            .versions
            .values()
            .any(|v| v.parent == Some(model_id) && v.str("name") == Some(name.as_str()))
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("model version with name {name} already exists: conflict"),
            ));
        }
        defaults(&mut fields, "LIVE");
        self.next_context += 1;
        let id = self.next_context;
        let e = Entity::new(id, Some(model_id), self.now(), fields);
        self.versions.insert(id, e.clone());
        Ok(e)
    }

    /// Create an artifact, top level (`version: None`) or under a version. With an `id` of an
    /// existing artifact, the artifact is attached to the version and updated instead
    /// (returns `false` for "not created").
    pub fn upsert_artifact(
        &mut self,
        version: Option<u64>,
        mut fields: Map<String, Value>,
    ) -> ApiResult<(Entity, bool)> {
        if let Some(idv) = fields.remove("id") {
            let id = idv.as_str().unwrap_or_default().to_string();
            let existing = self.get(Kind::Artifact, &id)?.id;
            fields.remove("name");
            let e = self.overlay(Kind::Artifact, existing, fields)?;
            if let Some(a) = self.artifacts.get_mut(&existing) {
                a.parent = version.or(a.parent);
            }
            return Ok((self.artifacts[&e.id].clone(), false));
        }
        if !fields.contains_key("artifactType") {
            fields.insert(
                "artifactType".into(),
                Value::String("model-artifact".into()),
            );
        }
        if let (Some(v), Some(name)) = (version, fields.get("name").and_then(Value::as_str))
            && self
                .artifacts
                .values()
                .any(|a| a.parent == Some(v) && a.str("name") == Some(name))
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("model artifact with name {name} already exists: conflict"),
            ));
        }
        defaults(&mut fields, "UNKNOWN");
        self.next_artifact += 1;
        let id = self.next_artifact;
        let e = Entity::new(id, version, self.now(), fields);
        self.artifacts.insert(id, e.clone());
        Ok((e, true))
    }

    /// PATCH: overlay the present fields; a present `customProperties` replaces the map.
    pub fn update(
        &mut self,
        kind: Kind,
        id: &str,
        fields: Map<String, Value>,
    ) -> ApiResult<Entity> {
        let n = self.get(kind, id)?.id;
        if kind == Kind::Artifact {
            let stored = self.artifacts[&n]
                .str("artifactType")
                .unwrap_or("model-artifact");
            if let Some(t) = fields.get("artifactType").and_then(Value::as_str)
                && t != stored
            {
                return Err(ApiError::bad_request(format!(
                    "artifactType {t:?} does not match the stored {stored:?}"
                )));
            }
        }
        self.overlay(kind, n, fields)
    }

    fn overlay(&mut self, kind: Kind, id: u64, fields: Map<String, Value>) -> ApiResult<Entity> {
        let now = self.now();
        let e = self.table_mut(kind).get_mut(&id).ok_or_else(|| {
            ApiError::not_found(format!("no {} found for id {id}: not found", kind.words()))
        })?;
        for (k, v) in fields {
            e.fields.insert(k, v);
        }
        e.updated = now;
        Ok(e.clone())
    }
}

fn required_name(fields: &Map<String, Value>) -> ApiResult<String> {
    match fields.get("name").and_then(Value::as_str) {
        Some(n) if !n.is_empty() => Ok(n.to_string()),
        _ => Err(ApiError::unprocessable(
            "required field 'name' is zero value.",
        )),
    }
}

/// `customProperties: {}` and the default state, as the server answers them.
fn defaults(fields: &mut Map<String, Value>, state: &str) {
    if !fields.contains_key("customProperties") {
        // Keep it first, as the server prints it.
        let mut m = Map::new();
        m.insert("customProperties".into(), Value::Object(Map::new()));
        m.append(fields);
        *fields = m;
    }
    if !fields.contains_key("state") {
        fields.insert("state".into(), Value::String(state.into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_follows_the_go_server() {
        let e = decode(Kind::ModelVersion, false, br#"{"x":1}"#, &[]).unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (StatusCode::BAD_REQUEST, "json: unknown field \"x\"")
        );
        let e = decode(Kind::ModelVersion, false, br#"{"name":"2"}"#, &[]).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST, "rename is refused");
        let e = decode(Kind::ModelVersion, false, br#"[1]"#, &[]).unwrap_err();
        assert!(e.message.contains("cannot unmarshal array"));
        let bad_int = br#"{"customProperties":{"n":{"metadataType":"MetadataIntValue","int_value":"2147483648"}}}"#;
        assert_eq!(
            decode(Kind::ModelVersion, false, bad_int, &[])
                .unwrap_err()
                .status,
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
        assert!(e.message.contains("LIVE"));
    }

    #[test]
    fn create_conflicts_and_patch_replaces_the_map() {
        let mut s = Store::default();
        let m = s
            .create_model(decode(Kind::RegisteredModel, true, br#"{"name":"m"}"#, &[]).unwrap())
            .unwrap();
        assert_eq!(m.to_json()["state"], "LIVE");
        let dup =
            s.create_model(decode(Kind::RegisteredModel, true, br#"{"name":"m"}"#, &[]).unwrap());
        assert_eq!(dup.unwrap_err().status, StatusCode::CONFLICT);
        let body = format!(
            r#"{{"name":"1","registeredModelId":"{}","customProperties":{{"a":{{"metadataType":"MetadataStringValue","string_value":"x"}},"b":{{"metadataType":"MetadataBoolValue","bool_value":true}}}}}}"#,
            m.id
        );
        let v = s
            .create_version(decode(Kind::ModelVersion, true, body.as_bytes(), &[]).unwrap())
            .unwrap();
        assert_eq!(v.id, 2, "models and versions share one sequence");
        let no_name = s.create_version(
            decode(
                Kind::ModelVersion,
                true,
                br#"{"registeredModelId":"1"}"#,
                &[],
            )
            .unwrap(),
        );
        let e = no_name.unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::UNPROCESSABLE_ENTITY, "Bad Request")
        );
        // Absent map: kept. Present map: replaced. Empty map: cleared.
        let u = s
            .update(
                Kind::ModelVersion,
                "2",
                decode(Kind::ModelVersion, false, br#"{"author":"z"}"#, &[]).unwrap(),
            )
            .unwrap();
        assert_eq!(u.fields["customProperties"].as_object().unwrap().len(), 2);
        let u = s
            .update(Kind::ModelVersion, "2", decode(Kind::ModelVersion, false, br#"{"customProperties":{"b":{"metadataType":"MetadataBoolValue","bool_value":false}}}"#, &[]).unwrap())
            .unwrap();
        assert_eq!(
            u.fields["customProperties"],
            json!({"b": {"bool_value": false, "metadataType": "MetadataBoolValue"}})
        );
        assert_eq!(u.fields["author"], "z");
        let u = s
            .update(
                Kind::ModelVersion,
                "2",
                decode(
                    Kind::ModelVersion,
                    false,
                    br#"{"customProperties":{}}"#,
                    &[],
                )
                .unwrap(),
            )
            .unwrap();
        assert_eq!(u.fields["customProperties"], json!({}));
        assert!(u.updated > u.created);
        assert_eq!(
            s.get(Kind::ModelVersion, "abc").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            s.get(Kind::ModelVersion, "99").unwrap_err().status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            s.get(Kind::ModelVersion, "3000000000").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }
}
