//! The Model Registry entities this crate reads, and the PATCH bodies it sends.
//!
//! Read types keep only the fields the step needs (unknown fields are ignored on read).
//! Update types carry only fields of the server's `*Update` schemas: the server answers 400
//! to any other field. `customProperties`, when present in a PATCH, replaces the whole map.

use serde::{Deserialize, Serialize};

use crate::value::CustomProperties;

/// A registered model.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredModel {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub custom_properties: CustomProperties,
}

/// A model version.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelVersion {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub registered_model_id: Option<String>,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub custom_properties: CustomProperties,
    #[serde(default)]
    pub last_update_time_since_epoch: Option<String>,
}

impl ModelVersion {
    /// `lastUpdateTimeSinceEpoch` in ms (0 when absent or unparsable).
    pub fn last_update_ms(&self) -> u64 {
        self.last_update_time_since_epoch
            .as_deref()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
    /// The numeric id (0 when unparsable), for stable ordering.
    pub fn id_num(&self) -> u64 {
        self.id.parse().unwrap_or(0)
    }
}

/// A model artifact (also read from a version's generic artifact list).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelArtifact {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub uri: Option<String>,
    #[serde(default)]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub custom_properties: CustomProperties,
}

/// One page of a list answer. `nextPageToken` is `""` on the last page.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPage<T> {
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
    #[serde(default)]
    pub next_page_token: Option<String>,
    #[serde(default)]
    pub size: Option<i64>,
}

/// PATCH body for a model version (`ModelVersionUpdate` subset).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelVersionPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_properties: Option<CustomProperties>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
}

impl ModelVersionPatch {
    pub fn is_empty(&self) -> bool {
        self.custom_properties.is_none() && self.author.is_none()
    }
}

/// PATCH body for a model artifact (`ModelArtifactUpdate` subset).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelArtifactPatch {
    /// Always `model-artifact` (the Python client sends it too).
    pub artifact_type: &'static str,
    pub uri: String,
}

impl ModelArtifactPatch {
    pub fn uri(uri: impl Into<String>) -> Self {
        ModelArtifactPatch {
            artifact_type: "model-artifact",
            uri: uri.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERSIONS: &str =
        include_str!("../../../tests/fixtures/registry/versions-list.v0.2.10-trace.json");
    const ARTIFACT: &str =
        include_str!("../../../tests/fixtures/registry/artifact.v0.2.10-trace.json");

    #[test]
    fn recorded_answers_decode_and_properties_reencode_byte_for_byte() {
        let page: ListPage<ModelVersion> = serde_json::from_str(VERSIONS).unwrap();
        assert_eq!(page.next_page_token.as_deref(), Some(""));
        assert_eq!(page.items.len(), 2);
        let v1 = &page.items[0];
        assert_eq!((v1.id.as_str(), v1.name.as_str()), ("2", "1"));
        assert_eq!(v1.author.as_deref(), Some("Alice <alice@example.com>"));
        assert_eq!(v1.last_update_ms(), 1795728484187);
        assert!(v1.custom_properties.contains_key("test"));
        // The raw map, re-encoded, is the substring the server sent.
        let raw = serde_json::to_string(&v1.custom_properties).unwrap();
        assert!(
            VERSIONS.contains(&format!("\"customProperties\":{raw}")),
            "{raw}"
        );
        let a: ModelArtifact = serde_json::from_str(ARTIFACT).unwrap();
        assert_eq!(a.uri.as_deref(), Some("s3://bucket/jukebox/2"));
        assert_eq!(a.artifact_type.as_deref(), Some("model-artifact"));
        assert!(a.custom_properties.is_empty());
    }

    #[test]
    fn patch_bodies_carry_only_update_fields() {
        let p = ModelVersionPatch {
            custom_properties: Some(CustomProperties::new()),
            author: None,
        };
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"customProperties":{}}"#
        );
        assert!(ModelVersionPatch::default().is_empty());
        assert_eq!(
            serde_json::to_string(&ModelArtifactPatch::uri("oci://x")).unwrap(),
            r#"{"artifactType":"model-artifact","uri":"oci://x"}"#
        );
    }
}
