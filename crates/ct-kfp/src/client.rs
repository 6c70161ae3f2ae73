//! The v2beta1 calls the steps make, with the kfp SDK's request shapes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Map, Value, json};

use ct_step::http::{ApiClient, StatusCode, segment};
use ct_step::{Result, StepError};

use crate::API;
use crate::filter;
use crate::model::{
    Experiment, ListExperiments, ListPipelineVersions, ListPipelines, ListRuns, Pipeline,
    PipelineVersion, Run,
};

/// What the run executes.
#[derive(Debug, Clone)]
pub enum RunSource {
    /// An inline `pipeline_spec` (what `create_run_from_pipeline_package` sends).
    Spec(Value),
    /// An uploaded pipeline version (`pipeline_version_reference`).
    Version {
        pipeline_id: String,
        pipeline_version_id: String,
    },
}

/// A run to create.
#[derive(Debug, Clone)]
pub struct CreateRun {
    pub experiment_id: String,
    pub display_name: String,
    pub source: RunSource,
    pub parameters: Map<String, Value>,
    /// Stored in the run's `description` so a retry can find the run instead of creating another.
    pub idempotency_key: Option<String>,
}

impl CreateRun {
    /// The `POST /runs` body. Without an idempotency key this is exactly what kfp 2.9.0 sends.
    pub fn body(&self) -> Value {
        let mut m = Map::new();
        m.insert("experiment_id".into(), json!(self.experiment_id));
        m.insert("display_name".into(), json!(self.display_name));
        if let Some(key) = &self.idempotency_key {
            m.insert("description".into(), json!(idempotency_marker(key)));
        }
        match &self.source {
            RunSource::Spec(spec) => {
                m.insert("pipeline_spec".into(), spec.clone());
            }
            RunSource::Version {
                pipeline_id,
                pipeline_version_id,
            } => {
                m.insert(
                    "pipeline_version_reference".into(),
                    json!({"pipeline_id": pipeline_id, "pipeline_version_id": pipeline_version_id}),
                );
            }
        }
        m.insert(
            "runtime_config".into(),
            json!({"parameters": Value::Object(self.parameters.clone())}),
        );
        Value::Object(m)
    }
}

/// The run `description` that records an idempotency key. The server keeps it and can filter
/// runs on it (`description` is a filterable run field).
pub fn idempotency_marker(key: &str) -> String {
    format!("ct-steps idempotency-key {key}")
}

/// An ID as the steps pass them: 1-`max` of `A-Z a-z 0-9 . _ : -`, and not `.` or `..` (IDs go
/// into request paths and filters).
fn is_id(s: &str, max: usize) -> bool {
    (1..=max).contains(&s.len())
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
}

/// Keys are IDs such as a PipelineRun UID: 1-128 characters of `A-Z a-z 0-9 . _ : -`.
pub fn validate_idempotency_key(key: &str) -> Result<()> {
    if is_id(key, 128) {
        Ok(())
    } else {
        Err(StepError::usage(format!(
            "--idempotency-key `{}`: use 1-128 characters of A-Z a-z 0-9 . _ : - (e.g. $(context.pipelineRun.uid)-train)",
            key.escape_debug()
        )))
    }
}

/// A run id as the server makes them (a UUID): 1-256 of `A-Z a-z 0-9 . _ : -`, not `.` or
/// `..` (it goes into the request path). `source` names the input, e.g. `--run-id`.
pub fn validate_run_id(source: &str, id: &str) -> Result<()> {
    if is_id(id, 256) {
        Ok(())
    } else {
        Err(StepError::usage(format!(
            "{source}: `{}` is not a run id; pass the KFP_RUN_ID result of execute-ds-pipeline",
            id.escape_debug()
        )))
    }
}

/// Outcome of one terminate request.
#[derive(Debug)]
pub enum Terminate {
    /// The server accepted it (2xx).
    Accepted,
    /// Network, 429 or 5xx: worth trying again.
    Transient(StepError),
    /// Any other status (403, 404, ...): trying again will not help.
    Refused(StepError),
}

/// Outcome of one poll: the run, an error worth retrying later, or a fatal one.
#[derive(Debug)]
pub enum Poll {
    Run(Box<Run>),
    Transient(StepError),
    Fatal(StepError),
}

/// A v2beta1 client: the REST client plus the namespace the SDK would send.
#[derive(Debug)]
pub struct KfpClient {
    api: ApiClient,
    namespace: Option<String>,
    /// Attempts of an ambiguous run create (after the first), when an idempotency key makes
    /// them safe.
    pub create_retries: u32,
    /// First backoff step between create attempts (doubles, capped at 8 s, jittered).
    pub create_backoff: Duration,
}

impl KfpClient {
    pub fn new(api: ApiClient, namespace: Option<String>, create_retries: u32) -> Self {
        KfpClient {
            api,
            namespace,
            create_retries,
            create_backoff: Duration::from_millis(250),
        }
    }

    pub fn api(&self) -> &ApiClient {
        &self.api
    }

    /// The experiment named `name`, if exactly one exists (more than one is an error).
    pub async fn find_experiment(&self, name: &str) -> Result<Option<Experiment>> {
        let mut req = self
            .api
            .get(&format!("{API}/experiments"))
            .query("filter", filter::equals("display_name", name));
        if let Some(ns) = &self.namespace {
            req = req.query("namespace", ns);
        }
        let list: ListExperiments = req.send_json().await?;
        let mut found: Vec<Experiment> = list
            .experiments
            .into_iter()
            .filter(|e| e.display_name == name)
            .collect();
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            n => Err(StepError::remote(format!(
                "--experiment {name}: {n} experiments have this name; archive the duplicates or pick another name"
            ))),
        }
    }

    /// Get-or-create, as the SDK does, plus: a 409 on create means another client created it
    /// meanwhile, so list again.
    pub async fn get_or_create_experiment(&self, name: &str) -> Result<Experiment> {
        if let Some(e) = self.find_experiment(name).await? {
            return Ok(e);
        }
        let mut body = Map::new();
        body.insert("display_name".into(), json!(name));
        if let Some(ns) = &self.namespace {
            body.insert("namespace".into(), json!(ns));
        }
        let resp = self
            .api
            .post(&format!("{API}/experiments"))
            .json(&body)
            .send()
            .await?;
        if resp.status == StatusCode::CONFLICT {
            tracing::info!("experiment {name} was created concurrently; looking it up again");
            return self.find_experiment(name).await?.ok_or_else(|| {
                StepError::remote(format!(
                    "--experiment {name}: the server says it exists (409) but lists none"
                ))
            });
        }
        let exp: Experiment = resp.error_for_status()?.json()?;
        if exp.experiment_id.is_empty() {
            return Err(StepError::remote(format!(
                "POST {API}/experiments: the answer has no experiment_id"
            )));
        }
        tracing::info!("created experiment {name} ({})", exp.experiment_id);
        Ok(exp)
    }

    /// The uploaded pipeline named `name` (by display name, as the SDK's `get_pipeline_id`).
    pub async fn find_pipeline(&self, name: &str) -> Result<Pipeline> {
        let mut req = self
            .api
            .get(&format!("{API}/pipelines"))
            .query("filter", filter::equals("display_name", name));
        if let Some(ns) = &self.namespace {
            req = req.query("namespace", ns);
        }
        let list: ListPipelines = req.send_json().await?;
        let mut found: Vec<Pipeline> = list
            .pipelines
            .into_iter()
            .filter(|p| p.display_name == name || p.name.as_deref() == Some(name))
            .collect();
        match found.len() {
            0 => Err(StepError::usage(format!(
                "--pipeline-name {name}: no such pipeline on the server; upload it first or check the name"
            ))),
            1 => Ok(found.pop().expect("one element")),
            n => Err(StepError::usage(format!(
                "--pipeline-name {name}: {n} pipelines have this name; rename the duplicates"
            ))),
        }
    }

    /// The named version of `pipeline`, or its newest one; fetched whole (with its spec).
    pub async fn pipeline_version(
        &self,
        pipeline: &Pipeline,
        version: Option<&str>,
    ) -> Result<PipelineVersion> {
        let path = format!(
            "{API}/pipelines/{}/versions",
            segment(&pipeline.pipeline_id)
        );
        let list: ListPipelineVersions = match version {
            Some(v) => {
                self.api
                    .get(&path)
                    .query("filter", filter::equals("display_name", v))
                    .send_json()
                    .await?
            }
            None => {
                self.api
                    .get(&path)
                    .query("sort_by", "created_at desc")
                    .query("page_size", 1)
                    .send_json()
                    .await?
            }
        };
        let found = match version {
            Some(v) => list
                .pipeline_versions
                .into_iter()
                .find(|pv| pv.display_name == v || pv.name.as_deref() == Some(v)),
            None => list.pipeline_versions.into_iter().next(),
        };
        let Some(found) = found else {
            return Err(StepError::usage(match version {
                Some(v) => format!(
                    "--pipeline-version {v}: pipeline {} has no such version",
                    pipeline.display_name
                ),
                None => format!(
                    "--pipeline-name {}: the pipeline has no versions",
                    pipeline.display_name
                ),
            }));
        };
        self.api
            .get(&format!("{path}/{}", segment(&found.pipeline_version_id)))
            .send_json()
            .await
    }

    /// The run created with `key` in `experiment_id`, if any (the oldest, if several).
    pub async fn find_run_by_key(&self, experiment_id: &str, key: &str) -> Result<Option<Run>> {
        let marker = idempotency_marker(key);
        let mut token: Option<String> = None;
        let mut found: Vec<Run> = Vec::new();
        for _ in 0..20 {
            let mut req = self
                .api
                .get(&format!("{API}/runs"))
                .query("experiment_id", experiment_id)
                .query("filter", filter::equals("description", &marker))
                .query("page_size", 100);
            if let Some(t) = &token {
                req = req.query("page_token", t);
            }
            let page: ListRuns = req.send_json().await?;
            // Check locally too: a server that ignored the filter must not make us reuse a stranger.
            found.extend(
                page.runs
                    .into_iter()
                    .filter(|r| r.description.as_deref() == Some(marker.as_str())),
            );
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        found.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        Ok(found.into_iter().next())
    }

    /// Create the run. With an idempotency key: reuse a run already created with it, and after
    /// an ambiguous failure (timeout, dropped connection, 5xx) look for the run before trying
    /// again, so no second run is ever created. Returns the run and whether it was reused.
    /// `posted` is set when the first create request is sent: from then on a run may exist
    /// even if no answer ever arrives (a cancel must look for it by its key).
    pub async fn create_run(&self, req: &CreateRun, posted: &AtomicBool) -> Result<(Run, bool)> {
        if let Some(key) = &req.idempotency_key
            && let Some(run) = self.find_run_by_key(&req.experiment_id, key).await?
        {
            tracing::info!(
                "run {} already exists for idempotency key {key}: reusing it",
                run.run_id
            );
            return Ok((run, true));
        }
        let body = req.body();
        let path = format!("{API}/runs");
        let mut attempt = 0u32;
        loop {
            posted.store(true, Ordering::SeqCst);
            let failure = match self.api.post(&path).json(&body).send().await {
                Ok(resp) if resp.is_success() => {
                    let run: Run = resp.json()?;
                    if run.run_id.is_empty() {
                        return Err(StepError::remote(format!(
                            "POST {path}: the answer has no run_id"
                        )));
                    }
                    return Ok((run, false));
                }
                Ok(resp) if resp.status == StatusCode::TOO_MANY_REQUESTS => {
                    // Rejected before processing: nothing was created.
                    if attempt < self.create_retries {
                        self.backoff(attempt, "HTTP 429").await;
                        attempt += 1;
                        continue;
                    }
                    return Err(resp.error());
                }
                Ok(resp) if resp.status.is_server_error() => resp.error(),
                Ok(resp) => return Err(resp.error()),
                Err(e) => e,
            };
            let Some(key) = &req.idempotency_key else {
                return Err(failure.context(
                    "the run may or may not have been created (pass --idempotency-key to make retries safe)",
                ));
            };
            tracing::warn!("creating the run failed ambiguously: {failure}");
            if let Some(run) = self.find_run_by_key(&req.experiment_id, key).await? {
                tracing::info!(
                    "the server did create run {} (idempotency key {key}): using it",
                    run.run_id
                );
                return Ok((run, true));
            }
            if attempt >= self.create_retries {
                return Err(failure);
            }
            self.backoff(attempt, "no run was created").await;
            attempt += 1;
        }
    }

    async fn backoff(&self, attempt: u32, why: &str) {
        let d = ct_step::http::backoff_delay(self.create_backoff, attempt);
        tracing::warn!(
            "POST {API}/runs: {why}; retry {}/{} in {d:?}",
            attempt + 1,
            self.create_retries
        );
        tokio::time::sleep(d).await;
    }

    /// `GET /runs/{id}`.
    pub async fn get_run(&self, run_id: &str) -> Result<Run> {
        match self.poll_run(run_id).await {
            Poll::Run(r) => Ok(*r),
            Poll::Transient(e) | Poll::Fatal(e) => Err(e),
        }
    }

    /// `GET /runs/{id}`, classifying failures: transport errors, 429 and 5xx (already retried by
    /// the HTTP client) are transient; any other status is fatal.
    pub async fn poll_run(&self, run_id: &str) -> Poll {
        let resp = match self
            .api
            .get(&format!("{API}/runs/{}", segment(run_id)))
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return Poll::Transient(e),
        };
        if resp.is_success() {
            return match resp.json::<Run>() {
                Ok(r) => Poll::Run(Box::new(r)),
                Err(e) => Poll::Transient(e),
            };
        }
        let code = resp.status.as_u16();
        let e = resp.error();
        if code == 429 || resp.status.is_server_error() {
            Poll::Transient(e)
        } else if code == 404 {
            Poll::Fatal(StepError::usage(format!(
                "{e} (check --run-id: no such run)"
            )))
        } else {
            Poll::Fatal(e)
        }
    }

    /// `POST /runs/{id}:terminate` (safe to repeat).
    pub async fn terminate_run(&self, run_id: &str, timeout: Duration) -> Result<()> {
        match self.request_terminate(run_id, timeout).await {
            Terminate::Accepted => Ok(()),
            Terminate::Transient(e) | Terminate::Refused(e) => Err(e),
        }
    }

    /// `POST /runs/{id}:terminate`, classified: accepted (2xx), a failure worth retrying
    /// (network, 429, 5xx; after the HTTP client's own retries), or refused (any other status).
    pub async fn request_terminate(&self, run_id: &str, timeout: Duration) -> Terminate {
        let resp = match self
            .api
            .post(&format!("{API}/runs/{}:terminate", segment(run_id)))
            .idempotent()
            .timeout(timeout)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return Terminate::Transient(e),
        };
        if resp.is_success() {
            Terminate::Accepted
        } else if resp.status == StatusCode::TOO_MANY_REQUESTS || resp.status.is_server_error() {
            Terminate::Transient(resp.error())
        } else {
            Terminate::Refused(resp.error())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_only_the_fields_the_sdk_sends() {
        let mut req = CreateRun {
            experiment_id: "e".into(),
            display_name: "d".into(),
            source: RunSource::Spec(json!({"root": {}})),
            parameters: Map::new(),
            idempotency_key: None,
        };
        let keys: Vec<String> = req.body().as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "experiment_id",
                "display_name",
                "pipeline_spec",
                "runtime_config"
            ]
        );
        req.idempotency_key = Some("uid-1".into());
        req.source = RunSource::Version {
            pipeline_id: "p".into(),
            pipeline_version_id: "v".into(),
        };
        let b = req.body();
        assert_eq!(b["description"], "ct-steps idempotency-key uid-1");
        assert_eq!(b["pipeline_version_reference"]["pipeline_version_id"], "v");
        assert!(b.get("pipeline_spec").is_none());
        assert_eq!(b["runtime_config"], json!({"parameters": {}}));
    }

    #[test]
    fn idempotency_keys_and_run_ids_are_validated() {
        validate_idempotency_key("0b6c3e2a-1f1e-4c8e-9d7a-2f7f0e5c9a11").unwrap();
        for bad in ["", "a b", "a+b", "ü", "..", &"x".repeat(129)] {
            assert_eq!(validate_idempotency_key(bad).unwrap_err().exit_code(), 2);
        }
        validate_run_id("--run-id", "0b6c3e2a-1f1e-4c8e-9d7a-2f7f0e5c9a11").unwrap();
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "%2e%2e",
            "a b",
            "a\nb",
            &"a".repeat(257),
        ] {
            assert_eq!(
                validate_run_id("--run-id", bad).unwrap_err().exit_code(),
                2,
                "{bad:?}"
            );
        }
    }
}
