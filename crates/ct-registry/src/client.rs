//! REST client for the Model Registry, under either API prefix.

use std::fmt;

use ct_step::http::{ApiClient, Response, StatusCode, segment};
use ct_step::{Result, StepError};
use serde::de::DeserializeOwned;

use crate::types::{
    ListPage, ModelArtifact, ModelArtifactPatch, ModelVersion, ModelVersionPatch, RegisteredModel,
};

/// Which API prefix the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// `/api/model_registry/v1alpha3` (servers used by model-registry ≤ 0.3.11 clients).
    V1Alpha3,
    /// `/api/model_registry/v1` (newer servers).
    V1,
}

impl ApiVersion {
    pub fn prefix(self) -> &'static str {
        match self {
            ApiVersion::V1Alpha3 => "/api/model_registry/v1alpha3",
            ApiVersion::V1 => "/api/model_registry/v1",
        }
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApiVersion::V1Alpha3 => "v1alpha3",
            ApiVersion::V1 => "v1",
        })
    }
}

/// Page size used when listing (the server has no limit without one; we page anyway).
pub const DEFAULT_PAGE_SIZE: u32 = 100;

/// A Model Registry client bound to one prefix.
#[derive(Debug)]
pub struct RegistryClient {
    api: ApiClient,
    version: ApiVersion,
    page_size: u32,
}

impl RegistryClient {
    /// Use `version`, or detect it when `None`: `GET <v1>/registered_models?pageSize=1`, and
    /// on a 404 the same under v1alpha3.
    pub async fn connect(api: ApiClient, version: Option<ApiVersion>) -> Result<Self> {
        let version = match version {
            Some(v) => v,
            None => detect(&api).await?,
        };
        tracing::debug!("Model Registry API {version}");
        Ok(RegistryClient {
            api,
            version,
            page_size: DEFAULT_PAGE_SIZE,
        })
    }

    /// Items per list page (at least 1).
    pub fn with_page_size(mut self, n: u32) -> Self {
        self.page_size = n.max(1);
        self
    }

    pub fn version(&self) -> ApiVersion {
        self.version
    }

    fn path(&self, rest: &str) -> String {
        format!("{}{rest}", self.version.prefix())
    }

    /// `GET registered_model?name=`; `None` when the server answers 404.
    pub async fn find_registered_model(&self, name: &str) -> Result<Option<RegisteredModel>> {
        let resp = self
            .api
            .get(&self.path("/registered_model"))
            .query("name", name)
            .send()
            .await?;
        found(resp)
    }

    /// `GET model_version?name=&parentResourceId=`; `None` on 404.
    pub async fn find_model_version(
        &self,
        name: &str,
        model_id: &str,
    ) -> Result<Option<ModelVersion>> {
        let resp = self
            .api
            .get(&self.path("/model_version"))
            .query("name", name)
            .query("parentResourceId", model_id)
            .send()
            .await?;
        found(resp)
    }

    /// `GET model_artifact?name=&parentResourceId=`; `None` on 404 (also when several match).
    pub async fn find_model_artifact(
        &self,
        name: &str,
        version_id: &str,
    ) -> Result<Option<ModelArtifact>> {
        let resp = self
            .api
            .get(&self.path("/model_artifact"))
            .query("name", name)
            .query("parentResourceId", version_id)
            .send()
            .await?;
        found(resp)
    }

    /// Every version of a model, all pages, ID ascending.
    pub async fn list_model_versions(&self, model_id: &str) -> Result<Vec<ModelVersion>> {
        self.list_all(&format!(
            "/registered_models/{}/versions",
            segment(model_id)
        ))
        .await
    }

    /// Every model artifact of a version, all pages (other artifact types are skipped).
    pub async fn list_version_model_artifacts(
        &self,
        version_id: &str,
    ) -> Result<Vec<ModelArtifact>> {
        let all: Vec<ModelArtifact> = self
            .list_all(&format!(
                "/model_versions/{}/artifacts",
                segment(version_id)
            ))
            .await?;
        Ok(all
            .into_iter()
            .filter(|a| a.artifact_type.as_deref().unwrap_or("model-artifact") == "model-artifact")
            .collect())
    }

    async fn list_all<T: DeserializeOwned>(&self, rest: &str) -> Result<Vec<T>> {
        let path = self.path(rest);
        let mut out = Vec::new();
        let mut token = String::new();
        // A server that never ends the list would loop forever: stop on a repeated token.
        let mut seen = std::collections::HashSet::new();
        loop {
            let mut req = self
                .api
                .get(&path)
                .query("pageSize", self.page_size)
                .query("orderBy", "ID")
                .query("sortOrder", "ASC");
            if !token.is_empty() {
                req = req.query("nextPageToken", &token);
            }
            let page: ListPage<T> = req.send_json().await?;
            out.extend(page.items);
            match page.next_page_token {
                Some(t) if !t.is_empty() => {
                    if !seen.insert(t.clone()) {
                        return Err(StepError::remote(format!(
                            "GET {path}: the server returned the page token {t:?} twice; it does not page correctly"
                        )));
                    }
                    token = t;
                }
                _ => return Ok(out),
            }
        }
    }

    /// `PATCH model_versions/{id}`. Idempotent: the body is the complete desired state of
    /// the fields it carries, so it is safe to resend.
    pub async fn patch_model_version(
        &self,
        id: &str,
        body: &ModelVersionPatch,
    ) -> Result<ModelVersion> {
        self.api
            .patch(&self.path(&format!("/model_versions/{}", segment(id))))
            .json(body)
            .idempotent()
            .send_json()
            .await
    }

    /// `PATCH model_artifacts/{id}` (idempotent, see [`Self::patch_model_version`]).
    pub async fn patch_model_artifact(
        &self,
        id: &str,
        body: &ModelArtifactPatch,
    ) -> Result<ModelArtifact> {
        self.api
            .patch(&self.path(&format!("/model_artifacts/{}", segment(id))))
            .json(body)
            .idempotent()
            .send_json()
            .await
    }
}

/// Probe v1, then v1alpha3.
async fn detect(api: &ApiClient) -> Result<ApiVersion> {
    let mut tried = Vec::new();
    for v in [ApiVersion::V1, ApiVersion::V1Alpha3] {
        let path = format!("{}/registered_models", v.prefix());
        let resp = api
            .get(&path)
            .query("pageSize", 1)
            .query("sortOrder", "ASC")
            .send()
            .await?;
        if resp.is_success() {
            return Ok(v);
        }
        if resp.status != StatusCode::NOT_FOUND {
            return Err(resp.error());
        }
        tried.push(path);
    }
    Err(StepError::remote(format!(
        "{}: no Model Registry API here (404 on {}); check --registry-url (the REST route, e.g. https://<name>-rest.<domain>)",
        api.base_url(),
        tried.join(" and ")
    )))
}

/// 200 → `Some`, a registry 404 (JSON error body) → `None`, anything else → error.
fn found<T: DeserializeOwned>(resp: Response) -> Result<Option<T>> {
    if resp.status == StatusCode::NOT_FOUND {
        if is_registry_error(&resp.body) {
            return Ok(None);
        }
        // Not the registry's own answer: a wrong URL or prefix.
        return Err(resp.error().context(
            "no Model Registry API at this URL and prefix (check --registry-url, or use --registry-api auto)",
        ));
    }
    resp.error_for_status()?.json().map(Some)
}

/// A Model Registry `Error` body: a JSON object with a string `message`.
fn is_registry_error(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").map(serde_json::Value::is_string))
        .unwrap_or(false)
}
