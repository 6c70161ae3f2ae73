//! In-memory Model Registry state and the server's rules for changing it: a missing required
//! field is a 422 (with code "Bad Request", a quirk of the real server), a duplicate name a 409.
//! PATCH overlays the fields present; a present `customProperties` replaces the whole stored
//! map. Registered models and versions share one id sequence, artifacts have their own, as in
//! the real server. Bodies are validated by [`crate::schema::decode`] first.

use std::collections::BTreeMap;

use ct_emulator::{Error, Result};
use serde_json::{Map, Value};

use crate::schema::{Kind, parse_id};

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
    pub fn get(&self, kind: Kind, id: &str) -> Result<&Entity> {
        let n = parse_id(id).ok_or_else(|| {
            Error::invalid(format!(
                "invalid {} ID: strconv.ParseInt: parsing {id:?}: invalid syntax: bad request",
                kind.words()
            ))
        })?;
        self.table(kind).get(&n).ok_or_else(|| {
            Error::not_found(format!("no {} found for id {n}: not found", kind.words()))
        })
    }

    /// Create a registered model.
    pub fn create_model(&mut self, mut fields: Map<String, Value>) -> Result<Entity> {
        let name = required_name(&fields)?;
        if self
            .models
            .values()
            .any(|m| m.str("name") == Some(name.as_str()))
        {
            return Err(Error::already_exists(format!(
                "registered model with name {name} already exists: conflict"
            )));
        }
        defaults(&mut fields, "LIVE");
        self.next_context += 1;
        let id = self.next_context;
        let e = Entity::new(id, None, self.now(), fields);
        self.models.insert(id, e.clone());
        Ok(e)
    }

    /// Create a model version (its model comes from `registeredModelId`).
    pub fn create_version(&mut self, mut fields: Map<String, Value>) -> Result<Entity> {
        let name = required_name(&fields)?;
        let Some(model) = fields
            .get("registeredModelId")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            return Err(Error::unprocessable(
                "required field 'registeredModelId' is zero value.",
            ));
        };
        let model_id = self.get(Kind::RegisteredModel, &model)?.id;
        if self
            .versions
            .values()
            .any(|v| v.parent == Some(model_id) && v.str("name") == Some(name.as_str()))
        {
            return Err(Error::already_exists(format!(
                "model version with name {name} already exists: conflict"
            )));
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
    ) -> Result<(Entity, bool)> {
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
            return Err(Error::already_exists(format!(
                "model artifact with name {name} already exists: conflict"
            )));
        }
        defaults(&mut fields, "UNKNOWN");
        self.next_artifact += 1;
        let id = self.next_artifact;
        let e = Entity::new(id, version, self.now(), fields);
        self.artifacts.insert(id, e.clone());
        Ok((e, true))
    }

    /// PATCH: overlay the present fields; a present `customProperties` replaces the map.
    pub fn update(&mut self, kind: Kind, id: &str, fields: Map<String, Value>) -> Result<Entity> {
        let n = self.get(kind, id)?.id;
        if kind == Kind::Artifact {
            let stored = self.artifacts[&n]
                .str("artifactType")
                .unwrap_or("model-artifact");
            if let Some(t) = fields.get("artifactType").and_then(Value::as_str)
                && t != stored
            {
                return Err(Error::invalid(format!(
                    "artifactType {t:?} does not match the stored {stored:?}"
                )));
            }
        }
        self.overlay(kind, n, fields)
    }

    fn overlay(&mut self, kind: Kind, id: u64, fields: Map<String, Value>) -> Result<Entity> {
        let now = self.now();
        let e = self.table_mut(kind).get_mut(&id).ok_or_else(|| {
            Error::not_found(format!("no {} found for id {id}: not found", kind.words()))
        })?;
        for (k, v) in fields {
            e.fields.insert(k, v);
        }
        e.updated = now;
        Ok(e.clone())
    }
}

fn required_name(fields: &Map<String, Value>) -> Result<String> {
    match fields.get("name").and_then(Value::as_str) {
        Some(n) if !n.is_empty() => Ok(n.to_string()),
        _ => Err(Error::unprocessable("required field 'name' is zero value.")),
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
    use crate::http::{code_of, status_of};
    use crate::schema::decode;
    use axum::http::StatusCode;
    use serde_json::json;

    #[test]
    fn create_conflicts_and_patch_replaces_the_map() {
        let mut s = Store::default();
        let m = s
            .create_model(decode(Kind::RegisteredModel, true, br#"{"name":"m"}"#, &[]).unwrap())
            .unwrap();
        assert_eq!(m.to_json()["state"], "LIVE");
        let dup =
            s.create_model(decode(Kind::RegisteredModel, true, br#"{"name":"m"}"#, &[]).unwrap());
        assert_eq!(status_of(&dup.unwrap_err()), StatusCode::CONFLICT);
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
            (status_of(&e), code_of(&e)),
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
            status_of(&s.get(Kind::ModelVersion, "abc").unwrap_err()),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status_of(&s.get(Kind::ModelVersion, "99").unwrap_err()),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status_of(&s.get(Kind::ModelVersion, "3000000000").unwrap_err()),
            StatusCode::BAD_REQUEST
        );
    }
}
